namespace Bcmr.Engine;

/// <summary>
/// The helper threads one transfer (or one server session) may run at once for CPU work: hashing the blocks of a
/// resumable copy, compressing blocks for the wire. Every component that would start such threads rents them here
/// and gives them back when it is done; what it cannot rent it does on its own thread. So `-j 8` with -C on two
/// cores runs eight copy threads and two hashing threads, not eight copies of two each, and the coming --parallel
/// connections share one budget instead of multiplying it. Renting never waits: work is never held up by a budget,
/// only kept from crowding the cores. The copy threads themselves (-j, the user's number) are not counted.
/// </summary>
public sealed class ThreadBudget
{
    private int _free;
    private int _peak;

    /// <param name="threads">Helper threads at most at once; the default is one per processor.</param>
    public ThreadBudget(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        Total = threads;
        _free = threads;
    }

    public static ThreadBudget ForThisMachine() => new(Environment.ProcessorCount);

    public int Total { get; }

    /// <summary>Threads rented now.</summary>
    public int InUse => Total - Volatile.Read(ref _free);

    /// <summary>The most rented at once so far (for tests and phase timers).</summary>
    public int Peak => Volatile.Read(ref _peak);

    /// <summary>Up to <paramref name="wanted"/> threads, as many as are free now (possibly none).</summary>
    public int Rent(int wanted)
    {
        if (wanted <= 0) return 0;
        while (true)
        {
            int free = Volatile.Read(ref _free);
            int grant = Math.Min(free, wanted);
            if (grant == 0) return 0;
            if (Interlocked.CompareExchange(ref _free, free - grant, free) != free) continue;
            int inUse = Total - (free - grant);
            int peak;
            while (inUse > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, inUse, peak) != peak) { }
            return grant;
        }
    }

    public void Return(int threads)
    {
        if (threads <= 0) return;
        if (Interlocked.Add(ref _free, threads) > Total) throw new InvalidOperationException("more threads returned than rented");
    }
}
