using System.Diagnostics;
using Bcmr.Engine.Client;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Sync;

namespace Bcmr.Engine.Transfers;

/// <summary><c>bcmr sync</c> / <c>Sync-BcmrItem</c>: make <see cref="Destination"/> match <see cref="Source"/>, a
/// directory, with rsync's <c>SRC/ DST/</c> meaning (the contents of SRC into DST, DST created when missing).</summary>
public sealed record SyncRequest
{
    public required string Source { get; init; }
    public required string Destination { get; init; }
    /// <summary>Remove what the destination has and the source does not, after every copy succeeded.</summary>
    public bool Delete { get; init; }
    /// <summary>With <see cref="Delete"/>: excluded entries of the destination are removed too (else they are kept).</summary>
    public bool DeleteExcluded { get; init; }
    /// <summary>With <see cref="Delete"/>: more entries than this to remove removes none and fails the sync.</summary>
    public int? MaxDelete { get; init; }
    /// <summary>Replaced and removed entries are moved here (relative: inside the destination) instead of lost.</summary>
    public string? BackupDirectory { get; init; }
    /// <summary>Compare files of equal size by BLAKE3 (each side hashes its own) instead of modification time.</summary>
    public bool Checksum { get; init; }
    public bool DryRun { get; init; }
    /// <summary>As <see cref="CopyRequest.Excludes"/>: matched against "SRC-name/a/b.txt".</summary>
    public IReadOnlyList<string> Excludes { get; init; } = Array.Empty<string>();
    /// <summary>How the copies travel (connections, compression, ssh, resume, retries, verify...); its sources,
    /// destination and the copy-only flags are the sync's to set.</summary>
    public CopyRequest Transfer { get; init; } = new() { Sources = [], Destination = "" };
    /// <summary>Asked before each removal (-Confirm); false keeps the entry. Null: no questions.</summary>
    public Func<SyncAction, bool>? ConfirmDelete { get; init; }
}

