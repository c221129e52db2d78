using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Bcmr.Engine.Client;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// <c>--direct direct</c> end to end with real processes: the loopback sshd (127.0.0.1 and ::1) starts the bcmr under
/// test as the server, whose SSH_CONNECTION names the address it binds; the data goes over the direct TCP connection.
/// Bytes are checked with b3sum against the source, and with the BLAKE3 both ends reported.
/// </summary>
public class DirectTransferTests(DualStackSshdFixture fx) : IClassFixture<DualStackSshdFixture>
{
    private const long MiB = 1024 * 1024;

    private static string B3(string path) => Tool.Output("b3sum", "--no-names", path).Trim();

    private static List<JsonElement> Files(RunResult r) =>
        r.Stdout.Split('\n').Where(l => l.Contains("\"type\":\"file\"")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    private static JsonElement Result(RunResult r) =>
        JsonDocument.Parse(r.Stdout.Split('\n').Last(l => l.Contains("\"type\":\"result\""))).RootElement;

    private RunResult Bcmr(RemoteScene s, params string[] args) =>
        BcmrRunner.Run(["--json", .. args], s.Env(), timeout: TimeSpan.FromMinutes(4));

    [RequiresToolsFact("openssh-server, b3sum", "sshd", "b3sum")]
    public void A_1_GiB_file_goes_up_and_down_over_the_direct_channel_byte_identical()
    {
        using var s = new RemoteScene(fx, "d-");
        var src = s.Local["big.bin"];
        ResumeTests.WriteRandom(src, 1024 * MiB, 41);
        var expected = B3(src);

        var up = Bcmr(s, "copy", "--direct", "direct", src, fx.Remote(s.R("big.bin")));
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(expected, B3(s.R("big.bin")));
        var upFile = Assert.Single(Files(up));
        Assert.Equal("direct", upFile.GetProperty("transport").GetString());
        Assert.Equal(expected, upFile.GetProperty("blake3").GetString());
        Assert.Equal("direct", Result(up).GetProperty("transport").GetString());
        Assert.DoesNotContain("no direct channel", up.Stderr);

        var down = Bcmr(s, "copy", "--direct", "direct", fx.Remote(s.R("big.bin")), s.Local["back.bin"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(expected, B3(s.Local["back.bin"]));
        var downFile = Assert.Single(Files(down));
        Assert.Equal("direct", downFile.GetProperty("transport").GetString());
        Assert.Equal(expected, downFile.GetProperty("blake3").GetString());
    }

    [SshTheory]
    [InlineData(SshdFixture.Host, "127.0.0.1")]
    [InlineData(SshdFixture.Host6, "::1")]
    public void Both_ways_over_each_loopback_family_with_the_server_bound_to_the_ssh_address(string host, string address)
    {
        using var s = new RemoteScene(fx, "d-");
        var src = s.Local.WriteRandom("a.bin", 9 * (int)MiB + 5, 42);
        s.Local.WriteRandom("tree/x.txt", 1000, 43);
        s.Local.WriteRandom("tree/sub/y.bin", 300_000, 44);
        var env = s.Env(new() { ["BCMR_DIRECT"] = "direct" }); // the variable, not the flag, this time

        var up = BcmrRunner.Run(["--json", "copy", "-r", src, s.Local["tree"], $"{host}:{s.RemoteDir}"], env);
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.All(Files(up), f => Assert.Equal("direct", f.GetProperty("transport").GetString()));
        Assert.Equal(Trees.Describe(s.Local["tree"]), Trees.Describe(s.R("tree")));
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.R("a.bin")));

        var down = BcmrRunner.Run(["--json", "copy", "-r", $"{host}:{s.R("tree")}", s.Local["back"]], env);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.All(Files(down), f => Assert.Equal("direct", f.GetProperty("transport").GetString()));
        Assert.Equal(Trees.Describe(s.Local["tree"]), Trees.Describe(s.Local["back"]));

        // The rendezvous by hand: the listener is on the ssh connection's own address only, and gone once a client
        // has authenticated; a second connection is refused.
        using var control = ServeClient.Connect(RemoteSpecOf(host), fx.SshCommand, fx.RemoteBcmr, Caps.Extended);
        Assert.True(control.Has(Features.Direct), "the server does not offer the direct channel");
        var ready = Assert.IsType<DirectChannelReady>(control.Call(OpenDirectChannel.Instance, default));
        var endpoint = IPEndPoint.Parse(ready.Address);
        Assert.Equal(IPAddress.Parse(address), endpoint.Address);
        var listening = Listeners(endpoint.Port);
        Assert.True(listening.Count == 1, $"listeners on port {endpoint.Port}: {string.Join(" | ", listening)}");
        Assert.Contains(address.Contains(':') ? $"[{address}]:{endpoint.Port}" : $"{address}:{endpoint.Port}", listening[0]);
        int serverPid = ListenerPid(listening[0]);
        Assert.All(ListenersOf(serverPid), l => Assert.Contains(address.Contains(':') ? $"[{address}]:" : $"{address}:", l));

        using (var client = new TcpClient(endpoint.AddressFamily))
        {
            client.Connect(endpoint);
            var keys = DirectHandshake.Client(client.GetStream(), ready.Key);
            var writer = new AeadWriter(client.GetStream(), keys.ClientToServer, AeadDirection.ClientToServer);
            writer.Write(MessageCodec.Encode(new Hello(Wire.Version, Caps.Extended)));
            var reader = new AeadReader(client.GetStream(), keys.ServerToClient, AeadDirection.ServerToClient);
            var welcome = new FrameReader(reader).ReadMessage();
            Assert.IsType<Welcome>(welcome);
            Assert.Empty(Listeners(endpoint.Port));
            using var second = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            var refused = Assert.Throws<SocketException>(() => second.Connect(endpoint));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
    }

    [SshFact]
    public void A_listener_nobody_comes_to_closes_after_the_rendezvous_timeout_and_the_server_ends()
    {
        // The clock starts before the request, so it runs at least as long as the server's: the server must not end
        // before it. (Started after the listener check, it failed on a loaded CI machine where `ss -p` took a second.)
        const int timeoutSecs = 4;
        var remote = $"env BCMR_RENDEZVOUS_TIMEOUT_SECS={timeoutSecs} {fx.RemoteBcmr} serve";
        using var control = ServeClient.Connect(RemoteSpecOf(SshdFixture.Host), fx.SshCommand, remote, Caps.Extended);
        var clock = Stopwatch.StartNew();
        var ready = Assert.IsType<DirectChannelReady>(control.Call(OpenDirectChannel.Instance, default));
        var endpoint = IPEndPoint.Parse(ready.Address);
        Assert.Single(Listeners(endpoint.Port, withProcesses: false));
        Assert.True(control.Ended.WaitHandle.WaitOne(TimeSpan.FromSeconds(20)), "the server did not end after its rendezvous timeout");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(timeoutSecs - 0.05), $"the server ended after {clock.Elapsed}, before its {timeoutSecs} s timeout");
        Assert.Empty(Listeners(endpoint.Port, withProcesses: false));
    }

    [SshFact]
    public void A_server_without_SSH_CONNECTION_refuses_the_direct_channel_the_copy_continues_over_ssh_or_fails_with_no_fallback()
    {
        using var s = new RemoteScene(fx, "d-");
        var src = s.Local.WriteRandom("a.bin", 2 * (int)MiB, 45);
        var env = s.Env(new() { ["BCMR_REMOTE"] = $"env -u SSH_CONNECTION {fx.RemoteBcmr} serve" });

        var strict = BcmrRunner.Run(["copy", "--direct", "direct", "--no-fallback", src, fx.Remote(s.R("a.bin"))], env);
        Assert.NotEqual(0, strict.ExitCode);
        Assert.Contains("no direct channel", strict.Stderr);
        Assert.Contains("SSH_CONNECTION", strict.Stderr);
        Assert.Contains("--no-fallback", strict.Stderr);
        Assert.False(File.Exists(s.R("a.bin")));

        var lenient = BcmrRunner.Run(["--json", "copy", "--direct", "direct", src, fx.Remote(s.R("a.bin"))], env);
        Assert.True(lenient.ExitCode == 0, lenient.ToString());
        Assert.Contains("no direct channel", lenient.Stderr);
        Assert.Contains("continuing over ssh", lenient.Stderr);
        Assert.Equal("ssh", Assert.Single(Files(lenient)).GetProperty("transport").GetString());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.R("a.bin")));

