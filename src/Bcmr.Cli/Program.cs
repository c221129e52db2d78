using System.CommandLine;
using Bcmr.Cli;

var root = new RootCommand("bcmr");
root.Subcommands.Add(HashCommand.Create());
ParseResult parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"bcmr: {error.Message}");
    }
    return 2;
}
return parse.Invoke();
