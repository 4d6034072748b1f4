using System.CommandLine;
using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace AttnDistill.Cli;

/// <summary>
/// `--config recipe.yaml` for any command: the recipe's keys are the command's option names
/// without the dashes; flags given on the command line win. The recipe is turned into tokens
/// and parsed by the same options, so validation and help are one thing.
/// </summary>
public static class RecipeArguments
{
    public const string ConfigOption = "--config";

    /// <summary>Keys a recipe may carry besides option names: documentation and the paper's figures.</summary>
    public static readonly IReadOnlySet<string> ReservedKeys = new HashSet<string> { "verb", "description", "paper", "common", "rows" };

    /// <summary>
    /// The arguments with the recipe's settings appended where the command line does not set them.
    /// A recipe is either flat (option: value ...) or a family of rows (common: {...}, rows:
    /// {name: {...}}), one row picked with <c>--config file.yaml#name</c>; "verb" names the command
    /// it is for, "description" and "paper" are documentation.
    /// </summary>
    public static string[] Expand(string[] args, Command command)
    {
        int at = Array.IndexOf(args, ConfigOption);
        if (at < 0) return args;
        if (at + 1 >= args.Length) throw new RecipeException($"{ConfigOption} needs a YAML file path.");
        string spec = args[at + 1];
        int hash = spec.LastIndexOf('#');
        string path = hash > 0 ? spec[..hash] : spec;
        string? row = hash > 0 ? spec[(hash + 1)..] : null;
        if (!File.Exists(path)) throw new RecipeException($"recipe '{path}' does not exist.");
        var rest = args.Take(at).Concat(args.Skip(at + 2)).ToList();
        var given = rest.Where(a => a.StartsWith("--", StringComparison.Ordinal)).Select(a => a.Split('=')[0]).ToHashSet();
        var known = command.Options.ToDictionary(o => o.Name, o => o);

        foreach (var (key, valueNode) in Settings(path, row, command.Name))
        {
            string flag = "--" + key;
            if (!known.ContainsKey(flag))
                throw new RecipeException($"recipe '{spec}': unknown key '{key}' for '{command.Name}'. Known keys: {string.Join(", ", known.Keys.Where(k => k.StartsWith("--", StringComparison.Ordinal) && k != ConfigOption && k != "--help").Select(k => k[2..]).Order())}.");
            if (given.Contains(flag)) continue;
            switch (valueNode)
            {
                case YamlScalarNode s:
                    rest.Add(flag);
                    rest.Add(s.Value ?? "");
                    break;
                case YamlSequenceNode seq:
                    rest.Add(flag);
                    rest.AddRange(seq.Children.Select(c => c is YamlScalarNode cs ? cs.Value ?? ""
                        : throw new RecipeException($"recipe '{spec}': key '{key}' must be a scalar or a list of scalars, not a list holding a {Kind(c)}.")));
                    break;
                default:
                    throw new RecipeException($"recipe '{spec}': key '{key}' must be a scalar or a list.");
            }
        }
        return rest.ToArray();
    }

    /// <summary>The rows of a family recipe (empty for a flat one).</summary>
    public static IReadOnlyList<string> Rows(string path) =>
        Load(path) is { } map && map.Children.TryGetValue(new YamlScalarNode("rows"), out var rows) && rows is YamlMappingNode m
            ? m.Children.Keys.Select(k => KeyOf(k, path)).ToList()
            : Array.Empty<string>();

    /// <summary>The verb a recipe declares ("verb: distill"), or null.</summary>
    public static string? Verb(string path) =>
        Load(path) is { } map && map.Children.TryGetValue(new YamlScalarNode("verb"), out var v) ? ScalarOf(v, "verb", path) : null;

    /// <summary>Recipes are small: these bounds keep a hostile file from exhausting the stack or memory, or printing megabytes.</summary>
    public const int MaxDepth = 32, MaxNodes = 100_000, MaxListLength = 10_000;
    public const long MaxRecipeBytes = 4 << 20;

    static string KeyOf(YamlNode k, string path) => k is YamlScalarNode s ? s.Value ?? ""
        : throw new RecipeException($"recipe '{path}': a key is a {Kind(k)} (line {k.Start.Line}); keys must be plain option names.");

    static string? ScalarOf(YamlNode v, string key, string path) => v is YamlScalarNode s ? s.Value
        : throw new RecipeException($"recipe '{path}': '{key}' must be a single value, not a {Kind(v)} (line {v.Start.Line}).");

    static string Kind(YamlNode n) => n switch { YamlSequenceNode => "list", YamlMappingNode => "mapping", _ => "value" };

