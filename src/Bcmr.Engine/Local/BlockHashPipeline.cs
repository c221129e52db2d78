using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Bcmr.Engine.Hashing;

namespace Bcmr.Engine.Local;

/// <summary>
/// Hashes the blocks of a resumable copy off the copy thread. The copy thread reads a block into a buffer from
/// <see cref="Rent"/>, writes it, and <see cref="Submit"/>s it; two worker threads, one for each kind of hash in
/// <see cref="BlockLedger"/>, take every block in order and return its buffer when both are done. With three buffers
/// in rotation, reading, writing and both hashes of neighbouring blocks overlap: on two cores the hashes cost little
/// wall time beyond the copy itself. Small jobs run inline (no threads) to keep per-file overhead low.
/// </summary>
internal sealed class BlockHashPipeline : IDisposable
{
    private const int Buffers = 3;

    private readonly BlockLedger _ledger;
    private readonly long _fileSize;
    private readonly bool _chainingValues;
    private readonly bool _threaded;
    private readonly BlockingCollection<byte[]> _free = new();
    private readonly BlockingCollection<Job>? _rootQueue, _cvQueue;
    private readonly Thread[] _threads = Array.Empty<Thread>();
    private readonly Blake3Hasher _rootHasher = Blake3Hasher.Create(), _cvHasher = Blake3Hasher.Create();
    private readonly object _lock = new();
    private readonly Dictionary<long, byte[]> _roots = new(), _cvs = new();
    private long _nextToRecord;
    private Exception? _failure;
    private byte[]? _fileHash;
    private bool _disposed;

    private sealed class Job(long index, byte[] buffer, int length)
    {
        public readonly long Index = index;
        public readonly byte[] Buffer = buffer;
        public readonly int Length = length;
        public int Pending = 2;
    }

    /// <param name="ledger">Receives each block's hashes, in order; holds the blocks before the first one submitted.</param>
    /// <param name="fileSize">Size of the whole file, so the last, partial block can complete the whole-file hash.</param>
    /// <param name="chainingValues">Also compute chaining values (needed for the whole-file hash).</param>
    /// <param name="threaded">Use worker threads (worth it when at least a couple of blocks are coming).</param>
    public BlockHashPipeline(BlockLedger ledger, long fileSize, bool chainingValues, bool threaded)
    {
        _ledger = ledger;
        _fileSize = fileSize;
        _chainingValues = chainingValues;
        _threaded = threaded;
        _nextToRecord = ledger.Count;
        for (int i = 0; i < (threaded ? Buffers : 1); i++) _free.Add(ArrayPool<byte>.Shared.Rent(BlockLedger.BlockSize));
        if (threaded)
        {
            _rootQueue = new BlockingCollection<Job>();
            _cvQueue = new BlockingCollection<Job>();
            _threads =
            [
                new Thread(() => Work(_rootQueue, root: true)) { IsBackground = true, Name = "bcmr-hash-root" },
                new Thread(() => Work(_cvQueue, root: false)) { IsBackground = true, Name = "bcmr-hash-cv" },
            ];
            foreach (var t in _threads) t.Start();
        }
    }

    /// <summary>The whole-file hash, once the last block has been hashed (null if a chaining value was unknown).</summary>
    public byte[]? FileHash { get { lock (_lock) return _fileHash; } }

    /// <summary>A copy of the first <paramref name="blocks"/> recorded blocks, safe to keep while hashing goes on.</summary>
    public BlockLedger Snapshot(int blocks)
    {
        lock (_lock) return _ledger.Prefix(blocks);
    }

    /// <summary>A free block buffer; waits while all of them are being hashed.</summary>
    public byte[] Rent(CancellationToken ct)
    {
        ThrowIfFailed();
        return _free.Take(ct);
    }

    /// <summary>Hands over block <paramref name="index"/> (its bytes at the start of <paramref name="buffer"/>);
    /// the buffer goes back to the free list once it is hashed.</summary>
    public void Submit(long index, byte[] buffer, int length)
    {
        ThrowIfFailed();
        var job = new Job(index, buffer, length);
        if (!_threaded)
        {
            Hash(job, root: true, _rootHasher);
            Hash(job, root: false, _cvHasher);
            return;
        }
        _rootQueue!.Add(job);
        _cvQueue!.Add(job);
    }

    /// <summary>Waits until every block before <paramref name="blocks"/> is in the ledger.</summary>
    public void WaitFor(long blocks, CancellationToken ct)
    {
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

    private void Work(BlockingCollection<Job> queue, bool root)
    {
        var hasher = root ? _rootHasher : _cvHasher;
        try
        {
            foreach (var job in queue.GetConsumingEnumerable()) Hash(job, root, hasher);
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

    private void Hash(Job job, bool root, Blake3Hasher hasher)
    {
        var data = job.Buffer.AsSpan(0, job.Length);
        bool full = job.Length == BlockLedger.BlockSize;
        byte[]? result = null;
        if (root)
        {
            result = new byte[BlockLedger.HashSize];
            BlockLedger.ComputeRoot(hasher, data, result);
        }
        else if (_chainingValues && full)
        {
            result = new byte[BlockLedger.HashSize];
            BlockLedger.ComputeChainingValue(hasher, job.Index, data, result);
        }

        lock (_lock)
        {
            (root ? _roots : _cvs)[job.Index] = result!;
            RecordReadyBlocks(job, data);
            if (--job.Pending == 0) _free.Add(job.Buffer);
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Moves blocks whose two hashes are both known into the ledger, in order. Under the lock.</summary>
    private void RecordReadyBlocks(Job job, ReadOnlySpan<byte> data)
    {
        while (_roots.TryGetValue(_nextToRecord, out var root) && _cvs.ContainsKey(_nextToRecord))
        {
            var cv = _cvs[_nextToRecord];
            _roots.Remove(_nextToRecord);
            _cvs.Remove(_nextToRecord);
            _ledger.Add(root, cv);
            _nextToRecord++;
        }
        // The file hash needs the last block's bytes when it is partial: finish it while this job still holds them.
        long lastIndex = _fileSize == 0 ? -1 : (_fileSize - 1) / BlockLedger.BlockSize;
        if (job.Index == lastIndex && job.Pending == 1 && _nextToRecord == lastIndex + 1 && _chainingValues)
        {
            bool partial = _fileSize % BlockLedger.BlockSize != 0;
            _fileHash = _ledger.FileHash(_fileSize, partial ? data : ReadOnlySpan<byte>.Empty);
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
        _rootQueue?.CompleteAdding();
        _cvQueue?.CompleteAdding();
        foreach (var t in _threads) t.Join();
        while (_free.TryTake(out var b)) ArrayPool<byte>.Shared.Return(b);
        _rootQueue?.Dispose();
        _cvQueue?.Dispose();
        _free.Dispose();
    }
}
