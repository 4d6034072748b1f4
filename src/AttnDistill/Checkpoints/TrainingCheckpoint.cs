using System.Security.Cryptography;
using System.Text.Json;
using AttnDistill.Models;
using static TorchSharp.torch;

namespace AttnDistill.Checkpoints;

/// <summary>
/// Our own resumable training checkpoint: model tensors, any number of named sections (optimizer,
/// scheduler, RNG ...; each named tensors + JSON), epoch, step, the run's configuration text and
/// the model's <see cref="VitConfig"/>. Stored as one safetensors file (readable by Python's
/// safetensors too): tensors "model/&lt;name&gt;" and "&lt;section&gt;/&lt;name&gt;", everything else in the
/// string metadata, with a SHA-256 of the data section so corruption is detected on load.
/// Saving is atomic: an interrupted save leaves the previous file intact.
/// </summary>
public sealed class TrainingCheckpoint : IDisposable
{
    public const string ModelSection = "model";
    public const string OptimizerSection = "optimizer";
    public const string SchedulerSection = "scheduler";
    public const string RngSection = "rng";
    const string Version = "1";
    const string VersionKey = "attndistill.version";
    const string EpochKey = "attndistill.epoch";
    const string StepKey = "attndistill.step";
    const string ConfigKey = "attndistill.config";
    const string SectionsKey = "attndistill.sections";
    const string ShaKey = "attndistill.data_sha256";

    /// <summary>Model state dict (DINO/timm names).</summary>
    public Dictionary<string, Tensor> Model { get; init; } = new(StringComparer.Ordinal);
    /// <summary>The architecture, so the model is rebuilt from the file alone.</summary>
    public VitConfig? ModelConfig { get; init; }
    /// <summary>The run's full configuration as text (YAML or JSON), stored verbatim.</summary>
    public string Config { get; init; } = "";
    public int Epoch { get; init; }
    public long Step { get; init; }
    /// <summary>Named sections; see <see cref="OptimizerSection"/>, <see cref="SchedulerSection"/>, <see cref="RngSection"/>.</summary>
    public Dictionary<string, CheckpointSection> Sections { get; init; } = new(StringComparer.Ordinal);

    public CheckpointSection? Section(string name) => Sections.TryGetValue(name, out var s) ? s : null;

    /// <summary>Writes atomically: path.tmp, fsync, rename over <paramref name="path"/>.</summary>
    public void Save(string path) => AtomicFile.Write(path, WriteTo);

