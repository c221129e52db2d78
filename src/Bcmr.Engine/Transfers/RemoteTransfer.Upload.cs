using Bcmr.Engine.Client;
using Bcmr.Engine.Platform;
using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform.Native;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Transfers;

// Uploads: local sources, remote destination.
internal sealed partial class RemoteTransfer
{
    private sealed class UploadFile(string local, string remote, long size) : PlannedFile(size)
    {
        public string Local { get; } = local;
        public string Remote { get; } = remote;
        /// <summary>The remote name is known not to exist (inside a directory this copy creates): no checks needed.</summary>
        public bool New;
        /// <summary>The source's stat from the walk: the mtime and mode -p/--keep-times give the remote copy.</summary>
        public FileMeta? Meta;
    }

    private void Upload(ServeClient c, RemoteSpec dst)
    {
        var stat = PrefetchStats(c, dst);
        var dstStat = stat(dst.ServerPath);
        var plan = _req.PlanDestination(_req.Sources.Count, dst.ToString(), dstStat is not null, dstStat?.IsDir == true);
        if (plan == DestinationPlan.CreateDirectory && !_req.DryRun)
        {
            if (c.Call(new MkdirRequest(dst.ServerPath), _ct) is ErrorResponse e) throw ServerError(c, dst.ServerPath, e);
            _log.DirectoryCreated();
            dstStat = c.StatOrNull(dst.ServerPath, _ct);
        }
        bool dstIsDir = plan != DestinationPlan.AsNamed;

        var dirs = new List<(string Local, string Remote)>();
        var files = new List<UploadFile>();
        foreach (var src in _req.Sources)
        {
            _ct.ThrowIfCancellationRequested();
            try { PlanUpload(src, dst, dstIsDir, dstStat, stat, dirs, files); }
            catch (BcmrException e) { _log.Fail(src, dst.ToString(), EntryKind.File, e, _transport); }
        }
        if (_req.DryRun)
        {
            foreach (var f in files)
                _log.Succeed(new CopyResult { Source = f.Local, Destination = dst.WithPath(f.Remote).ToString(), Status = CopyStatus.DryRun, Bytes = f.Size, Transport = _transport });
            return;
        }
        CheckUploadTargets(c, dst, files);

        foreach (var (local, remote) in dirs)
        {
            var shown = dst.WithPath(remote).ToString();
            Request(c, new MkdirRequest(remote),
                m => { if (m is ErrorResponse e) _log.Fail(local, shown, EntryKind.Directory, ServerError(c, remote, e), _transport); else _log.DirectoryCreated(); },
                lost => _log.Fail(local, shown, EntryKind.Directory, lost, _transport));
        }
        for (int i = 0; i < files.Count; i++) files[i].Order = i;
        PlanStripes(files, c);
        var queue = new FileQueue<UploadFile>(files, largestFirst: _clients.Count > 1);
        var lost = _clients.Count > 1
            ? Spread(queue, (lane, client) => lane.SendAll(client, dst, queue))
            : SendAll(c, dst, queue);
        if (lost is not null) FailUnsent(queue, lost, f => (f.Local, dst.WithPath(f.Remote).ToString()));
        // A move removes the source directories it emptied, deepest first; any that still hold something stay.
        if (_req.Move)
            for (int i = dirs.Count - 1; i >= 0; i--) Fs.TryRemoveEmptyDirectory(dirs[i].Local);
    }

