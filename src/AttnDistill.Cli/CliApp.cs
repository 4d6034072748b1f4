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
        root.Subcommands.Add(DistillCommand.Create());
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
        return root;
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
            var parsed = Parse(BuildRoot(), args);
            if (parsed.Errors.Count > 0 && parsed.Action is System.CommandLine.Invocation.ParseErrorAction)
            {
                // One line naming the setting and exit code 2, like every other bad setting (not the whole help).
                ConsoleReporting.Error(string.Join("; ", parsed.Errors.Select(e => OneLine(e.Message))) +
                                       $" (see attndistill {parsed.CommandResult.Command.Name} --help)");
                return 2;
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
