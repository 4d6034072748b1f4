using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDistill.Models;

namespace AttnDistill.Checkpoints;

/// <summary>The JSON form of <see cref="VitConfig"/> stored in the files we write, so a model is rebuilt from the file alone.</summary>
public static class VitConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        IgnoreReadOnlyProperties = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public static string Serialize(VitConfig cfg) => JsonSerializer.Serialize(cfg, Options);

    /// <param name="source">The file the JSON came from, named in errors.</param>
    public static VitConfig Deserialize(string json, string? source = null)
    {
        string where = source is null ? "" : source + ": ";
        try
        {
            return (JsonSerializer.Deserialize<VitConfig>(json, Options) ?? throw new JsonException("null")).Validate();
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"{where}the stored ViT configuration is not valid JSON for VitConfig: {ex.Message}", ex);
        }
        catch (ArgumentException ex)
        {
            throw new CheckpointFormatException($"{where}the stored ViT configuration is impossible: {ex.Message}", ex);
        }
    }
}
