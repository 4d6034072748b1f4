using System.CommandLine;
using AttnDistill.Evaluation;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill knn`: DINO's weighted k-NN on frozen features of any backbone checkpoint.</summary>
public static class KnnCommand
{
    public static Command Create()
    {
        var cmd = new Command("knn", "Weighted k-NN accuracy (DINO protocol, T 0.07, cosine) of a frozen backbone; writes metrics.json.");
        var eval = new EvaluationOptionSet(evalLayer: true);
        eval.AddTo(cmd);
        var ks = new NumberListOption<int>("--k", "Neighbour counts:", Knn.DefaultKs.ToArray());
        var temperature = TrainerOptionSet.PositiveDouble("--temperature", "T of the vote weights exp(cos / T) (DINO: 0.07).", Knn.DefaultTemperature);
        var batch = TrainerOptionSet.Positive("--batch-size", "Images per forward pass.", 256);
        var workers = TrainerOptionSet.WorkerCount("--workers", "Data loading threads.");
        var cache = EvaluationOptionSet.FeatureCacheOption();
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)." };
        var outDir = new Option<string>("--out") { Description = "Folder for metrics.json and config.yaml.", Required = true };
        var device = Run.DeviceOption();
        foreach (var o in new Option[] { ks, temperature, batch, workers, cache, threads, outDir, device }) cmd.Options.Add(o);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, stop =>
        {
            string output = parsed.GetValue(outDir)!;
            var job = new KnnJobConfig
            {
                Checkpoint = ZooDownloads.Resolve(parsed.GetValue(eval.Checkpoint)!, "--checkpoint", stop), DataRoot = parsed.GetValue(eval.Data)!,
                ImageSize = parsed.GetValue(eval.ImageSize), Ks = ks.Read(parsed), Temperature = parsed.GetValue(temperature),
                BatchSize = parsed.GetValue(batch), Workers = parsed.GetValue(workers), Labels = eval.Labels(parsed),
                EvalLayer = eval.EvalLayer(parsed), PosEmbedResample = eval.Resampling(parsed), FeatureCacheDir = EvaluationOptionSet.FeatureCacheDir(parsed, cache, output),
            };
            var context = Run.Context(parsed, output, parsed.GetValue(device)!, parsed.GetValue(threads), stop);
            var results = ConsoleReporting.WithProgress("k-NN", context, c => KnnJob.Run(job, c));
            ConsoleReporting.Summary($"k-NN ({job.Labels.Describe()} labels, {context.DeviceName})", results.Select(r => ($"k = {r.K}", $"top-1 {r.Top1:F2} %, top-5 {r.Top5:F2} %")));
            return 0;
        }));
        return cmd;
    }
}
