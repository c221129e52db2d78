using System.Diagnostics;
using System.Security.Cryptography;
using Bcmr.Engine.Client;
using Bcmr.Engine.Transfers;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Client;

/// <summary>
/// A ServeClient over each kind of channel, talking to a real <c>bcmr serve</c> process: an upload then a download
/// through the real transfer code, bytes compared; and a server that dies in the middle of a request gives an error
/// that names the server and why, promptly.
/// </summary>
public sealed class ServeChannelTests(SshdFixture fx) : IClassFixture<SshdFixture>, IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private string Home => Directory.CreateDirectory(_t["home"]).FullName;

    private string WriteSource(int size)
    {
        var data = new byte[size];
        new Random(size).NextBytes(data.AsSpan(0, size / 2)); // half random, half zeros: raw and compressed blocks
        File.WriteAllBytes(_t["src.bin"], data);
        return _t["src.bin"];
    }

    /// <summary>Up to <paramref name="remote"/>, back down beside the source, each file compared.</summary>
    private void RoundTrip(Func<RemoteSpec, IServeChannel> open, string host, string remoteDir, string remoteRoot, string transport)
    {
        var src = WriteSource(9 * MiB + 17); // three blocks
        var up = TransferEngine.Run(new CopyRequest { Sources = [src], Destination = $"{host}:{remoteDir}/up.bin", OpenChannel = open });
        Assert.True(up.Succeeded, up.Fatal?.Message + string.Join("; ", up.Failures.Select(f => f.Message)));
        Assert.Equal(transport, up.Transport);
        Assert.Equal(Sha(src), Sha(Path.Combine(remoteRoot, remoteDir, "up.bin")));

        var down = TransferEngine.Run(new CopyRequest { Sources = [$"{host}:{remoteDir}/up.bin"], Destination = _t["down.bin"], OpenChannel = open });
        Assert.True(down.Succeeded, down.Fatal?.Message + string.Join("; ", down.Failures.Select(f => f.Message)));
        Assert.Equal(Sha(src), Sha(_t["down.bin"]));
        Assert.Equal(transport, down.Transport);
    }

    [Fact]
    public void A_child_process_channel_round_trips_a_file()
    {
        var root = Directory.CreateDirectory(_t["root"]).FullName;
        Directory.CreateDirectory(Path.Combine(root, "d"));
        var pids = new List<int>();
        RoundTrip(spec =>
        {
            var c = LocalServe.Child(root, Home, spec.Target);
            pids.Add(c.ProcessId);
            return c;
        }, "local", "d", root, "process");
        Assert.Equal(2, pids.Distinct().Count());
        Assert.All(pids, pid => Assert.False(LocalServe.Running(pid), $"bcmr serve {pid} still running"));
    }

    [Fact]
    public void A_tcp_channel_round_trips_a_file()
    {
        var root = Directory.CreateDirectory(_t["root"]).FullName;
        Directory.CreateDirectory(Path.Combine(root, "d"));
        using var server = new LocalServe.Listener(root, Home);
        RoundTrip(_ => TcpChannel.Connect(server.Endpoint), "tcp", "d", root, "tcp");
    }

    [SshFact]
    public void An_ssh_channel_round_trips_a_file()
    {
        var dir = "chan-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(Path.Combine(fx.RemoteHome, dir));
        RoundTrip(spec => SshChannel.Start(spec, fx.SshCommand, fx.RemoteBcmr), SshdFixture.Host, dir, fx.RemoteHome, "ssh");
    }

    [Fact]
    public void A_tcp_channel_to_nothing_names_the_address()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var endpoint = (System.Net.IPEndPoint)probe.LocalEndpoint;
        probe.Stop();
        var e = Assert.Throws<Bcmr.Engine.BcmrException>(() => TcpChannel.Connect(endpoint));
        Assert.Equal(Bcmr.Engine.BcmrErrorCode.ConnectionFailed, e.Code);
        Assert.Contains(endpoint.ToString(), e.Message);
        Assert.Contains("cannot connect", e.Message);
    }

    /// <summary>A download held to 8 MB/s, so that it is surely in the middle of its data when the server is killed.</summary>
    private (TransferSummary Summary, TimeSpan Elapsed) DownloadWhileKilled(Func<RemoteSpec, IServeChannel> open, string host, Action kill)
    {
        var root = _t["root"];
        var data = new byte[48 * MiB];
        new Random(5).NextBytes(data);
        File.WriteAllBytes(Path.Combine(root, "big.bin"), data);
        int killed = 0;
        var progress = new Reporter(p =>
        {
            if (p.BytesDone >= 4 * MiB && Interlocked.Exchange(ref killed, 1) == 0) kill();
        });
        var clock = Stopwatch.StartNew();
        var summary = TransferEngine.Run(new CopyRequest
        {
            Sources = [host + ":big.bin"], Destination = _t["big.bin"], OpenChannel = open, BandwidthLimit = 8_000_000,
            ProgressInterval = TimeSpan.FromMilliseconds(20),
        }, progress);
        Assert.Equal(1, killed);
        return (summary, clock.Elapsed);
    }

    private static string Messages(TransferSummary s) => s.Fatal?.Message + string.Join("; ", s.Failures.Select(f => f.Message));

    [Fact]
    public void A_child_server_killed_mid_download_is_an_error_naming_it_and_how_it_ended()
    {
        Directory.CreateDirectory(_t["root"]);
        ProcessChannel? channel = null;
        var (summary, elapsed) = DownloadWhileKilled(spec => channel = LocalServe.Child(_t["root"], Home, "dying-server"), "local",
            () => Tool.Output("kill", "-KILL", channel!.ProcessId.ToString()));
        Assert.False(summary.Succeeded);
        var text = Messages(summary);
        Assert.Contains("dying-server", text);
        Assert.Contains("killed by signal 9", text);
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"took {elapsed}");
        Assert.False(File.Exists(_t["big.bin"]), "a partial download was left under the final name");
    }

    [Fact]
    public void A_tcp_server_killed_mid_download_is_an_error_naming_its_address()
    {
        Directory.CreateDirectory(_t["root"]);
        using var server = new LocalServe.Listener(_t["root"], Home);
        var (summary, elapsed) = DownloadWhileKilled(_ => TcpChannel.Connect(server.Endpoint), "tcp", () => server.Process.Kill());
        Assert.False(summary.Succeeded);
        var text = Messages(summary);
        Assert.Contains(server.Endpoint.ToString(), text);
        Assert.Matches("the connection (closed|broke)", text);
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"took {elapsed}");
    }

    /// <summary>Progress on the reporting thread itself (Progress&lt;T&gt; would post it to the pool, late).</summary>
    private sealed class Reporter(Action<TransferProgress> report) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => report(value);
    }
}
