using System.Security.Cryptography;
using AttnDistill.Checkpoints;
using AttnDistill.Models;
using AttnDistill.Zoo;
using Xunit;

namespace AttnDistill.Tests.Zoo;

/// <summary>
/// The zoo against a real HTTP server on 127.0.0.1 started here (no other address is used: every
/// test passes the loopback server as the mirror base URL).
/// </summary>
public class TeacherZooTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("zoo-").FullName;
    static readonly Lazy<byte[]> Checkpoint = new(MakeDinoCheckpoint);
    static readonly HttpClient Http = new();

    /// <summary>A DINO-format file: a flat DINO-named ViT state dict in torch's zip format (as dino_deitsmall16_pretrain.pth).</summary>
    static byte[] MakeDinoCheckpoint()
    {
        string path = Path.Combine(Path.GetTempPath(), $"zoo-dino-{Guid.NewGuid():N}.pth");
        using (var m = new VisionTransformer(new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 48, Depth = 2, NumHeads = 3 }))
            BackboneExport.SavePth(m, path);
        byte[] bytes = File.ReadAllBytes(path);
        File.Delete(path);
        return bytes;
    }

    ZooSettings Settings(LoopbackHttpServer server) => new(Path.Combine(_dir, "hub", "checkpoints"), server.BaseUrl + "/mirror");

    sealed class Recorder : IProgress<DownloadProgress>
    {
        public readonly List<DownloadProgress> Reports = new();
        public void Report(DownloadProgress value) { lock (Reports) Reports.Add(value); }
    }

    [Fact]
    public void Downloads_verifies_records_the_hash_and_loads_as_a_teacher()
    {
        using var server = new LoopbackHttpServer(Checkpoint.Value);
        var settings = Settings(server);
        var progress = new Recorder();
        string path = CheckpointResolver.Resolve("dino_vits16", "--teacher", progress: progress, settings: settings, http: Http);
        Assert.Equal(Path.Combine(settings.CacheDir, "dino_deitsmall16_pretrain.pth"), path);
        Assert.Equal(Checkpoint.Value, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + CheckpointDownloader.PartialSuffix));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Checkpoint.Value)), File.ReadAllText(path + CheckpointDownloader.RecordedHashSuffix).Trim());
        Assert.Equal(["GET /mirror/dino_deitsmall16_pretrain.pth"], server.Requests);
        // Progress: bytes grow to the total, which the server announced.
        Assert.NotEmpty(progress.Reports);
        Assert.All(progress.Reports, r => Assert.Equal(Checkpoint.Value.Length, r.Total));
        Assert.Equal(Checkpoint.Value.Length, progress.Reports[^1].Done);
        Assert.True(progress.Reports.Zip(progress.Reports.Skip(1)).All(p => p.First.Done <= p.Second.Done));
        var (model, cfg) = VitCheckpointLoader.Load(path, new VitInferenceOptions { NumHeads = 3 });
        using (model) Assert.Equal(48, cfg.EmbedDim);
    }

    [Fact]
    public void Cache_hit_makes_no_request()
    {
        using var server = new LoopbackHttpServer(Checkpoint.Value);
        var settings = Settings(server);
        Directory.CreateDirectory(settings.CacheDir);
        // A file that PyTorch's torch.hub already put there under its own name.
        File.WriteAllBytes(Path.Combine(settings.CacheDir, "dino_deitsmall8_pretrain.pth"), Checkpoint.Value);
        string path = CheckpointResolver.Resolve("vit_small_patch8_224.dino", "--teacher", settings: settings, http: Http);
        Assert.Equal(Path.Combine(settings.CacheDir, "dino_deitsmall8_pretrain.pth"), path);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public void Resumes_with_a_range_request_after_the_server_drops_the_connection_half_way()
    {
        int half = Checkpoint.Value.Length / 2;
        using var server = new LoopbackHttpServer(Checkpoint.Value, dropFirstAfterBytes: half);
        var settings = Settings(server);
        string path = CheckpointResolver.Resolve("dino_vitb16", "--teacher", settings: settings, http: Http);
        Assert.Equal(Checkpoint.Value, File.ReadAllBytes(path));
        var requests = server.Requests;
        Assert.Equal(2, requests.Count);
        Assert.DoesNotContain("range=", requests[0]);
        Assert.Matches(@"range=[1-9]\d*-$", requests[1]);
        long resumedFrom = long.Parse(requests[1].Split("range=")[1].TrimEnd('-'));
        Assert.InRange(resumedFrom, 1, half);
    }

    [Fact]
    public void A_part_left_by_an_interrupted_run_is_resumed_by_the_next_one()
    {
        int half = Checkpoint.Value.Length / 2;
        using var server = new LoopbackHttpServer(Checkpoint.Value, dropFirstAfterBytes: half);
        var settings = Settings(server);
        var entry = TeacherZoo.Find("dino_vitb8")!;
        string dest = settings.CachePathOf(entry);
        var once = new CheckpointDownloader(Http, maxAttempts: 1);
        Assert.ThrowsAny<IOException>(() => once.Download(settings.UrlOf(entry), dest, null));
        Assert.True(File.Exists(dest + CheckpointDownloader.PartialSuffix));
        Assert.False(File.Exists(dest));
        string path = CheckpointResolver.Resolve("dino_vitb8", "--teacher", settings: settings, http: Http);
        Assert.Equal(Checkpoint.Value, File.ReadAllBytes(path));
        Assert.Contains("range=", server.Requests[^1]);
    }

    [Fact]
    public void A_checksum_mismatch_is_refused_and_the_part_removed()
    {
        using var server = new LoopbackHttpServer(Checkpoint.Value);
        var settings = Settings(server);
        var entry = TeacherZoo.Find("mae_vitb16")!;
        string dest = settings.CachePathOf(entry);
        var ex = Assert.Throws<InvalidDataException>(() =>
            new CheckpointDownloader(Http).Download(settings.UrlOf(entry), dest, new string('0', 64)));
        Assert.Contains("does not match", ex.Message);
        Assert.False(File.Exists(dest));
        Assert.False(File.Exists(dest + CheckpointDownloader.PartialSuffix));
        // A recorded hash (from an earlier verified download) is enforced the same way.
        File.WriteAllText(dest + CheckpointDownloader.RecordedHashSuffix, new string('1', 64));
        Assert.Throws<InvalidDataException>(() => CheckpointResolver.Resolve("mae_vitb16", "--teacher", settings: settings, http: Http));
        Assert.False(File.Exists(dest + CheckpointDownloader.PartialSuffix));
    }

    [Fact]
    public void Unreachable_is_one_line_naming_the_url_and_the_cache_path()
    {
        // A loopback port with nothing listening: connection refused, as offline.
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var settings = new ZooSettings(Path.Combine(_dir, "offline"), $"http://127.0.0.1:{port}");
        var ex = Assert.Throws<IOException>(() => CheckpointResolver.Resolve("ibot_vits16", "--teacher", settings: settings, http: Http));
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains($"http://127.0.0.1:{port}/ibot_vits16_checkpoint_teacher.pth", ex.Message);
        Assert.Contains(Path.Combine(settings.CacheDir, "ibot_vits16_checkpoint_teacher.pth"), ex.Message);
    }

    [Fact]
    public void A_server_error_is_reported_not_retried_forever()
    {
        using var server = new LoopbackHttpServer(Checkpoint.Value);
        var settings = new ZooSettings(Path.Combine(_dir, "err"), server.BaseUrl + "/missing");
        var ex = Assert.Throws<IOException>(() => CheckpointResolver.Resolve("mugs_vits16", "--teacher", settings: settings, http: Http));
        Assert.Contains("404", ex.Message);
        Assert.Single(server.Requests);
    }

    [Fact]
    public void Paths_pass_through_and_unknown_names_suggest_the_nearest()
    {
        Assert.Equal("runs/x/backbone.safetensors", CheckpointResolver.Resolve("runs/x/backbone.safetensors", "--checkpoint"));
        var ex = Assert.Throws<FileNotFoundException>(() => CheckpointResolver.Resolve("dino_vit16", "--teacher"));
        Assert.Contains("dino_vits16", ex.Message);
    }

    [Fact]
    public void Cache_folder_follows_torch_hub()
    {
        Assert.Equal(Path.Combine("/t", "hub", "checkpoints"), TorchHubCache.CheckpointsDir(n => n == "TORCH_HOME" ? "/t" : null));
        Assert.Equal(Path.Combine("/x", "torch", "hub", "checkpoints"), TorchHubCache.CheckpointsDir(n => n == "XDG_CACHE_HOME" ? "/x" : null));
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "torch", "hub", "checkpoints"), TorchHubCache.CheckpointsDir(_ => null));
        var mirror = ZooSettings.FromEnvironment(n => n == ZooSettings.BaseUrlVariable ? "http://mirror.example/w/" : null);
        Assert.Equal("http://mirror.example/w/dino_deitsmall16_pretrain.pth", mirror.UrlOf(TeacherZoo.Find("dino_vits16")!).ToString());
    }

    [Fact]
    public void Registry_names_are_unique_and_architectures_known()
    {
        Assert.Equal(TeacherZoo.Entries.Count, TeacherZoo.Entries.Select(e => e.FileName).Distinct().Count());
        Assert.Equal(TeacherZoo.Entries.Count, TeacherZoo.Entries.Select(e => e.Name).Distinct().Count());
        foreach (var e in TeacherZoo.Entries)
        {
            Assert.True(VitPresets.TryGet(e.Architecture, out _), e.Architecture);
            Assert.StartsWith("https://", e.Url);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
