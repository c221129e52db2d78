using System.Buffers.Binary;

namespace Bcmr.Engine.Protocol;

/// <summary>
/// The first bytes of a direct connection, before any record: the server sends AuthChallenge{32 random bytes}, the
/// client answers AuthHello{<see cref="DirectKeys.ClientProof"/>}. Both are plain frames of exactly 37 bytes
/// (bcmr 0.6's message numbers and layouts); anything else is refused at once. The server proves that it holds the
/// secret too, with its first record (the Welcome): a record sealed with another key does not open.
/// </summary>
public static class DirectHandshake
{
    /// <summary>Bytes of an AuthChallenge or AuthHello frame: u32 length 33, the type, 32 bytes.</summary>
    public const int FrameSize = Wire.HeaderSize + DirectKeys.Size;

    /// <summary>The server's side on a freshly accepted connection: sends the challenge and reads one AuthHello. The
    /// keys when the proof holds; null for anything else (wrong proof, another frame, too few bytes before the end).
    /// Reads exactly <see cref="FrameSize"/> bytes at most, so a peer can make it hold no more than that. Synchronous
    /// on purpose: a .NET socket once used asynchronously runs every later blocking call through its event loop
    /// (measured: 30 000 sched_yield calls per GiB), and the session on this connection reads and writes blocking.
    /// The caller bounds the wait (a receive timeout, or closing the connection).</summary>
    public static DirectKeys? Server(Stream connection, byte[] secret)
    {
        var challenge = DirectKeys.NewSecret();
        connection.Write(MessageCodec.Encode(new AuthChallenge(challenge)));
        connection.Flush();
        var frame = new byte[FrameSize];
        int got = 0;
        while (got < frame.Length)
        {
            int n = connection.Read(frame, got, frame.Length - got);
            if (n == 0) return null;
            got += n;
        }
        if (!IsFrame(frame, MessageType.AuthHello)) return null;
        var keys = DirectKeys.Derive(secret, challenge);
        if (keys.IsClientProof(challenge, frame.AsSpan(Wire.HeaderSize))) return keys;
        keys.Dispose();
        return null;
    }

    /// <summary>The client's side: reads the challenge and sends its proof. Throws <see cref="IOException"/> naming
    /// what came instead of a challenge.</summary>
    public static DirectKeys Client(Stream connection, byte[] secret)
    {
        var frame = new byte[FrameSize];
        int got = 0;
        while (got < frame.Length)
        {
            int n = connection.Read(frame, got, frame.Length - got);
            if (n == 0) throw new IOException($"the server closed the direct connection before its challenge ({got} of {FrameSize} bytes)");
            got += n;
        }
        if (!IsFrame(frame, MessageType.AuthChallenge))
            throw new IOException("the direct connection did not start with an AuthChallenge (is something else listening on that port?)");
        var challenge = frame.AsSpan(Wire.HeaderSize).ToArray();
        var keys = DirectKeys.Derive(secret, challenge);
        connection.Write(MessageCodec.Encode(new AuthHello(keys.ClientProof(challenge))));
        connection.Flush();
        return keys;
    }

    private static bool IsFrame(ReadOnlySpan<byte> frame, MessageType type) =>
        BinaryPrimitives.ReadUInt32LittleEndian(frame) == 1 + DirectKeys.Size && frame[4] == (byte)type;
}
