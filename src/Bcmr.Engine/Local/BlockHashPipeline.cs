using Bcmr.Engine.Codecs;
using System.Buffers;
using System.Runtime.ExceptionServices;
using Bcmr.Engine.Hashing;

namespace Bcmr.Engine.Local;

/// <summary>
/// Hashes the blocks of a resumable copy off the copy thread, one BLAKE3 pass per block. The copy thread reads a
/// block into a buffer from <see cref="Rent"/>, writes it, and <see cref="Submit"/>s it; worker threads (two where
/// there are two cores) take whole blocks from one queue, so neighbouring blocks are hashed at the same time (a
/// block's chaining value depends only on its bytes and its index), and the results enter the ledger in file order.
/// A buffer goes back to the free list as soon as its block is hashed. With the hashing spread over both cores and
/// the read/write on the copy thread, the copy's kernel work and the hash share the machine instead of the hash
/// running on one core behind it. Small jobs run inline (no threads) to keep per-file overhead low.
/// <para>All hand-offs are a queue and a free list under one lock with <see cref="Monitor.Wait(object, int)"/>: no
/// spinning. (BlockingCollection spins before it blocks; on two cores, with a thread waiting at every block, the
/// spinning took measurable CPU from the threads doing the work.)</para>
/// <para>A short last block is not hashed here: it is held until <see cref="FileHash"/>, which finishes the
/// whole-file hash from the ledger's chaining values and those bytes.</para>
/// </summary>
internal sealed class BlockHashPipeline : IDisposable
{
    private readonly BlockLedger _ledger;
    private readonly long _fileSize;
    private readonly long _fullBlocks;
    private readonly bool _threaded;
    private readonly Stack<byte[]> _free = new();
    private readonly Queue<Job> _queue = new();
    private bool _closed;
    private readonly Thread[] _threads = Array.Empty<Thread>();
    private readonly Blake3Hasher? _inlineHasher;
    private readonly object _lock = new();
    private readonly Dictionary<long, byte[]> _hashed = new();
    private long _nextToRecord;
    private Exception? _failure;
    private byte[]? _tail;
    private int _tailLength;
    private byte[]? _singleBlockRoot;
    private byte[]? _fileHash;
    private bool _fileHashDone;
    private bool _disposed;
    private readonly ThreadBudget? _budget;

    private readonly record struct Job(long Index, byte[] Buffer);

    /// <summary>Worker threads for one pipeline: both cores of a two-core machine, no more (the copy thread is the
    /// third runnable thread, and with --jobs several pipelines run at once).</summary>
    internal static int WorkerCount => Math.Clamp(Environment.ProcessorCount, 1, 2);

    /// <param name="ledger">Receives each full block's hash (of the ledger's kind), in order; holds the blocks
    /// before the first one submitted.</param>
    /// <param name="fileSize">Size of the whole file, so the last, short block can complete the whole-file hash.</param>
    /// <param name="threaded">Use worker threads (worth it when at least a couple of blocks are coming).</param>
    /// <param name="budget">Where the worker threads are rented; what it cannot give, the copy thread hashes inline.</param>
    public BlockHashPipeline(BlockLedger ledger, long fileSize, bool threaded, ThreadBudget? budget = null)
    {
        _ledger = ledger;
        _fileSize = fileSize;
        _fullBlocks = fileSize / BlockLedger.BlockSize;
        _nextToRecord = ledger.Count;
        int workers = !threaded ? 0 : budget?.Rent(WorkerCount) ?? WorkerCount;
        _budget = budget;
        threaded = workers > 0;
        _threaded = threaded;
        // One buffer per worker, one being read and written, one spare so the copy thread rarely waits.
        for (int i = 0; i < (threaded ? workers + 2 : 1); i++) _free.Push(BlockBuffers.Pool.Rent(BlockLedger.BlockSize));
        if (threaded)
        {
            _threads = new Thread[workers];
            for (int i = 0; i < workers; i++)
            {
                _threads[i] = new Thread(Work) { IsBackground = true, Name = "bcmr-hash-" + i };
                _threads[i].Start();
            }
        }
        else
        {
            _inlineHasher = Blake3Hasher.Create();
        }
    }

