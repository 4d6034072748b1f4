using System.CommandLine;
using AttnDistill.Evaluation;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill knn`: DINO's weighted k-NN on frozen features of any backbone checkpoint.</summary>
public static class KnnCommand
{
    public static Command Create()
    {
        var cmd = new Command("knn", "Weighted k-NN accuracy (DINO protocol, T 0.07, cosine) of a frozen backbone; writes metrics.json.");
        var config = new Option<string>(RecipeArguments.ConfigOption) { Description = "YAML recipe (keys = these option names)." };
        var data = new Option<string>("--data") { Description = "Data root with a train and a val/test split (ImageFolder, IDX, CIFAR binary).", Required = true };
        var ckpt = new Option<string>("--checkpoint") { Description = "Backbone: ours (backbone.safetensors/.pth) or a DINO/MAE/timm checkpoint.", Required = true };
        var size = TrainerOptionSet.Positive("--image-size", "Evaluation crop: resize the short side to S*256/224 (bicubic), center-crop S.", 224);
        var ks = new Option<int[]>("--k") { Description = "Neighbour counts.", DefaultValueFactory = _ => Knn.DefaultKs.ToArray(), AllowMultipleArgumentsPerToken = true };
        var batch = TrainerOptionSet.Positive("--batch-size", "Images per forward pass.", 256);
        var workers = new Option<int>("--workers") { Description = "Data loading threads.", DefaultValueFactory = _ => 2 };
        var outDir = new Option<string>("--out") { Description = "Folder for metrics.json and config.yaml.", Required = true };
        foreach (var o in new Option[] { config, data, ckpt, size, ks, batch, workers, outDir }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, _ =>
        {
            Run.PrepareOutDir(parsed.GetValue(outDir)!, parsed, null, "cpu");
            var results = KnnJob.Run(parsed.GetValue(ckpt)!, parsed.GetValue(data)!, parsed.GetValue(size), parsed.GetValue(outDir)!,
                parsed.GetValue(ks), parsed.GetValue(batch), parsed.GetValue(workers), ConsoleReporting.Info);
            ConsoleReporting.Summary("k-NN", results.Select(r => ($"k = {r.K}", $"top-1 {r.Top1:F2} %, top-5 {r.Top5:F2} %")));
            return 0;
        }));
        return cmd;
    }
}
