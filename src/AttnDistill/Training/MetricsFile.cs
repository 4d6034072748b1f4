using AttnDistill.Checkpoints;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttnDistill.Training;

/// <summary>
/// metrics.json of a run folder: one JSON object whose top-level keys are the commands that
/// reported ("distill", "knn", "linear" ...). Each command replaces only its own key, atomically.
/// </summary>
public static class MetricsFile
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void Merge(string path, string key, object value)
    {
        JsonObject root = File.Exists(path) && JsonNode.Parse(File.ReadAllText(path)) is JsonObject o ? o : new JsonObject();
        root[key] = JsonSerializer.SerializeToNode(value, Options);
        AtomicFile.WriteAllText(path, root.ToJsonString(Options));
    }

    public static JsonObject Read(string path) =>
        JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path} is not a JSON object.");
}
