namespace Bcmr.Engine.Hashing;

/// <summary>
/// The hashes a resumable copy keeps for each 4 MiB block of a file, in file order:
/// <list type="bullet">
/// <item>the block's own BLAKE3 (the block hashed as a standalone input): what bcmr's session file records and what
/// the resume check compares against the bytes on disk;</item>
/// <item>the block's chaining value at its position in the file (a complete subtree of 4096 chunks): what lets the
/// whole-file BLAKE3 be finished after a resume without reading the blocks before it again.</item>
/// </list>
/// Chaining values are position-dependent and cannot be derived from the standalone hashes, so both are computed
/// from the data. A ledger loaded from a session written by another tool may lack chaining values; it can still
/// drive a resume, but then cannot produce the whole-file hash.
/// </summary>
public sealed class BlockLedger
{
    public const int BlockSize = 4 * 1024 * 1024;
    public const int HashSize = 32;
    private const ulong ChunksPerBlock = BlockSize / 1024;

    private readonly List<byte[]> _roots = new();
    private readonly List<byte[]?> _cvs = new();

    public BlockLedger()
    {
    }

    public BlockLedger(IReadOnlyList<byte[]> roots, IReadOnlyList<byte[]>? chainingValues)
    {
        for (int i = 0; i < roots.Count; i++)
            Add(roots[i], chainingValues is not null && i < chainingValues.Count ? chainingValues[i] : null);
    }

    /// <summary>Number of blocks recorded.</summary>
    public int Count => _roots.Count;

    /// <summary>Bytes covered by the recorded blocks when all of them are full blocks.</summary>
    public long Bytes => (long)_roots.Count * BlockSize;

    public IReadOnlyList<byte[]> Roots => _roots;

    public byte[] Root(int index) => _roots[index];

    public byte[]? ChainingValue(int index) => _cvs[index];

    /// <summary>True when every recorded block also has its chaining value.</summary>
    public bool HasAllChainingValues => _cvs.TrueForAll(c => c is not null);

    public IReadOnlyList<byte[]> ChainingValues =>
        HasAllChainingValues ? _cvs.ConvertAll(c => c!) : throw new InvalidOperationException("Some chaining values are unknown.");

    public void Add(byte[] root, byte[]? chainingValue)
    {
        if (root.Length != HashSize || chainingValue is { Length: not HashSize })
            throw new ArgumentException("Block hashes are 32 bytes.");
        _roots.Add(root);
        _cvs.Add(chainingValue);
    }

    /// <summary>A new ledger holding the first <paramref name="count"/> blocks of this one.</summary>
    public BlockLedger Prefix(int count)
    {
        var copy = new BlockLedger();
        copy._roots.AddRange(_roots.GetRange(0, count));
        copy._cvs.AddRange(_cvs.GetRange(0, count));
        return copy;
    }

    /// <summary>Forgets the blocks from <paramref name="count"/> on (they are going to be written again).</summary>
    public void Truncate(int count)
    {
        _roots.RemoveRange(count, _roots.Count - count);
        _cvs.RemoveRange(count, _cvs.Count - count);
    }

    /// <summary>The standalone BLAKE3 of one block (any length up to a block).</summary>
    public static void ComputeRoot(Blake3Hasher hasher, ReadOnlySpan<byte> block, Span<byte> root)
    {
        hasher.Reset();
        hasher.Update(block);
        hasher.Finalize(root);
    }

    /// <summary>The chaining value of full block <paramref name="index"/> as a node of its file's BLAKE3 tree.</summary>
    public static void ComputeChainingValue(Blake3Hasher hasher, long index, ReadOnlySpan<byte> block, Span<byte> cv)
    {
        if (block.Length != BlockSize) throw new ArgumentException("Only a full block is a complete subtree.", nameof(block));
        hasher.ResetAt((ulong)index * ChunksPerBlock);
        hasher.Update(block);
        hasher.SubtreeChainingValue(cv);
    }

    /// <summary>
    /// The BLAKE3 of a whole file of <paramref name="fileSize"/> bytes whose full blocks are all recorded here (with
    /// chaining values), given the bytes of its last, partial block (<paramref name="tail"/>; empty when the size is
    /// a multiple of the block size). Null when a chaining value that is needed is unknown.
    /// </summary>
    public byte[]? FileHash(long fileSize, ReadOnlySpan<byte> tail)
    {
        long fullBlocks = fileSize / BlockSize;
        if (tail.Length != fileSize - fullBlocks * BlockSize || _roots.Count < fullBlocks)
            throw new ArgumentException("The ledger and the tail do not describe a file of that size.");
        if (fileSize == 0) return Blake3.Hash(ReadOnlySpan<byte>.Empty);
        // A file of one block, full or not, is that block: its standalone hash is the file's hash.
        if (fullBlocks == 0) return _roots.Count > 0 ? (byte[])_roots[0].Clone() : Blake3.Hash(tail);
        if (fullBlocks == 1 && tail.IsEmpty) return (byte[])_roots[0].Clone();
        var file = Blake3Hasher.Create();
        for (int i = 0; i < fullBlocks; i++)
        {
            if (_cvs[i] is not { } cv) return null;
            file.PushSubtreeCv(cv, ChunksPerBlock);
        }
        if (!tail.IsEmpty) file.Update(tail);
        return file.Finalize();
    }
}
