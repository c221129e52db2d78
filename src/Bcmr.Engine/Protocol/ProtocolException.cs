namespace Bcmr.Engine.Protocol;

/// <summary>What was wrong with the bytes a peer sent.</summary>
public enum ProtocolErrorKind
{
    /// <summary>A frame's length field is above <see cref="Wire.FrameLimit"/> (refused before anything was allocated).</summary>
    FrameTooLarge,
    /// <summary>A frame's length field is zero: there is not even a type byte.</summary>
    EmptyFrame,
    /// <summary>A type byte that no message of protocol version 1 has.</summary>
    UnknownType,
    /// <summary>The stream ended inside a frame (the peer went away mid-message).</summary>
    Truncated,
    /// <summary>A complete frame whose payload does not match its message's layout (short field, bad UTF-8,
    /// a count larger than the bytes that follow, an option tag other than 0 or 1...).</summary>
    Malformed,
}

/// <summary>
/// The only exception the codec throws for bad input. Whatever bytes a peer sends, decoding either yields a message or
/// throws this; never an index, overflow or out-of-memory error. <see cref="TypeCode"/> and <see cref="Length"/> name
/// the frame when they were read.
/// </summary>
public sealed class ProtocolException : Exception
{
    public ProtocolErrorKind Kind { get; }

    /// <summary>The frame's type byte, when it was read.</summary>
    public byte? TypeCode { get; }

    /// <summary>The frame's length field (type byte + payload), when it was read.</summary>
    public long? Length { get; }

    public ProtocolException(ProtocolErrorKind kind, string message, byte? typeCode = null, long? length = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        TypeCode = typeCode;
        Length = length;
    }

    /// <summary>True when the peer simply went away (EOF inside a frame) rather than sending something wrong.</summary>
    public bool IsTruncation => Kind == ProtocolErrorKind.Truncated;
}
