return await AttnDistill.Cli.CliApp.RunAsync(args);
