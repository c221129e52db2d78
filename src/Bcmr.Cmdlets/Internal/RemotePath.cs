namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// Tells a remote <c>host:path</c> (<c>user@host:path</c>, <c>[v6addr]:path</c>) from a local path. Local wins whenever
/// the text could be one: a prefix that names an existing PSDrive (<c>Temp:</c>, <c>Data:</c>), a single drive letter
/// (Windows' <c>C:</c>, whether or not the drive exists here), a provider-qualified path (<c>FileSystem::/x</c>), or a
/// colon after a path separator (<c>./a:b</c>). Remote strings go to the engine unchanged.
/// </summary>
internal static class RemotePath
{
    public static bool IsRemote(string? text, Func<string, bool> isDriveName)
    {
        if (string.IsNullOrEmpty(text)) return false;
        if (text[0] == '[')
        {
            int close = text.IndexOf("]:", StringComparison.Ordinal);
            return close > 1;
        }
        int colon = text.IndexOf(':');
        if (colon <= 0) return false;
        if (colon + 1 < text.Length && text[colon + 1] == ':') return false; // Provider::path
        var prefix = text[..colon];
        if (prefix.IndexOfAny(['/', '\\']) >= 0) return false;
        if (prefix.Length == 1 && char.IsAsciiLetter(prefix[0])) return false;
        var host = prefix[(prefix.LastIndexOf('@') + 1)..];
        if (host.Length == 0) return false;
        return !isDriveName(prefix);
    }
}
