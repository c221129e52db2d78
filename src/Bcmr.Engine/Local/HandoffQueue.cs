namespace Bcmr.Engine.Local;

/// <summary>
/// A queue between threads that waits on a monitor and never spins. BlockingCollection (SemaphoreSlim) spins and yields
/// before it blocks; on two cores, with a hand-off per small file, a 10 000-file download spent 57 000 sched_yield calls
/// in it, CPU taken from ssh and from the threads doing the work (bench/RESULTS.md, issue 17). One taker: an add wakes
/// a waiter only when it makes the queue non-empty.
/// </summary>
internal sealed class HandoffQueue<T>
{
    private readonly Queue<T> _items = new();
    private bool _completed;

    /// <summary>Adds an item; false once <see cref="CompleteAdding"/> was called (nobody will take it).</summary>
    public bool TryAdd(T item)
    {
        lock (_items)
        {
            if (_completed) return false;
            _items.Enqueue(item);
            if (_items.Count == 1) Monitor.Pulse(_items);
            return true;
        }
    }

    /// <summary>An item if one is queued, without waiting.</summary>
    public bool TryTake(out T item)
    {
        lock (_items) return _items.TryDequeue(out item!);
    }

    /// <summary>Waits for an item; false when adding is complete and none is left.</summary>
    public bool Take(out T item)
    {
        lock (_items)
        {
            while (true)
            {
                if (_items.TryDequeue(out item!)) return true;
                if (_completed) return false;
                Monitor.Wait(_items);
            }
        }
    }

    /// <summary>No more items will come: takers finish what is queued, then return false.</summary>
    public void CompleteAdding()
    {
        lock (_items)
        {
            _completed = true;
            Monitor.PulseAll(_items);
        }
    }
}
