using System.Net;
using System.Net.Sockets;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Server;

/// <summary>
/// The server's end of one rendezvous (<c>--direct direct</c>): a TCP listener on the address the ssh connection came
/// in on, an ephemeral port, and a fresh secret that only the ssh channel carries to the client. It accepts until one
/// connection has authenticated (<see cref="DirectHandshake"/>), then closes: a second connection is refused by the
/// system. A connection that fails authentication is dropped and the listener goes on, so a squatter that connects
/// first, with garbage or with nothing at all, does not keep the real client out: every connection authenticates on
/// its own, each within <see cref="PerConnectionLimit"/>, and at most <see cref="MaxPending"/> wait at once (a new one
/// pushes out the oldest that does not come from the ssh client's address).
/// </summary>
public sealed class DirectListener : IDisposable
{
    /// <summary>Connections authenticating at once; one more drops the oldest not from the ssh client's address.</summary>
    public const int MaxPending = 16;

    /// <summary>How long one connection may take to send its AuthHello: the client answers the challenge at once, so
    /// this is a round trip or two, generously.</summary>
    public static readonly TimeSpan PerConnectionLimit = TimeSpan.FromSeconds(10);

    private readonly TcpListener _listener;
    private readonly TextWriter? _log;
    /// <summary>The ssh client's address (SSH_CONNECTION's first field), whose connections are the last pushed out.</summary>
    private readonly IPAddress? _expectedPeer;
    private readonly object _lock = new();
    private readonly LinkedList<Socket> _pending = new();
    private readonly TaskCompletionSource<(Socket Socket, DirectKeys Keys)> _winner = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private int _refused;
    private long _lastRefusalLog;
    private bool _closed, _collected;

    private DirectListener(TcpListener listener, TextWriter? log, IPAddress? expectedPeer)
    {
        _listener = listener;
        _log = log;
        _expectedPeer = expectedPeer;
        Endpoint = (IPEndPoint)listener.LocalEndpoint;
        Secret = DirectKeys.NewSecret();
    }

    /// <summary>The bound address and port.</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>The rendezvous secret: sent to the client over ssh, never over this listener.</summary>
    public byte[] Secret { get; }

    /// <summary>Connections dropped because they did not authenticate.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>"127.0.0.1:40123" or "[::1]:40123", as DirectChannelReady carries it.</summary>
    public string Address => Format(Endpoint);

    private static string Format(IPEndPoint ep) =>
        ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";

