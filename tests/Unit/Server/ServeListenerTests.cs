using Bcmr.Engine.Local;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Bcmr.Engine;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>ServeListener (bcmr serve --listen, Start-BcmrServe -Listen): the loopback-only rule, endpoint parsing,
/// sessions over real TCP connections, and stopping with clients connected.</summary>
public sealed class ServeListenerTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    private ServeOptions Options => new() { Root = _t.Path, Log = TextWriter.Null };

    [Theory]
    [InlineData("127.0.0.1:7070", "127.0.0.1", 7070)]
    [InlineData("localhost:0", "127.0.0.1", 0)]
    [InlineData("[::1]:65535", "::1", 65535)]
    [InlineData("0.0.0.0:22", "0.0.0.0", 22)]
    [InlineData("[::]:1", "::", 1)]
    public void Endpoints_parse(string text, string address, int port)
    {
        var ep = ServeListener.ParseEndpoint(text);
        Assert.Equal(IPAddress.Parse(address), ep.Address);
        Assert.Equal(port, ep.Port);
    }

    [Theory]
    [InlineData("7070")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData(":7070")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:-1")]
    [InlineData("::1:7070")]            // IPv6 needs brackets
    [InlineData("example.com:7070")]    // names are not resolved: they could slip past the loopback rule
    public void Bad_endpoints_are_usage_errors(string text)
    {
        var e = Assert.Throws<BcmrException>(() => ServeListener.ParseEndpoint(text));
        Assert.Equal(BcmrErrorCode.InvalidArgument, e.Code);
        Assert.Contains(text, e.Message);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    [InlineData("192.168.1.10")]
    [InlineData("10.0.0.1")]
    public void A_non_loopback_address_is_refused_without_allowRemote_before_anything_is_bound(string address)
    {
        var e = Assert.Throws<BcmrException>(() => ServeListener.Start(new IPEndPoint(IPAddress.Parse(address), 0), Options, allowRemote: false));
        Assert.Equal(BcmrErrorCode.InvalidArgument, e.Code);
        Assert.Contains("refusing to listen", e.Message);
        Assert.Contains("no authentication", e.Message);
    }

    [Fact]
    public void With_allowRemote_all_interfaces_are_bound()
    {
        using var cts = new CancellationTokenSource();
        using var listener = ServeListener.Start(new IPEndPoint(IPAddress.Any, 0), Options, allowRemote: true);
        Assert.Equal(IPAddress.Any, listener.LocalEndpoint.Address);
        var run = Task.Run(() => listener.Run(cts.Token));
        using (var client = new TcpClient("127.0.0.1", listener.LocalEndpoint.Port))
        using (var c = ServeConnection.OverStream(client.GetStream()))
            Assert.Equal(Wire.Version, c.Handshake().Version);
        cts.Cancel();
        Assert.True(run.Wait(TimeSpan.FromSeconds(5)));
    }

    /// <summary>A resident server (--ssh-persist): sessions over its Unix socket (mode 0600), none cut off for being
    /// long, and once no connection has come for its idle time it stops by itself and removes its socket; a second
    /// one at the same path is refused while the first listens.</summary>
    [Fact]
    public void A_resident_server_serves_its_unix_socket_and_stops_after_its_idle_time_removing_the_socket()
    {
        var path = Path.Combine(_t.Path, "r.sock");
        using var listener = ServeListener.StartLocal(path, Options, TimeSpan.FromSeconds(1));
        Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(path));
        var again = Assert.Throws<BcmrException>(() => ServeListener.StartLocal(path, Options, TimeSpan.FromSeconds(1)));
        Assert.Equal(BcmrErrorCode.AlreadyExists, again.Code);
        var run = Task.Factory.StartNew(() => listener.Run(CancellationToken.None), TaskCreationOptions.LongRunning);
        var clock = Stopwatch.StartNew();
        // A session open for longer than the idle time keeps the server.
        OneLongSession(path, run, TimeSpan.FromMilliseconds(2500), "kept.bin", "still served");
        Assert.Equal("still served", File.ReadAllText(Path.Combine(_t.Path, "kept.bin")));
        Assert.True(run.Wait(TimeSpan.FromSeconds(10)), "the idle resident server did not stop");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(3), $"stopped {clock.Elapsed} after start, before its idle time after the session");
        Assert.False(File.Exists(path));
    }

    /// <summary>A session with the resident server at <paramref name="path"/> that lasts <paramref name="length"/>
    /// (the server, running as <paramref name="run"/>, must not stop meanwhile) and then uploads a file.</summary>
    private static void OneLongSession(string path, Task run, TimeSpan length, string file, string text)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        using var c = ServeConnection.OverStream(new NetworkStream(socket));
        c.Handshake();
        Thread.Sleep(length);
        Assert.False(run.IsCompleted, "the server stopped inside a session");
        Assert.IsType<OkResponse>(c.Put(file, System.Text.Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>A resident server kept busy by one run after another still ends past its maximum age, between two
    /// sessions (so that an upgraded bcmr takes its place), never inside one.</summary>
    [Fact]
    public void A_busy_resident_server_stops_past_its_maximum_age_between_sessions()
    {
        var path = Path.Combine(_t.Path, "old.sock");
        using var listener = ServeListener.StartLocal(path, Options, TimeSpan.FromSeconds(60), maxAge: TimeSpan.FromSeconds(2));
        var run = Task.Factory.StartNew(() => listener.Run(CancellationToken.None), TaskCreationOptions.LongRunning);
        OneLongSession(path, run, TimeSpan.FromSeconds(3), "late.bin", "served");
        Assert.True(run.Wait(TimeSpan.FromSeconds(5)), "the old resident server did not stop after its last session");
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_missing_root_or_a_busy_port_fails_at_start()
    {
        var e = Assert.Throws<BcmrException>(() => ServeListener.Start(new IPEndPoint(IPAddress.Loopback, 0),
            new ServeOptions { Root = _t["missing"], Settings = TestSettings.Isolated }, allowRemote: false));
        Assert.Equal(BcmrErrorCode.NotFound, e.Code);

        using var first = ServeListener.Start(new IPEndPoint(IPAddress.Loopback, 0), Options, allowRemote: false);
        var busy = Assert.Throws<BcmrException>(() => ServeListener.Start(first.LocalEndpoint, Options, allowRemote: false));
        Assert.Equal(BcmrErrorCode.IoError, busy.Code);
        Assert.Contains(first.LocalEndpoint.ToString(), busy.Message);
    }

    [Fact]
    public void Concurrent_clients_each_get_a_session_and_stop_interrupts_an_upload_keeping_its_partial_file()
    {
        using var cts = new CancellationTokenSource();
        using var listener = ServeListener.Start(new IPEndPoint(IPAddress.Loopback, 0), Options, allowRemote: false);
        var run = Task.Factory.StartNew(() => listener.Run(cts.Token), TaskCreationOptions.LongRunning);
        var port = listener.LocalEndpoint.Port;

        var data = new byte[3 * 1024 * 1024 + 11];
        new Random(5).NextBytes(data);
        Parallel.For(0, 4, i =>
        {
            using var client = new TcpClient("127.0.0.1", port);
            using var c = ServeConnection.OverStream(client.GetStream());
            c.Handshake();
            Assert.IsType<OkResponse>(c.Put($"c{i}.bin", data));
            c.Send(new GetRequest($"c{i}.bin", 0));
            var (bytes, end) = c.ReceiveGet();
            Assert.IsType<OkResponse>(end);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(bytes));
            c.EndSession();
        });
        Assert.True(SpinWait.SpinUntil(() => listener.ConnectionsServed == 4, 5000));

        // An upload half sent when the listener stops: the bytes received stay as the partial file, not the final name.
        using var cut = new TcpClient("127.0.0.1", port);
        using var cc = ServeConnection.OverStream(cut.GetStream());
        cc.Handshake();
        cc.Send(new PutRequest("cut.bin", 16 * 1024 * 1024, 0));
        cc.SendData(data.AsSpan(0, 1024 * 1024));
        cc.Writer.Flush();
        var partial = Temporaries.PartialPath(_t["cut.bin"]);
        // The bytes go to a staging file beside the destination until the upload completes or is cut.
        Assert.True(SpinWait.SpinUntil(() => Directory.EnumerateFiles(_t.Path, ".cut.bin*").Any(f => new FileInfo(f).Length > 0), 5000), "the upload never started");
        var clock = Stopwatch.StartNew();
        cts.Cancel();
        Assert.True(run.Wait(TimeSpan.FromSeconds(5)), "Run did not return after cancellation");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"stopping took {clock.Elapsed}");
        Assert.False(File.Exists(_t["cut.bin"]));
        Assert.True(File.Exists(partial), "the bytes received were not kept for resume");
        Assert.Equal([Path.GetFileName(partial)], Directory.EnumerateFiles(_t.Path, ".cut.bin*").Select(Path.GetFileName)); // no staging file left
        Assert.Throws<SocketException>(() => new TcpClient("127.0.0.1", port).Dispose());
    }

    [Fact]
    public void One_connection_over_the_limit_is_told_the_server_is_busy_and_a_place_that_frees_up_is_served()
    {
        using var cts = new CancellationTokenSource();
        using var listener = ServeListener.Start(new IPEndPoint(IPAddress.Loopback, 0), Options, allowRemote: false, maxConnections: 2);
        var run = Task.Factory.StartNew(() => listener.Run(cts.Token), TaskCreationOptions.LongRunning);
        var port = listener.LocalEndpoint.Port;
        var first = new TcpClient("127.0.0.1", port);
        var c1 = ServeConnection.OverStream(first.GetStream());
        c1.Handshake();
        using var second = new TcpClient("127.0.0.1", port);
        using var c2 = ServeConnection.OverStream(second.GetStream());
        c2.Handshake();

        using (var third = new TcpClient("127.0.0.1", port))
        using (var c3 = ServeConnection.OverStream(third.GetStream()))
            Assert.Contains("server busy", Assert.IsType<ErrorResponse>(c3.Receive()).Text);

        c1.EndSession();
        c1.Dispose();
        first.Dispose();
        Assert.True(SpinWait.SpinUntil(() =>
        {
            using var again = new TcpClient("127.0.0.1", port);
            using var c = ServeConnection.OverStream(again.GetStream());
            c.Send(new Hello(Wire.Version, 0));
            return c.Receive() is Welcome;
        }, 5000), "no place freed up after a client left");
        cts.Cancel();
        Assert.True(run.Wait(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void A_connection_that_sends_nothing_is_closed_after_the_idle_timeout()
    {
        using var cts = new CancellationTokenSource();
        using var listener = ServeListener.Start(new IPEndPoint(IPAddress.Loopback, 0), Options, allowRemote: false,
            idleTimeout: TimeSpan.FromMilliseconds(300));
        var run = Task.Factory.StartNew(() => listener.Run(cts.Token), TaskCreationOptions.LongRunning);
        using var client = new TcpClient("127.0.0.1", listener.LocalEndpoint.Port);
        client.ReceiveTimeout = 30_000; // far longer than the server's: it is the server that must hang up
        using var c = ServeConnection.OverStream(client.GetStream());
        c.Handshake();
        Assert.Equal(0, client.GetStream().Read(new byte[16])); // end of stream: the server closed the idle connection
        cts.Cancel();
        Assert.True(run.Wait(TimeSpan.FromSeconds(5)));
    }
}
