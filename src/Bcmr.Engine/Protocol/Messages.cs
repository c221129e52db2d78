namespace Bcmr.Engine.Protocol;

// Every message of protocol version 1 (reference/bcmr-0.6-facts.md, "Serve protocol, version 1"), one record each.
// Field layouts, all little-endian: str = u32 length + UTF-8; bytes = u32 length + bytes; opt = u8 0/1 then the value.
// Byte-array fields compare by content, so a decoded message equals the one that was encoded.

/// <summary>One protocol message. Build one with its record constructor, write it with <see cref="FrameWriter"/> or
/// <see cref="MessageCodec.Encode"/>, read it with <see cref="FrameReader"/> or <see cref="MessageCodec.Decode"/>.</summary>
public abstract record Message
{
    public abstract MessageType Type { get; }

    /// <summary>Payload bytes after the type byte.</summary>
    internal abstract int PayloadSize { get; }

    internal abstract void WritePayload(ref PayloadWriter w);

    private protected static bool SameBytes(byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b);

    /// <summary>The payload size of a u32 count and entries of <paramref name="entryBytes"/> in all, capped at
    /// int.MaxValue (so that an oversized listing is refused by the frame limit, not wrapped).</summary>
    private protected static int CountedSize(long entryBytes) => (int)Math.Min(4 + entryBytes, int.MaxValue);

    private protected static int HashBytes(byte[] a)
    {
        var h = new HashCode();
        h.AddBytes(a);
        return h.ToHashCode();
    }

    private protected static void Require(bool condition, string message)
    {
        if (!condition) throw new ArgumentException(message);
    }
}

// ---- client -> server --------------------------------------------------------------------------------------------

/// <summary>0x01 Hello{u8 version, u8 caps}. The caps byte may be missing on the wire (older peers): it reads as 0.</summary>
public sealed record Hello(byte Version, byte Caps) : Message
{
    public override MessageType Type => MessageType.Hello;
    internal override int PayloadSize => 2;
    internal override void WritePayload(ref PayloadWriter w) { w.U8(Version); w.U8(Caps); }
}

/// <summary>0x02 List{str path}: a recursive listing of a directory.</summary>
public sealed record ListRequest(string Path) : Message
{
    public override MessageType Type => MessageType.List;
    internal override int PayloadSize => PayloadWriter.StrSize(Path);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Path);
}

/// <summary>0x03 Stat{str path}.</summary>
public sealed record StatRequest(string Path) : Message
{
    public override MessageType Type => MessageType.Stat;
    internal override int PayloadSize => PayloadWriter.StrSize(Path);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Path);
}

/// <summary>0x04 Hash{str path, u64 offset, opt u64 limit}: BLAKE3 of <c>limit</c> bytes from <c>offset</c> (to the end when None).</summary>
public sealed record HashRequest(string Path, ulong Offset, ulong? Limit) : Message
{
    public override MessageType Type => MessageType.Hash;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 8 + 1 + (Limit.HasValue ? 8 : 0);
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Offset); w.OptU64(Limit); }
}

/// <summary>0x05 Get{str path, u64 offset}.</summary>
public sealed record GetRequest(string Path, ulong Offset) : Message
{
    public override MessageType Type => MessageType.Get;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 8;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Offset); }
}

/// <summary>0x06 Put{str path, u64 size, u64 offset}: followed by Data frames carrying bytes [offset, size).</summary>
public sealed record PutRequest(string Path, ulong Size, ulong Offset) : Message
{
    public override MessageType Type => MessageType.Put;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 16;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Size); w.U64(Offset); }
}

/// <summary>0x07 Mkdir{str path}: mkdir -p.</summary>
public sealed record MkdirRequest(string Path) : Message
{
    public override MessageType Type => MessageType.Mkdir;
    internal override int PayloadSize => PayloadWriter.StrSize(Path);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Path);
}

/// <summary>0x08 Resume{str path}.</summary>
public sealed record ResumeRequest(string Path) : Message
{
    public override MessageType Type => MessageType.Resume;
    internal override int PayloadSize => PayloadWriter.StrSize(Path);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Path);
}

