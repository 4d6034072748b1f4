using System.CommandLine;
using AttnDistill.Cli.Commands;

namespace AttnDistill.Cli;

/// <summary>The `attndistill` command tree and how arguments (and recipes) reach it.</summary>
public static class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("attndistill: distill self-supervised Vision Transformers with attention guidance (AttnDistill, BMVC 2022) in .NET.");
        var info = new Command("info", "Print the libtorch runtime this build loads (a quick install check).");
        info.SetAction(_ => { Console.WriteLine(TorchRuntime.Describe()); return 0; });
        root.Subcommands.Add(info);
        root.Subcommands.Add(PretrainMaeCommand.Create());
        root.Subcommands.Add(PretrainDinoCommand.Create());
        root.Subcommands.Add(DistillCommand.Create());
        root.Subcommands.Add(DistillCommand.CreateTeacherCache());
        root.Subcommands.Add(KnnCommand.Create());
        root.Subcommands.Add(LinearCommand.Create());
        root.Subcommands.Add(FinetuneCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(DataCommand.Create());
        root.Subcommands.Add(QuickstartCommand.Create());
        root.Subcommands.Add(VisualizeCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ModelsCommand.Create());
        // New option objects for every tree: a static option added to each root would hold every
        // tree ever built (an option keeps its parents), so in-process invocations leaked them all.
        root.Options.Add(NonNegative(MaxImagePixelsName,
            $"Decode budget: an image whose header claims more than twice this many pixels is refused with an error naming it (PIL's default {AttnDistill.Data.ImageDecoder.DefaultMaxImagePixels} and DecompressionBombError); 0 = no limit.",
            AttnDistill.Data.ImageDecoder.DefaultMaxImagePixels));
        root.Options.Add(NonNegative(MaxCheckpointInflateName,
            "Bytes a .pth checkpoint's archive entries may expand to; 0 (default) = 16 x the file's size (torch.save never compresses, so a highly compressed archive is a zip bomb).", 0));
        return root;
    }

    /// <summary>The image decode budget, on every command (PIL's Image.MAX_IMAGE_PIXELS; refused at twice it, as PIL's DecompressionBombError).</summary>
    public const string MaxImagePixelsName = "--max-image-pixels";

    /// <summary>The torch.save archive inflate budget, on every command.</summary>
    public const string MaxCheckpointInflateName = "--max-checkpoint-inflate";

    /// <summary>One of the root's own budget options.</summary>
    static Option<long> RootOption(RootCommand root, string name) => root.Options.OfType<Option<long>>().Single(o => o.Name == name);

    static Option<long> NonNegative(string name, string description, long defaultValue)
    {
        var o = new Option<long>(name) { Description = description, DefaultValueFactory = _ => defaultValue, Recursive = true };
        o.Validators.Add(r =>
        {
            long v;
            try { v = r.GetValueOrDefault<long>(); } catch (InvalidOperationException) { return; }
            if (v < 0) r.AddError($"{name} must be 0 or positive, got {v}.");
        });
        return o;
    }

    /// <summary>Parses the arguments with any <c>--config</c> recipe expanded into flags (command-line flags win).</summary>
    public static ParseResult Parse(RootCommand root, string[] args)
    {
        var command = args.Length > 0 ? root.Subcommands.FirstOrDefault(c => c.Name == args[0]) : null;
        string[] expanded = command is null ? args : new[] { args[0] }.Concat(RecipeArguments.Expand(args[1..], command)).ToArray();
        return root.Parse(expanded);
    }

    static string OneLine(string message) =>
        string.Join(" ", message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var root = BuildRoot();
            var parsed = Parse(root, args);
            if (parsed.Errors.Count > 0 && parsed.Action is System.CommandLine.Invocation.ParseErrorAction)
            {
                // One line naming the setting and exit code 2, like every other bad setting (not the whole help).
                ConsoleReporting.Error(string.Join("; ", parsed.Errors.Select(e => OneLine(e.Message))) +
                                       $" (see attndistill {parsed.CommandResult.Command.Name} --help)");
                return 2;
            }
            // Process-wide budgets, as PIL's Image.MAX_IMAGE_PIXELS: set from every command's flags.
            if (parsed.Errors.Count == 0)
            {
                AttnDistill.Data.ImageDecoder.MaxImagePixels = parsed.GetValue(RootOption(root, MaxImagePixelsName));
                AttnDistill.Checkpoints.TorchArchiveReader.MaxInflateBytes = parsed.GetValue(RootOption(root, MaxCheckpointInflateName));
            }
            return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
        }
        catch (RecipeException ex)
        {
            ConsoleReporting.Error(ex.Message);
            return 2;
        }
    }
}
