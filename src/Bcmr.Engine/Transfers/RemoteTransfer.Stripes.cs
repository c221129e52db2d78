using System.Diagnostics;
using System.Runtime.CompilerServices;
using Bcmr.Engine.Client;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Transfers;

// Striping: one large file cut into 4 MiB-aligned ranges that the connections of --parallel N carry side by side.
internal sealed partial class RemoteTransfer
{
    /// <summary>
    /// One file carried by several connections: its ranges (runs of the blocks still to move, at most
    /// <see cref="RangeBlocks"/> blocks each), taken by whichever connection asks next, and the chaining value of every
    /// block, each proven equal on both sides as its range completes (RangeHashes), from which the whole-file BLAKE3
    /// is merged without reading the file again. The file is finished (assembled on the server, or committed here)
    /// by the connection that settles its last range; any range that fails fails the file, and what arrived is kept for
    /// -C, which compares block by block (holes and half-written blocks included) and moves only the rest.
    /// </summary>
    private sealed class Stripe
    {
        /// <summary>Blocks per range: 16 MiB, small enough that the connections finish a file together, large
        /// enough that a range is many frames.</summary>
        public const int RangeBlocks = 4;
        private const int BlockSize = BlockLedger.BlockSize;

        private readonly List<(long Offset, long Length)> _ranges = new();
        private readonly object _lock = new();
        private int _next, _resolved;
        private bool _opened, _finished;
        private BcmrException? _error;

        /// <summary>The chaining value of each block: kept ones from the start, the others as their ranges complete.</summary>
        public byte[]?[] Values { get; }
        public long Size { get; }
        /// <summary>Bytes of the file that were held and proven before this run (not moved).</summary>
        public long Kept { get; }
        public StrongBox<long> Wire { get; } = new();
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public ProgressTracker.CurrentFile? Progress;
        /// <summary>Uploads: the source, open for every connection's reads, and what it was when opened.</summary>
        public SafeFileHandle? Source;
        public FileMeta Before;
        /// <summary>Downloads: the destination's partial file, written by every connection's disk thread.</summary>
        public StagedFile? Staged;

        public Stripe(long size, byte[]?[]? kept)
        {
            Size = size;
            int blocks = (int)((size + BlockSize - 1) / BlockSize);
            Values = kept is { Length: var n } && n == blocks ? (byte[]?[])kept.Clone() : new byte[]?[blocks];
            Kept = KeptBytes(Values, size);
            for (int i = 0; i < blocks;)
            {
                if (Values[i] is not null) { i++; continue; }
                int start = i;
                while (i < blocks && Values[i] is null && i - start < RangeBlocks) i++;
                long offset = (long)start * BlockSize;
                _ranges.Add((offset, Math.Min((long)i * BlockSize, size) - offset));
            }
        }

        /// <summary>Bytes in the blocks that have a value.</summary>
        public static long KeptBytes(byte[]?[] values, long size)
        {
            long bytes = 0;
            for (int i = 0; i < values.Length; i++)
                if (values[i] is not null) bytes += Math.Min(BlockSize, size - (long)i * BlockSize);
            return bytes;
        }

        public BcmrException? Error { get { lock (_lock) return _error; } }

        /// <summary>Ranges are left for a connection to take (and nothing has failed).</summary>
        public bool HasRanges { get { lock (_lock) return _error is null && _next < _ranges.Count; } }

        /// <summary>Runs <paramref name="open"/> once, for the first connection to join; a failure fails the file.</summary>
        public void Prepare(Action open)
        {
            lock (_lock)
            {
                if (_opened) return;
                _opened = true;
                try { open(); }
                catch (BcmrException e) { _error ??= e; }
            }
        }

        private readonly HashSet<ServeClient> _carriers = new();

        /// <summary>Connections that took ranges of the file.</summary>
        public int Connections { get { lock (_lock) return Math.Max(1, _carriers.Count); } }

