using Bcmr.Engine.Client;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Codecs;
using System.Collections.Concurrent;
using System.Buffers;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Transfers;

// Downloads: remote sources, local destination.
internal sealed partial class RemoteTransfer
{
    private sealed class DownloadFile(string remote, string shown, string local, long size, long mtime) : PlannedFile(size)
    {
        public string Remote { get; } = remote;
        public string Shown { get; } = shown;
        public string Local { get; } = local;
        public long Mtime { get; } = mtime;
        /// <summary>What our servers' listing adds (ListMeta): the mtime's nanoseconds and the mode; null otherwise.</summary>
        public FileMeta? Meta { get; init; }
        public uint MtimeNsec => Meta?.MtimeNsec ?? 0;
    }

    /// <summary>A reply whose data blocks the reader thread hands to the <see cref="DiskSink"/>: a whole file's
    /// (<see cref="GetReply"/>) or a striped range's (<see cref="RangeReply"/>).</summary>
    private abstract class SinkReply(DiskSink sink, long receivedFrom) : PendingReply
    {
        /// <summary>Why this reply's data is no longer stored (a bad block, more than was asked, a failed write); the rest
        /// of the reply is still consumed, so the stream stays in step.</summary>
        public volatile BcmrException? LocalError;
        /// <summary>The frame that ended the reply (Ok, Error, RangeHashes).</summary>
        public Message? Final;
        public BcmrException? Lost;
        private long _received = receivedFrom;

        /// <summary>On the sink thread: one block, in the order received.</summary>
        public abstract void Store(byte[] buffer, int length);

        /// <summary>On the sink thread: everything before it is stored; <paramref name="lost"/> when the connection was.</summary>
        public abstract void Finish(BcmrException? lost);

        /// <summary>A Data or DataCompressed frame of this reply: decoded into one of the sink's buffers and handed to the
        /// sink, unless the reply has stopped storing, the block is bad, or it would end past <paramref name="limit"/>
        /// (then <paramref name="overrun"/> is the error). The bytes it took on the wire are added to
        /// <paramref name="wire"/> and held to the bandwidth limit. False: data never ends a reply.</summary>
        protected bool Receive(in Frame frame, BandwidthLimiter? limiter, string shown, ref long wire, long limit, Func<BcmrException> overrun)
        {
            int onWire = frame.Type == MessageType.Data ? frame.Payload.Length - 4 : frame.Payload.Length - FrameWriter.DataCompressedFields;
            Interlocked.Add(ref wire, onWire);
            limiter?.Wait(onWire);
            if (LocalError is not null) return false;
            var buffer = sink.Rent(frame.DeclaredBlockLength);
            if (buffer is null) return false;
            int length;
            try
            {
                var data = frame.DecodeBlock(buffer);
                if (frame.Type == MessageType.Data) data.CopyTo(buffer);
                length = data.Length;
            }
            catch (BcmrException e)
            {
                sink.Return(buffer);
                LocalError ??= new BcmrException(BcmrErrorCode.CorruptData, shown, $"{shown}: {e.Message}", e);
                return false;
            }
            if (_received + length > limit)
            {
                sink.Return(buffer);
                LocalError ??= overrun();
                return false;
            }
            _received += length;
            sink.Post(new DiskSink.Work(this, buffer, length, null));
            return false;
        }

        /// <summary>The frame that ends the reply: kept as <see cref="Final"/>; the reply is done once the sink has
        /// stored every block before it. True.</summary>
        protected bool TakeEnd(in Frame frame)
        {
            try { Final = frame.Decode(); }
            catch (ProtocolException e) { Final = new ErrorResponse($"malformed {frame.Type} reply: {e.Message}"); }
            sink.Post(new DiskSink.Work(this, null, 0, null));
            return true;
        }

        public override void OnConnectionLost(BcmrException error) => sink.Post(new DiskSink.Work(this, null, 0, error));
    }

