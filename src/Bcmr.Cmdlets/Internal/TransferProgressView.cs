using System.Globalization;
using System.Management.Automation;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// Turns the engine's progress snapshots into Write-Progress records: one parent record for the whole transfer (bytes,
/// files, rate, seconds remaining) and one child record per file in flight (one per connection with -Parallel, one per
/// worker of a local copy), each keeping its id while it runs; a file that is no longer in flight gets its Completed
/// record, so a finished file's bar never lingers. At most one update per
/// <see cref="MinInterval"/> whatever the source sends, and <see cref="Complete"/> always closes every record that was
/// shown (child first), so a host never keeps a stale bar after an error or a stop.
/// </summary>
internal sealed class TransferProgressView
{
    public const int ParentId = 1;
    public const int ChildId = 2;

    private readonly string _activity;
    private TimeSpan? _lastAt;
    private bool _parentShown;
    /// <summary>Child records shown, by file, with their activity ids (from <see cref="ChildId"/> up).</summary>
    private readonly Dictionary<string, int> _children = new();

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
        var files = p.ActiveFiles.Count > 0 ? p.ActiveFiles
            : p.CurrentFile is { Length: > 0 } current ? [new FileProgress(current, p.CurrentFileBytes, p.CurrentFileSize)]
            : [];
        var gone = new HashSet<string>(_children.Keys);
        foreach (var f in files) gone.Remove(f.Path);
        foreach (var path in gone)
        {
            records.Add(Completed(_children[path]));
            _children.Remove(path);
        }
        foreach (var f in files)
            if (!_children.ContainsKey(f.Path)) _children[f.Path] = FreeChildId();
        foreach (var f in files)
        {
            var name = Path.GetFileName(f.Path.TrimEnd('/', '\\'));
            records.Add(new ProgressRecord(_children[f.Path], Nonempty(name, f.Path), ChildStatus(f))
            {
                ParentActivityId = ParentId,
                PercentComplete = f.Size > 0 ? Percent(100.0 * f.Bytes / f.Size) : 0,
                CurrentOperation = f.Path,
            });
        }
        return records;
    }

    private int FreeChildId()
    {
        int id = ChildId;
        while (_children.ContainsValue(id)) id++;
        return id;
    }

    private ProgressRecord Completed(int childId) =>
        new(childId, _activity, "Done") { ParentActivityId = ParentId, RecordType = ProgressRecordType.Completed, PercentComplete = 100 };

    /// <summary>The Completed records for whatever was shown; empty when nothing was. Idempotent.</summary>
    public IReadOnlyList<ProgressRecord> Complete()
    {
        var records = _children.Values.Order().Select(Completed).ToList();
        _children.Clear();
        if (_parentShown)
            records.Add(new ProgressRecord(ParentId, _activity, "Done") { RecordType = ProgressRecordType.Completed, PercentComplete = 100 });
        _parentShown = false;
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

    private static string ChildStatus(FileProgress f) => $"{Bcmr.Units.Bytes(f.Bytes)} of {Bcmr.Units.Bytes(f.Size)}";
}
