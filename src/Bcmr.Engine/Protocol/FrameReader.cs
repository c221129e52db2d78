using System.Buffers;
using System.Buffers.Binary;
using Bcmr.Engine.Codecs;

namespace Bcmr.Engine.Protocol;

/// <summary>
/// One frame as read: its type and payload (the bytes after the type byte). The payload lives in the reader's pooled
/// buffer and is valid only until the next read from the same <see cref="FrameReader"/>.
/// </summary>
public readonly struct Frame
{
    public Frame(MessageType type, ReadOnlyMemory<byte> payload)
    {
        Type = type;
        Payload = payload;
    }

    public MessageType Type { get; }
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The frame's length field: type byte + payload.</summary>
    public int Length => 1 + Payload.Length;

    /// <summary>For a Data frame: the block it carries, validated, without copying (valid until the next read).</summary>
    public ReadOnlySpan<byte> DataBytes =>
        Type == MessageType.Data ? MessageCodec.DataBytes(Payload.Span)
        : throw new InvalidOperationException($"{Type} frame is not a Data frame");

    /// <summary>True for Data and DataCompressed: frames that carry one block of file content.</summary>
    public bool IsBlock => Type is MessageType.Data or MessageType.DataCompressed;

    /// <summary>
    /// For a Data or DataCompressed frame: the block it carries. Data: a view of the frame (no copy). DataCompressed:
    /// decoded into <paramref name="buffer"/> (at least <see cref="Wire.MaxBlock"/> bytes, or the declared size),
    /// which must decode to exactly its declared original size (see <see cref="BlockCodec.Decode"/>). The result is
    /// valid until the next read or the next use of the buffer. A malformed frame throws <see cref="ProtocolException"/>;
    /// an unknown algo, a lying size or a corrupt payload throws <see cref="BcmrException"/> with
    /// <see cref="BcmrErrorCode.CorruptData"/>.
    /// </summary>
    public ReadOnlySpan<byte> DecodeBlock(Span<byte> buffer)
    {
        if (Type == MessageType.Data) return MessageCodec.DataBytes(Payload.Span);
        if (Type != MessageType.DataCompressed) throw new InvalidOperationException($"{Type} frame carries no block");
        var compressed = MessageCodec.DataCompressedView(Payload.Span, out byte algo, out uint original);
        return BlockCodec.Decode(algo, original, compressed, buffer);
    }

    /// <summary>For a Data or DataCompressed frame: the block's length as the frame declares it (DataCompressed: the
    /// original size), without decoding; for skipping a refused upload's data.</summary>
    public int DeclaredBlockLength
    {
        get
        {
            if (Type == MessageType.Data) return MessageCodec.DataBytes(Payload.Span).Length;
            if (Type != MessageType.DataCompressed) throw new InvalidOperationException($"{Type} frame carries no block");
            MessageCodec.DataCompressedView(Payload.Span, out _, out uint original);
            return (int)original;
        }
    }

    /// <summary>Decodes the payload into a message (allocates; for Data frames on the hot path use <see cref="DataBytes"/>).</summary>
    public Message Decode() => MessageCodec.DecodePayload(Type, Payload.Span);
}

/// <summary>
/// Reads frames <c>[u32 LE length][u8 type][payload]</c> from a stream. The length is checked (not zero, at most
/// <see cref="Wire.FrameLimit"/>) and the type must be known before any payload buffer is touched; the buffer is rented
/// from <see cref="ArrayPool{T}"/>, grows with the bytes that actually arrive (never ahead of them by more than
/// 64 KiB or a doubling) up to the largest frame seen, and is reused, so reading Data frames allocates
/// nothing per frame. Every error is a <see cref="ProtocolException"/>; end of stream inside a frame is kind
/// <see cref="ProtocolErrorKind.Truncated"/>, end of stream between frames is a normal end (no frame).
/// Not thread-safe. The reader does not buffer the stream itself: give it a buffered one for small frames.
/// </summary>
public sealed class FrameReader : IDisposable
{
    private const int MinBuffer = 64 * 1024;

    private readonly Stream _input;
    private readonly byte[] _header = new byte[Wire.HeaderSize];
    private byte[] _buffer = Array.Empty<byte>();

    public FrameReader(Stream input) => _input = input ?? throw new ArgumentNullException(nameof(input));

    /// <summary>Bytes of the payload buffer now held (for tests of memory bounds).</summary>
    public int BufferCapacity => _buffer.Length;