    /// <summary>
    /// Receives one file. The reader thread takes each Data or DataCompressed frame off the connection, decodes or
    /// copies it into one of the <see cref="DiskSink"/>'s buffers and goes back to reading; the sink's thread writes
    /// it at its place in the partial file (<see cref="Temporaries.PartialPath"/>) and hashes it. Local failures
    /// are recorded and the rest of the reply is still consumed, so the stream stays in step. The reply is done (and
    /// the calling thread commits or discards the file) only after the sink has handled everything before it.
    /// </summary>
    private sealed class GetReply(StagedFile staged, DownloadFile file, bool hash, Blake3Hasher? prefixHasher, long offset,
        ProgressTracker tracker, DiskSink sink, BandwidthLimiter? limiter) : SinkReply(sink, offset)
    {
        /// <summary>The destination's partial file: what arrived is kept there when the connection is lost.</summary>
        public StagedFile Staged { get; } = staged;
        /// <summary>The hash of the file as received, held only while it is received: a resumed file's starts with its
        /// proven prefix, any other file's is rented when its first block arrives, and each goes back for the next file
        /// as soon as the reply is done (<see cref="Finish"/>), not when the calling thread gets round to the result.
        /// A connection has up to <see cref="ServeClient.Window"/> Gets outstanding, sent in bursts of a quarter of
        /// that, so hashers held per request outnumbered the spares kept for reuse: a 10 KiB hasher allocated for most
        /// files of a tree (75 MiB for 10 000 files, most of the client's collections). Null under FAST: the server
        /// sends no hash to compare with.</summary>
        private Blake3Hasher? _hasher = prefixHasher;
        /// <summary>A resumed download's received bytes alone: after a Get at an offset bcmr 0.6 answers with their
        /// BLAKE3, where ours answers with the whole file's (the prefix was proven before the Get).</summary>
        private readonly Blake3Hasher? _suffixHasher = hash && offset > 0 ? Blake3Hasher.Create() : null;
        /// <summary>The BLAKE3 of the file as received, and of the received suffix alone (resumed files), in hex; set
        /// when the reply is done without losing the connection, null under FAST.</summary>
        public string? Hash, SuffixHash;
        /// <summary>Bytes written and hashed (by the sink thread).</summary>
        public long Position = offset;
        public long Wire;
        private ProgressTracker.CurrentFile? _cur;


        public override bool OnFrame(in Frame frame)
        {
            switch (frame.Type)
            {
                case MessageType.Data or MessageType.DataCompressed:
                    _cur ??= StartProgress();
                    return Receive(frame, limiter, file.Shown, ref Wire, file.Size, () => new BcmrException(BcmrErrorCode.SourceChanged, file.Shown,
                        $"{file.Shown}: the server sent more than the {file.Size} bytes it announced (it changed while listed)"));
                default:
                    return TakeEnd(frame);
            }
        }


        /// <summary>On the sink thread: one block in order, hashed and written slice by slice (<see cref="Fs.IoSlice"/>).</summary>
        public override void Store(byte[] buffer, int length)
        {
            if (LocalError is not null) return;
            try
            {
                if (hash) _hasher ??= Blake3Hasher.Rent();
                Staged.HashAndWrite(buffer.AsSpan(0, length), _hasher, Position);
                _suffixHasher?.Update(buffer.AsSpan(0, length));
            }
            catch (BcmrException e)
            {
                LocalError = e;
                return;
            }
            Position += length;
            tracker.AddBytes(_cur, length);
        }

        /// <summary>On the sink thread: everything before it is written; the calling thread may take the file.</summary>
        public override void Finish(BcmrException? lost)
        {
            if (lost is null && hash && Hash is null)
            {
                var hasher = _hasher ?? Blake3Hasher.Rent(); // an empty file: no block came
                Hash = Blake3.ToHex(hasher.Finalize());
                if (_suffixHasher is not null) SuffixHash = Blake3.ToHex(_suffixHasher.Finalize());
                Blake3Hasher.Return(hasher); // nothing feeds it any more
                _hasher = null;
            }
            if (lost is not null) Lost = lost;
            if (lost is null) { if (_cur is not null) tracker.FinishFile(_cur, 0); }
            else tracker.Forget(_cur);
            SetDone();
        }

        private ProgressTracker.CurrentFile StartProgress()
        {
            var cur = tracker.StartFile(file.Shown, file.Size);
            tracker.AddKeptBytes(cur, Position);
            return cur;
        }

    }

    /// <summary>
    /// The download's disk thread: writes and hashes the blocks the reader thread hands over, in order, through a few
    /// 4 MiB buffers. Without it the reader would hash and write each block before reading the next, and ssh would
    /// stall behind it for that time (measured: a 1 GiB download took 1.9 × scp).
    /// </summary>
    private sealed class DiskSink : IDisposable
    {
        internal readonly record struct Work(SinkReply Reply, byte[]? Buffer, int Length, BcmrException? Lost);