        public bool TryTake(ServeClient carrier, out long offset, out long length)
        {
            lock (_lock)
            {
                if (_error is null && _next < _ranges.Count)
                {
                    _carriers.Add(carrier);
                    (offset, length) = _ranges[_next++];
                    return true;
                }
            }
            offset = length = 0;
            return false;
        }

        /// <summary>Records the outcome of a range taken (<paramref name="range"/>), or of a connection leaving the
        /// file; true exactly once, for the caller that must finish the file: every range taken has settled, and
        /// either all were taken or one failed.</summary>
        public bool Settle(BcmrException? error, bool range)
        {
            lock (_lock)
            {
                if (range) _resolved++;
                _error ??= error;
                if (_finished || _resolved != _next || (_error is null && _next < _ranges.Count)) return false;
                _finished = true;
                return true;
            }
        }

        /// <summary>Stores a completed range's values (each proven equal on both sides).</summary>
        public void Record(long offset, IReadOnlyList<byte[]> values)
        {
            int first = (int)(offset / BlockSize);
            for (int i = 0; i < values.Count; i++) Values[first + i] = values[i];
        }

        /// <summary>The whole file's BLAKE3, merged from every block's value.</summary>
        public byte[] FileHash() => BlockChainingValues.FileHash(Values.Select(v => v!).ToList());
    }

    /// <summary>Whether <paramref name="f"/> goes over several connections at once: our server, more than one
    /// connection, and at least <see cref="EngineSettings.StripeMinimum"/> bytes.</summary>
    private bool StripeCandidate(PlannedFile f, ServeClient c) =>
        _clients.Count > 1 && (c.Caps & Caps.Extended) != 0 && f.Size >= _req.Settings.StripeMinimum && f.Size > BlockLedger.BlockSize;

    /// <summary>Gives every file that qualifies its stripe, after the resume checks decided what is kept.</summary>
    private void PlanStripes(IEnumerable<PlannedFile> files, ServeClient c)
    {
        foreach (var f in files)
            if (f.Refused is null && !f.AlreadyComplete && StripeCandidate(f, c)) f.Stripe = new Stripe(f.Size, f.KeptBlocks);
    }

    /// <summary>A striped resume's decision: the blocks whose values are equal on both sides are kept.</summary>
    private static void KeepMatchingBlocks(PlannedFile f, IReadOnlyList<byte[]> ours, byte[] theirs, HeldCopy held, string holder)
    {
        var kept = new byte[]?[ours.Count];
        for (int i = 0; i < ours.Count && (i + 1) * BlockLedger.HashSize <= theirs.Length; i++)
            if (theirs.AsSpan(i * BlockLedger.HashSize, BlockLedger.HashSize).SequenceEqual(ours[i])) kept[i] = ours[i];
        f.Apply(ResumePlanner.FromBlocks(f.Size, held, kept, holder));
    }

    /// <summary>The chaining value of every block of a local file (its first <paramref name="size"/> bytes).</summary>
    private static IReadOnlyList<byte[]> LocalBlockValues(string path, long size)
    {
        using var h = Fs.OpenRead(path);
        var buffer = Codecs.BlockBuffers.Pool.Rent(BlockLedger.BlockSize);
        try { return BlockChainingValues.OfFile(h, path, 0, size, buffer); }
        finally { Codecs.BlockBuffers.Pool.Return(buffer); }
    }

    private static bool SameValues(RangeHashes reply, long offset, IReadOnlyList<byte[]> ours)
    {
        if (reply.Offset != (ulong)offset || reply.Values.Length != ours.Count * BlockLedger.HashSize) return false;
        for (int i = 0; i < ours.Count; i++)
            if (!reply.Values.AsSpan(i * BlockLedger.HashSize, BlockLedger.HashSize).SequenceEqual(ours[i])) return false;
        return true;
    }

    private static string KeptForResume(BcmrException e, string where) =>
        $"{e.Message}; the blocks that arrived are kept {where} (rerun with -C to move only the missing ones)";

