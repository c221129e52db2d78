using Bcmr.Engine.Platform;
using System.Globalization;
using Bcmr.Engine;
using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;
using EngineResult = Bcmr.Engine.Transfers.CopyResult;
using EngineSummary = Bcmr.Engine.Transfers.TransferSummary;
using EngineSession = Bcmr.Engine.Local.SessionInfo;

// The objects the cmdlets emit. Their own types (not the engine's) so that PowerShell users see short, stable type
// names (Bcmr.CopyResult) that the format file and scripts can rely on while the engine's types evolve. Every
// quantity is a number or a TimeSpan; units appear only in Bcmr.format.ps1xml.
namespace Bcmr;

/// <summary>One file (or link, or failed directory) that Copy-BcmrItem handled; emitted with -PassThru.</summary>
public sealed class CopyResult
{
    public string Source { get; init; } = "";
    public string Destination { get; init; } = "";
    public EntryKind Kind { get; init; }
    public CopyStatus Status { get; init; }
    public long Bytes { get; init; }
    /// <summary>Lowercase hex BLAKE3 of the content when one was computed (-Verify, resumed copies); otherwise null.</summary>
    public string? Blake3 { get; init; }
    public TimeSpan Duration { get; init; }
    /// <summary>"local", "ssh" (bcmr serve) or "scp" (the fallback).</summary>
    public string Transport { get; init; } = "local";
    public CopyMethod Method { get; init; }
    /// <summary>File bytes that crossed the network (after compression and dedup); 0 for local copies.</summary>
    public long WireBytes { get; init; }
    /// <summary>4 MiB blocks the server took from its content store instead of the wire.</summary>
    public int DedupBlocks { get; init; }
    /// <summary>Connections that carried the file: more than 1 when -Parallel striped it.</summary>
    public int Connections { get; init; } = 1;
    /// <summary>Bytes already at the destination that were kept (a resumed copy).</summary>
    public long ResumedFrom { get; init; }
    public ResumeDecision? Resume { get; init; }
    /// <summary>With a resume switch: what proved the kept bytes equal to the source ("size", "size+mtime", "blake3",
    /// "blake3-prefix", "chaining-values", "blake3-blocks" for a striped file's blocks).</summary>
    public string? ResumeCompared { get; init; }
    public string? Message { get; init; }
    public BcmrErrorCode? ErrorCode { get; init; }

    internal static CopyResult From(EngineResult r) => new()
    {
        Source = r.Source, Destination = r.Destination, Kind = r.Kind, Status = r.Status, Bytes = r.Bytes,
        Blake3 = r.Blake3, Duration = r.Duration, Transport = r.Transport, Method = r.Method, WireBytes = r.WireBytes,
        DedupBlocks = r.DedupBlocks, Connections = r.Connections, ResumedFrom = r.ResumedFrom,
        Resume = r.Resume, ResumeCompared = r.ResumeCompared, Message = r.Message is null ? null : Bcmr.Cmdlets.Internal.ParameterWording.ForCmdlet(r.Message), ErrorCode = r.ErrorCode,
    };
}

/// <summary>Totals of one Copy-BcmrItem invocation.</summary>
public sealed class TransferSummary
{
    public string Operation { get; init; } = "copy";
    public int Files { get; init; }
    public long Bytes { get; init; }
    public int Skipped { get; init; }
    public int Failed { get; init; }
    public int Directories { get; init; }
    public TimeSpan Duration { get; init; }
    public double BytesPerSecond { get; init; }
    /// <summary>"local", "ssh" or "scp".</summary>
    public string Transport { get; init; } = "local";
    /// <summary>File bytes that crossed the network (after compression and dedup).</summary>
    public long WireBytes { get; init; }
    public int DedupBlocks { get; init; }
    /// <summary>The copy was stopped (Ctrl+C) before it finished.</summary>
    public bool Cancelled { get; init; }
    public bool Succeeded => !Cancelled && Failed == 0;

    internal static TransferSummary From(EngineSummary s) => new()
    {
        Operation = s.Operation, Files = s.Files, Bytes = s.Bytes, Skipped = s.Skipped, Failed = s.Failed,
        Directories = s.Directories, Duration = s.Duration, BytesPerSecond = s.BytesPerSecond, Transport = s.Transport,
        WireBytes = s.WireBytes, DedupBlocks = s.DedupBlocks, Cancelled = s.Cancelled,
    };
}

/// <summary>A temporary file a killed copy left (Get-BcmrSession -TemporaryIn).</summary>
public sealed class StaleTemporary
{
    public string Path { get; init; } = "";
    public long Bytes { get; init; }
    public DateTimeOffset Modified { get; init; }

    internal static StaleTemporary From(Bcmr.Engine.Local.StaleTemporary t) => new() { Path = t.Path, Bytes = t.Bytes, Modified = t.Modified };
}

/// <summary>A resumable copy's session, as Get-BcmrSession shows it.</summary>
public sealed class SessionInfo
{
    public string Id { get; init; } = "";
    public string? Source { get; init; }
    public string? Destination { get; init; }
    /// <summary>Bytes the session vouches for (synced at the last checkpoint).</summary>
    public long BytesDone { get; init; }
    public long TotalBytes { get; init; }
    public double Percent { get; init; }
    public DateTimeOffset? Created { get; init; }
    public DateTimeOffset? Updated { get; init; }
    /// <summary>Time since the last checkpoint; null when the session file cannot be read.</summary>
    public TimeSpan? Age { get; init; }
    /// <summary>Older than seven days: the next resume will refuse it and start over.</summary>
    public bool IsStale { get; init; }
    /// <summary>Why the session cannot be used (corrupt, truncated, unreadable), or null.</summary>
    public string? Problem { get; init; }
    public string? PartialFile { get; init; }
    public string SessionFile { get; init; } = "";

