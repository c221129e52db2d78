namespace Bcmr.Engine.Protocol;

/// <summary>Every message type code of protocol version 1. Client requests are 0x01..0x0f, server replies 0x81..0x8c
/// (bcmr 0.6's); 0x10.. and 0x8d.. are ours, sent only when both sides have <see cref="Caps.Extended"/>.</summary>
public enum MessageType : byte
{
    // client -> server
    Hello = 0x01,
    List = 0x02,
    Stat = 0x03,
    Hash = 0x04,
    Get = 0x05,
    Put = 0x06,
    Mkdir = 0x07,
    Resume = 0x08,
    Done = 0x09,
    HaveBlocks = 0x0a,
    OpenDirectChannel = 0x0b,
    AuthHello = 0x0c,
    PutChunked = 0x0d,
    GetChunked = 0x0e,
    Truncate = 0x0f,
    Commit = 0x10,
    ResumeProof = 0x11,
    Assemble = 0x12,
    BlockHashes = 0x13,
    SetMeta = 0x14,
    Remove = 0x15,
    Rename = 0x16,
    Link = 0x17,
    ListMeta = 0x18,
    StayResident = 0x19,

    // server -> client
    Welcome = 0x81,
    Ok = 0x82,
    Error = 0x83,
    Data = 0x84,
    StatResponse = 0x85,
    HashResponse = 0x86,
    ListResponse = 0x87,
    ResumeResponse = 0x88,
    DataCompressed = 0x89,
    MissingBlocks = 0x8a,
    DirectChannelReady = 0x8b,
    AuthChallenge = 0x8c,
    ResumeProofResponse = 0x8d,
    RangeHashes = 0x8e,
    BlockHashesResponse = 0x8f,
    ListMetaResponse = 0x90,
}

/// <summary>Capability bits of the Hello/Welcome caps byte. The effective set is the AND of both sides; new features
/// take new bits, never a version bump.</summary>
public static class Caps
{
    public const byte Lz4 = 0x01;
    public const byte Zstd = 0x02;
    public const byte Dedup = 0x04;
    /// <summary>The server skips its BLAKE3 on Get: Ok carries no hash.</summary>
    public const byte Fast = 0x08;
    /// <summary>Both sides fsync each written file (and its directory).</summary>
    public const byte Sync = 0x10;
    public const byte DirectTcp = 0x20;
    public const byte Aead = 0x40;
    /// <summary>Both peers are this implementation: the messages bcmr 0.6 lacks (0x10 and up, 0x8d and up) may be
    /// used: Commit after a Put's data (the server renames only once the client's hash agrees) and ResumeProof (the
    /// BLAKE3 of everything an upload could continue from), and striping one file over several connections
    /// (PutChunked/GetChunked answered with RangeHashes, BlockHashes, Assemble). A bcmr 0.6 peer never sets it and
    /// gets version 1 as is.</summary>
    public const byte Extended = 0x80;

    /// <summary>The second word of capabilities, past the full caps byte: a u32 our server appends to its Welcome when
    /// the client's Hello has <see cref="Extended"/> (so a bcmr 0.6 client never sees it); the client uses the bits it
    /// knows of those the server names (<see cref="Features"/>). Absent: no feature.</summary>
    public static string DescribeFeatures(uint features) =>
        features == 0 ? "none" : string.Join(",", new[] { (Features.Tree, "tree"), (Features.Meta, "meta"), (Features.Direct, "direct"), (Features.Resident, "resident"), (Features.AesHardware, "aes") }.Where(f => (features & f.Item1) != 0).Select(f => f.Item2));

    public static string Describe(byte caps)
    {
        if (caps == 0) return "none";
        var names = new List<string>();
        if ((caps & Lz4) != 0) names.Add("lz4");
        if ((caps & Zstd) != 0) names.Add("zstd");
        if ((caps & Dedup) != 0) names.Add("dedup");
        if ((caps & Fast) != 0) names.Add("fast");
        if ((caps & Sync) != 0) names.Add("sync");
        if ((caps & DirectTcp) != 0) names.Add("direct-tcp");
        if ((caps & Aead) != 0) names.Add("aead");
        if ((caps & Extended) != 0) names.Add("extended");
        return string.Join(",", names);
    }
}

