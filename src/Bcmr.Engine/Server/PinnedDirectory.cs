using Bcmr.Engine.Platform;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform.Native;

namespace Bcmr.Engine.Server;

/// <summary>
/// A directory inside the root held open (see <see cref="RootJail.Pin"/>): <see cref="Name"/> turns a canonical path
/// of an entry in it into a path that reaches the entry through the open directory. <see cref="Shown"/> turns such a
/// path in a message back into the canonical one the client should read.
/// </summary>
public sealed class PinnedDirectory : IDisposable
{
    private const int O_PATH = 0x200000, O_DIRECTORY = 0x10000;
    private int _fd;
    private readonly string _through;

    /// <summary>The canonical path of the directory.</summary>
    public string Directory { get; }

    /// <summary>The directory itself as this process reaches it: through the descriptor, or its canonical path when
    /// nothing is pinned (no jail).</summary>
    public string Opened => _through;

    /// <summary>The entry it was pinned for, through the descriptor.</summary>
    public string Target { get; }

    internal PinnedDirectory(int fd, string directory, string name)
    {
        _fd = fd;
        Directory = directory;
        _through = fd >= 0 ? $"/proc/self/fd/{fd}" : directory;
        Target = _through + "/" + name;
    }

    internal static PinnedDirectory Unpinned(string canonicalPath) =>
        new(-1, FileCopier.ParentOf(canonicalPath), Path.GetFileName(canonicalPath));

    /// <summary>The path through the descriptor of a sibling named by its canonical path.</summary>
    public string Name(string canonicalSibling) => _through + "/" + Path.GetFileName(canonicalSibling);

    /// <summary>A message with paths through the descriptor written as the canonical ones.</summary>
    public string Shown(string message) => _fd < 0 ? message : message.Replace(_through, Directory, StringComparison.Ordinal);

    internal static unsafe int OpenDirectory(string path, string shown, bool follow)
    {
        int flags = O_PATH | O_DIRECTORY | LibC.O_CLOEXEC | (follow ? 0 : LibC.O_NOFOLLOW);
        int fd = LibC.open(path, flags, 0);
        if (fd >= 0) return fd;
        int errno = LibC.LastErrno;
        if (errno is Errno.ELOOP or Errno.ENOTDIR && !follow)
            throw new BcmrException(BcmrErrorCode.OutsideRoot, shown,
                $"{shown}: changed while it was being used (now a symbolic link or not a directory); refused");
        throw BcmrException.FromErrno(errno, shown);
    }

    internal static void Close(int fd)
    {
        if (fd >= 0) LibC.close(fd);
    }

    public void Dispose()
    {
        Close(_fd);
        _fd = -1;
    }
}
