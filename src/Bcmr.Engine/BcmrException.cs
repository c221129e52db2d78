namespace Bcmr.Engine;

/// <summary>What went wrong, independent of how a caller shows it (exit code, ErrorRecord category).</summary>
/// <remarks>The values travel on the wire between our own peers (<see cref="Protocol.ErrorResponse.Code"/>): add new
/// codes at the end only, never renumber.</remarks>
public enum BcmrErrorCode
{
    Unknown = 0,
    NotFound,
    PermissionDenied,
    AlreadyExists,
    IsADirectory,
    NotADirectory,
    SameFile,
    IntoItself,
    DiskFull,
    ReadOnlyFileSystem,
    VerifyMismatch,
    SourceChanged,
    Unsupported,
    /// <summary>A FIFO, socket or device met in a tree: skipped, not copied.</summary>
    SpecialFile,
    /// <summary>A rename crossed filesystems; moves fall back to copy, verify, delete.</summary>
    CrossDevice,
    InvalidArgument,
    IoError,
    Cancelled,
    /// <summary>A path a client named resolves outside the root a server was given (see Server.RootJail).</summary>
    OutsideRoot,
    /// <summary>Could not reach or keep the remote end (ssh failed, the connection dropped, the peer broke the protocol).</summary>
    ConnectionFailed,
    /// <summary>The remote host has no usable bcmr (and the scp fallback was refused or failed).</summary>
    RemoteUnavailable,
    /// <summary>Data that failed an integrity check on the way (a hash mismatch over the wire, a corrupt compressed block).</summary>
    CorruptData,
    /// <summary>The file is busy or locked for now (EAGAIN, EBUSY, ETXTBSY; a Windows sharing violation).</summary>
    Busy,
}

/// <summary>The one exception type the engine throws for expected failures: a code, the path it concerns, and a
/// message that already names the path and the cause, ready to print.</summary>
public sealed class BcmrException : Exception
{
    public BcmrErrorCode Code { get; }
    public string? Path { get; }

    public BcmrException(BcmrErrorCode code, string? path, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Path = path;
    }

    /// <summary>Builds the exception for a failed system call: "{path}: {cause}".</summary>
    internal static BcmrException FromErrno(int errno, string path, string? action = null)
    {
        var code = errno switch
        {
            Errno.ENOENT => BcmrErrorCode.NotFound,
            Errno.EACCES or Errno.EPERM => BcmrErrorCode.PermissionDenied,
            Errno.EEXIST or Errno.ENOTEMPTY => BcmrErrorCode.AlreadyExists,
            Errno.EISDIR => BcmrErrorCode.IsADirectory,
            Errno.ENOTDIR => BcmrErrorCode.NotADirectory,
            Errno.ENOSPC or Errno.EDQUOT => BcmrErrorCode.DiskFull,
            Errno.EROFS => BcmrErrorCode.ReadOnlyFileSystem,
            Errno.EOPNOTSUPP or Errno.ENOSYS => BcmrErrorCode.Unsupported,
            Errno.EAGAIN or Errno.EBUSY or Errno.ETXTBSY => BcmrErrorCode.Busy,
            _ => BcmrErrorCode.IoError,
        };
        var cause = errno switch
        {
            Errno.ENOENT => "No such file or directory",
            Errno.EACCES or Errno.EPERM => "Permission denied",
            Errno.ENOSPC => "No space left on device",
            Errno.EDQUOT => "Disk quota exceeded",
            _ => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno),
        };
        return new BcmrException(code, path, action is null ? $"{path}: {cause}" : $"{path}: {action}: {cause}");
    }

    /// <summary>
    /// An error met on one of the engine's temporary files (a staged copy or a partial one), reworded for the
    /// destination the user named, with the temporary file's name after it: users know their destination, not our
    /// temporaries. Any other error is returned as it is.
    /// </summary>
    public static BcmrException ForDestination(BcmrException e, string temporary, string destination)
    {
        if (e.Path != temporary) return e;
        var rest = e.Message.StartsWith(temporary + ": ", StringComparison.Ordinal) ? e.Message[(temporary.Length + 2)..] : e.Message;
        return new BcmrException(e.Code, destination, $"{destination}: {rest} (writing {System.IO.Path.GetFileName(temporary)})", e);
    }

    /// <summary>Maps a .NET I/O exception (portable code path) to our codes.</summary>
    internal static BcmrException FromIo(Exception e, string path) => e switch
    {
        BcmrException b => b,
        FileNotFoundException or DirectoryNotFoundException => new(BcmrErrorCode.NotFound, path, $"{path}: No such file or directory", e),
        UnauthorizedAccessException => new(BcmrErrorCode.PermissionDenied, path, $"{path}: Permission denied", e),
        IOException io when IsDiskFull(io) => new(BcmrErrorCode.DiskFull, path, $"{path}: No space left on device", e),
        IOException io when io.HResult == Errno.EEXIST || (io.HResult & 0xFFFF) == 80 || (io.HResult & 0xFFFF) == 183
            => new(BcmrErrorCode.AlreadyExists, path, $"{path}: File exists", e),
        IOException io when (io.HResult & 0xFFFF) is 32 or 33 /* sharing or lock violation */ => new(BcmrErrorCode.Busy, path, $"{path}: {e.Message}", e),
        _ => new(BcmrErrorCode.IoError, path, $"{path}: {e.Message}", e),
    };

    private static bool IsDiskFull(IOException e) =>
        e.HResult == Errno.ENOSPC || (e.HResult & 0xFFFF) == 112 /* ERROR_DISK_FULL */ || (e.HResult & 0xFFFF) == 39 /* ERROR_HANDLE_DISK_FULL */;
}

/// <summary>The errno values we branch on (identical on Linux x64 and arm64).</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11, EACCES = 13,
        EBUSY = 16, EEXIST = 17, EXDEV = 18, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ETXTBSY = 26, EFBIG = 27,
        ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31, ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39,
        ELOOP = 40, ENODATA = 61, EOPNOTSUPP = 95, EDQUOT = 122;
}
