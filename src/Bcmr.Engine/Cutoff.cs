namespace Bcmr.Engine;

/// <summary>
/// A deadline for one blocking step that has no timeout of its own (a connect, a handshake read that a peer can
/// trickle out byte by byte): unless <see cref="Done"/> is called first, <paramref name="cut"/> runs once when the time
/// is up (it closes the socket, which ends the blocked call). <see cref="Done"/> says whether the step finished in
/// time; a cut that races the end of the step wins, so a step is never both finished and cut.
/// </summary>
internal sealed class Cutoff : IDisposable
{
    private readonly Timer _timer;
    private int _state; // 0 running, 1 done, 2 cut

    public Cutoff(TimeSpan after, Action cut)
    {
        _timer = new Timer(_ => { if (Interlocked.CompareExchange(ref _state, 2, 0) == 0) cut(); }, null, after, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Marks the step finished; false when the cut came first.</summary>
    public bool Done() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    /// <summary>Whether the cut ran.</summary>
    public bool Cut => Volatile.Read(ref _state) == 2;

    public void Dispose() => _timer.Dispose();
}
