using Bcmr.Engine.Protocol;
using CsCheck;

namespace Bcmr.Tests.Protocol;

/// <summary>Whatever bytes arrive, the decoder yields messages or throws <see cref="ProtocolException"/>: never an
/// index, overflow, out-of-memory or any other exception, and never a buffer larger than the frame limit.</summary>
public class DecoderPropertyTests
{
    // ---- generators of valid messages ------------------------------------------------------------------------

    private static readonly Gen<string> Str = Gen.String[Gen.Char, 0, 40];
    private static readonly Gen<byte[]> Bytes = Gen.Byte.Array[0, 300];
    private static readonly Gen<string?> OptStr = Gen.Frequency((1, Gen.Const<string?>((string?)null)), (3, Str.Select(s => (string?)s)));
    private static readonly Gen<byte[]> Bytes32 = Gen.Byte.Array[32];

    private static readonly Gen<Message> AnyMessage = Gen.OneOf<Message>(
        Gen.Select(Gen.Byte, Gen.Byte, (v, c) => (Message)new Hello(v, c)),
        Str.Select(s => (Message)new ListRequest(s)),
        Str.Select(s => (Message)new StatRequest(s)),
        Gen.Select(Str, Gen.ULong, Gen.ULong.Nullable(), (p, o, l) => (Message)new HashRequest(p, o, l)),
        Gen.Select(Str, Gen.ULong, (p, o) => (Message)new GetRequest(p, o)),
        Gen.Select(Str, Gen.ULong, Gen.ULong, (p, s, o) => (Message)new PutRequest(p, s, o)),
        Str.Select(s => (Message)new MkdirRequest(s)),
        Str.Select(s => (Message)new ResumeRequest(s)),
        Gen.Const<Message>(Done.Instance),
        Gen.Select(Gen.UInt, Gen.Byte.Array[0, 4 * 32], (b, h) => (Message)new HaveBlocks(b, h[..(h.Length / 32 * 32)])),
        Gen.Const<Message>(OpenDirectChannel.Instance),
        Bytes32.Select(m => (Message)new AuthHello(m)),
        Gen.Select(Str, Gen.ULong, Gen.ULong, (p, o, l) => (Message)new PutChunkedRequest(p, o, l)),
        Gen.Select(Str, Gen.ULong, Gen.ULong, (p, o, l) => (Message)new GetChunkedRequest(p, o, l)),
        Gen.Select(Str, Gen.ULong, (p, s) => (Message)new TruncateRequest(p, s)),
        Gen.Select(Gen.Byte, Gen.Byte, (v, c) => (Message)new Welcome(v, c)),
        OptStr.Select(h => (Message)new OkResponse(h)),
        Str.Select(s => (Message)new ErrorResponse(s)),
        Bytes.Select(b => (Message)new Data(b)),
        Gen.Select(Gen.ULong, Gen.Long, Gen.Bool, (s, m, d) => (Message)new StatResponse(s, m, d)),
        Str.Select(s => (Message)new HashResponse(s)),
        Gen.Select(Str, Gen.ULong, Gen.Long, Gen.Bool, (p, s, m, d) => new ListEntry(p, s, m, d)).Array[0, 6]
            .Select(e => (Message)new ListResponse(e)),
        Gen.Select(Gen.ULong, OptStr, (s, h) => (Message)new ResumeResponse(s, h)),
        Gen.Select(Gen.Byte, Gen.UInt[0, Wire.MaxBlock], Bytes, (a, o, b) => (Message)new DataCompressed(a, o, b)),
        Bytes.Select(b => (Message)new MissingBlocks(b)),
        Gen.Select(Str, Bytes32, (a, k) => (Message)new DirectChannelReady(a, k)),
        Bytes32.Select(n => (Message)new AuthChallenge(n)));

    /// <summary>Strings made of UTF-16 code units may hold lone surrogates, which UTF-8 cannot carry; those encode as
    /// U+FFFD, so round trips are compared on well-formed strings only.</summary>
    private static bool WellFormed(Message m) => m switch
    {
        ListRequest r => Ok(r.Path), StatRequest r => Ok(r.Path), HashRequest r => Ok(r.Path), GetRequest r => Ok(r.Path),
        PutRequest r => Ok(r.Path), MkdirRequest r => Ok(r.Path), ResumeRequest r => Ok(r.Path),
        PutChunkedRequest r => Ok(r.Path), GetChunkedRequest r => Ok(r.Path), TruncateRequest r => Ok(r.Path),
        OkResponse r => r.Hash is null || Ok(r.Hash), ErrorResponse r => Ok(r.Text), HashResponse r => Ok(r.Hash),
        ListResponse r => r.Entries.All(e => Ok(e.Path)), ResumeResponse r => r.BlockHash is null || Ok(r.BlockHash),
        DirectChannelReady r => Ok(r.Address),
        _ => true,
    };

