using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Local;

/// <param name="Threads">Where a resumable copy and -V rent their hashing threads (<see cref="ThreadBudget"/>); null: unbudgeted.</param>
internal sealed record FileCopyOptions(
    bool Force, bool Preserve, bool Verify, bool Sync, ReflinkMode Reflink, SparseMode Sparse, bool KeepTimes = false,
    ThreadBudget? Threads = null);

internal readonly record struct FileCopyOutcome(long Bytes, CopyMethod Method, byte[]? Hash, List<string>? DroppedXattrs);

/// <summary>
/// Copies one file or symlink with the staging discipline every final path gets: a unique sibling temp name,
/// the data, a check that the source did not change, verification, metadata, durability, then an atomic rename.
/// Whatever fails, the final name holds either its old content or the complete new one, and the temp is gone.
/// </summary>
internal static class FileCopier
{
    /// <summary>Files at least this large get their destination checked before the copy starts, so a refusal
    /// (exists without -f) does not come after minutes of copying. Small files rely on the no-replace rename alone.</summary>
    private const long PrecheckThreshold = 1024 * 1024;

    public static FileCopyOutcome CopyFile(string src, string dst, FileCopyOptions o, Action<long>? onBytes, CancellationToken ct)
    {
        using var srcHandle = Fs.OpenRead(src);
        var meta = Fs.Fstat(srcHandle, src);
        if (meta.Kind == EntryKind.Directory)
            throw new BcmrException(BcmrErrorCode.IsADirectory, src, $"{src}: is a directory (use -r)");
        if (meta.Kind == EntryKind.Other)
            throw new BcmrException(BcmrErrorCode.SpecialFile, src, $"{src}: not a regular file (FIFO, socket or device); skipped");
        if (meta.Size >= PrecheckThreshold && !o.Force && Fs.TryLstat(dst) is not null)
            throw ExistsError(dst);

        using var staged = StagedFile.CreateTemporary(dst, meta.Mode);
        try
        {
            staged.WatchSource(srcHandle, src, meta);
            var hasher = o.Verify ? Blake3Hasher.Create() : null;
            var overlapped = o.Verify && OverlappedVerify.Applies(meta.Size) ? new OverlappedVerify(o.Threads) : null;
            long copied = DataCopier.Copy(new DataCopier.Source(srcHandle, src, meta), staged.Target,
                o.Reflink, o.Sparse, hasher, onBytes, ct, out var method, overlapped);
            staged.EnsureSourceUnchanged(copied);

            byte[]? hash;
            if (overlapped is { Ran: true }) hash = staged.Verified(overlapped.WrittenHash!, overlapped.SourceHash!);
            else
            {
                hash = hasher?.Finalize();
                if (hash is not null) staged.Verify(hash, meta.Size, ct, threads: o.Threads);
            }

            var dropped = o.Preserve ? staged.PreserveFromSource() : null;
            if (o.KeepTimes && !o.Preserve) staged.SetTimes(meta);
            staged.Commit(replace: o.Force, flush: o.Sync, flushDirectory: o.Sync);
            return new FileCopyOutcome(copied, method, hash, dropped);
        }
        catch (BcmrException e) when (e.Path == staged.Path)
        {
            throw staged.ForDestination(e);
        }
    }

    public static void CopySymlink(string src, string dst, FileCopyOptions o)
    {
        var target = Fs.ReadLink(src);
        var staging = Temporaries.StagingPath(dst);
        Fs.CreateSymlink(target, staging);
        bool committed = false;
        try
        {
            if (o.Preserve)
            {
                var meta = Fs.Lstat(src);
                Fs.TrySetOwner(null, staging, meta);
                Fs.SetTimes(null, staging, meta, noFollow: true);
            }
            Fs.Rename(staging, dst, replace: o.Force);
            committed = true;
            if (o.Sync) Fs.FlushDirectory(ParentOf(dst));
        }
        finally
        {
            if (!committed) Fs.TryDeleteFile(staging);
        }
    }

    public static BcmrException ExistsError(string dst) =>
        new(BcmrErrorCode.AlreadyExists, dst, $"{dst}: destination exists (use -f to overwrite)");

    public static string ParentOf(string path)
    {
        var parent = Path.GetDirectoryName(path.TrimEnd('/', Path.DirectorySeparatorChar));
        return string.IsNullOrEmpty(parent) ? "." : parent;
    }
}
