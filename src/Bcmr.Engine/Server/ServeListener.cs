using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bcmr.Engine.Server;

/// <summary>
/// <c>bcmr serve --listen ADDR:PORT</c> and <c>Start-BcmrServe -Listen</c>: the serve protocol over plain TCP, one
/// <see cref="ServeSession"/> per connection, each on its own thread. The protocol has no authentication of its own
/// (ssh provides it on the usual path), so a listener binds loopback addresses only unless the caller explicitly
/// allows others: anyone who can reach the port can read and write the whole root.
/// </summary>
public sealed class ServeListener : IDisposable
{
    private readonly TcpListener _listener;
    private readonly ServeOptions _options;
    private readonly object _lock = new();
    private readonly Dictionary<Socket, (ServeSession Session, Thread Thread)> _active = new();
    private int _served;
    private bool _stopped;

    private ServeListener(TcpListener listener, ServeOptions options)
    {
        _listener = listener;
        _options = options;
        LocalEndpoint = (IPEndPoint)listener.LocalEndpoint;
    }

    /// <summary>The bound address and port (the real port when 0 was asked for).</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>Connections accepted so far.</summary>
    public int ConnectionsServed => Volatile.Read(ref _served);

    /// <summary>"127.0.0.1:7070", "[::1]:7070", "localhost:7070". Only literal addresses (and localhost): a name that
    /// resolved elsewhere would slip past the loopback rule.</summary>
    public static IPEndPoint ParseEndpoint(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
            throw Invalid(text, "expected ADDRESS:PORT, e.g. 127.0.0.1:7070 or [::1]:7070");
        var host = text[..colon];
        var portText = text[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > IPEndPoint.MaxPort)
            throw Invalid(text, $"'{portText}' is not a port number (0-65535)");
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        else if (host.Contains(':')) throw Invalid(text, "write an IPv6 address in brackets: [::1]:PORT");
        IPAddress address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) address = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host, out address!)) throw Invalid(text, $"'{host}' is not an IP address (names other than localhost are not resolved)");
        return new IPEndPoint(address, port);
    }

    /// <summary>Binds and starts listening. Throws <see cref="BcmrException"/>: InvalidArgument for a non-loopback
    /// address without <paramref name="allowRemote"/>, IoError when the address cannot be bound, NotFound when the root
    /// does not exist.</summary>
    public static ServeListener Start(IPEndPoint endpoint, ServeOptions options, bool allowRemote)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(options);
        if (!IPAddress.IsLoopback(endpoint.Address) && !allowRemote)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null,
                $"refusing to listen on {endpoint}: the serve protocol has no authentication, so anyone who can reach it can read and write {options.Root}; " +
                "bind a loopback address (127.0.0.1, [::1]) or allow remote connections explicitly (--allow-remote-listen, -AllowRemoteListen)");
        _ = new RootJail(options.Root); // fail now, not at the first connection
        var listener = new TcpListener(endpoint);
        try { listener.Start(); }
        catch (SocketException e)
        {
            throw new BcmrException(BcmrErrorCode.IoError, null, $"cannot listen on {endpoint}: {e.Message}", e);
        }
        return new ServeListener(listener, options);
    }

    /// <summary>Accepts connections until <paramref name="cancellationToken"/> is cancelled, then interrupts the
    /// sessions still running (an upload keeps its partial file, as on a dropped connection) and waits for them.</summary>
    public void Run(CancellationToken cancellationToken)
    {
        using var stop = cancellationToken.Register(Stop);
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket socket;
            try { socket = _listener.AcceptSocket(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                if (cancellationToken.IsCancellationRequested || _stopped) break;
                _options.Log?.WriteLine($"bcmr serve: accept failed: {e.Message}");
                continue;
            }
            Serve(socket);
        }
        Stop();
        Thread[] threads;
        lock (_lock) threads = _active.Values.Select(v => v.Thread).ToArray();
        foreach (var t in threads) t.Join(TimeSpan.FromSeconds(10));
    }

    private void Serve(Socket socket)
    {
        Interlocked.Increment(ref _served);
        socket.NoDelay = true;
        var remote = socket.RemoteEndPoint?.ToString() ?? "?";
        var stream = new NetworkStream(socket, ownsSocket: true);
        ServeSession session;
        try { session = new ServeSession(stream, stream, _options); }
        catch (BcmrException e)
        {
            _options.Log?.WriteLine($"bcmr serve: {remote}: {e.Message}");
            stream.Dispose();
            return;
        }
        var thread = new Thread(() =>
        {
            ServeEnd end = ServeEnd.InternalError;
            try { end = session.Run(); }
            finally
            {
                lock (_lock) _active.Remove(socket);
                session.Dispose();
                stream.Dispose();
                _options.Log?.WriteLine($"bcmr serve: {remote}: session ended ({end})");
            }
        }) { IsBackground = true, Name = "bcmr-serve-" + remote };
        lock (_lock)
        {
            if (_stopped)
            {
                session.Dispose();
                stream.Dispose();
                return;
            }
            _active[socket] = (session, thread);
        }
        _options.Log?.WriteLine($"bcmr serve: {remote}: connected");
        thread.Start();
    }

    /// <summary>Stops accepting and interrupts every session; safe from any thread, more than once.</summary>
    public void Stop()
    {
        (ServeSession Session, Socket Socket)[] running;
        lock (_lock)
        {
            if (!_stopped) _listener.Stop();
            _stopped = true;
            running = _active.Select(kv => (kv.Value.Session, kv.Key)).ToArray();
        }
        foreach (var (session, socket) in running)
        {
            session.Interrupt();
            // A session blocked reading its socket wakes up only when the socket goes away.
            try { socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            try { socket.Close(); } catch (ObjectDisposedException) { }
        }
    }

    public void Dispose() => Stop();

    private static BcmrException Invalid(string text, string why) =>
        new(BcmrErrorCode.InvalidArgument, null, $"--listen '{text}': {why}");
}
