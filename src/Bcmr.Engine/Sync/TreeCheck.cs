using Bcmr.Engine.Platform;
using Bcmr.Engine.Client;
using Bcmr.Engine.Local;

namespace Bcmr.Engine.Sync;

public sealed class CheckRequest
{
    public required IReadOnlyList<string> Sources { get; init; }
    /// <summary>Where a copy of the sources would have put them (cp rules: into it when it is a directory).</summary>
    public required string Destination { get; init; }
    public bool Recursive { get; init; }
    public IReadOnlyList<string> Excludes { get; init; } = Array.Empty<string>();
    public string? SshCommand { get; init; }
    public string? RemoteCommand { get; init; }
}

public enum CheckDifference { Added, Modified, Missing }

/// <summary>One entry that differs: its path relative to the compared roots ("src/a/b.txt"), and both sides' size
/// and mtime (null where it does not exist).</summary>
public sealed record CheckEntry(CheckDifference Difference, string Path, bool IsDirectory,
    long? SourceSize, long? SourceMtime, long? DestinationSize, long? DestinationMtime);

public sealed class CheckResult
{
    public required IReadOnlyList<CheckEntry> Differences { get; init; }
    public int Compared { get; init; }
    public bool InSync => Differences.Count == 0;
    public IEnumerable<CheckEntry> Added => Differences.Where(d => d.Difference == CheckDifference.Added);
    public IEnumerable<CheckEntry> Modified => Differences.Where(d => d.Difference == CheckDifference.Modified);
    public IEnumerable<CheckEntry> Missing => Differences.Where(d => d.Difference == CheckDifference.Missing);
}

/// <summary>
/// <c>bcmr check</c>: is the destination what copying the sources would give, judged by size and modification time
/// (no content is read)? Either side may be <c>host:path</c> (one listing over one connection). "Added": in the source
/// only (a copy would add it); "missing": in the destination only; "modified": a file whose size differs, or whose
/// source is newer than its destination (whole seconds). A destination newer than its source counts as in sync,
/// because a copy made without -p, and every upload (the protocol cannot set times), is newer than its source.
/// </summary>
public static class TreeCheck
{
    private readonly record struct Node(long Size, long Mtime, bool IsDir);

