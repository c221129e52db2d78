using Bcmr.Engine.Platform;
using Bcmr.Engine.Local;

namespace Bcmr.Engine.Transfers;

public enum CopyStatus { Copied, Moved, Skipped, Failed, DryRun }

/// <summary>The outcome for one entry (file, symlink, or a directory that failed or was moved whole). A record, so that
/// a result held back (a move from a remote host) can be given its final status with <c>with</c>.</summary>
public sealed record CopyResult
{
    public required string Source { get; init; }
    public required string Destination { get; init; }
    public EntryKind Kind { get; init; }
    public CopyStatus Status { get; init; }
    public long Bytes { get; init; }
    /// <summary>Lowercase hex BLAKE3 of the content, when something computed it (-V); otherwise null.</summary>
    public string? Blake3 { get; init; }
    public TimeSpan Duration { get; init; }
    public string Transport { get; init; } = "local";
    public CopyMethod Method { get; init; }
    /// <summary>File bytes that crossed the network for this entry (Data payloads, after compression and dedup);
    /// 0 for local copies.</summary>
    public long WireBytes { get; init; }
    /// <summary>4 MiB blocks the server took from its content store instead of the wire (dedup uploads).</summary>
    public int DedupBlocks { get; init; }
    /// <summary>Connections that carried the file's bytes: more than 1 when it was striped over the connections of
    /// --parallel N (each took ranges of it).</summary>
    public int Connections { get; init; } = 1;
    /// <summary>Offset the copy continued from (bytes already at the destination that were kept).</summary>
    public long ResumedFrom { get; init; }
    /// <summary>With a resume flag: what was decided for this file; null for an ordinary copy.</summary>
    public ResumeDecision? Resume { get; init; }
    /// <summary>With a resume flag: what proved the bytes kept or the file skipped equal to the source. "size" (-a
    /// trusts the length), "size+mtime" (a download whose copy has the source's size and modification time),
    /// "blake3" (the whole file's hash on both sides), "blake3-prefix" (the hash of the kept prefix on both sides),
    /// "chaining-values" (a local session's recorded block hashes, each block re-read and compared); null when
    /// nothing was kept.</summary>
    public string? ResumeCompared { get; init; }
    /// <summary>Bytes of the existing destination read back to decide where to continue (one block, usually).</summary>
    public long ResumeCheckBytes { get; init; }
    /// <summary>Time taken to decide where to continue (load the session, check the tail block).</summary>
    public TimeSpan ResumeCheckTime { get; init; }
    /// <summary>Why it was skipped or failed, or what a resume found (a refused session, a changed source), naming
    /// the path and the cause.</summary>
    public string? Message { get; init; }
    public BcmrErrorCode? ErrorCode { get; init; }
    /// <summary>Non-fatal things worth telling a careful user (e.g. extended attributes the destination refused).</summary>
    public IReadOnlyList<string>? Warnings { get; init; }

    public bool Succeeded => Status is CopyStatus.Copied or CopyStatus.Moved or CopyStatus.DryRun;
}

/// <summary>Totals for one invocation.</summary>
public sealed class TransferSummary
{
    public required string Operation { get; init; }
    public int Files { get; init; }
    public long Bytes { get; init; }
    public int Skipped { get; init; }
    public int Failed { get; init; }
    public int Directories { get; init; }
    public TimeSpan Duration { get; init; }
    /// <summary>File bytes that crossed the network (see <see cref="CopyResult.WireBytes"/>).</summary>
    public long WireBytes { get; init; }
    /// <summary>Blocks deduplicated (see <see cref="CopyResult.DedupBlocks"/>).</summary>
    public int DedupBlocks { get; init; }
    /// <summary>How a remote transfer travelled: "ssh" (bcmr serve), "scp" (fallback); "local" otherwise.</summary>
    public string Transport { get; init; } = "local";
    public double BytesPerSecond => Duration.TotalSeconds > 0 ? Bytes / Duration.TotalSeconds : 0;
    public bool Cancelled { get; init; }
    /// <summary>A failure that stopped the whole operation before any item (e.g. several sources into a file).</summary>
    public BcmrException? Fatal { get; init; }
    public IReadOnlyList<CopyResult> Failures { get; init; } = Array.Empty<CopyResult>();

    public bool Succeeded => Fatal is null && !Cancelled && Failed == 0;
}
