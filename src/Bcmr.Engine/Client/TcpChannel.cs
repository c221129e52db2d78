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

    private TcpChannel(Socket socket, string remote)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Remote = remote;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    public string Remote { get; }

    public string Transport => "tcp";

    /// <summary>Our end of the connection (one per channel: what tells pooled connections apart).</summary>
    public IPEndPoint LocalEndPoint { get; }

    // One stream both ways: a socket takes a read and a write at the same time.
    public Stream ToServer => _stream;

    public Stream FromServer => _stream;

    /// <summary>Connects to <paramref name="endpoint"/> within <paramref name="timeout"/> (default 10 s, as ssh's
    /// ConnectTimeout here). Throws <see cref="BcmrException"/> (ConnectionFailed) naming the address and the cause.</summary>
    public static TcpChannel Connect(IPEndPoint endpoint, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var remote = endpoint.ToString();
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
            socket.ConnectAsync(endpoint, cts.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            var why = e is OperationCanceledException ? "timed out" : e.Message;
            throw new BcmrException(BcmrErrorCode.ConnectionFailed, remote, $"{remote}: cannot connect: {why}", e);
        }
        return new TcpChannel(socket, remote);
    }

    /// <summary>How long a read may wait (Infinite: as long as it takes); the direct channel bounds its handshake.</summary>
    internal TimeSpan ReadTimeout
    {
        set => _socket.ReceiveTimeout = value == Timeout.InfiniteTimeSpan ? 0 : (int)value.TotalMilliseconds;
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