    /// <summary>Sends files from <paramref name="queue"/> over <paramref name="c"/> until it is empty or the connection
    /// is lost (then the file being sent fails by name and the rest stay queued for another connection), and waits
    /// for every reply. Returns the loss, if any.</summary>
    private BcmrException? SendAll(ServeClient c, RemoteSpec dst, FileQueue<UploadFile> queue)
    {
        // Rented by the first file that deduplicates (a large one): a process that sends small files never touches
        // 4 MiB it does not need (fresh pages are a fault each, about a tenth of a 100-file sync, bench/RESULTS.md).
        byte[]? dedupBuffer = null;
        // One hasher for the lane's files, reset for each (see Blake3Hasher.Rent).
        var hasher = Blake3Hasher.Rent();
        var encoder = new BlockEncoder(EncoderWorkers, _threads);
        try
        {
            BcmrException? lost = null;
            while (lost is null && queue.TryTake(out var f))
            {
                _ct.ThrowIfCancellationRequested();
                var shown = dst.WithPath(f.Remote).ToString();
                if (f.Refused is not null) { _log.Fail(f.Local, shown, EntryKind.File, f.Refused, _transport, order: f.Order); continue; }
                if (f.AlreadyComplete)
                {
                    _log.Skip(new CopyResult
                    {
                        Source = f.Local, Destination = shown, Status = CopyStatus.Skipped, Resume = ResumeDecision.AlreadyComplete, ResumeCompared = f.Compared,
                        Message = $"{shown}: {f.Note ?? "already complete"}", Transport = _transport,
                    }, f.Order);
                    if (_req.Move) Fs.DeleteFile(f.Local);
                    continue;
                }
                // Once the connection is gone, files already sent fail through their own replies; the one being sent
                // fails here by name, and the queue keeps the rest for another connection or for the caller to fail
                // by name, so that the summary says what is missing and a retry (--retries) can send exactly those.
                try
                {
                    if (f.Stripe is not null) SendStripe(c, dst, f, encoder);
                    else SendFile(c, dst, f, ref dedupBuffer, encoder, hasher);
                }
                catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed && !_ct.IsCancellationRequested)
                {
                    if (f.Stripe is null) _log.Fail(f.Local, shown, EntryKind.File, e, _transport, order: f.Order); // a stripe reports itself
                    lost = e;
                }
            }
            Complete(c, block: true);
            return lost;
        }
        finally
        {
            encoder.Dispose();
            if (dedupBuffer is not null) BlockBuffers.Pool.Return(dedupBuffer);
            Blake3Hasher.Return(hasher);
        }
    }

    /// <summary>
    /// Stat for planning an upload. With one source, the Stats its plan may need go out together before anything is
    /// decided: the destination, the source's name inside it (if it is a directory) and its parent (if it is a new name,
    /// whose directory must exist). Each costs a round trip when asked in turn, which is what a small upload over a
    /// distant link waits for (bench/turns.sh). A reply is read only if the plan asks for it, so an error on a path the
    /// plan does not need is never reported.
    /// </summary>
    private Func<string, StatResponse?> PrefetchStats(ServeClient c, RemoteSpec dst)
    {
        if (_req.Sources.Count != 1) return path => c.StatOrNull(path, _ct);
        var paths = new List<string> { dst.ServerPath, RemoteSpec.Parent(dst.ServerPath) };
        // The name PlanUpload will use; a source it refuses is refused there, so nothing is asked for it here.
        string? name;
        try { name = CopyRules.BaseName(_req.Sources[0]); }
        catch (BcmrException) { name = null; }
        if (name is not null && !PathBytes.HasEscapes(name)) paths.Add(RemoteSpec.Join(dst.Path, name));
        paths = paths.Distinct(StringComparer.Ordinal).ToList();
        var replies = c.CallAll(paths.Select(p => (Message)new StatRequest(p)).ToList(), _ct);
        var asked = new Dictionary<string, Message>(StringComparer.Ordinal);
        for (int i = 0; i < paths.Count; i++) asked[paths[i]] = replies[i];
        return path => asked.TryGetValue(path, out var reply) ? c.StatOrNull(path, reply) : c.StatOrNull(path, _ct);
    }

    private void PlanUpload(string src, RemoteSpec dst, bool dstIsDir, StatResponse? dstStat, Func<string, StatResponse?> stat,
        List<(string, string)> dirs, List<UploadFile> files)
    {
        // The protocol carries no links: a source named on the command line is always followed.
        var meta = Fs.TryStat(src) ?? throw new BcmrException(BcmrErrorCode.NotFound, src,
            Fs.TryLstat(src) is null ? $"{src}: No such file or directory" : $"{src}: dangling symbolic link");
        CopyRules.RequireRecursion(src, meta.Kind == EntryKind.Directory, _req.Recurses);
        if (meta.Kind is not (EntryKind.File or EntryKind.Directory))
            throw new BcmrException(BcmrErrorCode.SpecialFile, src, $"{src}: not a regular file or directory; not copied");
        var name = CopyRules.BaseName(src);
        if (_filter.Excludes(name)) return;
        if (PathBytes.HasEscapes(name)) throw NotUtf8(src);
        var target = dstIsDir ? RemoteSpec.Join(dst.Path, name) : dst.ServerPath;
        var targetStat = dstIsDir ? stat(target) : dstStat;
        CopyRules.CheckItem(src, meta.Kind == EntryKind.Directory, dst.ToString(), dstIsDir, dst.WithPath(target).ToString(), targetStat?.IsDir);
        // The server makes missing parents for what it is sent; cp does not, so a name whose directory is missing is
        // refused here, before anything is made (one Stat, only for a single source copied to a new name).
        if (!dstIsDir && targetStat is null && RemoteSpec.Parent(target) is var parent && stat(parent) is not { IsDir: true })
            throw CopyRules.MissingParent(dst.ToString(), dst.WithPath(parent).ToString());
        if (meta.Kind == EntryKind.File)
        {
            files.Add(new UploadFile(src, target, meta.Size) { New = targetStat is null });
            _tracker.AddPlanned(meta.Size);
            return;
        }
        var root = TreeNode.Root(src, name, meta);
        LocalTree.Walk(root, SymlinkPolicy.Follow, _filter, new UploadPlanner(this, target, fresh: targetStat is null, dirs, files), _ct);
    }

    /// <summary>Lists a local tree for upload, links followed (the protocol has none), parents before children.</summary>
    private sealed class UploadPlanner(RemoteTransfer owner, string target, bool fresh, List<(string, string)> dirs, List<UploadFile> files) : ITreeVisitor
    {
        private string Remote(in TreeNode node) => node.Below.Length == 0 ? target : RemoteSpec.Join(target, node.Below);

        public bool Enter(in TreeNode directory)
        {
            if (!Named(directory)) return false;
            dirs.Add((directory.Path, Remote(directory)));
            return true;
        }

        public void Leaf(in TreeNode file)
        {
            if (!Named(file)) return;
            files.Add(new UploadFile(file.Path, Remote(file), file.Size) { New = fresh, Meta = file.Meta });
            owner._tracker.AddPlanned(file.Size);
        }

        public void Skip(in TreeNode entry, TreeSkip why) => owner.SkipLocal(entry.Path, Remote(entry), entry.SkipMessage(why));

        public void Fail(in TreeNode directory, BcmrException error) =>
            owner._log.Fail(directory.Path, Remote(directory), EntryKind.Directory, error, owner._transport);

        private bool Named(in TreeNode node)
        {
            if (node.Below.Length == 0 || !PathBytes.HasEscapes(System.IO.Path.GetFileName(node.Path))) return true;
            owner._log.Fail(node.Path, Remote(node), node.Kind, NotUtf8(node.Path), owner._transport);
            return false;
        }
    }

    /// <summary>A name that is not UTF-8 (copied locally byte for byte) cannot cross the protocol, whose strings
    /// are UTF-8: that file fails by name, the rest of the tree goes.</summary>
    private static BcmrException NotUtf8(string local) =>
        new(BcmrErrorCode.InvalidArgument, local, $"{PathBytes.Printable(local)}: the name is not valid UTF-8, and names cross to a server as UTF-8 only; not copied");

    private void SkipLocal(string local, string remote, string message) =>
        _log.Skip(new CopyResult { Source = local, Destination = remote, Status = CopyStatus.Skipped, Message = message, Transport = _transport });

    /// <summary>
    /// Before any data: without -f, a destination that exists is refused (one pipelined Stat per file not known to be
    /// new); with -C/-s/-a, where each upload can continue. The server reports what it holds for the file (a partial
    /// upload, else the file under its final name) and, for -C/-s, the BLAKE3 of all of it, which must equal the
    /// hash of the source's prefix of that length (read here):
    /// <list type="bullet">
    /// <item>-a: the length is trusted: a complete file of the source's size is skipped, a shorter one continued.</item>
    /// <item>-C and -s: only proven bytes are kept: a complete file is skipped when its whole BLAKE3 matches, a
    /// shorter one is continued when its prefix's does; anything else is sent again from the start.</item>
    /// </list>
    /// Our server answers in one request (ResumeProof); a bcmr 0.6 server is asked with Stat, Resume and Hash. Every
    /// upload still ends with the whole file's BLAKE3 compared, and on our server before the file replaces anything
    /// (Commit), so a source that changes after the check costs a failed file, never a wrong one.
    /// </summary>
    private void CheckUploadTargets(ServeClient c, RemoteSpec dst, List<UploadFile> files)
    {
        var resume = _req.Resume;
        bool extended = (c.Caps & Caps.Extended) != 0;
        var sameSize = new List<UploadFile>(); // -SkipUnchanged: compared by BLAKE3 below
        var legacy = new List<(UploadFile File, long Held, bool Final)>();
        foreach (var f in files)
        {
            if (resume == ResumeMode.None)
            {
                if (f.New || (_req.Force && !_req.SkipUnchanged)) continue;
                Request(c, new StatRequest(f.Remote),
                    m =>
                    {
                        if (_req.SkipUnchanged && m is StatResponse { IsDir: false } s && (long)s.Size == f.Size) { sameSize.Add(f); return; }
                        if (!_req.Force || m is StatResponse { IsDir: true }) f.Refused = Refusal(m);
                    },
                    lost => throw lost);
                continue;

                BcmrException? Refusal(Message m) => m switch
                    {
                        StatResponse { IsDir: true } => new BcmrException(BcmrErrorCode.IsADirectory, f.Local, $"{dst.WithPath(f.Remote)}: cannot overwrite directory with non-directory '{f.Local}'"),
                        StatResponse => FileCopier.ExistsError(dst.WithPath(f.Remote).ToString()),
                        ErrorResponse e when ServerError(c, f.Remote, e) is { Code: not BcmrErrorCode.NotFound } err => err,
                        _ => null,
                    };
            }
            // Even under a directory that did not exist, a partial upload may (a first run cut before its rename).
            if (StripeCandidate(f, c))
            {
                CheckStripedUpload(c, f);
                continue;
            }
            if (extended)
            {
                ulong askAbout = resume == ResumeMode.Append ? 0 : (ulong)f.Size; // -a needs no hash
                Request(c, new ResumeProofRequest(f.Remote, askAbout), m =>
                {
                    if (m is ErrorResponse e) { f.Refused = ServerError(c, f.Remote, e); return; }
                    var r = c.Expect<ResumeProofResponse>(m, MessageType.ResumeProof);
                    DecideUploadResume(f, r.Held != ResumeProofResponse.Nothing ? (long)Math.Min(r.Size, long.MaxValue) : 0,
                        r.Held == ResumeProofResponse.Final, r.Hash);
                }, lost => throw lost);
                continue;
            }
            StatResponse? final = null;
            Request(c, new StatRequest(f.Remote), m => final = m as StatResponse, lost => throw lost);
            Request(c, new ResumeRequest(f.Remote), m =>
            {
                if (m is ErrorResponse e) { f.Refused = ServerError(c, f.Remote, e); return; }
                var r = c.Expect<ResumeResponse>(m, MessageType.Resume);
                long held = (long)Math.Min(r.Size, long.MaxValue);
                legacy.Add((f, held, final is { IsDir: false } && (long)final.Size == held));
            }, lost => throw lost);
        }
        Complete(c, block: true);
        // A bcmr 0.6 server: the hash of what it holds, asked of the final name it writes in place.
        foreach (var (f, held, isFinal) in legacy)
        {
            if (held == 0 || held > f.Size || resume == ResumeMode.Append)
            {
                DecideUploadResume(f, held, isFinal, null);
                continue;
            }
            Request(c, new HashRequest(f.Remote, 0, (ulong)held), m => DecideUploadResume(f, held, isFinal, (m as HashResponse)?.Hash),
                lost => throw lost);
        }
        if (legacy.Count > 0) Complete(c, block: true);
        // Remote times cannot be set yet, so "unchanged" on an upload is proven by the whole file's BLAKE3 on both sides.
        foreach (var f in sameSize)
        {
            var local = HashLocal(f.Local, 0, f.Size);
            Request(c, new HashRequest(f.Remote, 0, null), m =>
            {
                if (m is HashResponse h && h.Hash == Blake3.ToHex(local))
                {
                    f.AlreadyComplete = true;
                    f.Note = "unchanged (same size and BLAKE3 as the source)";
                }
                else if (!_req.Force) f.Refused = FileCopier.ExistsError(dst.WithPath(f.Remote).ToString());
            }, lost => throw lost);
        }
        if (sameSize.Count > 0) Complete(c, block: true);
    }

    /// <summary>Where an upload continues, given what the server holds for it: <paramref name="held"/> bytes (under the
    /// final name when <paramref name="isFinal"/>) whose BLAKE3 is <paramref name="remoteHash"/> (null: not asked, or
    /// not known).</summary>
    private void DecideUploadResume(UploadFile f, long held, bool isFinal, string? remoteHash)
    {
        var copy = new HeldCopy(held, isFinal);
        string holder = isFinal ? "the remote file" : "the remote partial upload";
        if (ResumePlanner.Triage(_req.Resume, f.Size, copy, holder) is { } verdict)
        {
            f.Apply(verdict);
            return;
        }
        string local;
        try { local = Blake3.ToHex(HashLocal(f.Local, 0, held)); }
        catch (BcmrException) { return; } // the copy itself meets (and reports) a source it cannot read
        bool whole = held == f.Size;
        f.Apply(ResumePlanner.FromPrefix(f.Size, copy, remoteHash == local ? held : 0, whole ? "blake3" : "blake3-prefix",
            whole ? $"{holder} differs from the source (BLAKE3); copied again"
                : $"the first {held} bytes {holder} holds differ from the source's (BLAKE3); copied again"));
    }

    /// <summary>BLAKE3 of bytes [offset, offset + count) of a local file (fewer if it ends first).</summary>
    private static byte[] HashLocal(string path, long offset, long count)
    {
        using var h = Fs.OpenRead(path);
        var hasher = Blake3Hasher.Create();
        DataCopier.HashRange(h, path, offset, count, hasher);
        return hasher.Finalize();
    }

    /// <summary>Put, the file's bytes from its offset in Data frames of up to 4 MiB, Done; the reply (and with -V the
    /// server's re-read hash) is turned into a result later, in order. This thread reads, hashes and writes every
    /// block; <paramref name="encoder"/> compresses the ones the probe wants compressed on its workers meanwhile.
    /// <paramref name="dedupBuffer"/> is the lane's block buffer for deduplicated sends, rented on first use;
    /// <paramref name="hasher"/> the lane's, reset here (nothing keeps it past this call).</summary>
    private void SendFile(ServeClient c, RemoteSpec dst, UploadFile f, ref byte[]? dedupBuffer, BlockEncoder encoder, Blake3Hasher hasher)
    {
        var shown = dst.WithPath(f.Remote).ToString();
        var clock = Stopwatch.StartNew();
        Microsoft.Win32.SafeHandles.SafeFileHandle h;
        FileMeta before;
        try
        {
            h = Fs.OpenRead(f.Local);
            before = Fs.Fstat(h, f.Local);
        }
        catch (BcmrException e)
        {
            _log.Fail(f.Local, shown, EntryKind.File, e, _transport, order: f.Order);
            return;
        }
        using (h)
        {
            long size = before.Size;
            long offset = f.Offset <= size ? f.Offset : 0;
            hasher.Reset();
            var cur = _tracker.StartFile(f.Local, size);
            BcmrException? local = null;
            long pos = 0;
            var wire = new StrongBox<long>();
            try
            {
                pos = DataCopier.HashRange(h, f.Local, 0, offset, hasher);
                if (pos < offset) throw new BcmrException(BcmrErrorCode.SourceChanged, f.Local, $"{f.Local}: shrank while being read");
                _tracker.AddKeptBytes(cur, offset);
            }
            catch (BcmrException e)
            {
                _log.Fail(f.Local, shown, EntryKind.File, e, _transport, order: f.Order);
                _tracker.FinishFile(cur, size);
                return;
            }

            // A lost connection ends this lane (the caller fails the file): it is no longer in flight.
            try
            {
                if (offset == 0 && size >= DedupThreshold && (c.Caps & Caps.Dedup) != 0)
                {
                    SendDeduplicated(c, f, shown, h, before, dedupBuffer ??= BlockBuffers.Pool.Rent(Wire.MaxBlock), encoder, hasher, cur, clock);
                    return;
                }
                var reply = new SingleReply();
                c.Send(new PutRequest(f.Remote, (ulong)size, (ulong)offset), reply, _ct);
                encoder.Begin(_probe!, hasher, Sender(c, cur, wire));
                bool finished = false;
                try
                {
                    // The last block goes out only if the file did not change meanwhile: once the server has every
                    // byte it commits, and a copy of a moving file must not be committed.
                    pos = encoder.AddFile(h, f.Local, pos, size, exact: true,
                        (block, at) => { if (at + block.Length == size) StagedFile.EnsureUnchanged(h, f.Local, before, size); }, out local);
                    // Blocks read before a local error still go (the server keeps them as the partial file).
                    encoder.Finish();
                    finished = true;
                }
                finally
                {
                    if (!finished) encoder.Abandon();
                }
                var hash = local is null ? hasher.Finalize() : null;
                // A local error always stops before the last block: the server has not got everything.
                var verify = EndPut(c, f, cur, size, Terminator(c, allSent: local is null, hash), verify: _req.Verify && local is null);
                Track(reply, () => CompleteUpload(c, f, shown, reply.Message, reply.Lost, verify, local, hash, offset, wire.Value, 0, clock));
            }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed)
            {
                _tracker.Forget(cur);
                throw;
            }
        }
    }

    /// <summary>Where the encoder hands an upload's blocks: out on <paramref name="c"/> (held to --bwlimit), counted
    /// in <paramref name="wire"/> and in the file's progress.</summary>
    private BlockSink Sender(ServeClient c, ProgressTracker.CurrentFile cur, StrongBox<long> wire) => (in EncodedBlock b) =>
    {
        int sent = c.SendEncoded(b);
        if (_limiter is { } limiter) c.OwnTime(() => limiter.Wait(sent, _ct));
        Interlocked.Add(ref wire.Value, sent); // a striped file's connections share it
        _tracker.AddBytes(cur, b.Data.Length);
    };

    /// <summary>Files this large go through dedup when the server offers it (bcmr 0.6's threshold).</summary>
    internal const long DedupThreshold = 16L * 1024 * 1024;

    /// <summary>
    /// A dedup upload (Caps.Dedup): every 4 MiB block is hashed first (one read of the file, or taken from
    /// <see cref="BlockHashPrefetch"/>, which read it while the connection was set up), Put is followed by
    /// HaveBlocks, and once the server answers MissingBlocks only the blocks it lacks are read again and sent, in
    /// order, one whole block per frame. The whole-file BLAKE3 is read and hashed while the server looks its blocks
    /// up (a repeat upload's answer takes as long as filling the file from the store); when the answer is that every
    /// block is missing (a first upload, answered at once) that start is dropped and the hash is taken from the bytes
    /// as they go out, as in any upload, so no byte is hashed twice for the file; what is left after a partial
    /// answer is read after the send. Either way the server's Ok hash covers the file it assembled, so a block that
    /// changed between the reads fails the file instead of slipping through.
    /// This upload waits for MissingBlocks: the pipeline drains for one round trip per large file.
    /// </summary>
    private void SendDeduplicated(ServeClient c, UploadFile f, string shown, Microsoft.Win32.SafeHandles.SafeFileHandle h,
        FileMeta before, byte[] buffer, BlockEncoder encoder, Blake3Hasher hasher, ProgressTracker.CurrentFile cur, Stopwatch clock)
    {
        long size = before.Size;
        int count = (int)((size + Wire.MaxBlock - 1) / Wire.MaxBlock);
        byte[] hashes;
        try
        {
            hashes = _prefetch?.TakeFor(f.Local, before, _ct) ?? BlockHashPrefetch.OfFile(h, f.Local, size, buffer);
            StagedFile.EnsureUnchanged(h, f.Local, before, size);
        }
        catch (BcmrException e)
        {
            _log.Fail(f.Local, shown, EntryKind.File, e, _transport, order: f.Order);
            _tracker.FinishFile(cur, size);
            return;
        }
        var reply = new DedupReply();
        c.Send(new PutRequest(f.Remote, (ulong)size, 0), reply, _ct);
        c.SendNoReply(new HaveBlocks((uint)Wire.MaxBlock, hashes));
        c.Flush();
        long hashedTo = 0;
        while (!reply.Answered && hashedTo < size)
        {
            int want = (int)Math.Min(Wire.MaxBlock, size - hashedTo);
            try { if (Fs.ReadFull(h, buffer.AsSpan(0, want), hashedTo, f.Local) != want) break; } // the send's checks say it
            catch (BcmrException) { break; }
            hasher.Update(buffer.AsSpan(0, want));
            hashedTo += want;
        }
        reply.WaitMissing(_ct);
        var wire = new StrongBox<long>();
        int deduplicated = 0;
        BcmrException? local = null;
        bool allSent = true;
        byte[]? hash = null;
        if (reply.Missing is { } missing)
        {
            int lastMissing = count - 1;
            while (lastMissing >= 0 && !missing.IsMissing(lastMissing)) lastMissing--;
            bool hashWhileSending = hashedTo < size && Enumerable.Range(0, count).All(missing.IsMissing);
            if (hashWhileSending && hashedTo > 0)
            {
                hasher.Reset();
                hashedTo = 0;
            }
            encoder.Begin(_probe!, hashWhileSending ? hasher : null, Sender(c, cur, wire));
            bool finished = false;
            try
            {
                for (int i = 0; i < count; i++)
                {
                    long at = (long)i * Wire.MaxBlock;
                    int want = (int)Math.Min(Wire.MaxBlock, size - at);
                    if (!missing.IsMissing(i))
                    {
                        deduplicated++;
                        _tracker.AddBytes(cur, want);
                        continue;
                    }
                    var block = encoder.NextBuffer(want);
                    try
                    {
                        if (Fs.ReadFull(h, block.AsSpan(0, want), at, f.Local) != want)
                            throw new BcmrException(BcmrErrorCode.SourceChanged, f.Local, $"{f.Local}: changed while being copied; not committed");
                    }
                    catch (BcmrException e)
                    {
                        local = e;
                        break;
                    }
                    encoder.Add(want, last: i == lastMissing);
                }
                encoder.Finish();
                finished = true;
                allSent = local is null;
                if (local is null)
                {
                    if (!hashWhileSending && DataCopier.HashRange(h, f.Local, hashedTo, size - hashedTo, hasher) < size - hashedTo)
                        throw new BcmrException(BcmrErrorCode.SourceChanged, f.Local, $"{f.Local}: changed while being copied; not committed");
                    // The server assembles the file from both reads; ours must have been of one unchanged file.
                    StagedFile.EnsureUnchanged(h, f.Local, before, size);
                    hash = hasher.Finalize();
                }
            }
            catch (BcmrException e) when (finished) { local = e; }
            finally
            {
                if (!finished) encoder.Abandon();
            }
        }
        var verify = EndPut(c, f, cur, size, Terminator(c, allSent, hash),
            verify: _req.Verify && local is null && reply.Missing is not null);
        Track(reply, () => CompleteUpload(c, f, shown, reply.Final, reply.Lost, verify, local, hash, 0, wire.Value, deduplicated, clock));
    }

    /// <summary>Ends a Put's data and, for -V, asks the server to re-read the file (its reply comes after the Put's).
    /// Our server gets the verdict (Commit with <paramref name="hash"/>, the BLAKE3 of the source as sent, or an empty
    /// one to abandon it) and replaces the final name only if it agrees; bcmr 0.6 gets Done (a Done before all bytes
    /// ends the Put with an Error and the server keeps what arrived as the partial file).</summary>
    private SingleReply? EndPut(ServeClient c, UploadFile f, ProgressTracker.CurrentFile cur, long size, Message terminator, bool verify)
    {
        c.SendNoReply(terminator);
        _tracker.FinishFile(cur, Math.Max(0, size - cur.Done));
        if (!verify) return null;
        var reply = new SingleReply();
        c.Send(new HashRequest(f.Remote, 0, null), reply, _ct);
        return reply;
    }

    /// <summary>What follows a Put's data: see <see cref="EndPut"/>. <paramref name="hash"/> null abandons a complete
    /// upload whose source changed; an incomplete one always ends with Done.</summary>
    private static Message Terminator(ServeClient c, bool allSent, byte[]? hash) =>
        (c.Caps & Caps.Extended) == 0 || !allSent ? Done.Instance
        : hash is null ? CommitRequest.Abandon
        : new CommitRequest(Blake3.ToHex(hash));

    private void CompleteUpload(ServeClient c, UploadFile f, string shown, Message? message, BcmrException? lost, SingleReply? verify,
        BcmrException? local, byte[]? hash, long offset, long wire, int deduplicated, Stopwatch clock, int connections = 1)
    {
        if (verify is not null && !verify.IsDone)
        {
            c.Flush();
            verify.WaitDone(_ct);
        }
        BcmrException? error = local ?? lost;
        if (error is null && message is ErrorResponse e) error = ServerError(c, f.Remote, e);
        if (error is null && message is not OkResponse) error = ServeClient.WrongReply(c.Remote, message!, MessageType.Put, nameof(OkResponse));
        var hex = hash is null ? null : Blake3.ToHex(hash);
        if (error is null && message is OkResponse { Hash: { } committedHash } && committedHash != hex && (c.Caps & Caps.Extended) != 0)
            error = new BcmrException(BcmrErrorCode.CorruptData, f.Local, $"{shown}: the server committed BLAKE3 {committedHash}, the source's is {hex}");
        if (error is null && message is OkResponse { Hash: { } remoteHash } && remoteHash != hex)
        {
            // Not committed as good: empty the remote copy (the protocol has no remove) and fail the file.
            c.Send(new TruncateRequest(f.Remote, 0), new SingleReply(), _ct);
            error = new BcmrException(BcmrErrorCode.CorruptData, f.Local,
                $"{shown}: BLAKE3 mismatch after upload (sent {hex}, the server wrote {remoteHash}); the remote file was emptied" +
                (offset > 0 ? $" (resumed at {offset}: rerun without -C to copy it whole)" : ""));
        }
        if (error is null && verify is not null)
        {
            var v = verify.Lost is not null ? null : verify.Message as HashResponse;
            if (verify.Lost is { } verifyLost) error = verifyLost;
            else if (v is null) error = verify.Message is ErrorResponse ve ? ServerError(c, f.Remote, ve) : ServeClient.WrongReply(c.Remote, verify.Message!, MessageType.Hash, nameof(HashResponse));
            else if (v.Hash != hex)
                error = new BcmrException(BcmrErrorCode.VerifyMismatch, f.Local, $"{shown}: verification failed: the remote file's BLAKE3 is {v.Hash}, the source's {hex}");
        }
        if (error is not null)
        {
            _log.Fail(f.Local, shown, EntryKind.File, error, _transport, wire, f.Order);
            return;
        }
        if (MetaRequest(c, f) is { } setMeta)
        {
            Request(c, setMeta, reply =>
            {
                if (reply is ErrorResponse se)
                    _log.Fail(f.Local, shown, EntryKind.File, new BcmrException(se.Code ?? BcmrErrorCode.IoError, f.Local,
                        $"{shown}: copied, but its times could not be set: {se.Text}"), _transport, wire, f.Order);
                else Succeed();
            }, lost => _log.Fail(f.Local, shown, EntryKind.File, lost, _transport, wire, f.Order));
            // This may run while the last replies are drained, after their flush: the request must not wait in the buffer.
            FlushUnlessLost(c);
        }
        else Succeed();

        void Succeed()
        {
            if (_req.Move)
            {
                try { Fs.DeleteFile(f.Local); }
                catch (BcmrException de)
                {
                    _log.Fail(f.Local, shown, EntryKind.File, de, _transport, wire, f.Order);
                    return;
                }
            }
            _log.Succeed(new CopyResult
            {
                Source = f.Local, Destination = shown, Kind = EntryKind.File, Status = _req.Move ? CopyStatus.Moved : CopyStatus.Copied,
                Bytes = f.Size, Blake3 = hex, Duration = clock.Elapsed, Transport = _transport, WireBytes = wire, ResumedFrom = offset,
                DedupBlocks = deduplicated, Connections = connections,
                Resume = ResumeOutcome(offset, f.Note), ResumeCompared = f.Compared,
                Message = f.Note is null ? null : $"{shown}: {f.Note}",
            }, f.Order);
        }
    }

    /// <summary>-p (mtime and mode) or --keep-times (mtime) for an uploaded file, when the server can set them
    /// (<see cref="Features.Tree"/>); a bcmr 0.6 server cannot, and its copies keep the time of the upload.</summary>
    private SetMetaRequest? MetaRequest(ServeClient c, UploadFile f) =>
        (_req.Preserve || _req.KeepTimes) && c.Has(Features.Tree) && f.Meta is { } m
            ? new SetMetaRequest(f.Remote, m.MtimeSec, (uint)m.MtimeNsec, _req.Preserve ? m.Mode & 0xFFFu : SetMetaRequest.KeepMode)
            : null;
}
