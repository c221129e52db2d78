namespace Bcmr.Engine.Client;

/// <summary>
/// How many replies a client may have outstanding. A sender that finds it full waits until a quarter of it is free
/// again, so on a stream of small files it wakes once per many replies rather than once per reply, and it waits on a
/// monitor without spinning (SemaphoreSlim spins and yields first: on two cores, CPU taken from ssh). Once the
/// connection is gone (<see cref="Close"/>) a waiting sender is let through to find that out.
/// </summary>
internal sealed class RequestWindow(int size)
{
    private readonly object _lock = new();
    private readonly int _resumeAt = Math.Max(1, size / 4);
    private int _free = size;
    private bool _waiting;
    private bool _closed;

    /// <summary>Whether a sender is waiting in <see cref="Enter"/> (tests).</summary>
    internal bool SenderWaiting
    {
        get { lock (_lock) return _waiting; }
    }

    /// <summary>Takes a place if one is free, or lets the sender through once the window is closed (it then finds the
    /// connection gone).</summary>
    public bool TryEnter()
    {
        lock (_lock)
        {
            if (_free <= 0 && !_closed) return false;
            _free--;
            return true;
        }
    }

    /// <summary>Takes a place, waiting while the window is full (until a quarter is free, or it is closed).</summary>
    public void Enter(CancellationToken ct)
    {
        if (TryEnter()) return;
        using var wake = ct.CanBeCanceled ? ct.Register(() => { lock (_lock) Monitor.PulseAll(_lock); }) : default;
        lock (_lock)
        {
            _waiting = true;
            try
            {
                while (_free < _resumeAt && !_closed)
                {
                    ct.ThrowIfCancellationRequested();
                    Monitor.Wait(_lock);
                }
            }
            finally { _waiting = false; }
            _free--;
        }
    }

    /// <summary>A reply is complete: its place is free.</summary>
    public void Release()
    {
        lock (_lock)
        {
            _free++;
            if (_waiting && _free >= _resumeAt) Monitor.Pulse(_lock);
        }
    }

    /// <summary>The connection is gone: nothing will be released any more, so nobody waits.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
    }
}
