namespace Bcmr.Engine.Client;

/// <summary>
/// N sessions to the same server, each over a channel of its own (for ssh: its own connection and cipher, never a
/// ControlMaster-shared one, so that N streams use N cores): what <c>--parallel N</c> will spread a transfer over.
/// Workers <see cref="Rent"/> a client, use it alone, and <see cref="Return"/> it; a session keeps its FIFO order
/// because only one worker writes to it at a time.
/// <para>A client whose connection broke is returned like any other: its requests fail with the error that broke it,
/// which the worker reports; the pool does not reconnect behind the caller's back.</para>
/// </summary>
public sealed class ServeClientPool : IDisposable
{
    private readonly ServeClient[] _clients;
    private readonly Stack<ServeClient> _idle;
    private readonly SemaphoreSlim _available;
    private readonly object _lock = new();
    private bool _disposed;

    private ServeClientPool(ServeClient[] clients)
    {
        _clients = clients;
        _idle = new Stack<ServeClient>(Enumerable.Reverse(clients));
        _available = new SemaphoreSlim(clients.Length, clients.Length);
    }

    /// <summary>Opens <paramref name="size"/> sessions at once, each over a channel from <paramref name="openChannel"/>
    /// (the handshakes overlap: N ssh logins cost about one). If any fails, the ones that opened are closed and the
    /// first failure is thrown.</summary>
    public static ServeClientPool Open(Func<IServeChannel> openChannel, int size, byte caps, TimeSpan? stallTimeout = null)
    {
        var (clients, errors) = OpenAll(() => ServeClient.Open(openChannel(), caps, stallTimeout), size);
        if (errors.FirstOrDefault(e => e is not null) is { } first)
        {
            foreach (var c in clients) c?.Dispose();
            throw AsBcmr(first);
        }
        return new ServeClientPool(clients!);
    }

    /// <summary>Like <see cref="Open"/>, but keeps the sessions that opened when some did not (a server that limits
    /// concurrent logins, such as sshd's MaxStartups, refuses the ones over its limit): <see cref="Refused"/> says
    /// why the others failed. Throws the first failure only when none opened.</summary>
    public static ServeClientPool OpenAvailable(Func<IServeChannel> openChannel, int size, byte caps, TimeSpan? stallTimeout = null) =>
        OpenAvailable(() => ServeClient.Open(openChannel(), caps, stallTimeout), size);

    /// <summary><see cref="OpenAvailable(Func{IServeChannel}, int, byte, TimeSpan?)"/> with sessions opened by
    /// <paramref name="openClient"/> (a session that sets up a direct channel first).</summary>
    public static ServeClientPool OpenAvailable(Func<ServeClient> openClient, int size)
    {
        var (clients, errors) = OpenAll(openClient, size);
        var opened = clients.Where(c => c is not null).Select(c => c!).ToArray();
        var refused = errors.Where(e => e is not null).Select(e => AsBcmr(e!)).ToArray();
        if (opened.Length == 0) throw refused[0];
        return new ServeClientPool(opened) { Refused = refused };
    }

    private static (ServeClient?[] Clients, Exception?[] Errors) OpenAll(Func<ServeClient> openClient, int size)
    {
        ArgumentNullException.ThrowIfNull(openClient);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var clients = new ServeClient?[size];
        var errors = new Exception?[size];
        var threads = new Thread[size];
        for (int i = 0; i < size; i++)
        {
            int n = i;
            // Threads, not pool tasks: each blocks in a handshake for as long as a login takes.
            threads[n] = new Thread(() =>
            {
                try { clients[n] = openClient(); }
                catch (Exception e) { errors[n] = e; }
            }) { IsBackground = true, Name = "bcmr-pool-open" };
            threads[n].Start();
        }
        foreach (var t in threads) t.Join();
        return (clients, errors);
    }

    private static BcmrException AsBcmr(Exception e) =>
        e as BcmrException ?? new BcmrException(BcmrErrorCode.ConnectionFailed, null, $"cannot open a connection: {e.Message}", e);

    /// <summary>Why the sessions <see cref="OpenAvailable"/> could not open failed (empty when all opened).</summary>
    public IReadOnlyList<BcmrException> Refused { get; private init; } = [];

    /// <summary>Sessions in the pool.</summary>
    public int Size => _clients.Length;

    /// <summary>Every session, rented or not (for totals such as <see cref="ServeClient.BytesSent"/>).</summary>
    public IReadOnlyList<ServeClient> Clients => _clients;

    /// <summary>Capabilities in effect: every session negotiated with the same server, so the first one's.</summary>
    public byte Caps => _clients[0].Caps;

    /// <summary>A session no other worker holds; waits while all are rented.</summary>
    public ServeClient Rent(CancellationToken ct = default)
    {
        _available.Wait(ct);
        lock (_lock)
        {
            if (_disposed)
            {
                _available.Release();
                throw new ObjectDisposedException(nameof(ServeClientPool));
            }
            return _idle.Pop();
        }
    }

    /// <summary>Gives back a session from <see cref="Rent"/>.</summary>
    public void Return(ServeClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        lock (_lock)
        {
            if (Array.IndexOf(_clients, client) < 0) throw new ArgumentException("not a session of this pool", nameof(client));
            if (_idle.Contains(client)) throw new InvalidOperationException("this session was returned already");
            _idle.Push(client);
        }
        _available.Release();
    }

    /// <summary>Cuts every session at once (cancellation).</summary>
    public void Abort()
    {
        foreach (var c in _clients) c.Abort();
    }

    /// <summary>Ends every session (Done, then its channel closed), all at once: N servers wind down in parallel.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        var threads = _clients.Select(c => new Thread(() =>
        {
            try { c.Dispose(); } catch (Exception) { } // one failing session must not keep the others open
        }) { IsBackground = true, Name = "bcmr-pool-close" }).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        _available.Dispose();
    }
}
