using System.CommandLine;
using AttnDistill.Data;
using AttnDistill.Distillation;
using AttnDistill.Visualization;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill visualize`: attention panels of a teacher and its students (supplement Figures 9-11).</summary>
public static class VisualizeCommand
{
    public static Command Create()
    {
        var cmd = new Command("visualize", "Attention pictures (supplement Figures 9-11): per image the teacher's and each student's aggregated and per-head CLS attention over the image, with each student's KL to the teacher; an index page over all.");
        var config = new Option<string>(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names)." };
        var teacher = new Option<string>("--teacher") { Description = "Teacher checkpoint (ours, DINO, MAE, timm ...) or a zoo name (dino_vits16, ...: downloaded once into the torch.hub cache).", Required = true };
        var teacherName = new Option<string?>("--teacher-name") { Description = "Title of the teacher row (default: the checkpoint's folder name)." };
        var teacherHeads = new Option<int?>("--teacher-heads") { Description = "Teacher heads when its checkpoint carries no config and its width is not a named size." };
        var students = new Option<string[]>("--student") { Description = "NAME=CHECKPOINT of a student (repeat for several; NAME titles its row).", Required = true, AllowMultipleArgumentsPerToken = true };
        var images = new Option<string[]>("--images") { Description = "Image files and/or folders (searched recursively); with --per-class: one data set root.", Required = true, AllowMultipleArgumentsPerToken = true };
        var perClass = new Option<int?>("--per-class") { Description = "Draw the first K images of every class of the data set at --images (the authors' gallery: 10 per class)." };
        var split = new Option<DataSplit>("--split") { Description = "Split of the data set for --per-class: train or val (val/ or test/ folder).", DefaultValueFactory = _ => DataSplit.Val };
        var outDir = new Option<string>("--out") { Description = "Folder for the PNGs / .npy files, kl.csv, index.html and index.md.", Required = true };
        var size = new Option<int?>("--image-size") { Description = "Input size of every model (resize S*256/224, center crop S); default: the teacher checkpoint's." };
        var tile = new Option<int?>("--tile-size") { Description = "Tile edge in pixels (default: the image size, enlarged to >= 128 px for small images)." };
        var upsample = new Option<HeatmapUpsampling>("--upsample") { Description = "How maps are enlarged to the image: bicubic or nearest.", DefaultValueFactory = _ => HeatmapUpsampling.Bicubic };
        var alpha = new Option<double>("--alpha") { Description = "Opacity of the heat map over the image, 0..1.", DefaultValueFactory = _ => 0.55 };
        var colormap = new Option<string>("--colormap") { Description = $"ScottPlot colour map: {string.Join(", ", HeatmapColors.Names)}.", DefaultValueFactory = _ => HeatmapColors.DefaultName };
        var format = new Option<AttentionOutputFormat>("--format") { Description = "png (panels), npy (raw maps as .npy v1.0: per model heads (h, 1+N) and aggregated (1+N), CLS first) or both.", DefaultValueFactory = _ => AttentionOutputFormat.Png };
        var agg = new Option<AttentionAggregation>("--aggregation") { Description = "Head aggregation of the AGGR maps, as in training: product, max, mean, min.", DefaultValueFactory = _ => AttentionAggregation.Product };
        var temp = new Option<double>("--attn-T") { Description = "T of the aggregation softmax, as in training (paper 10).", DefaultValueFactory = _ => 10 };
        var interp = new Option<bool>("--interpolate") { Description = "Bicubic-resize the teacher's map to a student's grid for the KL, as in training.", DefaultValueFactory = _ => true };
        var byValue = new Option<bool>("--weight-by-value") { Description = "Weight attention by value norms before aggregating (if the students were trained so)." };
        var batch = TrainerOptionSet.Positive("--batch-size", "Images per forward pass.", 32);
        var device = Run.DeviceOption();
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        foreach (var o in new Option[] { config, teacher, teacherName, teacherHeads, students, images, perClass, split, outDir, size, tile, upsample, alpha, colormap, format, agg, temp, interp, byValue, batch, device, threads })
            cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string teacherPath = ZooDownloads.Resolve(parsed.GetValue(teacher)!, "--teacher", stop);
            var studentList = parsed.GetValue(students)!.Select(ParseStudent).ToList();
            var imageArgs = parsed.GetValue(images)!;
            IReadOnlyList<PanelImage> list;
            if (parsed.GetValue(perClass) is int k)
            {
                if (imageArgs.Length != 1) throw new ArgumentException("--per-class takes one data set root in --images.");
                list = AttentionPanels.PerClass(imageArgs[0], k, parsed.GetValue(split));
            }
            else
            {
                list = AttentionPanels.FromFiles(imageArgs);
            }
            var options = new AttentionPanelOptions
            {
                Loss = new DistillLossOptions
                {
                    Aggregation = parsed.GetValue(agg), AttnTemperature = parsed.GetValue(temp),
                    Interpolate = parsed.GetValue(interp), WeightByValue = parsed.GetValue(byValue),
                },
                ImageSize = parsed.GetValue(size), TileSize = parsed.GetValue(tile), Upsampling = parsed.GetValue(upsample),
                Alpha = parsed.GetValue(alpha), Colormap = parsed.GetValue(colormap)!, Format = parsed.GetValue(format),
                BatchSize = parsed.GetValue(batch),
            }.Validate();
            string outPath = parsed.GetValue(outDir)!;
            var context = Run.Context(parsed, outPath, parsed.GetValue(device)!, parsed.GetValue(threads), stop);
            var teacherEntry = new NamedCheckpoint(parsed.GetValue(teacherName) ?? DefaultName(teacherPath), teacherPath, parsed.GetValue(teacherHeads));
            var results = AttentionPanels.Render(teacherEntry, studentList, list, context, options);
            var rows = new List<(string, string)> { ("images", results.Count.ToString()) };
            for (int j = 0; j < studentList.Count; j++)
                rows.Add(($"mean KL {studentList[j].Name}", AttentionPanel.FormatKl(results.Count == 0 ? double.NaN : results.Average(r => r.KlToTeacher[j]))));
            rows.Add(("index", Path.Combine(outPath, "index.html")));
            ConsoleReporting.Summary("attention pictures", rows);
            return 0;
        }));
        return cmd;
    }

    /// <summary>NAME=CHECKPOINT, or a bare checkpoint named after its folder.</summary>
    public static NamedCheckpoint ParseStudent(string value)
    {
        int eq = value.IndexOf('=');
        if (eq == 0 || eq == value.Length - 1) throw new ArgumentException($"--student {value}: expected NAME=CHECKPOINT.");
        return eq > 0 ? new NamedCheckpoint(value[..eq], value[(eq + 1)..]) : new NamedCheckpoint(DefaultName(value), value);
    }

    static string DefaultName(string checkpoint) =>
        Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(checkpoint))) is { Length: > 0 } dir ? dir : Path.GetFileNameWithoutExtension(checkpoint);
}
