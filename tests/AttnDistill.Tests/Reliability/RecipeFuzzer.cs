using System.Text;
using AttnDistill.Cli;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// Recipes with hostile YAML structure fed to the CLI's real entry point (in process):
/// complex keys, aliases and anchors, deep nesting, lists and mappings where scalars go, huge
/// lists, content after a <c>...</c> document end, several documents, tabs, tags, duplicate keys,
/// invalid UTF-8 and control characters, long keys and values, row families gone wrong, and raw
/// byte damage of a valid recipe. Each runs <c>knn --config case.yaml</c> with a --data that does
/// not exist (command-line flags win over the recipe, so the case cannot point the run anywhere):
/// a recipe that parses reaches the command, which stops at --data. A case passes with exit code 2
/// and one bounded "error:" line and no stack trace: "parsed" when that line is about --data,
/// "refused" otherwise. No xunit here.
/// </summary>
public static class RecipeFuzzer
{
    public static readonly string[] Kinds =
    {
        "yaml-complex-key", "yaml-alias", "yaml-deep", "yaml-list-for-scalar", "yaml-huge-list", "yaml-after-end", "yaml-documents",
        "yaml-tabs", "yaml-unicode", "yaml-tags", "yaml-duplicate-key", "yaml-long", "yaml-rows", "yaml-root", "yaml-bytes",
    };

    /// <summary>knn keys the cases use; threads, device and the process-wide budgets are left out so a case cannot change the process for the next.</summary>
    static readonly string[] Keys = { "k", "temperature", "batch-size", "workers", "image-size", "eval-layer", "label-fraction", "label-seed", "pos-embed-resample" };

    const string Valid = "verb: knn\ndescription: a fuzz seed\nimage-size: 28\nk: [1, 2]\ntemperature: 0.07\nbatch-size: 4\nworkers: 0\n";

    /// <summary>What a parsed recipe is stopped by: the --data below does not exist.</summary>
    const string MissingData = "no-such-data-folder";

    sealed class Refused(string line) : Exception(line);

    /// <param name="cli">Runs the CLI in process and returns its exit code and output (see <see cref="InProcessCli.Run"/>).</param>
    /// <param name="checkpoint">An existing backbone file for --checkpoint (never read: the command stops at --data first).</param>
    public static FuzzReport Run(int cases, int randomSeed, string workDir, string checkpoint, Func<string[], (int Code, string Output)> cli, TimeSpan timeout,
        Action<string>? log = null)
    {
        Directory.CreateDirectory(workDir);
        string data = Path.Combine(workDir, MissingData);
        return FuzzLoop.Run(cases, randomSeed, (i, rng) =>
        {
            var (kind, bytes, row) = Mutate(rng);
            string path = Path.Combine(workDir, $"case{i:D5}.yaml"), outDir = Path.Combine(workDir, $"out{i:D5}");
            File.WriteAllBytes(path, bytes);
            string spec = row is null ? path : path + "#" + row;
            return new FuzzCase(kind, $"{bytes.Length} bytes", () => Check(cli(new[] { "knn", "--config", spec, "--data", data, "--checkpoint", checkpoint, "--out", outDir })),
                e => e is Refused ? null : FuzzLoop.Describe(e),
                () =>
                {
                    File.Delete(path);
                    if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
                });
        }, timeout, log);
    }

    /// <summary>Returns when the recipe parsed (the command stopped at --data), throws <see cref="Refused"/> for a clear refusal, anything else for a failure.</summary>
    static void Check((int Code, string Output) r)
    {
        string head = r.Output.Length > 600 ? r.Output[..600] + "..." : r.Output;
        var errors = r.Output.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        if (r.Code != 2) throw new InvalidOperationException($"exit code {r.Code}: {head}");
        if (errors.Length != 1) throw new InvalidOperationException($"{errors.Length} error lines: {head}");
        if (r.Output.Contains("   at ", StringComparison.Ordinal)) throw new InvalidOperationException($"a stack trace: {head}");
        // ConsoleReporting cuts an error line at MaxErrorLength characters (+ "error: " and "... (N characters)").
        if (errors[0].Length > ConsoleReporting.MaxErrorLength + 64) throw new InvalidOperationException($"an error line of {errors[0].Length} characters");
        if (r.Output.Length > 4 * ConsoleReporting.MaxErrorLength) throw new InvalidOperationException($"{r.Output.Length} characters of output: {head}");
        if (errors[0].Any(c => c == '\u001b' || c == '\u0007')) throw new InvalidOperationException("a terminal escape in the error line");
        if (!errors[0].Contains(MissingData, StringComparison.Ordinal)) throw new Refused(errors[0]);
    }

