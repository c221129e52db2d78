using Bcmr.Engine.Platform;
namespace Bcmr.Engine.Transfers;

/// <summary>Counts and forwards per-entry results (from any thread) and builds the summary at the end.</summary>
internal sealed class ResultLog(Action<CopyResult>? onResult)
{
    private readonly object _lock = new();
    private readonly List<CopyResult> _failures = new();
    private int _files, _skipped, _failed, _dirs;
    private long _bytes, _wire;
    private int _dedup;

    public void Succeed(CopyResult r)
    {
        lock (_lock) { _files++; _bytes += r.Bytes; _wire += r.WireBytes; _dedup += r.DedupBlocks; }
        onResult?.Invoke(r);
    }

    public void Skip(CopyResult r)
    {
        lock (_lock) { _skipped++; _wire += r.WireBytes; }
        onResult?.Invoke(r);
    }

    public void Fail(CopyResult r)
    {
        lock (_lock) { _failed++; _failures.Add(r); _wire += r.WireBytes; }
        onResult?.Invoke(r);
    }

    public void Fail(string src, string dst, Platform.EntryKind kind, BcmrException e, string transport = "local", long wire = 0) =>
        Fail(new CopyResult
        {
            Source = src, Destination = dst, Kind = kind, Status = CopyStatus.Failed, Message = e.Message, ErrorCode = e.Code,
            Transport = transport, WireBytes = wire,
        });

    public void DirectoryCreated()
    {
        lock (_lock) _dirs++;
    }

    public TransferSummary Summary(string operation, TimeSpan duration, BcmrException? fatal, bool cancelled, string transport)
    {
        lock (_lock)
        {
            return new TransferSummary
            {
                Operation = operation, Files = _files, Bytes = _bytes, Skipped = _skipped, Failed = _failed, Directories = _dirs,
                Duration = duration, Cancelled = cancelled, Fatal = fatal, Failures = _failures.ToArray(), WireBytes = _wire, DedupBlocks = _dedup,
                Transport = transport,
            };
        }
    }
}
