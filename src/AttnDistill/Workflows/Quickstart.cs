using AttnDistill.Checkpoints;
using System.Diagnostics;
using System.Globalization;
using AttnDistill.Distillation;
using AttnDistill.Evaluation;
using AttnDistill.Models;
using AttnDistill.Pretraining;
using AttnDistill.Runs;
using AttnDistill.Training;
using AttnDistill.Visualization;

namespace AttnDistill.Workflows;

/// <summary>Settings of the quickstart: the defaults are the README's first command; tests shrink the models and schedules.</summary>
public sealed record QuickstartConfig
{
    public required string DataRoot { get; init; }
    /// <summary>Epochs of each student (and of a pre-trained teacher unless <see cref="TeacherEpochs"/>).</summary>
    public int Epochs { get; init; } = 4;
    public int? TeacherEpochs { get; init; }
    public int Seed { get; init; }
    /// <summary>A teacher checkpoint to distill from (--teacher); null: the committed reference teacher, else one pre-trained here.</summary>
    public string? Teacher { get; init; }
    /// <summary>Pre-train the teacher even when a reference teacher is committed (--train-teacher).</summary>
    public bool TrainTeacher { get; init; }
    /// <summary>Where committed reference teachers are looked for; null: ./models, then models/ above the program.</summary>
    public string? ModelsDir { get; init; }
    public int TeacherDim { get; init; } = 96;
    public int TeacherDepth { get; init; } = 4;
    public int StudentDim { get; init; } = 48;
    public int StudentDepth { get; init; } = 4;
    public int BatchSize { get; init; } = 128;
    public int LinearEpochs { get; init; } = 20;
    public IReadOnlyList<double> LinearBaseLrs { get; init; } = new[] { 1.0, 10.0, 100.0 };
    public int KnnK { get; init; } = 20;
    public int Workers { get; init; } = 2;
}

/// <summary>One evaluated model of the summary table (percent).</summary>
public sealed record QuickstartRow(string Name, string Checkpoint, double KnnTop1, double KnnTop5, double LinearTop1, double LinearTop5, double LinearBaseLr);

/// <summary>What the quickstart produced; <see cref="Interrupted"/> names the stage after which it stopped.</summary>
public sealed record QuickstartResult(IReadOnlyList<QuickstartRow> Rows, IReadOnlyList<(string Stage, double Seconds)> Timings,
    double[] MeanKlToTeacher, int Panels, string ReportPath, string TeacherSource, string? Interrupted);

/// <summary>
/// The whole method, small, on a real data set: a teacher (given, the committed reference teacher,
/// or an MAE pre-trained here), a feature-only student (lambda 0) and an AttnDistill student
/// (lambda 0.1), each evaluated by k-NN and a linear probe on cached features next to the pixel
/// floor (the same protocols on the raw normalized pixels), attention panels, then the report.
/// Every stage is timed (metrics.json "quickstart_timings").
/// </summary>
public static class Quickstart
{
    public const string PixelFloorName = "pixel floor (raw normalized pixels)";

