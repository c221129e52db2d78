using System.Buffers;
using System.Runtime.ExceptionServices;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Platform;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Codecs;

/// <summary>One block ready to go on the wire, handed to a <see cref="BlockSink"/> on the caller's thread.</summary>
internal readonly ref struct EncodedBlock
{
    public EncodedBlock(ReadOnlySpan<byte> data, WireCodec codec, ReadOnlySpan<byte> payload, Blake3Hasher? hasher)
    {
        Data = data;
        Codec = codec;
        Payload = payload;
        Hasher = hasher;
    }

    /// <summary>The block's original bytes (as read from the file).</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>Lz4 or Zstd: send <see cref="Payload"/> as DataCompressed; None: send <see cref="Data"/> as Data.</summary>
    public WireCodec Codec { get; }

    /// <summary>The compressed bytes (empty for a raw block).</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>Raw blocks not hashed yet: the hasher to feed each slice of <see cref="Data"/> as it is written
    /// (FrameWriter.WriteData(block, hasher)). Null when the block has already been hashed, or nothing is hashed.</summary>
    public Blake3Hasher? Hasher { get; }

    /// <summary>Payload bytes this block puts on the wire (what the bandwidth limit and wire_bytes count).</summary>
    public int WireLength => Codec == WireCodec.None ? Data.Length : Payload.Length;
}

/// <summary>Writes one block's frame. Always called on the thread that drives the <see cref="BlockEncoder"/>, in
/// file order.</summary>
internal delegate void BlockSink(in EncodedBlock block);

/// <summary>Sees a block of a file read by <see cref="BlockEncoder.AddFile"/> at <paramref name="offset"/>, before it is
/// sent; may throw a <see cref="BcmrException"/> to stop the file there.</summary>
internal delegate void BlockRead(ReadOnlySpan<byte> block, long offset);

/// <summary>
/// Sends a file's blocks with compression running off the I/O thread: the caller (the I/O thread) reads each block
/// into a buffer from <see cref="NextBuffer"/>, and <see cref="Add"/> hashes it in order and, when the
/// <see cref="CompressionProbe"/> chose a codec, hands it to a worker that compresses it while the caller reads and
/// hashes the next one and writes the frames that are finished. Frames leave strictly in file order and are written
/// only by the caller, through its <see cref="BlockSink"/> (frame writers are not thread-safe).
/// <para>Nothing is handed off unless the data has been compressing (the probe's last outcome was a success): a block
/// the probe sends raw (random data, once the probe stops trying) is written by the caller itself, hashed slice by
/// slice as it is written; the first block tried and the probe's attempts on data that stopped compressing are
/// compressed on the caller's thread, as is the last block of a file when nothing is pending (a file of one block).
/// Those attempts compress the block's first <see cref="ProbeSample"/> bytes first, and a block whose sample does not
/// compress goes raw (counted as a miss) without the whole-block attempt.
/// So incompressible data starts no thread and touches no extra buffer (measured: bench/RESULTS.md, issue 9). After
/// a miss, the encoder hears how the blocks in flight went before it asks the probe again, so data that stops
/// compressing costs at most the blocks already in flight in attempts beyond the probe's own.</para>
/// <para>Workers: <see cref="DefaultWorkers"/> threads, started on the first block handed off and kept until
/// <see cref="Dispose"/>; one buffer slot more than workers (4 MiB block and compression scratch each, rented when
/// first used, returned on Dispose). Hand-offs are one Monitor, nothing that spins. An exception on a worker is
/// rethrown on the caller's thread when its block's turn comes. <see cref="Abandon"/> (or an exception leaving
/// any method, after which the caller must call Abandon or Dispose) drops pending blocks; a worker finishing a dropped
/// block just frees its slot.</para>
/// <para>One caller thread per encoder; one file at a time (<see cref="Begin"/> ... <see cref="Finish"/> or
/// <see cref="Abandon"/>), and the same encoder for all the files of a session or transfer.</para>
/// </summary>
internal sealed class BlockEncoder : IDisposable
{
    /// <summary>Blocks compressed at once unless the owner of the encoder says otherwise (the workers parameter):
    /// min(2, processors).</summary>
    public static int DefaultWorkers => Math.Min(2, Environment.ProcessorCount);

    private enum State { Free, Filling, Queued, Compressing, Done }

    /// <summary>What a probing attempt compresses first: a block whose first 64 KiB does not compress goes raw.</summary>
    internal const int ProbeSample = 64 * 1024;

    private sealed class Slot
    {
        public byte[]? Block;
        public byte[]? Scratch;
        public int Length;
        public WireCodec Codec;
        public State State;
        /// <summary>Dropped while a worker compressed it: the worker frees it when done.</summary>
        public bool Dropped;
        public long Seq;
        /// <summary>Compressed length, or -1 when the block goes raw.</summary>
        public int Written;
        public ExceptionDispatchInfo? Error;
    }

