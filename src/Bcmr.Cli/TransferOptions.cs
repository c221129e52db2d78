using System.CommandLine;
using Bcmr.Engine;
using Bcmr.Engine.Client;
using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cli;

/// <summary>The options every transferring command (copy, move, sync) shares, defined once, and how they fill in a
/// <see cref="CopyRequest"/>.</summary>
internal sealed class TransferOptions
{
    public readonly Option<bool> Verbose;
    public readonly Option<bool> Quiet;
    public readonly Option<string[]> Exclude;
    public readonly Option<bool> DryRun;
    public readonly Option<bool> Verify;
    public readonly Option<bool> Sync;
    public readonly Option<bool> Resume;
    public readonly Option<bool> Strict;
    public readonly Option<bool> Append;
    public readonly Option<int> Jobs;
    public readonly Option<int> Parallel;
    public readonly Option<int?> SshPersist;
    public readonly Option<string?> Ssh;
    public readonly Option<string?> RemoteBcmr;
    public readonly Option<bool> Fast;
    public readonly Option<bool> NoFallback;
    public readonly Option<string?> Direct;
    public readonly Option<string?> Compress;
    public readonly Option<string?> Bwlimit;
    public readonly Option<double?> Timeout;
    public readonly Option<int> Retries;
    public readonly Option<double?> RetryDelay;
    public readonly Option<string?> Log;

    public TransferOptions()
    {
        Verbose = new Option<bool>("--verbose", "-v") { Description = "List every file (stdout) and non-fatal warnings (stderr)." };
        Quiet = new Option<bool>("--quiet", "-q") { Description = "No progress display and no summary line; errors are still printed." };
        Exclude = new Option<string[]>("--exclude", "-e")
        {
            Description = "Skip entries whose path (relative to the source's parent, '/'-separated, e.g. src/a/b.txt) matches this regular expression. Repeatable.",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        DryRun = new Option<bool>("--dry-run", "-n") { Description = "Show what would be done; change nothing." };
        Verify = new Option<bool>("--verify", "-V") { Description = "Re-read every copy and compare its BLAKE3 with the source's before committing it; on mismatch the copy is removed and the file fails." };
        Sync = new Option<bool>("--sync") { Description = "fsync every file before its rename and its directory after (durable; slower with many files). Off by default, as in cp." };
        Resume = new Option<bool>("--resume", "-C")
        {
            Description = "Resume an interrupted copy, keeping only bytes proven equal to the source: locally, every block its session recorded " +
                "is read back and the copy continues after those that still match; remotely, the BLAKE3 of what one side holds must equal " +
                "the other's. Without a session, a destination with the source's size and modification time counts as done. " +
                "Files over 64 MiB keep a session in $XDG_DATA_HOME/bcmr/sessions (see 'bcmr session'). Implies replacing the destination.",
        };
        Strict = new Option<bool>("--strict", "-s")
        {
            Description = "Resume, proving by BLAKE3: an identical destination is skipped, a matching prefix is continued, anything else is copied again (reads both files). Implies replacing the destination.",
        };
        Append = new Option<bool>("--append", "-a")
        {
            Description = "Resume by length alone: a destination of the source's size is skipped, a shorter one is continued, a longer one copied again. Implies replacing the destination.",
        };
        Jobs = new Option<int>("--jobs", "-j")
        {
            Description = $"Files copied in parallel (default: min(cores, 8) = {CopyRequest.DefaultJobs}).",
            DefaultValueFactory = _ => CopyRequest.DefaultJobs,
        };
        Jobs.Validators.Add(r =>
        {
            // A non-number is already a parse error; only the range is ours to check.
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--jobs must be at least 1");
        });

        Parallel = new Option<int>("--parallel", "-P")
        {
            Description = "Remote copies: open N ssh connections at once (each its own TCP connection and cipher; a ControlMaster is " +
                "never shared) and spread the files over them, largest first, each connection taking the next file when free; " +
                "a file of 64 MiB or more (BCMR_STRIPE_MIN_MB) is striped over all of them in 16 MiB ranges. " +
                "Results are still reported in order. Default 1.",
            DefaultValueFactory = _ => 1,
            HelpName = "N",
        };
        Parallel.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--parallel must be at least 1");
        });

