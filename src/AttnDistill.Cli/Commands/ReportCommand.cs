using System.CommandLine;
using AttnDistill.Visualization;

namespace AttnDistill.Cli.Commands;

/// <summary>`attndistill report`: a Markdown report with tables and plots over run folders.</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var cmd = new Command("report", "Markdown report over run folders (config.yaml, metrics.json, log.txt): results table (supplement Table 10 layout for ablations), top-1 bars (Figure 6), top-1 against lambda/T (Figure 8), loss and lr curves. Every model is shown beside the pixel floor: a run folder among RUN_DIR (or below it) whose metrics.json comes from `knn --checkpoint pixels` (and `linear --checkpoint pixels`), e.g. RUNS/pixels, matched by data root and image size; without one the report says how to make it.");
        var runs = new Argument<string[]>("RUN_DIR") { Description = "Run folders; a folder of runs (quickstart or recipe output) stands for its sub-folders; evaluations in RUN/knn, RUN/linear (or any sub-folder whose metrics.json names a checkpoint inside RUN) join RUN's row.", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "Folder for report.md and the PNG plots.", DefaultValueFactory = _ => "report" };
        cmd.Arguments.Add(runs);
        cmd.Options.Add(outDir);
        cmd.SetAction((parsed, ct) => Run.Guarded(parsed, ct, _ =>
        {
            var result = RunReport.Write(parsed.GetValue(runs)!, parsed.GetValue(outDir)!, ConsoleReporting.Info);
            ConsoleReporting.Summary("report", new[]
            {
                ("runs", result.Runs.Count.ToString()),
                ("ablation table", result.Ablation ? "yes (Table 10 layout)" : "no"),
                ("plots", result.Plots.Count.ToString()),
                ("report", result.MarkdownPath),
            });
            return 0;
        }));
        return cmd;
    }
}
