using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// Incremental BLAKE3 (hash, keyed hash, derive key; extended output). Not thread-safe.
/// <see cref="Finalize(Span{byte})"/> does not change the state: more input may follow.
/// </summary>
public sealed unsafe class Blake3Hasher
{
    // Whole subtrees handed to the SIMD layer at once are capped so their chaining values fit in a
    // fixed scratch area; above this size the CV stack does the merging, which costs one scalar
    // parent compression per 256 KiB of input.
    internal const int MaxSubtreeChunks = 256;

    private const int KeyOffset = 0;
    private const int ChunkCvOffset = KeyOffset + Blake3Core.KeyLen;
    private const int ChunkBufOffset = ChunkCvOffset + Blake3Core.OutLen;
    private const int StackOffset = ChunkBufOffset + Blake3Core.BlockLen;
    // One extra stack slot: a push happens before the merge that would make room for it.
    private const int ScratchOffset = StackOffset + (Blake3Core.MaxDepth + 1) * Blake3Core.OutLen;
    // The subtree scratch (8 KiB) lives here rather than on the stack: on the stack, in-memory hashing
    // measured 10-25 % slower, most likely 4 KiB aliasing against the kernel's own stack buffers.
    private const int MemSize = ScratchOffset + MaxSubtreeChunks * Blake3Core.OutLen;

    // All state the compression code touches through pointers lives in one ordinary array, pinned by
    // each public method for the duration of the call. (A pinned-heap array would save the `fixed`,
    // but allocating one cost ~3.5 us against ~0.3 us, paid per file by the copy engine.)
    private readonly byte[] _mem;
    private readonly uint _flags;
    private readonly Blake3Simd _simd;
    private Blake3ChunkState _chunk;
    private int _cvStackLen;
    // Index of the first chunk this hasher sees: 0 for a whole input, the leaf's position for a
    // subtree hashed on another thread. The stack shape depends on chunks counted from here.
    private ulong _firstChunk;

