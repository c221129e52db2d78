using Bcmr.Engine.Client;

namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// Tells a remote <c>host:path</c> (<c>user@host:path</c>, <c>[v6addr]:path</c>) from a local path: the engine's own
/// rule (<see cref="RemoteSpec"/>: drive letters and <c>./a:b</c> are local), plus what only PowerShell knows: a prefix
/// that names an existing PSDrive (<c>Temp:</c>, <c>Data:</c>) is local, and so is a provider-qualified path
/// (<c>FileSystem::/x</c>). Remote strings go to the engine unchanged.
/// </summary>
internal static class RemotePath
{
    public static bool IsRemote(string? text, Func<string, bool> isDriveName)
    {
        if (string.IsNullOrEmpty(text)) return false;
        int colon = text.IndexOf(':');
        if (text[0] != '[' && colon > 0 && colon + 1 < text.Length && text[colon + 1] == ':') return false; // Provider::path
        if (!RemoteSpec.TryParse(text, out _)) return false;
        return text[0] == '[' || !isDriveName(text[..colon]);
    }
}
