using System.Buffers.Binary;
using System.Diagnostics;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Codecs;

/// <summary>
/// Byte formats checked against the reference command-line tools, both ways.
/// <para>zstd: our DataCompressed payload is a standard zstd frame, so <c>zstd -d</c> decodes it as is, and what
/// <c>zstd -3</c> writes decodes with our decoder.</para>
/// <para>LZ4: our payload is the raw LZ4 <i>block</i> format (no frame, no size prefix), which the <c>lz4</c> tool does
/// not read or write on its own; but an LZ4 frame is a header followed by blocks in exactly that format. So we wrap our
/// block in a minimal LZ4 frame (header with its xxHash32 checksum, one block, end mark) for <c>lz4 -d</c>, and we cut
/// the block out of the frame <c>lz4 -B7</c> writes and decode it with ours.</para>
/// </summary>
public sealed class CodecGoldenTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    public static TheoryData<int> Sizes => new() { 1000, 300_000, 4 * 1024 * 1024 };

    private static byte[] Encode(WireCodec codec, byte[] block)
    {
        var scratch = new byte[BlockCodec.MaxCompressedSize(block.Length)];
        Assert.True(BlockCodec.TryEncode(codec, block, scratch, out int n), "text should compress");
        return scratch[..n];
    }

    private static byte[] RunTool(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var output = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(output);
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{exe} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
        return output.ToArray();
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Our_zstd_block_decodes_with_the_zstd_tool(int size)
    {
        var text = BlockCodecTests.SourceText(size, 11);
        var frame = _t.WriteFile("block.zst", Encode(WireCodec.Zstd, text));
        Assert.Equal(text, RunTool("zstd", "-d", "-q", "-c", frame));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void What_zstd_minus_3_writes_decodes_with_ours(int size)
    {
        var text = BlockCodecTests.SourceText(size, 12);
        var file = _t.WriteFile("text.txt", text);
        var frame = RunTool("zstd", "-3", "-q", "-c", file);
        var decoded = BlockCodec.Decode((byte)WireCodec.Zstd, (uint)size, frame, new byte[Wire.MaxBlock]);
        Assert.Equal(text, decoded.ToArray());
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Our_lz4_block_decodes_with_the_lz4_tool(int size)
    {
        var text = BlockCodecTests.SourceText(size, 13);
        var block = Encode(WireCodec.Lz4, text);
        var frame = _t.WriteFile("block.lz4", Lz4Frame(block));
        Assert.Equal(text, RunTool("lz4", "-d", "-q", "-c", frame));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void The_block_inside_what_lz4_writes_decodes_with_ours(int size)
    {
        var text = BlockCodecTests.SourceText(size, 14);
        var file = _t.WriteFile("text.txt", text);
        // -B7: 4 MiB blocks, so the whole text is one block; --no-frame-crc: no content checksum to skip.
        var frame = RunTool("lz4", "-B7", "--no-frame-crc", "-q", "-c", file);
        var block = FirstLz4Block(frame, out bool compressed);
        Assert.True(compressed, "lz4 stored the text uncompressed");
        var decoded = BlockCodec.Decode((byte)WireCodec.Lz4, (uint)size, block, new byte[Wire.MaxBlock]);
        Assert.Equal(text, decoded.ToArray());
    }

    [Fact]
    public void A_known_lz4_block_vector_decodes()
    {
        // Hand-made per the LZ4 block format: token 0x4F = 4 literals "abcd", match length 15 + 4 (+ extra byte 5 → 24)
        // at offset 4, then a last sequence of 5 literals "efghi" (token 0x50). Decodes to "abcd" + 24×"abcd"-cycle + "efghi".
        byte[] block = [0x4F, (byte)'a', (byte)'b', (byte)'c', (byte)'d', 0x04, 0x00, 0x05, 0x50, (byte)'e', (byte)'f', (byte)'g', (byte)'h', (byte)'i'];
        var expected = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("abcd", 7)) + "efghi");
        Assert.Equal(4 + 24 + 5, expected.Length);
        var decoded = BlockCodec.Decode(1, (uint)expected.Length, block, new byte[64]);
        Assert.Equal(expected, decoded.ToArray());
    }

    /// <summary>A minimal LZ4 frame around one compressed block: magic, FLG (version 01, independent blocks), BD (4 MiB
    /// blocks), header checksum, the block with its size, end mark.</summary>
    private static byte[] Lz4Frame(byte[] block)
    {
        var f = new MemoryStream();
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(u32, 0x184D2204);
        f.Write(u32);
        byte[] descriptor = [0x60, 0x70];
        f.Write(descriptor);
        f.WriteByte((byte)(XxHash32(descriptor) >> 8));
        BinaryPrimitives.WriteUInt32LittleEndian(u32, (uint)block.Length);
        f.Write(u32);
        f.Write(block);
        BinaryPrimitives.WriteUInt32LittleEndian(u32, 0);
        f.Write(u32);
        return f.ToArray();
    }

    private static byte[] FirstLz4Block(byte[] frame, out bool compressed)
    {
        Assert.Equal(0x184D2204u, BinaryPrimitives.ReadUInt32LittleEndian(frame));
        byte flg = frame[4];
        int pos = 6 + ((flg & 0x08) != 0 ? 8 : 0) + ((flg & 0x01) != 0 ? 4 : 0) + 1; // content size, dict id, HC
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(pos));
        compressed = (size & 0x80000000) == 0;
        int length = (int)(size & 0x7FFFFFFF);
        return frame.AsSpan(pos + 4, length).ToArray();
    }

    /// <summary>xxHash32 with seed 0 for inputs under 16 bytes (the LZ4 frame header checksum).</summary>
    private static uint XxHash32(ReadOnlySpan<byte> input)
    {
        const uint P1 = 2654435761U, P2 = 2246822519U, P3 = 3266489917U, P4 = 668265263U, P5 = 374761393U;
        Assert.True(input.Length < 16);
        uint h = P5 + (uint)input.Length;
        int i = 0;
        for (; i + 4 <= input.Length; i += 4)
        {
            h += BinaryPrimitives.ReadUInt32LittleEndian(input[i..]) * P3;
            h = uint.RotateLeft(h, 17) * P4;
        }
        for (; i < input.Length; i++)
        {
            h += input[i] * P5;
            h = uint.RotateLeft(h, 11) * P1;
        }
        h ^= h >> 15;
        h *= P2;
        h ^= h >> 13;
        h *= P3;
        h ^= h >> 16;
        return h;
    }
}
