using Bcmr.Engine;
using Bcmr.Engine.Local;
using System.Security.Cryptography;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Codecs;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>Dedup uploads through the server loop in process, over real pipes, into a content store in a temp dir:
/// repeat uploads, corrupt blobs, the LRU cap, concurrent uploads.</summary>
public sealed class DedupServeTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();
    private readonly string _root;
    private readonly string _cas;

    public DedupServeTests()
    {
        _root = _t["root"];
        _cas = _t["cas"];
        Directory.CreateDirectory(_root);
    }

    public void Dispose() => _t.Dispose();

    private static string B3(ReadOnlySpan<byte> data) => Blake3.ToHex(Blake3.Hash(data));
    private static string Sha(byte[] data) => Convert.ToHexString(SHA256.HashData(data));
    private string R(string rel) => Path.Combine(_root, rel);

    private ServeConnection Open(ContentStore store, byte caps = Caps.Dedup | Caps.Zstd | Caps.Lz4, ThreadBudget? threads = null)
    {
        var c = ServeConnection.InProcess(_root, store: store, threads: threads);
        Assert.Equal(caps, c.Handshake(caps).Caps);
        return c;
    }

    private static IEnumerable<string> BlockHexes(byte[] content, int block = 4 * MiB)
    {
        for (int pos = 0; pos < content.Length; pos += block)
            yield return B3(content.AsSpan(pos, Math.Min(block, content.Length - pos)));
    }

    private HashSet<string> StoredHexes() =>
        Directory.Exists(_cas)
            ? Directory.EnumerateFiles(_cas, "*.blk", SearchOption.AllDirectories)
                .Select(p => Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(p)))! + Path.GetFileName(Path.GetDirectoryName(p))! + Path.GetFileNameWithoutExtension(p))
                .ToHashSet()
            : [];

    private static int Missing(MissingBlocks m, int count) => Enumerable.Range(0, count).Count(m.IsMissing);

    [Fact]
    public void A_repeat_upload_of_64_MiB_sends_less_than_1_percent_the_second_time()
    {
        var store = new ContentStore(_cas, 0);
        var data = BlockCodecTests.RandomBytes(64 * MiB, 1);
        using var c = Open(store);

        long before = c.BytesSent;
        var (reply, missing) = c.PutDedup("first.bin", data);
        long first = c.BytesSent - before;
        Assert.Equal(new OkResponse(B3(data)), reply);
        Assert.Equal(16, Missing(missing!, 16));
        Assert.True(first > data.Length);
        Assert.Equal(16, store.Stats().Blobs);
        Assert.Equal(64L * MiB, store.Stats().Bytes);

        before = c.BytesSent;
        (reply, missing) = c.PutDedup("second.bin", data);
        long second = c.BytesSent - before;
        Assert.Equal(new OkResponse(B3(data)), reply);
        Assert.Equal(0, Missing(missing!, 16));
        Assert.True(second < data.Length / 100, $"second upload sent {second} bytes");
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("second.bin"))));
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("first.bin"))));
        Trees.AssertNoStagingFiles(_root);
    }

    [Theory]
    [InlineData(0)] // no thread to spare: the session thread keeps each block itself
    [InlineData(2)] // a thread of its own keeps them while the next block arrives
    public void A_first_upload_keeps_every_block_it_received_in_the_store_and_gives_its_thread_back(int spare)
    {
        var store = new ContentStore(_cas, 0);
        var budget = new ThreadBudget(spare);
        var data = BlockCodecTests.RandomBytes(18 * MiB + 5, 4); // 5 blocks, the last of 5 bytes
        using var c = Open(store, threads: budget);
        var (reply, missing) = c.PutDedup("a.bin", data);
        Assert.Equal(new OkResponse(B3(data)), reply);
        Assert.Equal(5, Missing(missing!, 5));
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("a.bin"))));
        var hexes = BlockHexes(data).ToArray();
        Assert.Equal(hexes.ToHashSet(), StoredHexes());
        var buffer = new byte[Wire.MaxBlock];
        for (int i = 0; i < hexes.Length; i++)
        {
            Assert.True(store.TryRead(Convert.FromHexString(hexes[i]), buffer, out int n), $"block {i}");
            Assert.Equal(Sha(data.AsSpan(i * 4 * MiB, n).ToArray()), Sha(buffer[..n]));
        }
        Assert.Equal(0, budget.InUse);
        Assert.Equal(spare > 0 ? 1 : 0, budget.Peak);
        Assert.Empty(Directory.EnumerateFiles(_cas, "*.tmp.*", SearchOption.AllDirectories));
        Trees.AssertNoStagingFiles(_root);
    }

    [Fact]
    public void A_block_a_client_names_by_a_wrong_hash_is_refused_when_read_so_the_next_upload_sends_it_again()
    {
        // The server keeps received blocks under the hashes HaveBlocks gave them, without hashing them again: a
        // lying client makes a blob whose bytes do not match its name, which must never reach a destination.
        var store = new ContentStore(_cas, 0);
        var data = BlockCodecTests.RandomBytes(12 * MiB, 5);
        var other = BlockCodecTests.RandomBytes(4 * MiB, 6);
        var otherHash = Blake3.Hash(other);
        using var c = Open(store);
        var (reply, _) = c.PutDedup("liar.bin", data, claim: i => i == 1 ? otherHash : null);
        Assert.Equal(new OkResponse(B3(data)), reply); // the file itself is what was sent
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("liar.bin"))));
        Assert.Equal(Sha(data.AsSpan(4 * MiB, 4 * MiB).ToArray()), Sha(File.ReadAllBytes(store.BlobPath(otherHash))));

        var honest = other.Concat(data.AsSpan(0, 4 * MiB).ToArray()).ToArray();
        (reply, var missing) = c.PutDedup("honest.bin", honest);
        Assert.Equal(new OkResponse(B3(honest)), reply);
        Assert.Equal([0], Enumerable.Range(0, 2).Where(missing!.IsMissing).ToArray());
        Assert.Equal(Sha(honest), Sha(File.ReadAllBytes(R("honest.bin"))));
        var buffer = new byte[Wire.MaxBlock];
        Assert.True(store.TryRead(otherHash, buffer, out int n));
        Assert.Equal(Sha(other), Sha(buffer[..n]));
    }

    [Fact]
    public void Corrupt_and_truncated_blobs_are_detected_asked_for_again_and_the_destination_is_exact()
    {
        var store = new ContentStore(_cas, 0);
        var data = BlockCodecTests.RandomBytes(20 * MiB + 12345, 2); // 6 blocks, the last short
        using var c = Open(store);
        Assert.Equal(new OkResponse(B3(data)), c.PutDedup("a.bin", data).Reply);

        var hashes = BlockHexes(data).ToArray();
        string BlobOf(int i) => store.BlobPath(Convert.FromHexString(hashes[i]));
        // Block 1: one byte flipped in place (same size); block 4: cut short; block 5: removed.
        using (var f = new FileStream(BlobOf(1), FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 2 * MiB;
            int b = f.ReadByte();
            f.Position = 2 * MiB;
            f.WriteByte((byte)(b ^ 0x01));
        }
        using (var f = new FileStream(BlobOf(4), FileMode.Open, FileAccess.ReadWrite)) f.SetLength(MiB);
        File.Delete(BlobOf(5));

        var (reply, missing) = c.PutDedup("b.bin", data);
        Assert.Equal(new OkResponse(B3(data)), reply);
        Assert.Equal([1, 4, 5], Enumerable.Range(0, 6).Where(missing!.IsMissing).ToArray());
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("b.bin"))));
        // The store holds good copies again.
        var buffer = new byte[Wire.MaxBlock];
        for (int i = 0; i < 6; i++) Assert.True(store.TryRead(Convert.FromHexString(hashes[i]), buffer, out _), $"block {i}");
    }

    [Fact]
    public void Missing_blocks_may_arrive_compressed_and_fill_between_stored_blocks()
    {
        var store = new ContentStore(_cas, 0);
        var text = BlockCodecTests.SourceText(18 * MiB, 3);
        using var c = Open(store);
        Assert.Equal(new OkResponse(B3(text)), c.PutDedup("t1.txt", text, WireCodec.Zstd).Reply);
        // Change blocks 0 and 3: the rest comes from the store, in between.
        var changed = (byte[])text.Clone();
        changed[10] ^= 0xFF;
        changed[3 * 4 * MiB + 7] ^= 0xFF;
        long before = c.BytesSent;
        var (reply, missing) = c.PutDedup("t2.txt", changed, WireCodec.Zstd);
        Assert.Equal(new OkResponse(B3(changed)), reply);
        Assert.Equal([0, 3], Enumerable.Range(0, 5).Where(missing!.IsMissing).ToArray());
        Assert.True(c.BytesSent - before < 3 * MiB, $"{c.BytesSent - before} bytes for two compressed 4 MiB blocks");
        Assert.Equal(changed, File.ReadAllBytes(R("t2.txt")));
    }

    [Fact]
    public void Three_24_MiB_uploads_with_a_32_MiB_cap_leave_at_most_32_MiB_keeping_the_most_recent()
    {
        var store = new ContentStore(_cas, 32L * MiB);
        var files = Enumerable.Range(0, 3).Select(i => BlockCodecTests.RandomBytes(24 * MiB, 10 + i)).ToArray();
        using var c = Open(store);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(new OkResponse(B3(files[i])), c.PutDedup($"f{i}.bin", files[i]).Reply);
            Assert.True(store.Stats().Bytes <= 32L * MiB, $"after upload {i}: {store.Stats().Bytes} bytes");
            Assert.Equal(Sha(files[i]), Sha(File.ReadAllBytes(R($"f{i}.bin"))));
        }
        var expected = BlockHexes(files[2]).Concat(BlockHexes(files[1]).Skip(4)).ToHashSet();
        Assert.Equal(expected, StoredHexes());
        Assert.Equal(8, store.Stats().Blobs);

        // A repeat of the last file is all hits, and the hits keep its blocks warm: an upload of something new
        // evicts file 1's blocks first.
        var (_, missing) = c.PutDedup("f2-again.bin", files[2]);
        Assert.Equal(0, Missing(missing!, 6));
        var fresh = BlockCodecTests.RandomBytes(8 * MiB, 20);
        Assert.Equal(new OkResponse(B3(fresh)), c.PutDedup("fresh.bin", fresh).Reply);
        Assert.Equal(BlockHexes(files[2]).Concat(BlockHexes(fresh)).ToHashSet(), StoredHexes());
    }

    [Fact]
    public void Two_uploads_into_one_store_at_once_both_end_exact_while_blobs_are_evicted_under_them()
    {
        // A cap smaller than one file: each upload's pruning evicts the other's blocks while it runs, and a third
        // thread clears the store over and over. Neither upload may fail or write a wrong byte.
        var store = new ContentStore(_cas, 8L * MiB);
        var shared = BlockCodecTests.RandomBytes(24 * MiB, 30);
        var own = new[] { BlockCodecTests.RandomBytes(20 * MiB, 31), BlockCodecTests.RandomBytes(20 * MiB, 32) };
        using var stop = new CancellationTokenSource();
        var clearer = Task.Run(() =>
        {
            var other = new ContentStore(_cas, 0);
            while (!stop.IsCancellationRequested)
            {
                other.Clear();
                Thread.Sleep(5);
            }
        });
        try
        {
            var uploads = Enumerable.Range(0, 2).Select(k => Task.Run(() =>
            {
                using var c = Open(store);
                for (int round = 0; round < 3; round++)
                {
                    Assert.Equal(new OkResponse(B3(shared)), c.PutDedup($"shared-{k}-{round}.bin", shared).Reply);
                    Assert.Equal(new OkResponse(B3(own[k])), c.PutDedup($"own-{k}-{round}.bin", own[k], WireCodec.Lz4).Reply);
                }
            })).ToArray();
            Assert.True(Task.WaitAll(uploads, TimeSpan.FromMinutes(3)), "uploads did not finish");
        }
        finally
        {
            stop.Cancel();
            clearer.Wait();
        }
        for (int k = 0; k < 2; k++)
            for (int round = 0; round < 3; round++)
            {
                Assert.Equal(Sha(shared), Sha(File.ReadAllBytes(R($"shared-{k}-{round}.bin"))));
                Assert.Equal(Sha(own[k]), Sha(File.ReadAllBytes(R($"own-{k}-{round}.bin"))));
            }
        Trees.AssertNoStagingFiles(_root);
        Assert.Empty(Directory.EnumerateFiles(_cas, "*.tmp.*", SearchOption.AllDirectories));
    }

    [Fact]
    public void HaveBlocks_that_do_not_describe_the_file_refuse_the_Put_and_the_session_goes_on()
    {
        var store = new ContentStore(_cas, 0);
        using var c = Open(store);
        c.Send(new PutRequest("x.bin", 20 * MiB, 0));
        c.Send(new HaveBlocks(4 * MiB, new byte[4 * 32])); // 20 MiB needs 5 blocks
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("HaveBlocks does not describe a file of 20971520 bytes (4 blocks of 4194304 bytes)", e.Text);
        c.Send(new PutRequest("y.bin", 16 * MiB, 0));
        c.Send(new HaveBlocks(8 * MiB, new byte[2 * 32])); // blocks above the 4 MiB limit
        Assert.Contains("2 blocks of 8388608 bytes", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.False(File.Exists(R("x.bin")));
        Assert.False(File.Exists(R("y.bin")));
        var data = BlockCodecTests.RandomBytes(17 * MiB, 40);
        Assert.Equal(new OkResponse(B3(data)), c.PutDedup("z.bin", data).Reply);
    }

    [Fact]
    public void HaveBlocks_without_negotiated_dedup_is_a_protocol_error()
    {
        using var c = Open(new ContentStore(_cas, 0), Caps.Zstd);
        var (reply, missing) = c.PutDedup("n.bin", new byte[17 * MiB]);
        Assert.Null(missing);
        Assert.Contains("HaveBlocks but dedup was not negotiated", Assert.IsType<ErrorResponse>(reply).Text);
        Assert.False(File.Exists(R("n.bin")));
    }

    [Fact]
    public void A_dedup_upload_ended_early_keeps_only_the_prefix_before_the_first_missing_block()
    {
        var store = new ContentStore(_cas, 0);
        var data = BlockCodecTests.RandomBytes(16 * MiB, 50);
        using var c = Open(store);
        // Seed the store with blocks 0 and 1 only.
        store.Store(data.AsSpan(0, 4 * MiB));
        store.Store(data.AsSpan(4 * MiB, 4 * MiB));
        c.Send(new PutRequest("p.bin", (ulong)data.Length, 0));
        var hashes = BlockHexes(data).SelectMany(Convert.FromHexString).ToArray();
        c.Send(new HaveBlocks(4 * MiB, hashes));
        var missing = Assert.IsType<MissingBlocks>(c.Receive());
        Assert.Equal([2, 3], Enumerable.Range(0, 4).Where(missing.IsMissing).ToArray());
        c.SendData(data.AsSpan(8 * MiB, 4 * MiB)); // block 2, then the client gives up
        c.Send(Done.Instance);
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("ended before block 3 of 4", e.Text);
        Assert.False(File.Exists(R("p.bin")));
        Assert.Equal(data.AsSpan(0, 12 * MiB).ToArray(), File.ReadAllBytes(Temporaries.PartialPath(R("p.bin"))));
        // The block that did arrive was kept for next time, and the session goes on.
        Assert.Contains(BlockHexes(data).ElementAt(2), StoredHexes());
        var next = BlockCodecTests.RandomBytes(5 * MiB, 51);
        Assert.Equal(new OkResponse(B3(next)), c.PutDedup("next.bin", next).Reply);
        Assert.Equal(Sha(next), Sha(File.ReadAllBytes(R("next.bin"))));
    }

    [Fact]
    public void A_missing_block_of_the_wrong_length_is_a_protocol_error()
    {
        var store = new ContentStore(_cas, 0);
        var data = BlockCodecTests.RandomBytes(16 * MiB, 60);
        using var c = Open(store);
        c.Send(new PutRequest("w.bin", (ulong)data.Length, 0));
        c.Send(new HaveBlocks(4 * MiB, BlockHexes(data).SelectMany(Convert.FromHexString).ToArray()));
        Assert.IsType<MissingBlocks>(c.Receive());
        c.SendData(data.AsSpan(0, MiB)); // block 0 cut to 1 MiB
        c.Writer.Flush();
        Assert.Contains("a dedup block of 4194304 bytes was expected, the frame carries 1048576", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Equal(1, c.WaitForExit());
        Assert.False(File.Exists(R("w.bin")));
    }
}