    private readonly int _workers;
    private readonly ThreadBudget? _budget;
    private readonly Slot[] _slots;
    /// <summary>Blocks handed off, in file order (caller thread only).</summary>
    private readonly Queue<Slot> _pending = new();
    private readonly object _lock = new();
    private Thread[]? _threads;
    private bool _stopping;
    private bool _disposed;
    private Slot? _filling;
    private long _seq;

    private BlockSink? _sink;
    private CompressionProbe? _probe;
    private Blake3Hasher? _hasher;

    public BlockEncoder() : this(DefaultWorkers) { }

    /// <param name="workers">Compressing threads; 0: everything on the caller's thread.</param>
    /// <param name="budget">Where those threads are rented, for the encoder's life; what it cannot give is done on the
    /// caller's thread.</param>
    public BlockEncoder(int workers, ThreadBudget? budget = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(workers);
        _budget = budget;
        _workers = budget?.Rent(workers) ?? workers;
        _slots = new Slot[workers + 1];
        for (int i = 0; i < _slots.Length; i++) _slots[i] = new Slot();
    }

    /// <summary>Worker threads started so far (0 until a block is handed off).</summary>
    internal int ThreadsStarted => _threads?.Length ?? 0;

    /// <summary>Blocks handed to workers whose frames are not written yet.</summary>
    internal int Pending => _pending.Count;

    /// <summary>Buffer slots not in use (all of them once a file has ended and dropped blocks are done).</summary>
    internal int FreeSlots
    {
        get { lock (_lock) return _slots.Count(s => s.State == State.Free); }
    }

    /// <summary>Blocks handed to a worker since this encoder was made.</summary>
    internal long HandedOff { get; private set; }

    /// <summary>Tests only: runs on the worker before each block it compresses (the block's number in hand-off
    /// order), so a test can make a worker fail.</summary>
    internal Action<long>? WorkerHook { get; init; }

    /// <summary>Whether any worker thread is still running (tests).</summary>
    internal bool AnyThreadAlive => _threads?.Any(t => t.IsAlive) == true;

