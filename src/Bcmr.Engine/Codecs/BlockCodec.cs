using System.Collections.Concurrent;
using K4os.Compression.LZ4;
using ZstdSharp;

namespace Bcmr.Engine.Codecs;

/// <summary>
/// Encoding and decoding of one block (at most <see cref="MaxBlock"/> bytes) for DataCompressed frames, in the byte
/// formats bcmr 0.6 writes: LZ4 raw block format without a size prefix (lz4_flex::compress) and one standard zstd frame
/// at level 3 (zstd::bulk). Both the server and the client call this; nothing here allocates per block (the zstd
/// contexts are pooled) and every method is thread-safe.
/// <para>Auto-skip: <see cref="TryEncode"/> returns false when the compressed form would be larger than 95 % of the
/// original (bcmr 0.6's rule: raw when <c>compressed &gt; 0.95 × original</c>); the caller then sends the block raw.
/// It compresses into a buffer of exactly that size, so an incompressible block costs one failed compression and no
/// copy.</para>
/// <para>Decoding never trusts the peer: the declared original size is checked against the block limit and the
/// destination before anything is touched (no allocation at all: the caller owns the buffer), an algo byte we do
/// not know is refused, and the payload must decode to exactly the declared size. Every failure is a
/// <see cref="BcmrException"/> with code <see cref="BcmrErrorCode.CorruptData"/> and a message naming the cause.</para>
/// </summary>
public static class BlockCodec
{
    /// <summary>The largest block (decoded size) a frame carries: 4 MiB (Protocol.Wire.MaxBlock).</summary>
    public const int MaxBlock = Hashing.BlockLedger.BlockSize;

    /// <summary>The zstd level bcmr 0.6 uses.</summary>
    public const int ZstdLevel = 3;

    /// <summary>A block goes compressed only when its compressed form is at most this percentage of the original.</summary>
    public const int AutoSkipPercent = 95;

    /// <summary>Contexts kept for reuse (a zstd level-3 context holds about 1 MiB of tables).</summary>
    private const int MaxPooled = 8;

    private static readonly ConcurrentBag<Compressor> Compressors = new();
    private static readonly ConcurrentBag<Decompressor> Decompressors = new();

    /// <summary>The largest compressed size that is still sent compressed for a block of <paramref name="length"/>
    /// bytes: floor(0.95 × length).</summary>
    public static int MaxCompressedSize(int length) => (int)((long)length * AutoSkipPercent / 100);

    /// <summary>True when a block of <paramref name="original"/> bytes that compressed to <paramref name="compressed"/>
    /// bytes should go compressed (compressed ≤ 95 % of original).</summary>
    public static bool WorthSending(int original, int compressed) => compressed >= 0 && (long)compressed * 100 <= (long)original * AutoSkipPercent;

    /// <summary>
    /// Compresses <paramref name="block"/> with <paramref name="codec"/> into <paramref name="destination"/> (at least
    /// <see cref="MaxCompressedSize"/> of the block's length). True with the compressed length when the block should
    /// go as DataCompressed; false when it should go raw as Data (codec None, an empty block, or auto-skip).
    /// </summary>
    public static bool TryEncode(WireCodec codec, ReadOnlySpan<byte> block, Span<byte> destination, out int written)
    {
        written = 0;
        if (codec == WireCodec.None || block.IsEmpty) return false;
        if (block.Length > MaxBlock)
            throw new ArgumentOutOfRangeException(nameof(block), block.Length, $"a block is at most {MaxBlock} bytes");
        int limit = MaxCompressedSize(block.Length);
        if (destination.Length < limit)
            throw new ArgumentException($"destination holds {destination.Length} bytes; {limit} needed", nameof(destination));
        var target = destination[..limit];
        switch (codec)
        {
            case WireCodec.Lz4:
            {
                // K4os returns a negative or zero count when the output does not fit (LZ4's limited-output mode).
                int n = LZ4Codec.Encode(block, target, LZ4Level.L00_FAST);
                if (n <= 0) return false;
                written = n;
                return true;
            }
            case WireCodec.Zstd:
            {
                var c = RentCompressor();
                try
                {
                    if (!c.TryWrap(block, target, out written))
                    {
                        written = 0;
                        return false;
                    }
                    return true;
                }
                catch (ZstdException)
                {
                    // dstSize_tooSmall surfaces as an exception on some paths: the block did not compress enough.
                    written = 0;
                    return false;
                }
                finally
                {
                    ReturnCompressor(c);
                }
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(codec), codec, "unknown codec");
        }
    }

