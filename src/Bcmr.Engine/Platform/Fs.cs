using System.Runtime.InteropServices;
using System.Text;
using Bcmr.Engine.Platform.Native;
using Microsoft.Win32.SafeHandles;
using static Bcmr.Engine.Platform.Native.LibC;

namespace Bcmr.Engine.Platform;

/// <summary>
/// Every filesystem operation the local copy needs, each in one place with two branches: raw Linux system calls
/// (few syscalls per file, errno for precise errors) and portable .NET calls for other systems.
/// <c>BCMR_PORTABLE_IO=1</c> forces the portable branch so that it is tested on Linux too (read by the host program:
/// <see cref="EngineSettings.ApplyProcessWide"/> calls <see cref="RequestPortable"/>).
/// All failures surface as <see cref="BcmrException"/> naming the path.
/// </summary>
internal static unsafe partial class Fs
{
    /// <summary>
    /// The most a single write (and the hash beside it) takes at once: 4 MiB blocks are written 256 KiB at a time.
    /// Measured on this project's 2-vCPU VM: a 1 GiB `bcmr copy -C` to ext4 took 1.9–3.5 s with one 4 MiB pwrite per
    /// block (1.7–3.4 s of it system time) and 0.7–1.2 s in 256 KiB slices; a 1 GiB download's disk thread spent
    /// 4.0–4.4 s of system time against 1.5 s; `dd bs=4M` against `bs=256K` shows the same. A slice also stays in cache
    /// between the read, the write and the hash. On tmpfs it makes no difference.
    /// </summary>
    public const int IoSlice = 256 * 1024;

    /// <summary>Raw Linux system calls, fixed when Fs is first used: one I/O path for the whole process (a handle opened
    /// by one branch is used by the other's calls), and readonly so that the JIT drops the branch not taken.</summary>
    public static readonly bool Linux = OperatingSystem.IsLinux() && !PortableIo.Requested;

    /// <summary>Asks for the portable branch. Effective only before Fs is first used, which is why the host asks
    /// first thing (a request after that changes nothing, as the variable read at that moment did before).</summary>
    internal static void RequestPortable() => PortableIo.Requested = true;

    /// <summary>Apart from Fs so that asking does not run Fs's static initialiser, which fixes <see cref="Linux"/>.</summary>
    private static class PortableIo
    {
        public static volatile bool Requested;
    }

    /// <summary>The process umask, read once: new files and directories get (source mode &amp; ~umask), as with cp.</summary>
    public static readonly uint Umask = ReadUmask();

    // ---- metadata -------------------------------------------------------------------------------------------

    public static FileMeta? TryLstat(string path) => TryStatCore(path, followLinks: false);
    public static FileMeta? TryStat(string path) => TryStatCore(path, followLinks: true);

    public static FileMeta Lstat(string path) =>
        TryLstat(path) ?? throw new BcmrException(BcmrErrorCode.NotFound, path, $"{path}: No such file or directory");

    private static FileMeta? TryStatCore(string path, bool followLinks)
    {
        if (Linux)
        {
            if (statx(AT_FDCWD, path, followLinks ? 0 : AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, out var st) == 0)
                return FromStatx(st);
            var errno = LastErrno;
            if (errno is Errno.ENOENT or Errno.ENOTDIR) return null;
            throw BcmrException.FromErrno(errno, path);
        }
        try
        {
            var file = new FileInfo(path);
            if (file.LinkTarget is not null)
            {
                if (!followLinks) return FromInfo(file);
                var target = file.ResolveLinkTarget(returnFinalTarget: true);
                return target is { Exists: true } ? FromInfo(target) : null;
            }
            if (file.Exists) return FromInfo(file);
            var dir = new DirectoryInfo(path);
            return dir.Exists ? FromInfo(dir) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw BcmrException.FromIo(e, path);
        }
    }

