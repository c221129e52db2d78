using Bcmr.Engine.Platform;
using System.Text.RegularExpressions;
using Bcmr.Engine.Client;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Transfers;

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
        var excludes = request.Excludes.Select(e => new Regex(e, RegexOptions.CultureInvariant)).ToArray();
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
            var dstRoot = Stat(request.Destination, dstSpec, dstSpec is null ? null : Connect(dstSpec), ct);
            bool dstIsDir = dstRoot is { IsDir: true };
            if (request.Sources.Count > 1 && !dstIsDir)
                throw new BcmrException(BcmrErrorCode.NotADirectory, request.Destination, $"{request.Destination}: not a directory (several sources need one)");

            var src = new SortedDictionary<string, Node>(StringComparer.Ordinal);
            var dst = new SortedDictionary<string, Node>(StringComparer.Ordinal);
            foreach (var source in request.Sources)
            {
                var spec = RemoteSpec.ParseOrLocal(source);
                var client = spec is null ? null : Connect(spec);
                var top = Stat(source, spec, client, ct)
                    ?? throw new BcmrException(BcmrErrorCode.NotFound, source, $"{source}: No such file or directory");
                if (top.IsDir && !request.Recursive)
                    throw new BcmrException(BcmrErrorCode.IsADirectory, source, $"{source}: is a directory (use -r)");
                var name = spec?.BaseName() ?? Transfers.LocalTransfer.BaseName(source);
                var target = dstIsDir ? Join(request.Destination, dstSpec is not null, name) : request.Destination;
                Collect(source, spec, client, name, top, src, excludes, ct);
                var targetTop = dstIsDir ? Stat(target, dstSpec is null ? null : dstSpec.WithPath(RemoteSpec.Join(dstSpec.Path, name)), dstSpec is null ? null : Connect(dstSpec), ct) : dstRoot;
                if (targetTop is { } t)
                    Collect(target, dstSpec is null ? null : dstSpec.WithPath(dstIsDir ? RemoteSpec.Join(dstSpec.Path, name) : dstSpec.Path),
                        dstSpec is null ? null : Connect(dstSpec), name, t, dst, excludes, ct);
            }

            var diffs = new List<CheckEntry>();
            foreach (var (path, s) in src)
            {
                if (!dst.TryGetValue(path, out var d))
                    diffs.Add(new CheckEntry(CheckDifference.Added, path, s.IsDir, s.IsDir ? null : s.Size, s.Mtime, null, null));
                else if (s.IsDir != d.IsDir || (!s.IsDir && (s.Size != d.Size || s.Mtime > d.Mtime)))
                    diffs.Add(new CheckEntry(CheckDifference.Modified, path, s.IsDir, s.IsDir ? null : s.Size, s.Mtime, d.IsDir ? null : d.Size, d.Mtime));
            }
            foreach (var (path, d) in dst)
                if (!src.ContainsKey(path))
                    diffs.Add(new CheckEntry(CheckDifference.Missing, path, d.IsDir, null, null, d.IsDir ? null : d.Size, d.Mtime));
            return new CheckResult { Differences = diffs, Compared = src.Count };
        }
        finally
        {
            foreach (var c in connections.Values) c.Dispose();
        }
    }

    private static Node? Stat(string text, RemoteSpec? spec, ServeClient? client, CancellationToken ct)
    {
        if (spec is null)
            return Fs.TryStat(text) is { } m ? new Node(m.Size, m.MtimeSec, m.Kind == EntryKind.Directory) : null;
        return client!.StatOrNull(spec.ServerPath, ct) is { } r ? new Node((long)r.Size, r.Mtime, r.IsDir) : null;
    }

    private static void Collect(string text, RemoteSpec? spec, ServeClient? client, string name, Node top,
        SortedDictionary<string, Node> into, Regex[] excludes, CancellationToken ct)
    {
        if (Excluded(name, excludes)) return;
        into[name] = top with { Size = top.IsDir ? 0 : top.Size };
        if (!top.IsDir) return;
        if (spec is not null)
        {
            var listing = client!.Call(new ListRequest(spec.ServerPath), ct);
            if (listing is ErrorResponse e) throw ServeClient.ServerError(client.Remote, spec.ServerPath, e);
            var skipped = new List<string>();
            foreach (var entry in ServeClient.Expect<ListResponse>(client.Remote, listing, MessageType.List).Entries)
            {
                var rel = name + "/" + entry.Path;
                if (skipped.Any(s => rel.StartsWith(s + "/", StringComparison.Ordinal))) continue;
                if (Excluded(rel, excludes)) { if (entry.IsDir) skipped.Add(rel); continue; }
                into[rel] = new Node(entry.IsDir ? 0 : (long)entry.Size, entry.Mtime, entry.IsDir);
            }
            return;
        }
        var pending = new Stack<(string Dir, string Rel)>();
        pending.Push((text, name));
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            var (dir, rel) = pending.Pop();
            foreach (var entry in Fs.ListDirectory(dir))
            {
                var childRel = rel + "/" + entry.Name;
                if (Excluded(childRel, excludes)) continue;
                var full = Path.Join(dir, entry.Name);
                // Like the server's listing: links count as what they point to; dangling ones and specials are left out.
                if (Fs.TryStat(full) is not { } m || m.Kind is not (EntryKind.File or EntryKind.Directory)) continue;
                bool isDir = m.Kind == EntryKind.Directory;
                into[childRel] = new Node(isDir ? 0 : m.Size, m.MtimeSec, isDir);
                if (isDir && entry.Kind == EntryKind.Directory) pending.Push((full, childRel));
            }
        }
    }

    private static bool Excluded(string rel, Regex[] excludes) => excludes.Any(r => r.IsMatch(rel));

    private static string Join(string dir, bool remote, string name) =>
        remote ? dir.TrimEnd('/') + "/" + name : Path.Join(dir, name);

}
