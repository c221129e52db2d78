using System.Buffers.Binary;

namespace Bcmr.Engine.Protocol;

/// <summary>
/// Encoding and decoding of single messages, explicit field by field (no reflection).
/// <para>Decoding rules: every field is bounds-checked against the frame; counts and lengths are checked against the
/// bytes that remain before anything is allocated; option tags and booleans must be 0 or 1; strings must be valid
/// UTF-8. Bytes left over after the last field are ignored (room for trailing fields added by newer peers, as the
/// caps byte once was), except in Data frames, whose inner length must match the frame exactly.</para>
/// </summary>
public static class MessageCodec
{
    /// <summary>The whole frame (length, type, payload) for <paramref name="message"/>.</summary>
    public static byte[] Encode(Message message)
    {
        var frame = new byte[FrameSize(message)];
        EncodeTo(message, frame);
        return frame;
    }

    /// <summary>Bytes the whole frame takes: 4-byte length + type + payload. Throws <see cref="ProtocolException"/>
    /// when the message is too large for one frame (<see cref="Wire.MaxPayload"/>).</summary>
    public static int FrameSize(Message message)
    {
        long length = 1L + message.PayloadSize;
        if (length > Wire.MaxPayload)
            throw new ProtocolException(ProtocolErrorKind.FrameTooLarge,
                $"{message.Type} message of {length} bytes is above the frame limit of {Wire.MaxPayload} bytes",
                (byte)message.Type, length);
        return 4 + (int)length;
    }

