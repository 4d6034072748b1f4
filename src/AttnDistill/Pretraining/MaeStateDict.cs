namespace AttnDistill.Pretraining;

/// <summary>
/// Key mapping between <see cref="MaskedAutoencoder"/>'s state dict and models_mae.py's, a pure
/// function of the name: our encoder keys carry an <c>encoder.</c> prefix (the encoder is a whole
/// <see cref="Models.VisionTransformer"/>), MAE's sit at the top level; decoder keys are equal.
/// </summary>
public static class MaeStateDict
{
    public const string EncoderPrefix = "encoder.";

    static bool IsDecoderKey(string maeKey) =>
        maeKey.StartsWith("decoder_", StringComparison.Ordinal) || maeKey == "mask_token";

    /// <summary>Our key -> MAE's key ("encoder.blocks.0.attn.qkv.weight" -> "blocks.0.attn.qkv.weight").</summary>
    public static string ToMaeKey(string key) =>
        key.StartsWith(EncoderPrefix, StringComparison.Ordinal) ? key[EncoderPrefix.Length..] : key;

    /// <summary>MAE's key -> ours ("norm.weight" -> "encoder.norm.weight"; decoder keys unchanged).</summary>
    public static string FromMaeKey(string maeKey) => IsDecoderKey(maeKey) ? maeKey : EncoderPrefix + maeKey;

    /// <summary>Renames every key of an MAE-named dict (values are not copied).</summary>
    public static Dictionary<string, T> FromMaeNames<T>(IEnumerable<KeyValuePair<string, T>> maeNamed) =>
        maeNamed.ToDictionary(kv => FromMaeKey(kv.Key), kv => kv.Value);

    /// <summary>Renames every key of one of our dicts to MAE's names.</summary>
    public static Dictionary<string, T> ToMaeNames<T>(IEnumerable<KeyValuePair<string, T>> named) =>
        named.ToDictionary(kv => ToMaeKey(kv.Key), kv => kv.Value);
}
