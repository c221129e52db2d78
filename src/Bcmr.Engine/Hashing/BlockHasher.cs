namespace Bcmr.Engine.Hashing;

/// <summary>
/// Hashes a file's bytes, fed in pieces of any size, into both the BLAKE3 hash of every
/// <see cref="BlockSize"/> block (each block hashed as a standalone input) and the whole-file hash,
/// reading the data once.
/// </summary>
/// <remarks>
/// Block hashes cannot be derived from the file's tree: every chunk's compression includes its
/// position in the input, so the same bytes at offset 4 MiB and at offset 0 give different chaining values.
/// Each piece therefore goes through two hashers, in cache-sized slices so the second pass reads from cache.
/// </remarks>
public sealed class BlockHasher
{
    public const int BlockSize = BlockLedger.BlockSize;

    private const int SliceBytes = 64 * 1024;

    private readonly Blake3Hasher _file;
    private readonly Blake3Hasher _block;
    private readonly List<byte[]> _blockHashes = new();
    private int _inBlock;
    private byte[]? _fileHash;

    public BlockHasher() : this(Blake3HashMany.Default)
    {
    }

    internal BlockHasher(Blake3Simd simd)
    {
        _file = Blake3Hasher.Create(simd);
        _block = Blake3Hasher.Create(simd);
    }

    /// <summary>Hashes of the completed blocks so far, in file order; the last may be short once finalized.</summary>
    public IReadOnlyList<byte[]> BlockHashes => _blockHashes;

    /// <summary>Total bytes fed so far.</summary>
    public long Length { get; private set; }

    public void Update(ReadOnlySpan<byte> data)
    {
        if (_fileHash is not null)
        {
            throw new InvalidOperationException("The block hasher has already been finalized.");
        }
        while (!data.IsEmpty)
        {
            int n = Math.Min(Math.Min(data.Length, SliceBytes), BlockSize - _inBlock);
            ReadOnlySpan<byte> slice = data[..n];
            _file.Update(slice);
            _block.Update(slice);
            _inBlock += n;
            Length += n;
            data = data[n..];
            if (_inBlock == BlockSize)
            {
                _blockHashes.Add(_block.Finalize());
                _block.Reset();
                _inBlock = 0;
            }
        }
    }

    /// <summary>
    /// Closes the last, partial block (if any) and returns the whole-file hash. An empty input has no blocks.
    /// Idempotent; no more data may be fed afterwards.
    /// </summary>
    public byte[] FinalizeBlocks()
    {
        if (_fileHash is null)
        {
            if (_inBlock > 0)
            {
                _blockHashes.Add(_block.Finalize());
                _inBlock = 0;
            }
            _fileHash = _file.Finalize();
        }
        return (byte[])_fileHash.Clone();
    }

    /// <summary>The whole-file hash; finalizes the blocks if that has not happened yet.</summary>
    public byte[] FileHash() => FinalizeBlocks();
}
