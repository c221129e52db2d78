using Microsoft.Win32.SafeHandles;
using static Bcmr.Engine.Local.Native.LibC;

namespace Bcmr.Engine.Local;

internal static partial class Fs
{
    /// <summary>Opens an existing regular file for reading and writing (no create, no truncate): how the server
    /// continues a partial upload it has claimed.</summary>
    public static SafeFileHandle OpenReadWrite(string path)
    {
        if (Linux)
        {
            int fd = open(path, O_RDWR | O_CLOEXEC, 0);
            if (fd < 0) throw BcmrException.FromErrno(LastErrno, path);
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        try { return File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
    }
}