        // Three connections refused for the same reason: one warning, not three.
        var parallel = BcmrRunner.Run(["copy", "-P", "3", "--direct", "direct", src, fx.Remote(s.R("b.bin"))], env);
        Assert.True(parallel.ExitCode == 0, parallel.ToString());
        Assert.Single(parallel.Stderr.Split('\n'), l => l.Contains("no direct channel"));
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.R("b.bin")));
    }

    [SshFact]
    public void Against_a_server_like_bcmr_0_6_direct_continues_over_ssh_with_a_warning_and_our_server_offers_0_6_clients_no_direct_mode()
    {
        using var s = new RemoteScene(fx, "d-");
        var src = s.Local.WriteRandom("a.bin", 3 * (int)MiB, 47);
        var env = s.Env(new() { ["BCMR_REMOTE"] = fx.LegacyRemote(s.Local.Path) });
        var r = BcmrRunner.Run(["--json", "copy", "--direct", "direct", src, fx.Remote(s.R("a.bin"))], env);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("does not offer our direct channel", r.Stderr);
        Assert.Equal("ssh", Assert.Single(Files(r)).GetProperty("transport").GetString());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.R("a.bin")));

        // A 0.6 client decides by the DIRECT_TCP and AEAD caps of our Welcome: we never offer them.
        using var v1 = ServeClient.Connect(RemoteSpecOf(SshdFixture.Host), fx.SshCommand, fx.RemoteBcmr, 0xff & ~Caps.Extended);
        Assert.Equal(0, v1.Caps & (Caps.DirectTcp | Caps.Aead));
        Assert.Equal(0u, v1.Features);
    }

    [SshFact]
    public void Bad_values_of_direct_are_usage_errors()
    {
        using var s = new RemoteScene(fx, "d-");
        var src = s.Local.WriteRandom("a.bin", 10, 46);
        var flag = BcmrRunner.Run(["copy", "--direct", "tcp", src, fx.Remote(s.R("a.bin"))], s.Env());
        flag.AssertExit(2);
        var variable = BcmrRunner.Run(["copy", src, fx.Remote(s.R("a.bin"))], s.Env(new() { ["BCMR_DIRECT"] = "fast" }));
        variable.AssertExit(2);
        Assert.Contains("BCMR_DIRECT", variable.Stderr);
        Assert.False(File.Exists(s.R("a.bin")));
    }

    [SshFact]
    public void With_parallel_connections_each_gets_its_own_direct_channel_and_a_striped_file_arrives_whole()
    {
        using var s = new RemoteScene(fx, "d-");
        Directory.CreateDirectory(s.Local["src"]);
        var big = s.Local["src/big.bin"];
        ResumeTests.WriteRandom(big, 100 * MiB, 47);
        for (int i = 0; i < 6; i++) s.Local.WriteRandom($"src/small{i}.bin", 50_000 + i, 48 + i);

        var up = Bcmr(s, "copy", "-r", "-P", "2", "--direct", "direct", s.Local["src"], fx.Remote(s.RemoteDir));
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(Trees.Describe(s.Local["src"]), Trees.Describe(s.R("src")));
        var bigUp = Files(up).Single(f => f.GetProperty("source").GetString()!.EndsWith("big.bin"));
        Assert.Equal(2, bigUp.GetProperty("connections").GetInt32());
        Assert.All(Files(up), f => Assert.Equal("direct", f.GetProperty("transport").GetString()));
        // Two ssh logins for two connections: each direct channel has its own rendezvous.
        Assert.Equal(2, s.SshStarted.Count(l => l.Contains("serve")));

        var down = Bcmr(s, "copy", "-r", "-P", "2", "--direct", "direct", fx.Remote(s.R("src")), s.Local["back"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(Trees.Describe(s.Local["src"]), Trees.Describe(s.Local["back"]));
        Assert.All(Files(down), f => Assert.Equal("direct", f.GetProperty("transport").GetString()));
    }

    [SshTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void Killing_ssh_stops_a_direct_transfer_within_seconds_nothing_under_its_name_and_C_resumes(bool download)
    {
        using var s = new RemoteScene(fx, "d-");
        const long size = 64 * MiB;
        var src = download ? s.R("big.bin") : s.Local["big.bin"];
        var dst = download ? s.Local["big.bin"] : s.R("copy.bin");
        ResumeTests.WriteRandom(src, size, 50);
        var from = download ? fx.Remote(src) : src;
        var to = download ? dst : fx.Remote(dst);
        var partialDir = Path.GetDirectoryName(dst)!;
        var partialPattern = "." + Path.GetFileName(dst) + ".*";

        using var p = Process.Start(BcmrRunner.StartInfo(["--json", "copy", "--direct", "direct", "--bwlimit", "8M", from, to], s.Env()))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        Stopwatch? sinceCut = null;
        while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(1))
        {
            if (Size(partialDir, partialPattern) >= 8 * MiB)
            {
                foreach (var pid in ProcessTree.Descendants(p.Id).Where(pid => ProcessTree.Command(pid).StartsWith("ssh ", StringComparison.Ordinal)))
                    try { Process.GetProcessById(pid).Kill(); sinceCut = Stopwatch.StartNew(); } catch (ArgumentException) { }
                if (sinceCut is not null) break;
            }
            Thread.Sleep(5);
        }
        Assert.True(sinceCut is not null, "the transfer ended before ssh could be killed");
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), "the direct transfer went on for 10 s after its ssh control connection was killed");
        var stopped = sinceCut.Elapsed;
        var r = new RunResult(p.ExitCode, stdout.Result, stderr.Result);
        Assert.NotEqual(0, r.ExitCode);
        Assert.True(stopped < TimeSpan.FromSeconds(5), $"stopped {stopped} after the kill: {r}");
        Assert.True((r.Stdout + r.Stderr).Contains("ssh control connection ended"), "the error does not say the control connection ended: " + r);
        Assert.False(File.Exists(dst), "a file under its final name after the cut");
        // The server's side ends too (its end of the control connection is gone): no listener, no session left
        // writing; the partial it kept is what -C continues from.
        var resumed = Bcmr(s, "copy", "-C", "--direct", "direct", from, to);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(dst));
        var f = Assert.Single(Files(resumed));
        Assert.Equal("direct", f.GetProperty("transport").GetString());
        Assert.True(f.GetProperty("resumed_from").GetInt64() > 0, resumed.ToString());
    }

    private static long Size(string dir, string pattern) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, pattern).Sum(f => { try { return new FileInfo(f).Length; } catch (IOException) { return 0; } }) : 0;

    private static RemoteSpec RemoteSpecOf(string host) =>
        RemoteSpec.TryParse(host + ":x", out var spec) ? spec : throw new InvalidOperationException(host);

    /// <summary>Lines of <c>ss -ltnpH</c> listening on <paramref name="port"/>.</summary>
    // Naming processes (-p) walks every process's descriptors, which takes a second on a loaded machine.
    private static List<string> Listeners(int port, bool withProcesses = true) =>
        Tool.Output("ss", withProcesses ? "-ltnpH" : "-ltnH").Split('\n').Where(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is { Length: > 3 } f && f[3].EndsWith(":" + port)).ToList();

    private static List<string> ListenersOf(int pid) =>
        Tool.Output("ss", "-ltnpH").Split('\n').Where(l => l.Contains($"pid={pid},")).ToList();

    private static int ListenerPid(string line)
    {
        int at = line.IndexOf("pid=", StringComparison.Ordinal);
        Assert.True(at >= 0, "ss names no process: " + line);
        return int.Parse(line[(at + 4)..line.IndexOf(',', at)]);
    }
}
