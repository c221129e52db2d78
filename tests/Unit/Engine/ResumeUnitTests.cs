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

    private static ResumeSession Sample(int blocks, bool cvs)
    {
        var rnd = new Random(blocks);
        var roots = Enumerable.Range(0, blocks).Select(_ => { var b = new byte[32]; rnd.NextBytes(b); return b; }).ToList();
        var chain = cvs ? Enumerable.Range(0, blocks).Select(_ => { var b = new byte[32]; rnd.NextBytes(b); return b; }).ToList() : null;
        return new ResumeSession
        {
            Source = "/data/src ü.bin", Destination = "/mnt/dst.bin", SourceSize = (ulong)blocks * Block + 5, SourceMtime = 1_700_000_000,
            SourceMtimeNsec = 123_456_789, SourceInode = 4242, BytesWritten = (ulong)blocks * Block,
            Blocks = new BlockLedger(roots, chain), CreatedAt = 1_800_000_000, UpdatedAt = 1_800_000_100,
        };
    }

    [Fact]
    public void Session_has_bcmr_version_2_layout_field_by_field()
    {
        var s = Sample(2, cvs: true);
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
        Assert.Equal(s.Blocks.Root(0), bytes[p..(p += 32)]);
        Assert.Equal(s.Blocks.Root(1), bytes[p..(p += 32)]);
        Assert.Equal(0, bytes[p++]); // no source hash
        Assert.Equal(1_800_000_000UL, U64(ref p));
        Assert.Equal(1_800_000_100UL, U64(ref p));
        // Our extension follows; the trailer is the first 8 bytes of BLAKE3 of everything before it.
        Assert.Equal("BCX1"u8.ToArray(), bytes[p..(p + 4)]);
        Assert.Equal(Blake3.Hash(bytes.AsSpan(0, bytes.Length - 8))[..8], bytes[^8..]);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(3, false)]
    [InlineData(17, true)]
    public void Session_round_trips(int blocks, bool cvs)
    {
        var s = Sample(blocks, cvs);
        var back = ResumeSession.Parse(s.Serialize());
        Assert.Equal(s.Source, back.Source);
        Assert.Equal(s.Destination, back.Destination);
        Assert.Equal(s.SourceSize, back.SourceSize);
        Assert.Equal(s.SourceMtimeNsec, back.SourceMtimeNsec);
        Assert.Equal(s.BytesWritten, back.BytesWritten);
        Assert.Equal(blocks, back.Blocks.Count);
        for (int i = 0; i < blocks; i++) Assert.Equal(s.Blocks.Root(i), back.Blocks.Root(i));
        Assert.Equal(cvs || blocks == 0, back.Blocks.HasAllChainingValues);
    }

    [Fact]
    public void Any_damage_to_a_session_is_refused_with_our_exception_only()
    {
        var good = Sample(4, cvs: true).Serialize();
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
        long[] sizes = [0, 1, 1024, Block - 1, Block, Block + 1, 2 * Block, 2 * Block + 1025, 3 * Block, data.Length];
        var hasher = Blake3Hasher.Create();
        foreach (var size in sizes)
        {
            var ledger = new BlockLedger();
            long full = size / Block;
            for (int i = 0; i < full; i++)
            {
                var root = new byte[32];
                var cv = new byte[32];
                BlockLedger.ComputeRoot(hasher, data.AsSpan(i * Block, Block), root);
                BlockLedger.ComputeChainingValue(hasher, i, data.AsSpan(i * Block, Block), cv);
                ledger.Add(root, cv);
            }
            var tail = data.AsSpan((int)(full * Block), (int)(size - full * Block));
            Assert.Equal(Blake3.Hash(data.AsSpan(0, (int)size)), ledger.FileHash(size, tail));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Pipeline_records_every_block_in_order_and_finishes_the_file_hash(bool threaded)
    {
        long size = 5L * Block + 777;
        var data = new byte[size];
        new Random(11).NextBytes(data);
        // Start as a resume would: two blocks already recorded.
        var ledger = new BlockLedger();
        var h = Blake3Hasher.Create();
        for (int i = 0; i < 2; i++)
        {
            var root = new byte[32]; var cv = new byte[32];
            BlockLedger.ComputeRoot(h, data.AsSpan(i * Block, Block), root);
            BlockLedger.ComputeChainingValue(h, i, data.AsSpan(i * Block, Block), cv);
            ledger.Add(root, cv);
        }
        using (var pipeline = new BlockHashPipeline(ledger, size, chainingValues: true, threaded))
        {
            long index = 2;
            for (long pos = 2L * Block; pos < size; pos += Block)
            {
                var buf = pipeline.Rent(CancellationToken.None);
                int n = (int)Math.Min(Block, size - pos);
                data.AsSpan((int)pos, n).CopyTo(buf);
                pipeline.Submit(index++, buf, n);
            }
            pipeline.WaitFor(index, CancellationToken.None);
            Assert.Equal(Blake3.Hash(data), pipeline.FileHash);
        }
        Assert.Equal(6, ledger.Count);
        for (int i = 0; i < 6; i++)
            Assert.Equal(Blake3.Hash(data.AsSpan(i * Block, (int)Math.Min(Block, size - (long)i * Block))), ledger.Root(i));
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
