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
        var recursive = new Option<bool>("--recursive", "-r") { Description = "Copy directories recursively." };
        var preserve = new Option<bool>("--preserve", "-p") { Description = "Keep mode, timestamps, extended attributes (and owner, where permitted)." };
        var force = new Option<bool>("--force", "-f") { Description = "Overwrite existing destination files (without it, an existing destination is an error and is left untouched)." };
        var yes = new Option<bool>("--yes", "-y") { Description = "Assume yes. Bcmr never prompts; accepted for compatibility with bcmr." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "List every file (stdout) and non-fatal warnings (stderr)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress display and no summary line; errors are still printed." };
        var exclude = new Option<string[]>("--exclude", "-e")
        {
            Description = "Skip entries whose path (relative to the source's parent, '/'-separated, e.g. src/a/b.txt) matches this regular expression. Repeatable.",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "Show what would be done; change nothing." };
        var verify = new Option<bool>("--verify", "-V") { Description = "Re-read every copy and compare its BLAKE3 with the source's before committing it; on mismatch the copy is removed and the file fails." };
        var sync = new Option<bool>("--sync") { Description = "fsync every file before its rename and its directory after (durable; slower with many files). Off by default, as in cp." };
        var resume = new Option<bool>("--resume", "-C")
        {
            Description = "Resume an interrupted copy, keeping only bytes proven equal to the source: locally, every block its session recorded " +
                "is read back and the copy continues after those that still match; remotely, the BLAKE3 of what one side holds must equal " +
                "the other's. Without a session, a destination with the source's size and modification time counts as done. " +
                "Files over 64 MiB keep a session in $XDG_DATA_HOME/bcmr/sessions (see 'bcmr session'). Implies replacing the destination.",
        };
        var strict = new Option<bool>("--strict", "-s")
        {
            Description = "Resume, proving by BLAKE3: an identical destination is skipped, a matching prefix is continued, anything else is copied again (reads both files). Implies replacing the destination.",
        };
        var append = new Option<bool>("--append", "-a")
        {
            Description = "Resume by length alone: a destination of the source's size is skipped, a shorter one is continued, a longer one copied again. Implies replacing the destination.",
        };
        var jobs = new Option<int>("--jobs", "-j")
        {
            Description = $"Files copied in parallel (default: min(cores, 8) = {CopyRequest.DefaultJobs}).",
            DefaultValueFactory = _ => CopyRequest.DefaultJobs,
        };
        jobs.Validators.Add(r =>
        {
            // A non-number is already a parse error; only the range is ours to check.
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--jobs must be at least 1");
        });

        var parallel = new Option<int>("--parallel", "-P")
        {
            Description = "Remote copies: open N ssh connections at once (each its own TCP connection and cipher; a ControlMaster is " +
                "never shared) and spread the files over them, largest first, each connection taking the next file when free; " +
                "a file of 64 MiB or more (BCMR_STRIPE_MIN_MB) is striped over all of them in 16 MiB ranges. " +
                "Results are still reported in order. Default 1.",
            DefaultValueFactory = _ => 1,
            HelpName = "N",
        };
        parallel.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--parallel must be at least 1");
        });

        var sshPersist = new Option<int?>("--ssh-persist")
        {
            Description = "Keep a shared ssh connection (OpenSSH's ControlMaster, socket in a private 0700 directory) open for SECONDS after " +
                "this run, so that the next run to the same host skips the ssh handshake. Default: $BCMR_SSH_PERSIST, else 0 (off). " +
                "The connections of --parallel never share it.",
            HelpName = "SECONDS",
        };
        sshPersist.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 0) r.AddError("--ssh-persist must be 0 (off) or a number of seconds");
        });

        var ssh = new Option<string?>("--ssh")
        {
            Description = "Remote copies (host:path): the ssh program and its options, like rsync's -e (e.g. \"ssh -p 2222 -i key\"). Default: $BCMR_SSH, else ssh. BatchMode=yes is always added.",
            HelpName = "CMD",
        };
        var remoteBcmr = new Option<string?>("--remote-bcmr")
        {
            Description = "The bcmr program on the remote host (\"serve\" is appended), or a whole server command of several words. Default: $BCMR_REMOTE, else bcmr.",
            HelpName = "PATH",
        };
        var fast = new Option<bool>("--fast") { Description = "Remote downloads: the server skips its BLAKE3 and sends with sendfile(2); no compression unless --compress names a codec. Nothing is hashed on either end then (ssh still checks every packet); add -V to read the copy back and compare it with the server's BLAKE3 of the source." };
        var noFallback = new Option<bool>("--no-fallback") { Description = "When the remote host has no bcmr, fail instead of falling back to scp." };
        var compress = new Option<string?>("--compress")
        {
            Description = "Remote copies: wire compression auto|zstd|lz4|none (default: $BCMR_COMPRESS, else auto: the best codec both ends have).",
            HelpName = "auto|zstd|lz4|none",
        };
        compress.AcceptOnlyFromAmong("auto", "zstd", "lz4", "none");
        var bwlimit = new Option<string?>("--bwlimit")
        {
            Description = "Remote copies: at most RATE bytes of file data per second on the wire (suffixes k, M, G = powers of 1024; KB, MB, GB = powers of 1000; 0 = unlimited).",
            HelpName = "RATE",
        };
        bwlimit.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !Bcmr.Engine.Transfers.BandwidthLimiter.TryParse(r.Tokens[0].Value, out _, out var error))
                r.AddError($"--bwlimit: {error}");
        });

        var timeout = new Option<double?>("--timeout")
        {
            Description = "Remote copies: give up on a connection when no byte has moved either way for SECONDS while waiting for the server " +
                "(default 300; 0 = never). Slow progress is not a stall, nor a login: connecting and logging in get at least 30 s. " +
                "The copy then fails with 'stalled' and can be resumed with -C.",
            HelpName = "SECONDS",
        };
        timeout.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && double.TryParse(r.Tokens[0].Value, System.Globalization.CultureInfo.InvariantCulture, out var s) && (s < 0 || !double.IsFinite(s)))
                r.AddError("--timeout must be 0 (never) or a number of seconds");
        });

        var retries = new Option<int>("--retries")
        {
            Description = "Try a file that failed on a transient error (connection lost, file busy, source changed while read, data damaged " +
                "on the way) up to N more times, waiting --retry-delay, doubled each time (at most 60 s); a lost connection's file continues " +
                "as -C would. Never retried: missing files, permissions, the server root, a full disk. Default 0.",
            HelpName = "N",
        };
        retries.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 0) r.AddError("--retries must be 0 or more");
        });
        var retryDelay = new Option<double?>("--retry-delay")
        {
            Description = "Seconds before the first retry (default 2); each further retry waits twice as long, at most 60 s.",
            HelpName = "SECONDS",
        };
        retryDelay.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && double.TryParse(r.Tokens[0].Value, System.Globalization.CultureInfo.InvariantCulture, out var s) && (s < 0 || !double.IsFinite(s)))
                r.AddError("--retry-delay must be 0 or more seconds");
        });
        var log = new Option<string?>("--log")
        {
            Description = "Append one JSON line per file and one result line (each with its time and operation; the fields of --json) to FILE, " +
                "whatever is printed on stdout. A FILE that cannot be opened stops the command before anything is copied.",
            HelpName = "FILE",
        };

        cmd.Add(paths);
        foreach (var o in new Option[] { recursive, preserve, force, yes, verbose, quiet, exclude, dryRun, verify, resume, strict, append, sync, jobs, parallel, sshPersist, ssh, remoteBcmr, fast, noFallback, compress, bwlimit, timeout, retries, retryDelay, log })
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
            int persist;
            try { persist = Settings.SecondsFlagOrEnvironment(parse.GetValue(sshPersist), SshPersist.Variable); }
            catch (BcmrException e)
            {
                Console.Error.WriteLine($"bcmr: {name}: {e.Message}");
                return Task.FromResult(ExitCodes.Usage);
            }
            var request = new CopyRequest
            {
                Sources = all[..^1],
                Destination = all[^1],
                Move = move,
                Recursive = parse.GetValue(recursive),
                Preserve = parse.GetValue(preserve),
                Force = parse.GetValue(force),
                DryRun = parse.GetValue(dryRun),
                Verify = parse.GetValue(verify),
                Sync = parse.GetValue(sync),
                Jobs = parse.GetValue(jobs),
                Parallel = parse.GetValue(parallel),
                SshPersist = persist,
                Excludes = parse.GetValue(exclude) ?? [],
                Reflink = reflink is null ? ReflinkMode.Auto : parse.GetValue(reflink),
                Sparse = sparse is null ? SparseMode.Auto : parse.GetValue(sparse),
                // bcmr's precedence when several are given: strict, then append, then resume.
                Resume = parse.GetValue(strict) ? ResumeMode.Strict
                    : parse.GetValue(append) ? ResumeMode.Append
                    : parse.GetValue(resume) ? ResumeMode.Resume
                    : ResumeMode.None,
                SshCommand = Settings.FlagOrEnvironment(parse.GetValue(ssh), SshChannel.SshVariable),
                RemoteCommand = Settings.FlagOrEnvironment(parse.GetValue(remoteBcmr), SshChannel.RemoteVariable),
                Fast = parse.GetValue(fast),
                NoFallback = parse.GetValue(noFallback),
                Compress = parse.GetValue(compress),
                BandwidthLimit = parse.GetValue(bwlimit) is { } rate ? BandwidthLimiter.Parse(rate) : 0,
                StallTimeout = parse.GetValue(timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
                Retries = parse.GetValue(retries),
                RetryDelay = parse.GetValue(retryDelay) is { } delay ? TimeSpan.FromSeconds(delay) : Bcmr.Engine.Transfers.CopyRequest.DefaultRetryDelay,
                Warn = line => Console.Error.WriteLine(line),
                Settings = settings,
            };
            return Task.FromResult(Run(request, parse.GetValue(Program.Json), parse.GetValue(quiet), parse.GetValue(verbose), parse.GetValue(log), ct));
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