/// <summary>0x09 Done{}: ends the session (and, right after a Put's data, ends that Put: bcmr 0.6 sends one there).</summary>
public sealed record Done : Message
{
    public static readonly Done Instance = new();
    public override MessageType Type => MessageType.Done;
    internal override int PayloadSize => 0;
    internal override void WritePayload(ref PayloadWriter w) { }
}

/// <summary>0x0a HaveBlocks{u32 block_size, u32 n, n×32 bytes}: the BLAKE3 of each block of the file being put.
/// <see cref="Hashes"/> holds the n hashes back to back (n×32 bytes).</summary>
public sealed record HaveBlocks(uint BlockSize, byte[] Hashes) : Message
{
    public const int HashSize = 32;
    public int Count => Hashes.Length / HashSize;
    public ReadOnlySpan<byte> Hash(int index) => Hashes.AsSpan(index * HashSize, HashSize);

    public override MessageType Type => MessageType.HaveBlocks;
    internal override int PayloadSize => 8 + Hashes.Length;
    internal override void WritePayload(ref PayloadWriter w)
    {
        Require(Hashes.Length % HashSize == 0, "HaveBlocks hashes must be a whole number of 32-byte hashes");
        w.U32(BlockSize);
        w.U32((uint)Count);
        w.Raw(Hashes);
    }

    public bool Equals(HaveBlocks? other) => other is not null && BlockSize == other.BlockSize && SameBytes(Hashes, other.Hashes);
    public override int GetHashCode() => HashCode.Combine(BlockSize, HashBytes(Hashes));
}

/// <summary>0x0b OpenDirectChannel{}.</summary>
public sealed record OpenDirectChannel : Message
{
    public static readonly OpenDirectChannel Instance = new();
    public override MessageType Type => MessageType.OpenDirectChannel;
    internal override int PayloadSize => 0;
    internal override void WritePayload(ref PayloadWriter w) { }
}

/// <summary>0x0c AuthHello{32-byte mac} (no length prefix).</summary>
public sealed record AuthHello(byte[] Mac) : Message
{
    public override MessageType Type => MessageType.AuthHello;
    internal override int PayloadSize => 32;
    internal override void WritePayload(ref PayloadWriter w)
    {
        Require(Mac.Length == 32, "AuthHello mac must be 32 bytes");
        w.Raw(Mac);
    }

    public bool Equals(AuthHello? other) => other is not null && SameBytes(Mac, other.Mac);
    public override int GetHashCode() => HashBytes(Mac);
}

/// <summary>0x0d PutChunked{str path, u64 offset, u64 length}.</summary>
public sealed record PutChunkedRequest(string Path, ulong Offset, ulong Length) : Message
{
    public override MessageType Type => MessageType.PutChunked;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 16;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Offset); w.U64(Length); }
}

/// <summary>0x0e GetChunked{str path, u64 offset, u64 length}.</summary>
public sealed record GetChunkedRequest(string Path, ulong Offset, ulong Length) : Message
{
    public override MessageType Type => MessageType.GetChunked;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 16;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Offset); w.U64(Length); }
}

/// <summary>0x10 Commit{str hash} (<see cref="Caps.Extended"/>): follows a Put's last Data frame instead of Done and
/// carries the BLAKE3 (hex) of the source bytes the client sent; the server renames the upload into place only when
/// its own hash of the file agrees, so a failed upload never replaces the previous version. An empty hash abandons
/// the upload (the client's source changed while it was sent).</summary>
public sealed record CommitRequest(string Hash) : Message
{
    public static readonly CommitRequest Abandon = new("");
    public override MessageType Type => MessageType.Commit;
    internal override int PayloadSize => PayloadWriter.StrSize(Hash);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Hash);
}

/// <summary>0x11 ResumeProof{str path, u64 source size} (<see cref="Caps.Extended"/>): what an upload of the path could
/// continue from, with the proof: see <see cref="ResumeProofResponse"/>.</summary>
public sealed record ResumeProofRequest(string Path, ulong SourceSize) : Message
{
    public override MessageType Type => MessageType.ResumeProof;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 8;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(SourceSize); }
}

/// <summary>0x12 Assemble{str path, u64 size} (<see cref="Caps.Extended"/>): the striped upload of the path is
/// complete: its partial file, written by PutChunked on this and other connections and proven block by block by the
/// client (RangeHashes), is cut to size and renamed over the path. Ok, or Error (nothing renamed).</summary>
public sealed record AssembleRequest(string Path, ulong Size) : Message
{
    public override MessageType Type => MessageType.Assemble;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 8;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Size); }
}