    /// <summary>Reads the next frame; false at a clean end of stream (no byte of a new frame).</summary>
    public bool TryReadFrame(out Frame frame)
    {
        int got = ReadFull(_header.AsSpan(0, 4));
        if (got == 0)
        {
            frame = default;
            return false;
        }
        if (got < 4) throw TruncatedHeader(got);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_header);
        MessageCodec.CheckLength(length);
        if (ReadFull(_header.AsSpan(4, 1)) == 0)
            throw new ProtocolException(ProtocolErrorKind.Truncated, $"stream ended before the type byte of a frame of length {length}", null, length);
        byte type = _header[4];
        MessageCodec.CheckType(type, length);
        int payloadLength = (int)length - 1;
        int read = 0;
        while (true)
        {
            // The buffer grows with the bytes that actually arrive, not with the length the peer declared.
            int room = Grow(payloadLength, read);
            int n = ReadFull(_buffer.AsSpan(read, room - read));
            read += n;
            if (read == payloadLength) break;
            if (read < room) throw TruncatedPayload(type, length, read);
        }
        frame = new Frame((MessageType)type, new ReadOnlyMemory<byte>(_buffer, 0, payloadLength));
        return true;
    }

    /// <summary>Reads and decodes the next message; null at a clean end of stream.</summary>
    public Message? ReadMessage() => TryReadFrame(out var frame) ? frame.Decode() : null;

    /// <summary>Asynchronous <see cref="TryReadFrame"/>: null at a clean end of stream.</summary>
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken ct = default)
    {
        int got = await ReadFullAsync(_header.AsMemory(0, 4), ct).ConfigureAwait(false);
        if (got == 0) return null;
        if (got < 4) throw TruncatedHeader(got);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_header);
        MessageCodec.CheckLength(length);
        if (await ReadFullAsync(_header.AsMemory(4, 1), ct).ConfigureAwait(false) == 0)
            throw new ProtocolException(ProtocolErrorKind.Truncated, $"stream ended before the type byte of a frame of length {length}", null, length);
        byte type = _header[4];
        MessageCodec.CheckType(type, length);
        int payloadLength = (int)length - 1;
        int read = 0;
        while (true)
        {
            int room = Grow(payloadLength, read);
            int n = await ReadFullAsync(_buffer.AsMemory(read, room - read), ct).ConfigureAwait(false);
            read += n;
            if (read == payloadLength) break;
            if (read < room) throw TruncatedPayload(type, length, read);
        }
        return new Frame((MessageType)type, new ReadOnlyMemory<byte>(_buffer, 0, payloadLength));
    }

    /// <summary>Asynchronous <see cref="ReadMessage"/>.</summary>
    public async ValueTask<Message?> ReadMessageAsync(CancellationToken ct = default) =>
        await ReadFrameAsync(ct).ConfigureAwait(false) is { } frame ? frame.Decode() : null;

    /// <summary>Makes room for more of a payload of <paramref name="needed"/> bytes of which <paramref name="have"/>
    /// are in the buffer; returns how far the buffer may be filled now. Growth at most doubles what has arrived, so a
    /// peer that declares 16 MiB and sends 10 bytes costs 64 KiB, not 16 MiB.</summary>
    private int Grow(int needed, int have)
    {
        if (_buffer.Length >= needed) return needed;
        if (have < _buffer.Length) return _buffer.Length;
        int size = (int)Math.Min(needed, Math.Max((long)MinBuffer, 2L * _buffer.Length));
        var bigger = BlockBuffers.Pool.Rent(size);
        _buffer.AsSpan(0, have).CopyTo(bigger);
        if (_buffer.Length > 0) BlockBuffers.Pool.Return(_buffer);
        _buffer = bigger;
        return Math.Min(needed, _buffer.Length);
    }

    private int ReadFull(Span<byte> target)
    {
        int total = 0;
        while (total < target.Length)
        {
            int n = _input.Read(target[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private async ValueTask<int> ReadFullAsync(Memory<byte> target, CancellationToken ct)
    {
        int total = 0;
        while (total < target.Length)
        {
            int n = await _input.ReadAsync(target[total..], ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static ProtocolException TruncatedHeader(int got) =>
        new(ProtocolErrorKind.Truncated, $"stream ended inside a frame's length field ({got} of 4 bytes)");

    private static ProtocolException TruncatedPayload(byte type, uint length, int read) =>
        new(ProtocolErrorKind.Truncated,
            $"stream ended inside a {(MessageType)type} frame (type 0x{type:x2}, length {length}): {read} of {length - 1} payload bytes arrived",
            type, length);

    public void Dispose()
    {
        if (_buffer.Length > 0) BlockBuffers.Pool.Return(_buffer);
        _buffer = Array.Empty<byte>();
    }
}
