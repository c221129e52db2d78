using Bcmr.Engine.Platform;
using System.Buffers.Binary;
using System.Text;
using Bcmr.Engine.Hashing;

namespace Bcmr.Engine.Local;

/// <summary>A session file that cannot be trusted: the reason, for the message the user sees.</summary>
internal sealed class SessionFormatException(string reason) : Exception(reason);

/// <summary>
/// The resume state of one file copy, stored in bcmr 0.6's version-2 session layout (little-endian):
/// <c>"BCMR" | u8 2 | str src | str dst | u64 src_size | u64 src_mtime (s) | u64 src_inode | u64 bytes_written |
/// u32 n, n × 32-byte block slots | u8 has_src_hash (+32) | u64 created_at | u64 updated_at |
/// [extension] | 8-byte trailer = first 8 bytes of BLAKE3 of everything before it</c> (str = u32 length + bytes).
/// <para>Our extension, after <c>updated_at</c> and covered by the trailer, which bcmr 0.6 reads past:
/// <c>"BCX2" | u32 src_mtime_nsec | u8 slot kind</c> (1: the slots hold each block's BLAKE3 chaining value at its
/// position in the file, what our copies record, one hash pass per block; 0: standalone BLAKE3 roots, as bcmr 0.6
/// records them, kept when we continue a session of its). The nanoseconds make source-change detection exact; the
/// chaining values prove a block on disk and finish the whole-file BLAKE3 without reading the blocks before the
/// resume point (see <see cref="BlockLedger"/>).</para>
/// <para>bcmr 0.6 parses these files (the layout is its own), but could not resume from one of our sessions anyway:
/// our bytes are in the partial file (<see cref="Temporaries.PartialPath"/>), not under the final name it would check. Were it to compare a
/// chaining-value slot, the check would fail and it would copy from the start: safe.</para>
/// <para>Read but no longer written: a session without extension (bcmr 0.6: roots), and our earlier
/// <c>"BCX1" | u32 src_mtime_nsec | u32 m, m × 32-byte chaining values</c> (slots: roots; m is n, or 0 when
/// unknown), whose chaining values become the ledger, so a copy interrupted by an older build still resumes.</para>
/// </summary>
internal sealed class ResumeSession
{
    private static ReadOnlySpan<byte> Magic => "BCMR"u8;
    private static ReadOnlySpan<byte> ExtensionMagic => "BCX2"u8;
    private static ReadOnlySpan<byte> OldExtensionMagic => "BCX1"u8;
    private const byte Version = 2;
    private const int TrailerSize = 8;
    private const byte SlotsRoots = 0, SlotsChainingValues = 1;

    public required string Source { get; init; }
    public required string Destination { get; init; }
    public ulong SourceSize { get; init; }
    public ulong SourceMtime { get; init; }
    /// <summary>Null when the session came from a tool that does not record it (then only seconds are compared; the
    /// copy that continues it fills it in).</summary>
    public uint? SourceMtimeNsec { get; set; }
    public ulong SourceInode { get; init; }
    public ulong BytesWritten { get; set; }
    /// <summary>The recorded blocks; their kind says what the v2 slots hold.</summary>
    public BlockLedger Blocks { get; set; } = new();
    public byte[]? SourceHash { get; set; }
    public ulong CreatedAt { get; init; }
    public ulong UpdatedAt { get; set; }

    public static ResumeSession Start(string source, string destination, in FileMeta src)
    {
        var now = NowSeconds();
        return new ResumeSession
        {
            Source = source, Destination = destination, SourceSize = (ulong)src.Size,
            SourceMtime = src.MtimeSec < 0 ? 0 : (ulong)src.MtimeSec, SourceMtimeNsec = (uint)src.MtimeNsec,
            SourceInode = src.Inode, CreatedAt = now, UpdatedAt = now,
        };
    }

    /// <summary>Null when the source is the one this session describes; otherwise what changed, for the message.</summary>
    public string? SourceChange(in FileMeta now)
    {
        if ((ulong)now.Size != SourceSize) return $"size {SourceSize} -> {now.Size}";
        ulong mtime = now.MtimeSec < 0 ? 0 : (ulong)now.MtimeSec;
        if (mtime != SourceMtime || (SourceMtimeNsec is { } ns && ns != (uint)now.MtimeNsec)) return "modification time changed";
        if (now.Inode != SourceInode) return "replaced by another file (inode changed)";
        return null;
    }

