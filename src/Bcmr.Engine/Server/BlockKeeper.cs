using System.Collections.Concurrent;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

/// <summary>
/// Keeps the blocks a dedup upload received in the content store, from the staging file they were written to, on a
/// thread of its own when the session's budget has one (the store's write then overlaps the next block's receive;
/// on the session thread otherwise). Each block goes in under the hash the client gave for it in HaveBlocks, not one
/// computed again here: the store verifies every blob when it reads it, so a wrong hash costs a later upload one
/// transfer and can never put wrong bytes into a file. Best effort: a block that cannot be kept is logged, never an
/// error of the upload. Dispose before the staging file is closed, cut or renamed: it waits for the block in hand
/// and drops the rest.
/// </summary>
internal sealed class BlockKeeper : IDisposable
{
    private readonly ContentStore _store;
    private readonly SafeFileHandle _staged;
    private readonly string _stagedPath;
    private readonly Action<string> _log;
    private readonly ThreadBudget _budget;
    private readonly BlockingCollection<(byte[] Hash, long Offset, int Length)> _queue = new();
    private Thread? _thread;
    private bool _rented, _noThread;
    private string? _failure; // the first block that could not be kept; logged on the session thread
    private volatile bool _dropping;
    private bool _disposed;

    public BlockKeeper(ContentStore store, SafeFileHandle staged, string stagedPath, ThreadBudget budget, Action<string> log)
    {
        _store = store;
        _staged = staged;
        _stagedPath = stagedPath;
        _budget = budget;
        _log = log;
    }

    /// <summary>Keeps bytes [offset, offset + length) of the staging file, already written there, under hash.</summary>
    public void Keep(ReadOnlySpan<byte> hash, long offset, int length)
    {
        if (_thread is null && !_noThread)
        {
            _rented = _budget.Rent(1) == 1;
            _noThread = !_rented;
            if (_rented)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "bcmr-serve-store" };
                _thread.Start();
            }
        }
        if (_thread is null) Store(hash, offset, length);
        else _queue.Add((hash.ToArray(), offset, length));
    }

    /// <summary>Waits until every block handed over is kept.</summary>
    public void Finish()
    {
        if (_thread is not null && !_queue.IsAddingCompleted)
        {
            _queue.CompleteAdding();
            _thread.Join();
        }
        ReportFailure();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _dropping = true;
        if (_thread is not null && !_queue.IsAddingCompleted)
        {
            _queue.CompleteAdding();
            _thread.Join();
        }
        if (_rented)
        {
            _rented = false;
            _budget.Return(1);
        }
        _queue.Dispose();
        ReportFailure();
    }

    private void ReportFailure()
    {
        if (_failure is null) return;
        _log(_failure);
        _failure = null;
    }

    private void Run()
    {
        foreach (var (hash, offset, length) in _queue.GetConsumingEnumerable())
            if (!_dropping) Store(hash, offset, length);
    }

    private void Store(ReadOnlySpan<byte> hash, long offset, int length)
    {
        try { _store.Store(hash, _staged, _stagedPath, offset, length); }
        catch (Exception e) // whatever it is, on a thread of its own it would end the server: the store is best effort
        {
            // One line per upload, not one per block.
            _failure ??= $"content store {_store.Directory}: could not keep a block: {e.Message}";
        }
    }
}
