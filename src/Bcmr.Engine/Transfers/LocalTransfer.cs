using Bcmr.Engine.Platform;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Enumeration;
using System.Text.RegularExpressions;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// A copy or move on one machine. The calling thread resolves each source against the destination (the cp rules),
/// walks trees and creates directories (parents always before their contents); files go to a bounded queue that
/// <c>Jobs</c> worker threads drain, each running the synchronous per-file copy. Directory modes and times are set
/// after their contents are written; a move removes source directories only once they are empty.
/// </summary>
internal sealed class LocalTransfer
{
    private readonly CopyRequest _req;
    private readonly ResultLog _log;
    private readonly CancellationToken _ct;
    private readonly FileCopyOptions _options;
    private readonly FileCopyOptions _crossDeviceMoveOptions;
    private readonly PathFilter _filter;
    private readonly ProgressTracker _tracker;
    private readonly SessionStore? _sessions;
    // --bwlimit: one bucket for every worker, so the sum of the files in flight keeps to the rate (as rsync's).
    private readonly BandwidthLimiter? _limiter;

    private readonly object _lock = new();

    private BlockingCollection<FileJob>? _queue;
    private readonly List<Thread> _workers = new();
    private readonly List<DirectoryFixup> _fixups = new();
    private readonly List<string> _emptiedSourceDirs = new();

    private readonly record struct FileJob(string Source, string Destination, EntryKind Kind, long Size);
    private readonly record struct DirectoryFixup(string Source, string Destination, FileMeta Meta, bool Created);

    public LocalTransfer(CopyRequest req, IProgress<TransferProgress>? progress, Action<CopyResult>? onResult, PathFilter filter, CancellationToken ct)
    {
        _req = req;
        _log = new ResultLog(onResult);
        _ct = ct;
        _filter = filter;
        _options = new FileCopyOptions(req.Force, req.Preserve, req.Verify, req.Sync, req.Reflink, req.Sparse, req.KeepTimes,
            req.Threads ?? ThreadBudget.ForThisMachine());
        // A move that has to copy deletes the only other copy afterwards, so it always verifies first.
        _crossDeviceMoveOptions = _options with { Verify = true };
        _sessions = req.Resume == ResumeMode.None ? null : req.Sessions ?? SessionStore.Default(req.Settings);
        _tracker = new ProgressTracker(req.Operation, progress, req.ProgressInterval);
        _limiter = BandwidthLimiter.Create(req.BandwidthLimit);
    }

    public TransferSummary Run()
    {
        var clock = Stopwatch.StartNew();
        BcmrException? fatal = null;
        bool cancelled = false;
        try
        {
            var dst = _req.Destination;
            var dstMeta = Fs.TryStat(dst);
            var plan = _req.PlanDestination(_req.Sources.Count, dst, dstMeta is not null, dstMeta?.Kind == EntryKind.Directory);
            if (plan == DestinationPlan.CreateDirectory && !_req.DryRun)
            {
                Fs.MakeDirectories(dst);
                _log.DirectoryCreated();
            }
            bool dstIsDir = plan != DestinationPlan.AsNamed;
            foreach (var source in _req.Sources)
            {
                _ct.ThrowIfCancellationRequested();
                try { StartItem(source, dst, dstIsDir); }
                catch (BcmrException e) { Fail(source, dst, EntryKind.File, e); }
            }
            DrainWorkers();
            FixDirectories();
            if (_req.Move && !_req.DryRun) RemoveEmptiedSourceDirectories();
        }
        catch (OperationCanceledException) { cancelled = true; }
        catch (BcmrException e) { fatal = e; }
        finally
        {
            try { DrainWorkers(); }
            catch (OperationCanceledException) { cancelled = true; }
            _tracker.Complete();
            _tracker.Dispose();
        }
        return _log.Summary(_req.Operation, clock.Elapsed, fatal, cancelled || _ct.IsCancellationRequested, "local");
    }

    // ---- one top-level source -----------------------------------------------------------------------------------