    /// <summary>Writes the file's bytes to a stream (no atomicity: use <see cref="Save"/> for files).</summary>
    public void WriteTo(Stream stream)
    {
        var items = new List<KeyValuePair<string, Tensor>>();
        foreach (var (k, t) in Model) items.Add(new(ModelSection + "/" + k, t));
        var sectionJson = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, section) in Sections)
        {
            if (name.Length == 0 || name.Contains('/') || name == ModelSection)
                throw new ArgumentException($"section name '{name}' is not allowed (empty, contains '/', or '{ModelSection}').");
            ValidateJson(section.Json, name);
            sectionJson[name] = section.Json;
            foreach (var (k, t) in section.Tensors) items.Add(new(name + "/" + k, t));
        }
        using var scope = NewDisposeScope();
        // Contiguous CPU copies once, so the hash and the data written are the same bytes.
        var cpu = items.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu().contiguous())).ToList();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (_, t) in cpu)
            if (t.NumberOfElements > 0) sha.AppendData(t.bytes);

        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [CheckpointMetadata.PythonFormat] = "pt",
            [CheckpointMetadata.Kind] = CheckpointMetadata.KindTraining,
            [VersionKey] = Version,
            [EpochKey] = Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [StepKey] = Step.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [ConfigKey] = Config,
            [SectionsKey] = JsonSerializer.Serialize(sectionJson),
            [ShaKey] = Convert.ToHexStringLower(sha.GetHashAndReset()),
        };
        if (ModelConfig is not null) meta[CheckpointMetadata.VitConfig] = VitConfigJson.Serialize(ModelConfig);
        SafetensorsFile.Write(stream, cpu, meta);
    }

    /// <summary>Reads and validates (kind, version, data checksum); truncated or corrupt files fail with a <see cref="CheckpointFormatException"/>.</summary>
    public static TrainingCheckpoint Load(string path)
    {
        var contents = SafetensorsFile.Read(path, hashData: true);
        try
        {
            var meta = contents.Metadata;
            if (!meta.TryGetValue(CheckpointMetadata.Kind, out string? kind) || kind != CheckpointMetadata.KindTraining)
                throw new CheckpointFormatException($"{path}: a safetensors file but not an AttnDistill training checkpoint (no '{CheckpointMetadata.Kind}: {CheckpointMetadata.KindTraining}').");
            if (!meta.TryGetValue(VersionKey, out string? version) || version != Version)
                throw new CheckpointFormatException($"{path}: training checkpoint version '{version}' is not supported (expected {Version}).");
            if (!meta.TryGetValue(ShaKey, out string? sha) || sha != contents.DataSha256)
                throw new CheckpointFormatException($"{path}: the data checksum does not match (stored {sha ?? "none"}, computed {contents.DataSha256}): the file is corrupt.");
            var sectionJson = JsonSerializer.Deserialize<Dictionary<string, string>>(Get(meta, SectionsKey, path))
                ?? throw new CheckpointFormatException($"{path}: bad section list.");

            foreach (var (name, json) in sectionJson)
            {
                if (json is null) throw new CheckpointFormatException($"{path}: section '{TerminalText.Safe(name, 60)}' has no JSON (corrupt or crafted file).");
                try { using var _ = JsonDocument.Parse(json); }
                catch (JsonException ex) { throw new CheckpointFormatException($"{path}: section '{TerminalText.Safe(name, 60)}' holds text that is not JSON (corrupt or crafted file).", ex); }
            }
            var model = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var sections = sectionJson.ToDictionary(kv => kv.Key, kv => new CheckpointSection { Json = kv.Value }, StringComparer.Ordinal);
            foreach (var (key, t) in contents.Tensors)
            {
                int slash = key.IndexOf('/');
                string owner = slash < 0 ? "" : key[..slash], name = key[(slash + 1)..];
                if (owner == ModelSection) model[name] = t;
                else if (sections.TryGetValue(owner, out var s)) s.Tensors[name] = t;
                else throw new CheckpointFormatException($"{path}: tensor '{TerminalText.Safe(key, 80)}' belongs to no section.");
            }
            int epoch = int.Parse(Get(meta, EpochKey, path), System.Globalization.CultureInfo.InvariantCulture);
            long step = long.Parse(Get(meta, StepKey, path), System.Globalization.CultureInfo.InvariantCulture);
            if (epoch < 0 || step < 0)
                throw new CheckpointFormatException($"{path}: epoch {epoch}, step {step}: a position cannot be negative (corrupt or crafted file).");
            return new TrainingCheckpoint
            {
                Model = model,
                ModelConfig = meta.TryGetValue(CheckpointMetadata.VitConfig, out string? vc) ? VitConfigJson.Deserialize(vc, path) : null,
                Config = meta.TryGetValue(ConfigKey, out string? cfg) ? cfg : "",
                Epoch = epoch,
                Step = step,
                Sections = sections,
            };
        }
        catch (Exception ex) when (ex is JsonException or FormatException or OverflowException)
        {
            foreach (var t in contents.Tensors.Values) t.Dispose();
            throw new CheckpointFormatException($"{path}: bad training checkpoint metadata: {TerminalText.Safe(ex.Message, 200)}", ex);
        }
        catch
        {
            foreach (var t in contents.Tensors.Values) t.Dispose();
            throw;
        }
    }

    static string Get(IReadOnlyDictionary<string, string> meta, string key, string path)
        => meta.TryGetValue(key, out string? v) ? v : throw new CheckpointFormatException($"{path}: metadata '{key}' is missing.");

    static void ValidateJson(string json, string section)
    {
        try { using var _ = JsonDocument.Parse(json); }
        catch (JsonException ex) { throw new ArgumentException($"section '{section}': Json is not valid JSON: {ex.Message}", ex); }
    }

    /// <summary>Captures libtorch's default CPU generator state as an RNG section (extend its JSON with other generators' states).</summary>
    public static CheckpointSection CaptureTorchRng()
        => new() { Tensors = { ["torch_cpu"] = TorchSharp.torch.random.get_rng_state() }, Json = "{}" };

    /// <summary>Restores what <see cref="CaptureTorchRng"/> captured.</summary>
    public static void RestoreTorchRng(CheckpointSection rng)
    {
        if (rng.Tensors.TryGetValue("torch_cpu", out var state)) TorchSharp.torch.random.set_rng_state(state);
    }

    public void Dispose()
    {
        foreach (var t in Model.Values) t.Dispose();
        foreach (var s in Sections.Values)
            foreach (var t in s.Tensors.Values) t.Dispose();
    }
}