    public static FileMeta Fstat(SafeFileHandle handle, string path)
    {
        if (Linux)
        {
            if (statx((int)handle.DangerousGetHandle(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, out var st) != 0)
                throw BcmrException.FromErrno(LastErrno, path);
            return FromStatx(st);
        }
        var info = new FileInfo(path);
        info.Refresh();
        return FromInfo(info) with { Size = RandomAccess.GetLength(handle) };
    }

    private static FileMeta FromStatx(in Statx st)
    {
        var kind = (st.Mode & S_IFMT) switch
        {
            S_IFREG => EntryKind.File,
            S_IFDIR => EntryKind.Directory,
            S_IFLNK => EntryKind.Symlink,
            _ => EntryKind.Other,
        };
        return new FileMeta(kind, (long)st.Size, st.Mode & 0xFFFu,
            st.Mtime.Sec, st.Mtime.Nsec, st.Atime.Sec, st.Atime.Nsec,
            st.Ino, ((ulong)st.DevMajor << 32) | st.DevMinor, st.Uid, st.Gid, (long)st.Blocks * 512,
            st.Ctime.Sec, st.Ctime.Nsec);
    }

    private static FileMeta FromInfo(FileSystemInfo info)
    {
        var kind = info.LinkTarget is not null ? EntryKind.Symlink
            : info is DirectoryInfo || (info.Attributes & FileAttributes.Directory) != 0 ? EntryKind.Directory
            : EntryKind.File;
        long size = kind == EntryKind.File ? ((FileInfo)info).Length : 0;
        var mtime = new DateTimeOffset(info.LastWriteTimeUtc);
        var atime = new DateTimeOffset(info.LastAccessTimeUtc);
        uint mode = OperatingSystem.IsWindows() ? (kind == EntryKind.Directory ? 0x1EDu : 0x1A4u) : (uint)info.UnixFileMode;
        return new FileMeta(kind, size, mode,
            mtime.ToUnixTimeSeconds(), (uint)(mtime.UtcTicks % TimeSpan.TicksPerSecond * 100),
            atime.ToUnixTimeSeconds(), (uint)(atime.UtcTicks % TimeSpan.TicksPerSecond * 100),
            0, 0, 0, 0, size);
    }

    /// <summary>The canonical path with every symlink resolved; for a path that does not exist yet, the nearest
    /// existing ancestor is resolved and the rest appended.</summary>
    public static string RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        var rest = new Stack<string>();
        var probe = full;
        while (true)
        {
            if (TryLstat(probe) is not null)
            {
                var resolved = ResolveExisting(probe);
                foreach (var part in rest) resolved = Path.Join(resolved, part);
                return resolved;
            }
            var parent = Path.GetDirectoryName(probe);
            if (parent is null) return full;
            rest.Push(Path.GetFileName(probe));
            probe = parent;
        }
    }

    private static string ResolveExisting(string path)
    {
        if (!Linux) return Path.GetFullPath(path);
        byte* p = realpath(path, null);
        if (p == null) return Path.GetFullPath(path);
        try { return PathBytes.Decode(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(p)); }
        finally { free(p); }
    }

    /// <summary>The entries of a directory (not "." and ".."), unsorted: names exactly as the filesystem holds them
    /// (<see cref="PathBytes"/>), the kind from the directory entry (a symlink is a symlink), and a regular file's size.
    /// Anything that is neither a directory nor a symlink is listed as a file (its copy finds out what it is).
    /// <paramref name="sizes"/> false leaves the sizes 0 (one stat per file fewer, for a caller that stats each entry
    /// itself anyway).</summary>
    public static List<DirEntry> ListDirectory(string dir, bool sizes = true)
    {
        if (!Linux) return ListDirectoryManaged(dir);
        nint d = opendir(dir);
        if (d == 0) throw BcmrException.FromErrno(LastErrno, dir);
        var entries = new List<DirEntry>();
        try
        {
            while (true)
            {
                System.Runtime.InteropServices.Marshal.SetLastPInvokeError(0);
                byte* e = readdir64(d);
                if (e == null)
                {
                    int errno = LastErrno;
                    if (errno != 0) throw BcmrException.FromErrno(errno, dir);
                    break;
                }
                var raw = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(e + DirentNameOffset);
                if (raw.SequenceEqual("."u8) || raw.SequenceEqual(".."u8)) continue;
                var name = PathBytes.Decode(raw);
                byte type = e[DirentTypeOffset];
                var kind = type switch
                {
                    DT_DIR => EntryKind.Directory,
                    DT_LNK => EntryKind.Symlink,
                    DT_UNKNOWN => TryLstat(dir + "/" + name)?.Kind switch { EntryKind.Directory => EntryKind.Directory, EntryKind.Symlink => EntryKind.Symlink, _ => EntryKind.File },
                    _ => EntryKind.File,
                };
                long size = sizes && kind == EntryKind.File && type is DT_REG or DT_UNKNOWN ? TryLstat(dir + "/" + name)?.Size ?? 0 : 0;
                entries.Add(new DirEntry(name, kind, size));
            }
        }
        finally { closedir(d); }
        return entries;
    }

