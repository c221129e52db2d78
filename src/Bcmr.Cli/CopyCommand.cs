using System.CommandLine;
using System.CommandLine.Parsing;
using Bcmr.Cli.Output;
using Bcmr.Engine;
using Bcmr.Engine.Local;
using Bcmr.Engine.Client;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cli;

/// <summary>`bcmr copy` and `bcmr move`: the same options over the same engine call.</summary>
internal static class CopyCommand
{
    public static Command Create(bool move, EngineSettings settings)
    {
        var name = move ? "move" : "copy";
        var cmd = new Command(name, move
            ? "Move files and directory trees: rename on the same filesystem; otherwise copy, verify (BLAKE3) and only then delete each source.\n" + ExitCodes.HelpText
            : "Copy files and directory trees. Each file is written to a temporary name beside its destination and renamed into place, so a destination is never half-written.\n" + ExitCodes.HelpText);

        var paths = new Argument<string[]>("paths")
        {
            Description = "SRC... DST. Several sources need an existing destination directory. Use -- before names that start with '-'.",
            Arity = ArgumentArity.OneOrMore,
        };
        var t = new TransferOptions();
        var recursive = new Option<bool>("--recursive", "-r") { Description = "Copy directories recursively." };
        var preserve = new Option<bool>("--preserve", "-p") { Description = "Keep mode, timestamps, extended attributes (and owner, where permitted)." };
        var force = new Option<bool>("--force", "-f") { Description = "Overwrite existing destination files (without it, an existing destination is an error and is left untouched)." };
        var yes = new Option<bool>("--yes", "-y") { Description = "Assume yes. Bcmr never prompts; accepted for compatibility with bcmr." };
        cmd.Add(paths);
        foreach (var o in new Option[] { recursive, preserve, force, yes }.Concat(t.All))
            cmd.Add(o);

        Option<ReflinkMode>? reflink = null;
        Option<SparseMode>? sparse = null;
        if (!move)
        {
            reflink = ModeOption<ReflinkMode>("--reflink",
                "Clone extents instead of copying (btrfs, XFS): auto tries and falls back; force fails where impossible; disable never tries. Bare --reflink means force. Default auto.",
                ReflinkMode.Auto);
            sparse = ModeOption<SparseMode>("--sparse",
                "Holes: auto keeps the holes the source has; force also turns zero runs of 4 KiB or more into holes; disable writes every byte. Bare --sparse means force. Default auto.",
                SparseMode.Auto);
            cmd.Add(reflink);
            cmd.Add(sparse);
        }

        cmd.SetAction((parse, ct) =>
        {
            var all = parse.GetValue(paths) ?? [];
            if (all.Length < 2)
            {
                Console.Error.WriteLine($"bcmr: {name}: missing destination (usage: bcmr {name} SRC... DST)");
                return Task.FromResult(ExitCodes.Usage);
            }
            CopyRequest request;
            try { request = t.Request(parse, settings); }
            catch (BcmrException e)
            {
                Console.Error.WriteLine($"bcmr: {name}: {e.Message}");
                return Task.FromResult(ExitCodes.Usage);
            }
            request = request with
            {
                Sources = all[..^1],
                Destination = all[^1],
                Move = move,
                Recursive = parse.GetValue(recursive),
                Preserve = parse.GetValue(preserve),
                Force = parse.GetValue(force),
                Reflink = reflink is null ? ReflinkMode.Auto : parse.GetValue(reflink),
                Sparse = sparse is null ? SparseMode.Auto : parse.GetValue(sparse),
            };
            return Task.FromResult(Run(request, parse.GetValue(Program.Json), parse.GetValue(t.Quiet), parse.GetValue(t.Verbose), parse.GetValue(t.Log), ct));
        });
        return cmd;
    }

    /// <summary>An enum option with a default; its bare form ("--reflink" alone) is rewritten before parsing
    /// by <see cref="ExpandBareModeFlags"/>.</summary>
    private static Option<T> ModeOption<T>(string name, string description, T whenAbsent) where T : struct, Enum
    {
        var names = Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToArray();
        return new Option<T>(name)
        {
            Description = description,
            HelpName = string.Join("|", names),
            DefaultValueFactory = _ => whenAbsent,
        };
    }

    private static readonly string[] ModeFlags = ["--reflink", "--sparse"];
    private static readonly string[] ModeValues = ["auto", "force", "disable"];

    /// <summary>bcmr accepts "--reflink" and "--sparse" without a value, meaning force. A following word that is not
    /// a mode belongs to the paths ("--reflink SRC DST"), so the bare flag becomes "--reflink=force".</summary>
    internal static string[] ExpandBareModeFlags(string[] args)
    {
        var result = new List<string>(args.Length);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--") { result.AddRange(args[i..]); break; }
            bool bare = ModeFlags.Contains(args[i]) &&
                (i + 1 >= args.Length || !ModeValues.Contains(args[i + 1].ToLowerInvariant()));
            result.Add(bare ? args[i] + "=force" : args[i]);
        }
        return result.ToArray();
    }

    internal static int Run(CopyRequest request, bool json, bool quiet, bool verbose, string? logPath, CancellationToken ct)
    {
        using var jsonOut = json ? new JsonOutput() : null;
        var human = json ? null : new HumanOutput(quiet, verbose);
        TransferLog? log;
        try { log = logPath is null ? null : TransferLog.Open(logPath, request.Operation); }
        catch (BcmrException e)
        {
            if (json) jsonOut!.Result(request.Operation, null, e.Message, ExitCodes.Usage);
            else human!.Error($"{request.Operation}: {e.Message}");
            return ExitCodes.Usage;
        }
        using var _ = log;
        IProgress<TransferProgress>? progress = json ? jsonOut : human!.WantsProgress ? human : null;
        Action<CopyResult> show = json ? jsonOut!.OnResult : human!.OnResult;
        Action<CopyResult> onResult = log is null ? show : r => { log.File(r); show(r); };
        TransferSummary summary;
        try
        {
            summary = TransferEngine.Run(request, progress, onResult, ct);
        }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.InvalidArgument)
        {
            log?.Result(null, e.Message, ExitCodes.Usage);
            if (json) jsonOut!.Result(request.Operation, null, e.Message, ExitCodes.Usage);
            else human!.Error($"{request.Operation}: {e.Message}");
            return ExitCodes.Usage;
        }
        int exit = ExitCodes.For(summary);
        var error = TransferJson.ErrorOf(summary);
        log?.Result(summary, error, exit);
        if (json)
        {
            jsonOut!.Result(request.Operation, summary, error, exit);
        }
        else
        {
            if (summary.Fatal is not null) human!.Error(summary.Fatal.Message);
            if (summary.Cancelled)
                human!.Error(request.Resume == ResumeMode.None ? "interrupted; temporary files removed"
                    : "interrupted; progress recorded: run the same command again to continue");
            human!.Summary(summary, request.DryRun);
        }
        return exit;
    }
}
