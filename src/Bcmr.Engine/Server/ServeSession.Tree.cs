using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Server;

// What a sync changes on the server's tree besides file contents (Features.Tree): times and modes, deletes, and the
// backups of what it replaces or deletes. Every path here is taken as written, never through a link: a sync client
// names entries from a listing in which links inside the root look like what they point to, and a delete or rename
// of "link/x" must not reach the link's target. So no component of such a path may be a link or "..", and the final
// entry is the entry itself (a link is removed, moved or timed as a link).
public sealed partial class ServeSession
{
    private OkResponse HandleSetMeta(SetMetaRequest r)
    {
        // Times and modes may trust a parent this session walked already; removes and renames walk every time.
        var path = Unfollowed(r.Path, walkWhole: false);
        using var dir = _jail.Pin(path, createParents: false);
        try
        {
            var meta = Fs.TryLstat(dir.Target) ?? throw NotFound(path);
            if (r.Mode != SetMetaRequest.KeepMode && meta.Kind != EntryKind.Symlink) Fs.SetMode(null, dir.Target, r.Mode);
            Fs.SetModificationTime(dir.Target, r.MtimeSec, r.MtimeNsec);
        }
        catch (BcmrException e) { throw new BcmrException(e.Code, path, dir.Shown(e.Message), e); }
        return OkResponse.Empty;
    }

    private OkResponse HandleRemove(Protocol.RemoveRequest r)
    {
        var path = Unfollowed(r.Path);
        using var dir = _jail.Pin(path, createParents: false);
        try
        {
            var meta = Fs.TryLstat(dir.Target);
            if (meta is null) return OkResponse.Empty;
            if (meta.Value.Kind != EntryKind.Directory) Fs.DeleteFile(dir.Target);
            else if (!r.Recursive) Fs.RemoveDirectory(dir.Target);
            else Local.Remover.RemoveTree(dir.Target);
            if (Sync) Fs.FlushDirectory(dir.Opened);
        }
        catch (BcmrException e) { throw new BcmrException(e.Code, path, dir.Shown(e.Message), e); }
        finally { _jail.ForgetWalks(); }
        return OkResponse.Empty;
    }

    private OkResponse HandleRename(RenameRequest r) => MoveOrLink(r.From, r.To, link: false);

    private OkResponse HandleLink(LinkRequest r) => MoveOrLink(r.From, r.To, link: true);

    private OkResponse MoveOrLink(string fromPath, string toPath, bool link)
    {
        var from = Unfollowed(fromPath);
        var to = Unfollowed(toPath);
        using var source = _jail.Pin(from, createParents: false);
        using var target = PinParent(to);
        try
        {
            var meta = Fs.TryLstat(source.Target) ?? throw NotFound(from);
            if (link && meta.Kind == EntryKind.Directory)
                throw new BcmrException(BcmrErrorCode.IsADirectory, from, $"{from}: Is a directory (only files are linked)");
            if (link) Fs.HardLink(source.Target, target.Target, replace: true);
            else Fs.Rename(source.Target, target.Target, replace: true);
            if (Sync)
            {
                Fs.FlushDirectory(target.Opened);
                if (!link) Fs.FlushDirectory(source.Opened);
            }
        }
        catch (BcmrException e) { throw new BcmrException(e.Code, to, target.Shown(source.Shown(e.Message)), e); }
        finally { _jail.ForgetWalks(); }
        return OkResponse.Empty;
    }

    /// <summary>The client's path made absolute as written (relative to the home), refused when it has a ".."
    /// component, names the root itself, lies outside it, or passes through a link on the way.</summary>
    private string Unfollowed(string clientPath, bool walkWhole = true)
    {
        var parts = clientPath.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
            throw new BcmrException(BcmrErrorCode.InvalidArgument, clientPath, $"{clientPath}: '..' is not allowed in a path a sync changes; refused");
        var lexical = (clientPath.StartsWith('/') ? "" : _jail.Home.TrimEnd('/')) + "/" + string.Join('/', parts);
        if (parts.Count == 0 || lexical == _jail.Root)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, clientPath, $"{clientPath}: the server root itself is never changed by a sync; refused");
        var parent = lexical[..lexical.LastIndexOf('/')];
        var canonicalParent = _jail.Resolve(parent.Length == 0 ? "/" : parent, walkWhole); // throws OutsideRoot
        if (canonicalParent != (parent.Length == 0 ? "/" : parent))
            throw new BcmrException(BcmrErrorCode.OutsideRoot, clientPath,
                $"{clientPath}: a directory on the way is a symbolic link (to {canonicalParent}); refused");
        return lexical;
    }
}