    // ---- uploads --------------------------------------------------------------------------------------------------

    /// <summary>-C/-s/-a on a file that will be striped: what the server holds for it (the partial upload, else the
    /// file), compared with the source block by block.</summary>
    private void CheckStripedUpload(ServeClient c, UploadFile f)
    {
        Request(c, new BlockHashesRequest(f.Remote, BlockHashesRequest.Upload), m =>
        {
            if (m is ErrorResponse e) { f.Refused = ServerError(c, f.Remote, e); return; }
            var r = c.Expect<BlockHashesResponse>(m, MessageType.BlockHashes);
            if (r.Held == ResumeProofResponse.Nothing) return;
            IReadOnlyList<byte[]> ours;
            try { ours = LocalBlockValues(f.Local, f.Size); }
            catch (BcmrException le) { f.Refused = le; return; }
            bool final = r.Held == ResumeProofResponse.Final;
            KeepMatchingBlocks(f, ours, r.Values, new HeldCopy((long)Math.Min(r.Size, long.MaxValue), final),
                final ? "the remote file" : "the remote partial upload");
        }, lost => throw lost);
    }

    /// <summary>Sends ranges of a striped file over <paramref name="c"/> while it has any; whichever connection settles
    /// the last range finishes the file.</summary>
    private void SendStripe(ServeClient c, RemoteSpec dst, UploadFile f, BlockEncoder encoder)
    {
        var s = f.Stripe!;
        s.Prepare(() =>
        {
            s.Source = Fs.OpenRead(f.Local);
            s.Before = Fs.Fstat(s.Source, f.Local);
            if (s.Before.Size != f.Size)
                throw new BcmrException(BcmrErrorCode.SourceChanged, f.Local, $"{f.Local}: changed since it was listed ({f.Size} -> {s.Before.Size} bytes); not copied");
            s.Progress = _tracker.StartFile(f.Local, f.Size);
            _tracker.AddKeptBytes(s.Progress, s.Kept);
        });
        while (s.TryTake(c, out long offset, out long length))
        {
            try { SendRange(c, dst, f, offset, length, encoder); }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed)
            {
                if (s.Settle(e, range: true)) FinishUploadStripe(c, dst, f);
                throw;
            }
        }
        if (s.Settle(null, range: false)) FinishUploadStripe(c, dst, f);
    }

    /// <summary>PutChunked and the range's blocks, read from the shared source at their offsets; the reply's values
    /// are compared with ours later, in order.</summary>
    private void SendRange(ServeClient c, RemoteSpec dst, UploadFile f, long offset, long length, BlockEncoder encoder)
    {
        var s = f.Stripe!;
        var reply = new SingleReply();
        c.Send(new PutChunkedRequest(f.Remote, (ulong)offset, (ulong)length), reply, _ct);
        var values = new BlockChainingValues(offset);
        BcmrException? local = null;
        long pos = offset, end = offset + length;
        encoder.Begin(_probe!, null, Sender(c, s.Progress!, s.Wire));
        bool finished = false;
        try
        {
            pos = encoder.AddFile(s.Source!, f.Local, pos, end, exact: true, (block, _) => values.Update(block), out local);
            encoder.Finish();
            finished = true;
        }
        finally
        {
            if (!finished) encoder.Abandon();
        }
        // A range cut short by a local error ends with Done: the server answers it with an Error and goes on.
        if (local is not null) c.SendNoReply(Done.Instance);
        var ours = values.Finish();
        Track(reply, () =>
        {
            var error = local ?? reply.Lost ?? reply.Message switch
            {
                RangeHashes r when SameValues(r, offset, ours) => null,
                RangeHashes => new BcmrException(BcmrErrorCode.CorruptData, f.Local,
                    $"{dst.WithPath(f.Remote)}: the range at byte {offset} was written differently from the source (its blocks' BLAKE3 differ)"),
                ErrorResponse e => ServerError(c, f.Remote, e),
                var m => ServeClient.WrongReply(c.Remote, m!, MessageType.PutChunked, nameof(RangeHashes)),
            };
            if (error is null) s.Record(offset, ours);
            if (s.Settle(error, range: true)) FinishUploadStripe(c, dst, f);
        });
    }

    /// <summary>Every range settled: the source is checked unchanged and the file assembled on the server (Assemble;
    /// with -V re-read there), or the failure reported.</summary>
    private void FinishUploadStripe(ServeClient c, RemoteSpec dst, UploadFile f)
    {
        var s = f.Stripe!;
        var shown = dst.WithPath(f.Remote).ToString();
        var error = s.Error;
        byte[]? hash = null;
        try
        {
            if (error is null && s.Source is not null) StagedFile.EnsureUnchanged(s.Source, f.Local, s.Before, f.Size);
            if (error is null) hash = s.FileHash();
        }
        catch (BcmrException e) { error = e; }
        finally { s.Source?.Dispose(); }
        if (error is null)
        {
            try
            {
                var reply = new SingleReply();
                c.Send(new AssembleRequest(f.Remote, (ulong)f.Size), reply, _ct);
                SingleReply? verify = null;
                if (_req.Verify) c.Send(new HashRequest(f.Remote, 0, null), verify = new SingleReply(), _ct);
                c.Flush();
                _tracker.FinishFile(s.Progress, 0);
                Track(reply, () => CompleteUpload(c, f, shown, reply.Message, reply.Lost, verify, null, hash, s.Kept, s.Wire.Value, 0, s.Clock, s.Connections));
                return;
            }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed) { error = e; }
        }
        _tracker.FinishFile(s.Progress, Math.Max(0, f.Size - (s.Progress?.Done ?? 0)));
        var reported = error.Code == BcmrErrorCode.SourceChanged ? error
            : new BcmrException(error.Code, f.Local, KeptForResume(error, "on the server"), error);
        _log.Fail(f.Local, shown, EntryKind.File, reported, _transport, s.Wire.Value, f.Order);
    }

    // ---- downloads ------------------------------------------------------------------------------------------------

    /// <summary>-C/-s/-a on a file that will be striped, with a partial file here: its blocks compared with the
    /// source's (BlockHashes) one by one.</summary>
    private void CheckStripedDownload(ServeClient c, DownloadFile f, string partial, long held)
    {
        IReadOnlyList<byte[]> ours;
        try { ours = LocalBlockValues(partial, Math.Min(held, f.Size)); }
        catch (BcmrException) { return; }
        Request(c, new BlockHashesRequest(f.Remote, BlockHashesRequest.File), m =>
        {
            if (m is ErrorResponse e) { f.Refused = ServerError(c, f.Remote, e); return; }
            var r = c.Expect<BlockHashesResponse>(m, MessageType.BlockHashes);
            if ((long)r.Size != f.Size)
            {
                f.Note = $"the source is {r.Size} bytes now, not {f.Size}; copied again";
                return;
            }
            KeepMatchingBlocks(f, ours, r.Values, new HeldCopy(held, UnderFinalName: false), "the local partial file");
        }, lost => throw lost);
    }

    /// <summary>A striped range being received: its blocks go through this connection's disk thread into the shared
    /// partial file at their offsets, hashed into chaining values on the way.</summary>
    private sealed class RangeReply(Stripe stripe, DownloadFile file, long offset, long length, bool hash,
        ProgressTracker tracker, DiskSink sink, BandwidthLimiter? limiter) : SinkReply(sink, offset)
    {
        public long Offset { get; } = offset;
        public long End { get; } = offset + length;
        public BlockChainingValues? Values { get; } = hash ? new BlockChainingValues(offset) : null;
        public long Position = offset;

        public override bool OnFrame(in Frame frame) => frame.Type is MessageType.Data or MessageType.DataCompressed
            ? Receive(frame, limiter, file.Shown, ref stripe.Wire.Value, End, () => new BcmrException(BcmrErrorCode.CorruptData, file.Shown,
                $"{file.Shown}: the server sent more than the range at {Offset} holds"))
            : TakeEnd(frame);

        public override void Store(byte[] buffer, int length)
        {
            if (LocalError is not null) return;
            try { stripe.Staged!.Write(buffer.AsSpan(0, length), Position); }
            catch (BcmrException e)
            {
                LocalError = e;
                return;
            }
            Values?.Update(buffer.AsSpan(0, length));
            Position += length;
            tracker.AddBytes(stripe.Progress, length);
        }

        public override void Finish(BcmrException? lost)
        {
            Lost ??= lost;
            SetDone();
        }
    }

    /// <summary>Asks for ranges of a striped file over <paramref name="c"/> while it has any, no more than
    /// <see cref="LaneBacklog"/> ahead; whichever connection settles the last range finishes the file.</summary>
    private void ReceiveStripe(ServeClient c, DownloadFile f)
    {
        var s = f.Stripe!;
        s.Prepare(() =>
        {
            var staged = StagedFile.OpenPartial(f.Local, 0x1B6);
            try { staged.SetLength(f.Size); }
            catch
            {
                staged.Keep();
                staged.Dispose();
                throw;
            }
            s.Staged = staged;
            s.Progress = _tracker.StartFile(f.Shown, f.Size);
            _tracker.AddKeptBytes(s.Progress, s.Kept);
        });
        bool hash = (c.Caps & Caps.Fast) == 0;
        while (s.TryTake(c, out long offset, out long length))
        {
            var reply = new RangeReply(s, f, offset, length, hash, _tracker, _sink!, _limiter);
            try { c.Send(new GetChunkedRequest(f.Remote, (ulong)offset, (ulong)length), reply, _ct); }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed)
            {
                if (s.Settle(e, range: true)) FinishDownloadStripe(c, f);
                throw;
            }
            Track(reply, () =>
            {
                var error = reply.Lost ?? reply.LocalError ?? reply.Final switch
                {
                    RangeHashes r when reply.Values is null || SameValues(r, offset, reply.Values.Finish()) => null,
                    RangeHashes => new BcmrException(BcmrErrorCode.CorruptData, f.Shown,
                        $"{f.Local}: the range at byte {offset} arrived different from the source (its blocks' BLAKE3 differ)"),
                    ErrorResponse e => ServerError(c, f.Remote, e),
                    var m => ServeClient.WrongReply(c.Remote, m!, MessageType.GetChunked, nameof(RangeHashes)),
                };
                if (error is null && reply.Position != reply.End)
                    error = new BcmrException(BcmrErrorCode.SourceChanged, f.Shown, $"{f.Shown}: the range at byte {offset} ended early (the source changed meanwhile)");
                if (error is null && reply.Values is not null) s.Record(offset, reply.Values.Values);
                if (s.Settle(error, range: true)) FinishDownloadStripe(c, f);
            }, length);
            CompleteDownTo(c, LaneBacklog);
        }
        if (s.Settle(null, range: false)) FinishDownloadStripe(c, f);
    }

    /// <summary>Every range settled: the source is checked unchanged (Stat: size and modification time as listed),
    /// then the file is committed here (with -V read back first), or the failure reported with the partial kept.</summary>
    private void FinishDownloadStripe(ServeClient c, DownloadFile f)
    {
        var s = f.Stripe!;
        if (s.Error is null)
        {
            try
            {
                var stat = new SingleReply();
                c.Send(new StatRequest(f.Remote), stat, _ct);
                SingleReply? sourceHash = null;
                bool fast = (c.Caps & Caps.Fast) != 0;
                if (fast && _req.Verify) c.Send(new HashRequest(f.Remote, 0, null), sourceHash = new SingleReply(), _ct);
                c.Flush();
                Track(stat, () => CommitDownloadStripe(c, f, stat, sourceHash, fast));
                return;
            }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed) { s.Settle(e, range: false); }
        }
        FailDownloadStripe(f, s.Error!);
    }

    private void CommitDownloadStripe(ServeClient c, DownloadFile f, SingleReply stat, SingleReply? sourceHash, bool fast)
    {
        var s = f.Stripe!;
        var staged = s.Staged!;
        BcmrException? error = stat.Lost ?? stat.Message switch
        {
            StatResponse st when (long)st.Size == f.Size && st.Mtime == f.Mtime => null,
            StatResponse st => new BcmrException(BcmrErrorCode.SourceChanged, f.Shown,
                $"{f.Shown}: changed while being copied (now {st.Size} bytes, modified at {st.Mtime}); not committed"),
            ErrorResponse e => ServerError(c, f.Remote, e),
            var m => ServeClient.WrongReply(c.Remote, m!, MessageType.Stat, nameof(StatResponse)),
        };
        string? hex = null;
        try
        {
            if (error is null && !fast) hex = Blake3.ToHex(s.FileHash());
            if (error is null && _req.Verify)
            {
                var reread = Blake3.ToHex(staged.ReadBack(f.Size, CancellationToken.None, _threads));
                if (hex is not null && reread != hex)
                    error = new BcmrException(BcmrErrorCode.VerifyMismatch, f.Local, $"{f.Local}: verification failed: read back {reread}, received {hex}; removed");
                else if (hex is null)
                {
                    error = SourceHashMismatch(c, f, sourceHash!, reread);
                    hex = reread;
                }
                if (error is not null)
                {
                    staged.Abandon();
                    staged.Dispose();
                    _tracker.FinishFile(s.Progress, 0);
                    _log.Fail(f.Shown, f.Local, EntryKind.File, error, _transport, s.Wire.Value, f.Order);
                    return;
                }
            }
            if (error is null)
            {
                KeepSourceMeta(staged, f);
                staged.Commit(replace: _req.Force || _req.Resume != ResumeMode.None, flush: _req.Sync, flushDirectory: _req.Sync);
            }
        }
        catch (BcmrException e) { error = staged.ForDestination(e); }
        if (error is not null)
        {
            FailDownloadStripe(f, error);
            return;
        }
        staged.Dispose();
        _tracker.FinishFile(s.Progress, 0);
        Downloaded(f, new CopyResult
        {
            Source = f.Shown, Destination = f.Local, Kind = EntryKind.File, Status = CopyStatus.Copied, Bytes = f.Size,
            Blake3 = hex, Duration = s.Clock.Elapsed, Transport = _transport, WireBytes = s.Wire.Value, ResumedFrom = s.Kept,
            Connections = s.Connections,
            Resume = ResumeOutcome(s.Kept, f.Note), ResumeCompared = f.Compared,
            Message = f.Note is null ? null : $"{f.Local}: {f.Note}",
        });
    }

    /// <summary>A striped download that cannot finish: what arrived stays in the partial file for -C (its blocks are
    /// proven one by one before any is kept).</summary>
    private void FailDownloadStripe(DownloadFile f, BcmrException error)
    {
        var s = f.Stripe!;
        if (s.Staged is { } staged)
        {
            try { staged.Keep(); } catch (BcmrException) { }
            staged.Dispose();
        }
        _tracker.FinishFile(s.Progress, Math.Max(0, f.Size - (s.Progress?.Done ?? 0)));
        var reported = error.Code is BcmrErrorCode.SourceChanged or BcmrErrorCode.VerifyMismatch || s.Staged is null ? error
            : new BcmrException(error.Code, f.Local, KeptForResume(error, $"in {s.Staged.Path}"), error);
        _log.Fail(f.Shown, f.Local, EntryKind.File, reported, _transport, s.Wire.Value, f.Order);
    }
}
