using Bcmr.Cli.Output;
using System.CommandLine;
using Bcmr.Engine;
using Bcmr.Engine.Client;
using Bcmr.Engine.Sync;

namespace Bcmr.Cli;

/// <summary><c>bcmr check SRC... DST</c>: is DST what copying SRC would give (size and mtime)? Exit 0 in sync, 1
/// differences, 2 error (bcmr 0.6's codes).</summary>
internal static class CheckCommand
{
    internal static Command Create()
    {
        var paths = new Argument<string[]>("paths") { Description = "SRC... DST; either side may be host:path.", Arity = ArgumentArity.OneOrMore };
        var recursive = new Option<bool>("--recursive", "-r") { Description = "Compare directories recursively." };
        var exclude = new Option<string[]>("--exclude", "-e") { Description = "Leave out entries whose path (relative to the source's parent) matches; repeatable.", Arity = ArgumentArity.ZeroOrMore };
        var ssh = new Option<string?>("--ssh") { Description = "The ssh program and options for host:path (default: $BCMR_SSH, else ssh).", HelpName = "CMD" };
        var remote = new Option<string?>("--remote-bcmr") { Description = "The bcmr program on the remote host (default: $BCMR_REMOTE, else bcmr).", HelpName = "PATH" };
        var cmd = new Command("check",
            "Compare sources with a destination by size and modification time, reading no content: added (only in the source), " +
            "modified (size differs, or the source is newer), missing (only in the destination). " +
            "Exit codes: 0 in sync; 1 differences; 2 error.")
        { paths, recursive, exclude, ssh, remote };
        cmd.SetAction((parse, ct) =>
        {
            bool json = parse.GetValue(Program.Json);
            var all = parse.GetValue(paths) ?? [];
            if (all.Length < 2)
            {
                Console.Error.WriteLine("bcmr: check: missing destination (usage: bcmr check SRC... DST)");
                return Task.FromResult(2);
            }
            CheckResult result;
            try
            {
                result = TreeCheck.Run(new CheckRequest
                {
                    Sources = all[..^1], Destination = all[^1], Recursive = parse.GetValue(recursive),
                    Excludes = parse.GetValue(exclude) ?? [], 
                    SshCommand = Settings.FlagOrEnvironment(parse.GetValue(ssh), SshChannel.SshVariable),
                    RemoteCommand = Settings.FlagOrEnvironment(parse.GetValue(remote), SshChannel.RemoteVariable),
                }, ct);
            }
            catch (Exception e) when (e is BcmrException or ArgumentException)
            {
                if (json) JsonLine.Write(w => { w.WriteString("type", "result"); w.WriteString("status", "error"); w.WriteString("error", e.Message); w.WriteNumber("exit_code", 2); });
                else Console.Error.WriteLine("bcmr: check: " + e.Message);
                return Task.FromResult(2);
            }
            int exit = result.InSync ? 0 : 1;
            if (json)
            {
                JsonLine.Write(w =>
                {
                    w.WriteString("type", "result");
                    w.WriteString("status", result.InSync ? "in_sync" : "differ");
                    foreach (var (name, list) in new[] { ("added", result.Added), ("modified", result.Modified), ("missing", result.Missing) })
                    {
                        w.WriteStartArray(name);
                        foreach (var d in list) w.WriteStringValue(d.Path);
                        w.WriteEndArray();
                    }
                    w.WriteNumber("compared", result.Compared);
                    w.WriteNumber("added_count", result.Added.Count());
                    w.WriteNumber("modified_count", result.Modified.Count());
                    w.WriteNumber("missing_count", result.Missing.Count());
                    w.WriteNumber("exit_code", exit);
                });
            }
            else
            {
                foreach (var d in result.Differences)
                    Console.WriteLine($"{d.Difference.ToString().ToLowerInvariant(),-9} {d.Path}{(d.IsDirectory ? "/" : "")}");
                Console.WriteLine(result.InSync ? $"in sync ({result.Compared} entries)"
                    : $"{result.Added.Count()} added, {result.Modified.Count()} modified, {result.Missing.Count()} missing ({result.Compared} entries compared)");
            }
            return Task.FromResult(exit);
        });
        return cmd;
    }
}