    /// <summary>Writes the whole frame into <paramref name="destination"/> (at least <see cref="FrameSize"/> bytes);
    /// returns the bytes written.</summary>
    public static int EncodeTo(Message message, Span<byte> destination)
    {
        int size = FrameSize(message);
        var frame = destination[..size];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(size - 4));
        frame[4] = (byte)message.Type;
        var w = new PayloadWriter(frame[Wire.HeaderSize..]);
        message.WritePayload(ref w);
        if (w.Written != size - Wire.HeaderSize)
            throw new InvalidOperationException($"{message.Type}: wrote {w.Written} payload bytes, sized {size - Wire.HeaderSize}");
        return size;
    }

    /// <summary>Decodes exactly one whole frame (length, type, payload) held in <paramref name="frame"/>.</summary>
    public static Message Decode(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 4)
            throw new ProtocolException(ProtocolErrorKind.Truncated, $"frame ends inside its length field ({frame.Length} of 4 bytes)");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        CheckLength(length);
        if (frame.Length < Wire.HeaderSize)
            throw new ProtocolException(ProtocolErrorKind.Truncated, $"frame of length {length} ends before its type byte", null, length);
        byte type = frame[4];
        CheckType(type, length);
        if ((ulong)frame.Length - 4 < length)
            throw new ProtocolException(ProtocolErrorKind.Truncated,
                $"{(MessageType)type} frame declares {length} bytes but only {frame.Length - 4} are present", type, length);
        if ((ulong)frame.Length - 4 > length)
            throw new ProtocolException(ProtocolErrorKind.Malformed,
                $"{frame.Length - 4 - length} bytes follow the {(MessageType)type} frame", type, length);
        return DecodePayload((MessageType)type, frame.Slice(Wire.HeaderSize, (int)length - 1));
    }

    /// <summary>Throws unless <paramref name="length"/> is a valid frame length (1..<see cref="Wire.FrameLimit"/>).</summary>
    internal static void CheckLength(uint length)
    {
        if (length == 0)
            throw new ProtocolException(ProtocolErrorKind.EmptyFrame, "empty frame (length 0: no type byte)", null, 0);
        if (length > Wire.FrameLimit)
            throw new ProtocolException(ProtocolErrorKind.FrameTooLarge,
                $"frame length {length} is above the limit of {Wire.FrameLimit} bytes", null, length);
    }

    internal static void CheckType(byte type, uint length)
    {
        if (!Wire.IsKnown(type))
            throw new ProtocolException(ProtocolErrorKind.UnknownType,
                $"unknown message type 0x{type:x2} (frame length {length})", type, length);
    }

    /// <summary>The content of a Data frame's payload (the bytes after the type byte), validated: the inner length
    /// must account for the whole payload and be at most <see cref="Wire.MaxBlock"/>. No copy.</summary>
    public static ReadOnlySpan<byte> DataBytes(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(MessageType.Data, payload);
        var bytes = r.BytesView();
        if (!r.AtEnd)
            throw r.Malformed($"inner length {bytes.Length} does not match the frame ({r.Remaining} extra bytes)");
        if (bytes.Length > Wire.MaxBlock)
            throw r.Malformed($"block of {bytes.Length} bytes is above the {Wire.MaxBlock}-byte block limit");
        return bytes;
    }

    /// <summary>The fields of a DataCompressed frame's payload without copying: algo, declared original size (checked:
    /// at most <see cref="Wire.MaxBlock"/>) and the compressed bytes, whose inner length must account for the whole
    /// payload. The algo byte is not checked here (decoding refuses an unknown one).</summary>
    public static ReadOnlySpan<byte> DataCompressedView(ReadOnlySpan<byte> payload, out byte algo, out uint originalSize)
    {
        var r = new PayloadReader(MessageType.DataCompressed, payload);
        algo = r.U8();
        originalSize = r.U32();
        if (originalSize > Wire.MaxBlock)
            throw r.Malformed($"original size {originalSize} is above the {Wire.MaxBlock}-byte block limit");
        var bytes = r.BytesView();
        if (!r.AtEnd)
            throw r.Malformed($"inner length {bytes.Length} does not match the frame ({r.Remaining} extra bytes)");
        return bytes;
    }

    /// <summary>Decodes a payload (the bytes after the type byte) of a frame of the given type.</summary>
    public static Message DecodePayload(MessageType type, ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(type, payload);
        switch (type)
        {
            case MessageType.Hello: return new Hello(r.U8(), r.OptionalTrailingU8());
            case MessageType.List: return new ListRequest(r.Str());
            case MessageType.Stat: return new StatRequest(r.Str());
            case MessageType.Hash:
            {
                var path = r.Str();
                var offset = r.U64();
                return new HashRequest(path, offset, r.OptU64());
            }
            case MessageType.Get:
            {
                var path = r.Str();
                return new GetRequest(path, r.U64());
            }
            case MessageType.Put:
            {
                var path = r.Str();
                var size = r.U64();
                return new PutRequest(path, size, r.U64());
            }
            case MessageType.Mkdir: return new MkdirRequest(r.Str());
            case MessageType.Resume: return new ResumeRequest(r.Str());
            case MessageType.Done: return Done.Instance;
            case MessageType.HaveBlocks:
            {
                uint blockSize = r.U32();
                int n = r.CheckCount(r.U32(), HaveBlocks.HashSize, "HaveBlocks hash");
                return new HaveBlocks(blockSize, r.Fixed(n * HaveBlocks.HashSize));
            }
            case MessageType.OpenDirectChannel: return OpenDirectChannel.Instance;
            case MessageType.AuthHello: return new AuthHello(r.Fixed(32));
            case MessageType.PutChunked:
            {
                var path = r.Str();
                var offset = r.U64();
                return new PutChunkedRequest(path, offset, r.U64());
            }
            case MessageType.GetChunked:
            {
                var path = r.Str();
                var offset = r.U64();
                return new GetChunkedRequest(path, offset, r.U64());
            }
            case MessageType.Truncate:
            {
                var path = r.Str();
                return new TruncateRequest(path, r.U64());
            }

            case MessageType.Commit: return new CommitRequest(r.Str());
            case MessageType.ResumeProof:
            {
                var path = r.Str();
                return new ResumeProofRequest(path, r.U64());
            }
            case MessageType.Assemble:
            {
                var path = r.Str();
                return new AssembleRequest(path, r.U64());
            }
            case MessageType.BlockHashes:
            {
                var path = r.Str();
                var of = r.U8();
                if (of > BlockHashesRequest.Upload) throw r.Malformed($"of {of} is not 0 or 1");
                return new BlockHashesRequest(path, of);
            }
            case MessageType.SetMeta:
            {
                var path = r.Str();
                var sec = r.I64();
                var nsec = r.U32();
                if (nsec >= 1_000_000_000) throw r.Malformed($"{nsec} nanoseconds is not below one second");
                var mode = r.U32();
                if (mode != SetMetaRequest.KeepMode && mode > 0xFFF) throw r.Malformed($"mode {mode:x} has bits beyond 07777");
                return new SetMetaRequest(path, sec, nsec, mode);
            }
            case MessageType.Remove:
            {
                var path = r.Str();
                return new RemoveRequest(path, r.Bool());
            }
            case MessageType.Rename:
            {
                var from = r.Str();
                return new RenameRequest(from, r.Str());
            }
            case MessageType.ListMeta: return new ListMetaRequest(r.Str());
            case MessageType.StayResident: return new StayResidentRequest(r.U32());
            case MessageType.ListMetaResponse:
            {
                int n = r.CheckCount(r.U32(), MetaEntry.MinSize, "ListMetaResponse entry");
                var entries = new MetaEntry[n];
                for (int i = 0; i < n; i++)
                {
                    var path = r.Str();
                    var size = r.U64();
                    var mtime = r.I64();
                    var nsec = r.U32();
                    if (nsec >= 1_000_000_000) throw r.Malformed($"{nsec} nanoseconds is not below one second");
                    var mode = r.U32();
                    if (mode > 0xFFF) throw r.Malformed($"mode {mode:x} has bits beyond 07777");
                    entries[i] = new MetaEntry(path, size, mtime, nsec, mode, r.Bool());
                }
                return new ListMetaResponse(entries);
            }
            case MessageType.Link:
            {
                var from = r.Str();
                return new LinkRequest(from, r.Str());
            }
            case MessageType.RangeHashes:
            {
                var offset = r.U64();
                var values = r.Bytes();
                if (values.Length % 32 != 0) throw r.Malformed($"{values.Length} bytes of chaining values is not a multiple of 32");
                return new RangeHashes(offset, values);
            }
            case MessageType.BlockHashesResponse:
            {
                var held = r.U8();
                if (held > ResumeProofResponse.Final) throw r.Malformed($"held kind {held} is not 0, 1 or 2");
                var size = r.U64();
                var values = r.Bytes();
                if (values.Length % 32 != 0) throw r.Malformed($"{values.Length} bytes of chaining values is not a multiple of 32");
                return new BlockHashesResponse(held, size, values);
            }
            case MessageType.ResumeProofResponse:
            {
                var held = r.U8();
                if (held > ResumeProofResponse.Final) throw r.Malformed($"held kind {held} is not 0, 1 or 2");
                var size = r.U64();
                var mtime = r.I64();
                return new ResumeProofResponse(held, size, mtime, r.OptStr());
            }
            case MessageType.Welcome:
            {
                var version = r.U8();
                var caps = r.OptionalTrailingU8();
                return new Welcome(version, caps, r.AtEnd ? 0u : r.U32());
            }
            case MessageType.Ok: return new OkResponse(r.OptStr());
            case MessageType.Error:
            {
                var text = r.Str();
                return new ErrorResponse(text, r.AtEnd ? null : WireErrors.Decode(r.U16()));
            }
            case MessageType.Data: return new Data(DataBytes(payload).ToArray());
            case MessageType.StatResponse:
            {
                var size = r.U64();
                var mtime = r.I64();
                return new StatResponse(size, mtime, r.Bool());
            }
            case MessageType.HashResponse: return new HashResponse(r.Str());
            case MessageType.ListResponse:
            {
                int n = r.CheckCount(r.U32(), ListEntry.MinSize, "ListResponse entry");
                var entries = new ListEntry[n];
                for (int i = 0; i < n; i++)
                {
                    var path = r.Str();
                    var size = r.U64();
                    var mtime = r.I64();
                    entries[i] = new ListEntry(path, size, mtime, r.Bool());
                }
                return new ListResponse(entries);
            }
            case MessageType.ResumeResponse:
            {
                var size = r.U64();
                return new ResumeResponse(size, r.OptStr());
            }
            case MessageType.DataCompressed:
            {
                byte algo = r.U8();
                uint original = r.U32();
                if (original > Wire.MaxBlock)
                    throw r.Malformed($"original size {original} is above the {Wire.MaxBlock}-byte block limit");
                return new DataCompressed(algo, original, r.Bytes());
            }
            case MessageType.MissingBlocks: return new MissingBlocks(r.Bytes());
            case MessageType.DirectChannelReady:
            {
                var address = r.Str();
                return new DirectChannelReady(address, r.Fixed(32));
            }
            case MessageType.AuthChallenge: return new AuthChallenge(r.Fixed(32));
            default:
                throw new ProtocolException(ProtocolErrorKind.UnknownType,
                    $"unknown message type 0x{(byte)type:x2} (frame length {payload.Length + 1})", (byte)type, payload.Length + 1);
        }
    }
}