    internal static SessionInfo From(EngineSession s) => new()
    {
        Id = s.Id, Source = s.Source, Destination = s.Destination, BytesDone = s.BytesDone, TotalBytes = s.TotalBytes,
        Percent = s.Percent, Created = s.Created, Updated = s.Updated, Age = s.Age, IsStale = s.IsStale, Problem = s.Problem,
        PartialFile = s.PartialFile, SessionFile = s.SessionFile,
    };
}

/// <summary>Where Start-BcmrServe -Listen accepts connections (the real port when 0 was asked for).</summary>
public sealed class ServeEndpoint
{
    public string Address { get; init; } = "";
    public int Port { get; init; }
    public string Root { get; init; } = "";
    public override string ToString() => Address.Contains(':') ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
}

/// <summary>Human units for the format file's views (the objects themselves keep numbers).</summary>
public static class Units
{
    public static string Bytes(double n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int i = 0;
        while (n >= 1024 && i < units.Length - 1) { n /= 1024; i++; }
        return i == 0 ? string.Format(CultureInfo.InvariantCulture, "{0:0} B", n)
            : string.Format(CultureInfo.InvariantCulture, "{0:0.0} {1}", n, units[i]);
    }

    public static string Rate(double bytesPerSecond) => Bytes(bytesPerSecond) + "/s";

    public static string Age(TimeSpan t) =>
        t.TotalMinutes < 1 ? $"{(int)t.TotalSeconds}s"
        : t.TotalHours < 1 ? $"{(int)t.TotalMinutes}m"
        : t.TotalDays < 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m"
        : $"{(int)t.TotalDays}d{t.Hours:00}h";

    public static string Seconds(TimeSpan t) =>
        t.TotalSeconds < 60 ? string.Format(CultureInfo.InvariantCulture, "{0:0.0} s", t.TotalSeconds)
        : t.TotalHours < 1 ? $"{(int)t.TotalMinutes}:{t.Seconds:00}"
        : $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}";
}

/// <summary>What Clear-BcmrCas removed from the content store, and what is left.</summary>
public sealed class CasClearResult
{
    public string Directory { get; init; } = "";
    public long BlobsFreed { get; init; }
    public long BytesFreed { get; init; }
    public long BlobsLeft { get; init; }
    public long BytesLeft { get; init; }
}

/// <summary>One thing Sync-BcmrItem did (or, with -WhatIf, would do) to the destination; emitted with -PassThru.</summary>
public sealed class SyncAction
{
    /// <summary>Copy (new in the destination), Update (replaced), Delete.</summary>
    public string Action { get; init; } = "";
    /// <summary>New, Size, Mtime, Checksum, Target, Type, Extraneous or Excluded.</summary>
    public string Reason { get; init; } = "";
    /// <summary>Below the synced roots, '/'-separated.</summary>
    public string Path { get; init; } = "";
    public EntryKind Kind { get; init; }
    public string? Source { get; init; }
    public string Destination { get; init; } = "";
    /// <summary>Done, Failed, DryRun, Declined (-Confirm said no) or Skipped (-MaxDelete).</summary>
    public string Status { get; init; } = "";
    public long Bytes { get; init; }
    public long WireBytes { get; init; }
    /// <summary>Where the replaced or deleted version went (-BackupDirectory).</summary>
    public string? Backup { get; init; }
    public string? Message { get; init; }

    internal static SyncAction From(Bcmr.Engine.Sync.SyncAction a) => new()
    {
        Action = a.Action.ToString(), Reason = a.Reason.ToString(), Path = a.Path, Kind = a.Kind, Source = a.Source,
        Destination = a.Destination, Status = a.Status.ToString(), Bytes = a.Bytes, WireBytes = a.WireBytes,
        Backup = a.Backup, Message = a.Message,
    };
}

/// <summary>What one Sync-BcmrItem did in all: always its last output object.</summary>
public sealed class SyncSummary
{
    public int Copied { get; init; }
    public int Updated { get; init; }
    public int Deleted { get; init; }
    public int Unchanged { get; init; }
    public int Failed { get; init; }
    public long Bytes { get; init; }
    public long WireBytes { get; init; }
    public TimeSpan Duration { get; init; }
    public bool WhatIf { get; init; }
    /// <summary>Why no delete ran although -Delete or -Mirror asked for them (a copy failed, -MaxDelete).</summary>
    public string? DeletesSkipped { get; init; }
    public string Transport { get; init; } = "local";

    internal static SyncSummary From(Bcmr.Engine.Sync.SyncSummary s) => new()
    {
        Copied = s.Copied, Updated = s.Updated, Deleted = s.Deleted, Unchanged = s.Unchanged, Failed = s.Failed,
        Bytes = s.Bytes, WireBytes = s.WireBytes, Duration = s.Duration, WhatIf = s.DryRun, DeletesSkipped = s.DeletesSkipped,
        Transport = s.Transport,
    };
}
