using Bcmr.Engine.Platform;
namespace Bcmr.Engine.Transfers;

/// <summary>Counts and forwards per-entry results (from any thread) and builds the summary at the end.
/// <para>Between <see cref="BeginOrdered"/> and <see cref="EndOrdered"/>, a result given with an <c>order</c> (its
/// file's place in the plan) is held until every file before it has reported, so that files spread over several
/// connections still come out in the plan's order, whichever finished first. Counts are kept at once.</para></summary>
internal sealed class ResultLog(Action<CopyResult>? onResult)
{
    private readonly object _lock = new();
    private readonly object _orderLock = new();
    private CopyResult?[]? _held;
    private int _next;
    private readonly List<CopyResult> _failures = new();
    private int _files, _skipped, _failed, _dirs;
    private long _bytes, _wire;
    private int _dedup;

    public void Succeed(CopyResult r, int order = -1)
    {
        lock (_lock) { _files++; _bytes += r.Bytes; _wire += r.WireBytes; _dedup += r.DedupBlocks; }
        Forward(r, order);
    }

    public void Skip(CopyResult r, int order = -1)
    {
        lock (_lock) { _skipped++; _wire += r.WireBytes; }
        Forward(r, order);
    }

    public void Fail(CopyResult r, int order = -1)
    {
        lock (_lock) { _failed++; _failures.Add(r); _wire += r.WireBytes; }
        Forward(r, order);
    }

    public void Fail(string src, string dst, Platform.EntryKind kind, BcmrException e, string transport = "local", long wire = 0, int order = -1) =>
        Fail(new CopyResult
        {
            Source = src, Destination = dst, Kind = kind, Status = CopyStatus.Failed, Message = e.Message, ErrorCode = e.Code,
            Transport = transport, WireBytes = wire,
        }, order);

    /// <summary>From now on, results with an order in [0, <paramref name="count"/>) are forwarded in that order.</summary>
    public void BeginOrdered(int count)
    {
        lock (_orderLock)
        {
            _held = new CopyResult?[count];
            _next = 0;
        }
    }

    /// <summary>Forwards what is still held (files that never reported leave gaps), and stops ordering.</summary>
    public void EndOrdered()
    {
        lock (_orderLock)
        {
            if (_held is null) return;
            foreach (var r in _held.AsSpan(_next))
                if (r is not null) onResult?.Invoke(r);
            _held = null;
        }
    }

    private void Forward(CopyResult r, int order)
    {
        if (order >= 0)
        {
            lock (_orderLock)
            {
                // Forwarded under the lock, so that two threads releasing runs cannot interleave them.
                if (_held is { } held && order >= _next && order < held.Length && held[order] is null)
                {
                    held[order] = r;
                    while (_next < held.Length && held[_next] is { } ready)
                    {
                        held[_next++] = null;
                        onResult?.Invoke(ready);
                    }
                    return;
                }
            }
        }
        onResult?.Invoke(r);
    }

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
