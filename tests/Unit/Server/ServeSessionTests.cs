using System.IO.Pipes;
using Bcmr.Engine.Local;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>The server loop in process, over real pipes: the rules of Put, partial files, resume, Done, listing and
/// error recovery. (tests/Unit/Cli/ServeTests.cs drives the real program.)</summary>
public sealed class ServeSessionTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();
    private string Root => _t.Path;

    public void Dispose() => _t.Dispose();

    internal static byte[] Random(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    internal static string B3(ReadOnlySpan<byte> data) => Blake3.ToHex(Blake3.Hash(data));

    private ServeConnection Open(byte caps = 0)
    {
        var c = ServeConnection.InProcess(Root);
        c.Handshake(caps);
        return c;
    }

    [Fact]
    public void Welcome_carries_the_intersection_of_capabilities()
    {
        using var c = ServeConnection.InProcess(Root);
        Assert.Equal(new Welcome(1, Caps.Lz4 | Caps.Zstd | Caps.Dedup | Caps.Sync | Caps.Fast | Caps.Extended, Features.Supported & ~Features.Resident & ~(Bcmr.Engine.Platform.AesHardware.Present ? 0 : Features.AesHardware)), c.Handshake(0xFF));
        using var d = ServeConnection.InProcess(Root);
        Assert.Equal(new Welcome(1, Caps.Sync | Caps.Lz4), d.Handshake(Caps.Sync | Caps.Lz4 | Caps.DirectTcp | Caps.Aead));
        using var e = ServeConnection.InProcess(Root, capabilities: Caps.Sync | Caps.Fast);
        Assert.Equal(new Welcome(1, Caps.Sync), e.Handshake(Caps.Sync | Caps.Lz4 | Caps.Zstd | Caps.Dedup));
    }

    /// <summary>Counts the writes that reach the connection.</summary>
    private sealed class CountingOutput : MemoryStream
    {
        public int Writes;
        public override void Write(byte[] buffer, int offset, int count) { Writes++; base.Write(buffer, offset, count); }
        public override void Write(ReadOnlySpan<byte> buffer) { Writes++; base.Write(buffer); }
    }

    [Fact]
    public void Replies_to_requests_that_arrived_together_leave_together_and_each_one_before_the_server_waits()
    {
        // 200 Stats in one burst: their replies go out in a few writes (the output buffer's worth each), not 200.
        File.WriteAllBytes(_t["a"], Random(10, 3));
        var input = new MemoryStream();
        var w = new FrameWriter(input);
        w.Write(new Hello(Wire.Version, 0));
        for (int i = 0; i < 200; i++) w.Write(new StatRequest("a"));
        w.Write(Done.Instance);
        w.Flush();
        input.Position = 0;
        var output = new CountingOutput();
        using (var session = new ServeSession(input, output, new ServeOptions { Root = Root, Settings = TestSettings.Isolated }))
            Assert.Equal(ServeEnd.Done, session.Run());
        output.Position = 0;
        var reader = new FrameReader(new MemoryStream(output.ToArray()));
        Assert.IsType<Welcome>(reader.ReadMessage());
        for (int i = 0; i < 200; i++) Assert.Equal(10UL, Assert.IsType<StatResponse>(reader.ReadMessage()).Size);
        Assert.True(output.Writes <= 3, $"{output.Writes} writes for 201 replies");

        // One request at a time, the server answers each before it waits for the next: the client gets every reply
        // without sending anything more (a reply held back for the next request would hang this).
        using var c = Open();
        for (int i = 0; i < 3; i++)
        {
            c.Send(new StatRequest("a"));
            Assert.Equal(10UL, Assert.IsType<StatResponse>(c.Receive()).Size);
        }
    }

    [Theory]
    [InlineData(60_000, 2)] // held: every reply leaves with the last one (the Welcome may leave before)
    [InlineData(0, 16)] // not held: one write per reply, as when the requests are not there yet
    public void Replies_wait_for_the_requests_already_in_the_pipe(int holdMs, int expectedWritesAtLeast)
    {
        // Uploads of 64 KiB, all of them already in a real pipe when the server starts: each Put's Ok is written
        // while the next file waits to be read, so the replies leave together (up to 32, or for ReplyHold), not one
        // write each through sshd, ssh and the client's reader (bench/RESULTS.md, session 20). A clock-free count:
        // the hold is a minute, or nothing.
        var data = Random(64 * 1024, 5);
        using var toServer = new AnonymousPipeServerStream(PipeDirection.Out);
        using var serverIn = new AnonymousPipeClientStream(PipeDirection.In, toServer.ClientSafePipeHandle);
        int fd = (int)serverIn.SafePipeHandle.DangerousGetHandle();
        var output = new CountingOutput();
        var options = new ServeOptions
        {
            Root = Root, Settings = TestSettings.Isolated, InputFd = fd, ReplyHold = TimeSpan.FromMilliseconds(holdMs),
        };
        using var session = new ServeSession(serverIn, output, options); // grows the pipe to 1 MiB
        int files = Math.Min(15, Bcmr.Engine.Platform.Native.LibC.fcntl(fd, Bcmr.Engine.Platform.Native.LibC.F_GETPIPE_SZ, 0) / (data.Length + 256) - 1);
        Assert.True(files >= 8, $"the pipe holds {files + 1} files only");
        var w = new FrameWriter(toServer);
        w.Write(new Hello(Wire.Version, 0));
        for (int i = 0; i < files; i++)
        {
            w.Write(new PutRequest($"f{i}", (ulong)data.Length, 0));
            w.WriteData(data);
            w.Write(Done.Instance);
        }
        w.Write(Done.Instance);
        w.Flush();
        toServer.Dispose();

        Assert.Equal(ServeEnd.Done, session.Run());
        var reader = new FrameReader(new MemoryStream(output.ToArray()));
        Assert.IsType<Welcome>(reader.ReadMessage());
        for (int i = 0; i < files; i++) Assert.Equal(new OkResponse(B3(data)), reader.ReadMessage());
        Assert.Null(reader.ReadMessage());
        Assert.Equal(data, File.ReadAllBytes(_t[$"f{files - 1}"]));
        if (holdMs > 0) Assert.True(output.Writes <= expectedWritesAtLeast, $"{output.Writes} writes for {files + 1} replies");
        else Assert.True(output.Writes >= Math.Min(expectedWritesAtLeast, files + 1), $"{output.Writes} writes for {files + 1} replies");
    }

    [Fact]
    public void A_Done_right_after_a_Put_ends_the_Put_not_the_session()
    {
        using var c = Open();
        var data = Random(1000, 1);
        c.Send(new PutRequest("a.bin", 1000, 0));
        c.SendData(data);
        c.Send(Done.Instance); // bcmr 0.6 sends this after every Put's data
        Assert.Equal(new OkResponse(B3(data)), c.Receive());
        c.Send(new StatRequest("a.bin"));
        Assert.Equal(1000UL, Assert.IsType<StatResponse>(c.Receive()).Size);
        c.Send(Done.Instance);
        Assert.Equal(0, c.WaitForExit());
        Assert.Equal(ServeEnd.Done, c.End);
    }

    [Fact]
    public void An_empty_Put_completes_at_once()
    {
        using var c = Open();
        c.Send(new PutRequest("empty", 0, 0));
        Assert.Equal(new OkResponse(B3([])), c.Receive());
        Assert.Equal(0, new FileInfo(_t["empty"]).Length);
    }

    [Fact]
    public void A_Put_ended_short_by_Done_is_an_error_keeps_the_bytes_and_the_session_goes_on()
    {
        using var c = Open();
        var data = Random(3000, 2);
        c.Send(new PutRequest("short.bin", 5000, 0));
        c.SendData(data);
        c.Send(Done.Instance);
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("after 3000 of 5000 bytes", e.Text);
        Assert.False(File.Exists(_t["short.bin"]));
        Assert.Equal(data, File.ReadAllBytes(Temporaries.PartialPath(_t["short.bin"])));

        c.Send(new ResumeRequest("short.bin"));
        Assert.Equal(new ResumeResponse(3000, null), c.Receive());
        Trees.AssertNoStagingFiles(Root, partials: false); // the partial file is expected here
    }

    [Fact]
    public void Data_past_the_declared_size_closes_the_session_and_keeps_only_the_good_bytes()
    {
        using var c = Open();
        c.Send(new PutRequest("over.bin", 100, 0));
        c.SendData(Random(60, 3));
        c.SendData(Random(60, 4));
        c.Writer.Flush();
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("20 bytes past the declared size of 100", e.Text);
        Assert.Equal(1, c.WaitForExit());
        Assert.Equal(ServeEnd.ProtocolError, c.End);
        Assert.False(File.Exists(_t["over.bin"]));
        Assert.Equal(Random(60, 3), File.ReadAllBytes(Temporaries.PartialPath(_t["over.bin"])));
    }

    [Fact]
    public void A_refused_Put_skips_its_data_so_pipelined_requests_still_work()
    {
        using var c = Open();
        Directory.CreateDirectory(_t["dir"]);
        c.Send(new PutRequest("../escape.bin", 10, 0));
        c.SendData(Random(10, 5));
        c.Send(new PutRequest("dir", 10, 0));
        c.SendData(Random(10, 6));
        c.Send(Done.Instance);
        c.Send(new PutRequest("ok.bin", 10, 0));
        c.SendData(Random(10, 7));
        c.Writer.Flush();

        Assert.True(RootJail.IsOutsideRootMessage(Assert.IsType<ErrorResponse>(c.Receive()).Text));
        Assert.Contains("Is a directory", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Equal(new OkResponse(B3(Random(10, 7))), c.Receive());
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(Root)!, "escape.bin")));
    }

    [Fact]
    public void A_Put_at_offset_continues_the_partial_file_and_Ok_hashes_the_whole_file()
    {
        var data = Random(9 * MiB + 123, 8);
        File.WriteAllBytes(Temporaries.PartialPath(_t["big.bin"]), data[..(5 * MiB + 7)]);
        File.WriteAllBytes(_t["big.bin"], Random(100, 9)); // an older complete file: replaced only at the end

        using var c = Open();
        c.Send(new ResumeRequest("big.bin"));
        Assert.Equal(new ResumeResponse((ulong)(5 * MiB + 7), B3(data.AsSpan(0, 4 * MiB))), c.Receive());

        // Resume at a block boundary below what the partial holds: it is cut there.
        c.Send(new PutRequest("big.bin", (ulong)data.Length, 4 * MiB));
        c.SendData(data.AsSpan(4 * MiB));
        c.Writer.Flush();
        Assert.Equal(new OkResponse(B3(data)), c.Receive());
        Assert.Equal(data, File.ReadAllBytes(_t["big.bin"]));
        Assert.False(File.Exists(Temporaries.PartialPath(_t["big.bin"])));
        Trees.AssertNoStagingFiles(Root);
    }

    [Fact]
    public void Resuming_beyond_what_the_partial_holds_is_refused_and_the_partial_survives()
    {
        File.WriteAllBytes(Temporaries.PartialPath(_t["p.bin"]), Random(100, 10));
        using var c = Open();
        c.Send(new PutRequest("p.bin", 300, 200));
        c.SendData(Random(100, 11));
        c.Writer.Flush();
        Assert.Contains("holds only 100 bytes", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Equal(Random(100, 10), File.ReadAllBytes(Temporaries.PartialPath(_t["p.bin"])));
        c.Send(new StatRequest("."));
        Assert.IsType<StatResponse>(c.Receive());
        Trees.AssertNoStagingFiles(Root, partials: false); // the partial file is expected here
    }

    [Fact]
    public void Without_a_partial_a_Put_at_offset_continues_from_the_final_file_without_touching_it()
    {
        var data = Random(3000, 12);
        File.WriteAllBytes(_t["inplace.bin"], data[..2000]);
        using var c = Open();
        c.Send(new PutRequest("inplace.bin", 3000, 2000));
        c.SendData(data.AsSpan(2000, 500));
        c.Writer.Flush();
        Thread.Sleep(200);
        Assert.Equal(data[..2000], File.ReadAllBytes(_t["inplace.bin"])); // still the old bytes mid-upload
        c.SendData(data.AsSpan(2500));
        c.Writer.Flush();
        Assert.Equal(new OkResponse(B3(data)), c.Receive());
        Assert.Equal(data, File.ReadAllBytes(_t["inplace.bin"]));

        c.Send(new PutRequest("missing.bin", 3000, 2000));
        c.SendData(data.AsSpan(2000));
        c.Writer.Flush();
        Assert.Contains("no partial upload and no file", Assert.IsType<ErrorResponse>(c.Receive()).Text);
    }

    [Fact]
    public void A_completed_Put_at_offset_zero_removes_a_stale_partial()
    {
        File.WriteAllBytes(Temporaries.PartialPath(_t["s.bin"]), Random(50, 13));
        using var c = Open();
        Assert.IsType<OkResponse>(c.Put("s.bin", Random(80, 14)));
        Assert.False(File.Exists(Temporaries.PartialPath(_t["s.bin"])));
    }

    [Fact]
    public void Interrupt_keeps_an_upload_in_progress_as_its_partial_file()
    {
        using var c = Open();
        var data = Random(2 * MiB, 15);
        c.Send(new PutRequest("i.bin", 10 * MiB, 0));
        c.SendData(data);
        c.Writer.Flush();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Directory.GetFiles(Root, "*.bcmr-tmp").Length == 0 && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Thread.Sleep(300); // let the server write what it has
        c.Session!.Interrupt();
        Assert.Equal(data, File.ReadAllBytes(Temporaries.PartialPath(_t["i.bin"])));
        Assert.False(File.Exists(_t["i.bin"]));
        c.CloseInput();
        c.WaitForExit();
        Assert.Equal(ServeEnd.Interrupted, c.End);
        Trees.AssertNoStagingFiles(Root, partials: false); // the partial file is expected here
    }

    [Fact]
    public void Data_outside_a_Put_closes_the_session_with_an_error()
    {
        using var c = Open();
        c.SendData(Random(10, 16));
        c.Writer.Flush();
        Assert.Contains("Data frame outside a Put", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Equal(1, c.WaitForExit());
    }

    [Fact]
    public void Well_framed_but_wrong_messages_get_an_error_and_the_session_goes_on()
    {
        using var c = Open();
        c.Send(new OkResponse("x"));                               // a server message
        c.SendRaw(Convert.FromHexString("0600000003" + "05000000" + "78")); // Stat with a short string
        c.Send(new Hello(1, 0));
        c.Send(new AssembleRequest("f", 1));                       // ours only: this client did not ask for Extended
        c.Send(OpenDirectChannel.Instance);
        c.Send(new StatRequest("."));
        Assert.Contains("unexpected Ok", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Contains("malformed Stat", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Contains("unexpected Hello", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Contains("unexpected Assemble", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Contains("not offered", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Equal(new StatResponse(0, new DateTimeOffset(new DirectoryInfo(Root).LastWriteTimeUtc).ToUnixTimeSeconds(), true), c.Receive());
    }

    [Fact]
    public void Hash_Get_and_Mkdir_edge_cases()
    {
        var data = Random(1000, 17);
        File.WriteAllBytes(_t["h.bin"], data);
        using var c = Open();
        c.Send(new HashRequest("h.bin", 2000, null));
        Assert.Equal(new HashResponse(B3([])), c.Receive());
        c.Send(new HashRequest("h.bin", 900, 5000));
        Assert.Equal(new HashResponse(B3(data.AsSpan(900))), c.Receive());
        c.Send(new HashRequest("h.bin", 10, 0));
        Assert.Equal(new HashResponse(B3([])), c.Receive());

        c.Send(new GetRequest("h.bin", 1001));
        Assert.Contains("beyond the end", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.Send(new GetRequest("h.bin", 1000));
        var (bytes, end) = c.ReceiveGet();
        Assert.Empty(bytes);
        Assert.Equal(new OkResponse(B3(data)), end);

        c.Send(new MkdirRequest("h.bin"));
        Assert.Contains("File exists", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.Send(new MkdirRequest("h.bin/sub"));
        Assert.Contains("Not a directory", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.Send(new ListRequest("h.bin"));
        Assert.Contains("Not a directory", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.Send(new StatRequest("nope"));
        Assert.Equal(new ErrorResponse($"{_t["nope"]}: No such file or directory"), c.Receive());
    }

    [Fact]
    public void List_follows_symlinks_that_stay_inside_and_skips_the_rest_and_our_temporaries_but_not_lookalikes()
    {
        var outside = new TempDir();
        try
        {
            File.WriteAllText(outside["secret"], "s");
            Directory.CreateDirectory(_t["d/e"]);
            File.WriteAllBytes(_t["d/e/f.txt"], Random(7, 18));
            File.WriteAllBytes(_t["top.txt"], Random(3, 19));
            var links = new[] { _t["d/link-file"], _t["d/link-dir"], _t["d/out"], _t["d/dangling"], _t["d/e/cycle"] };
            File.CreateSymbolicLink(links[0], "../top.txt");
            File.CreateSymbolicLink(links[1], "e");
            File.CreateSymbolicLink(links[2], outside.Path);
            File.CreateSymbolicLink(links[3], "nowhere");
            File.CreateSymbolicLink(links[4], "..");
            mkfifo(_t["d/fifo"]);
            File.WriteAllText(Temporaries.PartialPath(_t["d/up.bin"]), "partial");
            File.WriteAllText(Temporaries.StagingPath(_t["d/up.bin"]), "staging");
            // A user's files that only look like ours are content: listed, so downloads copy them.
            File.WriteAllText(_t["d/.x.bcmr-part"], "mine");
            File.WriteAllText(_t["d/.x.0123456789ab01234567.bcmr-tmp"], "mine too");
            try
            {
                using var c = Open();
                c.Send(new ListRequest("d"));
                var list = Assert.IsType<ListResponse>(c.Receive());
                var got = list.Entries.Select(e => (e.Path, e.Size, e.IsDir)).ToList();
                Assert.Equal(new (string, ulong, bool)[]
                {
                    (".x.0123456789ab01234567.bcmr-tmp", 8, false), (".x.bcmr-part", 4, false),
                    ("e", 0, true), ("e/cycle", 0, true), ("e/f.txt", 7, false),
                    ("link-dir", 0, true), ("link-dir/cycle", 0, true), ("link-dir/f.txt", 7, false),
                    ("link-file", 3, false),
                }, got);
                Assert.Contains("skipped symlink out", c.Stderr);
                Assert.Contains("skipped symlink dangling", c.Stderr);
            }
            finally
            {
                foreach (var l in links) File.Delete(l);
            }
        }
        finally { outside.Dispose(); }
    }

    private static void mkfifo(string path) => Tool.Output("mkfifo", path);

    [Fact]
    public void Truncate_makes_a_zero_file_of_the_size_and_creates_parents()
    {
        File.WriteAllBytes(_t["t.bin"], Random(100, 20));
        using var c = Open(Caps.Sync);
        c.Send(new TruncateRequest("t.bin", 10));
        Assert.Equal(OkResponse.Empty, c.Receive());
        c.Send(new TruncateRequest("new/dir/t.bin", 5000));
        Assert.Equal(OkResponse.Empty, c.Receive());
        Assert.Equal(new byte[10], File.ReadAllBytes(_t["t.bin"]));
        Assert.Equal(new byte[5000], File.ReadAllBytes(_t["new/dir/t.bin"]));
        Trees.AssertNoStagingFiles(Root);
    }

    /// <summary>StayResident starts a process on the server's host: only a host that can start a resident server offers
    /// it, only to our own clients, and only then does a request reach the host; anyone else is refused by name and the
    /// session goes on.</summary>
    [Fact]
    public void StayResident_reaches_the_host_only_when_offered_to_our_own_clients()
    {
        using var dir = new TempDir();
        uint? asked = null;
        string Host(uint seconds)
        {
            asked = seconds;
            return "/run/bcmr-serve/serve-0123456789abcdef.sock";
        }

        using (var c = ServeConnection.InProcess(dir.Path))
        {
            Assert.Equal(0u, c.Handshake(Caps.Extended).Features & Features.Resident);
            c.Send(new StayResidentRequest(60));
            Assert.Contains("StayResident", Assert.IsType<ErrorResponse>(c.Receive()).Text);
            c.Send(new StatRequest("."));
            Assert.True(Assert.IsType<StatResponse>(c.Receive()).IsDir);
        }
        using (var c = ServeConnection.InProcess(dir.Path, stayResident: Host))
        {
            Assert.Equal(0u, c.Handshake(Caps.Lz4).Features); // a bcmr 0.6 client
            c.Send(new StayResidentRequest(60));
            Assert.IsType<ErrorResponse>(c.Receive());
            Assert.Null(asked);
        }
        using (var c = ServeConnection.InProcess(dir.Path, stayResident: Host))
        {
            Assert.Equal(Features.Resident, c.Handshake(Caps.Extended).Features & Features.Resident);
            c.Send(new StayResidentRequest(42));
            Assert.Equal("/run/bcmr-serve/serve-0123456789abcdef.sock", Assert.IsType<OkResponse>(c.Receive()).Hash);
            Assert.Equal(42u, asked);
        }
    }
}
