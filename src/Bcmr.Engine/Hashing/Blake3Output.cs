using System.Runtime.CompilerServices;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// A compression that has not been run yet: the last node of a chunk or a parent. Kept unevaluated
/// because only the caller knows whether it is the root (ROOT flag, any output length) or an inner
/// node (32-byte chaining value).
/// </summary>
internal unsafe struct Blake3Output
{
    private fixed uint _cv[8];
    private fixed byte _block[Blake3Core.BlockLen];
    private uint _blockLen;
    private ulong _counter;
    private uint _flags;

    public Blake3Output(uint* cv, byte* block, uint blockLen, ulong counter, uint flags)
    {
        fixed (uint* c = _cv)
        {
            Unsafe.CopyBlockUnaligned(c, cv, Blake3Core.OutLen);
        }
        fixed (byte* b = _block)
        {
            Unsafe.CopyBlockUnaligned(b, block, Blake3Core.BlockLen);
        }
        _blockLen = blockLen;
        _counter = counter;
        _flags = flags;
    }

    public static Blake3Output ParentNode(uint* key, byte* leftAndRightCvs, uint flags) =>
        new(key, leftAndRightCvs, Blake3Core.BlockLen, 0, flags | Blake3Core.Parent);

    [SkipLocalsInit]
    public void ChainingValue(uint* cvOut)
    {
        uint* full = stackalloc uint[16];
        fixed (uint* c = _cv)
        fixed (byte* b = _block)
        {
            Blake3Core.Compress(c, b, _blockLen, _counter, _flags, full);
        }
        Unsafe.CopyBlockUnaligned(cvOut, full, Blake3Core.OutLen);
    }

    /// <summary>
    /// Root output starting at byte <paramref name="seek"/>: each 64-byte output block is the root
    /// compression again with the output block index as the counter, so any offset is reachable directly.
    /// </summary>
    [SkipLocalsInit]
    public void RootBytes(ulong seek, Span<byte> output)
    {
        uint* full = stackalloc uint[16];
        ulong outputBlock = seek / Blake3Core.BlockLen;
        int offset = (int)(seek % Blake3Core.BlockLen);
        fixed (uint* c = _cv)
        fixed (byte* b = _block)
        {
            while (!output.IsEmpty)
            {
                Blake3Core.Compress(c, b, _blockLen, outputBlock, _flags | Blake3Core.Root, full);
                int take = Math.Min(Blake3Core.BlockLen - offset, output.Length);
                new ReadOnlySpan<byte>((byte*)full + offset, take).CopyTo(output);
                output = output[take..];
                offset = 0;
                outputBlock++;
            }
        }
    }
}