    /// <summary>Every sub-run (teacher, students, evaluations, pictures) runs in a sub-folder of the context's folder, on its device.</summary>
    public static QuickstartResult Run(QuickstartConfig cfg, RunContext ctx)
    {
        var stop = ctx.Stop;
        void Info(string message) => ctx.Log?.Invoke(message);
        RunContext Sub(string dir, string job) => ctx with { OutDir = dir, ConfigText = $"# attndistill quickstart: {job}\n", Progress = ctx.Progress.ForJob(job) };
        if (cfg.Epochs <= 0) throw new ArgumentException($"--epochs must be positive, got {cfg.Epochs}.");
        if (cfg.Teacher is { } given && !File.Exists(given)) throw new FileNotFoundException($"--teacher {given}: no such file; give a teacher checkpoint (.safetensors/.pth) or leave --teacher out to use the reference teacher or pre-train one.", given);
        if (cfg.Teacher is not null && cfg.TrainTeacher) throw new ArgumentException("--teacher and --train-teacher exclude each other: give one.");
        string outRoot = Path.GetFullPath(ctx.OutDir);
        Directory.CreateDirectory(outRoot);
        var probe = Data.DatasetFactory.Open(cfg.DataRoot, Data.DataSplit.Train);
        // Fashion-MNIST (28 px) uses patch 4 for the teacher and 7 for the students; CIFAR-10 (32 px) 4 and 8.
        int size = probe.Count > 0 && probe.Load(0).Width == 28 ? 28 : 32;
        int studentPatch = size == 28 ? 7 : 8;
        Info($"data: {cfg.DataRoot} ({probe.Count} training images), image size {size}");
        var timings = new List<(string Stage, double Seconds)>();
        T Timed<T>(string stage, Func<T> work)
        {
            var watch = Stopwatch.StartNew();
            var result = work();
            timings.Add((stage, watch.Elapsed.TotalSeconds));
            return result;
        }
        QuickstartResult Stopped(string after, List<QuickstartRow> rows) => new(rows, timings, Array.Empty<double>(), 0, "", "", after);
        var total = Stopwatch.StartNew();

        // Each sub-run's config.yaml holds the option names `report` parses (attndistill distill's keys).
        string SubRun(string name, IEnumerable<(string Key, object Value)> settings)
        {
            string dir = Path.Combine(outRoot, name);
            Directory.CreateDirectory(dir);
            var lines = settings.Concat(new (string, object)[] { ("seed", cfg.Seed), ("image-size", size) })
                .Select(kv => $"{kv.Item1}: {Convert.ToString(kv.Item2, CultureInfo.InvariantCulture)}");
            AtomicFile.WriteAllText(Path.Combine(dir, "config.yaml"), $"# attndistill quickstart: {name}\n{string.Join("\n", lines)}\n");
            return dir;
        }

        // The teacher: --teacher FILE, else the committed reference teacher, else pre-trained here.
        string? reference = cfg.Teacher is null && !cfg.TrainTeacher ? ReferenceTeacher(size, cfg.ModelsDir) : null;
        string teacherPath, teacherName, teacherSource;
        string? teacherRun = null;
        if ((cfg.Teacher ?? reference) is not null)
        {
            teacherPath = Path.GetFullPath(cfg.Teacher ?? reference!);
            teacherSource = cfg.Teacher is not null ? "given (--teacher)" : "committed reference teacher";
            teacherName = $"teacher {Path.GetFileName(teacherPath)}";
            Info($"teacher: {teacherPath} ({teacherSource}); no pre-training");
        }
        else
        {
            int teacherEpochs = cfg.TeacherEpochs ?? cfg.Epochs;
            var teacherVit = new VitConfig { ImageSize = size, PatchSize = 4, EmbedDim = cfg.TeacherDim, Depth = cfg.TeacherDepth, NumHeads = 3, PosEmbed = PosEmbedKind.SinCos };
            teacherRun = SubRun("teacher", new (string, object)[]
            {
                ("model-depth", cfg.TeacherDepth), ("model-dim", cfg.TeacherDim), ("model-heads", 3), ("model-patch", 4), ("mask-ratio", 0.75), ("epochs", teacherEpochs),
            });
            var mae = Timed("teacher pre-training (MAE)", () => MaePretrainJob.Run(new MaePretrainJobConfig
            {
                DataRoot = cfg.DataRoot, Mae = MaeConfig.For(teacherVit), Workers = cfg.Workers,
                Trainer = new TrainerOptions { Epochs = teacherEpochs, WarmupEpochs = 1, BatchSize = cfg.BatchSize, Lr = 1.5e-3, Seed = cfg.Seed, LogEverySteps = 50 },
            }, Sub(teacherRun, "MAE teacher")));
            if (stop.IsCancellationRequested) return Stopped("the teacher", new());
            teacherPath = mae.TeacherPath;
            teacherSource = "MAE pre-trained here";
            teacherName = $"MAE teacher (ViT {cfg.TeacherDepth}x{cfg.TeacherDim}, patch 4)";
        }

        var models = new List<(string Name, string Checkpoint, string EvalDir)> { (teacherName, teacherPath, teacherRun ?? Path.Combine(outRoot, "teacher")) };
        foreach (var lambda in new[] { 0.0, 0.1 })
        {
            string name = lambda == 0 ? "student, features only (lambda 0)" : "student, AttnDistill (lambda 0.1)";
            var student = new VitConfig { ImageSize = size, PatchSize = studentPatch, EmbedDim = cfg.StudentDim, Depth = cfg.StudentDepth, NumHeads = 3, PosEmbed = PosEmbedKind.SinCos };
            string dir = SubRun(lambda == 0 ? "student-lambda0" : "student-lambda0.1", new (string, object)[]
            {
                ("teacher", teacherPath), ("student-depth", cfg.StudentDepth), ("student-heads", 3), ("student-patch", studentPatch), ("student-dim", cfg.StudentDim),
                ("proj-layers", 2), ("weight-attn", lambda), ("attn-T", 10), ("aggregation", "product"), ("epochs", cfg.Epochs),
            });
            var result = Timed($"distill {name}", () => DistillJob.Run(new DistillJobConfig
            {
                DataRoot = cfg.DataRoot, TeacherPath = teacherPath, Student = student, ProjectorLayers = 2, Workers = cfg.Workers,
                Loss = new DistillLossOptions { WeightAttn = lambda, AttnTemperature = 10 },
                Trainer = new TrainerOptions { Epochs = cfg.Epochs, WarmupEpochs = 1, BatchSize = cfg.BatchSize, Lr = 1e-3, Seed = cfg.Seed, LogEverySteps = 50 },
            }, Sub(dir, name)));
            if (stop.IsCancellationRequested) return Stopped(name, new());
            models.Add((name, result.BackboneSafetensors, dir));
        }

        // The floor first: the same two protocols on the pixels themselves (not cached: a pixel
        // feature is 3*S*S wide, and decoding is cheaper than the cache file).
        models.Insert(0, (PixelFloorName, EvaluatedBackbone.Pixels, Path.Combine(outRoot, "pixels")));
        var rows = new List<QuickstartRow>();
        string cache = Path.Combine(outRoot, "feature-cache");      // k-NN and the probe share one feature pass
        foreach (var (name, ckpt, evalDir) in models)
        {
            // A training run keeps its evaluations in RUN/knn and RUN/linear; the floor and a given teacher are evaluation runs themselves.
            bool trained = File.Exists(Path.Combine(evalDir, "log.txt"));
            string knnDir = trained ? Path.Combine(evalDir, "knn") : evalDir, linearDir = trained ? Path.Combine(evalDir, "linear") : evalDir;
            string? cacheDir = EvaluatedBackbone.IsPixels(ckpt) ? null : cache;
            var knn = Timed($"k-NN {name}", () => KnnJob.Run(new KnnJobConfig
            {
                Checkpoint = ckpt, DataRoot = cfg.DataRoot, ImageSize = size, Ks = new[] { cfg.KnnK },
                FeatureCacheDir = cacheDir, Workers = cfg.Workers,
            }, Sub(knnDir, $"k-NN {name}")));
            if (stop.IsCancellationRequested) return Stopped($"k-NN {name}", rows);
            var linear = Timed($"linear probe {name}", () => LinearJob.Run(new LinearJobConfig
            {
                Checkpoint = ckpt, DataRoot = cfg.DataRoot, ImageSize = size, Augment = false, FeatureCacheDir = cacheDir,
                Workers = cfg.Workers,
                Trainer = new TrainerOptions { Epochs = cfg.LinearEpochs, WarmupEpochs = Math.Min(2, cfg.LinearEpochs - 1), BatchSize = 256, Seed = cfg.Seed },
                BaseLrs = cfg.LinearBaseLrs,
            }, Sub(linearDir, $"linear probe {name}")));
            if (stop.IsCancellationRequested) return Stopped($"linear probe {name}", rows);
            rows.Add(new QuickstartRow(name, ckpt, knn[0].Top1, knn[0].Top5, linear.Best.Top1, linear.Best.Top5, linear.Best.BaseLr));
        }

        // Figures 9-11 for one test image of every class, then the report (tables and plots).
        var students = models.Skip(2).ToList();
        var panels = Timed("attention panels", () => AttentionPanels.Render(new NamedCheckpoint("teacher", teacherPath),
            students.Select(r => new NamedCheckpoint(r.Name.Contains("lambda 0)") ? "lambda 0" : "AttnDistill", r.Checkpoint)).ToList(),
            AttentionPanels.PerClass(cfg.DataRoot, 1), Sub(Path.Combine(outRoot, "attention"), "attention panels"),
            new AttentionPanelOptions { Loss = new DistillLossOptions { AttnTemperature = 10 }, ImageSize = size }));
        var meanKl = Enumerable.Range(0, students.Count).Select(i => panels.Count == 0 ? double.NaN : panels.Average(p => p.KlToTeacher[i])).ToArray();
        // The run folders of the table (floor, teacher, students): report reads their evaluations from DIR/knn and DIR/linear.
        var report = Timed("report", () => RunReport.Write(models.Select(m => m.EvalDir), Path.Combine(outRoot, "report"), ctx.Log));
        timings.Add(("total", total.Elapsed.TotalSeconds));
        if (ctx.IsMain)
        {
            string metrics = Path.Combine(outRoot, "metrics.json");
            MetricsFile.Merge(metrics, "quickstart", rows.Select(r => new
            {
                model = r.Name, checkpoint = r.Checkpoint, knn_k20_top1 = r.KnnTop1, knn_k20_top5 = r.KnnTop5,
                linear_top1 = r.LinearTop1, linear_top5 = r.LinearTop5, linear_base_lr = r.LinearBaseLr,
            }).ToArray());
            MetricsFile.Merge(metrics, "quickstart_teacher", new Dictionary<string, object> { ["path"] = teacherPath, ["source"] = teacherSource });
            MetricsFile.Merge(metrics, "quickstart_timings", timings.ToDictionary(t => t.Stage, t => (object)Math.Round(t.Seconds, 1)));
        }
        ctx.RecordRun("quickstart");
        return new QuickstartResult(rows, timings, meanKl, panels.Count, report.MarkdownPath, teacherSource, null);
    }

    /// <summary>
    /// The committed reference teacher for this image size, if any: models/fashion-mnist-dino-*.safetensors
    /// for 28 px (Fashion-MNIST), models/cifar10-dino-*.safetensors for 32 px, in <paramref name="modelsDir"/>,
    /// else ./models, else a models/ folder above the program (a source checkout).
    /// </summary>
    public static string? ReferenceTeacher(int imageSize, string? modelsDir = null)
    {
        string pattern = imageSize == 28 ? "fashion-mnist-dino-*.safetensors" : "cifar10-dino-*.safetensors";
        IEnumerable<string> Candidates()
        {
            if (modelsDir is not null) { yield return modelsDir; yield break; }
            yield return Path.Combine(Directory.GetCurrentDirectory(), "models");
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent) yield return Path.Combine(d.FullName, "models");
        }
        foreach (string dir in Candidates())
            if (Directory.Exists(dir) && Directory.GetFiles(dir, pattern).Order(StringComparer.Ordinal).FirstOrDefault() is { } found) return found;
        return null;
    }
}