/// <summary>0x13 BlockHashes{str path, u8 of} (<see cref="Caps.Extended"/>): the chaining value of every 4 MiB block
/// of a file (<see cref="BlockHashesResponse"/>), what a striped transfer resumes from. Of: <see cref="File"/> the
/// file itself (a download's source); <see cref="Upload"/> what an upload of the path would continue, its partial
/// file, else the file, else nothing.</summary>
public sealed record BlockHashesRequest(string Path, byte Of) : Message
{
    public const byte File = 0, Upload = 1;
    public override MessageType Type => MessageType.BlockHashes;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 1;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U8(Of); }
}

/// <summary>0x14 SetMeta{str path, i64 mtime seconds, u32 mtime nanoseconds, u32 mode} (<see cref="Features.Tree"/>):
/// give an existing file or directory this modification time and, unless mode is <see cref="KeepMode"/>, these
/// permission bits (07777). Never follows a final symbolic link. Ok or Error.</summary>
public sealed record SetMetaRequest(string Path, long MtimeSec, uint MtimeNsec, uint Mode) : Message
{
    public const uint KeepMode = uint.MaxValue;
    public override MessageType Type => MessageType.SetMeta;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 16;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.I64(MtimeSec); w.U32(MtimeNsec); w.U32(Mode); }
}

/// <summary>0x15 Remove{str path, bool recursive} (<see cref="Features.Tree"/>): delete one entry: a file or a
/// symbolic link (the link, never what it points to), or a directory (empty, or with everything under it when
/// recursive, links inside removed as links). No component of the path may be a link or "..", and the root itself is
/// never removed. Ok (also when nothing was there) or Error.</summary>
public sealed record RemoveRequest(string Path, bool Recursive) : Message
{
    public override MessageType Type => MessageType.Remove;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 1;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.Bool(Recursive); }
}

/// <summary>0x16 Rename{str from, str to} (<see cref="Features.Tree"/>): move an entry (a link as a link) to a new
/// name, replacing a file there, creating the new name's missing directories; the paths obey Remove's rules.</summary>
public sealed record RenameRequest(string From, string To) : Message
{
    public override MessageType Type => MessageType.Rename;
    internal override int PayloadSize => PayloadWriter.StrSize(From) + PayloadWriter.StrSize(To);
    internal override void WritePayload(ref PayloadWriter w) { w.Str(From); w.Str(To); }
}

/// <summary>0x17 Link{str from, str to} (<see cref="Features.Tree"/>): a second name (hard link) for a file, replacing
/// a file there, creating missing directories: how a sync keeps the version it is about to replace.</summary>
public sealed record LinkRequest(string From, string To) : Message
{
    public override MessageType Type => MessageType.Link;
    internal override int PayloadSize => PayloadWriter.StrSize(From) + PayloadWriter.StrSize(To);
    internal override void WritePayload(ref PayloadWriter w) { w.Str(From); w.Str(To); }
}

/// <summary>0x18 ListMeta{str path} (<see cref="Features.Meta"/>): List with each entry's mtime nanoseconds and mode
/// (<see cref="ListMetaResponse"/>); the same entries, order and rules as List.</summary>
public sealed record ListMetaRequest(string Path) : Message
{
    public override MessageType Type => MessageType.ListMeta;
    internal override int PayloadSize => PayloadWriter.StrSize(Path);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Path);
}

/// <summary>0x19 StayResident{u32 seconds} (<see cref="Features.Resident"/>): Ok{str path of the resident server's Unix
/// socket on the server's machine} or Error.</summary>
public sealed record StayResidentRequest(uint Seconds) : Message
{
    public override MessageType Type => MessageType.StayResident;
    internal override int PayloadSize => 4;
    internal override void WritePayload(ref PayloadWriter w) => w.U32(Seconds);
}

/// <summary>0x0f Truncate{str path, u64 size}.</summary>
public sealed record TruncateRequest(string Path, ulong Size) : Message
{
    public override MessageType Type => MessageType.Truncate;
    internal override int PayloadSize => PayloadWriter.StrSize(Path) + 8;
    internal override void WritePayload(ref PayloadWriter w) { w.Str(Path); w.U64(Size); }
}

