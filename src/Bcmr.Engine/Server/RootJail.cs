using Bcmr.Engine.Platform;
using System.Text;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Server;

/// <summary>
/// Resolves every path a client names to a canonical absolute path inside the server root, or refuses it.
/// <list type="number">
/// <item>A path with a NUL byte, or longer than <see cref="MaxPathBytes"/>, is refused (<see cref="BcmrErrorCode.InvalidArgument"/>).</item>
/// <item>A relative path (also the empty path and ".") is taken relative to the root; an absolute path is taken as is.</item>
/// <item>The path is walked component by component from "/" exactly as the kernel would: "" and "." are skipped, ".."
/// goes to the parent of what has been resolved so far, and every component that exists and is a symlink is replaced
/// by its target (relative targets against the link's directory, at most <see cref="MaxSymlinkHops"/> links). Dangling
/// links are followed too, so a link to a file that does not exist yet cannot smuggle a create outside. Components that
/// do not exist are appended as they are: this is "realpath of the longest existing prefix, then the rest".</item>
/// <item>The canonical result must be the root or lie under it; otherwise the request is refused with
/// <see cref="BcmrErrorCode.OutsideRoot"/> and the message <see cref="OutsideRootFormat"/> (client path, then root),
/// followed by " (it resolves to ...)" when symlinks or ".." took it there. Clients recognise the refusal with
/// <see cref="IsOutsideRootMessage"/>, not by parsing the rest.</item>
/// </list>
/// Intermediate steps may pass outside the root ("../root/x" is fine); only where the path lands counts, and the
/// server then works on that canonical path, never the client's spelling. A directory that another local process
/// swaps for a symlink between this check and the server's use of the path must not redirect the use: writes go
/// through <see cref="Pin"/> (the parent directory opened one component at a time from the root, none of them
/// followed if it is a link, and every name used through that descriptor), and reads check what they opened
/// (<see cref="OpenedInside"/>).
/// </summary>
public sealed class RootJail
{
    /// <summary>The refusal message: <c>string.Format(OutsideRootFormat, clientPath, root)</c>. A stable format that
    /// clients may match with <see cref="IsOutsideRootMessage"/> to report "outside the server root" plainly.</summary>
    public const string OutsideRootFormat = WireErrors.OutsideRootFormat;

    /// <summary>The fixed part of <see cref="OutsideRootFormat"/> that identifies the refusal.</summary>
    public const string OutsideRootMarker = WireErrors.OutsideRootMarker;

    public const int MaxSymlinkHops = 40;
    public const int MaxPathBytes = 4096;

    /// <summary>The canonical root (symlinks resolved).</summary>
    public string Root { get; }

    /// <summary>Where relative client paths start: the root, or (for a serve started over ssh without a root, whose
    /// root is "/") the account's home, as for scp.</summary>
    public string Home { get; }

    public RootJail(string root, string? home = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        var canonical = Canonicalize(Path.GetFullPath(root), root);
        var meta = Fs.TryStat(canonical)
            ?? throw new BcmrException(BcmrErrorCode.NotFound, root, $"{root}: No such file or directory");
        if (meta.Kind != EntryKind.Directory)
            throw new BcmrException(BcmrErrorCode.NotADirectory, root, $"{root}: Not a directory");
        Root = canonical;
        Home = home is null ? Root : Resolve(home);
    }

    public static string OutsideRootMessage(string clientPath, string root) => WireErrors.OutsideRootMessage(Printable(clientPath), root);

    /// <summary>True when an Error message from a server is the root-jail refusal.</summary>
    public static bool IsOutsideRootMessage(string message) => WireErrors.IsOutsideRootMessage(message);