    private static List<DirEntry> ListDirectoryManaged(string dir)
    {
        try
        {
            var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false };
            var entries = new System.IO.Enumeration.FileSystemEnumerable<DirEntry>(dir, (ref System.IO.Enumeration.FileSystemEntry e) => new DirEntry(
                e.FileName.ToString(),
                (e.Attributes & FileAttributes.ReparsePoint) != 0 ? EntryKind.Symlink
                    : e.IsDirectory ? EntryKind.Directory : EntryKind.File,
                e.IsDirectory ? 0 : e.Length), options);
            return entries.ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw BcmrException.FromIo(e, dir);
        }
    }

    // ---- opening ---------------------------------------------------------------------------------------------

    public static SafeFileHandle OpenRead(string path)
    {
        if (Linux)
        {
            // O_NONBLOCK: opening a FIFO met in a tree must not hang; it is harmless for regular files.
            int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
            if (fd < 0) throw BcmrException.FromErrno(LastErrno, path);
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        try { return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>Creates a new file that must not exist yet (O_EXCL), so two copies never share a staging file.</summary>
    public static SafeFileHandle CreateNew(string path, uint mode)
    {
        if (Linux)
        {
            int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0x1FFu);
            if (fd < 0) throw BcmrException.FromErrno(LastErrno, path);
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        try
        {
            var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, FileOptions.None, 0);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(handle, (UnixFileMode)(mode & 0x1FFu & ~Umask));
            return handle;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>Takes an exclusive advisory lock on a file we just created, held until the handle closes; a
    /// filesystem without locks only loses the stale-file sweep (<see cref="Temporaries.SweepStale"/>).</summary>
    public static void TryLock(SafeFileHandle h)
    {
        if (Linux) flock(Fd(h), LOCK_EX | LOCK_NB);
    }

    /// <summary>Drops the lock of <see cref="TryLock"/> before a file takes its final or partial name: .NET readers
    /// (FileShare emulated with flock) would otherwise be refused until our handle closes.</summary>
    public static void Unlock(SafeFileHandle h)
    {
        if (Linux) flock(Fd(h), LOCK_UN);
    }

    /// <summary>Whether another process holds the lock of <see cref="TryLock"/> on the file (false when unknown).</summary>
    public static bool IsLocked(string path)
    {
        if (!Linux) return false;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
        if (fd < 0) return false;
        using var h = new SafeFileHandle(fd, ownsHandle: true);
        return flock(fd, LOCK_EX | LOCK_NB) != 0 && LastErrno == Errno.EAGAIN;
    }

    /// <summary>Removes a regular file nobody holds a lock on (a staging file whose writer died), while holding the
    /// lock ourselves so that no writer can take it in between. False when it is in use or cannot be removed.</summary>
    public static bool TryRemoveUnlocked(string path)
    {
        if (!Linux) return false;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
        if (fd < 0) return false;
        using var h = new SafeFileHandle(fd, ownsHandle: true);
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) return false;
        return unlink(path) == 0;
    }

    /// <summary>Opens (creating if needed, never truncating) a file that several processes write at once, each its own
    /// ranges (a striped upload's partial file): a shared advisory lock, so that a writer holding the exclusive lock
    /// of <see cref="OpenExclusive"/> (a whole-file copy or resume of the same destination) is not mixed with them.</summary>
    public static SafeFileHandle OpenShared(string path, uint mode, string displayPath)
    {
        if (Linux) return OpenLocked(path, mode, displayPath, LOCK_SH);
        try { return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>open(2) with O_CREAT, never following a symlink planted under the name (our writes must not be
    /// redirected), then a non-blocking flock of <paramref name="lockKind"/>; held by another: AlreadyExists.</summary>
    private static SafeFileHandle OpenLocked(string path, uint mode, string displayPath, int lockKind)
    {
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode & 0x1FFu);
        if (fd < 0) throw BcmrException.FromErrno(LastErrno, path);
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (flock(fd, lockKind | LOCK_NB) != 0)
        {
            int errno = LastErrno;
            handle.Dispose();
            throw errno == Errno.EAGAIN
                ? new BcmrException(BcmrErrorCode.AlreadyExists, displayPath, $"{displayPath}: another bcmr is copying to it right now ({path} is locked)")
                : BcmrException.FromErrno(errno, path, "lock");
        }
        return handle;
    }

    /// <summary>Opens (creating if needed, never through a link) a lock file and waits for its exclusive lock, held
    /// until the handle closes (Linux; elsewhere the handle alone).</summary>
    public static SafeFileHandle OpenLockWaiting(string path, uint mode)
    {
        if (!Linux) return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode & 0x1FFu);
        if (fd < 0) throw BcmrException.FromErrno(LastErrno, path);
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        while (flock(fd, LOCK_EX) != 0)
        {
            int errno = LastErrno;
            if (errno == Errno.EINTR) continue;
            handle.Dispose();
            throw BcmrException.FromErrno(errno, path, "lock");
        }
        return handle;
    }

    /// <summary>Opens (creating if needed) a file that this process alone may write while it holds the handle:
    /// an exclusive advisory lock, so two resumable copies to one destination refuse instead of interleaving.</summary>
    public static SafeFileHandle OpenExclusive(string path, uint mode, string displayPath)
    {
        if (Linux) return OpenLocked(path, mode, displayPath, LOCK_EX);
        try
        {
            bool existed = File.Exists(path);
            var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, FileOptions.None, 0);
            if (!existed && !OperatingSystem.IsWindows()) File.SetUnixFileMode(handle, (UnixFileMode)(mode & 0x1FFu & ~Umask));
            return handle;
        }
        catch (IOException e) when (File.Exists(path) && e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new BcmrException(BcmrErrorCode.AlreadyExists, displayPath, $"{displayPath}: another program is writing {path} ({e.Message})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static int Fd(SafeFileHandle h) => (int)h.DangerousGetHandle();

    // ---- reading and writing ---------------------------------------------------------------------------------

    public static int Read(SafeFileHandle h, Span<byte> buffer, long offset, string path)
    {
        try { return RandomAccess.Read(h, buffer, offset); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>Reads until the buffer is full or end of file; returns the bytes read.</summary>
    public static int ReadFull(SafeFileHandle h, Span<byte> buffer, long offset, string path)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = Read(h, buffer[total..], offset + total, path);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public static void Write(SafeFileHandle h, ReadOnlySpan<byte> data, long offset, string path)
    {
        if (Linux)
        {
            fixed (byte* p = data)
            {
                int done = 0;
                while (done < data.Length)
                {
                    nint n = pwrite(Fd(h), p + done, (nuint)(data.Length - done), offset + done);
                    if (n < 0)
                    {
                        int errno = LastErrno;
                        if (errno == Errno.EINTR) continue;
                        throw BcmrException.FromErrno(errno, path);
                    }
                    done += (int)n;
                }
            }
            return;
        }
        try { RandomAccess.Write(h, data, offset); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static void SetLength(SafeFileHandle h, long length, string path)
    {
        if (Linux)
        {
            if (ftruncate(Fd(h), length) != 0) throw BcmrException.FromErrno(LastErrno, path);
            return;
        }
        try { RandomAccess.SetLength(h, length); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static void FlushToDisk(SafeFileHandle h, string path)
    {
        if (Linux)
        {
            if (fsync(Fd(h)) != 0) throw BcmrException.FromErrno(LastErrno, path, "fsync");
            return;
        }
        try { RandomAccess.FlushToDisk(h); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>Makes the file's data (and the size needed to read it back) durable: fdatasync where there is one.</summary>
    public static void FlushData(SafeFileHandle h, string path)
    {
        if (Linux)
        {
            if (fdatasync(Fd(h)) != 0) throw BcmrException.FromErrno(LastErrno, path, "fdatasync");
            return;
        }
        FlushToDisk(h, path);
    }

    /// <summary>Asks the kernel to start writing a range back now, without waiting, so that a later
    /// <see cref="FlushData"/> finds little left to do and the disk works while we copy. A hint: failures are ignored.</summary>
    public static void StartWriteback(SafeFileHandle h, long offset, long length)
    {
        if (Linux) sync_file_range(Fd(h), offset, length, SYNC_FILE_RANGE_WRITE);
    }

    /// <summary>Makes a rename or create in <paramref name="dir"/> durable. Directories cannot be fsynced on Windows.</summary>
    public static void FlushDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        if (Linux)
        {
            int fd = open(dir, O_RDONLY | O_CLOEXEC, 0);
            if (fd < 0) throw BcmrException.FromErrno(LastErrno, dir);
            try { if (fsync(fd) != 0) throw BcmrException.FromErrno(LastErrno, dir, "fsync"); }
            finally { close(fd); }
            return;
        }
        using var h = File.OpenHandle(dir, FileMode.Open, FileAccess.Read);
        RandomAccess.FlushToDisk(h);
    }

    // ---- names ---------------------------------------------------------------------------------------------

    /// <summary>Moves <paramref name="from"/> to <paramref name="to"/> atomically. Without <paramref name="replace"/>
    /// an existing <paramref name="to"/> is never overwritten, even if it appears after we looked.</summary>
    public static void Rename(string from, string to, bool replace)
    {
        if (Linux)
        {
            if (replace)
            {
                if (rename(from, to) != 0) throw RenameError(LastErrno, from, to);
                return;
            }
            if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return;
            int errno = LastErrno;
            if (errno is not (Errno.EINVAL or Errno.ENOSYS)) throw RenameError(errno, from, to);
            // Filesystems without RENAME_NOREPLACE: link() also refuses an existing name.
            if (link(from, to) != 0) throw RenameError(LastErrno, from, to);
            unlink(from);
            return;
        }
        try
        {
            if (Directory.Exists(from)) Directory.Move(from, to);
            else File.Move(from, to, replace);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, to); }
    }

    private static BcmrException RenameError(int errno, string from, string to) => errno switch
    {
        Errno.EXDEV => new BcmrException(BcmrErrorCode.CrossDevice, to, $"{to}: on another filesystem than {from}"),
        Errno.EEXIST => new BcmrException(BcmrErrorCode.AlreadyExists, to, $"{to}: destination exists (use -f to overwrite)"),
        Errno.ENOTEMPTY => new BcmrException(BcmrErrorCode.AlreadyExists, to, $"{to}: destination is a non-empty directory"),
        Errno.EISDIR => new BcmrException(BcmrErrorCode.IsADirectory, to, $"{to}: cannot overwrite a directory with a non-directory"),
        Errno.ENOTDIR => new BcmrException(BcmrErrorCode.NotADirectory, to, $"{to}: cannot overwrite a non-directory with a directory"),
        _ => BcmrException.FromErrno(errno, to),
    };

    /// <summary>mkdir -p: an existing directory is fine.</summary>
    public static void MakeDirectories(string path)
    {
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static void MakeDirectory(string path, uint mode)
    {
        if (Linux)
        {
            if (mkdir(path, mode & 0xFFFu) != 0) throw BcmrException.FromErrno(LastErrno, path);
            return;
        }
        if (Directory.Exists(path) || File.Exists(path))
            throw new BcmrException(BcmrErrorCode.AlreadyExists, path, $"{path}: File exists");
        try
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
            else Directory.CreateDirectory(path, (UnixFileMode)(mode & 0x1FFu & ~Umask));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static void CreateSymlink(string target, string path)
    {
        if (Linux)
        {
            if (symlink(target, path) != 0) throw BcmrException.FromErrno(LastErrno, path);
            return;
        }
        try { File.CreateSymbolicLink(path, target); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static string ReadLink(string path)
    {
        if (Linux)
        {
            var buf = new byte[PathBytes.PathMax];
            nint n;
            fixed (byte* p = buf) n = readlink(path, p, (nuint)buf.Length);
            if (n < 0) throw BcmrException.FromErrno(LastErrno, path);
            return PathBytes.Decode(buf.AsSpan(0, (int)n));
        }
        try
        {
            return new FileInfo(path).LinkTarget
                ?? throw new BcmrException(BcmrErrorCode.IoError, path, $"{path}: not a symbolic link");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static void DeleteFile(string path)
    {
        if (Linux)
        {
            if (unlink(path) != 0) throw BcmrException.FromErrno(LastErrno, path, "cannot remove");
            return;
        }
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>Best-effort removal of our own staging file; never throws (it runs in cleanup paths).</summary>
    public static void TryDeleteFile(string path)
    {
        try
        {
            if (Linux) unlink(path);
            else File.Delete(path);
        }
        catch (Exception) { /* cleanup must not mask the original failure */ }
    }

    /// <summary>Whether the reader at the other end of an output descriptor (pipe or socket) is gone: nobody will
    /// read what we would send, so work for it can stop. False when unknown.</summary>
    public static bool PeerGone(int fd)
    {
        if (!Linux) return false;
        var p = new PollFd { Fd = fd, Events = POLLOUT };
        return poll(&p, 1, 0) == 1 && (p.Revents & (POLLERR | POLLHUP)) != 0;
    }

    /// <summary>Whether an input descriptor (pipe or socket) can be read now without waiting: bytes are there, or its
    /// end. False when unknown.</summary>
    public static bool InputReady(int fd)
    {
        if (!Linux) return false;
        var p = new PollFd { Fd = fd, Events = POLLIN };
        return poll(&p, 1, 0) == 1;
    }

    /// <summary>Bytes an unprivileged writer may still allocate on the filesystem of <paramref name="path"/>; null when unknown.</summary>
    public static long? AvailableBytes(string path)
    {
        if (Linux) return statvfs(path, out var s) == 0 ? (long)Math.Min(s.Bavail * s.Frsize, long.MaxValue) : null;
        try { return new DriveInfo(Path.GetPathRoot(Path.GetFullPath(path))!).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>rmdir: an error names the directory and the cause (e.g. Directory not empty).</summary>
    public static void RemoveDirectory(string path)
    {
        if (Linux)
        {
            if (rmdir(path) != 0) throw BcmrException.FromErrno(LastErrno, path, "cannot remove");
            return;
        }
        try { Directory.Delete(path, recursive: false); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    public static bool TryRemoveEmptyDirectory(string path)
    {
        if (Linux) return rmdir(path) == 0;
        try { Directory.Delete(path, recursive: false); return true; }
        catch (IOException) { return false; }
    }

    // ---- metadata changes -------------------------------------------------------------------------------------

    public static void SetMode(SafeFileHandle? h, string path, uint mode)
    {
        if (OperatingSystem.IsWindows()) return;
        if (Linux)
        {
            int rc = h is null ? chmod(path, mode & 0xFFFu) : fchmod(Fd(h), mode & 0xFFFu);
            if (rc != 0) throw BcmrException.FromErrno(LastErrno, path, "cannot set mode");
            return;
        }
        File.SetUnixFileMode(path, (UnixFileMode)(mode & 0xFFFu));
    }

    /// <summary>Copies owner and group where we may (root); an unprivileged user silently keeps its own, as cp -p does.</summary>
    public static void TrySetOwner(SafeFileHandle? h, string path, in FileMeta meta)
    {
        if (!Linux) return;
        _ = h is null ? lchown(path, meta.Uid, meta.Gid) : fchown(Fd(h), meta.Uid, meta.Gid);
    }

    public static void SetTimes(SafeFileHandle? h, string path, in FileMeta meta, bool noFollow)
    {
        if (Linux)
        {
            var times = stackalloc Timespec[2];
            times[0] = new Timespec { Sec = meta.AtimeSec, Nsec = meta.AtimeNsec };
            times[1] = new Timespec { Sec = meta.MtimeSec, Nsec = meta.MtimeNsec };
            int rc = h is null ? utimensat(AT_FDCWD, path, times, noFollow ? AT_SYMLINK_NOFOLLOW : 0) : futimens(Fd(h), times);
            if (rc != 0) throw BcmrException.FromErrno(LastErrno, path, "cannot set times");
            return;
        }
        try
        {
            var mtime = meta.MtimeUtc;
            if (Directory.Exists(path)) Directory.SetLastWriteTimeUtc(path, mtime);
            else if (h is not null) File.SetLastWriteTimeUtc(h, mtime);
            else File.SetLastWriteTimeUtc(path, mtime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>Sets only the modification time (the access time is left as it is), never following a final link.</summary>
    public static void SetModificationTime(string path, long sec, long nsec)
    {
        if (Linux)
        {
            var times = stackalloc Timespec[2];
            times[0] = new Timespec { Sec = 0, Nsec = UTIME_OMIT };
            times[1] = new Timespec { Sec = sec, Nsec = nsec };
            if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) != 0) throw BcmrException.FromErrno(LastErrno, path, "cannot set times");
            return;
        }
        try
        {
            var mtime = DateTime.UnixEpoch.AddSeconds(sec).AddTicks(nsec / 100);
            if (Directory.Exists(path)) Directory.SetLastWriteTimeUtc(path, mtime);
            else File.SetLastWriteTimeUtc(path, mtime);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }

    /// <summary>link(2): a second name for a file (a link itself when the first name is one), replacing a file
    /// already at <paramref name="to"/> only when <paramref name="replace"/> (through a temporary name and a rename, so
    /// <paramref name="to"/> always names one of the two).</summary>
    public static void HardLink(string from, string to, bool replace)
    {
        if (!Linux)
        {
            try { File.Copy(from, to, replace); return; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, to); }
        }
        if (link(from, to) == 0) return;
        int errno = LastErrno;
        if (errno != Errno.EEXIST || !replace) throw RenameError(errno, from, to);
        var temporary = to + ".bcmr-link-" + Environment.ProcessId;
        if (link(from, temporary) != 0) throw RenameError(LastErrno, from, to);
        try { Rename(temporary, to, replace: true); }
        catch { TryDeleteFile(temporary); throw; }
    }

    /// <summary>Copies extended attributes. Returns the names the destination refused (another filesystem, no
    /// privilege): cross-filesystem copies should not fail over them, but -v reports them.</summary>
    public static List<string>? CopyXattrs(SafeFileHandle? srcHandle, string src, SafeFileHandle? dstHandle, string dst)
    {
        if (!Linux) return null;
        var names = ListXattrs(srcHandle, src);
        if (names.Length == 0) return null;
        List<string>? dropped = null;
        var value = new byte[256];
        int start = 0;
        while (start < names.Length)
        {
            int end = Array.IndexOf(names, (byte)0, start);
            if (end < 0) end = names.Length;
            fixed (byte* name = &names[start])
            {
                nint n;
                while (true)
                {
                    fixed (byte* v = value)
                        n = srcHandle is null ? lgetxattr(src, name, v, (nuint)value.Length) : fgetxattr(Fd(srcHandle), name, v, (nuint)value.Length);
                    if (n >= 0 || LastErrno != 34 /* ERANGE */) break;
                    value = new byte[value.Length * 4];
                }
                int rc = -1;
                if (n >= 0)
                    fixed (byte* v = value)
                        rc = dstHandle is null ? lsetxattr(dst, name, v, (nuint)n, 0) : fsetxattr(Fd(dstHandle), name, v, (nuint)n, 0);
                if (rc != 0) (dropped ??= new()).Add(Encoding.UTF8.GetString(names, start, end - start));
            }
            start = end + 1;
        }
        return dropped;
    }

    private static byte[] ListXattrs(SafeFileHandle? h, string path)
    {
        nint size = h is null ? llistxattr(path, null, 0) : flistxattr(Fd(h), null, 0);
        if (size <= 0) return Array.Empty<byte>();
        var list = new byte[size];
        fixed (byte* p = list)
            size = h is null ? llistxattr(path, p, (nuint)list.Length) : flistxattr(Fd(h), p, (nuint)list.Length);
        return size <= 0 ? Array.Empty<byte>() : list.AsSpan(0, (int)size).ToArray();
    }

    private static uint ReadUmask()
    {
        if (OperatingSystem.IsWindows()) return 0;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("Umask:", StringComparison.Ordinal))
                    return Convert.ToUInt32(line[6..].Trim(), 8);
        }
        catch (IOException) { }
        if (!OperatingSystem.IsLinux()) return 0x12; // 022, the usual default where /proc is absent
        uint old = umask(0x12);
        umask(old);
        return old;
    }
}