    private static bool Ok(string s) => System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(s)) == s;

    [Fact]
    public void Valid_messages_round_trip()
    {
        AnyMessage.Where(WellFormed).Sample(m =>
        {
            var frame = MessageCodec.Encode(m);
            Assert.Equal(m, MessageCodec.Decode(frame));
            using var reader = new FrameReader(new MemoryStream(frame));
            Assert.Equal(m, reader.ReadMessage());
        }, iter: 5000);
    }

    // ---- arbitrary and mutated input ---------------------------------------------------------------------------

    /// <summary>Decodes everything in <paramref name="bytes"/> both ways; only ProtocolException may escape.</summary>
    private static void DecodeOnlyFailsWithProtocolException(byte[] bytes)
    {
        try { MessageCodec.Decode(bytes); }
        catch (ProtocolException) { }

        using var reader = new FrameReader(new MemoryStream(bytes));
        try
        {
            for (int i = 0; i < 1000 && reader.TryReadFrame(out var frame); i++)
            {
                frame.Decode();
                if (frame.Type == MessageType.Data) _ = frame.DataBytes.Length;
            }
        }
        catch (ProtocolException) { }
        Assert.True(reader.BufferCapacity <= Math.Max(bytes.Length, 64 * 1024) * 2,
            $"reader holds {reader.BufferCapacity} bytes for {bytes.Length} bytes of input");
    }

    [Fact]
    public void Random_bytes_decode_or_throw_ProtocolException()
    {
        Gen.Byte.Array[0, 200].Sample(DecodeOnlyFailsWithProtocolException, iter: 20000);
    }

    [Fact]
    public void Random_bytes_after_a_plausible_header_decode_or_throw_ProtocolException()
    {
        // A valid type byte and a length close to the real size, so decoding gets past the frame checks into the payload.
        Gen.Select(Gen.OneOf(Gen.Byte[0x01, 0x0f], Gen.Byte[0x81, 0x8c]), Gen.Byte.Array[0, 120], Gen.Int[-3, 3])
            .Sample((type, payload, slack) =>
            {
                var frame = new byte[5 + payload.Length];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)Math.Max(0, payload.Length + 1 + slack));
                frame[4] = type;
                payload.CopyTo(frame, 5);
                DecodeOnlyFailsWithProtocolException(frame);
            }, iter: 20000);
    }

    private enum Mutation { Truncate, FlipByte, SetLength, HugeLength, Insert, Concatenate }

    [Fact]
    public void Mutated_valid_frames_decode_or_throw_ProtocolException()
    {
        Gen.Select(AnyMessage, AnyMessage, Gen.Enum<Mutation>(), Gen.Int[0, int.MaxValue], Gen.UInt, Gen.Byte)
            .Sample((m, other, mutation, position, value, b) =>
            {
                var frame = MessageCodec.Encode(m);
                byte[] mutated;
                switch (mutation)
                {
                    case Mutation.Truncate:
                        mutated = frame[..(position % frame.Length)];
                        break;
                    case Mutation.FlipByte:
                        mutated = (byte[])frame.Clone();
                        mutated[position % frame.Length] ^= (byte)(b | 1);
                        break;
                    case Mutation.SetLength:
                        mutated = (byte[])frame.Clone();
                        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(mutated, value % (uint)(frame.Length * 2 + 2));
                        break;
                    case Mutation.HugeLength:
                        mutated = (byte[])frame.Clone();
                        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(mutated, value | 0x01000000u);
                        break;
                    case Mutation.Insert:
                        int at = position % (frame.Length + 1);
                        mutated = [.. frame[..at], b, .. frame[at..]];
                        break;
                    default:
                        var next = MessageCodec.Encode(other);
                        mutated = [.. frame, .. next[..(position % (next.Length + 1))]];
                        break;
                }
                DecodeOnlyFailsWithProtocolException(mutated);
            }, iter: 20000);
    }

    [Fact]
    public void Truncated_streams_say_truncated()
    {
        AnyMessage.Sample(m =>
        {
            var frame = MessageCodec.Encode(m);
            for (int cut = 1; cut < frame.Length; cut++)
            {
                using var reader = new FrameReader(new MemoryStream(frame, 0, cut));
                var e = Assert.Throws<ProtocolException>(() => reader.TryReadFrame(out _));
                Assert.Equal(ProtocolErrorKind.Truncated, e.Kind);
            }
        }, iter: 300);
    }
}
