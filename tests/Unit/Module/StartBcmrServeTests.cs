using System.Diagnostics;
using System.Management.Automation;
using System.Net.Sockets;
using System.Security.Cryptography;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Module;

/// <summary>Start-BcmrServe as the remote end of a transfer: in a PowerShell process of its own on stdin/stdout
/// (as `ssh host pwsh -Command Start-BcmrServe` runs it), and as a loopback TCP listener.</summary>
[Collection("Module")]
public sealed class StartBcmrServeTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    private static string Sha(byte[] b) => Convert.ToHexString(SHA256.HashData(b));

    private static byte[] Random(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Upload, download, stat and a refused escape, over one connection.</summary>
    private static void Exercise(ServeConnection c, string root)
    {
        Assert.Equal(Wire.Version, c.Handshake().Version); // the very first bytes on stdout are the Welcome

        var up = Random(5 * 1024 * 1024 + 17, 1);
        Assert.IsType<OkResponse>(c.Put("up/a.bin", up));
        Assert.Equal(Sha(up), Sha(File.ReadAllBytes(Path.Combine(root, "up", "a.bin"))));

        var down = Random(3 * 1024 * 1024 + 5, 2);
        File.WriteAllBytes(Path.Combine(root, "down.bin"), down);
        c.Send(new GetRequest("down.bin", 0));
        var (bytes, end) = c.ReceiveGet();
        Assert.Equal(Sha(down), Sha(bytes));
        Assert.Equal(Blake3.ToHex(Blake3.Hash(down)), Assert.IsType<OkResponse>(end).Hash);

        c.Send(new StatRequest("down.bin"));
        Assert.Equal((ulong)down.Length, Assert.IsType<StatResponse>(c.Receive()).Size);

        c.Send(new StatRequest("../../etc/passwd"));
        Assert.True(RootJail.IsOutsideRootMessage(Assert.IsType<ErrorResponse>(c.Receive()).Text));
    }

    [Fact]
    public void Serves_a_client_on_the_processes_stdin_and_stdout()
    {
        var root = _t["root"];
        using var p = Process.Start(PwshHostProcess.StartInfo($"Start-BcmrServe -Root '{root}'", _t["home"]))!;
        using var c = ServeConnection.FromProcess(p);
        Exercise(c, root);
        c.EndSession();
        Assert.Equal(0, c.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain("error:", c.Stderr);
        Assert.DoesNotContain("Unhandled exception", c.Stderr);
    }

    [Fact]
    public void Without_Root_relative_paths_start_at_home_and_absolute_ones_reach_what_the_account_may_and_a_relative_root_is_resolved_against_the_location()
    {
        var home = _t["home"];
        Directory.CreateDirectory(home);
        using (var p = Process.Start(PwshHostProcess.StartInfo("Start-BcmrServe", home))!)
        using (var c = ServeConnection.FromProcess(p))
        {
            c.Handshake();
            Assert.IsType<OkResponse>(c.Put("x.txt", [1, 2, 3]));
            Assert.IsType<OkResponse>(c.Put(_t["outside-home.txt"], [4, 5]));
            c.EndSession();
            Assert.Equal(0, c.WaitForExit(TimeSpan.FromSeconds(60)));
        }
        Assert.Equal([1, 2, 3], File.ReadAllBytes(Path.Combine(home, "x.txt")));
        Assert.Equal([4, 5], File.ReadAllBytes(_t["outside-home.txt"]));

        var script = $"$ExecutionContext.SessionState.Path.SetLocation('{_t.Path}') | Out-Null; Start-BcmrServe -Root ./rel";
        using (var p = Process.Start(PwshHostProcess.StartInfo(script, home))!)
        using (var c = ServeConnection.FromProcess(p))
        {
            c.Handshake();
            Assert.IsType<OkResponse>(c.Put("y.txt", [4]));
            c.EndSession();
            Assert.Equal(0, c.WaitForExit(TimeSpan.FromSeconds(60)));
        }
        Assert.Equal([4], File.ReadAllBytes(_t["rel/y.txt"]));
    }

    [Fact]
    public void Listen_serves_tcp_on_loopback_until_stopped()
    {
        var root = _t["root"];
        using var session = new PowerShellSession();
        using var ps = session.Start("Start-BcmrServe -Root $args[0] -Listen 127.0.0.1:0", root);
        var output = new PSDataCollection<PSObject>();
        var run = ps.BeginInvoke<PSObject, PSObject>(null, output);
        var wait = Stopwatch.StartNew();
        while (output.Count == 0)
        {
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(30) && !run.IsCompleted, "no endpoint: " + string.Join("; ", PowerShellSession.Snapshot(ps.Streams.Error)));
            Thread.Sleep(20);
        }
        dynamic endpoint = output[0];
        Assert.Equal("Bcmr.ServeEndpoint", output[0].TypeNames[0]);
        Assert.Equal("127.0.0.1", (string)endpoint.Address);
        int port = endpoint.Port;
        Assert.InRange(port, 1, 65535);

        using (var client = new TcpClient("127.0.0.1", port))
        using (var c = ServeConnection.OverStream(client.GetStream()))
        {
            Exercise(c, root);
            c.EndSession();
        }
        // A second client after the first: the listener keeps accepting.
        using (var client = new TcpClient("127.0.0.1", port))
        using (var c = ServeConnection.OverStream(client.GetStream()))
        {
            c.Handshake();
            c.Send(new StatRequest("up/a.bin"));
            Assert.IsType<StatResponse>(c.Receive());

            // Stop with this client still connected: prompt, and the port closes.
            var clock = Stopwatch.StartNew();
            ps.Stop();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"Stop took {clock.Elapsed}");
        }
        try { ps.EndInvoke(run); } catch (PipelineStoppedException) { }
        Assert.Throws<SocketException>(() => new TcpClient("127.0.0.1", port).Dispose());
    }

    /// <summary>Both servers are one ServeHost: BCMR_COMPRESS on the server limits the codecs offered by
    /// Start-BcmrServe as it does by bcmr serve, and both keep the rest of their capabilities.</summary>
    [Theory]
    [InlineData(null, Caps.Zstd | Caps.Lz4)]
    [InlineData("none", 0)]
    [InlineData("lz4", Caps.Lz4)]
    public void Start_BcmrServe_and_bcmr_serve_offer_the_same_codecs_for_BCMR_COMPRESS(string? compress, int codecs)
    {
        var env = new Dictionary<string, string>();
        if (compress is not null) env["BCMR_COMPRESS"] = compress;
        byte asked = Caps.Lz4 | Caps.Zstd | Caps.Dedup | Caps.Fast;
        var root = Directory.CreateDirectory(_t["root"]).FullName;
        var data = Random(5 * 1024 * 1024 + 3, 7);
        File.WriteAllBytes(Path.Combine(root, "f.bin"), data);
        using (var p = Process.Start(PwshHostProcess.StartInfo($"Start-BcmrServe -Root '{root}'", _t["home"], env))!)
        using (var c = ServeConnection.FromProcess(p))
        {
            Assert.Equal(codecs | Caps.Dedup | Caps.Fast, c.Handshake(asked).Caps);
            // A FAST Get without a codec goes out with sendfile(2) on the process's stdout, as from bcmr serve.
            c.Send(new GetRequest("f.bin", 0));
            var (bytes, end) = c.ReceiveGet();
            Assert.Equal(Sha(data), Sha(bytes));
            Assert.IsType<OkResponse>(end);
            c.EndSession();
            Assert.Equal(0, c.WaitForExit(TimeSpan.FromSeconds(60)));
        }
        using (var c = ServeConnection.Start(root, env))
        {
            Assert.Equal(codecs | Caps.Dedup | Caps.Fast, c.Handshake(asked).Caps);
            c.EndSession();
        }
    }

    [Theory]
    [InlineData("0.0.0.0:0")]
    [InlineData("[::]:0")]
    public void Listen_refuses_a_non_loopback_address_without_AllowRemoteListen(string address)
    {
        using var session = new PowerShellSession();
        var r = session.Run("try { Start-BcmrServe -Root $args[0] -Listen $args[1] } catch { $_ }", _t["root"], address);
        var e = r.Objects<ErrorRecord>().Single();
        Assert.Equal("BcmrInvalidArgument,Bcmr.Cmdlets.Commands.StartBcmrServeCommand", e.FullyQualifiedErrorId);
        Assert.Contains("refusing to listen", e.Exception.Message);
        Assert.Contains("-AllowRemoteListen", e.Exception.Message);
    }
}
