using Bcmr.Engine.Local;

namespace Bcmr.Engine.Transfers;

/// <summary>The one entry point for copies and moves: a request in, throttled progress and per-entry results out,
/// a summary back. <paramref name="onResult"/> may be called from several worker threads at once.</summary>
public static class TransferEngine
{
    public static TransferSummary Run(CopyRequest request, IProgress<TransferProgress>? progress = null,
        Action<CopyResult>? onResult = null, CancellationToken cancellationToken = default)
    {
        var first = Validate(request);
        // A retry names each failed file itself (its own Sources, no Only): its filter is its own.
        TransferSummary Once(CopyRequest r, Action<CopyResult>? results)
        {
            var filter = ReferenceEquals(r, request) ? first : new PathFilter(r.Excludes, r.Only);
            return RemoteTransfer.Applies(r)
                ? new RemoteTransfer(r, progress, results, filter, cancellationToken).Run()
                : new LocalTransfer(r, progress, results, filter, cancellationToken).Run();
        }
        return request.Retries == 0 ? Once(request, onResult)
            : new Retrying(request, Once, onResult, cancellationToken).Run();
    }

    public static Task<TransferSummary> RunAsync(CopyRequest request, IProgress<TransferProgress>? progress = null,
        Action<CopyResult>? onResult = null, CancellationToken cancellationToken = default) =>
        Task.Factory.StartNew(() => Run(request, progress, onResult, cancellationToken), cancellationToken,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Rejects a request that cannot mean anything (usage errors), before anything is touched.</summary>
    private static PathFilter Validate(CopyRequest r)
    {
        if (r.Sources.Count == 0)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "no source given");
        if (string.IsNullOrEmpty(r.Destination))
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "no destination given");
        if (r.Retries < 0)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"--retries must be 0 or more (got {r.Retries})");
        if (r.RetryDelay < TimeSpan.Zero)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--retry-delay must be 0 or more seconds");
        if (r.Jobs < 1)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"--jobs must be at least 1 (got {r.Jobs})");
        if (r.Parallel < 1)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"--parallel must be at least 1 (got {r.Parallel})");
        if (r.SshPersist < 0)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"--ssh-persist must be 0 (off) or a number of seconds (got {r.SshPersist})");
        return new PathFilter(r.Excludes, r.Only);
    }
}
