using System.Text.Json.Serialization;

namespace AttnDistill.Evaluation;

/// <summary>Weighted k-NN accuracy for one k, in percent (0..100), as DINO prints it.</summary>
public sealed record KnnResult(
    [property: JsonPropertyName("k")] int K,
    [property: JsonPropertyName("top1")] double Top1,
    [property: JsonPropertyName("top5")] double Top5);
