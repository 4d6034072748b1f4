using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace AttnDistill.Cli.Commands;

/// <summary>A list option's default, for the resolved config.yaml (the parser leaves an absent list empty).</summary>
public interface INumberListDefaults
{
    object? Defaults { get; }
}

/// <summary>
/// A list of numbers typed as the help shows it: separated by spaces, commas or both
/// (--k 10 20, --k 10,20). The default is written into the description with spaces, not as
/// System.CommandLine's "[default: 10|20]", which no shell passes through and the parser refused.
/// </summary>
public sealed class NumberListOption<T> : Option<T[]>, INumberListDefaults where T : struct, INumber<T>
{
    readonly T[]? _defaults;
    readonly int? _count;

    /// <param name="count">Exactly this many values (a min/max pair: 2); null: one or more.</param>
    public NumberListOption(string name, string description, T[]? defaults = null, int? count = null) : base(name)
    {
        _defaults = defaults;
        _count = count;
        string shape = count is int n ? $"{n} numbers" : "numbers";
        Description = $"{description} {shape} separated by spaces or commas{(defaults is null ? "" : $"; default: {Text(defaults)}")}.";
        AllowMultipleArgumentsPerToken = true;
        Arity = ArgumentArity.OneOrMore;
        CustomParser = Parse;
    }

    object? INumberListDefaults.Defaults => _defaults;

    /// <summary>The values given, or the default (an empty array when there is none).</summary>
    public T[] Read(ParseResult r) => r.GetValue(this) is { Length: > 0 } given ? given : _defaults ?? Array.Empty<T>();

    static string Text(IEnumerable<T> values) => string.Join(" ", values.Select(v => v.ToString(null, CultureInfo.InvariantCulture)));

    T[]? Parse(ArgumentResult result)
    {
        var values = new List<T>();
        foreach (var token in result.Tokens)
            foreach (string part in token.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!T.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                {
                    result.AddError($"{Name}: '{part}' is not a number; give {(typeof(T) == typeof(int) ? "integers" : "numbers")} separated by spaces or commas, e.g. {Name} {Example()}.");
                    return null;
                }
                values.Add(v);
            }
        if (values.Count == 0)
        {
            result.AddError($"{Name} needs at least one number, e.g. {Name} {Example()}.");
            return null;
        }
        if (_count is int n && values.Count != n)
        {
            result.AddError($"{Name} takes {n} numbers, got {values.Count}: e.g. {Name} {Example()}.");
            return null;
        }
        return values.ToArray();
    }

    string Example() => _defaults is { Length: > 0 } d ? string.Join(",", d.Select(v => v.ToString(null, CultureInfo.InvariantCulture))) : _count == 2 ? "0.2,0.8" : "1,2";
}