// ---- server -> client --------------------------------------------------------------------------------------------

/// <summary>0x81 Welcome{u8 version, u8 caps[, u32 features]}; caps = server ∩ client. The caps byte may be missing
/// (reads as 0). Features (<see cref="Protocol.Features"/>) follow only for a client whose Hello had
/// <see cref="Protocol.Caps.Extended"/>, and only when not 0, so a bcmr 0.6 client reads the two bytes it knows.</summary>
public sealed record Welcome(byte Version, byte Caps, uint Features = 0) : Message
{
    public override MessageType Type => MessageType.Welcome;
    internal override int PayloadSize => Features == 0 ? 2 : 6;
    internal override void WritePayload(ref PayloadWriter w)
    {
        w.U8(Version);
        w.U8(Caps);
        if (Features != 0) w.U32(Features);
    }
}

/// <summary>0x82 Ok{opt str hex hash}.</summary>
public sealed record OkResponse(string? Hash) : Message
{
    public static readonly OkResponse Empty = new((string?)null);
    public override MessageType Type => MessageType.Ok;
    internal override int PayloadSize => PayloadWriter.OptStrSize(Hash);
    internal override void WritePayload(ref PayloadWriter w) => w.OptStr(Hash);
}

/// <summary>0x83 Error{str message}.</summary>
/// <remarks>Between our own peers (<see cref="Caps.Extended"/>) a u16 error code follows the text (a trailing field,
/// which readers of version 1 skip): the client classifies the failure by it instead of by the wording.</remarks>
public sealed record ErrorResponse(string Text, BcmrErrorCode? Code = null) : Message
{
    public override MessageType Type => MessageType.Error;
    internal override int PayloadSize => PayloadWriter.StrSize(Text) + (Code is null ? 0 : 2);
    internal override void WritePayload(ref PayloadWriter w)
    {
        w.Str(Text);
        if (Code is { } code) w.U16((ushort)code);
    }
}

/// <summary>0x84 Data{bytes}: one block of file content (at most <see cref="Wire.MaxBlock"/>). On the hot path use
/// <see cref="FrameWriter.WriteData"/> and <see cref="Frame.DataBytes"/> instead, which copy nothing.</summary>
public sealed record Data(byte[] Bytes) : Message
{
    public override MessageType Type => MessageType.Data;
    internal override int PayloadSize => 4 + Bytes.Length;
    internal override void WritePayload(ref PayloadWriter w) => w.Bytes(Bytes);

    public bool Equals(Data? other) => other is not null && SameBytes(Bytes, other.Bytes);
    public override int GetHashCode() => HashBytes(Bytes);
}

/// <summary>0x85 StatResponse{u64 size, i64 mtime (seconds), u8 is_dir}.</summary>
public sealed record StatResponse(ulong Size, long Mtime, bool IsDir) : Message
{
    public override MessageType Type => MessageType.StatResponse;
    internal override int PayloadSize => 17;
    internal override void WritePayload(ref PayloadWriter w) { w.U64(Size); w.I64(Mtime); w.Bool(IsDir); }
}

/// <summary>0x86 HashResponse{str hex}.</summary>
public sealed record HashResponse(string Hash) : Message
{
    public override MessageType Type => MessageType.HashResponse;
    internal override int PayloadSize => PayloadWriter.StrSize(Hash);
    internal override void WritePayload(ref PayloadWriter w) => w.Str(Hash);
}

/// <summary>One entry of a ListResponse: path relative to the listed directory with '/' separators.</summary>
public readonly record struct ListEntry(string Path, ulong Size, long Mtime, bool IsDir)
{
    /// <summary>Smallest encoding of an entry (empty path): u32 + u64 + i64 + u8.</summary>
    internal const int MinSize = 4 + 8 + 8 + 1;
    internal int EncodedSize => PayloadWriter.StrSize(Path) + 17;
}

/// <summary>0x87 ListResponse{u32 n × (str relative path, u64 size, i64 mtime, u8 is_dir)}.</summary>
public sealed record ListResponse(IReadOnlyList<ListEntry> Entries) : Message
{
    public override MessageType Type => MessageType.ListResponse;

    internal override int PayloadSize => CountedSize(Entries.Sum(e => (long)e.EncodedSize));

