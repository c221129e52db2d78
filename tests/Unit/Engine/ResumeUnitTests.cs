using System.Buffers.Binary;
using System.Text;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using CsCheck;

namespace Bcmr.Tests.Engine;

/// <summary>The pieces of resume that need no process: the session layout, the block ledger, the hash pipeline.</summary>
public class ResumeUnitTests
{
    private const int Block = BlockLedger.BlockSize;

    private static List<byte[]> RandomHashes(int count, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => { var b = new byte[32]; rnd.NextBytes(b); return b; }).ToList();
    }

    private static ResumeSession Sample(int blocks, BlockHashKind kind = BlockHashKind.ChainingValue) => new()
    {
        Source = "/data/src ü.bin", Destination = "/mnt/dst.bin", SourceSize = (ulong)blocks * Block + 5, SourceMtime = 1_700_000_000,
        SourceMtimeNsec = 123_456_789, SourceInode = 4242, BytesWritten = (ulong)blocks * Block,
        Blocks = new BlockLedger(kind, RandomHashes(blocks, blocks)), CreatedAt = 1_800_000_000, UpdatedAt = 1_800_000_100,
    };

    /// <summary>A block's chaining value at its position, computed apart from <see cref="BlockLedger"/>: on the scalar
    /// path, one chunk per call (the chunk-state code, not the SIMD subtree code the copy uses).</summary>
    internal static byte[] ReferenceChainingValue(ReadOnlySpan<byte> block, long index)
    {
        var h = Blake3Hasher.Create(Blake3Simd.Scalar);
        h.ResetAt((ulong)index * (Block / 1024));
        for (int i = 0; i < block.Length; i += 1024) h.Update(block.Slice(i, 1024));
        var cv = new byte[32];
        h.SubtreeChainingValue(cv);
        return cv;
    }

    [Fact]
    public void Session_has_bcmr_version_2_layout_field_by_field()
    {
        var s = Sample(2);
        var bytes = s.Serialize();
        int p = 0;
        Assert.Equal("BCMR"u8.ToArray(), bytes[p..(p += 4)]);
        Assert.Equal(2, bytes[p++]);
        string Str(ref int at) { int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)); at += 4; var v = Encoding.UTF8.GetString(bytes, at, n); at += n; return v; }
        ulong U64(ref int at) { var v = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at)); at += 8; return v; }
        Assert.Equal(s.Source, Str(ref p));
        Assert.Equal(s.Destination, Str(ref p));
        Assert.Equal(s.SourceSize, U64(ref p));
        Assert.Equal(1_700_000_000UL, U64(ref p));
        Assert.Equal(4242UL, U64(ref p));
        Assert.Equal((ulong)2 * Block, U64(ref p));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p))); p += 4;
        Assert.Equal(s.Blocks.Hash(0), bytes[p..(p += 32)]);
        Assert.Equal(s.Blocks.Hash(1), bytes[p..(p += 32)]);
        Assert.Equal(0, bytes[p++]); // no source hash
        Assert.Equal(1_800_000_000UL, U64(ref p));
        Assert.Equal(1_800_000_100UL, U64(ref p));
        // Our extension follows: "BCX2", the mtime's nanoseconds, what the slots hold (1: chaining values); then the
        // trailer, the first 8 bytes of BLAKE3 of everything before it.
        Assert.Equal("BCX2"u8.ToArray(), bytes[p..(p += 4)]);
        Assert.Equal(123_456_789u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p))); p += 4;
        Assert.Equal(1, bytes[p++]);
        Assert.Equal(bytes.Length - 8, p);
        Assert.Equal(Blake3.Hash(bytes.AsSpan(0, bytes.Length - 8))[..8], bytes[^8..]);
        Assert.Equal(0, Sample(2, BlockHashKind.Root).Serialize()[^9]);
    }

    [Theory]
    [InlineData(0, BlockHashKind.ChainingValue)]
    [InlineData(3, BlockHashKind.Root)]
    [InlineData(17, BlockHashKind.ChainingValue)]
    public void Session_round_trips(int blocks, BlockHashKind kind)
    {
        var s = Sample(blocks, kind);
        var back = ResumeSession.Parse(s.Serialize());
        Assert.Equal(s.Source, back.Source);
        Assert.Equal(s.Destination, back.Destination);
        Assert.Equal(s.SourceSize, back.SourceSize);
        Assert.Equal(s.SourceMtimeNsec, back.SourceMtimeNsec);
        Assert.Equal(s.BytesWritten, back.BytesWritten);
        Assert.Equal(blocks, back.Blocks.Count);
        for (int i = 0; i < blocks; i++) Assert.Equal(s.Blocks.Hash(i), back.Blocks.Hash(i));
        Assert.Equal(kind, back.Blocks.Kind);
    }

    /// <summary>bcmr 0.6's bytes: our layout up to updated_at, no extension, its trailer.</summary>
    private static byte[] WithExtension(ResumeSession s, ReadOnlySpan<byte> extension)
    {
        var ours = s.Serialize();
        var payload = ours[..(ours.Length - 8 - 9)].Concat(extension.ToArray()).ToArray(); // cut "BCX2" + nsec + kind
        return [.. payload, .. Blake3.Hash(payload)[..8]];
    }

    [Fact]
    public void Session_without_extension_is_read_as_bcmr_06_roots()
    {
        var s = Sample(3, BlockHashKind.Root);
        var back = ResumeSession.Parse(WithExtension(s, []));
        Assert.Equal(BlockHashKind.Root, back.Blocks.Kind);
        Assert.Null(back.SourceMtimeNsec);
        for (int i = 0; i < 3; i++) Assert.Equal(s.Blocks.Hash(i), back.Blocks.Hash(i));
    }

    [Fact]
    public void Session_of_the_earlier_bcx1_extension_resumes_from_its_chaining_values()
    {
        // BCX1 (the previous build): v2 slots hold standalone roots, the extension holds the chaining values.
        var roots = Sample(3, BlockHashKind.Root);
        var cvs = RandomHashes(3, 99);
        var ext = new List<byte>("BCX1"u8.ToArray());
        ext.AddRange(BitConverter.GetBytes(123_456_789u));
        ext.AddRange(BitConverter.GetBytes(3u));
        foreach (var cv in cvs) ext.AddRange(cv);
        var back = ResumeSession.Parse(WithExtension(roots, ext.ToArray()));
        Assert.Equal(BlockHashKind.ChainingValue, back.Blocks.Kind);
        Assert.Equal(123_456_789u, back.SourceMtimeNsec);
        for (int i = 0; i < 3; i++) Assert.Equal(cvs[i], back.Blocks.Hash(i));

        // Written by a copy that continued a bcmr 0.6 session: no chaining values (m = 0), the roots stay.
        ext = new List<byte>("BCX1"u8.ToArray());
        ext.AddRange(BitConverter.GetBytes(5u));
        ext.AddRange(BitConverter.GetBytes(0u));
        back = ResumeSession.Parse(WithExtension(roots, ext.ToArray()));
        Assert.Equal(BlockHashKind.Root, back.Blocks.Kind);
        Assert.Equal(roots.Blocks.Hash(2), back.Blocks.Hash(2));

        // A count that is neither 0 nor n is refused.
        ext[^4] = 2;
        Assert.Throws<SessionFormatException>(() => ResumeSession.Parse(WithExtension(roots, ext.ToArray())));
    }

    [Fact]
    public void Session_with_an_unknown_slot_kind_is_refused()
    {
        var bytes = Sample(2).Serialize();
        bytes[^9] = 7;
        var payload = bytes[..^8];
        Assert.Throws<SessionFormatException>(() => ResumeSession.Parse([.. payload, .. Blake3.Hash(payload)[..8]]));
    }

    [Fact]
    public void Any_damage_to_a_session_is_refused_with_our_exception_only()
    {
        var good = Sample(4).Serialize();
        Gen.Select(Gen.Int[0, good.Length - 1], Gen.Byte, Gen.Int[0, good.Length]).Sample((at, value, cut) =>
        {
            var bad = (byte[])good.Clone();
            bad[at] = bad[at] == value ? (byte)~value : value;
            Assert.Throws<SessionFormatException>(() => ResumeSession.Parse(bad));
            if (cut < good.Length) Assert.Throws<SessionFormatException>(() => ResumeSession.Parse(good.AsSpan(0, cut)));
        }, iter: 2000);
        // Random bytes with a valid trailer get past the checksum: the parser must still only throw its own exception.
        Gen.Byte.Array[0, 600].Sample(data =>
        {
            var framed = data.Concat(Blake3.Hash(data)[..8]).ToArray();
            try { ResumeSession.Parse(framed); }
            catch (SessionFormatException) { }
        }, iter: 2000);
    }

    [Fact]
    public void Ledger_file_hash_equals_blake3_of_the_whole_file_for_any_size()
    {
        var data = new byte[3 * Block + 4096];
        new Random(5).NextBytes(data);
        long[] sizes = [0, 1, 1024, Block - 1, Block + 1, 2 * Block, 2 * Block + 1025, 3 * Block, data.Length];
        var hasher = Blake3Hasher.Create();
        foreach (var size in sizes)
        {
            var ledger = new BlockLedger();
            var roots = new BlockLedger(BlockHashKind.Root);
            long full = size / Block;
            for (int i = 0; i < full; i++)
            {
                var cv = new byte[32];
                BlockLedger.ComputeChainingValue(hasher, i, data.AsSpan(i * Block, Block), cv);
                Assert.Equal(ReferenceChainingValue(data.AsSpan(i * Block, Block), i), cv);
                ledger.Add(cv);
                var root = new byte[32];
                roots.Compute(hasher, i, data.AsSpan(i * Block, Block), root);
                Assert.Equal(Blake3.Hash(data.AsSpan(i * Block, Block)), root);
                roots.Add(root);
            }
            var tail = data.AsSpan((int)(full * Block), (int)(size - full * Block));
            Assert.Equal(Blake3.Hash(data.AsSpan(0, (int)size)), ledger.FileHash(size, tail));
            // Standalone roots cannot finish a file of more than one block.
            if (full >= 1) Assert.Null(roots.FileHash(size, tail));
        }
        // One full block: its hash is its root, which its chaining value does not give.
        var one = new BlockLedger();
        var c = new byte[32];
        BlockLedger.ComputeChainingValue(hasher, 0, data.AsSpan(0, Block), c);
        one.Add(c);
        Assert.Null(one.FileHash(Block, []));
    }

    [Theory]
    [InlineData(true, 5L * Block + 777)]
    [InlineData(false, 5L * Block + 777)]
    [InlineData(true, 7L * Block)]
    [InlineData(true, Block)]
    [InlineData(false, Block)]
    public void Pipeline_records_each_blocks_chaining_value_in_order_and_finishes_the_file_hash(bool threaded, long size)
    {
        var data = new byte[size];
        new Random(11).NextBytes(data);
        // Start as a resume would: the blocks before the first one submitted already recorded.
        int before = size > 2L * Block ? 2 : 0;
        var ledger = new BlockLedger();
        for (int i = 0; i < before; i++) ledger.Add(ReferenceChainingValue(data.AsSpan(i * Block, Block), i));
        using (var pipeline = new BlockHashPipeline(ledger, size, threaded))
        {
            long index = before;
            for (long pos = (long)before * Block; pos < size; pos += Block)
            {
                var buf = pipeline.Rent(CancellationToken.None);
                int n = (int)Math.Min(Block, size - pos);
                data.AsSpan((int)pos, n).CopyTo(buf);
                pipeline.Submit(index++, buf, n);
            }
            pipeline.WaitFor(index, CancellationToken.None);
            Assert.Equal(Blake3.Hash(data), pipeline.FileHash);
        }
        Assert.Equal((int)(size / Block), ledger.Count);
        Assert.Equal(BlockHashKind.ChainingValue, ledger.Kind);
        for (int i = 0; i < ledger.Count; i++)
            Assert.Equal(ReferenceChainingValue(data.AsSpan(i * Block, Block), i), ledger.Hash(i));
    }

    [Fact]
    public void Pipeline_continuing_roots_records_roots_and_knows_no_file_hash()
    {
        long size = 4L * Block + 3;
        var data = new byte[size];
        new Random(12).NextBytes(data);
        var ledger = new BlockLedger(BlockHashKind.Root, [Blake3.Hash(data.AsSpan(0, Block))]);
        using (var pipeline = new BlockHashPipeline(ledger, size, threaded: true))
        {
            long index = 1;
            for (long pos = Block; pos < size; pos += Block)
            {
                var buf = pipeline.Rent(CancellationToken.None);
                int n = (int)Math.Min(Block, size - pos);
                data.AsSpan((int)pos, n).CopyTo(buf);
                pipeline.Submit(index++, buf, n);
            }
            pipeline.WaitFor(index, CancellationToken.None);
            Assert.Null(pipeline.FileHash);
        }
        Assert.Equal(4, ledger.Count);
        for (int i = 0; i < 4; i++) Assert.Equal(Blake3.Hash(data.AsSpan(i * Block, Block)), ledger.Hash(i));
    }

    [Fact]
    public void Session_id_is_bcmrs_key()
    {
        // BLAKE3(u32le len(src) ‖ src ‖ u32le len(dst) ‖ dst), first 16 hex digits; "a:" + "b" differs from "a" + ":b".
        var key = new byte[] { 2, 0, 0, 0, (byte)'a', (byte)':', 1, 0, 0, 0, (byte)'b' };
        Assert.Equal(Blake3.ToHex(Blake3.Hash(key))[..16], SessionStore.IdFor("a:", "b"));
        Assert.NotEqual(SessionStore.IdFor("a:", "b"), SessionStore.IdFor("a", ":b"));
    }
}
