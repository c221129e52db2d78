using Bcmr.Engine;
using Bcmr.Engine.Protocol;

namespace Bcmr.Tests.Protocol;

/// <summary>Every message of protocol v1 against its exact bytes, written out by hand from the layout in
/// reference/bcmr-0.6-facts.md: encode gives these bytes, and these bytes decode to an equal message.</summary>
public class GoldenBytesTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", ""));

    private static string Repeat(string hexByte, int n) => string.Concat(Enumerable.Repeat(hexByte, n));

    private static byte[] Filled(byte b, int n) => Enumerable.Repeat(b, n).ToArray();

    public static TheoryData<string, Message, string> Golden() => new()
    {
        // ---- client -> server
        { "Hello", new Hello(1, 0x18), "03000000 01 01 18" },
        { "List", new ListRequest("a/b"), "08000000 02 03000000 612f62" },
        { "Stat", new StatRequest("x"), "06000000 03 01000000 78" },
        { "Hash no limit", new HashRequest("f", 16, null), "0f000000 04 01000000 66 1000000000000000 00" },
        { "Hash limit", new HashRequest("f", 0, 4096), "17000000 04 01000000 66 0000000000000000 01 0010000000000000" },
        { "Get", new GetRequest("f", 0x0102030405060708), "0e000000 05 01000000 66 0807060504030201" },
        { "Put", new PutRequest("d/f", 10, 4), "18000000 06 03000000 642f66 0a00000000000000 0400000000000000" },
        { "Mkdir", new MkdirRequest("d"), "06000000 07 01000000 64" },
        { "Resume", new ResumeRequest("f"), "06000000 08 01000000 66" },
        { "Done", Done.Instance, "01000000 09" },
        { "HaveBlocks", new HaveBlocks(4 * 1024 * 1024, [.. Filled(0x11, 32), .. Filled(0x22, 32)]),
            "49000000 0a 00004000 02000000 " + Repeat("11", 32) + Repeat("22", 32) },
        { "HaveBlocks empty", new HaveBlocks(4096, []), "09000000 0a 00100000 00000000" },
        { "OpenDirectChannel", OpenDirectChannel.Instance, "01000000 0b" },
        { "AuthHello", new AuthHello(Filled(0xab, 32)), "21000000 0c " + Repeat("ab", 32) },
        { "PutChunked", new PutChunkedRequest("f", 8, 16), "16000000 0d 01000000 66 0800000000000000 1000000000000000" },
        { "GetChunked", new GetChunkedRequest("f", 8, 16), "16000000 0e 01000000 66 0800000000000000 1000000000000000" },
        { "Truncate", new TruncateRequest("f", 100), "0e000000 0f 01000000 66 6400000000000000" },
        { "UTF-8 path", new StatRequest("é"), "07000000 03 02000000 c3a9" },
        { "Commit", new CommitRequest("ab"), "07000000 10 02000000 6162" },
        { "Commit abandon", CommitRequest.Abandon, "05000000 10 00000000" },
        { "ResumeProof", new ResumeProofRequest("f", 10), "0e000000 11 01000000 66 0a00000000000000" },
        { "Assemble", new AssembleRequest("f", 100), "0e000000 12 01000000 66 6400000000000000" },
        { "BlockHashes", new BlockHashesRequest("f", BlockHashesRequest.Upload), "07000000 13 01000000 66 01" },
        { "SetMeta", new SetMetaRequest("f", 1_600_000_000, 5, 0x1A4), "16000000 14 01000000 66 00105e5f00000000 05000000 a4010000" },
        { "Remove", new RemoveRequest("d", true), "07000000 15 01000000 64 01" },
        { "Rename", new RenameRequest("a", "b"), "0b000000 16 01000000 61 01000000 62" },
        { "Link", new LinkRequest("a", "b"), "0b000000 17 01000000 61 01000000 62" },
        { "ListMeta", new ListMetaRequest("d"), "06000000 18 01000000 64" },
        { "StayResident", new StayResidentRequest(60), "05000000 19 3c000000" },

        // ---- server -> client
        { "Welcome", new Welcome(1, 0x18), "03000000 81 01 18" },
        { "Welcome with features", new Welcome(1, 0x80, Features.Tree), "07000000 81 01 80 01000000" },
        { "Ok none", OkResponse.Empty, "02000000 82 00" },
        { "Ok hash", new OkResponse("ab12"), "0a000000 82 01 04000000 61623132" },
        { "Error", new ErrorResponse("no"), "07000000 83 02000000 6e6f" },
        { "Error with code", new ErrorResponse("no", BcmrErrorCode.OutsideRoot), "09000000 83 02000000 6e6f 1200" },
        { "Data", new Data([1, 2, 3]), "08000000 84 03000000 010203" },
        { "Data empty", new Data([]), "05000000 84 00000000" },
        { "StatResponse", new StatResponse(1234, -1, true), "12000000 85 d204000000000000 ffffffffffffffff 01" },
        { "HashResponse", new HashResponse("af"), "07000000 86 02000000 6166" },
        { "ListResponse", new ListResponse([new ListEntry("a", 5, 100, false), new ListEntry("d", 0, -2, true)]),
            "31000000 87 02000000 " +
            "01000000 61 0500000000000000 6400000000000000 00 " +
            "01000000 64 0000000000000000 feffffffffffffff 01" },
        { "ListResponse empty", new ListResponse([]), "05000000 87 00000000" },
        { "ResumeResponse hash", new ResumeResponse(4 * 1024 * 1024, "cd"), "10000000 88 0000400000000000 01 02000000 6364" },
        { "ResumeResponse none", new ResumeResponse(0, null), "0a000000 88 0000000000000000 00" },
        { "DataCompressed", new DataCompressed(2, 1000, [9, 8]), "0c000000 89 02 e8030000 02000000 0908" },
        { "MissingBlocks", new MissingBlocks([0b101]), "06000000 8a 01000000 05" },
        { "DirectChannelReady", new DirectChannelReady("1.2.3.4:5", Filled(0xcd, 32)),
            "2e000000 8b 09000000 312e322e332e343a35 " + Repeat("cd", 32) },
        { "AuthChallenge", new AuthChallenge(Filled(0xef, 32)), "21000000 8c " + Repeat("ef", 32) },
        { "ResumeProofResponse", new ResumeProofResponse(1, 5, -1, "cd"), "19000000 8d 01 0500000000000000 ffffffffffffffff 01 02000000 6364" },
        { "ResumeProofResponse nothing", new ResumeProofResponse(0, 0, 0, null), "13000000 8d 00 0000000000000000 0000000000000000 00" },
        { "RangeHashes", new RangeHashes(4 * 1024 * 1024, Filled(0xab, 32)), "2d000000 8e 0000400000000000 20000000 " + Repeat("ab", 32) },
        { "RangeHashes none", new RangeHashes(0, []), "0d000000 8e 0000000000000000 00000000" },
        { "ListMetaResponse", new ListMetaResponse([new MetaEntry("a", 5, 1_600_000_000, 7, 0x1A4, false)]),
            "23000000 90 01000000 01000000 61 0500000000000000 00105e5f00000000 07000000 a4010000 00" },
        { "BlockHashesResponse", new BlockHashesResponse(1, 7, Filled(0x01, 32)), "2e000000 8f 01 0700000000000000 20000000 " + Repeat("01", 32) },
    };

    [Theory]
    [MemberData(nameof(Golden), DisableDiscoveryEnumeration = true)]
    public void Encodes_to_the_exact_bytes_and_decodes_back(string name, Message message, string hex)
    {
        var expected = Hex(hex);

        Assert.True(expected.AsSpan().SequenceEqual(MessageCodec.Encode(message)),
            $"{name}: encoded {Convert.ToHexString(MessageCodec.Encode(message))}, expected {Convert.ToHexString(expected)}");
        Assert.Equal(message, MessageCodec.Decode(expected));

        // The same bytes through the stream reader, and the stream writer gives the same bytes.
        using var reader = new FrameReader(new MemoryStream(expected));
        Assert.Equal(message, reader.ReadMessage());
        Assert.Null(reader.ReadMessage());
        var sink = new MemoryStream();
        using (var writer = new FrameWriter(sink)) writer.Write(message);
        Assert.Equal(expected, sink.ToArray());
    }

    [Fact]
    public void Every_message_type_has_a_golden_case()
    {
        var covered = Golden().Select(row => ((Message)row[1]).Type).ToHashSet();
        foreach (var type in Enum.GetValues<MessageType>()) Assert.Contains(type, covered);
    }

    [Fact]
    public void Hello_and_Welcome_without_the_caps_byte_read_caps_as_zero()
    {
        Assert.Equal(new Hello(1, 0), MessageCodec.Decode(Hex("02000000 01 01")));
        Assert.Equal(new Welcome(1, 0), MessageCodec.Decode(Hex("02000000 81 01")));
        // We always write the caps byte.
        Assert.Equal(Hex("03000000 01 01 00"), MessageCodec.Encode(new Hello(1, 0)));
    }

    [Fact]
    public void Data_frames_written_from_a_span_match_the_message_encoding()
    {
        var block = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        var sink = new MemoryStream();
        using (var writer = new FrameWriter(sink)) writer.WriteData(block);
        Assert.Equal(MessageCodec.Encode(new Data(block)), sink.ToArray());

        using var reader = new FrameReader(new MemoryStream(sink.ToArray()));
        Assert.True(reader.TryReadFrame(out var frame));
        Assert.Equal(MessageType.Data, frame.Type);
        Assert.Equal(block, frame.DataBytes.ToArray());
    }

    [Fact]
    public void Trailing_bytes_after_the_last_field_are_ignored_except_in_Data()
    {
        Assert.Equal(new StatRequest("x"), MessageCodec.Decode(Hex("07000000 03 01000000 78 ff")));
        var e = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(Hex("09000000 84 03000000 010203 ff")));
        Assert.Equal(ProtocolErrorKind.Malformed, e.Kind);
    }

    [Theory]
    [InlineData("02000000 82 02", "option tag")]
    [InlineData("12000000 85 d204000000000000 ffffffffffffffff 02", "boolean")]
    [InlineData("07000000 03 02000000 c328", "UTF-8")]
    [InlineData("06000000 03 05000000 78", "only 1 remain")]
    [InlineData("09000000 87 ffffffff 00000000", "count 4294967295")]
    [InlineData("09000000 0a 00100000 ffffff7f", "count 2147483647")]
    [InlineData("0a000000 89 02 01004000 00000000", "block limit")]
    [InlineData("01000000 0c", "32-byte field")]
    public void Malformed_payloads_are_refused_with_a_message_naming_the_problem(string hex, string fragment)
    {
        var e = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(Hex(hex)));
        Assert.Equal(ProtocolErrorKind.Malformed, e.Kind);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void Unknown_type_zero_length_and_oversized_frames_name_what_was_wrong()
    {
        var unknown = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(Hex("02000000 42 00")));
        Assert.Equal(ProtocolErrorKind.UnknownType, unknown.Kind);
        Assert.Equal((byte)0x42, unknown.TypeCode);
        Assert.Equal(2, unknown.Length);
        Assert.Contains("0x42", unknown.Message);
        Assert.Contains("length 2", unknown.Message);

        var empty = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(Hex("00000000")));
        Assert.Equal(ProtocolErrorKind.EmptyFrame, empty.Kind);

        var huge = Assert.Throws<ProtocolException>(() => MessageCodec.Decode(Hex("41000001 84")));
        Assert.Equal(ProtocolErrorKind.FrameTooLarge, huge.Kind);
        Assert.Contains((Wire.FrameLimit).ToString(), huge.Message);
    }

    [Fact]
    public void A_message_too_large_for_one_frame_is_refused_when_encoding()
    {
        var entries = Enumerable.Range(0, 800_000).Select(i => new ListEntry("file-" + i, 1, 1, false)).ToArray();
        var e = Assert.Throws<ProtocolException>(() => MessageCodec.Encode(new ListResponse(entries)));
        Assert.Equal(ProtocolErrorKind.FrameTooLarge, e.Kind);
    }
}
