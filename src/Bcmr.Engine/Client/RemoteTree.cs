using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Client;

/// <summary>
/// The walker of a server's trees: one List request, its entries reported as <see cref="TreeNode"/>s (their
/// <see cref="TreeNode.Path"/> is the path on the server) in the order the
/// server gives (depth first, directories before their contents), to the same visitor a local walk uses. The server
/// follows links inside its root, so a remote tree is always walked as <see cref="SymlinkPolicy.Follow"/> would walk it.
/// A name that could not be written safely on this side (<see cref="IsSafeRelative(string)"/>) fails alone, with what
/// lies under it; an excluded or refused directory takes its contents with it.
/// </summary>
internal static class RemoteTree
{
    public static void Walk(ServeClient client, RemoteSpec root, in TreeNode rootNode, PathFilter filter, ITreeVisitor visitor, CancellationToken ct)
    {
        if (!visitor.Enter(rootNode)) return;
        // Our servers also give each entry's mtime nanoseconds and mode (ListMeta): a download keeps both.
        bool withMeta = client.Has(Features.Meta);
        var listing = client.Call(withMeta ? new ListMetaRequest(root.ServerPath) : new ListRequest(root.ServerPath), ct);
        if (listing is ErrorResponse e)
        {
            visitor.Fail(rootNode, ServeClient.ServerError(client.Remote, root.ServerPath, e));
            return;
        }
        var entries = withMeta
            ? ServeClient.Expect<ListMetaResponse>(client.Remote, listing, MessageType.ListMeta).Entries
            : ServeClient.Expect<ListResponse>(client.Remote, listing, MessageType.List).Entries
                .Select(x => new MetaEntry(x.Path, x.Size, x.Mtime, 0, 0, x.IsDir)).ToList();
        // Directories whose contents are passed over ("a/b/"); the order only promises a directory before its contents.
        var leftOut = new List<string>();
        foreach (var entry in entries)
        {
            ct.ThrowIfCancellationRequested();
            if (leftOut.Count > 0 && leftOut.Exists(d => entry.Path.StartsWith(d, StringComparison.Ordinal))) continue;
            var serverPath = RemoteSpec.Join(root.ServerPath, entry.Path);
            var kind = entry.IsDir ? EntryKind.Directory : EntryKind.File;
            long size = entry.IsDir ? 0 : (long)entry.Size;
            FileMeta? meta = withMeta ? new FileMeta(kind, size, entry.Mode, entry.Mtime, entry.MtimeNsec, entry.Mtime, entry.MtimeNsec, 0, 0, 0, 0, size) : null;
            var node = new TreeNode(serverPath, rootNode.Relative + "/" + entry.Path, entry.Path, kind, size, entry.Mtime, meta);
            bool enter;
            if (!IsSafeRelative(entry.Path))
            {
                var shown = root.WithPath(serverPath).ToString();
                visitor.Fail(node, new BcmrException(BcmrErrorCode.InvalidArgument, shown,
                    $"{shown}: the server listed a name that cannot be written here safely ('{entry.Path}'); not copied"));
                enter = false;
            }
            else if (filter.Excludes(node.Relative)) enter = false;
            else if (entry.IsDir) enter = visitor.Enter(node);
            else
            {
                visitor.Leaf(node);
                continue;
            }
            if (!enter && entry.IsDir) leftOut.Add(entry.Path + "/");
        }
    }

    /// <summary>A name from a server's listing may only go down from the destination: relative, '/'-separated, no
    /// empty, "." or ".." component. A malicious server can then never make a download write outside the local
    /// destination. What else is refused depends on the side that writes: on Linux any other name is a name (a colon
    /// in 12:30:00.log, a backslash, a control character); on Windows a backslash or colon would be a separator, a
    /// drive or a stream, and control characters cannot be written, so those are refused there.</summary>
    internal static bool IsSafeRelative(string path) => IsSafeRelative(path, OperatingSystem.IsWindows());

    internal static bool IsSafeRelative(string path, bool windows) =>
        path.Length > 0 && !path.StartsWith('/') && path.IndexOf('\0') < 0
        && (!windows || path.IndexOfAny(['\\', ':']) < 0 && !path.Any(char.IsControl))
        && EveryComponentIsAName(path);

    /// <summary>No component is empty, "." or "..": checked in place (a listing has one path per entry).</summary>
    private static bool EveryComponentIsAName(ReadOnlySpan<char> path)
    {
        while (true)
        {
            int slash = path.IndexOf('/');
            var part = slash < 0 ? path : path[..slash];
            if (part.IsEmpty || part is "." || part is "..") return false;
            if (slash < 0) return true;
            path = path[(slash + 1)..];
        }
    }
}
