using AttnDistill.Cli;
using Spectre.Console;

namespace AttnDistill.Tests.Reliability;

/// <summary>
/// The CLI's entry point run in this process with stdout, stderr and Spectre's console captured
/// (one invocation at a time: the console is process-wide). The test suite and the soak's recipe
/// fuzzer share it: thousands of child processes would take hours.
/// </summary>
public static class InProcessCli
{
    static readonly object ConsoleLock = new();

    public static (int Code, string Output) Run(string[] args)
    {
        lock (ConsoleLock)
        {
            var text = new StringWriter();
            TextWriter oldOut = Console.Out, oldErr = Console.Error;
            var oldAnsi = AnsiConsole.Console;
            Console.SetOut(text);
            Console.SetError(text);
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Out = new AnsiConsoleOutput(text), Interactive = InteractionSupport.No,
            });
            try
            {
                int code = CliApp.RunAsync(args).GetAwaiter().GetResult();
                return (code, text.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
                AnsiConsole.Console = oldAnsi;
            }
        }
    }
}
