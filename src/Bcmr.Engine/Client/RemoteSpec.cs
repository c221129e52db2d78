namespace Bcmr.Engine.Client;

/// <summary>
/// A path on another machine, as written on the command line: <c>host:path</c>, <c>user@host:path</c>,
/// <c>user@host:</c> (the remote home), <c>[v6addr]:path</c>. Everything else is a local path; in particular a Windows
/// drive path (<c>C:\x</c>, <c>C:/x</c>, and any single letter before the colon) and anything with a '/' or '\' before
/// the first ':' (<c>./a:b</c>), which is how a local name containing a colon is written, as with scp and rsync.
/// </summary>
public sealed record RemoteSpec(string? User, string Host, string Path)
{
    /// <summary>What ssh is given: <c>user@host</c> or <c>host</c> (an IPv6 address without brackets).</summary>
    public string Target => User is null ? Host : User + "@" + Host;

    /// <summary>The path as the server should see it: the empty path (the remote home) becomes ".".</summary>
    public string ServerPath => Path.Length == 0 ? "." : Path;

    /// <summary>The connection this path lives on: same user and host means the same server.</summary>
    public string ConnectionKey => Target;

    public override string ToString() => (User is null ? "" : User + "@") + (Host.Contains(':') ? "[" + Host + "]" : Host) + ":" + Path;

    /// <summary>A copy of this spec naming another path on the same host.</summary>
    public RemoteSpec WithPath(string path) => this with { Path = path };

    /// <summary>A name inside a remote directory ("" and "." are the remote home).</summary>
    public static string Join(string dir, string name) =>
        dir.Length == 0 || dir == "." ? name : dir.TrimEnd('/') + "/" + name;

    /// <summary>The directory holding a remote path ("." for a name in the remote home).</summary>
    public static string Parent(string path)
    {
        var trimmed = path.TrimEnd('/');
        int slash = trimmed.LastIndexOf('/');
        return slash < 0 ? "." : slash == 0 ? "/" : trimmed[..slash];
    }

    /// <summary>The last component of the remote path, the name a copy of it takes inside a directory; a path with no
    /// name of its own ("", ".", "..", "/") is refused.</summary>
    public string BaseName()
    {
        var trimmed = Path.TrimEnd('/');
        var name = trimmed[(trimmed.LastIndexOf('/') + 1)..];
        if (name is "" or "." or "..")
            throw new BcmrException(BcmrErrorCode.InvalidArgument, ToString(), $"{this}: name the remote file or directory (it has no name of its own to copy under)");
        return name;
    }

    public static bool IsRemote(string text) => TryParse(text, out _);

    /// <summary>Parses <paramref name="text"/>; false (a local path) when it is not of a remote form.</summary>
    public static bool TryParse(string text, out RemoteSpec spec)
    {
        spec = null!;
        if (string.IsNullOrEmpty(text)) return false;
        string? user = null;
        string rest = text;
        int at = -1;
        // user@ only counts in the part before the host's colon.
        int firstColon = text.IndexOf(':');
        if (firstColon < 0) return false;
        int slash = text.IndexOfAny(['/', '\\']);
        if (text[0] == '[' || (text.IndexOf('@') is var a && a >= 0 && a < firstColon && a + 1 < text.Length && text[a + 1] == '['))
        {
            // [v6]:path or user@[v6]:path
            at = text[0] == '[' ? -1 : text.IndexOf('@');
            int open = at + 1;
            int close = text.IndexOf(']', open);
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':') return false;
            if (at > 0) user = text[..at];
            var host = text[(open + 1)..close];
            if (host.Length == 0 || slash >= 0 && slash < close) return false;
            spec = new RemoteSpec(user, host, text[(close + 2)..]);
            return Valid(spec);
        }
        if (slash >= 0 && slash < firstColon) return false;
        var prefix = text[..firstColon];
        if (prefix.Length == 0) return false;                     // ":name" is a local name
        if (prefix.Length == 1 && char.IsAsciiLetter(prefix[0])) return false; // a drive letter
        at = prefix.LastIndexOf('@');
        if (at >= 0)
        {
            user = prefix[..at];
            rest = prefix[(at + 1)..];
            if (user.Length == 0 || rest.Length == 0) return false;
        }
        else rest = prefix;
        spec = new RemoteSpec(user, rest, text[(firstColon + 1)..]);
        return Valid(spec);
    }

    /// <summary>Host and user names that ssh would read as options, or that hold shell or control characters, are
    /// refused outright (an argument starting with '-' is how option injection through scp/rsync happened).</summary>
    private static bool Valid(RemoteSpec s) => SafeName(s.Host) && (s.User is null || SafeName(s.User));

    private static bool SafeName(string name)
    {
        if (name.Length == 0 || name[0] == '-') return false;
        foreach (var c in name)
            if (char.IsControl(c) || char.IsWhiteSpace(c) || c is '\'' or '"' or '`' or '$' or ';' or '&' or '|' or '<' or '>' or '(' or ')' or '*' or '?')
                return false;
        return true;
    }

    /// <summary>Like <see cref="TryParse"/>, but a text that looks remote and names an unusable host or user (e.g.
    /// "-oProxyCommand=x:path") is an error rather than a local path, so it can never reach ssh or be mistaken.</summary>
    public static RemoteSpec? ParseOrLocal(string text)
    {
        if (TryParse(text, out var spec)) return spec;
        int colon = text.IndexOf(':');
        int slash = text.IndexOfAny(['/', '\\']);
        if (colon > 1 && (slash < 0 || slash > colon) && text[0] == '-')
            throw new BcmrException(BcmrErrorCode.InvalidArgument, text,
                $"{text}: refusing a host name that starts with '-' (it would be read as an ssh option); write ./{text} for a local file");
        return null;
    }
}
