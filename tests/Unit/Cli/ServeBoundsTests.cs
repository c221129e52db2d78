using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>
/// Work and resources a client can make the real <c>bcmr serve</c> spend are bounded (issue 16 items 7, 8, 9):
/// hashing for a client that is gone stops, Truncate cannot make a file larger than the disk could hold, an accept
/// loop out of descriptors pauses instead of spinning, and two jails under one account do not share a block store.
/// </summary>
public sealed class ServeBoundsTests : IDisposable
{
    private readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();

    /// <summary>The default store location (no BCMR_CAS_DIR, which names one store on purpose), in this test's data dir.</summary>
    private Dictionary<string, string> Env => new() { ["BCMR_CAS_DIR"] = "", ["HOME"] = _t.Path, ["XDG_DATA_HOME"] = _t["data"] };

    [Fact]
    public void Hashing_stops_when_the_client_is_gone()
    {
        // Before: Truncate to 1 TiB then Hash kept a core busy for minutes after the client had left.
        var root = _t["root"];
        Directory.CreateDirectory(root);
        File.WriteAllBytes(Path.Combine(root, "huge.bin"), []);
        using (var f = new FileStream(Path.Combine(root, "huge.bin"), FileMode.Open)) f.SetLength(1L << 40); // sparse
        using var c = ServeConnection.Start(root);
        c.Handshake();
        c.Send(new HashRequest("huge.bin", 0, null));
        Thread.Sleep(200); // let it start reading
        var clock = Stopwatch.StartNew();
        c.CloseBothEnds();
        Assert.True(c.Process!.WaitForExit(20_000), "the server was still hashing 20 s after its client left");
        Assert.Contains("the client is gone", c.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20));
    }

    [Fact]
    public void Truncate_past_the_free_space_is_refused()
    {
        var root = _t["root"];
        Directory.CreateDirectory(root);
        using var c = ServeConnection.Start(root);
        c.Handshake();
        c.Send(new TruncateRequest("big.bin", 1UL << 60));
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("big.bin", e.Text);
        Assert.Contains("free", e.Text);
        Assert.False(File.Exists(Path.Combine(root, "big.bin")));
        c.Send(new TruncateRequest("small.bin", 1 << 20));
        Assert.IsType<OkResponse>(c.Receive());
        Assert.Equal(1 << 20, new FileInfo(Path.Combine(root, "small.bin")).Length);
    }

    [Fact]
    public void A_Put_declaring_more_than_the_free_space_is_refused_before_anything_is_written()
    {
        // A dedup Put is filled from the store without its bytes crossing the wire: HaveBlocks naming one known block
        // half a million times would otherwise write 2 TiB.
        var root = _t["root"];
        Directory.CreateDirectory(root);
        using var c = ServeConnection.InProcess(root);
        c.Handshake(Caps.Dedup);
        c.Send(new PutRequest("huge.bin", 1UL << 50, 0));
        c.Send(new HaveBlocks(4 << 20, new byte[32]));
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("huge.bin", e.Text);
        Assert.Contains("No space left", e.Text);
        c.Send(new StatRequest("huge.bin")); // the session goes on, in step
        Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Empty(Directory.EnumerateFileSystemEntries(root));
    }

    [RequiresToolsFact("util-linux", "prlimit")]
    public void Out_of_descriptors_the_accept_loop_pauses_instead_of_spinning()
    {
        var root = _t["root"];
        Directory.CreateDirectory(root);
        using var p = Process.Start(BcmrRunner.StartInfo(["serve", "--root", root, "--listen", "127.0.0.1:0"]))!;
        p.StandardInput.Close();
        try
        {
            var line = p.StandardError.ReadLine() ?? "";
            var m = Regex.Match(line, @"listening on (\S+):(\d+)");
            Assert.True(m.Success, "first stderr line: " + line);
            int port = int.Parse(m.Groups[2].Value);
            var stderr = p.StandardError.ReadToEndAsync();
            // 20 descriptors more than it holds now (a JIT build holds about 60, a Native AOT one far fewer): the
            // connections below use them up long before the connection limit (64) is reached.
            int limit = Directory.GetFiles($"/proc/{p.Id}/fd").Length + 20;
            Tool.Output("prlimit", "--pid", p.Id.ToString(), $"--nofile={limit}:{limit}");
            var clients = new List<TcpClient>();
            try
            {
                for (int i = 0; i < 120; i++)
                {
                    var client = new TcpClient();
                    client.Connect("127.0.0.1", port);
                    clients.Add(client);
                }
                Thread.Sleep(2000);
            }
            finally
            {
                foreach (var client in clients) client.Dispose();
            }
            // Still serving once descriptors are free again (before, it died: OutOfMemory starting a thread).
            Assert.True(SpinWait.SpinUntil(() =>
            {
                try
                {
                    using var again = new TcpClient("127.0.0.1", port);
                    using var c = ServeConnection.OverStream(again.GetStream());
                    c.Send(new Hello(Wire.Version, 0));
                    return c.Receive() is Welcome;
                }
                catch (Exception e) when (e is SocketException or IOException or ProtocolException) { return false; }
            }, 10_000), "the listener does not serve any more");
            Assert.False(p.HasExited);
            p.Kill();
            p.WaitForExit();
            var failures = stderr.Result.Split('\n').Count(l => l.Contains("accept failed"));
            Assert.True(failures is > 0 and <= 10, $"{failures} accept-failure lines in about 2 s:\n{stderr.Result[..Math.Min(2000, stderr.Result.Length)]}");
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
    }

    [Fact]
    public void Two_jails_under_one_account_do_not_share_blocks_through_dedup()
    {
        // Before: a client of jail B that knew only the block hashes of a file in jail A got the whole file back
        // through dedup, and MissingBlocks told it which blocks existed.
        var a = _t["jail-a"];
        var b = _t["jail-b"];
        Directory.CreateDirectory(a);
        Directory.CreateDirectory(b);
        var secret = new byte[8 * 1024 * 1024];
        new Random(3).NextBytes(secret);
        var hashes = new byte[2 * 32];
        Bcmr.Engine.Hashing.Blake3.Hash(secret.AsSpan(0, 4 << 20), hashes.AsSpan(0, 32));
        Bcmr.Engine.Hashing.Blake3.Hash(secret.AsSpan(4 << 20), hashes.AsSpan(32, 32));

        using (var ca = ServeConnection.Start(a, env: Env))
        {
            ca.Handshake(Caps.Dedup);
            ca.Send(new PutRequest("secret.bin", (ulong)secret.Length, 0));
            ca.Send(new HaveBlocks(4 << 20, hashes));
            Assert.IsType<MissingBlocks>(ca.Receive());
            ca.SendData(secret);
            ca.Send(Done.Instance);
            Assert.IsType<OkResponse>(ca.Receive());
        }

        using var cb = ServeConnection.Start(b, env: Env);
        cb.Handshake(Caps.Dedup);
        cb.Send(new PutRequest("stolen.bin", (ulong)secret.Length, 0));
        cb.Send(new HaveBlocks(4 << 20, hashes));
        var missing = Assert.IsType<MissingBlocks>(cb.Receive());
        Assert.Equal([0b11], missing.Bitmap); // both blocks must be sent: jail B's store has never seen them
        cb.Send(Done.Instance);
        Assert.IsType<ErrorResponse>(cb.Receive());
        Assert.False(File.Exists(Path.Combine(b, "stolen.bin")));
    }
}