    /// <summary>Starts a file (or the range of one that is sent): its blocks go to <paramref name="sink"/> in order,
    /// <paramref name="probe"/> picks each block's codec and hears how it went, and <paramref name="hasher"/> (null:
    /// nothing is hashed) is fed every block in order.</summary>
    public void Begin(CompressionProbe probe, Blake3Hasher? hasher, BlockSink sink)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_sink is not null) throw new InvalidOperationException("a file is already being sent: Finish or Abandon it first");
        _probe = probe ?? throw new ArgumentNullException(nameof(probe));
        _sink = sink ?? throw new ArgumentNullException(nameof(sink));
        _hasher = hasher;
    }

    /// <summary>A buffer of at least <paramref name="length"/> bytes (at most <see cref="BlockCodec.MaxBlock"/>) to read
    /// the next block into, then pass to <see cref="Add"/>. Buffers are sized by what is asked, so a session of small
    /// files never rents (and faults in) 4 MiB per slot. When every buffer is in use, writes the oldest pending block's
    /// frame first (waiting for its compression).</summary>
    public byte[] NextBuffer(int length = BlockCodec.MaxBlock)
    {
        EnsureFile();
        if ((uint)length > BlockCodec.MaxBlock) throw new ArgumentOutOfRangeException(nameof(length), length, $"a block is at most {BlockCodec.MaxBlock} bytes");
        if (_filling is not null) return Sized(ref _filling.Block, length);
        while (true)
        {
            WriteFinished();
            Slot? free = null;
            lock (_lock)
            {
                // A slot that already holds a buffer first: raw data keeps using one.
                foreach (var s in _slots)
                    if (s.State == State.Free && (free is null || (free.Block is null && s.Block is not null))) free = s;
                if (free is not null) free.State = State.Filling;
            }
            if (free is not null)
            {
                _filling = free;
                return Sized(ref free.Block, length);
            }
            if (_pending.Count > 0)
            {
                WriteHead();
                continue;
            }
            // Only dropped blocks still being compressed hold the slots: wait for one to come back.
            lock (_lock)
                while (!AnyFree()) Monitor.Wait(_lock);
        }
    }

    /// <summary>
    /// The one loop that turns a file into Data frames (uploads, striped ranges, the server's Get): reads bytes
    /// [<paramref name="pos"/>, <paramref name="end"/>) of <paramref name="h"/> block by block into this encoder, in
    /// order. A read that comes back short ends the file there: with <paramref name="exact"/> that is the source
    /// changing while it was read (an error naming it), otherwise the file's end. <paramref name="onBlock"/> sees each
    /// block before it is added. Blocks read before an error still go (the receiver keeps them); the error is handed
    /// back in <paramref name="error"/>, not thrown, with the position reached. Begin before, Finish after: the caller's.
    /// </summary>
    public long AddFile(SafeFileHandle h, string path, long pos, long end, bool exact, BlockRead? onBlock, out BcmrException? error)
    {
        error = null;
        while (pos < end)
        {
            int want = (int)Math.Min(BlockCodec.MaxBlock, end - pos);
            var block = NextBuffer(want);
            try
            {
                int n = Fs.ReadFull(h, block.AsSpan(0, want), pos, path);
                if (n == 0 && !exact) break;
                if (n < want && exact)
                    throw new BcmrException(BcmrErrorCode.SourceChanged, path,
                        $"{path}: changed while being copied (a read of {want} bytes at {pos} found {n}); not committed");
                onBlock?.Invoke(block.AsSpan(0, n), pos);
                Add(n, last: pos + n >= end);
                pos += n;
            }
            catch (BcmrException e)
            {
                error = e;
                break;
            }
        }
        return pos;
    }

    /// <summary>Sends the first <paramref name="length"/> bytes of the buffer from <see cref="NextBuffer"/>;
    /// <paramref name="last"/>: no block of this file follows.</summary>
    public void Add(int length, bool last)
    {
        EnsureFile();
        var slot = _filling ?? throw new InvalidOperationException("Add without NextBuffer");
        if ((uint)length > BlockCodec.MaxBlock) throw new ArgumentOutOfRangeException(nameof(length), length, $"a block is at most {BlockCodec.MaxBlock} bytes");
        if (length > slot.Block!.Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the buffer from NextBuffer holds {slot.Block.Length} bytes");
        _filling = null;
        bool handedOff = false;
        try { Encode(slot, length, last, ref handedOff); }
        finally
        {
            // Written here (or failed on the way): the slot is free again. Handed off: the worker and then WriteHead
            // (or Abandon) own it.
            if (!handedOff) Free(slot);
        }
    }

    private void Encode(Slot slot, int length, bool last, ref bool handedOff)
    {
        slot.Length = length;
        var data = slot.Block!.AsSpan(0, length);
        // Frames already compressed go first, so the probe has heard of them before it chooses.
        WriteFinished();
        var probe = _probe!;
        var hasher = _hasher;
        if (_pending.Count > 0 && probe.LastMissed)
        {
            // The data stopped compressing: the probe's choice hangs on the blocks still being compressed. Hash this
            // one meanwhile, then hear how those went.
            hasher?.Update(data);
            hasher = null;
            WriteAll();
        }
        var codec = length == 0 ? WireCodec.None : probe.Next(length);

        if (codec == WireCodec.None)
        {
            if (_pending.Count == 0)
            {
                _sink!(new EncodedBlock(data, WireCodec.None, default, hasher));
            }
            else
            {
                // Hashed while earlier blocks finish compressing, then written after them.
                hasher?.Update(data);
                WriteAll();
                _sink!(new EncodedBlock(data, WireCodec.None, default, null));
            }
            probe.Report(codec, false);
            return;
        }

        var scratch = Sized(ref slot.Scratch, BlockCodec.MaxCompressedSize(length));
        bool probing = !probe.HasOutcome || probe.LastMissed;
        if (probing && length > ProbeSample && !BlockCodec.TryEncode(codec, data[..ProbeSample], scratch, out _))
        {
            // While the data has not been compressing, a block is tried on its first 64 KiB before the whole of it:
            // a failed zstd attempt on a 4 MiB random block costs ~10 ms on this thread, on the sample a sixtieth.
            _sink!(new EncodedBlock(data, WireCodec.None, default, hasher));
            probe.Report(codec, false);
            return;
        }
        if (_workers == 0 || (last && _pending.Count == 0) || probing)
        {
            // Compressed here, as FrameWriter.WriteBlock does, when there is nothing to overlap with (the last
            // block, nothing pending), and while the data has not been compressing: the first block tried, and the
            // probe's attempts on incompressible data (which fail) never pay for a hand-off, threads or buffers.
            bool compressed = BlockCodec.TryEncode(codec, data, scratch, out int n);
            if (compressed)
            {
                hasher?.Update(data);
                _sink!(new EncodedBlock(data, codec, scratch.AsSpan(0, n), null));
            }
            else
            {
                _sink!(new EncodedBlock(data, WireCodec.None, default, hasher));
            }
            probe.Report(codec, compressed);
            return;
        }

        StartThreads();
        _pending.Enqueue(slot);
        handedOff = true;
        lock (_lock)
        {
            slot.Codec = codec;
            slot.Seq = _seq++;
            slot.Written = -1;
            slot.Error = null;
            slot.State = State.Queued;
            Monitor.PulseAll(_lock);
        }
        HandedOff++;
        // A worker reads the same bytes meanwhile; both only read.
        hasher?.Update(data);
    }

    /// <summary>The slot's buffer, exchanged for a bigger one from the pool when it holds fewer than
    /// <paramref name="length"/> bytes.</summary>
    private static byte[] Sized(ref byte[]? buffer, int length)
    {
        if (buffer is not null && buffer.Length >= length) return buffer;
        if (buffer is not null) BlockBuffers.Pool.Return(buffer);
        buffer = null; // not left pointing at a returned array if Rent throws
        return buffer = BlockBuffers.Pool.Rent(Math.Max(length, 1));
    }

    /// <summary>Writes every pending frame, in order, and ends the file.</summary>
    public void Finish()
    {
        EnsureFile();
        WriteAll();
        if (_filling is not null) Free(_filling);
        _filling = null;
        EndFile();
    }

    /// <summary>Drops the blocks not written yet and ends the file. Safe to call at any time (e.g. in a finally
    /// after a failed write, a read error or a cancellation), also when no file is being sent.</summary>
    public void Abandon()
    {
        lock (_lock)
        {
            foreach (var s in _pending)
            {
                if (s.State == State.Compressing) s.Dropped = true;
                else s.State = State.Free;
            }
            if (_filling is not null) _filling.State = State.Free;
            Monitor.PulseAll(_lock);
        }
        _pending.Clear();
        _filling = null;
        EndFile();
    }

    private void EndFile()
    {
        _sink = null;
        _probe = null;
        _hasher = null;
    }

    private void EnsureFile()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_sink is null) throw new InvalidOperationException("no file is being sent: call Begin first");
    }

    private void Free(Slot slot)
    {
        lock (_lock)
        {
            slot.State = State.Free;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Writes the frames at the head that are already compressed, without waiting.</summary>
    private void WriteFinished()
    {
        while (_pending.Count > 0 && HeadDone()) WriteHead();
    }

    private bool HeadDone()
    {
        lock (_lock) return _pending.Peek().State == State.Done;
    }

    private bool AnyFree()
    {
        foreach (var s in _slots)
            if (s.State == State.Free) return true;
        return false;
    }

    private void WriteAll()
    {
        while (_pending.Count > 0) WriteHead();
    }

    /// <summary>Waits for the oldest pending block's compression and writes its frame.</summary>
    private void WriteHead()
    {
        var slot = _pending.Peek();
        lock (_lock)
            while (slot.State != State.Done) Monitor.Wait(_lock);
        _pending.Dequeue();
        try
        {
            slot.Error?.Throw();
            var data = slot.Block!.AsSpan(0, slot.Length);
            bool compressed = slot.Written >= 0;
            _sink!(compressed
                ? new EncodedBlock(data, slot.Codec, slot.Scratch!.AsSpan(0, slot.Written), null)
                : new EncodedBlock(data, WireCodec.None, default, null));
            _probe!.Report(slot.Codec, compressed);
        }
        finally { Free(slot); }
    }

    private void StartThreads()
    {
        if (_threads is not null) return;
        _threads = new Thread[_workers];
        for (int i = 0; i < _workers; i++)
        {
            _threads[i] = new Thread(Work) { IsBackground = true, Name = $"bcmr-encoder-{i + 1}" };
            _threads[i].Start();
        }
    }

    private void Work()
    {
        while (true)
        {
            Slot? job;
            lock (_lock)
            {
                while (true)
                {
                    if (_stopping) return;
                    job = null;
                    foreach (var s in _slots)
                        if (s.State == State.Queued && (job is null || s.Seq < job.Seq)) job = s;
                    if (job is not null) break;
                    Monitor.Wait(_lock);
                }
                job.State = State.Compressing;
            }
            int written = -1;
            ExceptionDispatchInfo? error = null;
            try
            {
                WorkerHook?.Invoke(job.Seq);
                if (BlockCodec.TryEncode(job.Codec, job.Block!.AsSpan(0, job.Length), job.Scratch, out int n)) written = n;
            }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
            lock (_lock)
            {
                if (job.Dropped)
                {
                    job.Dropped = false;
                    job.State = State.Free;
                }
                else
                {
                    job.Written = written;
                    job.Error = error;
                    job.State = State.Done;
                }
                Monitor.PulseAll(_lock);
            }
        }
    }

    /// <summary>Drops pending blocks, ends the worker threads (a block being compressed is finished first) and
    /// returns the buffers. Call it on the caller's thread, or once that thread has stopped using the encoder.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Abandon();
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }
        if (_threads is not null)
            foreach (var t in _threads) t.Join();
        _budget?.Return(_workers);
        _disposed = true;
        foreach (var s in _slots)
        {
            if (s.Block is not null) BlockBuffers.Pool.Return(s.Block);
            if (s.Scratch is not null) BlockBuffers.Pool.Return(s.Scratch);
            s.Block = s.Scratch = null;
        }
    }
}
