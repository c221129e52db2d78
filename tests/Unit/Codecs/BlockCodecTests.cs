using System.Text;
using Bcmr.Engine;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Protocol;
using CsCheck;

namespace Bcmr.Tests.Codecs;

/// <summary>Block encode/decode: round trips of every codec, the 95 % auto-skip, codec choice, and the decoder's
/// refusals (lying sizes, corrupt payloads, unknown algos) without allocating beyond the block limit.</summary>
public sealed class BlockCodecTests
{
    internal const int MiB = 1024 * 1024;

    /// <summary>Source-like text: C#-ish lines with varying identifiers and numbers, compressible about 5x.</summary>
    internal static byte[] SourceText(int size, int seed = 1)
    {
        var rnd = new Random(seed);
        string[] words = ["var", "return", "public", "static", "int", "string", "if", "else", "for", "foreach", "new", "await", "block", "buffer", "length", "offset", "count", "hash", "frame", "reader", "writer", "session", "path"];
        var sb = new StringBuilder(size + 200);
        while (sb.Length < size)
        {
            sb.Append(' ', rnd.Next(0, 4) * 4);
            int n = rnd.Next(3, 10);
            for (int i = 0; i < n; i++)
            {
                sb.Append(words[rnd.Next(words.Length)]);
                if (rnd.Next(4) == 0) sb.Append(rnd.Next(1000));
                sb.Append(rnd.Next(5) == 0 ? "(" : " ");
            }
            sb.Append(rnd.Next(3) == 0 ? ");\n" : ";\n");
        }
        return Encoding.ASCII.GetBytes(sb.ToString(0, size));
    }

