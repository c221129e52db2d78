using Bcmr.Engine.Platform;
using Bcmr.Cli.Output;
using System.CommandLine;
using Bcmr.Engine;
using Bcmr.Engine.Local;

namespace Bcmr.Cli;

/// <summary><c>bcmr remove</c>: rm with bcmr 0.6's flags (-r -f -y -i -v -d -e -n), over <see cref="Remover"/>.
/// Exit codes: 0 everything asked was removed; 1 nothing could be; 2 usage; 3 some entries failed or were kept by a
/// failure below them (entries kept by -e or by a "no" to -i are not failures).</summary>
internal static class RemoveCommand
{
    internal static Command Create()
    {
        var paths = new Argument<string[]>("paths") { Description = "Files and directories to remove. Use -- before names that start with '-'.", Arity = ArgumentArity.OneOrMore };
        var recursive = new Option<bool>("--recursive", "-r") { Description = "Remove directories and their contents." };
        var force = new Option<bool>("--force", "-f") { Description = "Ignore paths that do not exist; never ask." };
        var yes = new Option<bool>("--yes", "-y") { Description = "Answer yes to every question (overrides -i)." };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Ask before each removal (reads y/n from the terminal)." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "List each removed entry." };
        var dirs = new Option<bool>("--dir", "-d") { Description = "Remove empty directories." };
        var exclude = new Option<string[]>("--exclude", "-e") { Description = "Keep entries whose path (relative to the operand's parent) matches this regular expression; repeatable.", Arity = ArgumentArity.ZeroOrMore };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "List what would be removed; remove nothing." };
        var cmd = new Command("remove", "Remove files and directories (like rm; links are removed, never followed).\n" + ExitCodes.HelpText)
        {
            paths, recursive, force, yes, interactive, verbose, dirs, exclude, dryRun,
        };
        cmd.SetAction((parse, ct) =>
        {
            bool json = parse.GetValue(Program.Json);
            bool ask = parse.GetValue(interactive) && !parse.GetValue(yes) && !parse.GetValue(force);
            var request = new RemoveRequest
            {
                Paths = parse.GetValue(paths) ?? [],
                Recursive = parse.GetValue(recursive),
                EmptyDirectories = parse.GetValue(dirs),
                Force = parse.GetValue(force),
                DryRun = parse.GetValue(dryRun),
                Excludes = parse.GetValue(exclude) ?? [],
                Confirm = ask ? Confirm : null,
            };
            bool verboseOut = parse.GetValue(verbose) || request.DryRun;
            RemoveSummary summary;
            try
            {
                summary = Remover.Run(request, r =>
                {
                    if (json) JsonLine.Write(w =>
                    {
                        w.WriteString("type", "remove");
                        w.WriteString("path", r.Path);
                        w.WriteString("kind", r.Kind.ToString().ToLowerInvariant());
                        w.WriteString("status", r.Status switch { RemoveStatus.Removed => "removed", RemoveStatus.Kept => "kept", RemoveStatus.DryRun => "dry_run", _ => "failed" });
                        if (r.Message is not null) w.WriteString(r.Status == RemoveStatus.Failed ? "error" : "message", r.Message);
                    });
                    else if (r.Status == RemoveStatus.Failed) Console.Error.WriteLine("bcmr: " + r.Message);
                    else if (r.Status == RemoveStatus.DryRun) Console.WriteLine($"would remove {r.Path}");
                    else if (r.Status == RemoveStatus.Removed && verboseOut) Console.WriteLine($"removed {r.Path}");
                }, ct);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"bcmr: remove: {e.Message}");
                return Task.FromResult(ExitCodes.Usage);
            }
            int exit = summary.Cancelled ? ExitCodes.Interrupted
                : summary.Failed == 0 ? ExitCodes.Success
                : summary.Removed > 0 ? ExitCodes.Partial : ExitCodes.Failure;
            if (json) JsonLine.Write(w =>
            {
                w.WriteString("type", "result");
                w.WriteString("operation", "remove");
                w.WriteNumber("removed", summary.Removed);
                w.WriteNumber("kept", summary.Kept);
                w.WriteNumber("failed", summary.Failed);
                w.WriteNumber("exit_code", exit);
            });
            return Task.FromResult(exit);
        });
        return cmd;
    }

    private static bool Confirm(string path, EntryKind kind)
    {
        Console.Error.Write($"bcmr: remove {(kind == EntryKind.Directory ? "directory" : "file")} '{path}'? [y/N] ");
        var answer = Console.ReadLine();
        return answer is not null && answer.Trim().StartsWith('y');
    }
}
