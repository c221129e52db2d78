using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bcmr.Engine.Server;

/// <summary>
/// <c>bcmr serve --listen ADDR:PORT</c> and <c>Start-BcmrServe -Listen</c>: the serve protocol over plain TCP, one
/// <see cref="ServeSession"/> per connection, each on its own thread. The protocol has no authentication of its own
/// (ssh provides it on the usual path), so a listener binds loopback addresses only unless the caller explicitly
/// allows others: anyone who can reach the port can read and write the whole root.
/// <para>Bounded: at most <see cref="MaxConnections"/> sessions at once (one more is told the server is busy and
/// closed), a connection that sends nothing for <see cref="IdleTimeout"/> is closed, and an accept that fails (out of
/// descriptors) is retried after a pause that doubles up to a second, logged once a second, instead of spinning.</para>
/// </summary>
public sealed class ServeListener : IDisposable
{
    private readonly Socket _listener;
    private readonly ServeOptions _options;
    /// <summary>A resident server's Unix socket (removed when it stops), else null.</summary>
    private readonly string? _socketPath;
    /// <summary>The inode of <see cref="_socketPath"/> as bound: a socket another server put at the same path since
    /// (after this one was taken for dead) is not removed.</summary>
    private ulong? _socketInode;
    private long _lastActive = Environment.TickCount64;
    private readonly object _lock = new();
    private readonly Dictionary<Socket, (ServeSession Session, Thread Thread)> _active = new();
    private int _served;
    private bool _stopped;
    private long _lastBusyLog = long.MinValue / 2;

    /// <summary>Sessions served at once; one more connection is refused with an Error.</summary>
    public int MaxConnections { get; init; } = 64;

    /// <summary>A connection that sends nothing for this long is closed (its upload kept as a partial file).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(10);

    private ServeListener(Socket listener, ServeOptions options, string? socketPath = null)
    {
        _listener = listener;
        _options = options;
        _socketPath = socketPath;
        LocalEndpoint = listener.LocalEndPoint as IPEndPoint ?? new IPEndPoint(IPAddress.None, 0);
    }

    /// <summary>The bound address and port (the real port when 0 was asked for); none for a Unix socket.</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>A resident server (<see cref="StartLocal"/>) stops once it has had no connection for this long.</summary>
    public TimeSpan? ExitWhenIdle { get; init; }

    /// <summary>A resident server also stops, between sessions, once it has run this long: a server kept busy by
    /// runs that follow each other closely would otherwise serve its first program for good, an upgraded bcmr never
    /// taking its place (the next run goes over ssh and starts a new one).</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromHours(1);

    private readonly long _started = Environment.TickCount64;

