using System.Buffers.Binary;
using System.Text;

namespace Bcmr.Engine.Protocol;

/// <summary>
/// Reads the fields of one frame's payload. Every read is bounded by the bytes that remain, and every peer-controlled
/// length or count is checked against them before anything is allocated; a short or inconsistent payload throws
/// <see cref="ProtocolException"/> (kind Malformed).
/// </summary>
internal ref struct PayloadReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _data;
    private readonly MessageType _type;
    private int _pos;

    public PayloadReader(MessageType type, ReadOnlySpan<byte> payload)
    {
        _type = type;
        _data = payload;
        _pos = 0;
    }

    public readonly int Remaining => _data.Length - _pos;
    public readonly bool AtEnd => _pos >= _data.Length;

    public byte U8()
    {
        Need(1, "u8");
        return _data[_pos++];
    }

    /// <summary>A trailing byte that older peers may leave out (the caps byte of Hello/Welcome): 0 when absent.</summary>
    public byte OptionalTrailingU8() => AtEnd ? (byte)0 : U8();

    public bool Bool()
    {
        byte b = U8();
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw Malformed($"boolean field is {b}, not 0 or 1"),
        };
    }

    public ushort U16()
    {
        Need(2, "u16");
        ushort v = BinaryPrimitives.ReadUInt16LittleEndian(_data.Slice(_pos, 2));
        _pos += 2;
        return v;
    }

    public uint U32()
    {
        Need(4, "u32");
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data.Slice(_pos, 4));
        _pos += 4;
        return v;
    }

    public ulong U64()
    {
        Need(8, "u64");
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data.Slice(_pos, 8));
        _pos += 8;
        return v;
    }

    public long I64()
    {
        Need(8, "i64");
        long v = BinaryPrimitives.ReadInt64LittleEndian(_data.Slice(_pos, 8));
        _pos += 8;
        return v;
    }

    /// <summary>u32 length + bytes, returned as a view into the payload (no copy).</summary>
    public ReadOnlySpan<byte> BytesView()
    {
        uint len = U32();
        if (len > (uint)Remaining)
            throw Malformed($"byte field declares {len} bytes but only {Remaining} remain in the frame");
        var view = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return view;
    }

    public byte[] Bytes() => BytesView().ToArray();

    public byte[] Fixed(int n)
    {
        Need(n, $"{n}-byte");
        var v = _data.Slice(_pos, n).ToArray();
        _pos += n;
        return v;
    }

    public string Str()
    {
        var bytes = BytesView();
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException e) { throw Malformed("string field is not valid UTF-8", e); }
    }

    public ulong? OptU64() => OptionTag() ? U64() : null;

    public string? OptStr() => OptionTag() ? Str() : null;

    private bool OptionTag()
    {
        byte tag = U8();
        return tag switch
        {
            0 => false,
            1 => true,
            _ => throw Malformed($"option tag is {tag}, not 0 or 1"),
        };
    }

    /// <summary>Checks that <paramref name="count"/> items of at least <paramref name="minItemSize"/> bytes each can
    /// fit in what remains, before the caller allocates room for them.</summary>
    public readonly int CheckCount(uint count, int minItemSize, string what)
    {
        if ((ulong)count * (ulong)minItemSize > (ulong)Remaining)
            throw Malformed($"{what} count {count} needs at least {(ulong)count * (ulong)minItemSize} bytes but only {Remaining} remain in the frame");
        return (int)count;
    }

    private readonly void Need(int n, string what)
    {
        if (Remaining < n)
            throw Malformed($"frame ends before its {what} field ({Remaining} of {n} bytes)");
    }

    public readonly ProtocolException Malformed(string detail, Exception? inner = null) =>
        new(ProtocolErrorKind.Malformed, $"malformed {_type} message (type 0x{(byte)_type:x2}, length {_data.Length + 1}): {detail}",
            (byte)_type, _data.Length + 1, inner);
}

/// <summary>Writes little-endian fields into a span sized beforehand by the message's PayloadLength.</summary>
internal ref struct PayloadWriter
{
    private readonly Span<byte> _buf;
    private int _pos;

    public PayloadWriter(Span<byte> buffer)
    {
        _buf = buffer;
        _pos = 0;
    }

    public readonly int Written => _pos;

    public void U8(byte v) => _buf[_pos++] = v;

    public void Bool(bool v) => _buf[_pos++] = v ? (byte)1 : (byte)0;

    public void U16(ushort v)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.Slice(_pos, 2), v);
        _pos += 2;
    }

    public void U32(uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.Slice(_pos, 4), v);
        _pos += 4;
    }

    public void U64(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buf.Slice(_pos, 8), v);
        _pos += 8;
    }

    public void I64(long v)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_buf.Slice(_pos, 8), v);
        _pos += 8;
    }

    public void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buf[_pos..]);
        _pos += bytes.Length;
    }

    public void Bytes(ReadOnlySpan<byte> bytes)
    {
        U32((uint)bytes.Length);
        Raw(bytes);
    }

    public void Str(string s)
    {
        int n = Encoding.UTF8.GetBytes(s, _buf[(_pos + 4)..]);
        U32((uint)n);
        _pos += n;
    }

    public void OptU64(ulong? v)
    {
        Bool(v.HasValue);
        if (v.HasValue) U64(v.Value);
    }

    public void OptStr(string? s)
    {
        Bool(s is not null);
        if (s is not null) Str(s);
    }

    public static int StrSize(string s) => 4 + Encoding.UTF8.GetByteCount(s);
    public static int OptStrSize(string? s) => 1 + (s is null ? 0 : StrSize(s));
}
