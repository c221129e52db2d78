using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Local;

internal sealed record FileCopyOptions(
    bool Force, bool Preserve, bool Verify, bool Sync, ReflinkMode Reflink, SparseMode Sparse, bool KeepTimes = false);

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

        var staging = Temporaries.StagingPath(dst);
        var handle = Temporaries.CreateStaging(staging, meta.Mode);
        bool committed = false;
        try
        {
            var hasher = o.Verify ? Blake3Hasher.Create() : null;
            long copied = DataCopier.Copy(new DataCopier.Source(srcHandle, src, meta), new DataCopier.Target(handle, staging, dst),
                o.Reflink, o.Sparse, hasher, onBytes, ct, out var method);
            EnsureUnchanged(srcHandle, src, meta, copied);

            byte[]? hash = hasher?.Finalize();
            if (hash is not null)
            {
                TestHooks.MaybeCorruptStaged(handle, dst, meta.Size);
                var written = DataCopier.HashFile(handle, staging, Blake3Hasher.Create(), ct);
                if (!written.AsSpan().SequenceEqual(hash))
                    throw new BcmrException(BcmrErrorCode.VerifyMismatch, dst,
                        $"{dst}: verification failed: BLAKE3 of the copy ({Blake3.ToHex(written)}) differs from the source ({Blake3.ToHex(hash)})");
            }

            var dropped = o.Preserve ? PreserveMetadata(srcHandle, src, meta, handle, staging) : null;
            if (o.KeepTimes && !o.Preserve) Fs.SetTimes(handle, staging, meta, noFollow: false);
            if (o.Sync) Fs.FlushToDisk(handle, dst);
            handle.Dispose();

            Fs.Rename(staging, dst, replace: o.Force);
            committed = true;
            if (o.Sync) Fs.FlushDirectory(ParentOf(dst));
            return new FileCopyOutcome(copied, method, hash, dropped);
        }
        catch (BcmrException e) when (e.Path == staging)
        {
            throw BcmrException.ForDestination(e, staging, dst);
        }
        finally
        {
            handle.Dispose();
            if (!committed) Fs.TryDeleteFile(staging);
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

    /// <summary>-p: mode, owner (where permitted), extended attributes, then times (last, since the others touch
    /// ctime only). Returns the attribute names the destination refused.</summary>
    public static List<string>? PreserveMetadata(SafeFileHandle srcHandle, string src, in FileMeta meta, SafeFileHandle handle, string path)
    {
        Fs.SetMode(handle, path, meta.Mode);
        Fs.TrySetOwner(handle, path, meta);
        var dropped = Fs.CopyXattrs(srcHandle, src, handle, path);
        Fs.SetTimes(handle, path, meta, noFollow: false);
        return dropped;
    }

    public static BcmrException ExistsError(string dst) =>
        new(BcmrErrorCode.AlreadyExists, dst, $"{dst}: destination exists (use -f to overwrite)");

    /// <summary>A source that grew, shrank or was rewritten while we read it must not be committed as a copy of it.</summary>
    public static void EnsureUnchanged(SafeFileHandle h, string src, in FileMeta before, long copied)
    {
        var after = Fs.Fstat(h, src);
        if (copied != before.Size || after.Size != before.Size || after.MtimeSec != before.MtimeSec || after.MtimeNsec != before.MtimeNsec)
            throw new BcmrException(BcmrErrorCode.SourceChanged, src,
                $"{src}: changed while being copied (size {before.Size} -> {after.Size}, read {copied}); not committed");
    }

    public static string ParentOf(string path)
    {
        var parent = Path.GetDirectoryName(path.TrimEnd('/', Path.DirectorySeparatorChar));
        return string.IsNullOrEmpty(parent) ? "." : parent;
    }
}
