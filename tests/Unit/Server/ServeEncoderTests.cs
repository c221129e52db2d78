using System.IO.Pipes;
using System.Net;
using System.Security.Cryptography;
using Bcmr.Engine.Local;
using Bcmr.Engine.Client;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Engine.Transfers;
using Bcmr.Tests.Codecs;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>Multi-block Gets and uploads with compression running off the I/O thread (BlockEncoder), in process (Gets
/// over OS pipes, uploads over a loopback TcpChannel to a ServeListener): text and random files round-trip byte-identically with zstd and lz4, each block sent the cheaper way,
/// and the wire bytes counted per block as before.</summary>
public sealed class ServeEncoderTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    private static string Sha(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    public static TheoryData<WireCodec, bool> CodecsAndKinds => new()
    {
        { WireCodec.Zstd, true }, { WireCodec.Lz4, true }, { WireCodec.Zstd, false }, { WireCodec.Lz4, false },
    };

    private static byte[] Content(bool text, int size, int seed) =>
        text ? BlockCodecTests.SourceText(size, seed) : BlockCodecTests.RandomBytes(size, seed);

    [Theory]
    [MemberData(nameof(CodecsAndKinds))]
    public void A_multi_block_Get_round_trips_and_compresses_exactly_the_blocks_that_pay(WireCodec codec, bool text)
    {
        int size = 17 * MiB + 5; // 5 blocks, the last one short
        var data = Content(text, size, text ? 70 : 71);
        _t.WriteFile("src.bin", data);
        using var c = ServeConnection.InProcess(_t.Path);
        c.Handshake(codec == WireCodec.Zstd ? Caps.Zstd : Caps.Lz4);
        Assert.Equal(codec, c.Session!.Codec);
        for (int round = 0; round < 2; round++) // the session's encoder serves Get after Get
        {
            c.Send(new GetRequest("src.bin", 0));
            var (bytes, end) = c.ReceiveGet(out var stats);
            Assert.Equal(Sha(data), Sha(bytes));
            Assert.Equal(new OkResponse(Blake3.ToHex(Blake3.Hash(data))), end);
            if (text)
            {
                Assert.Equal((5, 0), (stats.Compressed, stats.Raw));
                Assert.True(stats.WireBytes < size / 2, $"{codec}: {stats.WireBytes} bytes on the wire for {size}");
            }
            else
            {
                Assert.Equal((0, 5), (stats.Compressed, stats.Raw));
                Assert.Equal(size + 5 * 9, stats.WireBytes);
            }
        }
    }

    [Fact]
    public void A_Get_from_an_offset_with_text_and_random_blocks_still_hashes_the_whole_file()
    {
        var file = BlockCodecTests.SourceText(9 * MiB, 72).Concat(BlockCodecTests.RandomBytes(9 * MiB, 73)).Concat(BlockCodecTests.SourceText(6 * MiB, 74)).ToArray();
        _t.WriteFile("m.bin", file);
        using var c = ServeConnection.InProcess(_t.Path);
        c.Handshake(Caps.Zstd);
        c.Send(new GetRequest("m.bin", 3 * MiB + 7));
        var (bytes, end) = c.ReceiveGet(out var stats);
        Assert.Equal(Sha(file.AsSpan(3 * MiB + 7).ToArray()), Sha(bytes));
        Assert.Equal(new OkResponse(Blake3.ToHex(Blake3.Hash(file))), end);
        Assert.Equal(6, stats.Compressed + stats.Raw);
        Assert.True(stats.Compressed >= 3 && stats.Raw >= 1, $"{stats.Compressed} compressed, {stats.Raw} raw");
    }

    /// <summary>An upload through the real client code (RemoteTransfer) to a ServeListener in this process (the server
    /// caps and store under the test's control), over a TcpChannel; <paramref name="encoderWorkers"/>: the client's
    /// compressing threads (-1: the default).</summary>
    private (TransferSummary Summary, List<CopyResult> Results) Upload(string source, string remotePath, string compress, byte serverCaps, bool recursive = false,
        int encoderWorkers = -1)
    {
        var root = Directory.CreateDirectory(_t["remote"]).FullName;
        var store = new ContentStore(_t["cas"], 0);
        var results = new List<CopyResult>();
        var log = new StringWriter();
        var listener = ServeListener.Start(new IPEndPoint(IPAddress.Loopback, 0),
            new ServeOptions { Root = root, Capabilities = serverCaps, Store = store, Log = TextWriter.Synchronized(log), Settings = TestSettings.Isolated }, allowRemote: false);
        using var stop = new CancellationTokenSource();
        var server = new Thread(() => listener.Run(stop.Token)) { IsBackground = true, Name = "serve-listener" };
        server.Start();
        try
        {
            var request = new CopyRequest
            {
                Sources = [source], Destination = "in-process:" + remotePath, Compress = compress, Recursive = recursive,
                OpenChannel = _ => TcpChannel.Connect(listener.LocalEndpoint),
            };
            var transfer = new RemoteTransfer(request, null, r => { lock (results) results.Add(r); }, new PathFilter([]), CancellationToken.None)
            {
                EncoderWorkers = encoderWorkers >= 0 ? encoderWorkers : BlockEncoder.DefaultWorkers,
            };
            var summary = transfer.Run();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            int Ended() { lock (log) return log.ToString().Split('\n').Count(l => l.Contains("session ended")); }
            while (Ended() < listener.ConnectionsServed && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Assert.True(Ended() == listener.ConnectionsServed, "the session did not end:\n" + log);
            return (summary, results);
        }
        finally
        {
            stop.Cancel();
            Assert.True(server.Join(TimeSpan.FromSeconds(30)), "the listener did not stop");
            listener.Dispose();
        }
    }

    [Fact]
    public void Without_encoder_workers_a_Get_and_an_upload_compress_on_the_io_thread_and_round_trip()
    {
        // 0 workers is the benchmark's "off" (bench/CodecBench encoder), passed in as the server's and the client's
        // option: the bytes and the codec choices are the same as with workers.
        int size = 9 * MiB + 5;
        var data = Content(text: true, size, 75);
        _t.WriteFile("src.bin", data);
        using (var c = ServeConnection.InProcess(_t.Path, encoderWorkers: 0))
        {
            c.Handshake(Caps.Zstd);
            c.Send(new GetRequest("src.bin", 0));
            var (bytes, end) = c.ReceiveGet(out var stats);
            Assert.Equal(Sha(data), Sha(bytes));
            Assert.Equal(new OkResponse(Blake3.ToHex(Blake3.Hash(data))), end);
            Assert.Equal((3, 0), (stats.Compressed, stats.Raw));
        }
        var (summary, results) = Upload(_t["src.bin"], "up.bin", "zstd", (byte)(ServeSession.SupportedCaps & ~Caps.Dedup), encoderWorkers: 0);
        Assert.True(summary.Succeeded, string.Join("; ", summary.Failures.Select(f => f.Message)) + summary.Fatal?.Message);
        Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), Assert.Single(results).Blake3);
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(_t["remote/up.bin"])));
        Assert.True(Assert.Single(results).WireBytes < size / 2);
    }

    public static TheoryData<string, bool, bool> UploadCases => new()
    {
        { "zstd", true, false }, { "lz4", true, false }, { "zstd", false, false }, { "lz4", false, false },
        { "zstd", true, true }, { "lz4", false, true },
    };

    [Theory]
    [MemberData(nameof(UploadCases))]
    public void A_multi_block_upload_round_trips_with_the_wire_bytes_counted_per_block(string compress, bool text, bool dedup)
    {
        int size = 21 * MiB + 3; // 6 blocks; above the dedup threshold
        var data = Content(text, size, text ? 80 : 81);
        _t.WriteFile("src.bin", data);
        byte caps = dedup ? ServeSession.SupportedCaps : (byte)(ServeSession.SupportedCaps & ~Caps.Dedup);
        var (summary, results) = Upload(_t["src.bin"], "up.bin", compress, caps);
        Assert.True(summary.Succeeded, string.Join("; ", summary.Failures.Select(f => f.Message)) + summary.Fatal?.Message);
        var result = Assert.Single(results);
        Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), result.Blake3);
        Assert.Equal(Sha(data), Sha(File.ReadAllBytes(_t["remote/up.bin"])));
        Assert.Equal(0, result.DedupBlocks);
        if (text)
            Assert.True(result.WireBytes < size / 2, $"{compress}: {result.WireBytes} payload bytes for {size}");
        else
            Assert.Equal(size, result.WireBytes); // every block raw: exactly the file
        Assert.Equal(result.WireBytes, summary.WireBytes);
        Trees.AssertNoStagingFiles(_t["remote"]);
    }

    [Fact]
    public void A_tree_of_small_and_large_files_uploads_whole()
    {
        Directory.CreateDirectory(_t["tree/sub"]);
        var files = new Dictionary<string, byte[]>
        {
            ["tree/empty"] = [],
            ["tree/one.txt"] = BlockCodecTests.SourceText(1000, 90),
            ["tree/block.txt"] = BlockCodecTests.SourceText(4 * MiB, 91),
            ["tree/sub/random.bin"] = BlockCodecTests.RandomBytes(9 * MiB + 1, 92),
            ["tree/sub/text.txt"] = BlockCodecTests.SourceText(13 * MiB + 11, 93),
        };
        foreach (var (rel, content) in files) _t.WriteFile(rel, content);
        var (summary, _) = Upload(_t["tree"], ".", "zstd", (byte)(ServeSession.SupportedCaps & ~Caps.Dedup), recursive: true);
        var root = _t["remote"];
        Assert.True(summary.Succeeded, string.Join("; ", summary.Failures.Select(f => f.Message)) + summary.Fatal?.Message);
        Assert.Equal(files.Count, summary.Files);
        foreach (var (rel, content) in files)
            Assert.Equal(Sha(content), Sha(File.ReadAllBytes(Path.Combine(root, rel))));
    }
}