    public static ulong NowSeconds() => (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public byte[] Serialize()
    {
        var src = Encoding.UTF8.GetBytes(Source);
        var dst = Encoding.UTF8.GetBytes(Destination);
        int n = Blocks.Count;
        int size = 4 + 1 + 4 + src.Length + 4 + dst.Length + 8 * 4 + 4 + 32 * n + 1 + (SourceHash is null ? 0 : 32) + 16
            + 4 + 4 + 1 + TrailerSize;
        var buf = new byte[size];
        var w = new Writer(buf);
        w.Bytes(Magic);
        w.U8(Version);
        w.Str(src);
        w.Str(dst);
        w.U64(SourceSize);
        w.U64(SourceMtime);
        w.U64(SourceInode);
        w.U64(BytesWritten);
        w.U32((uint)n);
        for (int i = 0; i < n; i++) w.Bytes(Blocks.Hash(i));
        w.U8(SourceHash is null ? (byte)0 : (byte)1);
        if (SourceHash is not null) w.Bytes(SourceHash);
        w.U64(CreatedAt);
        w.U64(UpdatedAt);
        w.Bytes(ExtensionMagic);
        w.U32(SourceMtimeNsec ?? 0);
        w.U8(Blocks.Kind == BlockHashKind.ChainingValue ? SlotsChainingValues : SlotsRoots);
        Blake3.Hash(buf.AsSpan(0, w.Position)).AsSpan(0, TrailerSize).CopyTo(buf.AsSpan(w.Position));
        return buf;
    }

    /// <summary>Reads a session, trusting nothing: the trailer must match and every length must fit.</summary>
    public static ResumeSession Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < Magic.Length + 1 + TrailerSize) throw new SessionFormatException("truncated");
        var payload = data[..^TrailerSize];
        if (!Blake3.Hash(payload).AsSpan(0, TrailerSize).SequenceEqual(data[^TrailerSize..]))
            throw new SessionFormatException("checksum mismatch (corrupt or truncated)");
        var r = new Reader(payload);
        if (!r.Bytes(4).SequenceEqual(Magic)) throw new SessionFormatException("not a bcmr session");
        var version = r.U8();
        if (version != Version) throw new SessionFormatException($"unsupported session version {version}");
        var source = r.Str();
        var destination = r.Str();
        ulong size = r.U64(), mtime = r.U64(), inode = r.U64(), written = r.U64();
        uint n = r.U32();
        if (n > r.Remaining / 32) throw new SessionFormatException("block count exceeds the file");
        var slots = new List<byte[]>((int)n);
        for (int i = 0; i < n; i++) slots.Add(r.Bytes(32).ToArray());
        byte[]? srcHash = r.U8() switch
        {
            0 => null,
            1 => r.Bytes(32).ToArray(),
            _ => throw new SessionFormatException("bad source-hash flag"),
        };
        ulong created = r.U64(), updated = r.U64();
        uint? nsec = null;
        var blocks = new BlockLedger(BlockHashKind.Root, slots); // bcmr 0.6's meaning, unless our extension says otherwise
        if (r.Remaining >= 9 && r.Peek(4).SequenceEqual(ExtensionMagic))
        {
            r.Bytes(4);
            nsec = r.U32();
            blocks = r.U8() switch
            {
                SlotsRoots => blocks,
                SlotsChainingValues => new BlockLedger(BlockHashKind.ChainingValue, slots),
                var k => throw new SessionFormatException($"unknown block slot kind {k}"),
            };
        }
        else if (r.Remaining >= 12 && r.Peek(4).SequenceEqual(OldExtensionMagic))
        {
            r.Bytes(4);
            nsec = r.U32();
            uint m = r.U32();
            if (m != 0 && m != n) throw new SessionFormatException("chaining-value count does not match the block count");
            if (m > r.Remaining / 32) throw new SessionFormatException("chaining values exceed the file");
            if (m > 0)
            {
                var cvs = new List<byte[]>((int)m);
                for (int i = 0; i < m; i++) cvs.Add(r.Bytes(32).ToArray());
                blocks = new BlockLedger(BlockHashKind.ChainingValue, cvs);
            }
        }
        if (written != (ulong)n * BlockLedger.BlockSize && written != size)
            throw new SessionFormatException($"bytes written ({written}) disagree with the {n} recorded blocks");
        if (written > size) throw new SessionFormatException("claims more bytes than the source has");
        return new ResumeSession
        {
            Source = source, Destination = destination, SourceSize = size, SourceMtime = mtime, SourceMtimeNsec = nsec,
            SourceInode = inode, BytesWritten = written, Blocks = blocks, SourceHash = srcHash,
            CreatedAt = created, UpdatedAt = updated,
        };
    }

    private ref struct Writer(Span<byte> buf)
    {
        private readonly Span<byte> _buf = buf;
        public int Position;
        public void U8(byte v) => _buf[Position++] = v;
        public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(_buf[Position..], v); Position += 4; }
        public void U64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(_buf[Position..], v); Position += 8; }
        public void Bytes(ReadOnlySpan<byte> v) { v.CopyTo(_buf[Position..]); Position += v.Length; }
        public void Str(byte[] v) { U32((uint)v.Length); Bytes(v); }
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;
        public readonly int Remaining => _data.Length - _pos;

        public ReadOnlySpan<byte> Bytes(int n)
        {
            if (n < 0 || n > Remaining) throw new SessionFormatException("truncated");
            var s = _data.Slice(_pos, n);
            _pos += n;
            return s;
        }

        public readonly ReadOnlySpan<byte> Peek(int n) => _data.Slice(_pos, Math.Min(n, Remaining));
        public byte U8() => Bytes(1)[0];
        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));

        public string Str()
        {
            uint len = U32();
            if (len > Remaining) throw new SessionFormatException("path length exceeds the file");
            try { return new UTF8Encoding(false, true).GetString(Bytes((int)len)); }
            catch (DecoderFallbackException) { throw new SessionFormatException("path is not valid UTF-8"); }
        }
    }
}