    internal static byte[] RandomBytes(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Encodes as the wire would; returns null when the block goes raw.</summary>
    private static byte[]? Encode(WireCodec codec, byte[] block)
    {
        var scratch = new byte[BlockCodec.MaxCompressedSize(block.Length)];
        return BlockCodec.TryEncode(codec, block, scratch, out int n) ? scratch[..n] : null;
    }

    public static TheoryData<WireCodec, int> Sizes => new()
    {
        { WireCodec.Lz4, 1 }, { WireCodec.Lz4, 1000 }, { WireCodec.Lz4, 4 * MiB - 1 }, { WireCodec.Lz4, 4 * MiB },
        { WireCodec.Zstd, 1 }, { WireCodec.Zstd, 1000 }, { WireCodec.Zstd, 4 * MiB - 1 }, { WireCodec.Zstd, 4 * MiB },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Text_round_trips_byte_identical_and_compresses(WireCodec codec, int size)
    {
        var text = SourceText(size, size);
        var encoded = Encode(codec, text);
        if (size < 64)
        {
            Assert.Null(encoded); // a tiny block cannot shrink below 95 %
            return;
        }
        Assert.NotNull(encoded);
        // Small blocks give the codecs little to work with; 4 MiB of text must shrink well (zstd about 5x).
        Assert.True(encoded!.Length < text.Length * (size >= MiB ? (codec == WireCodec.Zstd ? 30 : 50) : 95) / 100, $"{codec}: {encoded.Length} of {text.Length}");
        var buffer = new byte[Wire.MaxBlock];
        var decoded = BlockCodec.Decode((byte)codec, (uint)text.Length, encoded, buffer);
        Assert.True(decoded.SequenceEqual(text));
    }

    [Fact]
    public void None_never_compresses_and_an_empty_block_goes_raw()
    {
        var text = SourceText(MiB);
        Assert.Null(Encode(WireCodec.None, text));
        Assert.Null(Encode(WireCodec.Zstd, []));
        Assert.Null(Encode(WireCodec.Lz4, []));
    }

    [Theory]
    [InlineData(WireCodec.Lz4)]
    [InlineData(WireCodec.Zstd)]
    public void Random_data_goes_raw(WireCodec codec)
    {
        Assert.Null(Encode(codec, RandomBytes(4 * MiB, 7)));
        Assert.Null(Encode(codec, RandomBytes(100_000, 8)));
    }

    [Fact]
    public void The_auto_skip_threshold_is_95_percent_inclusive()
    {
        Assert.True(BlockCodec.WorthSending(100, 95));
        Assert.False(BlockCodec.WorthSending(100, 96));
        Assert.True(BlockCodec.WorthSending(4 * MiB, 4 * MiB * 95 / 100));
        Assert.False(BlockCodec.WorthSending(4 * MiB, 4 * MiB * 95 / 100 + 1));
        Assert.Equal(3984588, BlockCodec.MaxCompressedSize(4 * MiB));
    }

    [Fact]
    public void Half_random_half_text_is_compressed_only_when_it_saves_more_than_5_percent()
    {
        // 92 % random + 8 % zeros: the codecs save a little under 8 %, so it goes compressed; 97 % random does not.
        foreach (var codec in new[] { WireCodec.Lz4, WireCodec.Zstd })
        {
            var mostly = RandomBytes(MiB, 9);
            Array.Clear(mostly, 0, MiB * 8 / 100);
            var enc = Encode(codec, mostly);
            Assert.NotNull(enc);
            Assert.True(BlockCodec.WorthSending(MiB, enc!.Length));

            var barely = RandomBytes(MiB, 10);
            Array.Clear(barely, 0, MiB * 3 / 100);
            Assert.Null(Encode(codec, barely));
        }
    }

    [Fact]
    public void Property_every_codec_round_trips_any_block()
    {
        // CsCheck samples on several threads: every sample decodes into its own buffer.
        Gen.Select(Gen.Byte[0, 200].Array[0, 5000], Gen.Int[0, 2], Gen.Int[1, 50])
            .Sample((bytes, c, repeat) =>
            {
                // Repeat the generated bytes to get compressible and incompressible mixes.
                var block = Enumerable.Repeat(bytes, repeat).SelectMany(b => b).ToArray();
                var codec = (WireCodec)c;
                var enc = Encode(codec, block);
                if (enc is null) return; // raw: nothing to decode
                Assert.True(enc.Length * 100L <= block.Length * 95L);
                Assert.True(BlockCodec.Decode((byte)codec, (uint)block.Length, enc, new byte[block.Length]).SequenceEqual(block));
            }, iter: 300);
    }

    // ---- refusals ------------------------------------------------------------------------------------------------

    public static TheoryData<WireCodec> Codecs => new() { WireCodec.Lz4, WireCodec.Zstd };

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_block_that_decodes_to_more_than_declared_is_refused(WireCodec codec)
    {
        var text = SourceText(100_000);
        var enc = Encode(codec, text)!;
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode((byte)codec, 99_999, enc, new byte[Wire.MaxBlock]));
        Assert.Equal(BcmrErrorCode.CorruptData, e.Code);
        Assert.Contains(codec == WireCodec.Zstd ? "decodes to more than its declared 99999 bytes" : "declared 99999 bytes", e.Message);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_block_that_decodes_to_less_than_declared_is_refused(WireCodec codec)
    {
        var text = SourceText(100_000);
        var enc = Encode(codec, text)!;
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode((byte)codec, 100_001, enc, new byte[Wire.MaxBlock]));
        Assert.Equal(BcmrErrorCode.CorruptData, e.Code);
        Assert.Contains(codec == WireCodec.Zstd ? "holds at most 100000 bytes but the block declares 100001" : "decodes to 100000 bytes but declares 100001", e.Message);
    }

    [Fact]
    public void A_zstd_frame_without_content_size_that_decodes_short_is_refused()
    {
        // zstd's streaming API writes frames without a content size; the decoder must count what it produced.
        var text = SourceText(50_000);
        using var c = new ZstdSharp.Compressor(3);
        var dst = new byte[60_000];
        c.WrapStream(text.AsSpan(0, 20_000), dst, out _, out int total, isFinalBlock: false);
        c.WrapStream(text.AsSpan(20_000), dst.AsSpan(total), out _, out int more, isFinalBlock: false);
        total += more;
        while (c.FlushStream(dst.AsSpan(total), out more, isFinalBlock: true) != System.Buffers.OperationStatus.Done) total += more;
        total += more;
        var frame = dst[..total];
        Assert.True(ZstdSharp.Decompressor.GetDecompressedSize(frame) > 50_001); // no content size: only a bound
        Assert.True(BlockCodec.Decode(2, 50_000, frame, new byte[Wire.MaxBlock]).SequenceEqual(text));
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode(2, 50_001, frame, new byte[Wire.MaxBlock]));
        Assert.Contains("decodes to 50000 bytes but declares 50001", e.Message);
        e = Assert.Throws<BcmrException>(() => BlockCodec.Decode(2, 49_999, frame, new byte[Wire.MaxBlock]));
        Assert.Contains("decodes to more than its declared 49999 bytes", e.Message);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_corrupt_payload_is_refused(WireCodec codec)
    {
        var text = SourceText(200_000);
        var enc = Encode(codec, text)!;
        var buffer = new byte[Wire.MaxBlock];
        // Cut short, and flipped bytes in several places: either refused, or (a flip inside a literal) decoded to
        // other bytes of the right size, which the BLAKE3 of the transfer catches. Never an exception of another type.
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode((byte)codec, (uint)text.Length, enc.AsSpan(0, enc.Length / 2), buffer));
        Assert.Equal(BcmrErrorCode.CorruptData, e.Code);
        Gen.Select(Gen.Int[0, enc.Length - 1], Gen.Byte[1, 255]).Sample((pos, x) =>
        {
            var bad = (byte[])enc.Clone();
            bad[pos] ^= x;
            try
            {
                var d = BlockCodec.Decode((byte)codec, (uint)text.Length, bad, new byte[text.Length]);
                return d.Length == text.Length;
            }
            catch (BcmrException ex) { return ex.Code == BcmrErrorCode.CorruptData; }
        }, iter: 200);
    }

