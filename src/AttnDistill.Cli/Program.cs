AttnDistill.Cli.OpenMpWaitPolicy.DefaultToPassive();
return await AttnDistill.Cli.CliApp.RunAsync(args);
