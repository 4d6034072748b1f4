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

    /// <summary>The arguments with the recipe's settings appended where the command line does not set them.</summary>
    public static string[] Expand(string[] args, Command command)
    {
        int at = Array.IndexOf(args, ConfigOption);
        if (at < 0) return args;
        if (at + 1 >= args.Length) throw new RecipeException($"{ConfigOption} needs a YAML file path.");
        string path = args[at + 1];
        if (!File.Exists(path)) throw new RecipeException($"recipe '{path}' does not exist.");
        var rest = args.Take(at).Concat(args.Skip(at + 2)).ToList();
        var given = rest.Where(a => a.StartsWith("--", StringComparison.Ordinal)).Select(a => a.Split('=')[0]).ToHashSet();
        var known = command.Options.ToDictionary(o => o.Name, o => o);

        var stream = new YamlStream();
        try { using var reader = File.OpenText(path); stream.Load(reader); }
        catch (YamlDotNet.Core.YamlException ex) { throw new RecipeException($"recipe '{path}' is not valid YAML: {ex.Message}"); }
        if (stream.Documents.Count == 0) return rest.ToArray();
        if (stream.Documents[0].RootNode is not YamlMappingNode map)
            throw new RecipeException($"recipe '{path}' must be a mapping of option names to values.");
        foreach (var (keyNode, valueNode) in map.Children)
        {
            string key = ((YamlScalarNode)keyNode).Value ?? "";
            string flag = "--" + key;
            if (!known.ContainsKey(flag))
                throw new RecipeException($"recipe '{path}': unknown key '{key}' for '{command.Name}'. Known keys: {string.Join(", ", known.Keys.Where(k => k.StartsWith("--", StringComparison.Ordinal) && k != ConfigOption && k != "--help").Select(k => k[2..]).Order())}.");
            if (given.Contains(flag)) continue;
            switch (valueNode)
            {
                case YamlScalarNode s:
                    rest.Add(flag);
                    rest.Add(s.Value ?? "");
                    break;
                case YamlSequenceNode seq:
                    rest.Add(flag);
                    rest.AddRange(seq.Children.Select(c => ((YamlScalarNode)c).Value ?? ""));
                    break;
                default:
                    throw new RecipeException($"recipe '{path}': key '{key}' must be a scalar or a list.");
            }
        }
        return rest.ToArray();
    }

    /// <summary>The resolved settings of a parsed command as YAML (one key per option, as a recipe).</summary>
    public static string Resolve(ParseResult parsed)
    {
        var lines = new List<string> { $"# attndistill {parsed.CommandResult.Command.Name}, resolved {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z" };
        foreach (var option in parsed.CommandResult.Command.Options)
        {
            if (option.Name is "--help" or ConfigOption || !option.Name.StartsWith("--", StringComparison.Ordinal)) continue;
            var value = parsed.GetValue<object?>(option.Name);
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