    internal override void WritePayload(ref PayloadWriter w)
    {
        w.U32((uint)Entries.Count);
        foreach (var e in Entries)
        {
            w.Str(e.Path);
            w.U64(e.Size);
            w.I64(e.Mtime);
            w.Bool(e.IsDir);
        }
    }

    public bool Equals(ListResponse? other) => other is not null && Entries.SequenceEqual(other.Entries);
    public override int GetHashCode() => Entries.Count;
}

/// <summary>One entry of a ListMetaResponse: a <see cref="ListEntry"/> with the mtime's nanoseconds and the permission
/// bits (07777) of what the entry is (a link inside the root: of what it points to).</summary>
public readonly record struct MetaEntry(string Path, ulong Size, long Mtime, uint MtimeNsec, uint Mode, bool IsDir)
{
    /// <summary>Smallest encoding of an entry (empty path): u32 + u64 + i64 + u32 + u32 + u8.</summary>
    internal const int MinSize = 4 + 8 + 8 + 4 + 4 + 1;
    internal int EncodedSize => PayloadWriter.StrSize(Path) + 25;
}

/// <summary>0x90 ListMetaResponse{u32 n × (str relative path, u64 size, i64 mtime, u32 mtime nsec, u32 mode, u8 is_dir)}
/// (<see cref="Features.Meta"/>).</summary>
public sealed record ListMetaResponse(IReadOnlyList<MetaEntry> Entries) : Message
{
    public override MessageType Type => MessageType.ListMetaResponse;

    internal override int PayloadSize => CountedSize(Entries.Sum(e => (long)e.EncodedSize));

    internal override void WritePayload(ref PayloadWriter w)
    {
        w.U32((uint)Entries.Count);
        foreach (var e in Entries)
        {
            w.Str(e.Path);
            w.U64(e.Size);
            w.I64(e.Mtime);
            w.U32(e.MtimeNsec);
            w.U32(e.Mode);
            w.Bool(e.IsDir);
        }
    }

    public bool Equals(ListMetaResponse? other) => other is not null && Entries.SequenceEqual(other.Entries);
    public override int GetHashCode() => Entries.Count;
}

/// <summary>0x88 ResumeResponse{u64 size, opt str hash of the last full 4 MiB block}.</summary>
public sealed record ResumeResponse(ulong Size, string? BlockHash) : Message
{
    public override MessageType Type => MessageType.ResumeResponse;
    internal override int PayloadSize => 8 + PayloadWriter.OptStrSize(BlockHash);
    internal override void WritePayload(ref PayloadWriter w) { w.U64(Size); w.OptStr(BlockHash); }
}

/// <summary>0x8d ResumeProofResponse{u8 held, u64 size, i64 mtime, opt str hash} (<see cref="Caps.Extended"/>): held
/// is 0 (nothing), 1 (a partial upload) or 2 (the file under its final name); hash is the BLAKE3 of all of its size
/// bytes, absent when nothing is held or it holds more than the source size asked about.</summary>
public sealed record ResumeProofResponse(byte Held, ulong Size, long Mtime, string? Hash) : Message
{
    public const byte Nothing = 0, Partial = 1, Final = 2;
    public override MessageType Type => MessageType.ResumeProofResponse;
    internal override int PayloadSize => 1 + 8 + 8 + PayloadWriter.OptStrSize(Hash);
    internal override void WritePayload(ref PayloadWriter w) { w.U8(Held); w.U64(Size); w.I64(Mtime); w.OptStr(Hash); }
}

/// <summary>0x8e RangeHashes{u64 offset, bytes values} (<see cref="Caps.Extended"/>): the reply that ends a
/// PutChunked or GetChunked: the 32-byte chaining value of each 4 MiB block of the range at its place in the file
/// (<see cref="Hashing.BlockChainingValues"/>), from the bytes the server wrote or read; none under
/// <see cref="Caps.Fast"/> for a GetChunked.</summary>
public sealed record RangeHashes(ulong Offset, byte[] Values) : Message
{
    public override MessageType Type => MessageType.RangeHashes;
    internal override int PayloadSize => 8 + 4 + Values.Length;
    internal override void WritePayload(ref PayloadWriter w) { w.U64(Offset); w.Bytes(Values); }

