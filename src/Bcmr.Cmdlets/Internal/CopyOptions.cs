using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cmdlets.Internal;

/// <summary>Copy-BcmrItem's engine switches, gathered so that turning them into a <see cref="CopyRequest"/> is one
/// testable function rather than code inside the cmdlet.</summary>
internal sealed record CopyOptions
{
    public bool Move { get; init; }
    public bool Recurse { get; init; }
    public bool Force { get; init; }
    public bool SkipUnchanged { get; init; }
    public bool Preserve { get; init; }
    public IReadOnlyList<string> Exclude { get; init; } = [];
    public bool Resume { get; init; }
    public bool Strict { get; init; }
    public bool Append { get; init; }
    public bool Verify { get; init; }
    public bool Sync { get; init; }
    public int? Jobs { get; init; }
    public int Parallel { get; init; } = 1;
    public int SshPersist { get; init; }
    public bool Fast { get; init; }
    public string? SshCommand { get; init; }
    public string? RemoteCommand { get; init; }
    public bool NoFallback { get; init; }
    /// <summary>-Direct (or BCMR_DIRECT=direct): data over a direct AES-GCM channel set up through ssh.</summary>
    public bool Direct { get; init; }
    public string? Compress { get; init; }
    public long BandwidthLimit { get; init; }
    /// <summary>PowerShell's current FileSystem location: ssh and scp run there (-SshCommand 'ssh -F ./cfg').</summary>
    public string? WorkingDirectory { get; init; }
    public TimeSpan? StallTimeout { get; init; }
    public int Retries { get; init; }
    public TimeSpan RetryDelay { get; init; } = CopyRequest.DefaultRetryDelay;

    /// <summary>Progress at most five times a second: PowerShell hosts redraw on every record.</summary>
    public static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(200);

    /// <param name="warn">Where the engine's warnings go (e.g. the scp fallback); called on engine threads.</param>
    public CopyRequest ToRequest(IReadOnlyList<string> sources, string destination, Action<string>? warn = null) => new()
    {
        Sources = sources,
        Destination = destination,
        // A piped batch into a folder that does not exist yet creates it (robocopy's and rsync's habit, not cp's).
        CreateMissingDestination = true,
        Move = Move,
        Recursive = Recurse,
        Force = Force,
        SkipUnchanged = SkipUnchanged,
        // Copy-Item keeps LastWriteTime; so do we (and -SkipUnchanged relies on it for the next run).
        KeepTimes = true,
        Preserve = Preserve,
        Excludes = Exclude.Select(Bcmr.Engine.Local.Wildcard.PowerShellToRegex).ToArray(),
        // The strongest proof asked for wins, as with bcmr's -s/-a/-C.
        Resume = Strict ? ResumeMode.Strict : Append ? ResumeMode.Append : Resume ? ResumeMode.Resume : ResumeMode.None,
        Verify = Verify,
        Sync = Sync,
        Jobs = Jobs ?? CopyRequest.DefaultJobs,
        Parallel = Parallel,
        SshPersist = SshPersist,
        Fast = Fast,
        SshCommand = string.IsNullOrEmpty(SshCommand) ? null : SshCommand,
        RemoteCommand = string.IsNullOrEmpty(RemoteCommand) ? null : RemoteCommand,
        NoFallback = NoFallback,
        Direct = Direct,
        Compress = string.IsNullOrEmpty(Compress) ? null : Compress.ToLowerInvariant(),
        BandwidthLimit = BandwidthLimit,
        WorkingDirectory = WorkingDirectory,
        StallTimeout = StallTimeout,
        Retries = Retries,
        RetryDelay = RetryDelay,
        ProgressInterval = ProgressInterval,
        Warn = warn,
    };
}
