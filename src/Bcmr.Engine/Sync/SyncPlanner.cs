using System.Runtime.ExceptionServices;
using Bcmr.Engine.Client;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Sync;

/// <summary>What a sync compares: its two roots, how to reach a remote one, and the rules that decide.</summary>
internal sealed record SyncPlanSettings(string Source, string Destination, RemoteSpec? SourceSpec, RemoteSpec? DestinationSpec,
    ServeClient? Client, PathFilter Filter, bool Delete, bool DeleteExcluded, bool Checksum, bool SizeOnly, string? BackupRoot)
{
    /// <summary>With <see cref="Checksum"/>: the hashes remembered for each local side (a remote side's server keeps its own).</summary>
    public HashCache? SourceHashes { get; init; }
    public HashCache? DestinationHashes { get; init; }
}

/// <summary>The plan of a sync, data only: every copy and update (new directories included, so that an empty one is
/// made), what must be removed before the copies (the other kind is in the way), the deletes, the entries that
/// cannot be synced (with why), and how many files were found equal. A dry run reports it; a real run carries it out.</summary>
internal sealed class SyncPlan
{
    /// <summary>The source's name: the copy engine's relative paths ("name/a/b") start with it.</summary>
    public required string Name { get; init; }
    public List<SyncAction> Copies { get; } = new();
    public List<SyncAction> Replaced { get; } = new();
    public List<SyncAction> Deletes { get; } = new();
    public List<SyncAction> Refused { get; } = new();
    public int Unchanged { get; set; }
    /// <summary>Entries the deletes and replacements would remove, a directory counted with its contents.</summary>
    public int ToRemove => Deletes.Sum(a => a.Entries) + Replaced.Sum(a => a.Entries);
}

/// <summary>
/// Both trees listed (one List over one connection for a remote side) and walked side by side
/// (<see cref="TreeDiff.March"/>), each difference decided with its reason. The source is walked as the copy will walk
/// it (links kept locally, followed across the protocol); a local destination always keeps its links as entries, never
/// followed, so that one is removed or replaced as a link. A directory that cannot be listed, or a listed name that
/// could not be written safely, stops the plan: a gap would look like extraneous entries to delete.
/// </summary>
internal static class SyncPlanner
{
    /// <summary>An excluded entry of the destination: kept (never removed, nor what holds it), or removable
    /// (--delete-excluded).</summary>
    private enum Exclusion { None, Kept, Removable }

    // No path: a tree of 100 000 files held each one's full path twice more (both sides), a fifth of the plan's
    // memory (bench/RESULTS.md, session 16). The rare comparison that needs one asks its side (Collector.PathOf).
    private readonly record struct Node(EntryKind Kind, long Size, long MtimeSec, string? LinkTarget, Exclusion Exclusion)
    {
        public bool IsDirectory => Kind == EntryKind.Directory;
    }

    /// <summary>The root of one side, or null where nothing is.</summary>
    public static TreeNode? Stat(string text, RemoteSpec? spec, ServeClient? client, CancellationToken ct)
    {
        if (spec is null) return Fs.TryStat(text) is { } m ? TreeNode.Root(text, "", m) : null;
        return client!.StatOrNull(spec.ServerPath, ct) is { } r
            ? new TreeNode(spec.ServerPath, "", "", r.IsDir ? EntryKind.Directory : EntryKind.File, r.IsDir ? 0 : (long)r.Size, r.Mtime)
            : null;
    }

