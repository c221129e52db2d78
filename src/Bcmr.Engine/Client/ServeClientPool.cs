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
        ArgumentNullException.ThrowIfNull(openChannel);
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
                try { clients[n] = ServeClient.Open(openChannel(), caps, stallTimeout); }
                catch (Exception e) { errors[n] = e; }
            }) { IsBackground = true, Name = "bcmr-pool-open" };
            threads[n].Start();
        }
        foreach (var t in threads) t.Join();
        if (errors.FirstOrDefault(e => e is not null) is { } first)
        {
            foreach (var c in clients) c?.Dispose();
            if (first is BcmrException) throw first;
            throw new BcmrException(BcmrErrorCode.ConnectionFailed, null, $"cannot open a connection: {first.Message}", first);
        }
        return new ServeClientPool(clients!);
    }

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
