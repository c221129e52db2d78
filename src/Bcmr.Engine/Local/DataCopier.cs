using Bcmr.Engine.Platform;
using Bcmr.Engine.Codecs;
using System.Buffers;
using Bcmr.Engine.Hashing;
using Microsoft.Win32.SafeHandles;
using static Bcmr.Engine.Platform.Native.LibC;

namespace Bcmr.Engine.Local;

public enum ReflinkMode { Auto, Force, Disable }

/// <summary>Auto keeps the holes the source has (SEEK_DATA/SEEK_HOLE); Force also turns zero runs of 4 KiB or more
/// into holes; Disable writes every byte.</summary>
public enum SparseMode { Auto, Force, Disable }

/// <summary>How the bytes of one file were moved, for results and for tests that check the fast paths ran.</summary>
public enum CopyMethod { None, Reflink, CopyFileRange, SparseExtents, ReadWrite }

/// <summary>
/// Moves the bytes of one open file into another, choosing the cheapest way that gives the caller what it asked
/// for: a reflink (no data moves), copy_file_range (no user-space copy) when nobody needs the bytes hashed, and one
/// synchronous read/write loop over a pooled 4 MiB buffer otherwise. Never one task per block (Experiment 13).
/// </summary>
internal static unsafe class DataCopier
{
    public const int BlockSize = Hashing.BlockLedger.BlockSize;
    private const int SparsePage = 4096;
    // copy_file_range in slices so that cancellation and progress stay responsive inside a large file.
    private const long KernelSlice = 32L * 1024 * 1024;

    internal readonly record struct Source(SafeFileHandle Handle, string Path, FileMeta Meta);
    internal readonly record struct Target(SafeFileHandle Handle, string Path, string DisplayPath);

    /// <summary>Copies everything the source holds now; returns the number of bytes read from it (the caller
    /// compares it with the size it saw at open to detect a source that changed underneath us).</summary>
    public static long Copy(in Source src, in Target dst, ReflinkMode reflink, SparseMode sparse,
        Blake3Hasher? hasher, Action<long>? onBytes, CancellationToken ct, out CopyMethod method, OverlappedVerify? overlapped = null)
    {
        if (Fs.Linux && reflink != ReflinkMode.Disable && src.Meta.Size > 0)
        {
            if (ioctl(Fs.Fd(dst.Handle), FICLONE, Fs.Fd(src.Handle)) == 0)
            {
                method = CopyMethod.Reflink;
                onBytes?.Invoke(src.Meta.Size);
                if (hasher is not null) HashFile(src.Handle, src.Path, hasher, ct);
                return src.Meta.Size;
            }
            if (reflink == ReflinkMode.Force)
                throw new BcmrException(BcmrErrorCode.Unsupported, dst.DisplayPath,
                    $"{dst.DisplayPath}: reflink not supported here ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(LastErrno)}); use --reflink auto");
        }

        if (sparse == SparseMode.Force)
        {
            method = CopyMethod.ReadWrite;
            return ReadWriteLoop(src, dst, 0, hasher, onBytes, ct, punchZeroPages: true);
        }
        // copy_file_range may share extents on btrfs, XFS and NFS, so "--reflink disable" (an independent copy)
        // must not use it; cp --reflink=never makes the same choice.
        bool kernelCopy = Fs.Linux && reflink != ReflinkMode.Disable;
        if (Fs.Linux && sparse == SparseMode.Auto && src.Meta.LooksSparse)
        {
            method = CopyMethod.SparseExtents;
            return CopyExtents(src, dst, hasher, kernelCopy, onBytes, ct);
        }
        if (kernelCopy && hasher is null)
        {
            long copied = KernelCopy(src, dst, 0, long.MaxValue, onBytes, ct, out bool unsupported);
            if (!unsupported)
            {
                method = CopyMethod.CopyFileRange;
                return copied;
            }
            method = CopyMethod.ReadWrite;
            return copied + ReadWriteLoop(src, dst, copied, hasher, onBytes, ct, punchZeroPages: false);
        }
        method = CopyMethod.ReadWrite;
        if (overlapped is not null)
        {
            long copied = overlapped.Copy(src, dst, onBytes, ct, out bool ran);
            if (ran) return copied;
        }
        return ReadWriteLoop(src, dst, 0, hasher, onBytes, ct, punchZeroPages: false);
    }

