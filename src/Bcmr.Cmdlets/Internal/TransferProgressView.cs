using System.Globalization;
using System.Management.Automation;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// Turns the engine's progress snapshots into Write-Progress records: one parent record for the whole transfer (bytes,
/// files, rate, seconds remaining) and one child record for the file in flight. At most one update per
/// <see cref="MinInterval"/> whatever the source sends, and <see cref="Complete"/> always closes every record that was
/// shown (child first), so a host never keeps a stale bar after an error or a stop.
/// </summary>
internal sealed class TransferProgressView
{
    public const int ParentId = 1;
    public const int ChildId = 2;

    private readonly string _activity;
    private TimeSpan? _lastAt;
    private bool _parentShown, _childShown;

    public TransferProgressView(string activity, TimeSpan minInterval)
    {
        _activity = activity;
        MinInterval = minInterval;
    }

    public TimeSpan MinInterval { get; }

    /// <summary>Records to write for this snapshot, taken at <paramref name="now"/> (any monotonic clock); empty when
    /// throttled. A final snapshot shows nothing by itself: the Completed records follow.</summary>
    public IReadOnlyList<ProgressRecord> Update(in TransferProgress p, TimeSpan now)
    {
        if (p.Final) return [];
        if (_lastAt is { } last && now - last < MinInterval) return [];
        _lastAt = now;
        var records = new List<ProgressRecord>(2);
        var parent = new ProgressRecord(ParentId, _activity, ParentStatus(p))
        {
            PercentComplete = Percent(p.Percent),
            SecondsRemaining = p.Eta is { } eta ? (int)Math.Min(int.MaxValue, Math.Ceiling(eta.TotalSeconds)) : -1,
        };
        records.Add(parent);
        _parentShown = true;
        if (p.CurrentFile is { Length: > 0 } file)
        {
            var name = Path.GetFileName(file.TrimEnd('/', '\\'));
            var child = new ProgressRecord(ChildId, Nonempty(name, file), ChildStatus(p))
            {
                ParentActivityId = ParentId,
                PercentComplete = p.CurrentFileSize > 0 ? Percent(100.0 * p.CurrentFileBytes / p.CurrentFileSize) : 0,
                CurrentOperation = file,
            };
            records.Add(child);
            _childShown = true;
        }
        return records;
    }

    /// <summary>The Completed records for whatever was shown; empty when nothing was. Idempotent.</summary>
    public IReadOnlyList<ProgressRecord> Complete()
    {
        var records = new List<ProgressRecord>(2);
        if (_childShown)
            records.Add(new ProgressRecord(ChildId, _activity, "Done") { ParentActivityId = ParentId, RecordType = ProgressRecordType.Completed, PercentComplete = 100 });
        if (_parentShown)
            records.Add(new ProgressRecord(ParentId, _activity, "Done") { RecordType = ProgressRecordType.Completed, PercentComplete = 100 });
        _childShown = _parentShown = false;
        return records;
    }

    private static int Percent(double pct) => (int)Math.Clamp(Math.Floor(pct), 0, 100);

    private static string Nonempty(string? s, string fallback) => string.IsNullOrEmpty(s) ? fallback : s;

    internal static string ParentStatus(in TransferProgress p)
    {
        var rate = p.BytesPerSecond > 0 ? ", " + Bcmr.Units.Rate(p.BytesPerSecond) : "";
        return string.Format(CultureInfo.InvariantCulture, "{0} of {1}, {2} of {3} files{4}",
            Bcmr.Units.Bytes(p.BytesDone), Bcmr.Units.Bytes(p.BytesTotal), p.FilesDone, p.FilesTotal, rate);
    }

    private static string ChildStatus(in TransferProgress p) =>
        $"{Bcmr.Units.Bytes(p.CurrentFileBytes)} of {Bcmr.Units.Bytes(p.CurrentFileSize)}";
}
