using System.CommandLine;
using AttnDistill;
using AttnDistill.Cli;
using AttnDistill.Cli.Commands;

var root = new RootCommand("attndistill: distill self-supervised Vision Transformers with attention guidance (AttnDistill, BMVC 2022) in .NET.");
var info = new Command("info", "Print the libtorch runtime this build loads (a quick install check).");
info.SetAction(_ => { Console.WriteLine(TorchRuntime.Describe()); return 0; });
root.Subcommands.Add(info);
root.Subcommands.Add(DistillCommand.Create());
root.Subcommands.Add(KnnCommand.Create());
root.Subcommands.Add(QuickstartCommand.Create());
root.Subcommands.Add(ExportCommand.Create());

try
{
    var command = args.Length > 0 ? root.Subcommands.FirstOrDefault(c => c.Name == args[0]) : null;
    string[] expanded = command is null ? args : new[] { args[0] }.Concat(RecipeArguments.Expand(args[1..], command)).ToArray();
    var parsed = root.Parse(expanded);
    return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
}
catch (RecipeException ex)
{
    ConsoleReporting.Error(ex.Message);
    return 2;
}
