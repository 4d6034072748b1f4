using System.Text.Json;
using System.Text.Json.Serialization;

namespace AttnDistill.Distillation.TeacherCache;

/// <summary>
/// What a teacher-target cache was filled from (DIR/cache.json). A run whose settings give another
/// header refuses the cache, naming the first field that differs: the cached rows would be the
/// targets of another teacher, data set or augmentation stream.
/// </summary>
public sealed record TeacherCacheHeader
{
    // 2: the last block's attention rows are stored for every run (format 1 left them out of
    // feature-only and CompRess runs, so a lambda-0 baseline's cache served no attention row).
    public const int CurrentFormat = 2;

    [JsonPropertyName("format")] public int Format { get; init; } = CurrentFormat;
    /// <summary>SHA-256 of the loaded teacher: its config and every tensor as the run uses it (after pos_embed resampling).</summary>
    [JsonPropertyName("teacher_sha256")] public required string TeacherSha256 { get; init; }
    /// <summary>Where the teacher was read from (informational; the hash decides).</summary>
    [JsonPropertyName("teacher_file")] public string TeacherFile { get; init; } = "";
    [JsonPropertyName("data")] public required string Data { get; init; }
    [JsonPropertyName("images")] public required int Images { get; init; }
    [JsonPropertyName("image_size")] public required int ImageSize { get; init; }
    /// <summary>The crop recipe: RandomResizedCrop scale range and flip, as the loader applies them.</summary>
    [JsonPropertyName("crop")] public required string Crop { get; init; }
    [JsonPropertyName("seed")] public required long Seed { get; init; }
    [JsonPropertyName("batch_size")] public required int BatchSize { get; init; }
    /// <summary>float32 or float16: how the targets are stored.</summary>
    [JsonPropertyName("dtype")] public required string Dtype { get; init; }
    /// <summary>Elements of the feature target per image: D (the CLS token) or (1 + N) x D (all tokens, --patch-token-align).</summary>
    [JsonPropertyName("feature_shape")] public required int[] FeatureShape { get; init; }
    /// <summary>Attention targets per image: blocks x heads x tokens (1 block, or every block with --attn-all-blocks).</summary>
    [JsonPropertyName("attention_shape")] public required int[] AttentionShape { get; init; }
    [JsonPropertyName("value_norms")] public required bool ValueNorms { get; init; }
    /// <summary>Images the loader yields per epoch (a dropped last batch is not cached).</summary>
    [JsonPropertyName("rows_per_epoch")] public required int RowsPerEpoch { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>
    /// What the cache stores per image: the feature (D, or (1 + N) x D with patch-token alignment),
    /// the attention rows (blocks x heads x tokens) and whether value norms come with them. The last
    /// block's rows are stored even when this run's loss does not read them (lambda 0, CompRess): they
    /// cost 1 + N numbers per head next to D, and they let the feature-only baseline's cache serve
    /// every attention row of the same stream, which is what the cache is for.
    /// </summary>
    public static (int[] Feature, int[] Attention, bool ValueNorms) Targets(Models.VitConfig teacher, int imageSize, DistillLossOptions loss, DistillationMethod method)
    {
        int side = imageSize / teacher.PatchSize, tokens = 1 + side * side;
        bool attentionLoss = loss.UsesAttention && method != DistillationMethod.CompRess;
        return (loss.PatchTokenAlign ? new[] { tokens, teacher.EmbedDim } : new[] { teacher.EmbedDim },
                new[] { attentionLoss && loss.AllBlocks ? teacher.Depth : 1, teacher.NumHeads, tokens },
                attentionLoss && loss.WeightByValue);
    }

    /// <summary>SHA-256 over the teacher's config and every tensor of its state dict as the run holds it (so a resampled pos_embed or another head count is another teacher).</summary>
    public static string TeacherHash(Models.VisionTransformer teacher)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes(Checkpoints.VitConfigJson.Serialize(teacher.Config)));
        foreach (var (name, t) in teacher.state_dict())
        {
            using var host = t.detach().cpu().contiguous();
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            sha.AppendData(host.bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public string Serialize() => JsonSerializer.Serialize(this, Json);

    public static TeacherCacheHeader Deserialize(string json, string path)
    {
        try { return JsonSerializer.Deserialize<TeacherCacheHeader>(json) ?? throw new JsonException("null"); }
        catch (JsonException ex) { throw new ArgumentException($"--teacher-cache: {path} is not a teacher-cache header ({ex.Message}); delete the folder or pass another one.", ex); }
    }

    /// <summary>The first field in which <paramref name="run"/> differs from this (the cache's) header, as "name: cache X, this run Y"; null when they agree.</summary>
    public string? FirstMismatch(TeacherCacheHeader run)
    {
        var fields = new (string Name, object Cache, object Run)[]
        {
            ("format", Format, run.Format),
            ("teacher (SHA-256 of the loaded teacher)", TeacherSha256, run.TeacherSha256),
            ("data", Data, run.Data),
            ("images", Images, run.Images),
            ("image size", ImageSize, run.ImageSize),
            ("crop", Crop, run.Crop),
            ("seed", Seed, run.Seed),
            ("batch size", BatchSize, run.BatchSize),
            ("dtype", Dtype, run.Dtype),
            ("feature targets", string.Join("x", FeatureShape), string.Join("x", run.FeatureShape)),
            ("attention targets (blocks x heads x tokens)", string.Join("x", AttentionShape), string.Join("x", run.AttentionShape)),
            ("value norms", ValueNorms, run.ValueNorms),
            ("rows per epoch", RowsPerEpoch, run.RowsPerEpoch),
        };
        foreach (var (name, cache, current) in fields)
            if (!Equals(cache, current)) return $"{name}: the cache has {cache}, this run {current}";
        return null;
    }
}