    /// <summary>
    /// Decodes a DataCompressed payload into <paramref name="destination"/>: <paramref name="algo"/> must be 1 (LZ4) or
    /// 2 (Zstd), <paramref name="originalSize"/> at most <see cref="MaxBlock"/> and the destination's length, and the
    /// payload must decode to exactly <paramref name="originalSize"/> bytes. Returns the decoded block (a slice of the
    /// destination). Throws <see cref="BcmrException"/> (<see cref="BcmrErrorCode.CorruptData"/>) otherwise.
    /// </summary>
    public static Span<byte> Decode(byte algo, uint originalSize, ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        if (algo is not ((byte)WireCodec.Lz4 or (byte)WireCodec.Zstd))
            throw Corrupt($"unknown compression algo {algo} in a DataCompressed frame (known: 1 = lz4, 2 = zstd)");
        var name = Compression.Name((WireCodec)algo);
        if (originalSize > MaxBlock)
            throw Corrupt($"{name} block declares an original size of {originalSize} bytes, above the {MaxBlock}-byte block limit");
        if (originalSize > (uint)destination.Length)
            throw new ArgumentException($"destination holds {destination.Length} bytes; the block declares {originalSize}", nameof(destination));
        var target = destination[..(int)originalSize];
        int n;
        if (algo == (byte)WireCodec.Lz4)
        {
            // LZ4_decompress_safe: bounds-checked against both buffers; a negative count means malformed input or
            // output that would not fit in the declared size.
            n = originalSize == 0 && payload.Length == 1 && payload[0] == 0 ? 0 : LZ4Codec.Decode(payload, target);
            if (n < 0)
                throw Corrupt($"lz4 block does not decode into its declared {originalSize} bytes (corrupt payload, or it decodes to more)");
        }
        else
        {
            // An upper bound from the frame headers (exact when the frame records its content size, as bcmr's and
            // ours do): a frame that cannot produce the declared size is refused without decoding.
            ulong bound;
            try { bound = Decompressor.GetDecompressedSize(payload); }
            catch (ZstdException e) { throw Corrupt($"zstd block is not a valid zstd frame: {e.Message}", e); }
            if (bound < originalSize)
                throw Corrupt($"zstd frame holds at most {bound} bytes but the block declares {originalSize}");
            var d = RentDecompressor();
            try
            {
                if (!d.TryUnwrap(payload, target, out n))
                    throw Corrupt($"zstd block decodes to more than its declared {originalSize} bytes");
            }
            catch (ZstdException e)
            {
                throw Corrupt($"zstd block is corrupt: {e.Message}", e);
            }
            finally
            {
                ReturnDecompressor(d);
            }
        }
        if (n != originalSize)
            throw Corrupt($"{name} block decodes to {n} bytes but declares {originalSize}");
        return target;
    }

    private static BcmrException Corrupt(string message, Exception? inner = null) =>
        new(BcmrErrorCode.CorruptData, null, message, inner);

    private static Compressor RentCompressor() =>
        Compressors.TryTake(out var c) ? c : new Compressor(ZstdLevel);

    private static void ReturnCompressor(Compressor c)
    {
        if (Compressors.Count < MaxPooled) Compressors.Add(c);
        else c.Dispose();
    }

    private static Decompressor RentDecompressor() =>
        Decompressors.TryTake(out var d) ? d : new Decompressor();

    private static void ReturnDecompressor(Decompressor d)
    {
        if (Decompressors.Count < MaxPooled) Decompressors.Add(d);
        else d.Dispose();
    }
}
