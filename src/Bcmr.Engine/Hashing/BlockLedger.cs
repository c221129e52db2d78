namespace Bcmr.Engine.Hashing;

/// <summary>What a <see cref="BlockLedger"/> records for each 4 MiB block.</summary>
public enum BlockHashKind
{
    /// <summary>The block's chaining value at its position in the file (a complete subtree of 4096 chunks whose
    /// chunk counters start at the block's index × 4096). What our own copies record: it proves a block on disk
    /// (the resume check recomputes it from the block and its index) and also finishes the whole-file BLAKE3 after a
    /// resume without reading the blocks before it again. One BLAKE3 pass over each block gives it.</summary>
    ChainingValue,

    /// <summary>The block's own BLAKE3, the block hashed as a standalone input (chunk counters from 0): what bcmr
    /// 0.6 records. Read from its sessions, and kept when we continue one of them, so that the whole ledger stays of
    /// one kind. Cannot give the whole-file hash (chaining values are position-dependent and cannot be derived).</summary>
    Root,
}

/// <summary>
/// The hashes a resumable copy keeps for the full 4 MiB blocks of a file, in file order, all of one
/// <see cref="BlockHashKind"/>. The session file's version-2 slots hold them; the resume check compares them with
/// the blocks on disk. A short last block is never recorded: sessions cover full blocks only, and the whole-file hash
/// takes the short block's bytes (<see cref="FileHash"/>).
/// </summary>
public sealed class BlockLedger
{
    /// <summary>The one block size of the engine, 4 MiB, as bcmr 0.6 has it: session slots, the wire's largest Data
    /// block, copy buffers and block hashes all use this constant, so a block sent, written, hashed and recorded is
    /// the same block (a striped transfer merges the whole-file root from per-block chaining values).</summary>
    public const int BlockSize = 4 * 1024 * 1024;
    public const int HashSize = 32;
    public const ulong ChunksPerBlock = BlockSize / 1024;

    private readonly List<byte[]> _hashes = new();

    public BlockLedger(BlockHashKind kind = BlockHashKind.ChainingValue) => Kind = kind;

    public BlockLedger(BlockHashKind kind, IEnumerable<byte[]> hashes) : this(kind)
    {
        foreach (var h in hashes) Add(h);
    }

    public BlockHashKind Kind { get; }

    /// <summary>Number of blocks recorded.</summary>
    public int Count => _hashes.Count;

    /// <summary>Bytes covered by the recorded blocks.</summary>
    public long Bytes => (long)_hashes.Count * BlockSize;

    public IReadOnlyList<byte[]> Hashes => _hashes;

    public byte[] Hash(int index) => _hashes[index];

    /// <summary>True when the recorded hashes can finish the whole-file hash (they are chaining values).</summary>
    public bool CanFinishFileHash => Kind == BlockHashKind.ChainingValue;

    public void Add(byte[] hash)
    {
        if (hash.Length != HashSize) throw new ArgumentException("Block hashes are 32 bytes.");
        _hashes.Add(hash);
    }

    /// <summary>A new ledger holding the first <paramref name="count"/> blocks of this one.</summary>
    public BlockLedger Prefix(int count) => new(Kind, _hashes.GetRange(0, count));

    /// <summary>Forgets the blocks from <paramref name="count"/> on (they are going to be written again).</summary>
    public void Truncate(int count) => _hashes.RemoveRange(count, _hashes.Count - count);

    /// <summary>This ledger's kind of hash of full block <paramref name="index"/>.</summary>
    public void Compute(Blake3Hasher hasher, long index, ReadOnlySpan<byte> block, Span<byte> hash)
    {
        if (Kind == BlockHashKind.Root) ComputeRoot(hasher, block, hash);
        else ComputeChainingValue(hasher, index, block, hash);
    }

    /// <summary>The standalone BLAKE3 of one block (any length up to a block).</summary>
    public static void ComputeRoot(Blake3Hasher hasher, ReadOnlySpan<byte> block, Span<byte> root)
    {
        hasher.Reset();
        hasher.Update(block);
        hasher.Finalize(root);
    }

    /// <summary>The chaining value of full block <paramref name="index"/> as a node of its file's BLAKE3 tree.
    /// The hasher is left holding the block, so that the caller may also take its root (<see cref="Blake3Hasher.Finalize(Span{byte})"/>)
    /// when block 0 is the whole file.</summary>
    public static void ComputeChainingValue(Blake3Hasher hasher, long index, ReadOnlySpan<byte> block, Span<byte> cv)
    {
        if (block.Length != BlockSize) throw new ArgumentException("Only a full block is a complete subtree.", nameof(block));
        hasher.ResetAt((ulong)index * ChunksPerBlock);
        hasher.Update(block);
        hasher.SubtreeChainingValue(cv);
    }

    /// <summary>
    /// The BLAKE3 of a whole file of <paramref name="fileSize"/> bytes whose full blocks are all recorded here, given
    /// the bytes of its last, short block (<paramref name="tail"/>; empty when the size is a multiple of the block
    /// size). Null when it cannot be known from the ledger: standalone roots, or a file that is exactly one full block
    /// (its hash is that block's root, which a chaining value does not give).
    /// </summary>
    public byte[]? FileHash(long fileSize, ReadOnlySpan<byte> tail)
    {
        long fullBlocks = fileSize / BlockSize;
        if (tail.Length != fileSize - fullBlocks * BlockSize || _hashes.Count < fullBlocks)
            throw new ArgumentException("The ledger and the tail do not describe a file of that size.");
        if (fullBlocks == 0) return Blake3.Hash(tail); // the file is its tail (or empty)
        if (!CanFinishFileHash || (fullBlocks == 1 && tail.IsEmpty)) return null;
        var file = Blake3Hasher.Create();
        for (int i = 0; i < fullBlocks; i++) file.PushSubtreeCv(_hashes[i], ChunksPerBlock);
        if (!tail.IsEmpty) file.Update(tail);
        return file.Finalize();
    }
}
