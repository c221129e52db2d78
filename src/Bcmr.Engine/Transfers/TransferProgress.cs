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
    public double Percent => BytesTotal > 0 ? Math.Min(100.0, 100.0 * BytesDone / BytesTotal)
        : FilesTotal > 0 ? 100.0 * FilesDone / FilesTotal : (Final ? 100.0 : 0.0);
}
