namespace Bcmr.Engine.Protocol;

/// <summary>
/// What both ends agree on about errors: the wording of the root-jail refusal, and how a client classifies an Error.
/// Our own peers send the code (<see cref="ErrorResponse.Code"/>, under <see cref="Caps.Extended"/>); the text of a
/// bcmr 0.6 peer is classified by its wording, the only thing version 1 carries.
/// </summary>
public static class WireErrors
{
    /// <summary>The refusal message: <c>string.Format(OutsideRootFormat, clientPath, root)</c>.</summary>
    public const string OutsideRootFormat = "path {0} is outside the server root {1}";

    /// <summary>The fixed part of <see cref="OutsideRootFormat"/> that identifies the refusal.</summary>
    public const string OutsideRootMarker = " is outside the server root ";

    public static string OutsideRootMessage(string printablePath, string root) =>
        string.Format(System.Globalization.CultureInfo.InvariantCulture, OutsideRootFormat, printablePath, root);

    /// <summary>True when an Error message from a server is the root-jail refusal.</summary>
    public static bool IsOutsideRootMessage(string message) =>
        message.StartsWith("path ", StringComparison.Ordinal) && message.Contains(OutsideRootMarker, StringComparison.Ordinal);

    /// <summary>The code of an Error: the one it carries, else what its wording says (a version 1 peer).</summary>
    public static BcmrErrorCode CodeOf(ErrorResponse e) => e.Code ?? Classify(e.Text);

    /// <summary>A code on the wire; one this build does not know (a newer peer's) reads as Unknown. The values are
    /// <see cref="BcmrErrorCode"/>'s, which only ever grows at its end.</summary>
    internal static BcmrErrorCode Decode(ushort value) =>
        value <= (ushort)BcmrErrorCode.Busy ? (BcmrErrorCode)value : BcmrErrorCode.Unknown;

    private static BcmrErrorCode Classify(string text) =>
        IsOutsideRootMessage(text) ? BcmrErrorCode.OutsideRoot
        : text.Contains("No such file or directory", StringComparison.Ordinal) ? BcmrErrorCode.NotFound
        : text.Contains("Permission denied", StringComparison.Ordinal) ? BcmrErrorCode.PermissionDenied
        : text.Contains("Is a directory", StringComparison.Ordinal) ? BcmrErrorCode.IsADirectory
        : text.Contains("Not a directory", StringComparison.Ordinal) || text.Contains("not a directory", StringComparison.Ordinal) ? BcmrErrorCode.NotADirectory
        : text.Contains("No space left", StringComparison.Ordinal) ? BcmrErrorCode.DiskFull
        : text.Contains("changed while", StringComparison.Ordinal) ? BcmrErrorCode.SourceChanged
        : text.Contains("not committed: the bytes received hash", StringComparison.Ordinal) ? BcmrErrorCode.CorruptData
        : BcmrErrorCode.IoError;
}