    public static (string Kind, byte[] Bytes, string? Row) Mutate(Random rng)
    {
        string kind = Kinds[rng.Next(Kinds.Length)];
        T Of<T>(params T[] options) => options[rng.Next(options.Length)];
        string key = Of(Keys);
        string Nest(int depth, string open, string close, string leaf) => string.Concat(Enumerable.Repeat(open, depth)) + leaf + string.Concat(Enumerable.Repeat(close, depth));
        string? row = null;
        string text;
        switch (kind)
        {
            case "yaml-complex-key":
                text = Valid + Of("? [a, b]\n: 1\n", "? {a: 1}\n: 2\n", "[k]: 1\n", "{k: 1}: 2\n", "? |\n  block key\n: 3\n", $"? {key}\n: 5\n", "? \n: 1\n", "&a k: 1\n*a : 2\n");
                break;
            case "yaml-alias":
                text = Of(
                    Valid + $"description: &a [[1, 2], [3]]\n{key}: *a\n",
                    Valid + $"paper: &x 4\n{key}: *x\n",
                    "common: &c {k: 1}\nrows: {a: *c, b: *c}\n",
                    Valid + $"{key}: *undefined\n",
                    Valid + "description: &a [x, x, x, x, x, x, x, x, x]\npaper: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
                    "verb2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nk: *c\n",
                    Valid + $"{key}: &self [1, *self]\n",
                    Valid + "<<: {k: 1}\n",
                    Valid + "<<: *nothing\n");
                if (text.StartsWith("common", StringComparison.Ordinal)) row = "a";
                break;
            case "yaml-deep":
            {
                int depth = Of(31, 32, 33, 64, 200, 5000, 20_000);
                text = Valid + Of(
                    $"{key}: {Nest(depth, "[", "]", "1")}\n",
                    $"description: {Nest(depth, "{a: ", "}", "1")}\n",
                    "description:\n" + string.Concat(Enumerable.Range(1, Math.Min(depth, 2000)).Select(d => new string(' ', d) + "a:\n")) + new string(' ', Math.Min(depth, 2000) + 1) + "1\n",
                    $"{key}: " + string.Concat(Enumerable.Repeat("- ", Math.Min(depth, 2000))) + "1\n");
                break;
            }
            case "yaml-list-for-scalar":
                text = Valid.Replace("temperature: 0.07", Of("temperature: [0.07, 0.1]", "temperature: {t: 0.07}", "temperature: [[0.07]]", "temperature: []", "temperature: [{}]", "temperature:"))
                    + Of("", "verb: [knn]\n", "rows: [a, b]\n", "common: 1\n", $"{key}: [1, [2]]\n", $"{key}: {{a: 1}}\n", $"{key}: [~, ~]\n", $"{key}: [\"--out\", \"/tmp\"]\n");
                break;
            case "yaml-huge-list":
            {
                int n = Of(9_999, 10_000, 10_001, 50_000, 150_000);
                text = Valid + $"{key}: [" + string.Join(", ", Enumerable.Range(0, n).Select(i => (i % 7).ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]\n";
                break;
            }
            case "yaml-after-end":
                text = Valid + Of("...\ngarbage: [\n", "...\n---\nk: 1\n", "... # done\n", "...\nk: 2\n", "...\n...\n", "...\n%YAML 1.2\n---\nk: 3\n", "...\n\t\u0001\n", "...\n- a\n- b\n", "... trailing\n");
                break;
            case "yaml-documents":
                text = Of("---\n" + Valid + "---\nk: [3]\n", "---\n---\n" + Valid, "%YAML 1.1\n---\n" + Valid, "%YAML 9.9\n---\n" + Valid, "%TAG ! tag:x,2000:\n---\n" + Valid, "---\n...\n", "");
                break;
            case "yaml-tabs":
                text = Of("\t" + Valid, Valid.Replace(": ", ":\t"), Valid + "k: [1,\t2]\n", Valid + "description:\n\t- a\n", Valid.Replace("\n", "\n\t"), Valid + $"{key}: \"a\tb\"\n");
                break;
            case "yaml-unicode":
            {
                var raw = Encoding.UTF8.GetBytes(Valid).ToList();
                byte[] bad = Of(new byte[] { 0xff, 0xfe }, new byte[] { 0xc0, 0xaf }, new byte[] { 0xed, 0xa0, 0x80 }, new byte[] { 0xef, 0xbb, 0xbf }, new byte[] { 0 },
                    Encoding.UTF8.GetBytes("\u202e"), Encoding.UTF8.GetBytes("\uFFFE"), new byte[] { 0xf4, 0x90, 0x80, 0x80 }, new byte[] { 0x1b, (byte)'[', (byte)'2', (byte)'J' });
                raw.InsertRange(rng.Next(raw.Count + 1), bad);
                if (rng.Next(2) == 0) raw.AddRange(Encoding.UTF8.GetBytes($"\"\\e]0;x\\a{key}\\u0000\": 1\n"));
                return (kind, raw.ToArray(), null);
            }
            case "yaml-tags":
                text = Valid + Of($"{key}: !!binary aGVsbG8=\n", $"{key}: !<tag:yaml.org,2002:python/object:os.system> ls\n", $"{key}: !!set {{a, b}}\n", $"{key}: !!omap [a: 1]\n",
                    $"{key}: !custom 1\n", $"{key}: !!int 0x10\n", $"{key}: !!float .nan\n", $"{key}: !!str\n", "description: !!null\n", $"{key}: !!timestamp 2001-12-14\n");
                break;
            case "yaml-duplicate-key":
                text = Valid + Of("k: [3]\n", "verb: knn\n", "verb: distill\n", "temperature: 1\n", "description: again\n", $"{key}: 1\n{key}: 2\n");
                break;
            case "yaml-long":
                text = Valid + Of($"{new string('k', 200_000)}: 1\n", $"{key}: {new string('9', 200_000)}\n", $"description: \"{new string('x', 1_000_000)}\"\n", $"{key}: {new string('1', 400)}\n",
                    $"{key}: |\n" + string.Concat(Enumerable.Repeat("  line\n", 20_000)));
                break;
            case "yaml-rows":
                row = Of("a", "b", "missing", "", "a#b", "[x]");
                text = Of("rows:\n  a: {k: [1]}\n  b: [1, 2]\n", "rows: {a: 1}\n", "common: [1]\nrows: {a: {k: 1}}\n", "rows:\n  ? [a]\n  : {k: 1}\n", "rows: {}\n",
                    "rows:\n  a:\n    rows: {b: {k: 1}}\n", "common: {verb: distill}\nrows: {a: {}}\n", "rows: {a: ~}\n", "rows: {a: {k: [1, {x: 2}]}}\n", "verb: knn\nrows:\n  a:\n    image-size: 28\n");
                break;
            case "yaml-root":
                text = Of("- k\n- 1\n", "just a scalar\n", "{k: [1]}\n", "", "# only a comment\n", "~\n", "[]\n", "\"quoted\"\n", "&a k: *a\n", "!!map {}\n", "%\n");
                break;
            default:
            {
                // Raw damage of the valid recipe: the shapes a truncated download or an editor's stray keystroke leave.
                var b = Encoding.UTF8.GetBytes(Valid);
                switch (rng.Next(4))
                {
                    case 0: return (kind, b[..rng.Next(b.Length)], null);
                    case 1:
                        for (int k = 0, n = 1 + rng.Next(6); k < n; k++) b[rng.Next(b.Length)] = (byte)rng.Next(256);
                        return (kind, b, null);
                    case 2:
                        for (int k = 0, n = 1 + rng.Next(6); k < n; k++) b[rng.Next(b.Length)] = (byte)"{}[]:,&*!|>'\"%@`#?-\t\n "[rng.Next(22)];
                        return (kind, b, null);
                    default:
                    {
                        int at = rng.Next(b.Length);
                        return (kind, b[..at].Concat(b[at..]).Concat(b[at..]).ToArray(), null);
                    }
                }
            }
        }
        return (kind, Encoding.UTF8.GetBytes(text), row);
    }
}