/// <summary>Frame layout constants: <c>[u32 LE length of type+payload][u8 type][payload]</c>.</summary>
public static class Wire
{
    /// <summary>The protocol version this code speaks (Hello/Welcome).</summary>
    public const byte Version = 1;

    /// <summary>Bytes before the payload: the u32 length and the type byte.</summary>
    public const int HeaderSize = 5;

    /// <summary>The largest frame length (type byte + payload) we ever write: bcmr 0.6 refuses anything longer.</summary>
    public const int MaxPayload = 16 * 1024 * 1024;

    /// <summary>The largest frame length we accept from a peer: <see cref="MaxPayload"/> plus a little slack for field
    /// headers. A larger length field is refused before any buffer is allocated.</summary>
    public const int FrameLimit = MaxPayload + 64;

    /// <summary>The largest block a Data or DataCompressed frame may carry (decoded size): 4 MiB.</summary>
    public const int MaxBlock = Hashing.BlockLedger.BlockSize;

    /// <summary>Frame length of a Data frame carrying <paramref name="dataLength"/> bytes: type + u32 + data.</summary>
    public static int DataFrameLength(int dataLength) => 1 + 4 + dataLength;

    public static bool IsKnown(byte type) => type is >= 0x01 and <= 0x19 or >= 0x81 and <= 0x90;

    /// <summary>Requests flow client to server, replies server to client.</summary>
    public static bool IsClientMessage(MessageType type) => (byte)type < 0x80;
}

/// <summary>Bits of the Welcome's feature word (<see cref="Caps.DescribeFeatures"/>), each a set of messages.</summary>
public static class Features
{
    /// <summary>What a sync changes on a server's tree: SetMeta (a file's mtime and mode), Remove (a file, a link or a
    /// directory, never followed), Rename and Link (a backup of what a sync replaces or deletes).</summary>
    public const uint Tree = 0x1;

    /// <summary>ListMeta: a listing whose entries also carry the mtime's nanoseconds and the permission bits, so that
    /// a download (a sync's) keeps both.</summary>
    public const uint Meta = 0x2;

    /// <summary>OpenDirectChannel as this implementation does it (<c>--direct direct</c>): DirectChannelReady{address,
    /// secret}, then on the TCP connection AuthChallenge/AuthHello with keys derived by HKDF (<see cref="DirectKeys"/>)
    /// and AES-256-GCM records (<see cref="AeadRecords"/>). Not bcmr 0.6's direct mode (one key for MAC and cipher),
    /// which we neither offer (no DirectTcp/Aead caps) nor use.</summary>
    public const uint Direct = 0x4;

    /// <summary>StayResident{seconds} (<c>--ssh-persist</c>): the server makes sure a resident server of the same
    /// account and settings listens on a Unix socket in a private directory for that long after its last connection,
    /// and answers Ok{the socket's path}, which the client reaches through its ssh master (<c>ssh -O forward</c>)
    /// from then on, with no ssh session or server start per run. Offered only by a server that can start one (the
    /// bcmr program, not a PowerShell host).</summary>
    public const uint Resident = 0x8;

    /// <summary>Not a set of messages: the server's CPU encrypts AES-GCM in hardware (<see cref="Platform.AesHardware"/>).
    /// A client remembers it for the next connection to the same host, whose ssh it then asks for AES-GCM first
    /// (<see cref="Client.SshCiphers"/>); a server without it keeps ssh's ChaCha20 first.</summary>
    public const uint AesHardware = 0x10;

    /// <summary>Every feature this implementation has, server and client (<see cref="AesHardware"/> is offered only by a
    /// server whose CPU has it).</summary>
    public const uint Supported = Tree | Meta | Direct | Resident | AesHardware;
}