    private Blake3Hasher(ReadOnlySpan<uint> key, uint flags, Blake3Simd simd)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("This BLAKE3 implementation requires a little-endian machine.");
        }
        _mem = new byte[MemSize];
        _flags = flags;
        _simd = simd;
        _chunk = new Blake3ChunkState(flags);
        fixed (byte* p = _mem)
        {
            var m = new Mem(p);
            key.CopyTo(new Span<uint>(m.Key, 8));
            _chunk.Reset(m.ChunkCv, m.ChunkBuf, m.Key, 0);
        }
    }

    /// <summary>Pointers into <see cref="_mem"/>, valid while it is pinned.</summary>
    private readonly struct Mem
    {
        public readonly uint* Key;
        public readonly uint* ChunkCv;
        public readonly byte* ChunkBuf;
        public readonly byte* Stack;
        public readonly byte* Scratch;

        public Mem(byte* p)
        {
            Key = (uint*)(p + KeyOffset);
            ChunkCv = (uint*)(p + ChunkCvOffset);
            ChunkBuf = p + ChunkBufOffset;
            Stack = p + StackOffset;
            Scratch = p + ScratchOffset;
        }
    }

    /// <summary>Plain BLAKE3 hashing.</summary>
    public static Blake3Hasher Create() => Create(Blake3HashMany.Default);

    // Plain hashers given back by code that hashes one file after another (a hasher is 10 KiB: one per file was a
    // seventh of the client's CPU in a 1 000-file sync, as allocation, zeroing and the collections it caused;
    // bench/RESULTS.md, session 15). Capped: a burst of parallel files must not pin memory for good.
    private const int SpareCap = 16;
    private static readonly Blake3Hasher[] s_spare = new Blake3Hasher[SpareCap];
    private static int s_spareCount;
    private static readonly object s_spareLock = new();

    /// <summary>A plain hasher at its start: one given back through <see cref="Return"/>, reset, or a new one.</summary>
    internal static Blake3Hasher Rent()
    {
        Blake3Hasher? spare = null;
        lock (s_spareLock)
        {
            if (s_spareCount > 0)
            {
                spare = s_spare[--s_spareCount];
                s_spare[s_spareCount] = null!;
            }
        }
        if (spare is null) return Create();
        spare.Reset();
        return spare;
    }

    /// <summary>Gives a hasher back for <see cref="Rent"/>. The caller must not touch it again. Keyed and derive-key
    /// hashers, and hashers of another SIMD path (tests), are not kept.</summary>
    internal static void Return(Blake3Hasher hasher)
    {
        if (hasher._flags != 0 || hasher._simd != Blake3HashMany.Default) return;
        lock (s_spareLock)
        {
            // Given back twice, it would be rented to two files at once and mix their bytes: keep it once.
            for (int i = 0; i < s_spareCount; i++)
                if (ReferenceEquals(s_spare[i], hasher)) return;
            if (s_spareCount < SpareCap) s_spare[s_spareCount++] = hasher;
        }
    }

    /// <summary>Keyed hashing (a MAC / PRF); <paramref name="key"/> must be exactly 32 bytes.</summary>
    public static Blake3Hasher CreateKeyed(ReadOnlySpan<byte> key) => CreateKeyed(key, Blake3HashMany.Default);

    /// <summary>Key derivation: the context string should be hardcoded, globally unique and application-specific.</summary>
    public static Blake3Hasher CreateDeriveKey(string context) => CreateDeriveKey(context, Blake3HashMany.Default);

    internal static Blake3Hasher Create(Blake3Simd simd)
    {
        Span<uint> iv = stackalloc uint[8];
        fixed (uint* p = iv)
        {
            Blake3Core.WriteIV(p);
        }
        return new Blake3Hasher(iv, 0, simd);
    }

    internal static Blake3Hasher CreateKeyed(ReadOnlySpan<byte> key, Blake3Simd simd)
    {
        if (key.Length != Blake3Core.KeyLen)
        {
            throw new ArgumentException($"A BLAKE3 key must be exactly {Blake3Core.KeyLen} bytes, not {key.Length}.", nameof(key));
        }
        return new Blake3Hasher(MemoryMarshal.Cast<byte, uint>(key), Blake3Core.KeyedHash, simd);
    }

    internal static Blake3Hasher CreateDeriveKey(string context, Blake3Simd simd)
    {
        ArgumentNullException.ThrowIfNull(context);
        Span<uint> iv = stackalloc uint[8];
        fixed (uint* p = iv)
        {
            Blake3Core.WriteIV(p);
        }
        var contextHasher = new Blake3Hasher(iv, Blake3Core.DeriveKeyContext, simd);
        contextHasher.Update(Encoding.UTF8.GetBytes(context));
        Span<byte> contextKey = stackalloc byte[Blake3Core.KeyLen];
        contextHasher.Finalize(contextKey);
        return new Blake3Hasher(MemoryMarshal.Cast<byte, uint>(contextKey), Blake3Core.DeriveKeyMaterial, simd);
    }

    internal Blake3Simd Simd => _simd;

    /// <summary>A fresh hasher with the same key, mode and SIMD path.</summary>
    internal Blake3Hasher CloneMode()
    {
        fixed (byte* p = _mem)
        {
            return new(new ReadOnlySpan<uint>(new Mem(p).Key, 8), _flags, _simd);
        }
    }

    /// <summary>Forgets all input, keeping the key and mode.</summary>
    public void Reset() => ResetAt(0);

    /// <summary>
    /// Restarts as the hasher of a subtree whose first chunk has index <paramref name="chunkCounter"/>,
    /// which must be a multiple of the subtree's (power-of-two) size in chunks.
    /// </summary>
    internal void ResetAt(ulong chunkCounter)
    {
        fixed (byte* p = _mem)
        {
            var m = new Mem(p);
            _chunk.Reset(m.ChunkCv, m.ChunkBuf, m.Key, chunkCounter);
        }
        _cvStackLen = 0;
        _firstChunk = chunkCounter;
    }

    public void Update(ReadOnlySpan<byte> data)
    {
        fixed (byte* input = data)
        fixed (byte* p = _mem)
        {
            UpdateCore(new Mem(p), input, data.Length);
        }
    }

    private void UpdateCore(Mem m, byte* input, int length)
    {
        if (length == 0)
        {
            return;
        }

        // Finish a partially filled chunk first.
        if (_chunk.Length > 0)
        {
            int take = Math.Min(Blake3Core.ChunkLen - _chunk.Length, length);
            _chunk.Update(m.ChunkCv, m.ChunkBuf, input, take);
            input += take;
            length -= take;
            if (length == 0)
            {
                return;
            }
            // More input follows, so this chunk cannot be the root.
            uint* cv = stackalloc uint[8];
            _chunk.Output(m.ChunkCv, m.ChunkBuf).ChainingValue(cv);
            PushCv(m, (byte*)cv, _chunk.Counter);
            _chunk.Reset(m.ChunkCv, m.ChunkBuf, m.Key, _chunk.Counter + 1);
        }

        // Hash whole subtrees with SIMD. Strictly more than one chunk must remain: the last chunk goes
        // to the chunk state, since it may turn out to be the root. A subtree must be a power of two
        // chunks and must start at a multiple of its own size, or it would not be a node of the tree.
        while (length > Blake3Core.ChunkLen)
        {
            ulong chunks = BitOperations.RoundUpToPowerOf2((uint)(length / Blake3Core.ChunkLen) + 1) >> 1;
            chunks = Math.Min(chunks, MaxSubtreeChunks);
            while (((_chunk.Counter - _firstChunk) & (chunks - 1)) != 0)
            {
                chunks >>= 1;
            }

            if (chunks == 1)
            {
                Blake3HashMany.HashMany(_simd, input, 1, Blake3Core.ChunkLen / Blake3Core.BlockLen, m.Key, _chunk.Counter,
                    true, _flags, Blake3Core.ChunkStart, Blake3Core.ChunkEnd, m.Scratch);
                PushCv(m, m.Scratch, _chunk.Counter);
            }
            else
            {
                // Reduce to the subtree's two children rather than its own CV: if this subtree is the
                // whole input its node is the root, which only finalization may compress.
                CompressSubtreeToChildren(m, input, (int)chunks, _chunk.Counter, m.Scratch);
                PushCv(m, m.Scratch, _chunk.Counter);
                PushCv(m, m.Scratch + Blake3Core.OutLen, _chunk.Counter + chunks / 2);
            }
            _chunk.Counter += chunks;
            input += (int)chunks * Blake3Core.ChunkLen;
            length -= (int)chunks * Blake3Core.ChunkLen;
        }

        if (length > 0)
        {
            _chunk.Update(m.ChunkCv, m.ChunkBuf, input, length);
            // Input in the chunk state means every complete subtree on the stack is non-root; merging
            // now keeps finalization simple.
            MergeCvStack(m, _chunk.Counter);
        }
    }

    /// <summary>
    /// Chaining values of the two children of a complete subtree of <paramref name="chunks"/> (a power of two, at least 2)
    /// chunks, written as 64 bytes to <paramref name="out64"/>, which also serves as working space for all its chunk CVs.
    /// </summary>
    private void CompressSubtreeToChildren(Mem m, byte* input, int chunks, ulong counter, byte* out64)
    {
        Blake3HashMany.HashMany(_simd, input, chunks, Blake3Core.ChunkLen / Blake3Core.BlockLen, m.Key, counter,
            true, _flags, Blake3Core.ChunkStart, Blake3Core.ChunkEnd, out64);
        // Each level halves the CV count; parents are computed in place, left to right.
        for (int n = chunks; n > 2; n /= 2)
        {
            Blake3HashMany.HashMany(_simd, out64, n / 2, 1, m.Key, 0, false, _flags | Blake3Core.Parent, 0, 0, out64);
        }
    }

    // ---- Subtree stack -------------------------------------------------------------------------
    // The stack holds CVs of complete subtrees, largest (leftmost) first. After `total` chunks,
    // exactly popcount(total) subtrees are complete and unmerged; anything beyond that is merged.

    private void MergeCvStack(Mem m, ulong totalChunks)
    {
        int target = BitOperations.PopCount(totalChunks - _firstChunk);
        while (_cvStackLen > target)
        {
            byte* pair = m.Stack + (_cvStackLen - 2) * Blake3Core.OutLen;
            Blake3Output.ParentNode(m.Key, pair, _flags).ChainingValue((uint*)pair);
            _cvStackLen--;
        }
    }

    private void PushCv(Mem m, byte* cv, ulong chunkCounter)
    {
        // Merge lazily, before the push: the newest CV might still turn out to be the root's child.
        MergeCvStack(m, chunkCounter);
        Unsafe.CopyBlockUnaligned(m.Stack + _cvStackLen * Blake3Core.OutLen, cv, Blake3Core.OutLen);
        _cvStackLen++;
    }

    /// <summary>
    /// Appends the CV of a complete subtree of <paramref name="chunks"/> chunks hashed elsewhere (e.g. on another thread).
    /// Only valid on a chunk boundary that is a multiple of <paramref name="chunks"/>, and only when more input
    /// (or another subtree) follows, since a pushed CV can never be the root.
    /// </summary>
    internal void PushSubtreeCv(ReadOnlySpan<byte> cv, ulong chunks)
    {
        if (_chunk.Length != 0 || ((_chunk.Counter - _firstChunk) & (chunks - 1)) != 0 || !BitOperations.IsPow2(chunks) || cv.Length != Blake3Core.OutLen)
        {
            throw new InvalidOperationException("A subtree CV can only be pushed at an aligned chunk boundary.");
        }
        fixed (byte* c = cv)
        fixed (byte* p = _mem)
        {
            var m = new Mem(p);
            PushCv(m, c, _chunk.Counter);
            _chunk.Reset(m.ChunkCv, m.ChunkBuf, m.Key, _chunk.Counter + chunks);
        }
    }

    // ---- Finalization --------------------------------------------------------------------------

    /// <summary>The node that would be the root if input ended now.</summary>
    [SkipLocalsInit]
    private Blake3Output RootCandidate(Mem m)
    {
        if (_cvStackLen == 0)
        {
            return _chunk.Output(m.ChunkCv, m.ChunkBuf);
        }

        Blake3Output output;
        int remaining;
        if (_chunk.Length > 0)
        {
            remaining = _cvStackLen;
            output = _chunk.Output(m.ChunkCv, m.ChunkBuf);
        }
        else
        {
            // Input ended on a chunk boundary after whole subtrees were pushed: the top two stack
            // entries are the children of the candidate (there are always at least two here).
            remaining = _cvStackLen - 2;
            output = Blake3Output.ParentNode(m.Key, m.Stack + remaining * Blake3Core.OutLen, _flags);
        }

        byte* parent = stackalloc byte[Blake3Core.BlockLen];
        while (remaining > 0)
        {
            remaining--;
            Unsafe.CopyBlockUnaligned(parent, m.Stack + remaining * Blake3Core.OutLen, Blake3Core.OutLen);
            output.ChainingValue((uint*)(parent + Blake3Core.OutLen));
            output = Blake3Output.ParentNode(m.Key, parent, _flags);
        }
        return output;
    }

    /// <summary>Writes <c>output.Length</c> bytes of hash output (any length: BLAKE3 is an XOF).</summary>
    public void Finalize(Span<byte> output) => FinalizeXof(0, output);

    /// <summary>Writes extended output starting at byte <paramref name="seekOffset"/> of the output stream.</summary>
    public void FinalizeXof(ulong seekOffset, Span<byte> output)
    {
        Blake3Output root;
        fixed (byte* p = _mem)
        {
            root = RootCandidate(new Mem(p));
        }
        root.RootBytes(seekOffset, output);
    }

#pragma warning disable CS0465 // Not a destructor: the name matches the BLAKE3 API, and the signature differs from Object.Finalize.
    /// <summary>The default 32-byte hash.</summary>
    public byte[] Finalize()
#pragma warning restore CS0465
    {
        byte[] hash = new byte[Blake3Core.OutLen];
        Finalize(hash);
        return hash;
    }

    /// <summary>The non-root chaining value of all input so far, treated as a complete subtree (for parallel hashing).</summary>
    internal void SubtreeChainingValue(Span<byte> cv)
    {
        if (cv.Length != Blake3Core.OutLen)
        {
            throw new ArgumentException("A chaining value is 32 bytes.", nameof(cv));
        }
        fixed (byte* c = cv)
        fixed (byte* p = _mem)
        {
            RootCandidate(new Mem(p)).ChainingValue((uint*)c);
        }
    }
}
