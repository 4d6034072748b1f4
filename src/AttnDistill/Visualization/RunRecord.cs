using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDistill.Training;
using YamlDotNet.RepresentationModel;

namespace AttnDistill.Visualization;

/// <summary>One logged training step of a run (a "train" line of log.txt).</summary>
/// <param name="Kind">The trainer that wrote it: distill, pretrain-mae, linear, finetune ...</param>
/// <param name="Epoch">Fractional epoch: epoch + (batch + 1) / batches per epoch.</param>
/// <param name="Values">loss, loss_* parts, lr, as logged (finite values only).</param>
public sealed record LogPoint(string Kind, double Epoch, IReadOnlyDictionary<string, double> Values);

/// <summary>
/// What a run folder holds for a report: config.yaml (resolved command settings), metrics.json
/// (what each command measured) and log.txt (one JSON object per logged step or epoch). Missing
/// files leave their part empty.
/// </summary>
public sealed class RunRecord
{
    RunRecord(string dir)
    {
        Dir = Path.GetFullPath(dir);
        Name = Path.GetFileName(Dir.TrimEnd(Path.DirectorySeparatorChar));
    }

    public string Dir { get; }

    /// <summary>Display name: the folder name, made unique among the runs of one report.</summary>
    public string Name { get; internal set; }

    /// <summary>Names are made unique from the folder path; a projector-layer evaluation keeps its suffix.</summary>
    string NameSuffix => Name.EndsWith(')') && Name.Contains(" (P layer ") ? Name[Name.LastIndexOf(" (P layer ", StringComparison.Ordinal)..] : "";

    /// <summary>config.yaml's scalar keys (option names without dashes) and their values as written.</summary>
    public IReadOnlyDictionary<string, string> Config { get; private init; } = new Dictionary<string, string>();

    public JsonObject Metrics { get; private init; } = new();

    public IReadOnlyList<LogPoint> Steps { get; private init; } = Array.Empty<LogPoint>();

    /// <summary>True when the run pre-trained a teacher, or another run of the report was distilled from a checkpoint in this folder.</summary>
    public bool IsTeacher { get; internal set; }

    /// <summary>The training kinds its log holds, in order of first appearance.</summary>
    public IReadOnlyList<string> Kinds => Steps.Select(s => s.Kind).Distinct().ToList();

    /// <summary>True for a distillation run with its settings (config.yaml of `attndistill distill`).</summary>
    public bool IsDistillation => Config.ContainsKey("weight-attn") || Metrics.ContainsKey("distill");

