namespace AttnDistill.Runs;

/// <summary>
/// What YamlDotNet throws on a file it cannot read. Besides its own <c>YamlException</c>, the 16.3
/// scanner throws InvalidOperationException on some unclosed flow collections ("{a: b" over several
/// lines) and other runtime exceptions on damaged bytes (found by the recipe fuzzer): a bad file
/// all the same. Every reader of a YAML file (recipes, a run folder's config.yaml) refuses these
/// alike; exceptions from anywhere else still surface as bugs.
/// </summary>
public static class YamlParserFailure
{
    /// <summary>True for an exception thrown by <c>YamlStream.Load</c> on a malformed file.</summary>
    public static bool Is(Exception ex) =>
        ex is YamlDotNet.Core.YamlException or InvalidOperationException or ArgumentException or IndexOutOfRangeException
            or NullReferenceException or InvalidCastException;
}
