using System.Text.RegularExpressions;
using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Local;

/// <summary>
/// What a walk does with a symbolic link below its root. Each operation states its one policy where it starts: a local
/// copy keeps links as links (cp -r, rsync -a); whatever crosses the protocol follows them, because the protocol has
/// no links (scp -r); a check walks the way the copy it checks would have walked, so that it sees what that copy wrote.
/// </summary>
public enum SymlinkPolicy
{
    /// <summary>A link is an entry of its own (kind <see cref="EntryKind.Symlink"/>), never entered.</summary>
    Preserve,
    /// <summary>A link is what it points to: a linked directory is entered, unless it is one of its own ancestors; a
    /// dangling link and anything that is neither a file nor a directory are skipped, with the reason.</summary>
    Follow,
}

/// <summary>Why a walk that follows links left an entry out (<see cref="ITreeVisitor.Skip"/>).</summary>
public enum TreeSkip { DanglingLink, NotFileOrDirectory, LinksToAncestor }

/// <summary>
/// One entry of a tree, local or remote. <see cref="Relative"/> is its path from the walked root's parent ("src/a/b.txt",
/// what excludes match and a check reports); <see cref="Below"/> its path below the root ("a/b.txt", "" for the root),
/// which a copy joins to its target. <see cref="Meta"/> is set for local entries whenever the walk stat'ed them
/// (always when following links, when asked for otherwise).
/// </summary>
internal readonly record struct TreeNode(string Path, string Relative, string Below, EntryKind Kind, long Size, long MtimeSec, FileMeta? Meta = null)
{
    public bool IsDirectory => Kind == EntryKind.Directory;

    /// <summary>The words every operation uses for a skip, so that copy, upload and check say it the same way.</summary>
    public string SkipMessage(TreeSkip why) => why switch
    {
        TreeSkip.DanglingLink => $"{Path}: dangling symbolic link; not copied",
        TreeSkip.NotFileOrDirectory => $"{Path}: not a regular file or directory; not copied",
        _ => $"{Path}: not entered: it links back to a directory above it",
    };

    public static TreeNode Root(string path, string name, in FileMeta meta) =>
        new(path, name, "", meta.Kind, meta.Kind == EntryKind.Directory ? 0 : meta.Size, meta.MtimeSec, meta);

    /// <summary>Where this entry goes under a copy's <paramref name="target"/> for the root.</summary>
    public string Under(string target) => Below.Length == 0 ? target : System.IO.Path.Join(target, Below);
}

/// <summary>What a walk reports, parents always before their contents.</summary>
internal interface ITreeVisitor
{
    /// <summary>A directory (the root first). False leaves out everything under it.</summary>
    bool Enter(in TreeNode directory);
    /// <summary>Anything that is not entered: a file, or under <see cref="SymlinkPolicy.Preserve"/> a link or a special file.</summary>
    void Leaf(in TreeNode entry);
    void Skip(in TreeNode entry, TreeSkip why);
    /// <summary>A directory that was entered could not be listed; the walk goes on with the rest.</summary>
    void Fail(in TreeNode directory, BcmrException error);
}

/// <summary>The exclude patterns of a request (.NET regular expressions matched against <see cref="TreeNode.Relative"/>).</summary>
public sealed class PathFilter
{
    private readonly Regex[] _patterns;

    /// <summary>When set, every entry whose relative path is not in it is left out too: how a sync has the copy
    /// engine walk its source for the files it decided to copy (and the directories leading to them) only.</summary>
    private readonly IReadOnlySet<string>? _only;

    /// <summary>A pattern that is not a valid regular expression is a usage error that names it.</summary>
    public PathFilter(IReadOnlyList<string> patterns, IReadOnlySet<string>? only = null)
    {
        _only = only;
        _patterns = new Regex[patterns.Count];
        for (int i = 0; i < _patterns.Length; i++)
        {
            try { _patterns[i] = new Regex(patterns[i], RegexOptions.CultureInvariant); }
            catch (ArgumentException e)
            {
                throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"--exclude '{patterns[i]}': not a valid regular expression ({e.Message})");
            }
        }
    }

    public bool IsEmpty => _patterns.Length == 0 && _only is null;

    public bool Excludes(string relativePath)
    {
        if (_only is not null && !_only.Contains(relativePath)) return true;
        foreach (var rx in _patterns)
            if (rx.IsMatch(relativePath)) return true;
        return false;
    }
}

