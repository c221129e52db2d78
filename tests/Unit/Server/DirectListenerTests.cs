using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bcmr.Engine;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;

namespace Bcmr.Tests.Server;

/// <summary>
/// DirectListener, the server's end of a <c>--direct direct</c> rendezvous, over real TCP on 127.0.0.1 and ::1: the
/// client holding the secret gets through (past squatters that connect first, with garbage, with nothing, or many
/// of them), with keys that match its own; after it, or after the wait runs out, the port is closed.
/// </summary>
public sealed class DirectListenerTests : IDisposable
{
    private static readonly TimeSpan Served = TimeSpan.FromSeconds(3);
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            try { _owned[i].Dispose(); } catch (Exception) { /* best effort */ }
        }
    }

    private T Own<T>(T d) where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    private DirectListener Start(string address) => Own(DirectListener.Start(IPAddress.Parse(address), TextWriter.Null));

    private Socket Connect(IPEndPoint ep)
    {
        var s = Own(new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 5000, SendTimeout = 5000 });
        s.Connect(ep);
        return s;
    }

    /// <summary>A client that holds <paramref name="secret"/>: connects, answers the challenge, has its keys.</summary>
    private (Socket Socket, NetworkStream Stream, DirectKeys Keys) Client(IPEndPoint ep, byte[] secret)
    {
        var s = Connect(ep);
        var stream = Own(new NetworkStream(s, ownsSocket: false));
        return (s, stream, DirectHandshake.Client(stream, secret));
    }

    /// <summary>Reads the AuthChallenge every accepted connection is sent first: proof that the listener has taken it on.</summary>
    private static void ReadChallenge(Socket s)
    {
        var frame = new byte[37];
        for (int got = 0; got < frame.Length;)
        {
            int n = s.Receive(frame, got, frame.Length - got, SocketFlags.None);
            Assert.True(n > 0, "the listener closed a connection before sending its challenge");
            got += n;
        }
        Assert.Equal(33u, BinaryPrimitives.ReadUInt32LittleEndian(frame));
        Assert.Equal(0x8c, frame[4]);
    }

    /// <summary>The listener has closed this connection: the next read sees the end (or a reset), within 5 s.</summary>
    private static void AssertClosedByListener(Socket s, string what)
    {
        var buffer = new byte[64];
        try
        {
            int n = s.Receive(buffer);
            Assert.True(n == 0, $"{what}: {n} more bytes instead of the end of the connection");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            Assert.Fail($"{what}: the listener did not close the connection within 5 s");
        }
    }

    private void AssertRefused(IPEndPoint ep)
    {
        using var s = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        var e = Assert.Throws<SocketException>(() => s.Connect(ep));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    private static void AssertSameKeys(DirectKeys a, DirectKeys b)
    {
        Assert.Equal(a.AuthKey, b.AuthKey);
        Assert.Equal(a.ClientToServer, b.ClientToServer);
        Assert.Equal(a.ServerToClient, b.ServerToClient);
    }

    private static (Socket Socket, DirectKeys Keys) Winner(DirectListener listener, out TimeSpan took)
    {
        var clock = Stopwatch.StartNew();
        var won = listener.WaitForClient(Served, CancellationToken.None);
        took = clock.Elapsed;
        Assert.True(won is not null, $"the client holding the secret was not served within {Served.TotalSeconds} s");
        Assert.True(took < Served, $"served after {took.TotalSeconds:F1} s");
        return won.Value;
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void The_client_with_the_secret_is_served_and_data_round_trips_both_ways(string address)
    {
        var listener = Start(address);
        Assert.Equal(IPAddress.Parse(address), listener.Endpoint.Address);
        Assert.NotEqual(0, listener.Endpoint.Port);
        Assert.Equal(address.Contains(':') ? $"[{address}]:{listener.Endpoint.Port}" : $"{address}:{listener.Endpoint.Port}", listener.Address);
        Assert.Equal(32, listener.Secret.Length);

        var (_, clientStream, clientKeys) = Client(listener.Endpoint, listener.Secret);
        var (socket, keys) = Winner(listener, out _);
        Own(socket);
        AssertSameKeys(clientKeys, keys);
        Assert.Equal(0, listener.Refused);

        var serverStream = Own(new NetworkStream(socket, ownsSocket: false));
        var up = new byte[600_000];
        var down = new byte[300_000];
        new Random(1).NextBytes(up);
        new Random(2).NextBytes(down);
        var send = Task.Run(() =>
        {
            using var w = new AeadWriter(clientStream, clientKeys.ClientToServer, AeadDirection.ClientToServer);
            w.Write(up);
        });
        using (var r = new AeadReader(serverStream, keys.ClientToServer, AeadDirection.ClientToServer))
        {
            var got = new byte[up.Length];
            r.ReadExactly(got);
            Assert.True(up.AsSpan().SequenceEqual(got), "client to server: the bytes differ");
        }
        Assert.True(send.Wait(TimeSpan.FromSeconds(10)));
        var reply = Task.Run(() =>
        {
            using var w = new AeadWriter(serverStream, keys.ServerToClient, AeadDirection.ServerToClient);
            w.Write(down);
            socket.Shutdown(SocketShutdown.Send);
        });
        using (var r = new AeadReader(clientStream, clientKeys.ServerToClient, AeadDirection.ServerToClient))
        {
            var got = new MemoryStream();
            r.CopyTo(got);
            Assert.True(down.AsSpan().SequenceEqual(got.ToArray()), "server to client: the bytes differ");
        }
        Assert.True(reply.Wait(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void A_wrong_secret_is_dropped_and_the_right_client_still_wins(string address)
    {
        var listener = Start(address);
        var (wrong, _, _) = Client(listener.Endpoint, DirectKeys.NewSecret());
        AssertClosedByListener(wrong, "the client with a wrong secret");
        Assert.Equal(1, listener.Refused);

        var (_, _, clientKeys) = Client(listener.Endpoint, listener.Secret);
        var (socket, keys) = Winner(listener, out _);
        Own(socket);
        AssertSameKeys(clientKeys, keys);
        Assert.Equal(1, listener.Refused);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void A_squatter_sending_garbage_first_does_not_keep_the_client_out(string address)
    {
        var listener = Start(address);
        var squatter = Connect(listener.Endpoint);
        ReadChallenge(squatter);
        var garbage = new byte[37];
        new Random(3).NextBytes(garbage);
        squatter.Send(garbage);

        // The client comes right behind it, while the garbage may still be being judged.
        var (_, _, clientKeys) = Client(listener.Endpoint, listener.Secret);
        var (socket, keys) = Winner(listener, out _);
        Own(socket);
        AssertSameKeys(clientKeys, keys);
        AssertClosedByListener(squatter, "the squatter");
        Assert.InRange(listener.Refused, 0, 1);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void A_silent_squatter_that_stays_connected_does_not_keep_the_client_out(string address)
    {
        var listener = Start(address);
        var squatter = Connect(listener.Endpoint);
        ReadChallenge(squatter); // taken on, and now it says nothing

        var (_, _, clientKeys) = Client(listener.Endpoint, listener.Secret);
        var (socket, keys) = Winner(listener, out _);
        Own(socket);
        AssertSameKeys(clientKeys, keys);
        // Once the client has won, the squatter is dropped too: nothing is left waiting on the listener.
        AssertClosedByListener(squatter, "the silent squatter");
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void Many_silent_squatters_do_not_keep_the_client_out(string address)
    {
        var listener = Start(address);
        var squatters = new List<Socket>();
        for (int i = 0; i < DirectListener.MaxPending + 4; i++)
        {
            var s = Connect(listener.Endpoint);
            ReadChallenge(s);
            squatters.Add(s);
        }
        // The oldest four were pushed out to make room; the newest sixteen still wait.
        for (int i = 0; i < 4; i++) AssertClosedByListener(squatters[i], $"squatter {i}");
        for (int i = 4; i < squatters.Count; i++)
            Assert.False(squatters[i].Poll(0, SelectMode.SelectRead), $"squatter {i} was dropped with room still left");

        var (_, _, clientKeys) = Client(listener.Endpoint, listener.Secret);
        var (socket, keys) = Winner(listener, out _);
        Own(socket);
        AssertSameKeys(clientKeys, keys);
        for (int i = 4; i < squatters.Count; i++) AssertClosedByListener(squatters[i], $"squatter {i}");
        AssertRefused(listener.Endpoint);
    }

    [Fact]
    public void A_flood_from_elsewhere_does_not_push_out_the_ssh_clients_own_connection()
    {
        // The ssh client is 127.0.0.2 (SSH_CONNECTION's first field); the flood comes from 127.0.0.1. Without the
        // preference the client, oldest of all, would be the first pushed out.
        var listener = Own(DirectListener.Start(IPAddress.Loopback, TextWriter.Null, expectedPeer: IPAddress.Parse("127.0.0.2")));
        var client = Own(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 5000, SendTimeout = 5000 });
        client.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        client.Connect(listener.Endpoint);
        var stream = Own(new NetworkStream(client, ownsSocket: false));
        var flood = new List<Socket>();
        for (int i = 0; i < DirectListener.MaxPending * 2; i++)
        {
            var s = Connect(listener.Endpoint);
            ReadChallenge(s);
            flood.Add(s);
        }
        var clientKeys = DirectHandshake.Client(stream, listener.Secret); // answers the challenge it was sent first
        var (socket, keys) = Winner(listener, out _);
        Own(socket);
        AssertSameKeys(clientKeys, keys);
        Assert.Equal("127.0.0.2", ((IPEndPoint)socket.RemoteEndPoint!).Address.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void After_the_winner_the_port_is_closed(string address)
    {
        var listener = Start(address);
        var (clientSocket, _, _) = Client(listener.Endpoint, listener.Secret);
        var (socket, _) = Winner(listener, out _);
        Own(socket);
        AssertRefused(listener.Endpoint);
        // The winner's own connection is unaffected.
        Assert.True(socket.Connected);
        socket.Send("ok"u8);
        var two = new byte[2];
        Assert.Equal(2, clientSocket.Receive(two));
        Assert.Equal("ok"u8.ToArray(), two);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void With_no_client_the_wait_ends_after_its_timeout_and_the_port_is_closed(string address)
    {
        var listener = Start(address);
        var clock = Stopwatch.StartNew();
        var won = listener.WaitForClient(TimeSpan.FromSeconds(1), CancellationToken.None);
        var took = clock.Elapsed;
        Assert.Null(won);
        Assert.InRange(took.TotalSeconds, 0.9, 3.0);
        AssertRefused(listener.Endpoint);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void A_cancelled_wait_returns_null_and_closes_the_port(string address)
    {
        var listener = Start(address);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var clock = Stopwatch.StartNew();
        Assert.Null(listener.WaitForClient(TimeSpan.FromSeconds(30), cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"cancelled after {clock.Elapsed.TotalSeconds:F1} s");
        AssertRefused(listener.Endpoint);
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    public void Every_interface_is_refused(string address)
    {
        var e = Assert.Throws<BcmrException>(() => DirectListener.Start(IPAddress.Parse(address), TextWriter.Null));
        Assert.Equal(BcmrErrorCode.InvalidArgument, e.Code);
        Assert.Contains("every interface", e.Message);
    }

    [Fact]
    public void Zero_zero_zero_zero_written_as_IPv6_is_not_bound_either()
    {
        // ::ffff:0.0.0.0 on a dual-stack socket would be every IPv4 interface; the socket is IPv6-only, so the bind
        // itself fails (an IoError, not the InvalidArgument above): either way nothing listens.
        var e = Assert.Throws<BcmrException>(() => DirectListener.Start(IPAddress.Parse("::ffff:0.0.0.0"), TextWriter.Null));
        Assert.Contains("direct channel", e.Message);
    }
}
