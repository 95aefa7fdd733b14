using Infinite.Cli;

return CliApp.CreateRoot().Parse(args).Invoke();
