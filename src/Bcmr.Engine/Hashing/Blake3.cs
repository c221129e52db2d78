using System.Numerics;
using System.Runtime.ExceptionServices;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Hashing;

/// <summary>One-shot BLAKE3 helpers: in-memory, multi-threaded and file hashing.</summary>
public static unsafe class Blake3
{
    public const int OutLen = Blake3Core.OutLen;

    // Below this, thread start-up and hand-off cost more than hashing the data on one core.
    internal const long MinParallelBytes = 1 << 20;
    internal const int MinLeafBytes = 64 * 1024;
    private const int MaxLeafBytes = 4 << 20;

    // Small enough that a buffer just read is still in L2 when it is hashed.
    private const int StreamBufferBytes = 256 * 1024;

    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        byte[] hash = new byte[OutLen];
        Hash(data, hash);
        return hash;
    }

    /// <summary>Writes <c>output.Length</c> bytes of (extended) hash output.</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> output) => Hash(data, output, Blake3HashMany.Default);

    /// <summary>The SIMD kernel this process hashes with (avx512, avx2, sse (128-bit), neon, scalar).</summary>
    public static string KernelName => Blake3HashMany.KernelName;

    internal static void Hash(ReadOnlySpan<byte> data, Span<byte> output, Blake3Simd simd)
    {
        // One hasher per thread and kernel, reset for each call: a server names two or three temporaries per file it
        // receives, and a new hasher (10 KiB of state) each time was a fifth of its per-file time in garbage collection.
        var hasher = t_oneShot;
        if (hasher is null || hasher.Simd != simd) t_oneShot = hasher = Blake3Hasher.Create(simd);
        else hasher.Reset();
        hasher.Update(data);
        hasher.Finalize(output);
    }

    [ThreadStatic] private static Blake3Hasher? t_oneShot;

    /// <summary>Hashes <paramref name="data"/> using up to <paramref name="threads"/> threads.</summary>
    public static byte[] HashParallel(ReadOnlySpan<byte> data, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        byte[] hash = new byte[OutLen];
        fixed (byte* p = data)
        {
            HashParallel(Blake3Hasher.Create(), p, data.Length, threads, MinParallelBytes, MinLeafBytes).Finalize(hash);
        }
        return hash;
    }

    /// <summary>Per-thread state for hashing leaves: a hasher of the right mode and, for files, a read buffer.</summary>
    internal sealed class LeafWorker
    {
        public LeafWorker(Blake3Hasher hasher) => Hasher = hasher;

        public Blake3Hasher Hasher { get; }

        public byte[]? Buffer { get; set; }
    }

    /// <summary>Feeds bytes [offset, offset + count) of the input to the worker's hasher.</summary>
    internal delegate void LeafFeeder(LeafWorker worker, long offset, long count);

    internal static Blake3Hasher HashParallel(Blake3Hasher hasher, byte* data, long length, int threads,
        long minParallelBytes, int minLeafBytes)
    {
        nint basePtr = (nint)data;
        return HashParallel(hasher, length, threads, minParallelBytes, minLeafBytes,
            (worker, offset, count) => UpdateLong(worker.Hasher, (byte*)basePtr + offset, count));
    }

    /// <summary>
    /// Hashes an input of <paramref name="length"/> bytes into <paramref name="hasher"/>, which must be fresh.
    /// The input is cut into leaves: complete subtrees of a power-of-two number of chunks, aligned to their
    /// size, so each leaf's CV is a node of the final tree no matter which thread computes it. The leaf
    /// CVs are then pushed in order and the tail, which may be partial and may hold the root, is hashed
    /// on the calling thread.
    /// </summary>
    /// <returns><paramref name="hasher"/>, holding all input, ready to finalize.</returns>
    internal static Blake3Hasher HashParallel(Blake3Hasher hasher, long length, int threads,
        long minParallelBytes, int minLeafBytes, LeafFeeder feed)
    {
        var self = new LeafWorker(hasher);
        if (threads <= 1 || length < minParallelBytes || length < 2L * minLeafBytes)
        {
            feed(self, 0, length);
            return hasher;
        }

        // Aim for several leaves per thread so a slow thread does not leave the others idle at the end,
        // but keep leaves large enough to amortise scheduling.
        long target = Math.Clamp(length / (8L * threads), minLeafBytes, MaxLeafBytes);
        long leafBytes = Math.Max(Blake3Core.ChunkLen, (long)(BitOperations.RoundUpToPowerOf2((ulong)target + 1) >> 1));
        ulong leafChunks = (ulong)(leafBytes / Blake3Core.ChunkLen);

        // Leaves must never contain the root: keep a non-empty tail unless at least two leaves exist.
        long leaves = length / leafBytes;
        if (leaves * leafBytes == length && leaves < 2)
        {
            leaves--;
        }
        if (leaves <= 0)
        {
            feed(self, 0, length);
            return hasher;
        }

        byte[] cvs = new byte[leaves * OutLen];
        try
        {
            Parallel.For(0L, leaves, new ParallelOptions { MaxDegreeOfParallelism = threads },
                () => new LeafWorker(hasher.CloneMode()),
                (leaf, _, worker) =>
                {
                    worker.Hasher.ResetAt((ulong)leaf * leafChunks);
                    feed(worker, leaf * leafBytes, leafBytes);
                    worker.Hasher.SubtreeChainingValue(cvs.AsSpan((int)(leaf * OutLen), OutLen));
                    return worker;
                },
                _ => { });
        }
        catch (AggregateException e)
        {
            // Callers handle IOException and friends as they would from a single-threaded read;
            // the first failure is the one to report.
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }

        for (long leaf = 0; leaf < leaves; leaf++)
        {
            hasher.PushSubtreeCv(cvs.AsSpan((int)(leaf * OutLen), OutLen), leafChunks);
        }
        feed(self, leaves * leafBytes, length - leaves * leafBytes);
        return hasher;
    }

    private static void UpdateLong(Blake3Hasher hasher, byte* data, long length)
    {
        // Spans are limited to 2 GiB; any split is fine because Update accepts arbitrary piece sizes.
        const int piece = 1 << 30;
        while (length > 0)
        {
            int n = (int)Math.Min(length, piece);
            hasher.Update(new ReadOnlySpan<byte>(data, n));
            data += n;
            length -= n;
        }
    }

    /// <summary>
    /// Hashes a file. <paramref name="threads"/> 1 streams it with large reads on the calling thread;
    /// more reads and hashes whole subtrees on up to that many threads.
    /// </summary>
    public static byte[] HashFile(string path, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        byte[] hash = new byte[OutLen];
        HashFile(path, threads, Blake3Hasher.Create(), hash, out _);
        return hash;
    }

    /// <summary>
    /// Hashes a file into <paramref name="hasher"/> (fresh; any mode: plain, keyed or derive-key) and
    /// writes <c>output.Length</c> bytes of its output. Returns the number of bytes hashed.
    /// </summary>
    public static long HashFile(string path, int threads, Blake3Hasher hasher, Span<byte> output)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentNullException.ThrowIfNull(hasher);
        HashFile(path, threads, hasher, output, out long size);
        return size;
    }

    private static void HashFile(string path, int threads, Blake3Hasher hasher, Span<byte> output, out long size)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete,
            bufferSize: 0, FileOptions.SequentialScan);
        // Pipes, character devices and the like have no stable length; read them as a stream.
        long length = file.CanSeek ? file.Length : -1;
        if (threads > 1 && length >= MinParallelBytes)
        {
            // Positioned reads rather than a memory map: with a map, every thread's page faults
            // serialise in the kernel and two threads hashed no faster than one.
            SafeFileHandle handle = file.SafeFileHandle;
            HashPositioned(hasher, length, threads, (span, offset) => RandomAccess.Read(handle, span, offset), path, default);
            size = length;
        }
        else
        {
            size = HashStream(file, hasher);
        }
        hasher.Finalize(output);
    }

    /// <summary>Reads <c>span.Length</c> bytes or fewer at an offset; 0 at the end.</summary>
    internal delegate int PositionedRead(Span<byte> span, long offset);

    /// <summary>
    /// Feeds bytes [0, <paramref name="length"/>) of a file to <paramref name="hasher"/> (fresh), read with positioned
    /// reads in whole subtrees on up to <paramref name="threads"/> threads. A file that ends first is an IOException.
    /// </summary>
    internal static void HashPositioned(Blake3Hasher hasher, long length, int threads, PositionedRead read, string path, CancellationToken ct)
    {
        HashParallel(hasher, length, threads, MinParallelBytes, MinLeafBytes, (worker, offset, count) =>
        {
            byte[] buffer = worker.Buffer ??= GC.AllocateUninitializedArray<byte>(StreamBufferBytes);
            while (count > 0)
            {
                ct.ThrowIfCancellationRequested();
                int n = read(buffer.AsSpan(0, (int)Math.Min(count, buffer.Length)), offset);
                if (n == 0)
                {
                    throw new IOException($"{path} shrank while it was being hashed.");
                }
                worker.Hasher.Update(buffer.AsSpan(0, n));
                offset += n;
                count -= n;
            }
        });
    }

    /// <summary>Feeds a whole stream to <paramref name="hasher"/>; returns the number of bytes read.</summary>
    public static long HashStream(Stream stream, Blake3Hasher hasher)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(hasher);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(StreamBufferBytes);
        long total = 0;
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            hasher.Update(buffer.AsSpan(0, n));
            total += n;
        }
        return total;
    }

    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