        // What the reader may have queued for the disk thread, in bytes of buffers: three blocks. Small blocks (small
        // files) get small buffers under the same budget, so the reader can run 48 files of up to 256 KiB ahead of the
        // disk instead of 3: with one 4 MiB buffer per 64 KiB file the reader stopped every third file to wait for
        // the disk, and ssh buffered the stream meanwhile (10 000 x 64 KiB download: 3.75 -> 3.5 s, bench/RESULTS.md).
        private const long BudgetBytes = 3L * Wire.MaxBlock;
        private const int SmallBuffer = 256 * 1024;
        private readonly object _lock = new();
        private readonly Stack<byte[]> _smallFree = new(), _largeFree = new();
        private long _outstanding;
        private bool _closed;
        private readonly HandoffQueue<Work> _work = new();
        private readonly Thread? _thread;

        /// <param name="inline">Write on the reader thread instead: for a download of at most one block in all, whose
        /// disk thread would overlap nothing and cost its start (~0.5 ms here) before the first request; and for the
        /// lanes of a download over several connections, which overlap one another's writes (a disk thread per lane
        /// only doubled the threads: 10 000 x 64 KiB with -P 4, 3.69 -> 3.55 s, bench/RESULTS.md).</param>
        public DiskSink(bool inline = false)
        {
            if (inline) return;
            _thread = new Thread(Run) { IsBackground = true, Name = "bcmr-download-disk" };
            _thread.Start();
        }

        /// <summary>A buffer for a block of <paramref name="length"/> bytes; waits while the budget is queued; null once
        /// the download is over. Buffers come from the shared pool as blocks arrive and go back to it at the end: a
        /// session that downloads a few small files neither allocates nor zeroes 12 MiB.</summary>
        public byte[]? Rent(int length)
        {
            bool small = length <= SmallBuffer;
            int size = small ? SmallBuffer : Wire.MaxBlock;
            lock (_lock)
            {
                while (_outstanding + size > BudgetBytes && !_closed) Monitor.Wait(_lock);
                if (_closed) return null;
                _outstanding += size;
                if ((small ? _smallFree : _largeFree).TryPop(out var ready)) return ready;
            }
            return BlockBuffers.Pool.Rent(size);
        }

        public void Return(byte[] buffer)
        {
            bool small = buffer.Length < Wire.MaxBlock;
            lock (_lock)
            {
                _outstanding -= small ? SmallBuffer : Wire.MaxBlock;
                (small ? _smallFree : _largeFree).Push(buffer);
                Monitor.PulseAll(_lock);
            }
        }

        /// <summary>Queues work (or, inline, does it); after the download is over (cancelled) there is nobody left to
        /// care, so it is dropped.</summary>
        public void Post(Work work)
        {
            if (_thread is not null)
            {
                _work.TryAdd(work);
                return;
            }
            lock (_lock)
                if (!_closed) Do(work);
        }

        private void Run()
        {
            while (_work.Take(out var w)) Do(w);
        }

        private void Do(Work w)
        {
            if (w.Buffer is not null)
            {
                w.Reply.Store(w.Buffer, w.Length);
                Return(w.Buffer);
            }
            else w.Reply.Finish(w.Lost);
        }

        public void Dispose()
        {
            _work.CompleteAdding();
            _thread?.Join();
            lock (_lock)
            {
                _closed = true;
                Monitor.PulseAll(_lock);
                foreach (var buffer in _smallFree.Concat(_largeFree)) BlockBuffers.Pool.Return(buffer);
                _smallFree.Clear();
                _largeFree.Clear();
            }
        }
    }

    private void Download(ServeClient c, List<RemoteSpec> sources, string dst)
    {
        sources = ExpandWildcards(c, sources);
        var dstMeta = Fs.TryStat(dst);
        var plan = _req.PlanDestination(sources.Count, dst, dstMeta is not null, dstMeta?.Kind == EntryKind.Directory);
        if (plan == DestinationPlan.CreateDirectory && !_req.DryRun)
        {
            Fs.MakeDirectories(dst);
            _log.DirectoryCreated();
        }
        bool dstIsDir = plan != DestinationPlan.AsNamed;

        var files = new List<DownloadFile>();
        foreach (var src in sources)
        {
            _ct.ThrowIfCancellationRequested();
            try { PlanDownload(c, src, dst, dstIsDir, files); }
            catch (BcmrException e) when (e.Code != BcmrErrorCode.ConnectionFailed) { _log.Fail(src.ToString(), dst, EntryKind.File, e, _transport); }
        }
        if (_req.DryRun)
        {
            foreach (var f in files)
                _log.Succeed(new CopyResult { Source = f.Shown, Destination = f.Local, Status = CopyStatus.DryRun, Bytes = f.Size, Transport = _transport });
            return;
        }
        CheckDownloadTargets(c, files);
        for (int i = 0; i < files.Count; i++) files[i].Order = i;
        PlanStripes(files, c);
        var queue = new FileQueue<DownloadFile>(files, largestFirst: _clients.Count > 1);
        // Written on the reader thread: by each lane of several connections (they overlap one another's writes), and
        // for a download of at most one block in all (its disk thread would overlap nothing).
        bool onReader = _clients.Count > 1 || files.Sum(f => f.Size) <= Wire.MaxBlock;
        var lost = _clients.Count > 1
            ? Spread(queue, (lane, client) => lane.ReceiveAll(client, queue, onReader))
            : ReceiveAll(c, queue, onReader);
        if (lost is not null) FailUnsent(queue, lost, f => (f.Shown, f.Local));
        if (_moved is not null) RemoveMovedSources(c);
    }