    [Fact]
    public void Garbage_of_any_shape_is_refused_with_CorruptData_only()
    {
        Gen.Select(Gen.Byte[1, 2], Gen.UInt[0, 70_000], Gen.Byte.Array[0, 300]).Sample((algo, size, payload) =>
        {
            try
            {
                var d = BlockCodec.Decode(algo, size, payload, new byte[size]);
                return d.Length == size;
            }
            catch (BcmrException ex) { return ex.Code == BcmrErrorCode.CorruptData; }
        }, iter: 2000);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(255)]
    public void An_unknown_algo_byte_is_refused_by_name(byte algo)
    {
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode(algo, 10, new byte[10], new byte[Wire.MaxBlock]));
        Assert.Equal(BcmrErrorCode.CorruptData, e.Code);
        Assert.Contains($"unknown compression algo {algo}", e.Message);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void An_original_size_above_the_block_limit_is_refused_before_decoding(WireCodec codec)
    {
        // A buffer the size of the limit: the decoder is never asked for more, and never allocates (it has no way to).
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode((byte)codec, Wire.MaxBlock + 1u, [1, 2, 3], new byte[Wire.MaxBlock]));
        Assert.Contains("above the 4194304-byte block limit", e.Message);
        e = Assert.Throws<BcmrException>(() => BlockCodec.Decode((byte)codec, uint.MaxValue, [1, 2, 3], new byte[Wire.MaxBlock]));
        Assert.Contains("original size of 4294967295 bytes", e.Message);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_bomb_declaring_4_MiB_but_expanding_further_is_stopped_at_the_declared_size(WireCodec codec)
    {
        // 16 MiB of zeros compresses to a few KiB; declared as 4 MiB it must be refused, and the decoder may not
        // write past the 4 MiB it was given: guard bytes after the target stay untouched.
        var zeros = new byte[16 * MiB];
        byte[] enc = codec == WireCodec.Zstd ? new ZstdSharp.Compressor(3).Wrap(zeros).ToArray() : LzEncode(zeros);
        var buffer = new byte[Wire.MaxBlock + 64];
        buffer.AsSpan(Wire.MaxBlock).Fill(0xEE);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<BcmrException>(() => BlockCodec.Decode((byte)codec, Wire.MaxBlock, enc, buffer));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(BcmrErrorCode.CorruptData, e.Code);
        Assert.True(buffer.AsSpan(Wire.MaxBlock).ToArray().All(b => b == 0xEE), "decoder wrote past the declared size");
        Assert.True(allocated < 256 * 1024, $"decoding allocated {allocated} bytes");
    }