    public static RunRecord Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"run folder not found: {dir}");
        string config = Path.Combine(dir, "config.yaml"), metrics = Path.Combine(dir, "metrics.json"), log = Path.Combine(dir, "log.txt");
        return new RunRecord(dir)
        {
            Config = File.Exists(config) ? ReadConfig(config) : new Dictionary<string, string>(),
            Metrics = File.Exists(metrics) ? MetricsFile.Read(metrics) : new JsonObject(),
            Steps = File.Exists(log) ? ReadLog(log) : Array.Empty<LogPoint>(),
        };
    }

    /// <summary>
    /// The runs of the given folders: a folder with log.txt is a training run; a folder without one
    /// stands for the runs below it (a quickstart or recipe root, searched a few levels deep); a
    /// folder with only metrics.json is an evaluation run. Evaluations written into sub-folders of a
    /// training run (`knn --out RUN/knn`: their config.yaml's checkpoint lies inside RUN) are merged into
    /// that run; evaluations of other projector layers (Table 10(d)) become rows of their own. Names are
    /// made unique; teachers are marked.
    /// </summary>
    public static IReadOnlyList<RunRecord> Discover(IEnumerable<string> dirs)
    {
        var runs = new List<RunRecord>();
        foreach (string dir in dirs)
        {
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"run folder not found: {dir}");
            int before = runs.Count;
            Collect(dir, runs, depth: 0);
            if (runs.Count == before) throw new InvalidDataException($"{dir} holds no run (no log.txt or metrics.json in it or in its sub-folders).");
        }
        runs = runs.GroupBy(r => (r.Dir, r.EvalLayer)).Select(g => g.First()).ToList();
        MakeNamesUnique(runs);
        foreach (var r in runs)
        {
            r.IsTeacher = r.Metrics.ContainsKey("pretrain_mae") || r.Kinds.Contains("pretrain-mae")
                || runs.Any(o => o.Dir != r.Dir && o.Config.TryGetValue("teacher", out var t)
                    && (IsInside(t, r.Dir) || (r.EvaluatedCheckpoint is { } c && !r.IsPixelFloor && SameFile(t, c))));
        }
        // The pixel floor first, then teachers, as the figures put them.
        return runs.OrderBy(r => r.IsPixelFloor ? 0 : r.IsTeacher ? 1 : 2).ToList();
    }

    static void Collect(string dir, List<RunRecord> runs, int depth)
    {
        if (File.Exists(Path.Combine(dir, "log.txt")))
        {
            runs.AddRange(WithEvaluations(Load(dir)));
            return;
        }
        var subDirs = Directory.GetDirectories(dir).Order(StringComparer.Ordinal).ToList();
        int before = runs.Count;
        if (depth < 3)
            foreach (string sub in subDirs) Collect(sub, runs, depth + 1);
        if (runs.Count == before && File.Exists(Path.Combine(dir, "metrics.json"))) runs.Add(Load(dir));
    }

    /// <summary>The run with its evaluation sub-folders merged: one record per evaluated projector layer (layer 0 keeps the run's name and curves).</summary>
    static IEnumerable<RunRecord> WithEvaluations(RunRecord run)
    {
        var evals = Directory.GetDirectories(run.Dir).Order(StringComparer.Ordinal)
            .Where(d => File.Exists(Path.Combine(d, "metrics.json")))
            .Select(Load)
            .Where(e => e.EvaluatedCheckpoint is { } c && IsInside(c, run.Dir))
            .ToList();
        if (evals.Count == 0)
        {
            yield return run;
            yield break;
        }
        foreach (var layer in evals.GroupBy(e => e.EvalLayer).OrderBy(g => g.Key))
        {
            var metrics = (JsonObject)run.Metrics.DeepClone();
            foreach (var e in layer)
                foreach (var (k, v) in e.Metrics)
                    metrics[k] = v?.DeepClone();
            bool own = layer.Key == 0;
            yield return new RunRecord(run.Dir)
            {
                Name = own ? run.Name : $"{run.Name} (P layer {layer.Key})",
                Config = run.Config,
                Metrics = metrics,
                Steps = own ? run.Steps.Concat(layer.SelectMany(e => e.Steps)).ToList() : Array.Empty<LogPoint>(),
                EvalLayerOverride = layer.Key,
            };
        }
        if (evals.All(e => e.EvalLayer != 0)) yield return run;
    }

    /// <summary>
    /// The checkpoint an evaluation read: config.yaml's checkpoint (a CLI run), else the one
    /// knn_setup/linear_setup in metrics.json name (a job called from code, e.g. the quickstart).
    /// </summary>
    public string? EvaluatedCheckpoint =>
        Text("checkpoint") ?? Setup("knn_setup", "checkpoint") ?? Setup("linear_setup", "checkpoint");

    /// <summary>True for the pixel floor: an evaluation of `--checkpoint pixels` (the identity backbone).</summary>
    public bool IsPixelFloor => EvaluatedCheckpoint == "pixels";

    /// <summary>The evaluated data root (full path), when the run recorded it.</summary>
    public string? DataRoot => Text("data") is { } d ? Path.GetFullPath(d) : Setup("knn_setup", "data") ?? Setup("linear_setup", "data");

    /// <summary>The evaluation image size, when the run recorded it.</summary>
    public int? ImageSize => (int?)Number("image-size")
        ?? (Metrics["knn_setup"] as JsonObject is { } k ? Int(k, "image_size") : null)
        ?? (Metrics["linear_setup"] as JsonObject is { } l ? Int(l, "image_size") : null);

    string? Setup(string section, string key) => Metrics[section] is JsonObject o && o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>
    /// The pixel floor among <paramref name="runs"/> that belongs to this run: the floor of the same
    /// data root and image size; when the runs do not say, the only floor there is. Null: none.
    /// </summary>
    public RunRecord? FloorAmong(IReadOnlyList<RunRecord> runs)
    {
        if (IsPixelFloor) return null;
        var floors = runs.Where(r => r.IsPixelFloor).ToList();
        var same = floors.Where(f => (DataRoot is null || f.DataRoot is null || f.DataRoot == DataRoot)
            && (ImageSize is null || f.ImageSize is null || f.ImageSize == ImageSize)).ToList();
        return same.Count >= 1 ? same[0] : floors.Count == 1 && DataRoot is null ? floors[0] : null;
    }

    /// <summary>A config value as a number (null when absent, "null" or not a number).</summary>
    public double? Number(string key) =>
        Config.TryGetValue(key, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    /// <summary>A config value as a bool (null when absent).</summary>
    public bool? Flag(string key) => Config.TryGetValue(key, out var v) && bool.TryParse(v, out var b) ? b : null;

    /// <summary>A config value (null when absent or "null").</summary>
    public string? Text(string key) => Config.TryGetValue(key, out var v) && v != "null" ? v : null;

    /// <summary>k-NN top-1/top-5 (percent) at k = 20, or at the first k logged.</summary>
    public (int K, double Top1, double Top5)? Knn
    {
        get
        {
            if (Metrics["knn"] is not JsonArray rows || rows.Count == 0) return null;
            var entries = rows.OfType<JsonObject>().Select(o => (K: Int(o, "k") ?? 0, Top1: Num(o, "top1"), Top5: Num(o, "top5"))).ToList();
            var pick = entries.FirstOrDefault(e => e.K == 20);
            if (pick.K != 20) pick = entries[0];
            return pick.Top1 is double t1 ? (pick.K, t1, pick.Top5 ?? double.NaN) : null;
        }
    }

    /// <summary>Best linear-probe top-1/top-5 of the lr sweep (percent).</summary>
    public (double Top1, double Top5)? Linear =>
        Metrics["linear"] is JsonObject o && (o["best"] as JsonObject ?? o) is JsonObject best && Num(best, "top1") is double t1
            ? (t1, Num(best, "top5") ?? double.NaN) : null;

    /// <summary>Fine-tuning top-1/top-5 (percent).</summary>
    public (double Top1, double Top5)? Finetune =>
        Metrics["finetune"] is JsonObject o && Num(o, "top1") is double t1 ? (t1, Num(o, "top5") ?? double.NaN) : null;

    /// <summary>The projector layer whose output was evaluated (Table 10(d)); 0 = the backbone's CLS.</summary>
    public int EvalLayer => EvalLayerOverride ??
        (Config.TryGetValue("eval-layer", out var c) && int.TryParse(c, out var fromConfig) ? (int?)fromConfig : null)
        ?? (Metrics["linear_setup"] as JsonObject is { } l ? Int(l, "eval_layer") : null)
        ?? (Metrics["knn_setup"] as JsonObject is { } k ? Int(k, "eval_layer") : null) ?? 0;

    int? EvalLayerOverride { get; init; }

    /// <summary>The last epoch's mean training loss of the given kind (from the epoch lines), or the run's final_loss in metrics.json.</summary>
    public double? FinalLoss
    {
        get
        {
            foreach (string key in new[] { "distill", "pretrain_mae", "finetune" })
                if (Metrics[key] is JsonObject o && o["final_loss"] is JsonObject f && Num(f, "loss") is double l) return l;
            return null;
        }
    }

    /// <summary>Epochs trained (from metrics.json).</summary>
    public int? Epochs
    {
        get
        {
            foreach (string key in new[] { "distill", "pretrain_mae", "finetune" })
                if (Metrics[key] is JsonObject o && Int(o, "epochs") is int e) return e;
            return null;
        }
    }

    static double? Num(JsonObject o, string key)
    {
        var node = o[key];
        if (node is null) return null;
        try
        {
            return node.GetValueKind() switch
            {
                JsonValueKind.Number => node.GetValue<double>(),
                JsonValueKind.String => double.TryParse(node.GetValue<string>(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
                _ => null,
            };
        }
        catch (FormatException) { return null; }
    }

    static int? Int(JsonObject o, string key) => Num(o, key) is double d ? (int)d : null;

    static Dictionary<string, string> ReadConfig(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var stream = new YamlStream();
        try
        {
            using var reader = File.OpenText(path);
            stream.Load(reader);
        }
        catch (Exception ex) when (AttnDistill.Runs.YamlParserFailure.Is(ex))
        {
            throw new InvalidDataException($"{path} is not valid YAML: {TerminalText.Safe(ex.Message, 300)}");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode map) return result;
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode key || key.Value is null) continue;
            result[key.Value] = v switch
            {
                YamlScalarNode s => s.Value ?? "null",
                YamlSequenceNode seq => string.Join(",", seq.Children.OfType<YamlScalarNode>().Select(c => c.Value)),
                _ => "",
            };
        }
        return result;
    }

    static List<LogPoint> ReadLog(string path)
    {
        var lines = new List<(string Kind, int Epoch, int Batch, Dictionary<string, double> Values)>();
        foreach (string line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject? o;
            try { o = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { continue; }                                   // a torn last line of a killed run
            if (o is null || Int(o, "batch") is not int batch || Int(o, "epoch") is not int epoch) continue;
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (k, _) in o)
                if (k is "lr" or "loss" || k.StartsWith("loss_", StringComparison.Ordinal))
                    if (Num(o, k) is double d && double.IsFinite(d)) values[k] = d;
            lines.Add((o["kind"]?.ToString() ?? "train", epoch, batch, values));
        }
        // Batches per epoch of each kind: the last batch of every epoch is logged.
        var perEpoch = lines.GroupBy(l => (l.Kind, l.Epoch)).ToDictionary(g => g.Key, g => g.Max(l => l.Batch) + 1);
        return lines.Select(l => new LogPoint(l.Kind, l.Epoch + (l.Batch + 1.0) / perEpoch[(l.Kind, l.Epoch)], l.Values)).ToList();
    }

    static bool IsInside(string file, string dir)
    {
        string full = Path.GetFullPath(file);
        string prefix = dir.EndsWith(Path.DirectorySeparatorChar) ? dir : dir + Path.DirectorySeparatorChar;
        return full.StartsWith(prefix, StringComparison.Ordinal);
    }

    static bool SameFile(string a, string b) => Path.GetFullPath(a) == Path.GetFullPath(b);

    static void MakeNamesUnique(List<RunRecord> runs)
    {
        // Add parent folders until every name is unique (seed-1/row vs seed-2/row).
        for (int depth = 2; depth < 8 && runs.GroupBy(r => r.Name).Any(g => g.Count() > 1); depth++)
            foreach (var g in runs.GroupBy(r => r.Name).Where(g => g.Count() > 1).ToList())
                foreach (var r in g)
                    r.Name = string.Join("/", r.Dir.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).TakeLast(depth)) + r.NameSuffix;
    }
}
