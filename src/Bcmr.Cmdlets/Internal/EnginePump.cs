using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// Runs engine work on a thread of its own and hands everything it reports (from any of its threads) to the calling
/// thread, which is the only one PowerShell lets write to the pipeline. <see cref="Post"/> is safe from any thread;
/// <see cref="Run{TResult}"/> handles each posted item on the caller's thread until the work has finished. If a handler
/// throws (a stopped pipeline), the work is cancelled and waited for, so that it can remove its temporary files
/// before the exception goes on.
/// </summary>
internal sealed class EnginePump<TItem> : IDisposable
{
    private readonly BlockingCollection<TItem> _queue = new();

    public void Post(TItem item)
    {
        // A report that races the end of the work has nobody left to read it.
        // (ObjectDisposedException is an InvalidOperationException too.)
        try { _queue.Add(item); }
        catch (InvalidOperationException) { }
    }

    public TResult Run<TResult>(Func<TResult> work, Action<TItem> handle, Action cancel)
    {
        TResult result = default!;
        ExceptionDispatchInfo? failure = null;
        var worker = new Thread(() =>
        {
            try { result = work(); }
            catch (Exception e) { failure = ExceptionDispatchInfo.Capture(e); }
            finally { _queue.CompleteAdding(); }
        }) { IsBackground = true, Name = "bcmr-transfer" };
        worker.Start();
        try
        {
            foreach (var item in _queue.GetConsumingEnumerable()) handle(item);
        }
        catch
        {
            cancel();
            foreach (var _ in _queue.GetConsumingEnumerable()) { }
            worker.Join();
            throw;
        }
        worker.Join();
        failure?.Throw();
        return result;
    }

    public void Dispose() => _queue.Dispose();
}
