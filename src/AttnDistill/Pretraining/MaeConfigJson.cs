using System.Text.Json;
using System.Text.Json.Serialization;

namespace AttnDistill.Pretraining;

/// <summary>
/// The JSON form of <see cref="MaeConfig"/> (encoder config nested, enums by name), for a run's
/// stored configuration text: the trainer's checkpoints carry only the encoder's VitConfig, this
/// carries the decoder too so a run is rebuilt from its files.
/// </summary>
public static class MaeConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        IgnoreReadOnlyProperties = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public static string Serialize(MaeConfig cfg) => JsonSerializer.Serialize(cfg, Options);

    /// <summary>Parses and validates; a malformed text gives one line naming the problem.</summary>
    public static MaeConfig Deserialize(string json)
    {
        try
        {
            return (JsonSerializer.Deserialize<MaeConfig>(json, Options) ?? throw new JsonException("null")).Validate();
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"the stored MAE configuration is not valid JSON for MaeConfig: {ex.Message}", ex);
        }
    }
}