    /// <summary>A file a move from a remote host has copied: its result, reported once its source is removed.</summary>
    private readonly record struct MovedFile(DownloadFile File, CopyResult Result, bool Skipped);

    /// <summary>Reports a file copied here, or with a move keeps it for <see cref="RemoveMovedSources"/>.</summary>
    private void Downloaded(DownloadFile f, CopyResult result)
    {
        if (_moved is { } moved) moved.Enqueue(new MovedFile(f, result, Skipped: false));
        else _log.Succeed(result, f.Order);
    }

    /// <summary>
    /// The end of a move from a remote host: the source of every file that was copied, committed here and whose
    /// BLAKE3 agreed is removed on the server, but only if it is still what was listed (size and modification time,
    /// asked again now: a file rewritten on the server meanwhile stays, and its result says so); then every source
    /// directory it emptied, deepest first (one that still holds something, such as an excluded file or a link the
    /// copy skipped, stays). Requests go out together and the replies are read in order. A file whose source could
    /// not be removed fails with the reason, its copy kept here.
    /// </summary>
    private void RemoveMovedSources(ServeClient c)
    {
        var moved = _moved!.OrderBy(m => m.File.Order).ToList();
        int reported = 0;
        try
        {
            var stats = new SingleReply[moved.Count];
            for (int i = 0; i < moved.Count; i++) c.Send(new StatRequest(moved[i].File.Remote), stats[i] = new SingleReply(), _ct);
            c.Flush();
            var removes = new SingleReply?[moved.Count];
            for (int i = 0; i < moved.Count; i++)
            {
                stats[i].WaitDone(_ct);
                var f = moved[i].File;
                if (stats[i].Message is StatResponse { IsDir: false } now && (long)now.Size == f.Size && now.Mtime == f.Mtime)
                    c.Send(new Protocol.RemoveRequest(f.Remote, Recursive: false), removes[i] = new SingleReply(), _ct);
            }
            c.Flush();
            for (; reported < moved.Count; reported++)
            {
                var (f, result, skipped) = moved[reported];
                string? why = null;
                if (removes[reported] is not { } remove)
                    why = stats[reported].Lost?.Message ?? (stats[reported].Message is ErrorResponse e ? e.Text : "it changed on the server after it was listed");
                else
                {
                    remove.WaitDone(_ct);
                    if (remove.Lost is { } lostRemove) why = lostRemove.Message;
                    else if (remove.Message is ErrorResponse e) why = e.Text;
                }
                if (why is null && skipped) _log.Skip(result, f.Order);
                else if (why is null) _log.Succeed(result with { Status = CopyStatus.Moved }, f.Order);
                else NotRemoved(f, result, why);
            }
        }
        catch (BcmrException e)
        {
            for (; reported < moved.Count; reported++) NotRemoved(moved[reported].File, moved[reported].Result, e.Message);
            return;
        }
        // Deepest first; a directory that still holds something stays, as with a local move.
        var dirs = _sourceDirectories.OrderByDescending(d => d.Count(ch => ch == '/')).ThenByDescending(d => d, StringComparer.Ordinal).ToList();
        var replies = new SingleReply[dirs.Count];
        try
        {
            for (int i = 0; i < dirs.Count; i++) c.Send(new Protocol.RemoveRequest(dirs[i], Recursive: false), replies[i] = new SingleReply(), _ct);
            c.Flush();
            foreach (var r in replies) r.WaitDone(_ct);
        }
        catch (BcmrException) { } // directories only: every file has its result already
    }

