using Bcmr.Engine.Local;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Codecs;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>Wire compression through the server loop in process, over real pipes: compressed Get and Put round trips,
/// auto-skip of random data, caps negotiated down, and refusal of lying, corrupt or unknown blocks.</summary>
public sealed class ServeCodecTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();
    private string Root => _t.Path;

    public void Dispose() => _t.Dispose();

    private static string B3(ReadOnlySpan<byte> data) => Blake3.ToHex(Blake3.Hash(data));
    private static string Sha(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    private ServeConnection Open(byte clientCaps, byte serverCaps = ServeSession.SupportedCaps)
    {
        var c = ServeConnection.InProcess(Root, serverCaps);
        c.Handshake(clientCaps);
        return c;
    }

    public static TheoryData<byte, WireCodec> CodecCaps => new()
    {
        { Caps.Lz4 | Caps.Zstd, WireCodec.Zstd },
        { Caps.Zstd, WireCodec.Zstd },
        { Caps.Lz4, WireCodec.Lz4 },
        { 0, WireCodec.None },
    };

    [Theory]
    [MemberData(nameof(CodecCaps))]
    public void Get_of_text_is_compressed_with_the_best_common_codec_and_arrives_byte_identical(byte caps, WireCodec expected)
    {
        var text = BlockCodecTests.SourceText(9 * MiB + 123, 3);
        _t.WriteFile("src.txt", text);
        using var c = Open(caps);
        Assert.Equal(expected, c.Session!.Codec);
        c.Send(new GetRequest("src.txt", 0));
        var (bytes, end) = c.ReceiveGet(out var stats);
        Assert.Equal(Sha(text), Sha(bytes));
        Assert.Equal(new OkResponse(B3(text)), end);
        if (expected == WireCodec.None)
        {
            Assert.Equal(0, stats.Compressed);
            Assert.True(stats.WireBytes > text.Length);
        }
        else
        {
            Assert.Equal(3, stats.Compressed);
            Assert.Equal(0, stats.Raw);
            // Source-like text: zstd about 4-5x, lz4 about 2-3x.
            double ratio = (double)stats.WireBytes / text.Length;
            Assert.True(ratio < (expected == WireCodec.Zstd ? 0.3 : 0.5), $"{expected}: {stats.WireBytes} of {text.Length} bytes on the wire");
        }
    }

    [Fact]
    public void Get_of_random_data_goes_raw_even_with_zstd()
    {
        var data = BlockCodecTests.RandomBytes(6 * MiB, 4);
        _t.WriteFile("r.bin", data);
        using var c = Open(Caps.Lz4 | Caps.Zstd);
        c.Send(new GetRequest("r.bin", 0));
        var (bytes, end) = c.ReceiveGet(out var stats);
        Assert.Equal(Sha(data), Sha(bytes));
        Assert.Equal(new OkResponse(B3(data)), end);
        Assert.Equal(2, stats.Raw);
        Assert.Equal(0, stats.Compressed);
        Assert.Equal(data.Length + 2 * 9, stats.WireBytes);
    }

    [Fact]
    public void A_mixed_file_sends_each_block_the_cheaper_way()
    {
        var text = BlockCodecTests.SourceText(4 * MiB, 5);
        var random = BlockCodecTests.RandomBytes(4 * MiB, 6);
        var file = text.Concat(random).Concat(text.AsSpan(0, 1000).ToArray()).ToArray();
        _t.WriteFile("mixed.bin", file);
        using var c = Open(Caps.Zstd);
        c.Send(new GetRequest("mixed.bin", 4 * MiB - 10)); // offsets still work: the prefix is hashed, not sent
        var (bytes, end) = c.ReceiveGet(out var stats);
        Assert.Equal(file.AsSpan(4 * MiB - 10).ToArray(), bytes);
        Assert.Equal(new OkResponse(B3(file)), end);
        Assert.Equal(1, stats.Raw); // the block that is nearly all random
        Assert.Equal(1, stats.Compressed); // the text tail
    }

    [Fact]
    public void A_server_without_codecs_negotiates_down_and_sends_raw()
    {
        var text = BlockCodecTests.SourceText(5 * MiB, 7);
        _t.WriteFile("t.txt", text);
        using var c = ServeConnection.InProcess(Root, Caps.Sync | Caps.Fast); // a peer that offers no codec
        Assert.Equal(new Welcome(1, Caps.Sync), c.Handshake(Caps.Lz4 | Caps.Zstd | Caps.Sync));
        c.Send(new GetRequest("t.txt", 0));
        var (bytes, _) = c.ReceiveGet(out var stats);
        Assert.Equal(text, bytes);
        Assert.Equal(0, stats.Compressed);
    }

    [Theory]
    [InlineData(WireCodec.Zstd)]
    [InlineData(WireCodec.Lz4)]
    [InlineData(WireCodec.None)]
    public void Put_with_compressed_blocks_writes_the_exact_file(WireCodec codec)
    {
        var text = BlockCodecTests.SourceText(10 * MiB + 5, 8);
        using var c = Open(Compression.OfferedCaps(CompressionSetting.Auto));
        long before = c.BytesSent;
        Assert.Equal(new OkResponse(B3(text)), c.PutEncoded("up/t.txt", text, codec));
        long sent = c.BytesSent - before;
        Assert.Equal(Sha(text), Sha(File.ReadAllBytes(_t["up/t.txt"])));
        if (codec == WireCodec.None) Assert.True(sent > text.Length);
        else Assert.True(sent < text.Length / 2, $"{codec}: {sent} bytes sent for {text.Length}");
        Trees.AssertNoStagingFiles(Root);
    }

    [Fact]
    public void Put_accepts_both_codecs_even_when_not_negotiated_as_bcmr_does()
    {
        var text = BlockCodecTests.SourceText(MiB, 9);
        using var c = Open(0);
        Assert.Equal(new OkResponse(B3(text)), c.PutEncoded("a.txt", text, WireCodec.Lz4));
        Assert.Equal(new OkResponse(B3(text)), c.PutEncoded("b.txt", text, WireCodec.Zstd));
        Assert.Equal(text, File.ReadAllBytes(_t["b.txt"]));
    }

    /// <summary>A DataCompressed frame built by hand: algo, original size, payload.</summary>
    private static byte[] CompressedFrame(byte algo, uint originalSize, byte[] payload) =>
        MessageCodec.Encode(new DataCompressed(algo, originalSize, payload));

    private static byte[] Zstd(byte[] block)
    {
        var scratch = new byte[BlockCodec.MaxCompressedSize(block.Length)];
        Assert.True(BlockCodec.TryEncode(WireCodec.Zstd, block, scratch, out int n));
        return scratch[..n];
    }

    /// <summary>Sends Put, one good 4 MiB block, the bad frame, the remaining blocks (which the server must skip),
    /// Done, then a Stat: the Put gets an Error with <paramref name="expected"/>, no destination appears, the
    /// partial holds exactly the good block, and the session answers the Stat.</summary>
    private void AssertRefused(Func<byte[], byte[]> badFrame, string expected)
    {
        var text = BlockCodecTests.SourceText(12 * MiB, 10);
        _t.WriteFile("other.txt", [1, 2, 3]);
        using var c = Open(Caps.Lz4 | Caps.Zstd);
        c.Send(new PutRequest("bad.txt", (ulong)text.Length, 0));
        var scratch = new byte[BlockCodec.MaxCompressedSize(Wire.MaxBlock)];
        c.Writer.WriteBlock(text.AsSpan(0, 4 * MiB), WireCodec.Zstd, scratch);
        c.SendRaw(badFrame(text.AsSpan(4 * MiB, 4 * MiB).ToArray()));
        c.Writer.WriteBlock(text.AsSpan(8 * MiB, 4 * MiB), WireCodec.Zstd, scratch);
        c.Send(Done.Instance);
        c.Send(new StatRequest("other.txt"));

        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains(expected, e.Text);
        Assert.Contains("bad.txt", e.Text);
        Assert.Equal(3UL, Assert.IsType<StatResponse>(c.Receive()).Size);
        Assert.False(File.Exists(_t["bad.txt"]));
        Assert.Equal(text.AsSpan(0, 4 * MiB).ToArray(), File.ReadAllBytes(Temporaries.PartialPath(_t["bad.txt"])));
        Trees.AssertNoStagingFiles(Root, partials: false);
    }

    [Fact]
    public void A_block_that_decodes_to_less_than_its_declared_size_is_refused() =>
        AssertRefused(block => CompressedFrame(2, (uint)block.Length, Zstd(block[..^1000])), "holds at most 4193304 bytes but the block declares 4194304");

    [Fact]
    public void A_block_that_decodes_to_more_than_its_declared_size_is_refused() =>
        AssertRefused(block => CompressedFrame(1, (uint)block.Length - 1, Lz4(block)), "lz4 block does not decode into its declared 4194303 bytes");

    [Fact]
    public void A_corrupt_zstd_payload_is_refused() =>
        AssertRefused(block =>
        {
            var z = Zstd(block);
            for (int i = 20; i < z.Length; i += 97) z[i] ^= 0x5A;
            return CompressedFrame(2, (uint)block.Length, z);
        }, "zstd block is corrupt");

    [Fact]
    public void An_unknown_algo_byte_is_refused() =>
        AssertRefused(block => CompressedFrame(7, (uint)block.Length, Zstd(block)), "unknown compression algo 7");

    private static byte[] Lz4(byte[] block)
    {
        var scratch = new byte[BlockCodec.MaxCompressedSize(block.Length)];
        Assert.True(BlockCodec.TryEncode(WireCodec.Lz4, block, scratch, out int n));
        return scratch[..n];
    }

    [Fact]
    public void An_original_size_above_the_block_limit_is_a_protocol_error_and_nothing_is_allocated_for_it()
    {
        using var c = Open(Caps.Zstd);
        c.Send(new PutRequest("huge.bin", 100 * MiB, 0));
        // Hand-built: algo 2, original size 2 GiB, a 3-byte payload.
        var frame = new byte[4 + 1 + 1 + 4 + 4 + 3];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(frame.Length - 4));
        frame[4] = (byte)MessageType.DataCompressed;
        frame[5] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(6), 1u << 31);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(10), 3);
        c.SendRaw(frame);
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("original size 2147483648 is above the 4194304-byte block limit", e.Text);
        Assert.Equal(1, c.WaitForExit());
        Assert.Equal(ServeEnd.ProtocolError, c.End);
        Assert.False(File.Exists(_t["huge.bin"]));
    }
}