    /// <summary>copy_file_range from <paramref name="offset"/> for up to <paramref name="length"/> bytes or to EOF.
    /// Reports <paramref name="unsupported"/> when the kernel or filesystem pair cannot do it at all.</summary>
    private static long KernelCopy(in Source src, in Target dst, long offset, long length, Action<long>? onBytes,
        CancellationToken ct, out bool unsupported)
    {
        unsupported = false;
        long inOff = offset, outOff = offset, copied = 0;
        while (copied < length)
        {
            ct.ThrowIfCancellationRequested();
            long want = Math.Min(KernelSlice, length - copied);
            nint n = copy_file_range(Fs.Fd(src.Handle), &inOff, Fs.Fd(dst.Handle), &outOff, (nuint)want, 0);
            if (n < 0)
            {
                int errno = LastErrno;
                if (errno == Errno.EINTR) continue;
                if (copied == 0 && errno is Errno.EXDEV or Errno.EINVAL or Errno.ENOSYS or Errno.EOPNOTSUPP or Errno.EBADF)
                {
                    unsupported = true;
                    return 0;
                }
                throw ErrorFor(errno, src, dst);
            }
            if (n == 0) break;
            copied += n;
            onBytes?.Invoke(n);
        }
        return copied;
    }

    /// <summary>
    /// Copies exactly <paramref name="length"/> bytes at <paramref name="srcOffset"/> of one open file to
    /// <paramref name="dstOffset"/> of another: copy_file_range where the kernel can (no user-space copy; a shared
    /// extent on btrfs and XFS), a read/write loop otherwise. A source that ends first is an error (nothing shorter
    /// is ever reported as copied).
    /// </summary>
    internal static void CopyRange(SafeFileHandle src, string srcPath, long srcOffset, SafeFileHandle dst, string dstPath, long dstOffset, long length)
    {
        long done = 0;
        if (Fs.Linux)
        {
            long inOff = srcOffset, outOff = dstOffset;
            while (done < length)
            {
                nint n = copy_file_range(Fs.Fd(src), &inOff, Fs.Fd(dst), &outOff, (nuint)Math.Min(KernelSlice, length - done), 0);
                if (n > 0) { done += n; continue; }
                if (n == 0) throw Short(srcPath, srcOffset, length, done);
                int errno = LastErrno;
                if (errno == Errno.EINTR) continue;
                if (errno is Errno.EXDEV or Errno.EINVAL or Errno.ENOSYS or Errno.EOPNOTSUPP or Errno.EBADF) break; // the loop below
                throw errno is Errno.ENOSPC or Errno.EDQUOT or Errno.EROFS or Errno.EFBIG
                    ? BcmrException.FromErrno(errno, dstPath) : BcmrException.FromErrno(errno, srcPath);
            }
        }
        if (done == length) return;
        var buffer = BlockBuffers.Pool.Rent(BufferFor(length - done));
        try
        {
            while (done < length)
            {
                int want = (int)Math.Min(BlockSize, length - done);
                int n = Fs.ReadFull(src, buffer.AsSpan(0, want), srcOffset + done, srcPath);
                if (n < want) throw Short(srcPath, srcOffset, length, done + n);
                Fs.Write(dst, buffer.AsSpan(0, n), dstOffset + done, dstPath);
                done += n;
            }
        }
        finally { BlockBuffers.Pool.Return(buffer); }
    }

    private static BcmrException Short(string path, long offset, long length, long got) =>
        new(BcmrErrorCode.SourceChanged, path, $"{path}: ended {got} bytes into the {length} bytes at offset {offset}");

