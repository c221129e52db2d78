using System.Net;
using System.Net.Sockets;

namespace Bcmr.Engine.Client;

/// <summary>
/// A TCP connection to <c>bcmr serve --listen ADDR:PORT</c> (or <c>Start-BcmrServe -Listen</c>). Plain bytes, no
/// authentication: the listener binds loopback unless told otherwise, and an AEAD stage belongs between this and the
/// client before it is used across a network.
/// </summary>
public sealed class TcpChannel : IServeChannel
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    private TcpChannel(Socket socket, string remote, string transport = "tcp")
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Remote = remote;
        Transport = transport;
        LocalEndPoint = socket.LocalEndPoint!;
    }

    public string Remote { get; }

    public string Transport { get; }

    /// <summary>Our end of the connection (one per channel: what tells pooled connections apart).</summary>
    public EndPoint LocalEndPoint { get; }

    /// <summary>Connects to the Unix socket at <paramref name="path"/>: a resident server's, reached through the ssh
    /// master's forward (<paramref name="transport"/> "ssh"). Throws <see cref="BcmrException"/> (ConnectionFailed).</summary>
    public static TcpChannel ConnectLocal(string path, string remote, string transport)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { socket.Connect(new UnixDomainSocketEndPoint(path)); }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new BcmrException(BcmrErrorCode.ConnectionFailed, remote, $"{remote}: cannot connect to {path}: {e.Message}", e);
        }
        return new TcpChannel(socket, remote, transport);
    }

    // One stream both ways: a socket takes a read and a write at the same time.
    public Stream ToServer => _stream;

    public Stream FromServer => _stream;

    /// <summary>Connects to <paramref name="endpoint"/> within <paramref name="timeout"/> (default 10 s, as ssh's
    /// ConnectTimeout here). Throws <see cref="BcmrException"/> (ConnectionFailed) naming the address and the cause.</summary>
    public static TcpChannel Connect(IPEndPoint endpoint, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var remote = endpoint.ToString();
        Socket socket;
        try { socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }; }
        catch (SocketException e) // no IPv6 on this host, say
        {
            throw new BcmrException(BcmrErrorCode.ConnectionFailed, remote, $"{remote}: cannot connect: {e.Message}", e);
        }
        // A blocking connect, cut by closing the socket when the time is up: a socket that ever ran an asynchronous
        // operation runs every later blocking call through .NET's event loop (measured: 30 000 sched_yield calls and
        // a third more time per GiB), and everything after the connect here is blocking.
        using (var cutoff = new Cutoff(timeout ?? TimeSpan.FromSeconds(10), socket.Dispose))
        {
            try
            {
                socket.Connect(endpoint);
                if (!cutoff.Done()) throw new ObjectDisposedException(nameof(Socket));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                socket.Dispose();
                var why = cutoff.Cut ? "timed out" : e.Message;
                throw new BcmrException(BcmrErrorCode.ConnectionFailed, remote, $"{remote}: cannot connect: {why}", e);
            }
        }
        return new TcpChannel(socket, remote);
    }

    public void CloseOutput()
    {
        try { _socket.Shutdown(SocketShutdown.Send); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    /// <summary>Shuts the socket down both ways, which wakes a blocked read (it sees the end) and fails every later
    /// write; the socket itself is closed by <see cref="Dispose"/>, once nobody is inside a call on it.</summary>
    public void Abort()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    /// <summary>A TCP peer tells nothing of how it ended.</summary>
    public PeerEnd WaitForPeer(TimeSpan wait) => new(null, "", null);

    public BcmrException? ExplainStartFailure(int exitCode, string detail) => null;

    public void Dispose() => _stream.Dispose();
}