        SshPersist = new Option<int?>("--ssh-persist")
        {
            Description = "Keep a shared ssh connection (OpenSSH's ControlMaster, socket in a private 0700 directory) and, on a host whose bcmr " +
                "offers it, a resident server (a Unix socket in a private directory there, reached through the master) open for SECONDS after " +
                "this run, so that the next run to the same host starts neither ssh nor a server. Default: $BCMR_SSH_PERSIST, else 0 (off). " +
                "The connections of --parallel and --direct direct never use them.",
            HelpName = "SECONDS",
        };
        SshPersist.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 0) r.AddError("--ssh-persist must be 0 (off) or a number of seconds");
        });

        Ssh = new Option<string?>("--ssh")
        {
            Description = "Remote copies (host:path): the ssh program and its options, like rsync's -e (e.g. \"ssh -p 2222 -i key\"). Default: $BCMR_SSH, else ssh. BatchMode=yes is always added; so is AES-GCM first among ssh's default ciphers where both machines have AES hardware, unless -c, -o Ciphers or your ssh config names ciphers.",
            HelpName = "CMD",
        };
        RemoteBcmr = new Option<string?>("--remote-bcmr")
        {
            Description = "The bcmr program on the remote host (\"serve\" is appended), or a whole server command of several words. Default: $BCMR_REMOTE, else bcmr.",
            HelpName = "PATH",
        };
        Fast = new Option<bool>("--fast") { Description = "Remote downloads: the server skips its BLAKE3 and sends with sendfile(2); no compression unless --compress names a codec. Nothing is hashed on either end then (ssh still checks every packet); add -V to read the copy back and compare it with the server's BLAKE3 of the source." };
        NoFallback = new Option<bool>("--no-fallback") { Description = "When the remote host has no bcmr, fail instead of falling back to scp; with --direct direct, fail when no direct channel can be set up instead of continuing over ssh." };
        Direct = new Option<string?>("--direct")
        {
            Description = "Remote copies: the data path. ssh (default: $BCMR_DIRECT, else ssh): everything through the ssh connection. direct: ssh " +
                "logs in and carries a one-time secret; file data then goes over a TCP connection of its own to the address the ssh connection " +
                "reached, in AES-256-GCM records with keys derived from that secret (not limited by ssh's one cipher stream). The server's port " +
                "must be reachable; if no direct channel can be set up the copy continues over ssh with a warning (or fails with --no-fallback).",
            HelpName = "ssh|direct",
        };
        Direct.AcceptOnlyFromAmong("ssh", "direct");
        Compress = new Option<string?>("--compress")
        {
            Description = "Remote copies: wire compression auto|zstd|lz4|none (default: $BCMR_COMPRESS, else auto: the best codec both ends have).",
            HelpName = "auto|zstd|lz4|none",
        };
        Compress.AcceptOnlyFromAmong("auto", "zstd", "lz4", "none");
        Bwlimit = new Option<string?>("--bwlimit")
        {
            Description = "At most RATE bytes of file data per second: on the wire for remote copies, read and written for local ones (suffixes k, M, G = powers of 1024; KB, MB, GB = powers of 1000; 0 = unlimited).",
            HelpName = "RATE",
        };
        Bwlimit.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !Bcmr.Engine.Transfers.BandwidthLimiter.TryParse(r.Tokens[0].Value, out _, out var error))
                r.AddError($"--bwlimit: {error}");
        });

        Timeout = new Option<double?>("--timeout")
        {
            Description = "Remote copies: give up on a connection when no byte has moved either way for SECONDS while waiting for the server " +
                "(default 300; 0 = never). Slow progress is not a stall, nor a login: connecting and logging in get at least 30 s. " +
                "The copy then fails with 'stalled' and can be resumed with -C.",
            HelpName = "SECONDS",
        };
        Timeout.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && double.TryParse(r.Tokens[0].Value, System.Globalization.CultureInfo.InvariantCulture, out var s) && (s < 0 || !double.IsFinite(s)))
                r.AddError("--timeout must be 0 (never) or a number of seconds");
        });

        Retries = new Option<int>("--retries")
        {
            Description = "Try a file that failed on a transient error (connection lost, file busy, source changed while read, data damaged " +
                "on the way) up to N more times, waiting --retry-delay, doubled each time (at most 60 s); a lost connection's file continues " +
                "as -C would. Never retried: missing files, permissions, the server root, a full disk. Default 0.",
            HelpName = "N",
        };
        Retries.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 0) r.AddError("--retries must be 0 or more");
        });
        RetryDelay = new Option<double?>("--retry-delay")
        {
            Description = "Seconds before the first retry (default 2); each further retry waits twice as long, at most 60 s.",
            HelpName = "SECONDS",
        };
        RetryDelay.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && double.TryParse(r.Tokens[0].Value, System.Globalization.CultureInfo.InvariantCulture, out var s) && (s < 0 || !double.IsFinite(s)))
                r.AddError("--retry-delay must be 0 or more seconds");
        });
        Log = new Option<string?>("--log")
        {
            Description = "Append one JSON line per file and one result line (each with its time and operation; the fields of --json) to FILE, " +
                "whatever is printed on stdout. A FILE that cannot be opened stops the command before anything is copied.",
            HelpName = "FILE",
        };

    }

    public IEnumerable<Option> All => [Verbose, Quiet, Exclude, DryRun, Verify, Resume, Strict, Append, Sync, Jobs, Parallel, SshPersist, Ssh, RemoteBcmr, Fast, NoFallback, Direct, Compress, Bwlimit, Timeout, Retries, RetryDelay, Log];

    /// <summary>The request these options describe (sources and destination left to the command); throws
    /// <see cref="BcmrException"/> (InvalidArgument) for a bad BCMR_SSH_PERSIST.</summary>
    public CopyRequest Request(ParseResult parse, EngineSettings settings) => new()
    {
        Sources = [], Destination = "",
        DryRun = parse.GetValue(DryRun),
        Verify = parse.GetValue(Verify),
        Sync = parse.GetValue(Sync),
        Jobs = parse.GetValue(Jobs),
        Parallel = parse.GetValue(Parallel),
        SshPersist = Settings.SecondsFlagOrEnvironment(parse.GetValue(SshPersist), Bcmr.Engine.Client.SshPersist.Variable),
        Excludes = parse.GetValue(Exclude) ?? [],
        // bcmr's precedence when several are given: strict, then append, then resume.
        Resume = parse.GetValue(Strict) ? ResumeMode.Strict
            : parse.GetValue(Append) ? ResumeMode.Append
            : parse.GetValue(Resume) ? ResumeMode.Resume
            : ResumeMode.None,
        SshCommand = Settings.FlagOrEnvironment(parse.GetValue(Ssh), SshChannel.SshVariable),
        RemoteCommand = Settings.FlagOrEnvironment(parse.GetValue(RemoteBcmr), SshChannel.RemoteVariable),
        Fast = parse.GetValue(Fast),
        NoFallback = parse.GetValue(NoFallback),
        Direct = parse.GetValue(Direct) is { } direct ? DirectChannel.ParseMode(direct, "--direct")
            : DirectChannel.ParseMode(Environment.GetEnvironmentVariable(DirectChannel.Variable), DirectChannel.Variable),
        Compress = parse.GetValue(Compress),
        BandwidthLimit = parse.GetValue(Bwlimit) is { } rate ? BandwidthLimiter.Parse(rate) : 0,
        StallTimeout = parse.GetValue(Timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
        Retries = parse.GetValue(Retries),
        RetryDelay = parse.GetValue(RetryDelay) is { } delay ? TimeSpan.FromSeconds(delay) : CopyRequest.DefaultRetryDelay,
        Warn = line => Console.Error.WriteLine(line),
        Settings = settings,
    };
}
