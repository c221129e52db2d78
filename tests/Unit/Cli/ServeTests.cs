using Bcmr.Engine.Local;
using System.Security.Cryptography;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>The real <c>bcmr serve --root DIR</c> driven over its stdin/stdout with the protocol codec. Byte identity
/// is checked with SHA-256 and hashes with b3sum, both independent of the code under test.</summary>
public sealed class ServeTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();
    private readonly string _root;
    private readonly string _src;

    public ServeTests()
    {
        _root = _t["root"];
        _src = _t["src"];
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_src);
    }

    public void Dispose() => _t.Dispose();

    private string R(string rel) => Path.Combine(_root, rel);

    private string WriteRoot(string rel, int size, int seed) => _t.WriteRandom(Path.Combine("root", rel), size, seed);

    private static string B3Sum(string path) => Tool.Output("b3sum", "--no-names", path);

    /// <summary>b3sum of some bytes, through a file outside the root.</summary>
    private string B3Sum(ReadOnlySpan<byte> bytes)
    {
        var file = _t["oracle-" + Guid.NewGuid().ToString("N")];
        File.WriteAllBytes(file, bytes.ToArray());
        try { return B3Sum(file); }
        finally { File.Delete(file); }
    }

    private static string Sha(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes));

    private static long Mtime(string path) => new DateTimeOffset(File.GetLastWriteTimeUtc(path)).ToUnixTimeSeconds();

    /// <summary>Exited by itself with a code of ours (not a signal, not the runtime's crash code) and printed no
    /// unhandled-exception trace.</summary>
    private static void AssertCleanExit(ServeConnection c, params int[] allowed)
    {
        int code = c.WaitForExit();
        Assert.True(allowed.Contains(code), $"exit code {code}; stderr:\n{c.Stderr}");
        Assert.DoesNotContain("Unhandled exception", c.Stderr);
        Assert.DoesNotContain("   at ", c.Stderr);
    }

    [Fact]
    public void Every_request_round_trips_with_byte_identical_results()
    {
        var sizes = new Dictionary<string, int>
        {
            ["empty"] = 0, ["one"] = 1, ["block"] = 4 * MiB, ["block-plus-one"] = 4 * MiB + 1,
            ["big"] = 9 * MiB + 77, ["sub/deep/x.txt"] = 1234,
        };
        int seed = 1;
        foreach (var (name, size) in sizes) WriteRoot(name, size, seed++);
        Directory.CreateDirectory(R("sub/empty-dir"));

        using var c = ServeConnection.Start(_root);
        Assert.Equal(new Welcome(1, Caps.Lz4 | Caps.Zstd | Caps.Dedup | Caps.Sync), c.Handshake(0xFF & ~Caps.Fast & ~Caps.Extended));

        // Stat
        foreach (var (name, size) in sizes)
        {
            c.Send(new StatRequest(name));
            Assert.Equal(new StatResponse((ulong)size, Mtime(R(name)), false), c.Receive());
        }
        c.Send(new StatRequest("sub"));
        Assert.Equal(new StatResponse(0, Mtime(R("sub")), true), c.Receive());

        // List, against a walk of the tree
        c.Send(new ListRequest(""));
        var listed = Assert.IsType<ListResponse>(c.Receive()).Entries
            .Select(e => (e.Path, e.Size, e.Mtime, e.IsDir)).OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
        var walked = Directory.EnumerateFileSystemEntries(_root, "*", SearchOption.AllDirectories)
            .Select(p => (Path.GetRelativePath(_root, p), Directory.Exists(p) ? 0UL : (ulong)new FileInfo(p).Length, Mtime(p), Directory.Exists(p)))
            .OrderBy(e => e.Item1, StringComparer.Ordinal).ToList();
        Assert.Equal(walked, listed);

        // Hash: whole files and a range
        foreach (var name in sizes.Keys)
        {
            c.Send(new HashRequest(name, 0, null));
            Assert.Equal(new HashResponse(B3Sum(R(name))), c.Receive());
        }
        var big = File.ReadAllBytes(R("big"));
        c.Send(new HashRequest("big", 5 * MiB, MiB));
        Assert.Equal(new HashResponse(B3Sum(big.AsSpan(5 * MiB, MiB))), c.Receive());

        // Get: whole files, then from an offset (Ok still hashes the whole file)
        foreach (var name in sizes.Keys)
        {
            c.Send(new GetRequest(name, 0));
            var (bytes, end) = c.ReceiveGet();
            Assert.Equal(Trees.Sha256(R(name)), Sha(bytes));
            Assert.Equal(new OkResponse(B3Sum(R(name))), end);
        }
        c.Send(new GetRequest("big", 5 * MiB + 3));
        var (tail, tailEnd) = c.ReceiveGet();
        Assert.Equal(Sha(big[(5 * MiB + 3)..]), Sha(tail));
        Assert.Equal(new OkResponse(B3Sum(R("big"))), tailEnd);

        // Put: a new file in a new directory
        var upload = _t.WriteRandom("src/new.bin", 9 * MiB + 5, 99);
        Assert.Equal(new OkResponse(B3Sum(upload)), c.Put("up/load/new.bin", File.ReadAllBytes(upload)));
        Assert.Equal(Trees.Sha256(upload), Trees.Sha256(R("up/load/new.bin")));
        // Put over an existing file replaces it
        var smaller = _t.WriteRandom("src/smaller.bin", 10, 98);
        Assert.Equal(new OkResponse(B3Sum(smaller)), c.Put("big", File.ReadAllBytes(smaller)));
        Assert.Equal(Trees.Sha256(smaller), Trees.Sha256(R("big")));

        // Mkdir
        c.Send(new MkdirRequest("m/n/o"));
        Assert.Equal(OkResponse.Empty, c.Receive());
        Assert.True(Directory.Exists(R("m/n/o")));
        c.Send(new MkdirRequest("m/n"));
        Assert.Equal(OkResponse.Empty, c.Receive());

        // Resume: the last full 4 MiB block of a complete file; nothing for a missing one
        var upBytes = File.ReadAllBytes(upload);
        c.Send(new ResumeRequest("up/load/new.bin"));
        Assert.Equal(new ResumeResponse((ulong)upBytes.Length, B3Sum(upBytes.AsSpan(4 * MiB, 4 * MiB))), c.Receive());
        c.Send(new ResumeRequest("nothing-here"));
        Assert.Equal(new ResumeResponse(0, null), c.Receive());

        // Truncate
        c.Send(new TruncateRequest("tr.bin", 12345));
        Assert.Equal(OkResponse.Empty, c.Receive());
        Assert.Equal(Sha(new byte[12345]), Trees.Sha256(R("tr.bin")));

        c.EndSession();
        AssertCleanExit(c, 0);
        Assert.Equal("", c.Stderr);
        Trees.AssertNoStagingFiles(_root);
    }

    [Fact]
    public void The_fast_capability_skips_the_server_hash_on_Get()
    {
        WriteRoot("f.bin", 5 * MiB, 3);
        using var c = ServeConnection.Start(_root);
        Assert.Equal(new Welcome(1, Caps.Fast), c.Handshake(Caps.Fast));
        c.Send(new GetRequest("f.bin", 0));
        var (bytes, end) = c.ReceiveGet();
        Assert.Equal(Trees.Sha256(R("f.bin")), Sha(bytes));
        Assert.Equal(OkResponse.Empty, end);
    }

    [Fact]
    public void Hello_without_a_caps_byte_is_answered_with_no_capabilities()
    {
        using var c = ServeConnection.Start(_root);
        c.SendRaw(Convert.FromHexString("0200000001" + "01"));
        Assert.Equal(new Welcome(1, 0), c.Receive());
        c.CloseInput();
        AssertCleanExit(c, 0);
    }

    [Fact]
    public void Two_hundred_pipelined_puts_are_answered_in_order()
    {
        const int n = 200;
        var rng = new Random(5);
        var names = new List<string>();
        for (int i = 0; i < n; i++)
        {
            var name = $"f{i:D3}.bin";
            _t.WriteRandom("src/" + name, i % 17 == 0 ? 0 : rng.Next(1, 20000), 1000 + i);
            names.Add(name);
        }
        var expected = Tool.Output("b3sum", ["--no-names", .. names.Select(nm => Path.Combine(_src, nm))]).Split('\n');

        using var c = ServeConnection.Start(_root);
        c.Handshake();
        var writer = Task.Run(() =>
        {
            int i = 0;
            foreach (var name in names)
            {
                var content = File.ReadAllBytes(Path.Combine(_src, name));
                c.Writer.Write(new PutRequest("pipe/" + name, (ulong)content.Length, 0));
                c.SendData(content);
                // Half the Puts end their data with Done as bcmr 0.6 clients do, half without: both are accepted.
                if (i++ % 2 == 0) c.Writer.Write(Done.Instance);
            }
            c.Writer.Flush();
        });
        var replies = new List<Message>();
        for (int i = 0; i < n; i++) replies.Add(c.Receive());
        writer.GetAwaiter().GetResult();

        for (int i = 0; i < n; i++) Assert.Equal(new OkResponse(expected[i]), replies[i]);
        Trees.AssertIdentical(_src, R("pipe"));
        c.EndSession();
        AssertCleanExit(c, 0);
    }

    [Fact]
    public void An_upload_cut_off_mid_stream_is_kept_as_a_partial_and_resumes()
    {
        var source = _t.WriteRandom("src/big.bin", 10 * MiB + 321, 7);
        var data = File.ReadAllBytes(source);

        using (var c = ServeConnection.Start(_root))
        {
            c.Handshake();
            c.Send(new PutRequest("dir/big.bin", (ulong)data.Length, 0));
            c.SendData(data.AsSpan(0, 6 * MiB));
            // Half of the next frame, then the connection drops.
            var next = MessageCodec.Encode(new Data(data[(6 * MiB)..(7 * MiB)]));
            c.SendRaw(next.AsSpan(0, next.Length / 2));
            c.CloseInput();
            AssertCleanExit(c, 0, 1);
            Assert.Contains("kept 6291456 bytes", c.Stderr);
        }

        Assert.False(File.Exists(R("dir/big.bin")));
        var partial = Temporaries.PartialPath(R("dir/big.bin"));
        Assert.Equal(Sha(data[..(6 * MiB)]), Trees.Sha256(partial));
        Trees.AssertNoStagingFiles(_root, partials: false); // the partial file is expected here

        using (var c = ServeConnection.Start(_root))
        {
            c.Handshake();
            c.Send(new ResumeRequest("dir/big.bin"));
            Assert.Equal(new ResumeResponse(6 * MiB, B3Sum(data.AsSpan(0, 4 * MiB))), c.Receive());
            c.Send(new PutRequest("dir/big.bin", (ulong)data.Length, 6 * MiB));
            c.SendData(data.AsSpan(6 * MiB));
            c.Writer.Flush();
            Assert.Equal(new OkResponse(B3Sum(source)), c.Receive());
            c.EndSession();
            AssertCleanExit(c, 0);
        }
        Assert.Equal(Trees.Sha256(source), Trees.Sha256(R("dir/big.bin")));
        Assert.False(File.Exists(partial));
        Trees.AssertNoStagingFiles(_root);
    }

    [Fact]
    public void A_signal_mid_upload_keeps_the_partial_file()
    {
        var data = new byte[3 * MiB];
        new Random(8).NextBytes(data);
        using var c = ServeConnection.Start(_root);
        c.Handshake();
        c.Send(new PutRequest("sig.bin", 10 * MiB, 0));
        c.SendData(data);
        c.Writer.Flush();
        // Wait until the server has written what it was sent.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            var staging = Directory.GetFiles(_root, "*.bcmr-tmp", new EnumerationOptions { AttributesToSkip = 0 });
            if (staging.Length == 1 && new FileInfo(staging[0]).Length == data.Length) break;
            Thread.Sleep(20);
        }
        Thread.Sleep(500); // the bytes are in the file; let the server account for them
        Assert.False(c.Process!.HasExited, "bcmr serve ended early: " + (c.Process.HasExited ? c.Stderr : ""));
        Tool.Output("kill", "-TERM", c.Process.Id.ToString());
        AssertCleanExit(c, 130);
        Assert.False(File.Exists(R("sig.bin")));
        Assert.Equal(Sha(data), Trees.Sha256(Temporaries.PartialPath(R("sig.bin"))));
        Trees.AssertNoStagingFiles(_root, partials: false); // the partial file is expected here
    }

    [Fact]
    public void Paths_outside_the_root_are_refused_and_nothing_is_written_outside()
    {
        var outside = _t["outside"];
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "keep.txt"), "keep");
        File.CreateSymbolicLink(R("link"), outside);
        var before = Trees.Describe(outside);

        using var c = ServeConnection.Start(_root);
        c.Handshake();
        var requests = new List<(Message Request, string ClientPath, byte[]? Data)>
        {
            (new StatRequest("../x"), "../x", null),
            (new StatRequest("/etc/passwd"), "/etc/passwd", null),
            (new GetRequest("/etc/passwd", 0), "/etc/passwd", null),
            (new HashRequest("/etc/passwd", 0, null), "/etc/passwd", null),
            (new ListRequest("link"), "link", null),
            (new PutRequest("../escape.txt", 5, 0), "../escape.txt", "hello"u8.ToArray()),
            (new PutRequest("link/evil.txt", 5, 0), "link/evil.txt", "hello"u8.ToArray()),
            (new PutRequest(outside + "/abs.txt", 5, 0), outside + "/abs.txt", "hello"u8.ToArray()),
            (new MkdirRequest("link/newdir"), "link/newdir", null),
            (new TruncateRequest("../t.bin", 100), "../t.bin", null),
            (new ResumeRequest("link/keep.txt"), "link/keep.txt", null),
        };
        foreach (var (request, _, data) in requests)
        {
            c.Writer.Write(request);
            if (data is not null) c.SendData(data);
        }
        c.Writer.Flush();
        var root = new DirectoryInfo(_root).FullName;
        foreach (var (_, clientPath, _) in requests)
        {
            var e = Assert.IsType<ErrorResponse>(c.Receive());
            Assert.StartsWith(string.Format(RootJail.OutsideRootFormat, clientPath, root), e.Text);
            Assert.True(RootJail.IsOutsideRootMessage(e.Text));
        }
        c.Send(new StatRequest("link-free-and-missing"));
        Assert.Contains("No such file or directory", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.EndSession();
        AssertCleanExit(c, 0);

        Assert.Equal(before, Trees.Describe(outside));
        Assert.Equal(["outside", "root", "src"], Directory.GetFileSystemEntries(_t.Path).Select(p => Path.GetFileName(p)!).Order().ToArray());
        File.Delete(R("link"));
    }

    public static TheoryData<string, string, string?> BadInput() => new()
    {
        // name, hex bytes after nothing (no handshake unless the bytes hold one), expected Error fragment
        { "not hello", "0a00000003" + "05000000" + "612e747874", "expected Hello" },
        { "wrong version", "0300000001" + "0200", "protocol version mismatch: client=2 server=1" },
        { "oversized", "030000000101" + "00" + "ffffffff84", "above the limit" },
        { "zero length", "030000000101" + "00" + "00000000", "empty frame" },
        { "unknown type", "030000000101" + "00" + "020000004200", "unknown message type 0x42" },
        { "truncated header", "030000000101" + "00" + "0a00", null },
        { "truncated payload", "030000000101" + "00" + "0a00000003" + "05000000" + "61", null },
        { "garbage first", "deadbeefcafebabe0102030405", null },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void Bad_input_gets_an_error_where_possible_and_a_clean_exit(string name, string hex, string? error)
    {
        using var c = ServeConnection.Start(_root);
        c.SendRaw(Convert.FromHexString(hex));
        c.CloseInput();
        var replies = new List<Message>();
        while (c.ReceiveOrEnd() is { } m) replies.Add(m);
        AssertCleanExit(c, 1);
        if (error is not null)
            Assert.Contains(error, Assert.IsType<ErrorResponse>(replies[^1]).Text);
        Assert.DoesNotContain(replies, m => m is not (Welcome or ErrorResponse));
        _ = name;
    }

    [Fact]
    public void Random_garbage_never_crashes_the_server()
    {
        var rng = new Random(11);
        for (int run = 0; run < 8; run++)
        {
            var garbage = new byte[rng.Next(1, 64 * 1024)];
            rng.NextBytes(garbage);
            using var c = ServeConnection.Start(_root);
            bool handshake = run % 2 == 0;
            if (handshake) c.Handshake();
            try { c.SendRaw(garbage); }
            catch (IOException) { /* the server may close before reading it all */ }
            try { c.CloseInput(); } catch (IOException) { }
            while (c.ReceiveOrEnd() is not null) { }
            AssertCleanExit(c, 0, 1);
        }
        Assert.Empty(Directory.GetFileSystemEntries(_root));
    }

    [Fact]
    public void Memory_stays_bounded_whatever_lengths_a_peer_declares()
    {
        using var c = ServeConnection.Start(_root);
        c.Handshake();
        c.Send(new StatRequest("."));
        Assert.IsType<StatResponse>(c.Receive());
        Thread.Sleep(300);
        long baseline = c.ResidentKiB();

        // A frame that declares the largest length and then sends only a little: the server must not commit 16 MiB.
        var header = new byte[5];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)Wire.FrameLimit);
        header[4] = (byte)MessageType.Error;
        c.SendRaw(header);
        c.SendRaw(new byte[1000]);
        Thread.Sleep(500);
        long declared = c.ResidentKiB();
        Assert.True(declared - baseline < 4 * 1024, $"RSS grew from {baseline} KiB to {declared} KiB on a declared 16 MiB frame");

        // Finish it (a 16 MiB frame of a server message: answered with an error), and send four more.
        var rest = new byte[Wire.FrameLimit - 1 - 1000];
        c.SendRaw(rest);
        var full = new byte[4 + Wire.FrameLimit];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(full, (uint)Wire.FrameLimit);
        full[4] = (byte)MessageType.Ok;
        for (int i = 0; i < 4; i++) c.SendRaw(full);
        for (int i = 0; i < 5; i++) Assert.IsType<ErrorResponse>(c.Receive());
        long after = c.ResidentKiB();
        Assert.True(after - baseline < 80 * 1024, $"RSS grew from {baseline} KiB to {after} KiB after five 16 MiB frames");

        // A 4 GiB length is refused at once.
        c.SendRaw(Convert.FromHexString("ffffffff84"));
        Assert.Contains("above the limit", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        AssertCleanExit(c, 1);
    }
}