    /// <summary>Copies only the data extents of a file with holes and recreates the holes by length.</summary>
    private static long CopyExtents(in Source src, in Target dst, Blake3Hasher? hasher, bool kernelCopy, Action<long>? onBytes, CancellationToken ct)
    {
        int fd = Fs.Fd(src.Handle);
        long size = src.Meta.Size, pos = 0, copied = 0;
        while (pos < size)
        {
            long dataStart = lseek(fd, pos, SEEK_DATA);
            if (dataStart < 0)
            {
                if (LastErrno == Errno.ENXIO) dataStart = size; // only a hole remains
                else throw ErrorFor(LastErrno, src, dst);
            }
            if (hasher is not null) HashZeros(hasher, dataStart - pos);
            if (dataStart >= size)
            {
                onBytes?.Invoke(size - pos);
                pos = size;
                break;
            }
            long dataEnd = lseek(fd, dataStart, SEEK_HOLE);
            if (dataEnd < 0) throw ErrorFor(LastErrno, src, dst);
            long len = Math.Min(dataEnd, size) - dataStart;
            long n;
            if (hasher is null && kernelCopy)
            {
                n = KernelCopy(src, dst, dataStart, len, onBytes, ct, out bool unsupported);
                if (unsupported) n = ReadWriteRange(src, dst, dataStart, len, null, onBytes, ct);
            }
            else n = ReadWriteRange(src, dst, dataStart, len, hasher, onBytes, ct);
            copied += n;
            onBytes?.Invoke(dataStart - pos);
            pos = dataStart + n;
            if (n < len) break; // the source shrank; the caller's size check reports it
        }
        Fs.SetLength(dst.Handle, size, dst.DisplayPath);
        return pos;
    }

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="offset"/> (fewer if the source ends first) and
    /// writes them at the same offset, hashing them on the way when <paramref name="hasher"/> is given; returns how many.
    /// <paramref name="onBytes"/> runs after each block (it may throw to stop).</summary>
    internal static long ReadWriteRange(in Source src, in Target dst, long offset, long length, Blake3Hasher? hasher,
        Action<long>? onBytes, CancellationToken ct)
    {
        if (length <= 0) return 0;
        var buffer = BlockBuffers.Pool.Rent(BufferFor(length));
        try
        {
            long done = 0;
            while (done < length)
            {
                ct.ThrowIfCancellationRequested();
                int want = (int)Math.Min(BlockSize, length - done);
                int n = Fs.ReadFull(src.Handle, buffer.AsSpan(0, want), offset + done, src.Path);
                if (n == 0) break;
                HashAndWrite(buffer.AsSpan(0, n), hasher, dst.Handle, dst.DisplayPath, offset + done, punchZeroPages: false);
                done += n;
                onBytes?.Invoke(n);
            }
            return done;
        }
        finally { BlockBuffers.Pool.Return(buffer); }
    }

