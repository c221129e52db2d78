using Bcmr.Engine.Local;

namespace Bcmr.Engine.Transfers;

/// <summary>Everything a copy or move needs to know. The CLI and the cmdlets fill it in; the engine validates it.</summary>
public sealed record CopyRequest
{
    public required IReadOnlyList<string> Sources { get; init; }
    public required string Destination { get; init; }
    /// <summary>Move instead of copy: rename where possible, else copy, verify, then delete the source.</summary>
    public bool Move { get; init; }
    public bool Recursive { get; init; }
    /// <summary>Keep mode, owner (where permitted), timestamps and extended attributes.</summary>
    public bool Preserve { get; init; }
    /// <summary>Overwrite existing destination files.</summary>
    public bool Force { get; init; }
    /// <summary>Give each copy its source's modification (and access) time, without the rest of
    /// <see cref="Preserve"/>, as Copy-Item does. Uploads cannot set times on the server yet (protocol).</summary>
    public bool KeepTimes { get; init; }
    /// <summary>Leave a destination file alone when it is already the source's copy: locally and on downloads, the same
    /// size and modification time (to the second for downloads, the precision the protocol carries); on uploads, whose
    /// remote times we cannot set, the same size and BLAKE3 (the server hashes its file, no data crosses the wire).
    /// Skipped files are reported as Skipped with the reason.</summary>
    public bool SkipUnchanged { get; init; }
    /// <summary>Plan and report, change nothing.</summary>
    public bool DryRun { get; init; }
    /// <summary>Several sources into a destination that does not exist: create it as a directory (with missing parents)
    /// and copy the sources inside, as robocopy and rsync's <c>SRC/ DST/</c> do, instead of cp's error. The cmdlets
    /// set it (a piped batch into a new folder); the CLI keeps cp's rule.</summary>
    public bool CreateMissingDestination { get; init; }
    /// <summary>Re-read every destination and compare its BLAKE3 with the source's before committing it.</summary>
    public bool Verify { get; init; }
    /// <summary>fsync each file before its rename and its directory after (off by default, as in cp).</summary>
    public bool Sync { get; init; }
    public int Jobs { get; init; } = DefaultJobs;
    /// <summary>The helper threads (hashing, compressing) the whole transfer may run at once, shared by every file and
    /// connection in it; null: one per processor (<see cref="ThreadBudget"/>).</summary>
    public ThreadBudget? Threads { get; init; }
    /// <summary>Regular expressions matched against each entry's path relative to its source's parent, with '/'
    /// separators (copying <c>src</c> sees <c>src/a/b.txt</c>). A matching directory is not descended.</summary>
    public IReadOnlyList<string> Excludes { get; init; } = Array.Empty<string>();
    public ReflinkMode Reflink { get; init; } = ReflinkMode.Auto;
    public SparseMode Sparse { get; init; } = SparseMode.Auto;
    /// <summary>Continue interrupted copies (-C, -s, -a): see <see cref="ResumeMode"/>. Files are then written
    /// through a partial file and, when large enough, a session in <see cref="Sessions"/>.</summary>
    public ResumeMode Resume { get; init; } = ResumeMode.None;
    /// <summary>Where resume sessions live; null means the user's data directory (<see cref="SessionStore.Default"/>
    /// of <see cref="Settings"/>).</summary>
    public SessionStore? Sessions { get; init; }
    /// <summary>What the host's environment says (the data directory, <c>BCMR_COMPRESS</c>); the CLI and the cmdlets
    /// pass <see cref="EngineSettings.FromEnvironment"/>, read when the command starts.</summary>
    public EngineSettings Settings { get; init; } = EngineSettings.Defaults;
    // ---- remote copies (host:path on either side) ----------------------------------------------------------------

