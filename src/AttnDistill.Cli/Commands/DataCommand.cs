using System.CommandLine;
using AttnDistill.Data;
using AttnDistill.Evaluation;
using Spectre.Console;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill data inspect|pack|subset`: look at a data set before training on it; pack it into LMDB; write label subsets.</summary>
public static class DataCommand
{
    public static Command Create()
    {
        var cmd = new Command("data", "Inspect a data set (format, classes, counts, image sizes, unreadable files), pack an ImageFolder into LMDB, or write a semi-supervised label subset.");
        cmd.Subcommands.Add(Inspect());
        cmd.Subcommands.Add(Pack());
        cmd.Subcommands.Add(Subset());
        return cmd;
    }

    static Command Inspect()
    {
        var cmd = new Command("inspect", "Print the format found, the classes, image counts per split and class, image size statistics and the unreadable files.");
        var data = new Option<string>("--data") { Description = "Data root (ImageFolder with train/ and val/ or test/, IDX, CIFAR binary).", Required = true };
        var classes = new Option<string?>("--class-list") { Description = "ImageFolder: a file of class folder names (one a line) selecting classes (ImageNet-Subset)." };
        var full = new Option<bool>("--full-decode") { Description = "Decode every image (finds truncated files; slower) instead of reading headers." };
        var perClass = new Option<bool>("--per-class") { Description = "Print the image count of every class (default: the first and last few)." };
        var threads = TrainerOptionSet.Positive("--threads", "Threads reading images.", Environment.ProcessorCount);
        foreach (var o in new Option[] { data, classes, full, perClass, threads }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, _ =>
        {
            var report = DatasetInspector.Inspect(parsed.GetValue(data)!, new InspectOptions
            {
                FullDecode = parsed.GetValue(full), ClassListPath = parsed.GetValue(classes), Threads = parsed.GetValue(threads),
            });
            Print(report, parsed.GetValue(perClass));
            if (report.Splits.Any(s => s.Count > s.UnreadableCount)) return 0;
            ConsoleReporting.Error($"--data {parsed.GetValue(data)}: no split holds a readable image ({string.Join(", ", report.Splits.Select(s => $"{s.Split}: {s.UnreadableCount} of {s.Count} unreadable"))}).");
            return 2;
        }));
        return cmd;
    }

    static void Print(DatasetReport report, bool allClasses)
    {
        AnsiConsole.MarkupLineInterpolated($"[bold]{TerminalText.Safe(report.Root)}[/]: {report.Format}");
        var table = new Table().AddColumn("split").AddColumn("source").AddColumn("readable").AddColumn("classes")
            .AddColumn("width (min/mean/max)").AddColumn("height (min/mean/max)").AddColumn("unreadable");
        foreach (var s in report.Splits)
        {
            string w = s.Sizes is { } z ? $"{z.MinWidth} / {z.MeanWidth:F0} / {z.MaxWidth}" : "-";
            string h = s.Sizes is { } y ? $"{y.MinHeight} / {y.MeanHeight:F0} / {y.MaxHeight}" : "-";
            table.AddRow(s.Split.ToString(), Markup.Escape(TerminalText.Safe(s.Source)), s.ReadableCount.ToString(), s.ClassNames.Count.ToString(), w, h, s.UnreadableCount.ToString());
        }
        AnsiConsole.Write(table);
        foreach (var s in report.Splits)
        {
            var counts = new Table().Title($"{s.Split}: files per class").AddColumn("class").AddColumn("files");
            var rows = Enumerable.Range(0, s.ClassNames.Count).ToList();
            if (!allClasses && rows.Count > 12) rows = rows.Take(6).Concat(rows.TakeLast(6)).ToList();
            int previous = -1;
            foreach (int c in rows)
            {
                if (previous >= 0 && c != previous + 1) counts.AddRow("...", $"({s.ClassNames.Count - 12} more; --per-class shows all)");
                counts.AddRow(Markup.Escape(TerminalText.Safe(s.ClassNames[c])), s.CountsPerClass[c].ToString());
                previous = c;
            }
            if (s.ClassNames.Count > 0)
                counts.AddRow("[grey]min / max[/]", $"{s.CountsPerClass.Min()} / {s.CountsPerClass.Max()}");
            AnsiConsole.Write(counts);
            foreach (var name in s.FirstUnreadable)
                AnsiConsole.MarkupLineInterpolated($"[yellow]unreadable[/] ({s.Split}): {TerminalText.Safe(name)}");
            if (s.IgnoredImageFiles > 0)
                AnsiConsole.MarkupLineInterpolated($"[yellow]{s.IgnoredImageFiles} .gif file(s) not used[/] ({s.Split}): torchvision's ImageFolder does not list GIFs either; convert them to PNG to use them");
            if (s.UnreadableCount > s.FirstUnreadable.Count)
                AnsiConsole.MarkupLineInterpolated($"[yellow]... and {s.UnreadableCount - s.FirstUnreadable.Count} more unreadable in {s.Split}[/]");
        }
    }

    static Command Pack()
    {
        var cmd = new Command("pack", "Pack an ImageFolder's train/ and val/ (or test/) into OUT/train.lmdb and OUT/val.lmdb (the authors' --lmdb layout, "
            + "readable by their folder2lmdb.py loader); then train with --data OUT. Encoded bytes are stored as they are; unreadable files are skipped and named.");
        var data = new Option<string>("--data") { Description = "ImageFolder root (ROOT/train/<class>/<image>, ROOT/val/... or ROOT/test/...).", Required = true };
        var outDir = new Option<string>("--out") { Description = "Folder to write train.lmdb and val.lmdb into; existing packs there are never overwritten.", Required = true };
        var classes = new Option<string?>("--class-list") { Description = "A file of class folder names (one a line): pack only these classes (ImageNet-Subset)." };
        var threads = TrainerOptionSet.Positive("--threads", "Threads reading and checking files.", Environment.ProcessorCount);
        foreach (var o in new Option[] { data, outDir, classes, threads }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string root = parsed.GetValue(data)!, dir = parsed.GetValue(outDir)!;
            var found = DatasetFactory.Detect(root);
            if (found is not { Format: DataFormat.ImageFolder })
                throw new ArgumentException($"--data {root}: `data pack` reads ImageFolder layouts (ROOT/train/<class>/<image>); found {found?.Format.ToString() ?? "no known layout"}");
            var jobs = new List<(DataSplit Split, ImageFolderDataset Source, string Target)>();
            foreach (var split in new[] { DataSplit.Train, DataSplit.Val })
            {
                ImageFolderDataset source;
                try { source = (ImageFolderDataset)DatasetFactory.Open(root, split, parsed.GetValue(classes)); }
                catch (DirectoryNotFoundException) { continue; }   // that split is absent
                jobs.Add((split, source, Path.Combine(dir, split == DataSplit.Train ? "train.lmdb" : Path.GetFileName(source.Root) + ".lmdb")));
            }
            // Refuse before writing anything, rather than after packing the first split.
            foreach (var job in jobs)
                if (File.Exists(job.Target) || Directory.Exists(job.Target))
                    throw new IOException($"{job.Target} exists: remove it or pack into another --out (an existing pack is never overwritten)");
            Directory.CreateDirectory(dir);
            var rows = new List<(string, string)>();
            foreach (var (split, source, target) in jobs)
            {
                var result = ConsoleReporting.WithProgress($"pack {split.ToString().ToLowerInvariant()}", AttnDistill.Runs.RunContext.Cpu(dir), c =>
                    LmdbPacker.Pack(source, target, done => c.Progress.Stage("files", done, source.Count), parsed.GetValue(threads), stop));
                foreach (string name in result.Skipped.Take(5)) ConsoleReporting.Info($"skipped (not a readable image): {name}");
                if (result.Skipped.Count > 5) ConsoleReporting.Info($"... and {result.Skipped.Count - 5} more skipped");
                rows.Add((Path.GetFileName(target), $"{result.Images} images, {source.ClassNames.Count} classes, {result.Bytes / 1e6:F1} MB of encoded images, {result.Skipped.Count} skipped"));
            }
            rows.Add(("use it", $"--data {dir}"));
            ConsoleReporting.Summary("LMDB pack", rows);
            return 0;
        }));
        return cmd;
    }

    static Command Subset()
    {
        var cmd = new Command("subset", "Write a class-balanced, seeded label subset of the training split (1 % / 10 %) as a file list that --label-file reads (SimCLR's format: one image name per line).");
        var data = new Option<string>("--data") { Description = "Data root.", Required = true };
        var fraction = new Option<double>("--fraction") { Description = "Fraction of every class to keep, in (0, 1] (0.01 or 0.1 in the paper).", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the draw.", DefaultValueFactory = _ => 0 };
        var outFile = new Option<string>("--out") { Description = "The list file to write.", Required = true };
        foreach (var o in new Option[] { data, fraction, seed, outFile }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, _ =>
        {
            var selection = new LabelSelection { Fraction = parsed.GetValue(fraction), Seed = parsed.GetValue(seed) }.Validate();
            var train = DatasetFactory.Open(parsed.GetValue(data)!, DataSplit.Train);
            var indices = selection.Indices(train)!;
            string path = parsed.GetValue(outFile)!;
            if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
            LabelSubsets.WriteFileList(train, indices, path);
            ConsoleReporting.Summary("label subset", new[]
            {
                ("images", $"{indices.Length} of {train.Count} ({selection.Describe()})"),
                ("classes", $"{indices.Select(train.Label).Distinct().Count()} of {train.ClassNames.Count}"),
                ("file", path),
            });
            return 0;
        }));
        return cmd;
    }
}
