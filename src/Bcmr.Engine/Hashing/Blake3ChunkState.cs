using System.Runtime.CompilerServices;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// Incremental state of the one chunk (up to 1024 bytes) that is still receiving input.
/// The last block is always kept buffered, because only at finalization do we learn whether it
/// gets CHUNK_END only or also ROOT.
/// </summary>
/// <remarks>
/// The chaining value and block buffer live in the hasher's memory, which is only pinned during a call,
/// so every method is handed pointers to them.
/// </remarks>
internal unsafe struct Blake3ChunkState
{
    private readonly uint _flags;
    public ulong Counter;
    private int _bufLen;
    private int _blocksCompressed;

    public Blake3ChunkState(uint flags)
    {
        _flags = flags;
        Counter = 0;
        _bufLen = 0;
        _blocksCompressed = 0;
    }

    public readonly int Length => Blake3Core.BlockLen * _blocksCompressed + _bufLen;

    public void Reset(uint* cv, byte* buf, uint* key, ulong counter)
    {
        Unsafe.CopyBlockUnaligned(cv, key, Blake3Core.OutLen);
        // The final block is compressed with its zero padding, so stale bytes must not survive.
        Unsafe.InitBlockUnaligned(buf, 0, Blake3Core.BlockLen);
        Counter = counter;
        _bufLen = 0;
        _blocksCompressed = 0;
    }

    private readonly uint StartFlag => _blocksCompressed == 0 ? Blake3Core.ChunkStart : 0;

    /// <summary>Appends input; the caller guarantees the chunk does not overflow 1024 bytes.</summary>
    public void Update(uint* cv, byte* buf, byte* input, int length)
    {
        if (_bufLen > 0)
        {
            int take = FillBuffer(buf, input, length);
            input += take;
            length -= take;
            if (length > 0)
            {
                // More input follows, so the buffered block is not the last one.
                Blake3Core.CompressInPlace(cv, buf, Blake3Core.BlockLen, Counter, _flags | StartFlag);
                _blocksCompressed++;
                _bufLen = 0;
                Unsafe.InitBlockUnaligned(buf, 0, Blake3Core.BlockLen);
            }
        }

        while (length > Blake3Core.BlockLen)
        {
            Blake3Core.CompressInPlace(cv, input, Blake3Core.BlockLen, Counter, _flags | StartFlag);
            _blocksCompressed++;
            input += Blake3Core.BlockLen;
            length -= Blake3Core.BlockLen;
        }

        FillBuffer(buf, input, length);
    }

    private int FillBuffer(byte* buf, byte* input, int length)
    {
        int take = Math.Min(Blake3Core.BlockLen - _bufLen, length);
        Unsafe.CopyBlockUnaligned(buf + _bufLen, input, (uint)take);
        _bufLen += take;
        return take;
    }

    public readonly Blake3Output Output(uint* cv, byte* buf) =>
        new(cv, buf, (uint)_bufLen, Counter, _flags | StartFlag | Blake3Core.ChunkEnd);
}