    /// <summary>The ssh program and its options, split like a shell would (rsync's -e): e.g. <c>ssh -p 2222 -F cfg</c>.
    /// Null: <c>ssh</c> (the CLI and the cmdlets pass <c>BCMR_SSH</c> when no flag names one). BatchMode is always added.</summary>
    public string? SshCommand { get; init; }
    /// <summary>The remote program started over ssh (its <c>serve</c> subcommand). Null: <c>bcmr</c> (the CLI and the
    /// cmdlets pass <c>BCMR_REMOTE</c> when no flag names one).</summary>
    public string? RemoteCommand { get; init; }
    /// <summary>--fast: the server skips its BLAKE3 on downloads and sends with sendfile(2); integrity then rests on
    /// the client's own hash and on ssh. Implies no compression unless <see cref="Compress"/> (or BCMR_COMPRESS) names one.</summary>
    public bool Fast { get; init; }
    /// <summary>Where ssh and scp run, so that relative paths in <see cref="SshCommand"/> (<c>-F ./ssh_config</c>,
    /// <c>-i ./key</c>) mean what the caller sees as its current directory; null: this process's. The cmdlets pass
    /// PowerShell's location, which is not the process's.</summary>
    public string? WorkingDirectory { get; init; }
    /// <summary>How the connection to a remote path's host is opened: called once per connection with the remote
    /// path. Null: ssh (<see cref="Client.SshChannel"/> with <see cref="SshCommand"/>, <see cref="RemoteCommand"/> and
    /// <see cref="WorkingDirectory"/>). A local <c>bcmr serve</c> (<see cref="Client.ProcessChannel"/>) or a
    /// <c>bcmr serve --listen</c> (<see cref="Client.TcpChannel"/>) are the others.</summary>
    public Func<Client.RemoteSpec, Client.IServeChannel>? OpenChannel { get; init; }
    /// <summary>-P/--parallel: connections to the remote host, each its own ssh process, TCP connection and cipher
    /// (never a shared ControlMaster), opened at once. Files go to whichever connection is free, largest first; results
    /// are still reported in the order of the plan. 1: one connection, as before.</summary>
    public int Parallel { get; init; } = 1;
    /// <summary>--ssh-persist: seconds a shared ssh connection (OpenSSH's ControlMaster, socket in a private
    /// directory) stays up after this run, so that the next run to the host skips the handshake; 0: off. Never for the
    /// connections of --parallel. See <see cref="Client.SshPersist"/>.</summary>
    public int SshPersist { get; init; }
    /// <summary>When the remote has no bcmr, fail instead of falling back to scp; with <see cref="Direct"/>, fail when
    /// no direct channel can be set up instead of continuing over ssh.</summary>
    public bool NoFallback { get; init; }
    /// <summary>--direct direct: file data goes over a TCP connection of its own in AES-256-GCM records, set up through
    /// the ssh session (<see cref="Client.DirectChannel"/>); every connection of --parallel gets its own. When the
    /// server cannot offer one, the transfer goes on over ssh with a warning (or fails, with <see cref="NoFallback"/>).</summary>
    public bool Direct { get; init; }
    /// <summary>Wire compression: auto (best codec both sides have), zstd, lz4, none. Null: <c>BCMR_COMPRESS</c>, else auto.</summary>
    public string? Compress { get; init; }
    /// <summary>Bytes per second for file data (rsync's --bwlimit); 0 = unlimited.</summary>
    public long BandwidthLimit { get; init; }
    /// <summary>A connection waiting for its server while no byte moves either way for this long is given up as
    /// stalled; null: <see cref="Client.ServeClient.DefaultStallTimeout"/>; zero: never.</summary>
    public TimeSpan? StallTimeout { get; init; }

    /// <summary>Where one-line warnings about the whole operation go (e.g. "falling back to scp"); the CLI prints
    /// them on stderr, the cmdlets write them as warnings. Per-file warnings travel in <see cref="CopyResult.Warnings"/>.</summary>
    public Action<string>? Warn { get; init; }

    /// <summary>How many more times a file that failed on a transient error (<see cref="Retrying.IsTransient"/>: a lost
    /// connection, a busy file, a source that changed while read, data damaged on the way) is tried again. 0: never.</summary>
    public int Retries { get; init; }
    /// <summary>The wait before the first retry; it doubles for each further one, up to <see cref="Retrying.MaxDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = DefaultRetryDelay;
    public static TimeSpan DefaultRetryDelay => Retrying.DefaultDelay;
    /// <summary>The destination names the copy itself, never a directory to copy into (how a retry names a file
    /// exactly where the first attempt would have put it).</summary>
    internal bool ExactDestination { get; init; }
    /// <summary>Copy only the entries with these relative paths (as <see cref="Excludes"/> sees them), directories on
    /// the way included: what a sync decided to copy.</summary>
    internal IReadOnlySet<string>? Only { get; init; }
    /// <summary>An open session to the remote host that a copy over one connection uses instead of connecting, and
    /// leaves open for its owner: a sync lends the connection it listed over to its copies (one ssh login, not two).</summary>
    internal Client.ServeClient? Connection { get; init; }

    /// <summary>Minimum time between progress reports.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    public static int DefaultJobs => Math.Min(Environment.ProcessorCount, 8);

    public string Operation => Move ? "move" : "copy";

    /// <summary>-r, or a move (mv moves directories without being asked).</summary>
    internal bool Recurses => Recursive || Move;

    /// <summary>Where the sources go (<see cref="CopyRules.PlanDestination"/>), with this request's flags.</summary>
    internal DestinationPlan PlanDestination(int sourceCount, string shown, bool exists, bool isDirectory) =>
        CopyRules.PlanDestination(sourceCount, shown, exists, isDirectory, ExactDestination, CreateMissingDestination);
}
