using Bcmr.Engine;
using Bcmr.Engine.Client;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Client;

/// <summary>The pool <c>--parallel N</c> will use: N sessions, each over its own channel to its own server process
/// (or connection), rented by one worker at a time, all ended with the pool.</summary>
public sealed class ServeClientPoolTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    private string Root => Directory.CreateDirectory(_t["root"]).FullName;
    private string Home => Directory.CreateDirectory(_t["home"]).FullName;

    [Fact]
    public void N_child_channels_are_N_server_processes_all_gone_after_dispose()
    {
        File.WriteAllText(Path.Combine(Root, "f.txt"), "hello");
        var pids = new List<int>();
        var pool = ServeClientPool.Open(() =>
        {
            var c = LocalServe.Child(Root, Home);
            lock (pids) pids.Add(c.ProcessId);
            return c;
        }, 3, caps: 0);
        try
        {
            Assert.Equal(3, pool.Size);
            Assert.Equal(3, pids.Distinct().Count());
            Assert.Equal(pids.Order(), pool.Clients.Select(c => ((ProcessChannel)c.Channel).ProcessId).Order());
            Assert.All(pids, pid => Assert.True(LocalServe.Running(pid)));
            // Each session answers on its own.
            foreach (var c in pool.Clients) Assert.Equal(5UL, c.StatOrNull("f.txt", CancellationToken.None)!.Size);
        }
        finally { pool.Dispose(); }
        Assert.All(pids, pid => Assert.False(LocalServe.Running(pid), $"bcmr serve {pid} still running after the pool was disposed"));
    }

    [Fact]
    public void N_tcp_channels_are_N_connections_to_the_listener()
    {
        string log;
        using (var server = new LocalServe.Listener(Root, Home))
        {
            using (var pool = ServeClientPool.Open(() => TcpChannel.Connect(server.Endpoint), 4, caps: 0))
            {
                var ends = pool.Clients.Select(c => ((TcpChannel)c.Channel).LocalEndPoint.ToString()).ToList();
                Assert.Equal(4, ends.Distinct().Count());
                foreach (var c in pool.Clients) Assert.Null(c.StatOrNull("missing", CancellationToken.None));
            }
            server.Dispose();
            log = server.Log;
        }
        Assert.Equal(4, log.Split('\n').Count(l => l.EndsWith(": connected", StringComparison.Ordinal)));
        // Each ended by its client (Done), not by the listener stopping.
        Assert.Equal(4, log.Split('\n').Count(l => l.EndsWith("session ended (Done)", StringComparison.Ordinal)));
    }

    [Fact]
    public void Rent_waits_while_every_session_is_out_and_return_lets_the_next_worker_in()
    {
        using var pool = ServeClientPool.Open(() => LocalServe.Child(Root, Home), 2, caps: 0);
        var a = pool.Rent();
        var b = pool.Rent();
        Assert.NotSame(a, b);
        using (var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
            Assert.ThrowsAny<OperationCanceledException>(() => pool.Rent(soon.Token));

        ServeClient? third = null;
        var waiter = new Thread(() => third = pool.Rent()) { IsBackground = true };
        waiter.Start();
        Assert.False(waiter.Join(TimeSpan.FromMilliseconds(100)));
        pool.Return(b);
        Assert.True(waiter.Join(TimeSpan.FromSeconds(10)), "Rent did not wake up on Return");
        Assert.Same(b, third);
        Assert.Throws<InvalidOperationException>(() => { pool.Return(a); pool.Return(a); });
    }

    [Fact]
    public void A_channel_that_cannot_open_closes_the_others_and_names_its_server()
    {
        var pids = new List<int>();
        int n = 0;
        var e = Assert.Throws<BcmrException>(() => ServeClientPool.Open(() =>
        {
            if (Interlocked.Increment(ref n) == 3)
                return ProcessChannel.Start(["/nonexistent/bcmr", "serve"], "third-server");
            var c = LocalServe.Child(Root, Home);
            lock (pids) pids.Add(c.ProcessId);
            return c;
        }, 3, caps: 0));
        Assert.Equal(BcmrErrorCode.ConnectionFailed, e.Code);
        Assert.Contains("third-server", e.Message);
        Assert.Equal(2, pids.Count);
        Assert.All(pids, pid => Assert.False(LocalServe.Running(pid), $"bcmr serve {pid} left running"));
    }
}