/// <summary>
/// A sync carried out: the plan (<see cref="SyncPlanner"/>), then every copy and update through the copy engine
/// (temp name and rename, as every copy; -p's times and modes, so that the next run sees equal files as equal), told
/// to walk only what the plan chose; then, only when every copy succeeded and --max-delete allows, the deletes.
/// Nothing outside the destination is removed: every delete is the destination joined with a listed name that was
/// checked to go only down, and a server removes or moves an entry only by a path with no link on the way
/// (<see cref="Features.Tree"/>).
/// </summary>
public static class SyncEngine
{
    public static SyncSummary Run(SyncRequest request, IProgress<TransferProgress>? progress = null,
        Action<SyncAction>? onAction = null, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        var srcSpec = RemoteSpec.ParseOrLocal(request.Source);
        var dstSpec = RemoteSpec.ParseOrLocal(request.Destination);
        if (srcSpec is not null && dstSpec is not null)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, request.Destination, "sync between two remote hosts is not supported (one side must be local)");
        if (request.MaxDelete is < 0)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"--max-delete must be 0 or more (got {request.MaxDelete})");
        if (request.DeleteExcluded && !request.Delete)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--delete-excluded needs --delete");
        var filter = new PathFilter(request.Excludes);
        var remote = srcSpec ?? dstSpec;
        using var client = remote is null ? null
            : RemoteTransfer.OpenClient(request.Transfer, remote, ownConnection: false,
                RemoteTransfer.RequestedCaps(request.Transfer, upload: dstSpec is not null), ct);
        return new SyncRun(request, srcSpec, dstSpec, client, filter, onAction, ct).Execute(progress, clock);
    }

    private sealed class SyncRun(SyncRequest req, RemoteSpec? srcSpec, RemoteSpec? dstSpec, ServeClient? client, PathFilter filter,
        Action<SyncAction>? onAction, CancellationToken ct)
    {
        private readonly object _lock = new();
        private readonly HashSet<string> _failedSources = new(StringComparer.Ordinal);
        private int _copied, _updated, _deleted, _failed;
        private long _bytes;
        private string? _backupRoot;

        private void Report(SyncAction a)
        {
            lock (_lock)
            {
                switch (a.Status)
                {
                    case SyncStatus.Failed:
                        _failed++;
                        if (a.Source is not null) _failedSources.Add(a.Source);
                        break;
                    case SyncStatus.Done or SyncStatus.DryRun:
                        if (a.Action == SyncActionKind.Copy) _copied++;
                        else if (a.Action == SyncActionKind.Update) _updated++;
                        else _deleted += a.Entries;
                        if (a.Action != SyncActionKind.Delete) _bytes += a.Bytes;
                        break;
                }
                onAction?.Invoke(a);
            }
        }

        public SyncSummary Execute(IProgress<TransferProgress>? progress, Stopwatch clock)
        {
            // ---- the roots, and what the server can do -----------------------------------------------------------
            var srcTop = SyncPlanner.Stat(req.Source, srcSpec, client, ct)
                ?? throw new BcmrException(BcmrErrorCode.NotFound, req.Source, $"{req.Source}: No such file or directory");
            if (!srcTop.IsDirectory)
                throw new BcmrException(BcmrErrorCode.NotADirectory, req.Source, $"{req.Source}: sync needs a directory as its source (copy a single file with 'bcmr copy')");
            var dstTop = SyncPlanner.Stat(req.Destination, dstSpec, client, ct);
            if (dstTop is { IsDirectory: false })
                throw new BcmrException(BcmrErrorCode.NotADirectory, req.Destination, $"{req.Destination}: not a directory (a sync's destination is one, or is created)");
            bool sizeOnly = false;
            if (dstSpec is not null && !client!.Has(Features.Tree))
            {
                if (req.Delete || req.BackupDirectory is not null)
                    throw new BcmrException(BcmrErrorCode.RemoteUnavailable, req.Destination,
                        $"{client.Remote}: the remote bcmr cannot remove or move files (no sync support, e.g. bcmr 0.6); run without --delete and --backup-dir");
                sizeOnly = !req.Checksum;
                req.Transfer.Warn?.Invoke($"bcmr: {client.Remote}: the remote bcmr cannot set modification times (e.g. bcmr 0.6): changes are detected by size only" +
                    (req.Checksum ? "" : " (add --checksum to compare contents)"));
            }
            _backupRoot = BackupRoot();

            // ---- the plan ----------------------------------------------------------------------------------------
            var settings = req.Transfer.Settings;
            var planSettings = new SyncPlanSettings(req.Source, req.Destination, srcSpec, dstSpec, client, filter,
                req.Delete, req.DeleteExcluded, req.Checksum, sizeOnly, _backupRoot)
            {
                SourceHashes = req.Checksum && srcSpec is null ? HashCache.For(Path.GetFullPath(req.Source), settings) : null,
                DestinationHashes = req.Checksum && dstSpec is null ? HashCache.For(Path.GetFullPath(req.Destination), settings) : null,
            };
            SyncPlan plan;
            try { plan = SyncPlanner.Plan(planSettings, srcTop, dstTop, ct); }
            finally
            {
                planSettings.SourceHashes?.Save();
                planSettings.DestinationHashes?.Save();
            }
            foreach (var refused in plan.Refused) Report(refused);
            var copies = plan.Copies;
            var replaced = plan.Replaced;

            // ---- --max-delete, before anything changes -----------------------------------------------------------
            string? deletesSkipped = null;
            if (req.MaxDelete is int max && plan.ToRemove > max)
            {
                deletesSkipped = $"--max-delete {max}: {plan.ToRemove} entries would be removed; none was";
                foreach (var r in replaced)
                {
                    Report(r with { Status = SyncStatus.Skipped, Message = deletesSkipped });
                    copies.RemoveAll(c => c.Path == r.Path);
                }
                replaced.Clear();
            }

            if (req.DryRun)
            {
                foreach (var a in replaced.Concat(copies).Concat(deletesSkipped is null ? plan.Deletes : []).OrderBy(a => a.Path, StringComparer.Ordinal))
                    Report(a with { Status = SyncStatus.DryRun, Backup = a.Action == SyncActionKind.Copy ? null : BackupPath(a.Path) });
                return Summary(clock, plan, null, deletesSkipped, false, 0, true);
            }

            // ---- what is in the way, then the copies -------------------------------------------------------------
            foreach (var r in replaced)
                if (!Remove(r)) copies.RemoveAll(c => c.Path == r.Path);
            if (_backupRoot is not null)
                for (int i = copies.Count - 1; i >= 0; i--)
                    if (copies[i].Action == SyncActionKind.Update && copies[i].Reason != SyncReason.Type && !KeepBackup(copies[i]))
                        copies.RemoveAt(i);
            var transfer = copies.Count == 0 ? null : CopyAll(plan.Name, copies, progress);
            if (transfer is { Fatal: not null } or { Cancelled: true } || ct.IsCancellationRequested)
                return Summary(clock, plan, transfer?.Fatal, deletesSkipped, transfer?.Cancelled ?? true, transfer?.WireBytes ?? 0, false);
            // The copy engine reports files; a directory it made (or found) is reported here, unless it failed.
            foreach (var c in copies)
                if (c.Kind == EntryKind.Directory && !_failedSources.Contains(c.Source!)) Report(c with { Status = SyncStatus.Done });

            // ---- the deletes, only when everything else succeeded ------------------------------------------------
            if (plan.Deletes.Count > 0 && deletesSkipped is null)
            {
                if (_failed > 0) deletesSkipped = $"{_failed} {(_failed == 1 ? "entry" : "entries")} failed: no extraneous entry was removed";
                else foreach (var a in plan.Deletes)
                {
                    ct.ThrowIfCancellationRequested();
                    Remove(a);
                }
            }
            return Summary(clock, plan, null, deletesSkipped, false, transfer?.WireBytes ?? 0, false);
        }

        private SyncSummary Summary(Stopwatch clock, SyncPlan plan, BcmrException? fatal, string? deletesSkipped, bool cancelled, long wire, bool dry) => new()
        {
            Copied = _copied, Updated = _updated, Deleted = _deleted, Unchanged = plan.Unchanged, Failed = _failed, Bytes = _bytes,
            WireBytes = wire, Duration = clock.Elapsed, DeletesSkipped = deletesSkipped, DryRun = dry, Cancelled = cancelled,
            Fatal = fatal, Transport = client is null ? "local" : client.Channel.Transport,
        };

        // ---- the copies ------------------------------------------------------------------------------------------

        private TransferSummary CopyAll(string name, List<SyncAction> copies, IProgress<TransferProgress>? progress)
        {
            // The copy engine walks the source as a copy of SRC would ("name/a/b.txt"); it is told to take only these.
            var only = new HashSet<string>(StringComparer.Ordinal) { name };
            foreach (var c in copies)
            {
                var rel = name + "/" + c.Path;
                while (only.Add(rel) && rel.LastIndexOf('/') is int slash and > 0) rel = rel[..slash];
            }
            var bySource = copies.ToDictionary(c => c.Source!, StringComparer.Ordinal);
            var copyRequest = req.Transfer with
            {
                Sources = [req.Source], Destination = req.Destination, ExactDestination = true, Recursive = true, Force = true,
                Preserve = true, KeepTimes = true, Move = false, DryRun = false, SkipUnchanged = false, CreateMissingDestination = false,
                Excludes = req.Excludes, Only = only,
                // Over one connection the copies go through the one the plan was listed over (one ssh login).
                Connection = req.Transfer.Parallel <= 1 ? client : null,
            };
            return TransferEngine.Run(copyRequest, progress, result =>
            {
                if (!bySource.TryGetValue(result.Source, out var planned))
                {
                    // A directory on the way, made or failed: only a failure is worth an action of its own.
                    if (result.Status == CopyStatus.Failed)
                        Report(new SyncAction
                        {
                            Action = SyncActionKind.Copy, Reason = SyncReason.New, Path = result.Destination, Kind = result.Kind,
                            Source = result.Source, Destination = result.Destination, Status = SyncStatus.Failed,
                            Message = result.Message, ErrorCode = result.ErrorCode,
                        });
                    return;
                }
                Report(planned with
                {
                    Status = result.Succeeded ? SyncStatus.Done : SyncStatus.Failed,
                    Message = result.Message, ErrorCode = result.ErrorCode, WireBytes = result.WireBytes, Blake3 = result.Blake3, ResumedFrom = result.ResumedFrom,
                    Backup = planned.Action == SyncActionKind.Update ? BackupPath(planned.Path) : null,
                });
            }, ct);
        }

        // ---- backups and deletes ---------------------------------------------------------------------------------

        /// <summary>--backup-dir as a path on the destination's side: relative means inside the destination.</summary>
        private string? BackupRoot()
        {
            if (req.BackupDirectory is not { Length: > 0 } dir) return null;
            if (dstSpec is null) return Path.GetFullPath(dir, Path.GetFullPath(req.Destination));
            return dir.StartsWith('/') ? dir : RemoteSpec.Join(dstSpec.ServerPath, dir);
        }

        private string? BackupPath(string below) => _backupRoot is null ? null
            : dstSpec is null ? Path.Join(_backupRoot, below) : RemoteSpec.Join(_backupRoot, below);

        private string ServerPath(string below) => RemoteSpec.Join(dstSpec!.ServerPath, below);
        private string LocalPath(string below) => Path.Join(req.Destination, below);

        /// <summary>
        /// Makes sure nothing is at <paramref name="backup"/> (its parents created locally; the server creates its
        /// own): an earlier backup of the same name, from an earlier run, is renamed to the first free
        /// <c>NAME.~N~</c> beside it (GNU cp's numbered backups: the plain name is the newest, the highest number the
        /// next newest), so that a backup never replaces another.
        /// </summary>
        private void MakeRoomForBackup(string backup)
        {
            if (dstSpec is null)
            {
                Fs.MakeDirectories(Path.GetDirectoryName(backup)!);
                if (Fs.TryLstat(backup) is null) return;
                Fs.Rename(backup, FreeNumbered(backup, p => Fs.TryLstat(p) is not null), replace: false);
                return;
            }
            if (client!.StatOrNull(backup, ct) is null) return;
            var numbered = FreeNumbered(backup, p => client.StatOrNull(p, ct) is not null);
            if (client.Call(new RenameRequest(backup, numbered), ct) is ErrorResponse e) throw ServeClient.ServerError(client.Remote, backup, e);
        }

        private static string FreeNumbered(string path, Func<string, bool> exists)
        {
            for (int n = 1; ; n++)
                if (!exists($"{path}.~{n}~")) return $"{path}.~{n}~";
        }

        /// <summary>A second name for the version an update replaces (a hard link: the destination keeps its
        /// file until the new one is renamed over it). False: the update is not made (reported).</summary>
        private bool KeepBackup(SyncAction a)
        {
            var backup = BackupPath(a.Path)!;
            try
            {
                MakeRoomForBackup(backup);
                if (dstSpec is null)
                {
                    try { Fs.HardLink(LocalPath(a.Path), backup, replace: true); }
                    catch (BcmrException e) when (e.Code == BcmrErrorCode.CrossDevice) { File.Copy(LocalPath(a.Path), backup, overwrite: true); }
                }
                else if (client!.Call(new LinkRequest(ServerPath(a.Path), backup), ct) is ErrorResponse e)
                    throw ServeClient.ServerError(client.Remote, backup, e);
                return true;
            }
            catch (Exception e) when (e is BcmrException or IOException or UnauthorizedAccessException)
            {
                var error = e as BcmrException ?? BcmrException.FromIo(e, backup);
                Report(a with { Status = SyncStatus.Failed, ErrorCode = error.Code, Message = $"{a.Destination}: not updated: its backup failed: {error.Message}" });
                return false;
            }
        }

        /// <summary>Removes (or, with --backup-dir, moves away) one entry of the destination, a link as a link;
        /// true when it is gone.</summary>
        private bool Remove(SyncAction a)
        {
            var backup = BackupPath(a.Path);
            if (req.ConfirmDelete is { } confirm && !confirm(a))
            {
                Report(a with { Status = SyncStatus.Declined, Message = $"{a.Destination}: kept (declined)" });
                return false;
            }
            try
            {
                if (dstSpec is null)
                {
                    var path = LocalPath(a.Path);
                    if (backup is not null)
                    {
                        MakeRoomForBackup(backup);
                        Fs.Rename(path, backup, replace: true);
                    }
                    else Remover.RemoveTree(path, ct);
                }
                else
                {
                    if (backup is not null) MakeRoomForBackup(backup);
                    Message request = backup is not null ? new RenameRequest(ServerPath(a.Path), backup) : new Protocol.RemoveRequest(ServerPath(a.Path), Recursive: true);
                    if (client!.Call(request, ct) is ErrorResponse e) throw ServeClient.ServerError(client.Remote, ServerPath(a.Path), e);
                }
            }
            catch (BcmrException e)
            {
                Report(a with { Status = SyncStatus.Failed, ErrorCode = e.Code, Message = e.Message });
                return false;
            }
            Report(a with { Status = SyncStatus.Done, Backup = backup });
            return true;
        }

    }
}