    public static SyncPlan Plan(SyncPlanSettings o, TreeNode srcTop, TreeNode? dstTop, CancellationToken ct)
    {
        var name = o.SourceSpec?.BaseName() ?? CopyRules.BaseName(o.Source);
        var plan = new SyncPlan { Name = name };
        var src = new Collector(o, destination: false, srcTop.Path);
        var dst = new Collector(o, destination: true, dstTop?.Path ?? "");
        var srcRoot = srcTop with { Relative = name };
        void WalkSource() => Walk(o, o.SourceSpec, srcRoot, o.Client is null ? SymlinkPolicy.Preserve : SymlinkPolicy.Follow, src, ct);
        if (dstTop is { } d)
        {
            // Both sides are listed at once: each mostly waits (on statx, or on the server), and they share nothing
            // but the read-only filter. Two remote sides would share one connection: those go one after the other.
            var source = o.SourceSpec is null || o.DestinationSpec is null ? Task.Run(WalkSource) : null;
            if (source is null) WalkSource();
            ExceptionDispatchInfo? dstError = null;
            try { Walk(o, o.DestinationSpec, d with { Relative = name }, SymlinkPolicy.Preserve, dst, ct); }
            catch (Exception e) { dstError = ExceptionDispatchInfo.Capture(e); }
            source?.GetAwaiter().GetResult(); // the source's failure first, as when the walks ran in turn
            dstError?.Throw();
        }
        else WalkSource();
        if (src.Failure is { } srcFailed) throw srcFailed;
        if (dst.Failure is { } dstFailed) throw dstFailed;

        var compareByHash = new List<(string Below, Node Src, Node Dst)>();
        // Directories removed whole (their entries counted into their action); directories left alone with all under
        // them (the other kind is in the way); directories that hold a kept excluded entry, never removed whole.
        var whole = new Dictionary<string, SyncAction>(StringComparer.Ordinal);
        var leftAlone = new HashSet<string>(StringComparer.Ordinal);
        var holdsKept = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, node) in dst.Nodes)
            if (node.Exclusion == Exclusion.Kept)
                for (var p = Parent(path); p is not null; p = Parent(p)) holdsKept.Add(p);
        // The directories that will hold the backup directory, before it exists (this run may be its first).
        if (BackupBelowDestination(o) is { } backupBelow)
            for (var p = Parent(name + "/" + backupBelow); p is not null; p = Parent(p)) holdsKept.Add(p);

        foreach (var (path, s, t) in TreeDiff.March(src.Nodes, dst.Nodes))
        {
            if (path == name) continue; // the roots themselves
            var below = path[(name.Length + 1)..];
            if (whole.Count > 0 && AncestorIn(below, whole.ContainsKey) is { } removedWith)
            {
                var owner = whole[removedWith];
                var counted = owner with { Entries = owner.Entries + 1 };
                whole[removedWith] = counted;
                var list = owner.Reason == SyncReason.Type ? plan.Replaced : plan.Deletes;
                list[list.IndexOf(owner)] = counted;
                continue;
            }
            if (leftAlone.Count > 0 && AncestorIn(below, leftAlone.Contains) is not null) continue;
            if (t is { Exclusion: Exclusion.Kept }) continue;
            if (t is { Exclusion: Exclusion.Removable })
            {
                if (o.Delete) AddDelete(plan.Deletes, SyncReason.Excluded, below, t.Value);
                continue;
            }
            if (s is not { } sv)
            {
                if (o.Delete) AddDelete(plan.Deletes, SyncReason.Extraneous, below, t!.Value);
                continue;
            }
            if (t is not { } tv)
            {
                plan.Copies.Add(CopyAction(o, SyncActionKind.Copy, SyncReason.New, below, sv));
                continue;
            }
            if (sv.Kind != tv.Kind)
            {
                if (!o.Delete || holdsKept.Contains(path))
                {
                    var action = DeleteAction(o, SyncReason.Type, below, tv);
                    plan.Refused.Add(action with
                    {
                        Status = SyncStatus.Failed, ErrorCode = BcmrErrorCode.AlreadyExists,
                        Message = $"{action.Destination}: is a {Describe(tv.Kind)} where the source has a {Describe(sv.Kind)}; not replaced" +
                            (o.Delete ? " (it holds excluded entries or the backup directory)" : " (use --delete)"),
                    });
                    leftAlone.Add(below);
                    continue;
                }
                AddDelete(plan.Replaced, SyncReason.Type, below, tv);
                plan.Copies.Add(CopyAction(o, SyncActionKind.Update, SyncReason.Type, below, sv));
                continue;
            }
            if (sv.IsDirectory) continue;
            if (sv.Kind == EntryKind.Symlink)
            {
                if (sv.LinkTarget != tv.LinkTarget) plan.Copies.Add(CopyAction(o, SyncActionKind.Update, SyncReason.Target, below, sv));
                else plan.Unchanged++;
            }
            else if (sv.Size != tv.Size) plan.Copies.Add(CopyAction(o, SyncActionKind.Update, SyncReason.Size, below, sv));
            else if (o.Checksum) compareByHash.Add((below, sv, tv));
            else if (!o.SizeOnly && sv.MtimeSec != tv.MtimeSec) plan.Copies.Add(CopyAction(o, SyncActionKind.Update, SyncReason.Mtime, below, sv));
            else plan.Unchanged++;
        }
        CompareContents(o, plan, compareByHash, src, dst, ct);
        plan.Copies.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return plan;

        void AddDelete(List<SyncAction> list, SyncReason reason, string below, in Node node)
        {
            // A directory holding a kept excluded entry stays; what else is under it is removed one by one.
            if (node.IsDirectory && holdsKept.Contains(name + "/" + below)) return;
            var action = DeleteAction(o, reason, below, node);
            list.Add(action);
            if (node.IsDirectory) whole[below] = action;
        }
    }

    /// <summary>Where the backup directory lies below the destination ("old/versions"), or null when it is
    /// outside it (or not asked for).</summary>
    private static string? BackupBelowDestination(SyncPlanSettings o)
    {
        if (o.BackupRoot is not { } b) return null;
        if (o.DestinationSpec is { } spec)
        {
            var top = spec.ServerPath.TrimEnd('/');
            return top.Length > 0 && b.StartsWith(top + "/", StringComparison.Ordinal) && b[(top.Length + 1)..].Trim('/') is { Length: > 0 } below
                ? below : null;
        }
        var rel = Path.GetRelativePath(Path.GetFullPath(o.Destination), b);
        return rel == "." || rel == ".." || rel.StartsWith("../", StringComparison.Ordinal) || Path.IsPathRooted(rel)
            ? null : rel.Replace(Path.DirectorySeparatorChar, '/');
    }

    private static string? Parent(string path) => path.LastIndexOf('/') is int slash and > 0 ? path[..slash] : null;

    /// <summary>The nearest proper ancestor of <paramref name="below"/> that <paramref name="has"/>, or null.</summary>
    private static string? AncestorIn(string below, Func<string, bool> has)
    {
        for (var p = Parent(below); p is not null; p = Parent(p))
            if (has(p)) return p;
        return null;
    }

    private static string Describe(EntryKind kind) => kind switch
    {
        EntryKind.Directory => "directory", EntryKind.Symlink => "symbolic link", _ => "file",
    };

    private static string SourcePath(SyncPlanSettings o, string below) =>
        o.SourceSpec is { } spec ? spec.WithPath(RemoteSpec.Join(spec.Path, below)).ToString() : Path.Join(o.Source, below);

    private static string DestinationPath(SyncPlanSettings o, string below) =>
        o.DestinationSpec is { } spec ? spec.WithPath(RemoteSpec.Join(spec.Path, below)).ToString() : Path.Join(o.Destination, below);

    private static SyncAction CopyAction(SyncPlanSettings o, SyncActionKind kind, SyncReason reason, string below, in Node s) => new()
    {
        Action = kind, Reason = reason, Path = below, Kind = s.Kind, Source = SourcePath(o, below), Destination = DestinationPath(o, below),
        Bytes = s.Kind == EntryKind.File ? s.Size : 0,
    };

    private static SyncAction DeleteAction(SyncPlanSettings o, SyncReason reason, string below, in Node t) => new()
    {
        Action = SyncActionKind.Delete, Reason = reason, Path = below, Kind = t.Kind, Destination = DestinationPath(o, below),
    };

    /// <summary>Files of equal size, compared by BLAKE3: each side hashes its own (the server its files, all the
    /// requests sent before the first answer is read), so no file data crosses the wire to compare.</summary>
    private static void CompareContents(SyncPlanSettings o, SyncPlan plan, List<(string Below, Node Src, Node Dst)> pairs,
        Collector src, Collector dst, CancellationToken ct)
    {
        if (pairs.Count == 0) return;
        var client = o.Client;
        var remoteHashes = new SingleReply[pairs.Count];
        bool srcRemote = o.SourceSpec is not null;
        if (client is not null)
        {
            for (int i = 0; i < pairs.Count; i++)
            {
                remoteHashes[i] = new SingleReply();
                client.Send(new HashRequest(srcRemote ? src.PathOf(pairs[i].Below) : dst.PathOf(pairs[i].Below), 0, null), remoteHashes[i], ct);
            }
            client.Flush();
        }
        for (int i = 0; i < pairs.Count; i++)
        {
            var (below, s, _) = pairs[i];
            bool same;
            try
            {
                var a = srcRemote ? RemoteHash(client!, remoteHashes[i], src.PathOf(below), ct) : LocalHash(src.PathOf(below), o.SourceHashes);
                var b = client is not null && !srcRemote ? RemoteHash(client, remoteHashes[i], dst.PathOf(below), ct) : LocalHash(dst.PathOf(below), o.DestinationHashes);
                same = a == b;
            }
            catch (BcmrException e)
            {
                plan.Refused.Add(CopyAction(o, SyncActionKind.Update, SyncReason.Checksum, below, s) with { Status = SyncStatus.Failed, Message = e.Message, ErrorCode = e.Code });
                continue;
            }
            if (same) plan.Unchanged++;
            else plan.Copies.Add(CopyAction(o, SyncActionKind.Update, SyncReason.Checksum, below, s));
        }
    }

    private static string RemoteHash(ServeClient client, SingleReply reply, string path, CancellationToken ct) => reply.Wait(ct) switch
    {
        HashResponse h => h.Hash,
        ErrorResponse e => throw ServeClient.ServerError(client.Remote, path, e),
        var other => throw ServeClient.WrongReply(client.Remote, other, MessageType.Hash, nameof(HashResponse)),
    };

    /// <summary>A local file's BLAKE3, remembered in <paramref name="cache"/> while the file stays as it was.</summary>
    private static string LocalHash(string path, HashCache? cache)
    {
        var before = Fs.TryStat(path) ?? throw new BcmrException(BcmrErrorCode.NotFound, path, $"{path}: No such file or directory");
        if (cache?.TryGet(path, before) is { } known) return known;
        string hex;
        try { hex = Blake3.ToHex(Blake3.HashFile(path, 1)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, path); }
        if (cache is not null && Fs.TryStat(path) is { } after && before.UnchangedAt(after))
            cache.Put(path, before, hex);
        return hex;
    }

    private static void Walk(SyncPlanSettings o, RemoteSpec? spec, in TreeNode root, SymlinkPolicy policy, Collector into, CancellationToken ct)
    {
        // The destination is listed whole: its excluded entries are marked, not left out (see Collector).
        var filter = into.Destination ? new PathFilter([]) : o.Filter;
        if (spec is null) LocalTree.Walk(root, policy, filter, into, ct, withMeta: true);
        else RemoteTree.Walk(o.Client!, spec, root, filter, into, ct);
    }

    /// <summary>One side's entries by relative path ("name/a/b"). The source side leaves excluded entries out; the
    /// destination side lists them marked (an excluded directory is not entered unless it may be removed), and also
    /// lists what a copy would leave out (special files, dangling links), which a delete may remove. The backup
    /// directory, when inside the destination, is listed as kept and not entered: neither it nor what holds it is
    /// removed or replaced.</summary>
    private sealed class Collector(SyncPlanSettings o, bool destination, string root) : ITreeVisitor
    {
        private string? _removableUnder;

        public List<(string Path, Node Node)> Nodes { get; } = new();
        public bool Destination => destination;
        /// <summary>The path of an entry below this side's root (<paramref name="root"/>: local, or the server's), as
        /// the walk named it (the hash caches are keyed by it).</summary>
        public string PathOf(string below) =>
            below.Length == 0 ? root : (destination ? o.DestinationSpec : o.SourceSpec) is null ? Path.Join(root, below) : RemoteSpec.Join(root, below);
        public BcmrException? Failure { get; private set; }

        public bool Enter(in TreeNode directory)
        {
            if (IsBackup(directory))
            {
                // Kept like an excluded entry, so that the directories above it are never removed whole (its parent
                // may be extraneous: it is then emptied of everything else, and stays).
                Nodes.Add((directory.Relative, new Node(EntryKind.Directory, 0, directory.MtimeSec, null, Exclusion.Kept)));
                return false;
            }
            var exclusion = Excluded(directory);
            Nodes.Add((directory.Relative, new Node(EntryKind.Directory, 0, directory.MtimeSec, null, exclusion)));
            if (exclusion == Exclusion.Removable) _removableUnder ??= directory.Relative + "/";
            return exclusion != Exclusion.Kept;
        }

        public void Leaf(in TreeNode entry)
        {
            if (IsBackup(entry))
            {
                Nodes.Add((entry.Relative, new Node(entry.Kind, entry.Size, entry.MtimeSec, null, Exclusion.Kept)));
                return;
            }
            string? target = entry.Kind == EntryKind.Symlink ? Fs.ReadLink(entry.Path) : null;
            Nodes.Add((entry.Relative, new Node(entry.Kind, entry.Size, entry.MtimeSec, target, Excluded(entry))));
        }

        public void Skip(in TreeNode entry, TreeSkip why)
        {
            if (destination) Nodes.Add((entry.Relative, new Node(EntryKind.Other, 0, 0, null, IsBackup(entry) ? Exclusion.Kept : Excluded(entry))));
        }

        public void Fail(in TreeNode directory, BcmrException error) => Failure ??= error;

        private Exclusion Excluded(in TreeNode node)
        {
            if (!destination) return Exclusion.None;
            if (_removableUnder is not null)
            {
                if (node.Relative.StartsWith(_removableUnder, StringComparison.Ordinal)) return Exclusion.Removable;
                _removableUnder = null;
            }
            if (!o.Filter.Excludes(node.Relative)) return Exclusion.None;
            return o.Delete && o.DeleteExcluded ? Exclusion.Removable : Exclusion.Kept;
        }

        private bool IsBackup(in TreeNode node) =>
            destination && o.BackupRoot is { } b && (o.DestinationSpec is null ? Path.GetFullPath(node.Path) : node.Path) == b;
    }
}