    /// <summary>
    /// Walks the file's events (YamlDotNet's parser is a loop, not a recursion) before building
    /// the tree, whose construction recurses: 100,000 nested lists would overflow the stack.
    /// </summary>
    static void CheckShape(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > MaxRecipeBytes) throw new RecipeException($"recipe '{path}' is {info.Length} bytes; recipes are at most {MaxRecipeBytes} bytes.");
        using var reader = File.OpenText(path);
        var parser = new YamlDotNet.Core.Parser(reader);
        int depth = 0, nodes = 0;
        var lengths = new List<int>();
        while (parser.MoveNext())
        {
            var e = parser.Current;
            if (e is YamlDotNet.Core.Events.NodeEvent && ++nodes > MaxNodes)
                throw new RecipeException($"recipe '{path}' holds more than {MaxNodes} values; recipes are small files of option settings.");
            if (lengths.Count > 0 && e is YamlDotNet.Core.Events.NodeEvent && ++lengths[^1] > MaxListLength)
                throw new RecipeException($"recipe '{path}': a list or mapping with more than {MaxListLength} entries (line {e.Start.Line}); no option takes that many values.");
            if (e is YamlDotNet.Core.Events.SequenceStart or YamlDotNet.Core.Events.MappingStart)
            {
                if (++depth > MaxDepth)
                    throw new RecipeException($"recipe '{path}' nests lists or mappings more than {MaxDepth} deep (line {e.Start.Line}); recipes are flat option: value settings.");
                lengths.Add(0);
            }
            else if (e is YamlDotNet.Core.Events.SequenceEnd or YamlDotNet.Core.Events.MappingEnd)
            {
                depth--;
                if (lengths.Count > 0) lengths.RemoveAt(lengths.Count - 1);
            }
        }
    }

    static YamlMappingNode? Load(string path)
    {
        var stream = new YamlStream();
        try
        {
            CheckShape(path);
            using var reader = File.OpenText(path);
            stream.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException ex) { throw new RecipeException($"recipe '{path}' is not valid YAML: {TerminalText.Safe(ex.Message, 300)}"); }
        catch (Exception ex) when (AttnDistill.Runs.YamlParserFailure.Is(ex))
        {
            throw new RecipeException($"recipe '{path}' is not valid YAML (the parser stopped with {ex.GetType().Name}: {TerminalText.Safe(ex.Message, 200)}): check its brackets and quotes.");
        }
        if (stream.Documents.Count == 0) return null;
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new RecipeException($"recipe '{path}' must be a mapping of option names to values.");
    }

    /// <summary>Option settings of the recipe (common + the row, the row winning), reserved keys left out.</summary>
    static IEnumerable<(string Key, YamlNode Value)> Settings(string path, string? row, string verb)
    {
        var map = Load(path);
        if (map is null) yield break;
        var settings = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        if (map.Children.TryGetValue(new YamlScalarNode("verb"), out var v) && ScalarOf(v, "verb", path) is { } declared && declared != verb)
            throw new RecipeException($"recipe '{path}' is for 'attndistill {declared}', not '{verb}'.");
        void Add(YamlMappingNode m, string where)
        {
            foreach (var (k, value) in m.Children)
            {
                string key = KeyOf(k, path);
                if (!ReservedKeys.Contains(key)) settings[key] = value;
            }
        }
        if (map.Children.TryGetValue(new YamlScalarNode("rows"), out var rowsNode))
        {
            var rows = rowsNode as YamlMappingNode ?? throw new RecipeException($"recipe '{path}': 'rows' must map row names to settings.");
            var names = rows.Children.Keys.Select(k => KeyOf(k, path)).ToList();
            if (row is null)
                throw new RecipeException($"recipe '{path}' is a family of rows: pick one with {ConfigOption} {path}#ROW. Rows: {string.Join(", ", names)}.");
            if (map.Children.TryGetValue(new YamlScalarNode("common"), out var common) && common is YamlMappingNode c) Add(c, "common");
            if (!rows.Children.TryGetValue(new YamlScalarNode(row), out var picked))
                throw new RecipeException($"recipe '{path}' has no row '{row}'. Rows: {string.Join(", ", names)}.");
            if (picked is YamlMappingNode p) Add(p, row);
            else if (picked is not YamlScalarNode { Value: null or "" }) throw new RecipeException($"recipe '{path}': row '{row}' must be a mapping.");
        }
        else
        {
            if (row is not null) throw new RecipeException($"recipe '{path}' has no rows; drop '#{row}'.");
            Add(map, "recipe");
        }
        foreach (var (k, value) in settings) yield return (k, value);
    }

    /// <summary>The resolved settings of a parsed command as YAML (one key per option, as a recipe).</summary>
    public static string Resolve(ParseResult parsed)
    {
        var lines = new List<string> { $"# attndistill {parsed.CommandResult.Command.Name}, resolved {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z" };
        foreach (var option in parsed.CommandResult.Command.Options)
        {
            if (option.Name is "--help" or ConfigOption || !option.Name.StartsWith("--", StringComparison.Ordinal)) continue;
            var value = parsed.GetValue<object?>(option.Name);
            if (option is Commands.INumberListDefaults list && value is null or Array { Length: 0 }) value = list.Defaults;
            lines.Add($"{option.Name[2..]}: {Format(value)}");
        }
        return string.Join('\n', lines) + "\n";
    }

    static string Format(object? value) => value switch
    {
        null => "null",
        string s => s.Length == 0 || s.Any(c => ":#{}[],&*?|<>=!%@`'\"".Contains(c)) ? $"'{s.Replace("'", "''")}'" : s,
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        Enum e => e.ToString().ToLowerInvariant(),
        System.Collections.IEnumerable list => "[" + string.Join(", ", list.Cast<object>().Select(Format)) + "]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
    };
}

public sealed class RecipeException(string message) : Exception(message);
