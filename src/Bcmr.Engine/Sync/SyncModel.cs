using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Sync;

public enum SyncActionKind { Copy, Update, Delete }

/// <summary>Why an entry is acted on: <c>New</c> (only in the source), <c>Size</c>, <c>Mtime</c>, <c>Checksum</c>
/// (the contents differ), <c>Target</c> (a link pointing elsewhere), <c>Type</c> (a file where the source has a
/// directory, or the reverse: removed, then copied), <c>Extraneous</c> (only in the destination), <c>Excluded</c>
/// (excluded, removed by --delete-excluded).</summary>
public enum SyncReason { New, Size, Mtime, Checksum, Target, Type, Extraneous, Excluded }

public enum SyncStatus { Done, Failed, DryRun, Declined, Skipped }

/// <summary>One thing a sync does (or, dry, would do) to the destination.</summary>
public sealed record SyncAction
{
    public required SyncActionKind Action { get; init; }
    public required SyncReason Reason { get; init; }
    /// <summary>Below the synced roots, '/'-separated ("a/b.txt").</summary>
    public required string Path { get; init; }
    public EntryKind Kind { get; init; }
    /// <summary>The source entry as given to the copy (null for a delete).</summary>
    public string? Source { get; init; }
    public required string Destination { get; init; }
    public long Bytes { get; init; }
    /// <summary>Entries a delete removes (a directory counts with everything under it).</summary>
    public int Entries { get; init; } = 1;
    public SyncStatus Status { get; init; }
    /// <summary>Where the replaced or removed version went (--backup-dir).</summary>
    public string? Backup { get; init; }
    public string? Message { get; init; }
    public BcmrErrorCode? ErrorCode { get; init; }
    /// <summary>File bytes that crossed the network for a copy or update that ran (after compression and dedup).</summary>
    public long WireBytes { get; init; }
    /// <summary>Lowercase hex BLAKE3 of what was copied, when the copy computed it.</summary>
    public string? Blake3 { get; init; }
    /// <summary>Bytes a partial file already held that the copy kept (an interrupted sync rerun with -C).</summary>
    public long ResumedFrom { get; init; }

    public string Verb => Action switch { SyncActionKind.Copy => "copy", SyncActionKind.Update => "update", _ => "delete" };
    public string ReasonText => Reason.ToString().ToLowerInvariant();
}

public sealed class SyncSummary
{
    public int Copied { get; init; }
    public int Updated { get; init; }
    public int Deleted { get; init; }
    /// <summary>Files found equal and left alone.</summary>
    public int Unchanged { get; init; }
    public int Failed { get; init; }
    /// <summary>File bytes copied (or, dry, to copy).</summary>
    public long Bytes { get; init; }
    public long WireBytes { get; init; }
    public TimeSpan Duration { get; init; }
    /// <summary>Why no delete ran although --delete was given (a copy failed, --max-delete); null when they ran.</summary>
    public string? DeletesSkipped { get; init; }
    public bool DryRun { get; init; }
    public bool Cancelled { get; init; }
    public BcmrException? Fatal { get; init; }
    public string Transport { get; init; } = "local";

    public bool Succeeded => Fatal is null && !Cancelled && Failed == 0 && DeletesSkipped is null;
}