    /// <summary>A listener on a new Unix socket at <paramref name="path"/> (mode 0600, in a directory the caller made
    /// private): a resident server. Throws <see cref="BcmrException"/> (AlreadyExists when another one holds the path).</summary>
    public static ServeListener StartLocal(string path, ServeOptions options, TimeSpan exitWhenIdle, TimeSpan? maxAge = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ = new RootJail(options.Root);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            Platform.Fs.SetMode(null, path, 0x180);
            socket.Listen(64);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new BcmrException(e.SocketErrorCode == SocketError.AddressAlreadyInUse ? BcmrErrorCode.AlreadyExists : BcmrErrorCode.IoError,
                path, $"cannot listen on {path}: {e.Message}", e);
        }
        return new ServeListener(socket, options, path) { ExitWhenIdle = exitWhenIdle, MaxAge = maxAge ?? TimeSpan.FromHours(1), _socketInode = Platform.Fs.TryLstat(path)?.Inode };
    }

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
    public static ServeListener Start(IPEndPoint endpoint, ServeOptions options, bool allowRemote,
        int maxConnections = 64, TimeSpan? idleTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(options);
        if (!IPAddress.IsLoopback(endpoint.Address) && !allowRemote)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null,
                $"refusing to listen on {endpoint}: the serve protocol has no authentication, so anyone who can reach it can read and write {options.Root}; " +
                "bind a loopback address (127.0.0.1, [::1]) or allow remote connections explicitly (--allow-remote-listen, -AllowRemoteListen)");
        _ = new RootJail(options.Root); // fail now, not at the first connection
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen((int)SocketOptionName.MaxConnections);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new BcmrException(BcmrErrorCode.IoError, null, $"cannot listen on {endpoint}: {e.Message}", e);
        }
        return new ServeListener(listener, options) { MaxConnections = maxConnections, IdleTimeout = idleTimeout ?? TimeSpan.FromMinutes(10) };
    }


    /// <summary>Accepts connections until <paramref name="cancellationToken"/> is cancelled, then interrupts the
    /// sessions still running (an upload keeps its partial file, as on a dropped connection) and waits for them.</summary>
    public void Run(CancellationToken cancellationToken)
    {
        using var stop = cancellationToken.Register(Stop);
        using var idle = ExitWhenIdle is { } limit ? new Timer(_ => StopIfIdle(limit), null, 1000, 1000) : null;
        var pause = TimeSpan.Zero;
        long lastLog = long.MinValue / 2;
        int unlogged = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            Exception? failure;
            try
            {
                failure = Serve(_listener.Accept());
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                if (cancellationToken.IsCancellationRequested || _stopped) break;
                failure = e;
            }
            if (failure is null)
            {
                pause = TimeSpan.Zero;
                continue;
            }
            // Out of descriptors (or threads) the same error comes back at once: pause, doubling up to a second, and
            // say so once a second, not once per attempt.
            pause = TimeSpan.FromMilliseconds(Math.Clamp(pause.TotalMilliseconds * 2, 10, 1000));
            unlogged++;
            if (Environment.TickCount64 - lastLog >= 1000)
            {
                _options.Log?.WriteLine($"bcmr serve: accept failed: {failure.Message}" + (unlogged > 1 ? $" ({unlogged} times since the last message)" : "") + $"; retrying in {pause.TotalMilliseconds:0} ms");
                lastLog = Environment.TickCount64;
                unlogged = 0;
            }
            cancellationToken.WaitHandle.WaitOne(pause);
        }
        Stop();
        Thread[] threads;
        lock (_lock) threads = _active.Values.Select(v => v.Thread).ToArray();
        foreach (var t in threads) t.Join(TimeSpan.FromSeconds(10));
    }

    /// <summary>Starts a session for <paramref name="socket"/>; the failure when the system has no resources left for
    /// it (the socket is closed then), null otherwise.</summary>
    private Exception? Serve(Socket socket)
    {
        if (socket.AddressFamily != AddressFamily.Unix) socket.NoDelay = true;
        Volatile.Write(ref _lastActive, Environment.TickCount64);
        var remote = socket.RemoteEndPoint?.ToString() is { Length: > 0 } peer ? peer : socket.AddressFamily == AddressFamily.Unix ? "a local connection" : "?";
        int running;
        lock (_lock) running = _active.Count;
        if (running >= MaxConnections)
        {
            Refuse(socket, remote, running);
            return null;
        }
        Interlocked.Increment(ref _served);
        if (IdleTimeout > TimeSpan.Zero) socket.ReceiveTimeout = (int)Math.Min(IdleTimeout.TotalMilliseconds, int.MaxValue);
        var stream = new NetworkStream(socket, ownsSocket: true);
        ServeSession session;
        try { session = new ServeSession(stream, stream, _options, (int)socket.Handle); }
        catch (BcmrException e)
        {
            _options.Log?.WriteLine($"bcmr serve: {remote}: {e.Message}");
            stream.Dispose();
            return null;
        }
        var thread = new Thread(() =>
        {
            ServeEnd end = ServeEnd.InternalError;
            try { end = session.Run(); }
            finally
            {
                lock (_lock) _active.Remove(socket);
                Volatile.Write(ref _lastActive, Environment.TickCount64);
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
                return null;
            }
            _active[socket] = (session, thread);
        }
        try { thread.Start(); }
        catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
        {
            // Out of descriptors the runtime cannot start a thread (it reports OutOfMemory): drop this connection.
            lock (_lock) _active.Remove(socket);
            session.Dispose();
            stream.Dispose();
            return e;
        }
        _options.Log?.WriteLine($"bcmr serve: {remote}: connected");
        return null;
    }

    /// <summary>One connection too many: an Error in place of Welcome, then closed. Logged once a second at most.</summary>
    private void Refuse(Socket socket, string remote, int running)
    {
        try
        {
            socket.Send(Protocol.MessageCodec.Encode(new Protocol.ErrorResponse(
                $"server busy: {running} connections are being served, the limit of this listener; try again later")));
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException) { }
        finally { socket.Close(); }
        if (Environment.TickCount64 - Interlocked.Read(ref _lastBusyLog) >= 1000)
        {
            Interlocked.Exchange(ref _lastBusyLog, Environment.TickCount64);
            _options.Log?.WriteLine($"bcmr serve: {remote}: refused, {running} connections already (the limit)");
        }
    }

    /// <summary>A resident server with no session for <paramref name="limit"/>, or none right now past its
    /// <see cref="MaxAge"/>, stops (its socket removed first, so that no client connects to a server on its way out).</summary>
    private void StopIfIdle(TimeSpan limit)
    {
        lock (_lock)
        {
            long now = Environment.TickCount64;
            bool idle = now - Volatile.Read(ref _lastActive) >= limit.TotalMilliseconds, old = now - _started >= MaxAge.TotalMilliseconds;
            if (_stopped || _active.Count > 0 || !idle && !old) return;
            _options.Log?.WriteLine(idle ? $"bcmr serve: no connection for {limit.TotalSeconds:0} s: stopping" : $"bcmr serve: running for {MaxAge.TotalMinutes:0} minutes: stopping");
            // Under the same lock as the check: a connection accepted meanwhile finds the listener stopped and is closed
            // before its Welcome (its client goes over ssh instead), never cut off inside a session.
            Stop();
        }
    }

    /// <summary>Stops accepting and interrupts every session; safe from any thread, more than once.</summary>
    public void Stop()
    {
        (ServeSession Session, Socket Socket)[] running;
        lock (_lock)
        {
            if (!_stopped)
            {
                if (_socketPath is not null && _socketInode is { } inode && Platform.Fs.TryLstat(_socketPath)?.Inode == inode)
                    Platform.Fs.TryDeleteFile(_socketPath);
                // A thread blocked in accept() wakes only when the socket is shut down (closing alone leaves it waiting).
                try { _listener.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
                _listener.Close();
            }
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
