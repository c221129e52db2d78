using System.Diagnostics;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// Counters the copy path bumps with one interlocked add, and a ticker thread that turns them into at most one
/// <see cref="TransferProgress"/> per interval. Nobody listening costs nothing but the adds.
/// </summary>
internal sealed class ProgressTracker : IDisposable
{
    private readonly string _operation;
    private readonly IProgress<TransferProgress>? _sink;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    // A thread of its own rather than a pool timer: a busy or starved thread pool must not freeze the display.
    private readonly Thread? _ticker;
    private readonly ManualResetEventSlim _stop = new(false);
    private readonly TimeSpan _interval;
    private readonly object _reportLock = new();
    private long _bytesDone, _bytesTotal, _bytesKept;
    private int _filesDone, _filesTotal;
    /// <summary>Files started and not yet finished, oldest first (under its own lock); the last is the one to show.</summary>
    private readonly List<CurrentFile> _active = new();
    private double _rate;
    private long _lastBytes;
    private TimeSpan _lastAt;
    private bool _completed;

    /// <summary>The file a display should show: the one most recently started that is still running.</summary>
    internal sealed class CurrentFile(string path, long size)
    {
        public readonly string Path = path;
        public readonly long Size = size;
        public long Done;
    }

    public ProgressTracker(string operation, IProgress<TransferProgress>? sink, TimeSpan interval)
    {
        _operation = operation;
        _sink = sink;
        _interval = interval;
        if (sink is not null && interval > TimeSpan.Zero)
        {
            _ticker = new Thread(Tick) { IsBackground = true, Name = "bcmr-progress" };
            _ticker.Start();
        }
    }

    public TimeSpan Elapsed => _clock.Elapsed;
    public long BytesDone => Interlocked.Read(ref _bytesDone);

    public void AddPlanned(long bytes) { Interlocked.Add(ref _bytesTotal, bytes); Interlocked.Increment(ref _filesTotal); }

    public CurrentFile StartFile(string path, long size)
    {
        var file = new CurrentFile(path, size);
        lock (_active) _active.Add(file);
        return file;
    }

    /// <summary>A started file that will not finish (its connection was lost): no longer shown as in flight.</summary>
    public void Forget(CurrentFile? file)
    {
        if (file is null) return;
        lock (_active) _active.Remove(file);
    }

    public void AddBytes(CurrentFile? file, long n)
    {
        Interlocked.Add(ref _bytesDone, n);
        if (file is not null) Interlocked.Add(ref file.Done, n);
    }

    /// <summary>Bytes that count as done without being moved (a resumed prefix, a file already complete): they
    /// advance the percentage but not the rate.</summary>
    public void AddKeptBytes(CurrentFile? file, long n)
    {
        Interlocked.Add(ref _bytesKept, n);
        AddBytes(file, n);
    }

    /// <summary>Marks a planned file finished; <paramref name="unaccounted"/> bytes (skipped or failed files) are
    /// counted as done so that the percentage still reaches 100.</summary>
    public void FinishFile(CurrentFile? file, long unaccounted)
    {
        if (unaccounted > 0)
        {
            Interlocked.Add(ref _bytesKept, unaccounted);
            Interlocked.Add(ref _bytesDone, unaccounted);
        }
        Interlocked.Increment(ref _filesDone);
        if (file is null) return;
        lock (_active) _active.Remove(file);
    }

    /// <summary>Stops the ticker (waiting for a report in flight) and sends the final snapshot, so the final
    /// report is always the last one a display sees.</summary>
    public void Complete()
    {
        _stop.Set();
        _ticker?.Join();
        Report(final: true);
    }

    private void Tick()
    {
        while (!_stop.Wait(_interval)) Report(final: false);
    }

    private void Report(bool final)
    {
        if (_sink is null) return;
        lock (_reportLock)
        {
            if (_completed) return;
            _completed = final;
            var now = _clock.Elapsed;
            long done = Interlocked.Read(ref _bytesDone);
            long total = Math.Max(Interlocked.Read(ref _bytesTotal), done);
            long moved = done - Interlocked.Read(ref _bytesKept);
            var dt = (now - _lastAt).TotalSeconds;
            if (dt > 0.05)
            {
                var instant = (moved - _lastBytes) / dt;
                // Smooth so a display does not jitter; the first sample seeds it.
                _rate = _rate == 0 ? instant : 0.7 * _rate + 0.3 * instant;
                _lastBytes = moved;
                _lastAt = now;
            }
            double rate = final ? (now.TotalSeconds > 0 ? moved / now.TotalSeconds : 0) : _rate;
            TimeSpan? eta = rate > 0 && total >= done ? TimeSpan.FromSeconds((total - done) / rate) : null;
            FileProgress[] active;
            CurrentFile? current;
            lock (_active)
            {
                active = final ? [] : _active.Select(f => new FileProgress(f.Path, f.Done, f.Size)).ToArray();
                current = _active.Count > 0 ? _active[^1] : null;
            }
            _sink.Report(new TransferProgress(_operation, done, total, Volatile.Read(ref _filesDone), Volatile.Read(ref _filesTotal),
                final ? null : current?.Path, current?.Done ?? 0, current?.Size ?? 0, now, rate, final ? TimeSpan.Zero : eta, final)
            {
                ActiveFiles = active,
            });
        }
    }

    public void Dispose()
    {
        _stop.Set();
        _ticker?.Join();
        _stop.Dispose();
    }
}