    public static CheckResult Run(CheckRequest request, CancellationToken ct = default)
    {
        if (request.Sources.Count == 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "no source given");
        var filter = new PathFilter(request.Excludes);
        var connections = new Dictionary<string, ServeClient>();
        try
        {
            ServeClient Connect(RemoteSpec spec)
            {
                if (!connections.TryGetValue(spec.ConnectionKey, out var c))
                    connections[spec.ConnectionKey] = c = ServeClient.Connect(spec, request.SshCommand, request.RemoteCommand, 0);
                return c;
            }
            var dstSpec = RemoteSpec.ParseOrLocal(request.Destination);
            // The check walks as the copy it checks did: a local copy keeps links as links; a copy to or from a server
            // follows them (the protocol has no links), so a linked directory's files are on both sides.
            var policy = dstSpec is not null || request.Sources.Any(RemoteSpec.IsRemote) ? SymlinkPolicy.Follow : SymlinkPolicy.Preserve;
            var dstRoot = Stat(request.Destination, dstSpec, dstSpec is null ? null : Connect(dstSpec), ct);
            bool dstIsDir = dstRoot is { IsDirectory: true };
            if (request.Sources.Count > 1 && !dstIsDir)
                throw new BcmrException(BcmrErrorCode.NotADirectory, request.Destination, $"{request.Destination}: not a directory (several sources need one)");

            var src = new Collector();
            var dst = new Collector();
            foreach (var source in request.Sources)
            {
                var spec = RemoteSpec.ParseOrLocal(source);
                var client = spec is null ? null : Connect(spec);
                var top = Stat(source, spec, client, ct)
                    ?? throw new BcmrException(BcmrErrorCode.NotFound, source, $"{source}: No such file or directory");
                if (top.IsDirectory && !request.Recursive)
                    throw new BcmrException(BcmrErrorCode.IsADirectory, source, $"{source}: is a directory (use -r)");
                var name = spec?.BaseName() ?? CopyRules.BaseName(source);
                if (filter.Excludes(name)) continue;
                Walk(spec, client, top with { Relative = name }, policy, filter, src, ct);
                var target = dstIsDir ? Join(request.Destination, dstSpec is not null, name) : request.Destination;
                var targetSpec = dstSpec?.WithPath(dstIsDir ? RemoteSpec.Join(dstSpec.Path, name) : dstSpec.Path);
                var targetTop = dstIsDir ? Stat(target, targetSpec, dstSpec is null ? null : Connect(dstSpec), ct) : dstRoot;
                if (targetTop is { } t)
                    Walk(targetSpec, dstSpec is null ? null : Connect(dstSpec), t with { Relative = name }, policy, filter, dst, ct);
            }

            var diffs = new List<CheckEntry>();
            foreach (var (path, s, d) in TreeDiff.March(src.Nodes, dst.Nodes))
            {
                if (d is null)
                    diffs.Add(new CheckEntry(CheckDifference.Added, path, s!.Value.IsDir, s.Value.IsDir ? null : s.Value.Size, s.Value.Mtime, null, null));
                else if (s is null)
                    diffs.Add(new CheckEntry(CheckDifference.Missing, path, d.Value.IsDir, null, null, d.Value.IsDir ? null : d.Value.Size, d.Value.Mtime));
                else if (s.Value.IsDir != d.Value.IsDir || (!s.Value.IsDir && (s.Value.Size != d.Value.Size || s.Value.Mtime > d.Value.Mtime)))
                    diffs.Add(new CheckEntry(CheckDifference.Modified, path, s.Value.IsDir, s.Value.IsDir ? null : s.Value.Size, s.Value.Mtime,
                        d.Value.IsDir ? null : d.Value.Size, d.Value.Mtime));
            }
            return new CheckResult { Differences = diffs, Compared = src.Nodes.Count };
        }
        finally
        {
            foreach (var c in connections.Values) c.Dispose();
        }
    }

    /// <summary>The root of one side (a link named as an operand counts as what it points to, as in the copy).</summary>
    private static TreeNode? Stat(string text, RemoteSpec? spec, ServeClient? client, CancellationToken ct)
    {
        if (spec is null)
            return Fs.TryStat(text) is { } m ? TreeNode.Root(text, "", m) : null;
        return client!.StatOrNull(spec.ServerPath, ct) is { } r
            ? new TreeNode(spec.ServerPath, "", "", r.IsDir ? EntryKind.Directory : EntryKind.File, r.IsDir ? 0 : (long)r.Size, r.Mtime)
            : null;
    }

    private static void Walk(RemoteSpec? spec, ServeClient? client, in TreeNode root, SymlinkPolicy policy, PathFilter filter,
        Collector into, CancellationToken ct)
    {
        if (!root.IsDirectory) into.Leaf(root);
        else if (spec is null) LocalTree.Walk(root, policy, filter, into, ct, withMeta: true);
        else RemoteTree.Walk(client!, spec, root, filter, into, ct);
    }

    /// <summary>Every entry of one side by its relative path; a directory that cannot be listed fails the check.</summary>
    private sealed class Collector : ITreeVisitor
    {
        public List<(string Path, Node Node)> Nodes { get; } = new();

        public bool Enter(in TreeNode directory)
        {
            Nodes.Add((directory.Relative, new Node(0, directory.MtimeSec, true)));
            return true;
        }

        public void Leaf(in TreeNode entry) => Nodes.Add((entry.Relative, new Node(entry.Size, entry.MtimeSec, false)));

        /// <summary>Dangling links and special files are what the copy leaves out too.</summary>
        public void Skip(in TreeNode entry, TreeSkip why) { }

        public void Fail(in TreeNode directory, BcmrException error) => throw error;
    }

    private static string Join(string dir, bool remote, string name) =>
        remote ? dir.TrimEnd('/') + "/" + name : Path.Join(dir, name);
}
