using Bcmr.Engine.Platform;
using System.Diagnostics;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// <see cref="CopyRequest.Retries"/>: runs a transfer, holds back the results of files that failed on a transient
/// error, waits, and copies just those again (a fresh connection for remote ones), until they succeed, fail for good
/// or the retries are spent. Callers see one result per file (its last attempt) and one summary, so a file that failed
/// once and then copied is a success, not an error followed by a success. Each retry round is announced once through
/// <see cref="CopyRequest.Warn"/>.
/// </summary>
internal sealed class Retrying(CopyRequest request, Func<CopyRequest, Action<CopyResult>, TransferSummary> runOnce,
    Action<CopyResult>? onResult, CancellationToken ct)
{
    public static readonly TimeSpan DefaultDelay = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(60);

    /// <summary>Failures that may heal by themselves: the connection, a busy file, a source being written, bytes damaged
    /// on the way. Never: a missing file, a permission, a refusal of the server root, a full disk, a bad argument.</summary>
    public static bool IsTransient(BcmrErrorCode? code) =>
        code is BcmrErrorCode.ConnectionFailed or BcmrErrorCode.Busy or BcmrErrorCode.SourceChanged or BcmrErrorCode.CorruptData;

    /// <summary>The wait before retry <paramref name="attempt"/> (1-based): the delay, doubled each time, capped.</summary>
    public static TimeSpan Delay(TimeSpan first, int attempt) =>
        TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, first.Ticks * (1L << Math.Min(attempt - 1, 20))));

    public TransferSummary Run()
    {
        var clock = Stopwatch.StartNew();
        var first = runOnce(request, Collect(out var held, lastAttempt: request.Retries == 0));
        var totals = new Totals(first, held);
        for (int attempt = 1; attempt <= request.Retries && held.Count > 0 && !totals.Cancelled && first.Fatal is null; attempt++)
        {
            var delay = Delay(request.RetryDelay, attempt);
            request.Warn?.Invoke($"bcmr: retry {attempt}/{request.Retries} of {Files(held.Count)} after a transient failure ({held[0].Message}); " +
                $"trying again in {delay.TotalSeconds:0.#} s");
            if (ct.WaitHandle.WaitOne(delay)) { totals.Cancelled = true; break; }
            var again = held;
            held = [];
            for (int i = 0; i < again.Count; i++)
            {
                if (ct.IsCancellationRequested) { totals.Cancelled = true; held.AddRange(again.Skip(i)); break; }
                var sink = Collect(out var stillFailing, lastAttempt: attempt == request.Retries);
                TransferSummary one;
                try { one = runOnce(Copy(again[i]), sink); }
                catch (BcmrException e) { one = Failed(again[i], e); sink(one.Failures[0]); }
                totals.Add(one, stillFailing);
                held.AddRange(stillFailing);
            }
        }
        // Left over only when stopped early: they failed after all.
        foreach (var r in held) onResult?.Invoke(r);
        totals.Unresolved(held);
        return totals.Summary(request.Operation, clock.Elapsed);
    }

    /// <summary>The request that copies one failed entry again, to exactly the name the first attempt was writing.</summary>
    private CopyRequest Copy(CopyResult failed) =>
        request with
        {
            Sources = [failed.Source], Destination = failed.Destination, ExactDestination = true, Only = null, Connection = null,
            // A connection lost mid-file leaves what arrived behind (the server's partial upload, the partial file here,
            // a striped file's ranges): the retry continues from it as -C does, keeping only bytes proven equal.
            Resume = request.Resume == Local.ResumeMode.None && failed.ErrorCode == BcmrErrorCode.ConnectionFailed && failed.Transport is "ssh" or "direct"
                ? Local.ResumeMode.Resume : request.Resume,
        };

    /// <summary>
    /// A failed file or link that a retry can name exactly: its result carries its own destination. A failure recorded
    /// against the destination the user gave (planning stopped before the entry's own name was known) is retried only
    /// for a local file or link, which can only land on that name or fail; a directory is never retried, since its
    /// contents may already be partly there and copying it "as" the destination could put them one level off.
    /// </summary>
    private bool Retryable(CopyResult r) =>
        r.Status == CopyStatus.Failed && IsTransient(r.ErrorCode) && r.Kind != Platform.EntryKind.Directory
        && (r.Destination != request.Destination || Platform.Fs.TryLstat(r.Source) is { Kind: Platform.EntryKind.File or Platform.EntryKind.Symlink });

    /// <summary>Forwards every result but the transient failures, which are kept for the next round (or forwarded after
    /// all, on the last one).</summary>
    private Action<CopyResult> Collect(out List<CopyResult> held, bool lastAttempt)
    {
        var kept = held = [];
        return r =>
        {
            if (!lastAttempt && Retryable(r))
            {
                lock (kept) kept.Add(r);
                return;
            }
            onResult?.Invoke(r);
        };
    }

    private void Release(List<CopyResult> held)
    {
        foreach (var r in held) onResult?.Invoke(r);
    }

    private static TransferSummary Failed(CopyResult attempt, BcmrException e)
    {
        var r = new CopyResult
        {
            Source = attempt.Source, Destination = attempt.Destination, Kind = attempt.Kind, Status = CopyStatus.Failed,
            Message = e.Message, ErrorCode = e.Code, Transport = attempt.Transport,
        };
        return new TransferSummary { Operation = "copy", Failed = 1, Failures = [r] };
    }

    private static string Files(int n) => n == 1 ? "1 file" : $"{n} files";

    /// <summary>The first run's totals, less the failures that were retried, plus every retry's.</summary>
    private sealed class Totals
    {
        private readonly TransferSummary _first;
        private int _files, _skipped, _failed, _dirs, _dedup;
        private long _bytes, _wire;
        private readonly List<CopyResult> _failures;
        public bool Cancelled;

        public Totals(TransferSummary first, List<CopyResult> held)
        {
            _first = first;
            _files = first.Files; _skipped = first.Skipped; _dirs = first.Directories; _dedup = first.DedupBlocks;
            _bytes = first.Bytes; _wire = first.WireBytes;
            _failed = first.Failed - held.Count;
            _failures = first.Failures.Where(f => !held.Contains(f)).ToList();
            Cancelled = first.Cancelled;
        }

        public void Add(TransferSummary s, List<CopyResult> held)
        {
            _files += s.Files; _skipped += s.Skipped; _dirs += s.Directories; _dedup += s.DedupBlocks;
            _bytes += s.Bytes; _wire += s.WireBytes;
            _failed += s.Failed - held.Count;
            _failures.AddRange(s.Failures.Where(f => !held.Contains(f)));
            Cancelled |= s.Cancelled;
        }

        public void Unresolved(List<CopyResult> held)
        {
            _failed += held.Count;
            _failures.AddRange(held);
        }

        public TransferSummary Summary(string operation, TimeSpan duration) => new()
        {
            Operation = operation, Files = _files, Bytes = _bytes, Skipped = _skipped, Failed = _failed, Directories = _dirs,
            Duration = duration, WireBytes = _wire, DedupBlocks = _dedup, Transport = _first.Transport, Cancelled = Cancelled,
            Fatal = _first.Fatal, Failures = _failures,
        };
    }
}