    private static byte[] LzEncode(byte[] data)
    {
        var dst = new byte[K4os.Compression.LZ4.LZ4Codec.MaximumOutputSize(data.Length)];
        int n = K4os.Compression.LZ4.LZ4Codec.Encode(data, dst, K4os.Compression.LZ4.LZ4Level.L00_FAST);
        return dst[..n];
    }

    [Fact]
    public void Decoding_a_4_MiB_block_allocates_nothing_per_block()
    {
        var text = SourceText(4 * MiB);
        var buffer = new byte[Wire.MaxBlock];
        foreach (var codec in new[] { WireCodec.Lz4, WireCodec.Zstd })
        {
            var enc = Encode(codec, text)!;
            BlockCodec.Decode((byte)codec, (uint)text.Length, enc, buffer); // warm the pooled context
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 3; i++) BlockCodec.Decode((byte)codec, (uint)text.Length, enc, buffer);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 64 * 1024, $"{codec}: {allocated} bytes allocated for 3 decodes");
        }
    }

    // ---- choice --------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(Caps.Lz4 | Caps.Zstd, CompressionSetting.Auto, WireCodec.Zstd)]
    [InlineData(Caps.Lz4, CompressionSetting.Auto, WireCodec.Lz4)]
    [InlineData(Caps.Zstd, CompressionSetting.Auto, WireCodec.Zstd)]
    [InlineData(0, CompressionSetting.Auto, WireCodec.None)]
    [InlineData(Caps.Lz4 | Caps.Zstd, CompressionSetting.Lz4, WireCodec.Lz4)]
    [InlineData(Caps.Zstd, CompressionSetting.Lz4, WireCodec.None)]
    [InlineData(Caps.Lz4 | Caps.Zstd, CompressionSetting.None, WireCodec.None)]
    [InlineData(Caps.Lz4 | Caps.Zstd | Caps.Dedup | Caps.Sync, CompressionSetting.Zstd, WireCodec.Zstd)]
    [InlineData(Caps.Lz4, CompressionSetting.Zstd, WireCodec.None)]
    public void The_codec_is_zstd_then_lz4_then_raw_within_the_setting(byte caps, CompressionSetting setting, WireCodec expected) =>
        Assert.Equal(expected, Compression.Choose(caps, setting));

    [Fact]
    public void Settings_parse_from_the_flag_then_BCMR_COMPRESS_then_auto()
    {
        Assert.Equal(Caps.Lz4 | Caps.Zstd, Compression.OfferedCaps(CompressionSetting.Auto));
        Assert.Equal(Caps.Zstd, Compression.OfferedCaps(CompressionSetting.Zstd));
        Assert.Equal(0, Compression.OfferedCaps(CompressionSetting.None));
        Assert.Equal(CompressionSetting.Lz4, Compression.Parse("LZ4"));
        var e = Assert.Throws<BcmrException>(() => Compression.Parse("gzip"));
        Assert.Contains("'gzip' is not a compression setting", e.Message);

        // BCMR_COMPRESS as the CLI and the cmdlets read it (EngineSettings.FromEnvironment), from a dictionary here.
        static string? Env(string? value) =>
            EngineSettings.FromEnvironment(name => name == Compression.EnvironmentVariable ? value : null).Compress;
        Assert.Equal(CompressionSetting.Lz4, Compression.Resolve(null, Env("lz4")));
        Assert.Equal(CompressionSetting.None, Compression.Resolve("none", Env("lz4")));
        Assert.Contains("BCMR_COMPRESS: 'fast'", Assert.Throws<BcmrException>(() => Compression.Resolve(null, Env("fast"))).Message);
        Assert.Equal(CompressionSetting.Auto, Compression.Resolve(null, Env(null)));
        Assert.Equal(CompressionSetting.Auto, Compression.Resolve(null, Env(" ")));
    }
}