    /// <summary>
    /// The whole-file hash, once every full block is recorded (<see cref="WaitFor"/>) and the short last block, if
    /// any, was submitted; null when the ledger cannot give it (standalone roots) or the file was not hashed to its
    /// end.
    /// </summary>
    public byte[]? FileHash
    {
        get
        {
            lock (_lock)
            {
                if (_fileHashDone) return _fileHash;
                if (_nextToRecord < _fullBlocks) return null;
                bool tailNeeded = _fileSize % BlockLedger.BlockSize != 0;
                if (tailNeeded && _tail is null) return null;
                var tail = tailNeeded ? _tail.AsSpan(0, _tailLength) : ReadOnlySpan<byte>.Empty;
                _fileHash = _ledger.FileHash(_fileSize, tail);
                if (_fileHash is null && _fileSize == BlockLedger.BlockSize)
                    _fileHash = _ledger.Kind == BlockHashKind.Root ? (byte[])_ledger.Hash(0).Clone() : _singleBlockRoot;
                _fileHashDone = true;
                if (_tail is not null) { _free.Push(_tail); _tail = null; }
                return _fileHash;
            }
        }
    }

    /// <summary>A copy of the first <paramref name="blocks"/> recorded blocks, safe to keep while hashing goes on.</summary>
    public BlockLedger Snapshot(int blocks)
    {
        lock (_lock) return _ledger.Prefix(blocks);
    }

    /// <summary>A free block buffer; waits while all of them are being hashed.</summary>
    public byte[] Rent(CancellationToken ct)
    {
        lock (_lock)
        {
            while (true)
            {
                // A failed worker never returns its buffer: do not wait for it.
                if (_failure is not null) ExceptionDispatchInfo.Capture(_failure).Throw();
                if (_free.TryPop(out var buffer)) return buffer;
                ct.ThrowIfCancellationRequested();
                Monitor.Wait(_lock, 100);
            }
        }
    }

    /// <summary>Hands over block <paramref name="index"/> (its bytes at the start of <paramref name="buffer"/>);
    /// the buffer goes back to the free list once it is hashed. Only the file's last block may be short.</summary>
    public void Submit(long index, byte[] buffer, int length)
    {
        ThrowIfFailed();
        if (length < BlockLedger.BlockSize)
        {
            if (index != _fullBlocks || (long)index * BlockLedger.BlockSize + length != _fileSize)
                throw new ArgumentException("Only the file's last block may be short.", nameof(length));
            lock (_lock)
            {
                _tail = buffer;
                _tailLength = length;
            }
            return;
        }
        var job = new Job(index, buffer);
        if (!_threaded)
        {
            Hash(job, _inlineHasher!);
            return;
        }
        lock (_lock)
        {
            _queue.Enqueue(job);
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Waits until every full block before <paramref name="blocks"/> is in the ledger.</summary>
    public void WaitFor(long blocks, CancellationToken ct)
    {
        blocks = Math.Min(blocks, _fullBlocks);
        lock (_lock)
        {
            while (_nextToRecord < blocks && _failure is null)
            {
                ct.ThrowIfCancellationRequested();
                Monitor.Wait(_lock, 100);
            }
        }
        ThrowIfFailed();
    }

    private void Work()
    {
        var hasher = Blake3Hasher.Create();
        try
        {
            while (true)
            {
                Job job;
                lock (_lock)
                {
                    while (_queue.Count == 0 && !_closed) Monitor.Wait(_lock);
                    if (!_queue.TryDequeue(out job)) return; // closed and drained
                }
                Hash(job, hasher);
            }
        }
        catch (Exception e)
        {
            lock (_lock)
            {
                _failure ??= e;
                Monitor.PulseAll(_lock);
            }
        }
    }

    private void Hash(Job job, Blake3Hasher hasher)
    {
        var data = job.Buffer.AsSpan(0, BlockLedger.BlockSize);
        var hash = new byte[BlockLedger.HashSize];
        _ledger.Compute(hasher, job.Index, data, hash);
        byte[]? root = null;
        // A file of exactly one block: its hash is the block's root, one more compression from the same state.
        if (_ledger.Kind == BlockHashKind.ChainingValue && job.Index == 0 && _fileSize == BlockLedger.BlockSize)
            root = hasher.Finalize();

        lock (_lock)
        {
            if (root is not null) _singleBlockRoot = root;
            _hashed[job.Index] = hash;
            while (_hashed.Remove(_nextToRecord, out var next))
            {
                _ledger.Add(next);
                _nextToRecord++;
            }
            _free.Push(job.Buffer);
            Monitor.PulseAll(_lock);
        }
    }

    private void ThrowIfFailed()
    {
        Exception? failure;
        lock (_lock) failure = _failure;
        if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
        foreach (var t in _threads) t.Join();
        _budget?.Return(_threads.Length);
        lock (_lock)
        {
            if (_tail is not null) { _free.Push(_tail); _tail = null; }
            // Buffers of jobs never hashed (a failed worker, an abandoned copy) are dropped to the GC.
            while (_free.TryPop(out var b)) BlockBuffers.Pool.Return(b);
        }
    }
}
