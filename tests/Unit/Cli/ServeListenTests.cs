using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>The real <c>bcmr serve --listen ADDR:PORT [--allow-remote-listen]</c>: loopback only by default, serving
/// TCP clients until a signal.</summary>
public sealed class ServeListenTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    [Theory]
    [InlineData("0.0.0.0:0")]
    [InlineData("[::]:0")]
    public void A_non_loopback_address_without_the_flag_is_a_usage_error(string address)
    {
        var r = BcmrRunner.Run("serve", "--root", _t.Path, "--listen", address);
        r.AssertExit(2);
        Assert.Contains("refusing to listen", r.Stderr);
        Assert.Contains("--allow-remote-listen", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void A_malformed_address_is_a_usage_error()
    {
        var r = BcmrRunner.Run("serve", "--listen", "nonsense");
        r.AssertExit(2);
        Assert.Contains("expected ADDRESS:PORT", r.Stderr);
    }

    [Theory]
    [InlineData("127.0.0.1:0", false)]
    [InlineData("0.0.0.0:0", true)]
    public void Serves_tcp_clients_until_SIGTERM(string address, bool allowRemote)
    {
        var root = _t["root"];
        string[] args = allowRemote ? ["serve", "--root", root, "--listen", address, "--allow-remote-listen"] : ["serve", "--root", root, "--listen", address];
        using var p = Process.Start(BcmrRunner.StartInfo(args))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        try
        {
            var line = p.StandardError.ReadLine() ?? "";
            var m = Regex.Match(line, @"^bcmr serve: listening on (\S+):(\d+) \(root (.*)\)$");
            Assert.True(m.Success, "first stderr line: " + line);
            Assert.Equal(root, m.Groups[3].Value);
            int port = int.Parse(m.Groups[2].Value);
            var stderr = p.StandardError.ReadToEndAsync();

            for (int i = 0; i < 2; i++)
            {
                using var client = new TcpClient("127.0.0.1", port);
                using var c = ServeConnection.OverStream(client.GetStream());
                c.Handshake();
                Assert.IsType<OkResponse>(c.Put($"f{i}.txt", [(byte)i, 1, 2]));
                c.EndSession();
            }
            Assert.Equal([1, 1, 2], File.ReadAllBytes(Path.Combine(root, "f1.txt")));

            Tool.Output("kill", "-TERM", p.Id.ToString());
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(10)), "did not stop on SIGTERM");
            Assert.Equal(130, p.ExitCode);
            Assert.Equal("", stdout.Result);
            Assert.DoesNotContain("Unhandled exception", stderr.Result);
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
    }
}