    /// <summary>Binds <paramref name="address"/> on an ephemeral port and starts accepting. Throws
    /// <see cref="BcmrException"/> (IoError) when it cannot be bound, InvalidArgument for an unspecified address
    /// (0.0.0.0, ::): a direct channel is never offered on every interface.</summary>
    /// <param name="expectedPeer">The ssh client's address, if known: when the listener is full, connections from
    /// elsewhere are dropped first.</param>
    public static DirectListener Start(IPAddress address, TextWriter? log = null, IPAddress? expectedPeer = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"a direct channel is never bound on every interface ({address})");
        var listener = new TcpListener(new IPEndPoint(address, 0));
        try { listener.Start(MaxPending); }
        catch (SocketException e)
        {
            throw new BcmrException(BcmrErrorCode.IoError, null, $"cannot listen for a direct channel on {address}: {e.Message}", e);
        }
        var direct = new DirectListener(listener, log, expectedPeer);
        new Thread(direct.AcceptLoop) { IsBackground = true, Name = "bcmr-direct-accept" }.Start();
        return direct;
    }

    /// <summary>Waits for the first connection that authenticates, at most <paramref name="timeout"/> or until
    /// <paramref name="cancel"/>; then stops listening either way. The socket and its keys, or null.</summary>
    public (Socket Socket, DirectKeys Keys)? WaitForClient(TimeSpan timeout, CancellationToken cancel)
    {
        try
        {
            var task = _winner.Task;
            if (!task.Wait(timeout, cancel)) return null;
            _collected = true;
            return task.Result;
        }
        catch (OperationCanceledException) { return null; }
        finally { Close(); }
    }

    // Blocking sockets throughout, on threads of their own: a .NET socket that ever ran an asynchronous operation runs
    // every later blocking call through the runtime's event loop, and the session that follows reads and writes
    // blocking (see DirectHandshake.Server). At most MaxPending + 1 threads, each bounded in time.
    private void AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = _listener.AcceptSocket(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                if (_stop.IsCancellationRequested) return;
                Thread.Sleep(50); // out of descriptors: do not spin
                continue;
            }
            try { new Thread(() => Authenticate(socket)) { IsBackground = true, Name = "bcmr-direct-auth" }.Start(); }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException) { Drop(socket); }
        }
    }

    private void Authenticate(Socket socket)
    {
        // Any socket here may be closed under us at any time (pushed out, the listener closing, the time limit):
        // nothing on this thread may let that escape, it would end the process.
        try
        {
            socket.NoDelay = true;
            Authenticate(socket, (IPEndPoint?)socket.RemoteEndPoint);
        }
        catch (ObjectDisposedException) { Drop(socket); }
        catch (SocketException) { Drop(socket); }
    }

    private void Authenticate(Socket socket, IPEndPoint? from)
    {
        var peer = from?.ToString() ?? "?";
        LinkedListNode<Socket> node;
        Socket? pushedOut = null;
        lock (_lock)
        {
            if (_closed)
            {
                socket.Dispose();
                return;
            }
            node = _pending.AddLast(socket);
            if (_pending.Count > MaxPending)
            {
                // Full: the oldest connection that does not come from the ssh client's address goes, so a flood from
                // elsewhere cannot push the real client out (one from that address too only when all are).
                var victim = _pending.First!;
                for (var n = _pending.First; n is not null; n = n.Next)
                    if (!FromExpectedPeer(n.Value)) { victim = n; break; }
                pushedOut = victim.Value;
                _pending.Remove(victim);
            }
        }
        Drop(pushedOut);
        DirectKeys? keys = null;
        // One deadline for the whole proof (closing the socket), however slowly a peer trickles its bytes.
        using (var cutoff = new Cutoff(PerConnectionLimit, () => Drop(socket)))
        {
            try { keys = DirectHandshake.Server(new NetworkStream(socket, ownsSocket: false), Secret); }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
            if (!cutoff.Done()) // cut off at the limit: gone
            {
                keys?.Dispose();
                keys = null;
            }
        }
        bool won = false;
        lock (_lock)
        {
            bool stillPending = node.List is not null;
            if (stillPending) _pending.Remove(node);
            if (keys is not null && stillPending && !_closed) won = _winner.TrySetResult((socket, keys));
        }
        if (!won) keys?.Dispose(); // proved itself, but too late: the listener has its client
        if (won)
        {
            _log?.WriteLine($"bcmr serve: direct channel: {peer} authenticated");
            Close();
            return;
        }
        if (keys is null && !_stop.IsCancellationRequested)
        {
            int refused = Interlocked.Increment(ref _refused);
            // One line for the first, then one a second at most: a flood must not flood the ssh session's stderr.
            long now = Environment.TickCount64;
            if (refused == 1 || now - Interlocked.Read(ref _lastRefusalLog) >= 1000)
            {
                Interlocked.Exchange(ref _lastRefusalLog, now);
                _log?.WriteLine($"bcmr serve: direct channel: a connection from {peer} did not authenticate; dropped (still listening; {refused} so far)");
            }
        }
        Drop(socket);
    }

    private bool FromExpectedPeer(Socket socket)
    {
        if (_expectedPeer is null) return false;
        try { return socket.RemoteEndPoint is IPEndPoint ep && Normal(ep.Address).Equals(Normal(_expectedPeer)); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { return false; }
    }

    private static IPAddress Normal(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    private static void Drop(Socket? socket)
    {
        if (socket is null) return;
        try { socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        socket.Dispose();
    }

    /// <summary>Stops listening and drops every connection still authenticating; the winner's socket is the caller's.</summary>
    private void Close()
    {
        List<Socket> pending;
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            pending = _pending.ToList();
            _pending.Clear();
            // Inside the lock, so that a second caller (the winner's thread and WaitForClient both close) returns
            // only once the port is shut: a client that connects after WaitForClient returned must be refused.
            _stop.Cancel();
            _listener.Stop();
            // Nobody else may prove anything with it now.
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(Secret);
        }
        foreach (var s in pending) Drop(s);
    }

    /// <summary>Stops listening; a winner nobody collected is closed.</summary>
    public void Dispose()
    {
        Close();
        if (_winner.Task.IsCompletedSuccessfully && !_collected) Drop(_winner.Task.Result.Socket);
    }
}