    public bool Equals(RangeHashes? other) => other is not null && Offset == other.Offset && SameBytes(Values, other.Values);
    public override int GetHashCode() => HashCode.Combine(Offset, HashBytes(Values));
}

/// <summary>0x8f BlockHashesResponse{u8 held, u64 size, bytes values} (<see cref="Caps.Extended"/>): held as in
/// <see cref="ResumeProofResponse"/> (0 nothing, 1 a partial upload, 2 the file), its size, and the chaining value of
/// each of its 4 MiB blocks (the last one possibly short).</summary>
public sealed record BlockHashesResponse(byte Held, ulong Size, byte[] Values) : Message
{
    public override MessageType Type => MessageType.BlockHashesResponse;
    internal override int PayloadSize => 1 + 8 + 4 + Values.Length;
    internal override void WritePayload(ref PayloadWriter w) { w.U8(Held); w.U64(Size); w.Bytes(Values); }

    public bool Equals(BlockHashesResponse? other) => other is not null && Held == other.Held && Size == other.Size && SameBytes(Values, other.Values);
    public override int GetHashCode() => HashCode.Combine(Held, Size, HashBytes(Values));
}

/// <summary>0x89 DataCompressed{u8 algo (1 LZ4, 2 Zstd), u32 original size, bytes}.</summary>
public sealed record DataCompressed(byte Algo, uint OriginalSize, byte[] Bytes) : Message
{
    public const byte AlgoLz4 = 1;
    public const byte AlgoZstd = 2;

    public override MessageType Type => MessageType.DataCompressed;
    internal override int PayloadSize => 1 + 4 + 4 + Bytes.Length;
    internal override void WritePayload(ref PayloadWriter w) { w.U8(Algo); w.U32(OriginalSize); w.Bytes(Bytes); }

    public bool Equals(DataCompressed? other) =>
        other is not null && Algo == other.Algo && OriginalSize == other.OriginalSize && SameBytes(Bytes, other.Bytes);
    public override int GetHashCode() => HashCode.Combine(Algo, OriginalSize, HashBytes(Bytes));
}

/// <summary>0x8a MissingBlocks{bytes bitmap}: bit i (LSB first within each byte) = 1 when block i must be sent.</summary>
public sealed record MissingBlocks(byte[] Bitmap) : Message
{
    public bool IsMissing(int block) =>
        block >= 0 && block / 8 < Bitmap.Length && (Bitmap[block / 8] >> (block % 8) & 1) == 1;

    public override MessageType Type => MessageType.MissingBlocks;
    internal override int PayloadSize => 4 + Bitmap.Length;
    internal override void WritePayload(ref PayloadWriter w) => w.Bytes(Bitmap);

    public bool Equals(MissingBlocks? other) => other is not null && SameBytes(Bitmap, other.Bitmap);
    public override int GetHashCode() => HashBytes(Bitmap);
}

/// <summary>0x8b DirectChannelReady{str "ip:port", 32-byte key} (key without length prefix).</summary>
public sealed record DirectChannelReady(string Address, byte[] Key) : Message
{
    public override MessageType Type => MessageType.DirectChannelReady;
    internal override int PayloadSize => PayloadWriter.StrSize(Address) + 32;
    internal override void WritePayload(ref PayloadWriter w)
    {
        Require(Key.Length == 32, "DirectChannelReady key must be 32 bytes");
        w.Str(Address);
        w.Raw(Key);
    }

    public bool Equals(DirectChannelReady? other) => other is not null && Address == other.Address && SameBytes(Key, other.Key);
    public override int GetHashCode() => HashCode.Combine(Address, HashBytes(Key));
}

/// <summary>0x8c AuthChallenge{32-byte nonce} (no length prefix).</summary>
public sealed record AuthChallenge(byte[] Nonce) : Message
{
    public override MessageType Type => MessageType.AuthChallenge;
    internal override int PayloadSize => 32;
    internal override void WritePayload(ref PayloadWriter w)
    {
        Require(Nonce.Length == 32, "AuthChallenge nonce must be 32 bytes");
        w.Raw(Nonce);
    }

    public bool Equals(AuthChallenge? other) => other is not null && SameBytes(Nonce, other.Nonce);
    public override int GetHashCode() => HashBytes(Nonce);
}
