namespace Bcmr.Engine.Transfers;

/// <summary>A snapshot for progress displays. Totals grow while the source tree is still being walked.</summary>
public readonly record struct TransferProgress(
    string Operation,
    long BytesDone, long BytesTotal,
    int FilesDone, int FilesTotal,
    string? CurrentFile, long CurrentFileBytes, long CurrentFileSize,
    TimeSpan Elapsed, double BytesPerSecond, TimeSpan? Eta,
    bool Final)
{
    private readonly IReadOnlyList<FileProgress>? _activeFiles;

    /// <summary>Every file being moved right now, oldest first: one per connection with --parallel, one per worker in a
    /// local copy with -j (<see cref="CurrentFile"/> is the newest of them). Empty in the final snapshot.</summary>
    public IReadOnlyList<FileProgress> ActiveFiles
    {
        get => _activeFiles ?? [];
        init => _activeFiles = value;
    }

    public double Percent => BytesTotal > 0 ? Math.Min(100.0, 100.0 * BytesDone / BytesTotal)
        : FilesTotal > 0 ? 100.0 * FilesDone / FilesTotal : (Final ? 100.0 : 0.0);
}

/// <summary>One file in flight: its name as shown, bytes done and its size.</summary>
public readonly record struct FileProgress(string Path, long Bytes, long Size);