/// <summary>
/// The one walker of local trees: depth first, each directory's entries in ordinal name order, parents before their
/// contents, excluded entries (and everything under them) never stat'ed. It keeps its own stack, so a tree as deep as
/// the filesystem allows is walked without recursion.
/// </summary>
internal static class LocalTree
{
    public static void Walk(in TreeNode root, SymlinkPolicy policy, PathFilter filter, ITreeVisitor visitor,
        CancellationToken ct, bool withMeta = false)
    {
        // The (device, inode) of each directory on the current path, so that a followed link back up is not entered.
        var ancestors = new HashSet<(ulong, ulong)>();
        var stack = new Stack<(TreeNode Dir, List<DirEntry>? Entries, int Next)>();
        if (!TryEnter(root, policy, visitor, ancestors, stack)) return;
        while (stack.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            var (dir, entries, next) = stack.Pop();
            if (entries is null)
            {
                try
                {
                    // Child stats every entry itself when following links or asked for their meta: no sizes needed here.
                    entries = Fs.ListDirectory(dir.Path, sizes: !(withMeta || policy == SymlinkPolicy.Follow));
                    entries.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
                }
                catch (BcmrException e)
                {
                    visitor.Fail(dir, e);
                    Leave(dir, ancestors);
                    continue;
                }
            }
            if (next >= entries.Count)
            {
                Leave(dir, ancestors);
                continue;
            }
            stack.Push((dir, entries, next + 1));
            var entry = entries[next];
            var relative = dir.Relative + "/" + entry.Name;
            if (filter.Excludes(relative)) continue;
            var node = Child(dir, entry, relative, policy, withMeta);
            if (policy == SymlinkPolicy.Follow && node.Meta is null)
            {
                visitor.Skip(node, TreeSkip.DanglingLink);
                continue;
            }
            switch (node.Kind)
            {
                case EntryKind.Directory:
                    TryEnter(node, policy, visitor, ancestors, stack);
                    break;
                case EntryKind.File:
                    visitor.Leaf(node);
                    break;
                default:
                    if (policy == SymlinkPolicy.Follow) visitor.Skip(node, TreeSkip.NotFileOrDirectory);
                    else visitor.Leaf(node);
                    break;
            }
        }
    }

    private static TreeNode Child(in TreeNode dir, in DirEntry entry, string relative, SymlinkPolicy policy, bool withMeta)
    {
        var path = System.IO.Path.Join(dir.Path, entry.Name);
        var below = dir.Below.Length == 0 ? entry.Name : dir.Below + "/" + entry.Name;
        FileMeta? meta = policy == SymlinkPolicy.Follow ? Fs.TryStat(path) : withMeta ? Fs.TryLstat(path) : null;
        if (meta is { } m)
            return new TreeNode(path, relative, below, m.Kind, m.Kind == EntryKind.Directory ? 0 : m.Size, m.MtimeSec, m);
        return new TreeNode(path, relative, below, entry.Kind, entry.Size, 0);
    }

    private static bool TryEnter(in TreeNode dir, SymlinkPolicy policy, ITreeVisitor visitor, HashSet<(ulong, ulong)> ancestors,
        Stack<(TreeNode, List<DirEntry>?, int)> stack)
    {
        if (policy == SymlinkPolicy.Follow && dir.Meta is { } m && !ancestors.Add((m.Device, m.Inode)))
        {
            visitor.Skip(dir, TreeSkip.LinksToAncestor);
            return false;
        }
        if (!visitor.Enter(dir))
        {
            Leave(dir, ancestors);
            return false;
        }
        stack.Push((dir, null, 0));
        return true;
    }

    private static void Leave(in TreeNode dir, HashSet<(ulong, ulong)> ancestors)
    {
        if (dir.Meta is { } m) ancestors.Remove((m.Device, m.Inode));
    }
}
