using System.Management.Automation;
using Bcmr.Engine;
using EngineResult = Bcmr.Engine.Transfers.CopyResult;

namespace Bcmr.Cmdlets.Internal;

/// <summary>The engine's error codes as PowerShell error categories and stable error ids ("Bcmr" + the code name),
/// so that scripts can test <c>$_.FullyQualifiedErrorId</c> and <c>$_.CategoryInfo.Category</c>.</summary>
internal static class ErrorMapping
{
    public static ErrorCategory Category(BcmrErrorCode code) => code switch
    {
        BcmrErrorCode.NotFound => ErrorCategory.ObjectNotFound,
        BcmrErrorCode.PermissionDenied => ErrorCategory.PermissionDenied,
        BcmrErrorCode.AlreadyExists => ErrorCategory.ResourceExists,
        BcmrErrorCode.IsADirectory or BcmrErrorCode.NotADirectory or BcmrErrorCode.SameFile or BcmrErrorCode.IntoItself
            or BcmrErrorCode.InvalidArgument => ErrorCategory.InvalidArgument,
        BcmrErrorCode.DiskFull or BcmrErrorCode.ReadOnlyFileSystem or BcmrErrorCode.IoError or BcmrErrorCode.CrossDevice
            => ErrorCategory.WriteError,
        BcmrErrorCode.VerifyMismatch or BcmrErrorCode.CorruptData or BcmrErrorCode.SourceChanged => ErrorCategory.InvalidData,
        BcmrErrorCode.Unsupported => ErrorCategory.NotImplemented,
        BcmrErrorCode.SpecialFile => ErrorCategory.InvalidType,
        BcmrErrorCode.Cancelled => ErrorCategory.OperationStopped,
        BcmrErrorCode.OutsideRoot => ErrorCategory.SecurityError,
        BcmrErrorCode.ConnectionFailed => ErrorCategory.ConnectionError,
        BcmrErrorCode.RemoteUnavailable => ErrorCategory.ResourceUnavailable,
        BcmrErrorCode.Busy => ErrorCategory.ResourceBusy,
        _ => ErrorCategory.NotSpecified,
    };

    public static string ErrorId(BcmrErrorCode code) => "Bcmr" + code;

    public static ErrorRecord Record(BcmrException e, object? target)
    {
        var worded = ParameterWording.ForCmdlet(e.Message);
        var exception = worded == e.Message ? e : new BcmrException(e.Code, e.Path, worded, e);
        return new ErrorRecord(exception, ErrorId(e.Code), Category(e.Code), target ?? e.Path);
    }

    /// <summary>A per-file failure the engine reported; <paramref name="target"/> is what the user passed for it, when
    /// it was a top-level item.</summary>
    public static ErrorRecord Record(EngineResult failed, object? target)
    {
        var code = failed.ErrorCode ?? BcmrErrorCode.Unknown;
        var e = new BcmrException(code, failed.Source, ParameterWording.ForCmdlet(failed.Message ?? $"{failed.Source}: failed"));
        return new ErrorRecord(e, ErrorId(code), Category(code), target ?? failed.Source);
    }
}