    private void StartItem(string src, string dst, bool dstIsDir)
    {
        var meta = Fs.TryLstat(src) ?? throw new BcmrException(BcmrErrorCode.NotFound, src, $"{src}: No such file or directory");
        // Like cp: without -r a symlink named on the command line is followed; with -r (and for mv) it is copied as a link.
        if (meta.Kind == EntryKind.Symlink && !_req.Recursive && !_req.Move)
            meta = Fs.TryStat(src) ?? throw new BcmrException(BcmrErrorCode.NotFound, src, $"{src}: dangling symbolic link");
        bool isDir = meta.Kind == EntryKind.Directory;
        CopyRules.RequireRecursion(src, isDir, _req.Recurses);

        var name = CopyRules.BaseName(src);
        if (_filter.Excludes(name)) return;
        var target = dstIsDir ? Path.Join(dst, name) : dst;
        var targetMeta = Fs.TryStat(target);
        // A file's target is the name itself (a symlink to a directory may be replaced); a directory's is where it leads.
        var targetEntry = isDir ? targetMeta : Fs.TryLstat(target);
        CopyRules.CheckItem(src, isDir, dst, dstIsDir, target, targetEntry is null ? null : targetEntry.Value.Kind == EntryKind.Directory);

        var parent = FileCopier.ParentOf(target);
        if (Fs.TryStat(parent) is not { Kind: EntryKind.Directory })
            throw CopyRules.MissingParent(target, parent);

        var followed = meta.Kind == EntryKind.Symlink ? Fs.TryStat(src) : meta;
        if (targetMeta is { } t && followed is { } f && (f.SameFileAs(t) || (t.Inode == 0 && SamePath(src, target))))
            throw new BcmrException(BcmrErrorCode.SameFile, target, $"'{src}' and '{target}' are the same file");

        if (isDir)
        {
            var realSrc = Fs.RealPath(src);
            var realTarget = Fs.RealPath(target);
            if (realTarget == realSrc || realTarget.StartsWith(realSrc.TrimEnd('/') + "/", StringComparison.Ordinal))
                throw new BcmrException(BcmrErrorCode.IntoItself, target, $"cannot {_req.Operation} a directory, '{src}', into itself, '{target}'");
        }
        else
        {
            // A resume flag asks to continue or replace this very destination, and -SkipUnchanged to compare it with
            // the source; the file copy decides.
            if (!_req.Force && targetEntry is not null && _req.Resume == ResumeMode.None && !_req.SkipUnchanged)
                throw FileCopier.ExistsError(target);
        }

        if (_req.Move && !_req.DryRun && _filter.IsEmpty && TryRenameWhole(src, target, meta))
            return;

        if (meta.Kind == EntryKind.Directory)
            LocalTree.Walk(TreeNode.Root(src, name, meta), SymlinkPolicy.Preserve, _filter, new TreeCopier(this, target), _ct);
        else
            Enqueue(new FileJob(src, target, meta.Kind, meta.Kind == EntryKind.File ? meta.Size : 0));
    }

    /// <summary>-SkipUnchanged: the destination is a regular file of the source's size and modification time.</summary>
    private static bool Unchanged(FileJob job) =>
        Fs.TryLstat(job.Destination) is { Kind: EntryKind.File } d && Fs.TryStat(job.Source) is { } s
        && d.Size == s.Size && d.MtimeSec == s.MtimeSec && d.MtimeNsec == s.MtimeNsec;