    /// <summary>The canonical absolute path for <paramref name="clientPath"/>; throws <see cref="BcmrException"/>
    /// (OutsideRoot, InvalidArgument, or the error of an lstat/readlink on the way) when it cannot be used.</summary>
    /// <param name="walkWhole">Walk every component now, even without a jail (a check that a path has no link on the
    /// way, before something is removed): no remembered parent.</param>
    public string Resolve(string clientPath, bool walkWhole = false)
    {
        ArgumentNullException.ThrowIfNull(clientPath);
        if (clientPath.Contains('\0'))
            throw new BcmrException(BcmrErrorCode.InvalidArgument, clientPath, $"path {Printable(clientPath)} contains a NUL byte");
        if (Encoding.UTF8.GetByteCount(clientPath) > MaxPathBytes)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, clientPath,
                $"path {Printable(clientPath[..64])}... is longer than {MaxPathBytes} bytes");
        var start = clientPath.StartsWith('/') ? clientPath : (Home ?? Root) + "/" + clientPath;
        var canonical = Root == "/" && !walkWhole ? CanonicalizeInRememberedParent(start, clientPath) : Canonicalize(start, clientPath);
        if (!Contains(canonical))
        {
            var message = OutsideRootMessage(clientPath, Root);
            if (canonical != clientPath) message += $" (it resolves to {canonical})";
            throw new BcmrException(BcmrErrorCode.OutsideRoot, clientPath, message);
        }
        return canonical;
    }

    /// <summary>The canonical path for a path on this machine (not a client's), or null when it resolves outside the
    /// root or cannot be resolved: how List decides whether to follow a symlink it meets.</summary>
    public string? TryResolveLocal(string absolutePath)
    {
        try
        {
            var canonical = Canonicalize(absolutePath, absolutePath);
            return Contains(canonical) ? canonical : null;
        }
        catch (BcmrException) { return null; }
    }

    /// <summary>
    /// The directory holding <paramref name="canonicalPath"/> (a path <see cref="Resolve"/> returned), opened from the
    /// root one component at a time without following links (O_PATH | O_NOFOLLOW), and created where missing when
    /// <paramref name="createParents"/>. Names under it are used as <c>/proc/self/fd/N/name</c>, which the kernel
    /// resolves through the open directory, not through the path, so a component replaced by a symlink after the
    /// check cannot send a write outside the root: the swap makes the walk fail (refused), or comes too late to
    /// matter. Without a jail (root "/") nothing needs pinning and the canonical directory is used as it is.
    /// </summary>
    /// <summary>Whether <see cref="Pin"/> holds directories open; without (no jail, or not Linux) it creates no parents.</summary>
    public bool Pins => Root != "/" && Fs.Linux;

    public PinnedDirectory Pin(string canonicalPath, bool createParents)
    {
        if (!Pins || canonicalPath == Root) return PinnedDirectory.Unpinned(canonicalPath);
        var parent = canonicalPath[..canonicalPath.LastIndexOf('/')];
        var rel = parent.Length > Root.Length ? parent[(Root.Length + 1)..] : "";
        int fd = PinnedDirectory.OpenDirectory(Root, Root, follow: true);
        string walked = Root;
        try
        {
            foreach (var part in rel.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                walked += "/" + part;
                var through = $"/proc/self/fd/{fd}/{part}";
                var meta = Fs.TryLstat(through);
                if (meta is null && createParents)
                {
                    try { Fs.MakeDirectory(through, 0x1FF); }
                    catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists) { }
                    catch (BcmrException e) { throw new BcmrException(e.Code, walked, e.Message.Replace(through, walked, StringComparison.Ordinal), e); }
                }
                else if (meta is { Kind: not (EntryKind.Directory or EntryKind.Symlink) })
                    throw new BcmrException(BcmrErrorCode.NotADirectory, walked, $"{walked}: Not a directory");
                int next = PinnedDirectory.OpenDirectory(through, walked, follow: false);
                PinnedDirectory.Close(fd);
                fd = next;
            }
        }
        catch
        {
            PinnedDirectory.Close(fd);
            throw;
        }
        return new PinnedDirectory(fd, parent, Path.GetFileName(canonicalPath));
    }

    /// <summary>Throws OutsideRoot when the file <paramref name="h"/> opened for <paramref name="path"/> lies outside
    /// the root after all (a directory on the way was swapped for a link after <see cref="Resolve"/>): nothing of it
    /// is read or sent.</summary>
    public void OpenedInside(Microsoft.Win32.SafeHandles.SafeFileHandle h, string path)
    {
        if (Root == "/" || !Fs.Linux) return;
        string real;
        try { real = Fs.ReadLink($"/proc/self/fd/{(int)h.DangerousGetHandle()}"); }
        catch (BcmrException) { return; } // no /proc: nothing to compare with
        if (real.EndsWith(" (deleted)", StringComparison.Ordinal)) real = real[..^" (deleted)".Length];
        if (!Contains(real))
            throw new BcmrException(BcmrErrorCode.OutsideRoot, path,
                OutsideRootMessage(path, Root) + $" (a directory on its way changed while it was opened: it leads to {real})");
    }

    /// <summary>True when a canonical path is the root or lies under it.</summary>
    public bool Contains(string canonicalPath) =>
        canonicalPath == Root
        || Root == "/" && canonicalPath.StartsWith('/')
        || canonicalPath.Length > Root.Length && canonicalPath[Root.Length] == '/' && canonicalPath.StartsWith(Root, StringComparison.Ordinal);

    /// <summary>
    /// Without a jail (root "/", a serve started over ssh) the walk decides nothing, it only names: the canonical form
    /// of each parent directory is remembered for the session, so a tree of files costs one lstat per file instead of
    /// one per component of every path (seven for /home/u/dst/d/f, Put and SetMeta each). Forgotten when the session
    /// removes or renames anything (<see cref="ForgetWalks"/>). With a jail every path is walked whole, every time.
    /// </summary>
    private string CanonicalizeInRememberedParent(string absolute, string forMessages)
    {
        // A directory walked as the parent of an earlier path (a sync's SetMeta resolves the parent of each file it
        // times) is named from memory too.
        lock (_walked)
            if (_walked.TryGetValue(absolute, out var remembered)) return remembered;
        int slash = absolute.LastIndexOf('/');
        var last = absolute[(slash + 1)..];
        if (slash <= 0 || last is "" or "." or "..") return Canonicalize(absolute, forMessages);
        var parent = absolute[..slash];
        string? canonicalParent;
        lock (_walked) _walked.TryGetValue(parent, out canonicalParent);
        if (canonicalParent is null)
        {
            canonicalParent = Canonicalize(parent, forMessages);
            lock (_walked)
            {
                if (_walked.Count >= MaxRememberedParents) _walked.Clear();
                _walked[parent] = canonicalParent;
            }
        }
        return Canonicalize(last, forMessages, canonicalParent);
    }

    private const int MaxRememberedParents = 4096;
    private readonly Dictionary<string, string> _walked = new(StringComparer.Ordinal);

    /// <summary>The session changed the tree (removed or renamed something): parents walked before are walked again.</summary>
    public void ForgetWalks()
    {
        lock (_walked)
        {
            _walked.Clear();
            _directories.Clear();
        }
    }

    /// <summary>Canonical directories this session found or made (without a jail): a tree of files upload into a few
    /// directories, and each Put checked its parent with a stat. Forgotten with the walks.</summary>
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal);

    public bool IsKnownDirectory(string canonical)
    {
        lock (_walked) return _directories.Contains(canonical);
    }

    public void RememberDirectory(string canonical)
    {
        if (Root != "/") return; // with a jail nothing is taken from memory
        lock (_walked)
        {
            if (_directories.Count >= MaxRememberedParents) _directories.Clear();
            _directories.Add(canonical);
        }
    }

    /// <summary>Walks <paramref name="path"/> from <paramref name="from"/> ("/" for an absolute path; else a canonical
    /// directory) resolving "..", "." and symlinks as the kernel does; the part that does not exist is appended
    /// unresolved.</summary>
    private static string Canonicalize(string path, string forMessages, string from = "/")
    {
        var pending = new Stack<string>();
        PushComponents(pending, path);
        var current = from;
        int hops = 0;
        while (pending.Count > 0)
        {
            var part = pending.Pop();
            if (part.Length == 0 || part == ".") continue;
            if (part == "..")
            {
                current = Parent(current);
                continue;
            }
            var next = current == "/" ? "/" + part : current + "/" + part;
            var meta = Fs.TryLstat(next);
            if (meta is { Kind: EntryKind.Symlink })
            {
                if (++hops > MaxSymlinkHops)
                    throw new BcmrException(BcmrErrorCode.InvalidArgument, forMessages,
                        $"path {Printable(forMessages)}: too many levels of symbolic links");
                var target = Fs.ReadLink(next);
                if (target.Contains('\0') || target.Length == 0)
                    throw new BcmrException(BcmrErrorCode.InvalidArgument, forMessages, $"path {Printable(forMessages)}: unusable symlink {next}");
                if (target.StartsWith('/')) current = "/";
                PushComponents(pending, target);
                continue;
            }
            current = next;
        }
        return current;
    }

    private static void PushComponents(Stack<string> pending, string path)
    {
        var parts = path.Split('/');
        for (int i = parts.Length - 1; i >= 0; i--) pending.Push(parts[i]);
    }

    private static string Parent(string canonical)
    {
        int slash = canonical.LastIndexOf('/');
        return slash <= 0 ? "/" : canonical[..slash];
    }

    /// <summary>The path as it may be shown in a message: control characters escaped.</summary>
    internal static string Printable(string path)
    {
        if (!path.Any(char.IsControl)) return path;
        var sb = new StringBuilder(path.Length + 8);
        foreach (var c in path)
            sb.Append(c == '\0' ? "\\0" : char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString());
        return sb.ToString();
    }
}
