using System.Security.Cryptography;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Codecs;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>Compression and dedup against the real <c>bcmr serve</c> program over its pipes, with its store in a temp
/// dir (BCMR_CAS_DIR); and <c>bcmr cas stats|prune|clear</c>. Bytes are compared with SHA-256, hashes with b3sum.</summary>
public sealed class ServeCodecProcessTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();
    private readonly string _root;
    private readonly string _cas;

    public ServeCodecProcessTests()
    {
        _root = _t["root"];
        _cas = _t["cas"];
        Directory.CreateDirectory(_root);
    }

    public void Dispose() => _t.Dispose();

    private string R(string rel) => Path.Combine(_root, rel);
    private static string Sha(byte[] b) => Convert.ToHexString(SHA256.HashData(b));
    private static string B3Sum(string path) => Tool.Output("b3sum", "--no-names", path);

    private Dictionary<string, string> Env(int? capMb = null)
    {
        var env = new Dictionary<string, string> { ["BCMR_CAS_DIR"] = _cas };
        if (capMb is { } c) env["BCMR_CAS_CAP_MB"] = c.ToString();
        return env;
    }

    private ServeConnection Serve(byte caps, Dictionary<string, string> env)
    {
        var c = ServeConnection.Start(_root, env);
        Assert.Equal(caps, c.Handshake(caps).Caps);
        return c;
    }

    private static void End(ServeConnection c)
    {
        c.EndSession();
        Assert.Equal(0, c.WaitForExit());
        Assert.DoesNotContain("Unhandled exception", c.Stderr);
    }

    [Fact]
    public void Compressed_Get_and_Put_through_the_real_server_are_byte_identical_and_smaller_on_the_wire()
    {
        var text = BlockCodecTests.SourceText(16 * MiB + 3, 1);
        var random = BlockCodecTests.RandomBytes(8 * MiB, 2);
        File.WriteAllBytes(R("text.txt"), text);
        File.WriteAllBytes(R("random.bin"), random);
        using var c = Serve(Caps.Lz4 | Caps.Zstd, Env());

        c.Send(new GetRequest("text.txt", 0));
        var (bytes, end) = c.ReceiveGet(out var stats);
        Assert.Equal(Sha(text), Sha(bytes));
        Assert.Equal(new OkResponse(B3Sum(R("text.txt"))), end);
        Assert.Equal(4, stats.Compressed);
        Assert.Equal(1, stats.Raw); // the 3-byte tail cannot shrink
        Assert.True(stats.WireBytes < text.Length / 3, $"{stats.WireBytes} bytes on the wire for {text.Length} of text");

        c.Send(new GetRequest("random.bin", 0));
        (bytes, _) = c.ReceiveGet(out stats);
        Assert.Equal(Sha(random), Sha(bytes));
        Assert.Equal(0, stats.Compressed);

        foreach (var codec in new[] { WireCodec.Lz4, WireCodec.Zstd })
        {
            long before = c.BytesSent;
            var ok = Assert.IsType<OkResponse>(c.PutEncoded($"up-{codec}.txt", text, codec));
            Assert.True(c.BytesSent - before < text.Length / 2);
            Assert.Equal(Sha(text), Sha(File.ReadAllBytes(R($"up-{codec}.txt"))));
            Assert.Equal(B3Sum(R($"up-{codec}.txt")), ok.Hash);
        }
        End(c);
        Trees.AssertNoStagingFiles(_root);
    }

    [Fact]
    public void A_client_without_codecs_gets_raw_Data_from_the_real_server()
    {
        var text = BlockCodecTests.SourceText(5 * MiB, 3);
        File.WriteAllBytes(R("t.txt"), text);
        using var c = Serve(Caps.Sync, Env()); // a bcmr peer built without compression
        c.Send(new GetRequest("t.txt", 0));
        var (bytes, _) = c.ReceiveGet(out var stats);
        Assert.Equal(text, bytes);
        Assert.Equal(0, stats.Compressed);
        Assert.Equal(2, stats.Raw);
        End(c);
    }

    [Fact]
    public void A_lying_block_is_refused_by_the_real_server_and_leaves_no_destination()
    {
        var text = BlockCodecTests.SourceText(MiB, 4);
        using var c = Serve(Caps.Zstd, Env());
        c.Send(new PutRequest("lie.txt", (ulong)text.Length, 0));
        var scratch = new byte[BlockCodec.MaxCompressedSize(text.Length)];
        Assert.True(BlockCodec.TryEncode(WireCodec.Zstd, text, scratch, out int n));
        c.Send(new DataCompressed(2, (uint)text.Length - 1, scratch[..n])); // one byte less than it decodes to
        c.Send(Done.Instance);
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("zstd block decodes to more than its declared 1048575 bytes", e.Text);
        Assert.False(File.Exists(R("lie.txt")));
        c.Send(new StatRequest("."));
        Assert.IsType<StatResponse>(c.Receive());
        End(c);
    }

    [Fact]
    public void A_repeat_64_MiB_upload_to_the_real_server_sends_under_1_percent_and_a_corrupted_blob_is_sent_again()
    {
        var data = BlockCodecTests.RandomBytes(64 * MiB, 5);
        using (var c = Serve(Caps.Dedup | Caps.Zstd | Caps.Lz4, Env()))
        {
            long before = c.BytesSent;
            var (reply, missing) = c.PutDedup("one.bin", data, WireCodec.Zstd);
            Assert.True(c.BytesSent - before > data.Length);
            Assert.Equal(16, Enumerable.Range(0, 16).Count(missing!.IsMissing));
            Assert.Equal(B3Sum(R("one.bin")), Assert.IsType<OkResponse>(reply).Hash);
            End(c);
        }
        using (var c = Serve(Caps.Dedup | Caps.Zstd | Caps.Lz4, Env()))
        {
            long before = c.BytesSent;
            var (reply, missing) = c.PutDedup("two.bin", data, WireCodec.Zstd);
            long sent = c.BytesSent - before;
            Assert.True(sent < data.Length / 100, $"second upload sent {sent} bytes");
            Assert.Equal(0, Enumerable.Range(0, 16).Count(missing!.IsMissing));
            Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("two.bin"))));
            Assert.Equal(B3Sum(R("two.bin")), Assert.IsType<OkResponse>(reply).Hash);
            End(c);
        }

        // Corrupt block 9's blob on disk (same length), then upload again: exactly that block crosses the wire.
        var hex = Blake3.ToHex(Blake3.Hash(data.AsSpan(9 * 4 * MiB, 4 * MiB)));
        var blob = Path.Combine(_cas, hex[..2], hex[2..4], hex[4..] + ".blk");
        var bytes = File.ReadAllBytes(blob);
        bytes[12345] ^= 0x10;
        File.WriteAllBytes(blob, bytes);
        using (var c = Serve(Caps.Dedup, Env()))
        {
            long before = c.BytesSent;
            var (reply, missing) = c.PutDedup("three.bin", data);
            Assert.Equal([9], Enumerable.Range(0, 16).Where(missing!.IsMissing).ToArray());
            Assert.InRange(c.BytesSent - before, 4 * MiB, 4 * MiB + 64 * 1024);
            Assert.Equal(Sha(data), Sha(File.ReadAllBytes(R("three.bin"))));
            Assert.Equal(B3Sum(R("three.bin")), Assert.IsType<OkResponse>(reply).Hash);
            End(c);
        }
        Assert.Equal(data.AsSpan(9 * 4 * MiB, 4 * MiB).ToArray(), File.ReadAllBytes(blob)); // repaired
    }

    [Fact]
    public void Three_24_MiB_uploads_with_BCMR_CAS_CAP_MB_32_leave_at_most_32_MiB_of_the_newest_blocks()
    {
        var files = Enumerable.Range(0, 3).Select(i => BlockCodecTests.RandomBytes(24 * MiB, 10 + i)).ToArray();
        for (int i = 0; i < 3; i++)
        {
            using var c = Serve(Caps.Dedup, Env(capMb: 32));
            Assert.IsType<OkResponse>(c.PutDedup($"f{i}.bin", files[i]).Reply);
            End(c);
        }
        var stats = BcmrRunner.Run(["--json", "cas", "stats"], Env(capMb: 32));
        stats.AssertExit(0);
        var s = stats.JsonLines.Single();
        Assert.True(s.GetProperty("bytes").GetInt64() <= 32L * MiB, stats.Stdout);
        Assert.Equal(32L * MiB, s.GetProperty("cap_bytes").GetInt64());
        var kept = Directory.EnumerateFiles(_cas, "*.blk", SearchOption.AllDirectories).Select(p => File.ReadAllBytes(p)).Select(Sha).ToHashSet();
        Assert.Equal(8, kept.Count);
        for (int b = 0; b < 6; b++) Assert.Contains(Sha(files[2].AsSpan(b * 4 * MiB, 4 * MiB).ToArray()), kept);
    }

    [Fact]
    public void Two_real_servers_uploading_into_one_store_at_once_both_end_exact()
    {
        var shared = BlockCodecTests.RandomBytes(32 * MiB, 20);
        var uploads = Enumerable.Range(0, 2).Select(k => Task.Run(() =>
        {
            for (int round = 0; round < 2; round++)
            {
                using var c = Serve(Caps.Dedup | Caps.Lz4, Env(capMb: 16)); // each prunes the other's blocks
                var (reply, _) = c.PutDedup($"s{k}-{round}.bin", shared, WireCodec.Lz4);
                Assert.IsType<OkResponse>(reply);
                End(c);
            }
        })).ToArray();
        Assert.True(Task.WaitAll(uploads, TimeSpan.FromMinutes(3)));
        for (int k = 0; k < 2; k++)
            for (int round = 0; round < 2; round++)
                Assert.Equal(Sha(shared), Sha(File.ReadAllBytes(R($"s{k}-{round}.bin"))));
        Assert.Empty(Directory.EnumerateFiles(_cas, "*.tmp.*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Compression_bombs_and_lying_sizes_keep_the_real_server_memory_bounded()
    {
        // 48 frames of a few hundred bytes that each expand to 4 MiB of zeros (legitimately declared), then frames
        // that lie about expanding further: the server decodes each into its one 4 MiB buffer and nothing more.
        var zeros = new byte[4 * MiB];
        var bomb = new ZstdSharp.Compressor(3).Wrap(zeros).ToArray();
        var huge = new ZstdSharp.Compressor(3).Wrap(new byte[64 * MiB]).ToArray();
        Assert.True(bomb.Length < 1024 && huge.Length < 8192);
        using var c = Serve(Caps.Zstd, Env());
        c.Send(new StatRequest("."));
        Assert.IsType<StatResponse>(c.Receive());
        Thread.Sleep(300);
        long baseline = c.ResidentKiB();

        c.Send(new PutRequest("zeros.bin", 48UL * 4 * MiB, 0));
        for (int i = 0; i < 48; i++) c.Send(new DataCompressed(2, 4 * MiB, bomb));
        c.Send(Done.Instance);
        var ok = Assert.IsType<OkResponse>(c.Receive());
        Assert.Equal(B3Sum(R("zeros.bin")), ok.Hash);
        Assert.Equal(48L * 4 * MiB, new FileInfo(R("zeros.bin")).Length);

        c.Send(new PutRequest("liar.bin", 64 * MiB, 0));
        c.Send(new DataCompressed(2, 4 * MiB, huge)); // decodes to 64 MiB, declares 4
        for (int i = 0; i < 15; i++) c.Send(new DataCompressed(2, 4 * MiB, huge)); // skipped by their declared sizes
        c.Send(Done.Instance);
        Assert.Contains("zstd block decodes to more than its declared 4194304 bytes", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.False(File.Exists(R("liar.bin")));

        long after = c.ResidentKiB();
        // The decode buffer, the block buffer and the compressor's tables: well under 64 MiB.
        Assert.True(after - baseline < 40 * 1024, $"RSS grew from {baseline} KiB to {after} KiB");
        End(c);
    }

    // ---- bcmr cas ------------------------------------------------------------------------------------------------

    private void Seed(string dir, int blobs, int size)
    {
        var store = new Bcmr.Engine.Server.ContentStore(dir, 0);
        for (int i = 0; i < blobs; i++) store.Store(BlockCodecTests.RandomBytes(size, 100 + i));
    }

    [Fact]
    public void Cas_stats_prune_and_clear_report_in_text_and_json()
    {
        Seed(_cas, 5, MiB);
        var env = Env(capMb: 3);

        var text = BcmrRunner.Run(["cas", "stats"], env);
        text.AssertExit(0);
        Assert.Equal($"{_cas}: 5 blobs, 5.0 MiB (5242880 bytes); cap 3.0 MiB", text.Stdout.Trim());

        var prune = BcmrRunner.Run(["--json", "cas", "prune", "--max-size", "4"], env);
        prune.AssertExit(0);
        var p = prune.JsonLines.Single();
        Assert.Equal("cas_prune", p.GetProperty("type").GetString());
        Assert.Equal(1, p.GetProperty("blobs_freed").GetInt64());
        Assert.Equal(MiB, p.GetProperty("bytes_freed").GetInt64());
        Assert.Equal(4, p.GetProperty("blobs_left").GetInt64());
        Assert.Equal(4L * MiB, p.GetProperty("max_bytes").GetInt64());

        var toCap = BcmrRunner.Run(["cas", "prune"], env); // default: the cap, 3 MiB
        toCap.AssertExit(0);
        Assert.Contains("removed 1 blob (1.0 MiB), 3 left (3.0 MiB)", toCap.Stdout);

        var clear = BcmrRunner.Run(["--json", "cas", "clear"], env);
        var c = clear.JsonLines.Single();
        Assert.Equal(3, c.GetProperty("blobs_freed").GetInt64());
        Assert.Equal(0, c.GetProperty("blobs_left").GetInt64());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_cas));

        var bad = BcmrRunner.Run(["cas", "prune", "--max-size", "-5"], env);
        bad.AssertExit(2);
        Assert.Contains("--max-size must be a number of MiB, 0 or more", bad.Stderr);
    }

    [Fact]
    public void Cas_defaults_to_the_data_directory_and_an_unbounded_cap_prunes_nothing()
    {
        var xdg = _t["xdg"];
        Seed(Path.Combine(xdg, "bcmr", "cas"), 2, 1000);
        var env = new Dictionary<string, string> { ["XDG_DATA_HOME"] = xdg, ["BCMR_CAS_CAP_MB"] = "0" };
        var stats = BcmrRunner.Run(["--json", "cas", "stats"], env).JsonLines.Single();
        Assert.Equal(Path.Combine(xdg, "bcmr", "cas"), stats.GetProperty("directory").GetString());
        Assert.Equal(2, stats.GetProperty("blobs").GetInt64());
        Assert.Equal(0, stats.GetProperty("cap_bytes").GetInt64());
        var prune = BcmrRunner.Run(["cas", "prune"], env);
        Assert.Contains("no cap set (BCMR_CAS_CAP_MB=0) and no --max-size: nothing pruned", prune.Stdout);
        Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(xdg, "bcmr", "cas"), "*.blk", SearchOption.AllDirectories).Count());
    }
}
