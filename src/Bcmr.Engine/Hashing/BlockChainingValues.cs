using System.Runtime.CompilerServices;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// The chaining values of a file's 4 MiB blocks at their positions, from bytes fed in order starting at a block
/// boundary: each block (the last one possibly short) is a complete subtree of the file's BLAKE3 tree whenever the
/// file is longer than one block, so the whole-file hash is merged from them (<see cref="FileHash"/>) by whoever
/// holds them all, without reading the file again. A striped transfer's connections each hash their own ranges;
/// the resume of a striped transfer compares these values block by block, holes included.
/// </summary>
public sealed class BlockChainingValues
{
    private const int BlockSize = BlockLedger.BlockSize;
    private readonly Blake3Hasher _hasher = Blake3Hasher.Create();
    private readonly List<byte[]> _values = new();
    private long _block;
    private int _filled;

    /// <param name="offset">Where the bytes start in the file: a multiple of the block size.</param>
    public BlockChainingValues(long offset)
    {
        if (offset < 0 || offset % BlockSize != 0) throw new ArgumentException($"offset {offset} is not at a 4 MiB block boundary", nameof(offset));
        _block = offset / BlockSize;
        _hasher.ResetAt((ulong)_block * BlockLedger.ChunksPerBlock);
    }

    /// <summary>The values of the blocks finished so far (and, after <see cref="Finish"/>, of the short last one).</summary>
    public IReadOnlyList<byte[]> Values => _values;

    public void Update(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int take = Math.Min(data.Length, BlockSize - _filled);
            _hasher.Update(data[..take]);
            _filled += take;
            data = data[take..];
            if (_filled == BlockSize) EndBlock();
        }
    }

    /// <summary>Ends a short last block, if bytes of one were fed; returns every value.</summary>
    public IReadOnlyList<byte[]> Finish()
    {
        if (_filled > 0) EndBlock();
        return _values;
    }

    private void EndBlock()
    {
        var cv = new byte[BlockLedger.HashSize];
        _hasher.SubtreeChainingValue(cv);
        _values.Add(cv);
        _block++;
        _filled = 0;
        _hasher.ResetAt((ulong)_block * BlockLedger.ChunksPerBlock);
    }

    /// <summary>The values of every block of bytes [offset, offset + count) of an open file, read in 4 MiB
    /// blocks into <paramref name="buffer"/>; fewer when the file ends first.</summary>
    internal static IReadOnlyList<byte[]> OfFile(Microsoft.Win32.SafeHandles.SafeFileHandle h, string path, long offset, long count, byte[] buffer,
        Action? betweenBlocks = null)
    {
        var values = new BlockChainingValues(offset);
        long pos = offset, end = offset + count;
        while (pos < end)
        {
            betweenBlocks?.Invoke();
            int n = Platform.Fs.ReadFull(h, buffer.AsSpan(0, (int)Math.Min(BlockSize, end - pos)), pos, path);
            if (n == 0) break;
            values.Update(buffer.AsSpan(0, n));
            pos += n;
        }
        return values.Finish();
    }

    /// <summary>
    /// The BLAKE3 of a file of more than one block from the chaining values of all its blocks in order: the
    /// left-balanced tree over the blocks is the file's own tree above them (a power-of-two number of chunks per
    /// block), so the parents are compressed here and the top one with the root flag.
    /// </summary>
    public static unsafe byte[] FileHash(IReadOnlyList<byte[]> values)
    {
        if (values.Count < 2) throw new ArgumentException("A file of one block is its own root: hash its bytes.", nameof(values));
        uint* key = stackalloc uint[8];
        Blake3Core.WriteIV(key);
        byte* children = stackalloc byte[Blake3Core.BlockLen];
        int left = LeftCount(values.Count);
        Subtree(values, 0, left, key, (uint*)children);
        Subtree(values, left, values.Count, key, (uint*)(children + Blake3Core.OutLen));
        var hash = new byte[Blake3Core.OutLen];
        Blake3Output.ParentNode(key, children, 0).RootBytes(0, hash);
        return hash;
    }

    /// <summary>Blocks in the left subtree of a node over <paramref name="n"/> blocks: the largest power of two below n.</summary>
    private static int LeftCount(int n) => 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)(n - 1)));

    /// <summary>The chaining value of the subtree over blocks [start, end).</summary>
    private static unsafe void Subtree(IReadOnlyList<byte[]> values, int start, int end, uint* key, uint* cvOut)
    {
        if (end - start == 1)
        {
            fixed (byte* v = values[start]) Unsafe.CopyBlockUnaligned(cvOut, v, Blake3Core.OutLen);
            return;
        }
        byte* children = stackalloc byte[Blake3Core.BlockLen];
        int left = LeftCount(end - start);
        Subtree(values, start, start + left, key, (uint*)children);
        Subtree(values, start + left, end, key, (uint*)(children + Blake3Core.OutLen));
        Blake3Output.ParentNode(key, children, 0).ChainingValue(cvOut);
    }
}