    /// <summary>The portable path and the hashing path: one thread, one pooled buffer, read then write.</summary>
    private static long ReadWriteLoop(in Source src, in Target dst, long offset, Blake3Hasher? hasher, Action<long>? onBytes,
        CancellationToken ct, bool punchZeroPages)
    {
        var buffer = BlockBuffers.Pool.Rent(BlockSize);
        try
        {
            long pos = offset;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                int n = Fs.ReadFull(src.Handle, buffer.AsSpan(0, BlockSize), pos, src.Path);
                if (n == 0) break;
                HashAndWrite(buffer.AsSpan(0, n), hasher, dst.Handle, dst.DisplayPath, pos, punchZeroPages);
                pos += n;
                onBytes?.Invoke(n);
            }
            if (punchZeroPages) Fs.SetLength(dst.Handle, pos, dst.DisplayPath);
            return pos - offset;
        }
        finally { BlockBuffers.Pool.Return(buffer); }
    }

    /// <summary>Hashes and writes a block one <see cref="Fs.IoSlice"/> at a time (the slice is still in cache for the
    /// write, and small writes are much cheaper than 4 MiB ones on ext4).</summary>
    internal static void HashAndWrite(ReadOnlySpan<byte> block, Blake3Hasher? hasher, SafeFileHandle h, string path, long pos, bool punchZeroPages = false)
    {
        for (int at = 0; at < block.Length; at += Fs.IoSlice)
        {
            var slice = block.Slice(at, Math.Min(Fs.IoSlice, block.Length - at));
            hasher?.Update(slice);
            if (punchZeroPages) WriteSkippingZeroPages(h, path, slice, pos + at);
            else Fs.Write(h, slice, pos + at, path);
        }
    }

    /// <summary>Writes a block but leaves every all-zero 4 KiB page unwritten (a hole once the length covers it).</summary>
    internal static void WriteSkippingZeroPages(SafeFileHandle h, string path, ReadOnlySpan<byte> block, long pos)
    {
        int i = 0;
        while (i < block.Length)
        {
            int pageEnd = Math.Min(i + SparsePage, block.Length);
            bool zero = block[i..pageEnd].IndexOfAnyExcept((byte)0) < 0 && pageEnd - i == SparsePage;
            if (zero) { i = pageEnd; continue; }
            // Extend the written run over following non-zero pages so we issue one write per run, not per page.
            int runEnd = pageEnd;
            while (runEnd < block.Length)
            {
                int next = Math.Min(runEnd + SparsePage, block.Length);
                if (next - runEnd == SparsePage && block[runEnd..next].IndexOfAnyExcept((byte)0) < 0) break;
                runEnd = next;
            }
            Fs.Write(h, block[i..runEnd], pos + i, path);
            i = runEnd;
        }
    }

    /// <summary>Hashes a whole open file from offset 0 (verification re-reads and reflinked sources).</summary>
    public static byte[] HashFile(SafeFileHandle h, string path, Blake3Hasher hasher, CancellationToken ct)
    {
        HashRange(h, path, 0, long.MaxValue, hasher, ct);
        return hasher.Finalize();
    }

    /// <summary>Feeds <paramref name="hasher"/> bytes [offset, offset + count) of an open file, or up to its end if
    /// that comes first (count = long.MaxValue: to the end); returns the bytes hashed, so callers decide what a file
    /// shorter than expected means.</summary>
    public static long HashRange(SafeFileHandle h, string path, long offset, long count, Blake3Hasher hasher, CancellationToken ct = default)
    {
        if (count <= 0) return 0;
        var buffer = BlockBuffers.Pool.Rent(BufferFor(count));
        try
        {
            long done = 0;
            while (done < count)
            {
                ct.ThrowIfCancellationRequested();
                int n = Fs.ReadFull(h, buffer.AsSpan(0, (int)Math.Min(BlockSize, count - done)), offset + done, path);
                if (n == 0) break;
                hasher.Update(buffer.AsSpan(0, n));
                done += n;
            }
            return done;
        }
        finally { BlockBuffers.Pool.Return(buffer); }
    }

    /// <summary>A pooled buffer for <paramref name="count"/> bytes, at most a block: a fresh 4 MiB array in a short
    /// process is a page fault per 4 KiB, paid for nothing when the range is a small file's.</summary>
    private static int BufferFor(long count) => (int)Math.Min(BlockSize, count);

    private static readonly byte[] Zeros = new byte[64 * 1024];

    private static void HashZeros(Blake3Hasher hasher, long count)
    {
        while (count > 0)
        {
            int n = (int)Math.Min(count, Zeros.Length);
            hasher.Update(Zeros.AsSpan(0, n));
            count -= n;
        }
    }

    private static BcmrException ErrorFor(int errno, in Source src, in Target dst) =>
        // Write-side failures (disk full, quota, read-only) belong to the destination; the rest to the source.
        errno is Errno.ENOSPC or Errno.EDQUOT or Errno.EROFS or Errno.EFBIG
            ? BcmrException.FromErrno(errno, dst.DisplayPath)
            : BcmrException.FromErrno(errno, src.Path);
}