    private void NotRemoved(DownloadFile f, CopyResult result, string why) =>
        _log.Fail(result with
        {
            Status = CopyStatus.Failed, ErrorCode = BcmrErrorCode.SourceChanged,
            Message = $"{f.Shown}: copied to {f.Local}, but its source was not removed: {why}",
        }, f.Order);

    /// <summary>What one of several connections may have asked for and not yet received, in bytes: past it, the
    /// connection waits for its oldest file before taking another, so that a connection busy with a large file leaves
    /// the next ones to its siblings instead of queueing them behind it.</summary>
    private const long LaneBacklog = 16L * 1024 * 1024;

    /// <summary>Asks for files from <paramref name="queue"/> over <paramref name="c"/> until it is empty or the
    /// connection is lost (then the file being asked for fails by name and the rest stay queued), and waits for
    /// every reply. Returns the loss, if any.</summary>
    private BcmrException? ReceiveAll(ServeClient c, FileQueue<DownloadFile> queue, bool writeOnReader)
    {
        using var sink = new DiskSink(inline: writeOnReader);
        _sink = sink;
        BcmrException? lost = null;
        while (lost is null && queue.TryTake(out var f))
        {
            _ct.ThrowIfCancellationRequested();
            if (f.Refused is not null) { _log.Fail(f.Shown, f.Local, EntryKind.File, f.Refused, _transport, order: f.Order); continue; }
            if (f.AlreadyComplete)
            {
                var skipped = new CopyResult
                {
                    Source = f.Shown, Destination = f.Local, Status = CopyStatus.Skipped, Resume = ResumeDecision.AlreadyComplete, ResumeCompared = f.Compared,
                    Message = $"{f.Local}: {f.Note ?? "already complete"}", Transport = _transport,
                };
                if (_moved is { } moved) moved.Enqueue(new MovedFile(f, skipped, Skipped: true)); // its copy is here: the source goes
                else _log.Skip(skipped, f.Order);
                continue;
            }
            try
            {
                if (f.Stripe is not null) ReceiveStripe(c, f);
                else RequestFile(c, f);
            }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed && !_ct.IsCancellationRequested)
            {
                if (f.Stripe is null) _log.Fail(f.Shown, f.Local, EntryKind.File, e, _transport, order: f.Order); // a stripe reports itself
                lost = e;
            }
            if (_clients.Count > 1) CompleteDownTo(c, LaneBacklog);
        }
        Complete(c, block: true);
        return lost;
    }

    /// <summary>host:dir/*.log: the server has no wildcards, so the parent is listed and the last component matched
    /// here (*, ?, [...] as in a shell; names starting with '.' only by a pattern starting with '.').</summary>
    private List<RemoteSpec> ExpandWildcards(ServeClient c, List<RemoteSpec> sources)
    {
        var result = new List<RemoteSpec>();
        foreach (var src in sources)
        {
            var path = src.Path.TrimEnd('/');
            int slash = path.LastIndexOf('/');
            var last = path[(slash + 1)..];
            if (last.IndexOfAny(['*', '?', '[']) < 0) { result.Add(src); continue; }
            var parent = RemoteSpec.Parent(path);
            var listing = c.Call(new ListRequest(parent), _ct);
            if (listing is ErrorResponse e) throw ServerError(c, parent, e);
            var rx = new Regex(Wildcard.ShellToRegex(last), RegexOptions.CultureInvariant);
            var matches = c.Expect<ListResponse>(listing, MessageType.List).Entries
                .Where(en => !en.Path.Contains('/') && rx.IsMatch(en.Path) && (!en.Path.StartsWith('.') || last.StartsWith('.')))
                .Select(en => src.WithPath(slash < 0 ? en.Path : RemoteSpec.Join(parent, en.Path)))
                .ToList();
            if (matches.Count == 0)
                _log.Fail(src.ToString(), _req.Destination, EntryKind.File, new BcmrException(BcmrErrorCode.NotFound, src.ToString(), $"{src}: no match"), _transport);
            result.AddRange(matches);
        }
        return result;
    }

    private void PlanDownload(ServeClient c, RemoteSpec src, string dst, bool dstIsDir, List<DownloadFile> files)
    {
        var stat = c.Call(new StatRequest(src.ServerPath), _ct) switch
        {
            StatResponse s => s,
            ErrorResponse e => throw ServerError(c, src.ServerPath, e),
            var m => throw ServeClient.WrongReply(c.Remote, m, MessageType.Stat, nameof(StatResponse)),
        };
        CopyRules.RequireRecursion(src.ToString(), stat.IsDir, _req.Recurses);
        var name = src.BaseName();
        if (_filter.Excludes(name)) return;
        var target = dstIsDir ? Path.Join(dst, name) : dst;
        var targetMeta = Fs.TryStat(target);
        CopyRules.CheckItem(src.ToString(), stat.IsDir, dst, dstIsDir, target, targetMeta is null ? null : targetMeta.Value.Kind == EntryKind.Directory);
        if (!stat.IsDir)
        {
            if (Fs.TryStat(FileCopier.ParentOf(target)) is not { Kind: EntryKind.Directory })
                throw CopyRules.MissingParent(target, FileCopier.ParentOf(target));
            files.Add(new DownloadFile(src.ServerPath, src.ToString(), target, (long)stat.Size, stat.Mtime));
            _tracker.AddPlanned((long)stat.Size);
            return;
        }
        var root = new TreeNode(src.ServerPath, name, "", EntryKind.Directory, 0, stat.Mtime);
        RemoteTree.Walk(c, src, root, _filter, new DownloadPlanner(this, src, target, files), _ct);
    }

    /// <summary>Makes each directory of a remote tree here as it is listed, and lists its files for the download.</summary>
    private sealed class DownloadPlanner(RemoteTransfer owner, RemoteSpec src, string target, List<DownloadFile> files) : ITreeVisitor
    {
        public bool Enter(in TreeNode directory)
        {
            if (owner._req.Move) owner._sourceDirectories.Add(directory.Path);
            var local = directory.Under(target);
            if (directory.Below.Length == 0)
            {
                owner.MakeLocalDirectory(local); // the item itself: a failure fails the whole item
                return true;
            }
            try { owner.MakeLocalDirectory(local); }
            catch (BcmrException e)
            {
                owner._log.Fail(src.WithPath(directory.Path).ToString(), local, EntryKind.Directory, e, owner._transport);
                return false;
            }
            return true;
        }

        public void Leaf(in TreeNode file)
        {
            files.Add(new DownloadFile(file.Path, src.WithPath(file.Path).ToString(), file.Under(target), file.Size, file.MtimeSec) { Meta = file.Meta });
            owner._tracker.AddPlanned(file.Size);
        }

        public void Skip(in TreeNode entry, TreeSkip why) { }

        public void Fail(in TreeNode entry, BcmrException error)
        {
            if (entry.Below.Length == 0) throw error;
            owner._log.Fail(src.WithPath(entry.Path).ToString(), target, entry.Kind, error, owner._transport);
        }
    }

    private void MakeLocalDirectory(string dir)
    {
        try
        {
            Fs.MakeDirectory(dir, 0x1FF);
            _log.DirectoryCreated();
        }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists)
        {
            if (Fs.TryStat(dir) is not { Kind: EntryKind.Directory })
                throw new BcmrException(BcmrErrorCode.NotADirectory, dir, $"{dir}: exists and is not a directory");
        }
    }

    /// <summary>
    /// Without -f an existing destination is refused. With -C/-s/-a a partial file left by an interrupted download
    /// (<see cref="Temporaries.PartialPath"/>) is continued, or a destination that already holds the whole file is
    /// skipped, once proven: -a by length alone; -C by the same size and modification time as the source (the protocol
    /// carries whole seconds; our downloads set it), else, as -s always, by the BLAKE3 of everything held compared with
    /// the server's hash of the source's prefix of that length (one Hash request; the server reads as much as we
    /// hold). Bytes that are not proven are not kept. The server's BLAKE3 at the end still checks the assembled file.
    /// </summary>
    private void CheckDownloadTargets(ServeClient c, List<DownloadFile> files)
    {
        foreach (var f in files)
        {
            var existing = Fs.TryLstat(f.Local);
            if (existing is { Kind: EntryKind.Directory })
            {
                f.Refused = new BcmrException(BcmrErrorCode.IsADirectory, f.Local, $"{f.Local}: cannot overwrite directory with non-directory '{f.Shown}'");
                continue;
            }
            if (_req.Resume == ResumeMode.None)
            {
                // The protocol carries whole seconds: an unchanged copy is the same size, modified the same second.
                if (_req.SkipUnchanged && existing is { Kind: EntryKind.File } e0 && e0.Size == f.Size && e0.MtimeSec == f.Mtime)
                {
                    f.AlreadyComplete = true;
                    f.Note = "unchanged (same size and modification time as the source)";
                }
                else if (existing is not null && !_req.Force) f.Refused = FileCopier.ExistsError(f.Local);
                continue;
            }
            var partial = Temporaries.PartialPath(f.Local);
            var held = Fs.TryLstat(partial) is { Kind: EntryKind.File } p && p.Size > 0 ? (Path: partial, Size: p.Size)
                : existing is { Kind: EntryKind.File } e && e.Size > 0 ? (Path: f.Local, Size: e.Size)
                : (Path: (string?)null, Size: 0L);
            if (held.Path is null) continue;
            bool whole = held.Path == f.Local;
            if (!whole && StripeCandidate(f, c))
            {
                CheckStripedDownload(c, f, held.Path, held.Size);
                continue;
            }
            var copy = new HeldCopy(held.Size, whole, whole && existing is { } ex && ex.MtimeSec == f.Mtime && ex.MtimeNsec == f.MtimeNsec);
            string holder = whole ? "the local file" : "the local partial file";
            // A download writes into its partial file only, so a shorter file under the final name is not continued.
            if (ResumePlanner.Triage(_req.Resume, f.Size, copy, holder, canContinueFinal: false) is { } verdict)
            {
                f.Apply(verdict);
                continue;
            }
            string compared = whole ? "blake3" : "blake3-prefix";
            byte[] localHash;
            try { localHash = HashLocal(held.Path, 0, held.Size); }
            catch (BcmrException) { continue; }
            var expected = Blake3.ToHex(localHash);
            var heldPath = held.Path;
            Request(c, new HashRequest(f.Remote, 0, (ulong)held.Size), m =>
            {
                if (m is ErrorResponse e) { f.Refused = ServerError(c, f.Remote, e); return; }
                bool equal = m is HashResponse h && h.Hash == expected;
                f.Apply(ResumePlanner.FromPrefix(f.Size, copy, equal ? held.Size : 0, compared,
                    $"the bytes held in {heldPath} do not match the source (BLAKE3 of the first {held.Size} bytes); copied again"));
            }, lost => throw lost);
        }
        Complete(c, block: true);
    }

    /// <summary>-p: the source's mode (when the listing carried it) and mtime; --keep-times: the mtime. To the
    /// nanosecond when the listing carried it (ListMeta), else the whole second the protocol has.</summary>
    private void KeepSourceMeta(StagedFile staged, DownloadFile f)
    {
        if (_req.Preserve && f.Meta is { } m) staged.SetMode(m.Mode);
        if (_req.Preserve || _req.KeepTimes)
            staged.SetTimes(new FileMeta(EntryKind.File, f.Size, 0, f.Mtime, f.MtimeNsec, f.Mtime, f.MtimeNsec, 0, 0, 0, 0, 0));
    }

    private void RequestFile(ServeClient c, DownloadFile f)
    {
        var clock = Stopwatch.StartNew();
        StagedFile? staged = null;
        // Under FAST the server's Ok carries no hash, so a running hash here would have nothing to be compared with;
        // -V instead re-reads the file and compares it with the server's Hash of the source.
        bool fast = (c.Caps & Caps.Fast) != 0;
        // A resumed file's hash starts with its prefix, proven here; any other file's hasher is taken when its data comes.
        var hasher = fast || f.Offset == 0 ? null : Blake3Hasher.Rent();
        try
        {
            staged = StagedFile.OpenPartial(f.Local, 0x1B6);
            if (hasher is not null && DataCopier.HashRange(staged.Handle, staged.Path, 0, f.Offset, hasher) != f.Offset)
            {
                f.Offset = 0;
                hasher.Reset();
            }
            staged.SetLength(f.Offset);
        }
        catch (BcmrException e)
        {
            // A partial we could not prepare is left as it was for a later run.
            staged?.Keep();
            staged?.Dispose();
            _log.Fail(f.Shown, f.Local, EntryKind.File, e, _transport, order: f.Order);
            return;
        }
        var reply = new GetReply(staged, f, !fast, hasher, f.Offset, _tracker, _sink!, _limiter);
        SingleReply? sourceHash = null;
        try
        {
            c.Send(new GetRequest(f.Remote, (ulong)f.Offset), reply, _ct);
            if (fast && _req.Verify) c.Send(new HashRequest(f.Remote, 0, null), sourceHash = new SingleReply(), _ct);
        }
        catch
        {
            staged.Keep();
            staged.Dispose();
            throw;
        }
        Track(reply, () => CompleteDownload(c, f, reply, sourceHash, clock), f.Remaining);
    }

    /// <summary>-V under FAST: the file as read back against the server's BLAKE3 of the source.</summary>
    private BcmrException? SourceHashMismatch(ServeClient c, DownloadFile f, SingleReply sourceHash, string reread)
    {
        c.Flush();
        sourceHash.WaitDone(_ct);
        if (sourceHash.Lost is { } lost) return lost;
        return sourceHash.Message switch
        {
            HashResponse h when h.Hash == reread => null,
            HashResponse h => new BcmrException(BcmrErrorCode.VerifyMismatch, f.Local, $"{f.Local}: verification failed: read back {reread}, the source's BLAKE3 is {h.Hash}; removed"),
            ErrorResponse e => ServeClient.ServerError(c.Remote, f.Remote, e),
            var m => new BcmrException(BcmrErrorCode.ConnectionFailed, f.Shown, $"{f.Shown}: unexpected {m?.Type} reply"),
        };
    }

    private void CompleteDownload(ServeClient c, DownloadFile f, GetReply r, SingleReply? sourceHash, Stopwatch clock)
    {
        using var staged = r.Staged;
        BcmrException? error = r.Lost;
        if (error is not null)
        {
            // Keep what arrived for -C: the partial holds exactly the bytes written, in order.
            try { staged.Keep(r.Position); } catch (BcmrException) { }
            _log.Fail(f.Shown, f.Local, EntryKind.File, new BcmrException(error.Code, f.Local,
                $"{error.Message}; {r.Position} bytes of {f.Local} kept in {staged.Path} (rerun with -C to continue)", error), _transport, r.Wire, f.Order);
            return;
        }
        error = r.LocalError;
        if (error is null && r.Final is ErrorResponse e) error = ServeClient.ServerError(c.Remote, f.Remote, e);
        if (error is null && r.Final is not OkResponse) error = new BcmrException(BcmrErrorCode.ConnectionFailed, f.Shown, $"{f.Shown}: unexpected {r.Final?.Type} reply");
        if (error is null && r.Position != f.Size)
            error = new BcmrException(BcmrErrorCode.SourceChanged, f.Shown, $"{f.Shown}: received {r.Position} bytes, the listing said {f.Size} (it changed meanwhile); not committed");
        var hex = r.Hash;
        if (error is null && hex is not null && r.Final is OkResponse { Hash: { } remoteHash } && remoteHash != hex && remoteHash != r.SuffixHash)
            error = new BcmrException(BcmrErrorCode.CorruptData, f.Shown,
                $"{f.Local}: BLAKE3 mismatch after download (received {hex}, the server read {remoteHash}); removed" +
                (f.Offset > 0 ? $" (resumed at {f.Offset}: rerun without -C to copy it whole)" : ""));
        try
        {
            if (error is null && _req.Verify)
            {
                var reread = Blake3.ToHex(staged.ReadBack(r.Position, CancellationToken.None, _threads));
                if (hex is not null && reread != hex)
                    error = new BcmrException(BcmrErrorCode.VerifyMismatch, f.Local, $"{f.Local}: verification failed: read back {reread}, received {hex}; removed");
                else if (hex is null)
                {
                    error = SourceHashMismatch(c, f, sourceHash!, reread);
                    hex = reread;
                }
            }
            if (error is null)
            {
                KeepSourceMeta(staged, f);
                staged.Commit(replace: _req.Force || _req.Resume != ResumeMode.None, flush: _req.Sync, flushDirectory: _req.Sync);
            }
        }
        catch (BcmrException e2) { error = e2; }
        catch (OperationCanceledException)
        {
            staged.Keep(); // every byte arrived: a rerun with -C proves and keeps them
            throw;
        }
        if (error is not null)
        {
            staged.Abandon();
            _log.Fail(f.Shown, f.Local, EntryKind.File, staged.ForDestination(error), _transport, r.Wire, f.Order);
            return;
        }
        Downloaded(f, new CopyResult
        {
            Source = f.Shown, Destination = f.Local, Kind = EntryKind.File, Status = CopyStatus.Copied, Bytes = f.Size,
            Blake3 = hex, Duration = clock.Elapsed, Transport = _transport, WireBytes = r.Wire, ResumedFrom = f.Offset,
            Resume = ResumeOutcome(f.Offset, f.Note), ResumeCompared = f.Compared,
            Message = f.Note is null ? null : $"{f.Local}: {f.Note}",
        });
    }
}
