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
