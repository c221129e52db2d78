using System.Runtime.ExceptionServices;
using Bcmr.Engine.Client;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Transfers;

// --parallel N: one lane per connection, all taking files from one queue.
internal sealed partial class RemoteTransfer
{
    /// <summary>A lane for another connection of the same transfer: the request, the results, the progress, the
    /// bandwidth limit, the codec and the helper threads are shared; the requests in flight, the compression probe
    /// and the disk thread are its own.</summary>
    private RemoteTransfer(RemoteTransfer owner)
    {
        _req = owner._req;
        _onResult = owner._onResult;
        _filter = owner._filter;
        _ct = owner._ct;
        _tracker = owner._tracker;
        _log = owner._log;
        _transport = owner._transport;
        _compression = owner._compression;
        _limiter = owner._limiter;
        _threads = owner._threads;
        _moved = owner._moved;
        _codec = owner._codec;
        _probe = new CompressionProbe(_codec);
        _clients = owner._clients;
        EncoderWorkers = owner.EncoderWorkers;
    }

    /// <summary>A file of the plan, either way: its size, what the resume check decided for it, and its place in the
    /// plan (results are reported in that order).</summary>
    private abstract class PlannedFile(long size)
    {
        public long Size { get; } = size;
        /// <summary>Where the copy starts: the bytes before it are kept (resume).</summary>
        public long Offset;
        /// <summary>Why held bytes were not used, or why the file was skipped (reported with its result).</summary>
        public string? Note;
        public bool AlreadyComplete;
        /// <summary>What proved the kept bytes (<see cref="CopyResult.ResumeCompared"/>).</summary>
        public string? Compared;
        public BcmrException? Refused;
        public int Order = -1;
        /// <summary>Set when the file goes over several connections at once (RemoteTransfer.Stripes.cs).</summary>
        public Stripe? Stripe;
        /// <summary>A striped resume: the chaining values of the blocks already held and proven, by block (null: not
        /// held). Null when nothing is kept.</summary>
        public byte[]?[]? KeptBlocks;

        /// <summary>The bytes still to move.</summary>
        public long Remaining => Size - Offset - (KeptBlocks is null ? 0 : Stripe.KeptBytes(KeptBlocks, Size));

        /// <summary>Takes what the resume rules decided for the bytes the destination holds (<see cref="ResumePlanner"/>).</summary>
        public void Apply(ResumeVerdict v)
        {
            Compared = v.Compared;
            Note = v.Note;
            AlreadyComplete = v.Complete;
            Offset = v.Complete ? 0 : v.Offset;
            KeptBlocks = v.KeptBlocks;
        }
    }

    /// <summary>Files waiting for a connection. With several connections, the largest go first (the longest job
    /// starts first, so it does not start last and leave the other connections idle at the end) and each connection
    /// takes the next file when it is ready for one; with one, the plan's order. A striped file is handed to every
    /// connection that asks while it still has ranges to send, so they all join it.</summary>
    private sealed class FileQueue<T> where T : PlannedFile
    {
        private readonly T[] _items;
        private int _next;
        private T? _striping;

        public FileQueue(IReadOnlyList<T> items, bool largestFirst) =>
            _items = largestFirst ? items.OrderByDescending(f => f.Remaining).ToArray() : items.ToArray(); // OrderBy is stable

        /// <summary>Files in the plan (taken or not).</summary>
        public int Count => _items.Length;

        public bool TryTake(out T item)
        {
            lock (_items)
            {
                if (_striping is { Stripe.HasRanges: true } joining)
                {
                    item = joining;
                    return true;
                }
                _striping = null;
                if (_next < _items.Length)
                {
                    item = _items[_next++];
                    if (item.Stripe is not null) _striping = item;
                    return true;
                }
            }
            item = default!;
            return false;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> once per connection, each on a thread of its own (the first on this one) over a lane
    /// of its own, all taking files from <paramref name="queue"/>; results are forwarded in the plan's order. A lane
    /// whose connection is lost stops (its files in flight fail by name) and the others carry on with the queue; what
    /// is left in the queue afterwards (every connection lost) is the caller's to fail. Returns a loss, if any.
    /// </summary>
    private BcmrException? Spread<T>(FileQueue<T> queue, Func<RemoteTransfer, ServeClient, BcmrException?> work) where T : PlannedFile
    {
        // What the first connection was asked while planning (directories to make) is done before any file goes out
        // on another connection.
        Complete(_clients[0], block: true);
        _log.BeginOrdered(queue.Count);
        var losses = new BcmrException?[_clients.Count];
        Exception? failure = null;
        int running = _clients.Count;
        try
        {
            var threads = new List<Thread>();
            for (int i = 1; i < _clients.Count; i++)
            {
                int n = i;
                var t = new Thread(() => Lane(n)) { IsBackground = true, Name = $"bcmr-lane-{n}" };
                threads.Add(t);
                t.Start();
            }
            Lane(0);
            foreach (var t in threads) t.Join();
        }
        finally { _log.EndOrdered(); }
        if (failure is not null) ExceptionDispatchInfo.Throw(failure);
        return losses.LastOrDefault(l => l is not null);

        void Lane(int n)
        {
            var lane = n == 0 ? this : new RemoteTransfer(this);
            try
            {
                losses[n] = work(lane, _clients[n]);
                if (losses[n] is { } lost && Interlocked.Decrement(ref running) > 0)
                    _req.Warn?.Invoke($"bcmr: connection {n + 1} of {_clients.Count} lost ({lost.Message}); its files in flight failed, " +
                        "the others carry on (rerun with -C, or use --retries, to copy the failed ones)");
            }
            catch (Exception e)
            {
                // Anything but a lost connection (cancellation, a bug) ends the whole transfer: cut every connection
                // so that the other lanes stop waiting for replies.
                if (Interlocked.CompareExchange(ref failure, e, null) is null)
                    foreach (var c in _clients) c.Abort();
            }
        }
    }

    /// <summary>Fails by name every file left in <paramref name="queue"/> (no connection was left to send it).</summary>
    private void FailUnsent<T>(FileQueue<T> queue, BcmrException lost, Func<T, (string Source, string Destination)> describe) where T : PlannedFile
    {
        while (queue.TryTake(out var f))
        {
            var (source, destination) = describe(f);
            _log.Fail(source, destination, EntryKind.File, lost, _transport, order: f.Order);
        }
    }

    /// <summary>Completes replies at the head until no more than <paramref name="bytes"/> of data are awaited.</summary>
    private void CompleteDownTo(ServeClient c, long bytes)
    {
        if (_inflightBytes <= bytes) return;
        FlushUnlessLost(c);
        while (_inflightBytes > bytes && _inflight.Count > 0) CompleteHead();
    }

    /// <summary>The message that says the server took fewer connections than asked, and how many it took.</summary>
    private static string FewerConnections(RemoteSpec remote, int asked, ServeClientPool pool) =>
        $"bcmr: {pool.Refused.Count} of {asked} connections to {remote.Target} could not be opened ({pool.Refused[0].Message}); " +
        $"continuing on {pool.Size}. Servers limit concurrent logins (sshd's MaxStartups, 10:30:100 unless configured): lower --parallel to {pool.Size} to avoid this";
}
