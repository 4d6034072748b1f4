using System.CommandLine;
using AttnDistill;

var root = new RootCommand("AttnDistill: distill self-supervised Vision Transformers with attention guidance.");
var info = new Command("info", "Print the libtorch runtime this build loads (a quick install check).");
info.SetAction(_ => { Console.WriteLine(TorchRuntime.Describe()); return 0; });
root.Subcommands.Add(info);
return root.Parse(args).Invoke();
