using System.Text.Json;
using System.Text.Json.Serialization;

namespace AttnDistill.Evaluation;

/// <summary>Accuracy of one head of the linear-probe sweep, in percent.</summary>
public sealed record LinearProbeHeadResult(
    [property: JsonPropertyName("base_lr")] double BaseLr,
    [property: JsonPropertyName("lr")] double Lr,
    [property: JsonPropertyName("top1")] double Top1,
    [property: JsonPropertyName("top5")] double Top5);

/// <summary>The whole sweep and its best head (highest top-1; the first on ties).</summary>
public sealed record LinearProbeResult(
    [property: JsonPropertyName("best")] LinearProbeHeadResult Best,
    [property: JsonPropertyName("sweep")] IReadOnlyList<LinearProbeHeadResult> Sweep)
{
    public static LinearProbeResult FromSweep(IReadOnlyList<LinearProbeHeadResult> sweep)
    {
        if (sweep.Count == 0) throw new ArgumentException("empty sweep.");
        var best = sweep[0];
        foreach (var r in sweep) if (r.Top1 > best.Top1) best = r;
        return new LinearProbeResult(best, sweep);
    }
}

/// <summary>Top-1/top-5 of a fine-tuned model, in percent.</summary>
public sealed record ClassificationResult(
    [property: JsonPropertyName("top1")] double Top1,
    [property: JsonPropertyName("top5")] double Top5);

/// <summary>
/// What an evaluation command writes to metrics.json, all accuracies in percent:
/// <c>{"knn": [{"k": 20, "top1": 71.3, "top5": 90.2}, ...], "linear": {"best": {...}, "sweep": [...]}}</c>.
/// Protocols that did not run are left out of the file.
/// </summary>
public sealed record EvaluationMetrics
{
    [JsonPropertyName("knn")] public IReadOnlyList<KnnResult>? Knn { get; init; }
    [JsonPropertyName("linear")] public LinearProbeResult? Linear { get; init; }
    [JsonPropertyName("finetune")] public ClassificationResult? Finetune { get; init; }

    /// <summary>Labelled fraction of the train split (semi-supervised runs); null: all labels.</summary>
    [JsonPropertyName("label_fraction")] public double? LabelFraction { get; init; }
    [JsonPropertyName("train_images")] public long? TrainImages { get; init; }
    [JsonPropertyName("test_images")] public long? TestImages { get; init; }
    [JsonPropertyName("checkpoint")] public string? Checkpoint { get; init; }

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static EvaluationMetrics FromJson(string json) =>
        JsonSerializer.Deserialize<EvaluationMetrics>(json, Json) ?? throw new InvalidDataException("metrics.json is empty.");

    /// <summary>Writes metrics.json in <paramref name="outDir"/> (created if needed); returns its path.</summary>
    public string Save(string outDir)
    {
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, "metrics.json");
        Checkpoints.AtomicFile.Write(path, s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(ToJson()); });
        return path;
    }
}