    /// <summary>Same filesystem: one rename moves the whole item. Another filesystem: false, and the caller copies.</summary>
    private bool TryRenameWhole(string src, string target, in FileMeta meta)
    {
        var clock = Stopwatch.StartNew();
        try { Fs.Rename(src, target, replace: _req.Force); }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.CrossDevice) { return false; }
        _tracker.AddPlanned(meta.Size);
        var cur = _tracker.StartFile(src, meta.Size);
        _tracker.AddBytes(cur, meta.Kind == EntryKind.File ? meta.Size : 0);
        _tracker.FinishFile(cur, 0);
        Succeed(new CopyResult
        {
            Source = src, Destination = target, Kind = meta.Kind, Status = CopyStatus.Moved,
            Bytes = meta.Kind == EntryKind.File ? meta.Size : 0, Duration = clock.Elapsed, Method = CopyMethod.None,
        });
        return true;
    }

    /// <summary>A tree copied as cp -r copies it: links stay links; each directory is made before its contents,
    /// each file goes to the workers as it is listed.</summary>
    private sealed class TreeCopier(LocalTransfer owner, string target) : ITreeVisitor
    {
        public bool Enter(in TreeNode directory)
        {
            var dst = directory.Under(target);
            try
            {
                if (!owner._req.DryRun) owner.EnsureDirectory(directory.Path, dst);
            }
            catch (BcmrException e)
            {
                owner.Fail(directory.Path, dst, EntryKind.Directory, e);
                return false;
            }
            if (owner._req.Move) owner._emptiedSourceDirs.Add(directory.Path);
            return true;
        }

        public void Leaf(in TreeNode entry) =>
            owner.Enqueue(new FileJob(entry.Path, entry.Under(target), entry.Kind, entry.Size));

        public void Skip(in TreeNode entry, TreeSkip why) { } // not under Preserve

        public void Fail(in TreeNode directory, BcmrException error) =>
            owner.Fail(directory.Path, directory.Under(target), EntryKind.Directory, error);
    }

    private void EnsureDirectory(string src, string dst)
    {
        var meta = Fs.Lstat(src);
        bool created = true;
        try
        {
            // Owner rwx while we fill it; the real mode is applied after its contents (FixDirectories).
            Fs.MakeDirectory(dst, meta.Mode | 0x1C0u);
        }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists)
        {
            if (Fs.TryStat(dst) is not { Kind: EntryKind.Directory })
                throw new BcmrException(BcmrErrorCode.NotADirectory, dst, $"{dst}: exists and is not a directory");
            created = false; // merging into an existing directory, as cp -r does
        }
        if (created) _log.DirectoryCreated();
        lock (_lock) _fixups.Add(new DirectoryFixup(src, dst, meta, created));
    }

    private void FixDirectories()
    {
        for (int i = _fixups.Count - 1; i >= 0; i--)
        {
            var (src, dst, meta, created) = _fixups[i];
            try
            {
                if (_req.Preserve)
                {
                    Fs.SetMode(null, dst, meta.Mode);
                    Fs.TrySetOwner(null, dst, meta);
                    Fs.CopyXattrs(null, src, null, dst);
                    Fs.SetTimes(null, dst, meta, noFollow: false);
                }
                else if (created && (meta.Mode & 0x1C0u) != 0x1C0u)
                {
                    Fs.SetMode(null, dst, meta.Mode & 0x1FFu & ~Fs.Umask);
                }
            }
            catch (BcmrException e) { Fail(src, dst, EntryKind.Directory, e); }
        }
    }

    private void RemoveEmptiedSourceDirectories()
    {
        // Deepest first; a directory that still holds excluded, skipped or failed entries stays.
        for (int i = _emptiedSourceDirs.Count - 1; i >= 0; i--)
            Fs.TryRemoveEmptyDirectory(_emptiedSourceDirs[i]);
    }

    // ---- files ---------------------------------------------------------------------------------------------

    private void Enqueue(FileJob job)
    {
        _tracker.AddPlanned(job.Size);
        if (_req.Jobs <= 1 || _req.DryRun)
        {
            CopyOne(job);
            return;
        }
        if (_queue is null)
        {
            _queue = new BlockingCollection<FileJob>(boundedCapacity: 1024);
            for (int i = 0; i < _req.Jobs; i++)
            {
                var t = new Thread(WorkerLoop) { IsBackground = true, Name = $"bcmr-copy-{i}" };
                _workers.Add(t);
                t.Start();
            }
        }
        _queue.Add(job, _ct);
    }

    private void WorkerLoop()
    {
        try
        {
            foreach (var job in _queue!.GetConsumingEnumerable(_ct)) CopyOne(job);
        }
        catch (OperationCanceledException) { }
    }

    private void DrainWorkers()
    {
        if (_queue is null) return;
        _queue.CompleteAdding();
        foreach (var t in _workers) t.Join();
        _workers.Clear();
        _queue = null;
        _ct.ThrowIfCancellationRequested();
    }

    private void CopyOne(FileJob job)
    {
        var cur = _tracker.StartFile(job.Source, job.Size);
        var clock = Stopwatch.StartNew();
        try
        {
            if (_req.DryRun)
            {
                Succeed(new CopyResult { Source = job.Source, Destination = job.Destination, Kind = job.Kind, Status = CopyStatus.DryRun, Bytes = job.Size });
                return;
            }
            if (_req.SkipUnchanged && !_req.Move && job.Kind == EntryKind.File && Unchanged(job))
            {
                Skip(job, $"{job.Destination}: unchanged (same size and modification time as the source)");
                return;
            }
            if (_req.Move && TryRenameFile(job, clock)) return;

            var options = _req.Move ? _crossDeviceMoveOptions : _options;
            if (_sessions is not null)
            {
                CopyResumable(job, options, cur, clock);
                return;
            }
            FileCopyOutcome outcome = default;
            if (job.Kind == EntryKind.Symlink) FileCopier.CopySymlink(job.Source, job.Destination, options);
            else outcome = FileCopier.CopyFile(job.Source, job.Destination, options, Moved(cur), _ct);

            if (_req.Move) Fs.DeleteFile(job.Source);
            Succeed(new CopyResult
            {
                Source = job.Source, Destination = job.Destination, Kind = job.Kind,
                Status = _req.Move ? CopyStatus.Moved : CopyStatus.Copied, Bytes = outcome.Bytes,
                Blake3 = outcome.Hash is null ? null : Blake3.ToHex(outcome.Hash), Duration = clock.Elapsed, Method = outcome.Method,
                Warnings = outcome.DroppedXattrs?.Select(n => $"{job.Destination}: extended attribute '{n}' not kept (refused by the destination)").ToArray(),
            });
        }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.SpecialFile)
        {
            Skip(job, e.Message);
        }
        catch (BcmrException e) { Fail(job.Source, job.Destination, job.Kind, e); }
        finally { _tracker.FinishFile(cur, Math.Max(0, job.Size - cur.Done)); }
    }

    /// <summary>What the copiers call as bytes land: progress, then the wait --bwlimit asks for (the copiers write a
    /// block, at most a kernel slice, between calls, so the rate holds to within one of those).</summary>
    private Action<long> Moved(ProgressTracker.CurrentFile cur) => _limiter is null
        ? n => _tracker.AddBytes(cur, n)
        : n => { _tracker.AddBytes(cur, n); _limiter.Wait(n, _ct); };

    /// <summary>-C/-s/-a: the streaming checkpoint copy, which decides per file whether to continue, skip or start over.</summary>
    private void CopyResumable(FileJob job, FileCopyOptions options, ProgressTracker.CurrentFile cur, Stopwatch clock)
    {
        if (job.Kind == EntryKind.Symlink)
        {
            if (Fs.TryLstat(job.Destination) is { Kind: EntryKind.Symlink } && Fs.ReadLink(job.Destination) == Fs.ReadLink(job.Source))
            {
                Skip(job, $"{job.Destination}: already complete (same symbolic link)", ResumeDecision.AlreadyComplete);
                return;
            }
            FileCopier.CopySymlink(job.Source, job.Destination, options with { Force = true });
            if (_req.Move) Fs.DeleteFile(job.Source);
            Succeed(new CopyResult
            {
                Source = job.Source, Destination = job.Destination, Kind = job.Kind,
                Status = _req.Move ? CopyStatus.Moved : CopyStatus.Copied, Duration = clock.Elapsed, Resume = ResumeDecision.Fresh,
            });
            return;
        }
        var o = ResumableCopier.Copy(job.Source, job.Destination, _req.Resume, options, _sessions!,
            Moved(cur), n => _tracker.AddKeptBytes(cur, n), _ct);
        var note = o.Note is null ? null : $"{job.Destination}: {o.Note}";
        if (o.Decision == ResumeDecision.AlreadyComplete)
        {
            if (_req.Move) Fs.DeleteFile(job.Source);
            Skip(job, note ?? $"{job.Destination}: already complete", o.Decision, o.CheckBytes, o.CheckTime, o.Compared);
            return;
        }
        if (_req.Move) Fs.DeleteFile(job.Source);
        Succeed(new CopyResult
        {
            Source = job.Source, Destination = job.Destination, Kind = job.Kind,
            Status = _req.Move ? CopyStatus.Moved : CopyStatus.Copied, Bytes = o.Bytes,
            Blake3 = o.Hash is null ? null : Blake3.ToHex(o.Hash), Duration = clock.Elapsed, Method = o.Method,
            ResumedFrom = o.ResumedFrom, Resume = o.Decision, ResumeCompared = o.Compared, ResumeCheckBytes = o.CheckBytes, ResumeCheckTime = o.CheckTime, Message = note,
            Warnings = o.DroppedXattrs?.Select(n => $"{job.Destination}: extended attribute '{n}' not kept (refused by the destination)").ToArray(),
        });
    }

    private bool TryRenameFile(FileJob job, Stopwatch clock)
    {
        try { Fs.Rename(job.Source, job.Destination, replace: _req.Force); }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.CrossDevice) { return false; }
        Succeed(new CopyResult
        {
            Source = job.Source, Destination = job.Destination, Kind = job.Kind, Status = CopyStatus.Moved,
            Bytes = job.Size, Duration = clock.Elapsed,
        });
        return true;
    }

    // ---- results -------------------------------------------------------------------------------------------

    private void Succeed(CopyResult r) => _log.Succeed(r);

    private void Skip(FileJob job, string message, ResumeDecision? resume = null, long checkBytes = 0, TimeSpan checkTime = default,
        string? compared = null)
    {
        var r = new CopyResult
        {
            Source = job.Source, Destination = job.Destination, Kind = job.Kind, Status = CopyStatus.Skipped, Message = message,
            Resume = resume, ResumeCheckBytes = checkBytes, ResumeCheckTime = checkTime, ResumeCompared = compared,
        };
        _log.Skip(r);
    }

    private void Fail(string src, string dst, EntryKind kind, BcmrException e) => _log.Fail(src, dst, kind, e);

    // ---- names -----------------------------------------------------------------------------------------------


    private static bool SamePath(string a, string b) =>
        string.Equals(Fs.RealPath(a), Fs.RealPath(b), OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase);

}
