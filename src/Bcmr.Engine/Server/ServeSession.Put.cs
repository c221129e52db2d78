using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// Uploads: Put, its Data frames, partial files and resume.
public sealed partial class ServeSession
{
    /// <summary>One upload in progress: written into <see cref="Staged"/>, committed to <see cref="Path"/>, or kept as
    /// <see cref="Partial"/> when it cannot finish.</summary>
    private sealed class PutState
    {
        public required string ClientPath { get; init; }
        /// <summary>The canonical destination, for messages.</summary>
        public required string Path { get; init; }
        /// <summary>The destination's directory held open: the staged file and <see cref="Partial"/> reach it through
        /// the descriptor (<see cref="RootJail.Pin"/>).</summary>
        public required PinnedDirectory Dir { get; init; }
        public required StagedFile Staged { get; init; }
        public required string Partial { get; init; }
        public required Blake3Hasher Hasher { get; init; }
        public required ulong DeclaredSize { get; init; }
        /// <summary>Bytes at the start of the staging file that are good (resumed prefix + data received).</summary>
        public long Position;
        /// <summary>Bytes of Data still expected from the client.</summary>
        public ulong Remaining;
        /// <summary>Committed or abandoned; nothing more may happen to the files.</summary>
        public bool Finished;
        /// <summary>Dedup: bytes of the staging file fed to <see cref="Hasher"/> so far (blocks arrive out of order).</summary>
        public long Hashed;
        /// <summary>The upload went through HaveBlocks/MissingBlocks.</summary>
        public bool Deduped;
    }

    private PutState? _activePut;

    /// <summary>
    /// Put{path, size, offset}, followed by Data frames carrying bytes [offset, size) of the file, then optionally
    /// Done (bcmr 0.6 sends it). When size − offset bytes have arrived the server replies Ok{hex BLAKE3 of the whole
    /// file}; data past the declared size is a protocol error (Error, connection closed), and a Done before all bytes
    /// arrived is an error for this Put only (Error, the session goes on).
    /// <para>Staging: the bytes go to a unique staging file beside the destination (<see cref="Temporaries.StagingPath"/>,
    /// parents created as needed), renamed over the destination only once complete, fsynced first under
    /// <see cref="Caps.Sync"/> (then the directory too). The final name never holds a partial file.</para>
    /// <para>Partial files: when an upload cannot finish (the connection drops or breaks, the client ends it short, the
    /// server is interrupted, a write fails) the bytes received so far are kept as
    /// <see cref="Temporaries.PartialPath"/> (replacing any older one), cut to the last byte fully
    /// written. A Put at offset 0 that completes removes any partial of the same destination.</para>
    /// <para>Resume: a Put with offset &gt; 0 continues, in order of preference: (1) the partial file, which must hold
    /// at least offset bytes; it is claimed by renaming it to the staging name (so two sessions cannot continue the
    /// same partial) and cut to offset; (2) the final file, when no partial exists and it holds at least offset bytes
    /// (a bcmr 0.6 client resuming in place): its first offset bytes are copied to a new staging file, and the final
    /// file stays untouched until the complete upload replaces it. Otherwise the Put is refused. Either way the server
    /// hashes the prefix [0, offset) itself, so Ok still carries the BLAKE3 of the whole file.</para>
    /// <para>Compressed data: each DataCompressed frame must decode to exactly its declared size (at most 4 MiB) with
    /// a known algo. One that does not (a lying size, a corrupt payload, an unknown algo) refuses the Put with an
    /// Error naming the cause; the final name is never written, the bytes received before it are kept as the partial
    /// file (as for any upload that cannot finish), the rest of the upload's data is skipped by its declared sizes,
    /// and the session goes on. Dedup (HaveBlocks first): see <see cref="ReceiveDedup"/>.</para>
    /// <para>A Put refused before any data is read (path outside the root, a directory, nothing to resume from) gets
    /// its Error at once; its size − offset bytes of Data are then read and discarded so that pipelined requests that
    /// follow are still understood.</para>
    /// </summary>
    private void HandlePut(PutRequest r)
    {
        ulong expected = r.Size >= r.Offset ? r.Size - r.Offset : 0;
        PutState put;
        try { put = BeginPut(r); }
        catch (BcmrException e)
        {
            Fail(e);
            DrainData(expected, $"Put {r.Path}");
            return;
        }

        try
        {
            lock (_lock)
            {
                if (_interrupted)
                {
                    AbandonPut(put, "interrupted");
                    return;
                }
                _activePut = put;
            }
            if (ReceivePut(put)) CommitPut(put);
        }
        catch (BcmrException e)
        {
            // The server's side failed (disk full, permission...): keep what was written, tell the client, and stay
            // in step with its stream by reading the rest of this Put's data.
            var message = put.Dir.Shown(e.Message);
            lock (_lock) AbandonPut(put, message);
            Fail(message, e.Code);
            DrainData(put.Remaining, $"Put {r.Path}");
        }
        catch
        {
            // The connection broke or the client broke the protocol: keep what arrived; Run() ends the session.
            lock (_lock) AbandonPut(put, "the connection ended");
            throw;
        }
        finally
        {
            lock (_lock) _activePut = null;
            put.Staged.Dispose();
            put.Dir.Dispose();
            Blake3Hasher.Return(put.Hasher);
        }
    }

    /// <summary>Uploads from this size on are checked against the free space before any byte is written.</summary>
    private const ulong SpaceCheckFrom = 1 << 20;

    private PutState BeginPut(PutRequest r)
    {
        var dst = _jail.Resolve(r.Path);
        if (r.Offset > r.Size)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dst, $"{dst}: Put offset {r.Offset} is beyond its declared size {r.Size}");
        if (r.Size > long.MaxValue)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dst, $"{dst}: declared size {r.Size} is too large");
        var existing = Fs.TryStat(dst);
        if (existing is { Kind: EntryKind.Directory })
            throw new BcmrException(BcmrErrorCode.IsADirectory, dst, $"{dst}: Is a directory");
        var dir = PinParent(dst);
        try { return BeginPut(r, dst, existing, dir); }
        catch (BcmrException e)
        {
            dir.Dispose();
            throw new BcmrException(e.Code, e.Path, dir.Shown(e.Message), e);
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private PutState BeginPut(PutRequest r, string dst, FileMeta? existing, PinnedDirectory dir)
    {
        // A dedup upload is filled from the store without its bytes crossing the wire: one HaveBlocks frame naming a
        // known block half a million times would write 2 TiB. No upload may declare more than the disk can take.
        // (A small upload is not asked: its bytes must all cross the wire, and a full disk fails its write by name.)
        if (r.Size >= SpaceCheckFrom && Fs.AvailableBytes(dir.Opened) is long free && (long)r.Size > free + (existing?.Size ?? 0))
            throw new BcmrException(BcmrErrorCode.DiskFull, dst,
                $"{dst}: an upload of {r.Size} bytes refused: only {free} bytes are free on its filesystem (No space left on device)");
        var partial = dir.Name(Temporaries.PartialPath(dst));
        var hasher = Blake3Hasher.Rent();
        long offset = (long)r.Offset;
        StagedFile staged;
        if (offset == 0)
        {
            staged = CreateStaging(dir, dst, existing);
        }
        else if (Fs.TryLstat(partial) is { Kind: EntryKind.File })
        {
            staged = StagedFile.ClaimPartial(partial, dir.Name(Temporaries.StagingPath(dst)), dir.Target, dst);
            try
            {
                long have = staged.Length;
                if (have < offset)
                    throw new BcmrException(BcmrErrorCode.InvalidArgument, dst,
                        $"{dst}: cannot resume at offset {offset}: the partial upload holds only {have} bytes");
                staged.SetLength(offset);
                HashRange(staged.Handle, dst, 0, offset, hasher);
            }
            catch
            {
                // Give the partial back, untouched or cut to offset (both are good prefixes).
                try { staged.Keep(partialPath: partial); } catch (BcmrException) { }
                staged.Dispose();
                throw;
            }
        }
        else if (existing is { Kind: EntryKind.File } file && file.Size >= offset)
        {
            staged = CreateStaging(dir, dst, existing);
            try { CopyPrefix(dir.Target, staged, offset, hasher); }
            catch
            {
                staged.Dispose();
                throw;
            }
        }
        else
        {
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dst, $"{dst}: cannot resume at offset {offset}: " +
                (existing is null ? "there is no partial upload and no file" : $"there is no partial upload and the file holds only {existing.Value.Size} bytes"));
        }

        return new PutState
        {
            ClientPath = r.Path, Path = dst, Dir = dir, Staged = staged, Partial = partial, Hasher = hasher,
            DeclaredSize = r.Size, Position = offset, Remaining = r.Size - r.Offset,
        };
    }

    /// <summary>Reads Data frames into the staging file until the declared size is reached (true) or the client ends
    /// the Put short with Done (false: Error sent, partial kept).</summary>
    private bool ReceivePut(PutState put)
    {
        while (put.Remaining > 0)
        {
            if (!_reader.TryReadFrame(out var frame))
                throw new ProtocolException(ProtocolErrorKind.Truncated,
                    $"connection closed during Put of {put.ClientPath} at byte {put.Position} of {put.DeclaredSize}");
            switch (frame.Type)
            {
                case MessageType.Data or MessageType.DataCompressed:
                    var block = ReceiveBlock(put, frame);
                    put.Staged.HashAndWrite(block, put.Hasher, put.Position);
                    put.Position += block.Length;
                    put.Remaining -= (ulong)block.Length;
                    break;
                case MessageType.Done:
                    long have = put.Position;
                    lock (_lock) AbandonPut(put, "ended short");
                    Fail($"{put.Path}: the upload ended after {have} of {put.DeclaredSize} bytes; the bytes received are kept for resume");
                    return false;
                case MessageType.HaveBlocks when Dedup && put.Position == 0 && put.Remaining == put.DeclaredSize:
                    return ReceiveDedup(put, frame);
                case MessageType.HaveBlocks:
                    throw Violation(Dedup
                        ? $"Put {put.ClientPath}: HaveBlocks must come first, before any data, in a Put at offset 0"
                        : $"Put {put.ClientPath}: HaveBlocks but dedup was not negotiated");
                default:
                    throw Violation($"Put {put.ClientPath}: expected Data, got {Describe(frame.Type)}");
            }
        }
        return true;
    }

    /// <summary>The block an incoming Data/DataCompressed frame of <paramref name="put"/> carries, decoded. More
    /// than the declared size is a protocol error; a block that cannot be decoded refuses the Put
    /// (<see cref="BcmrErrorCode.CorruptData"/>) after counting its declared size as received, so that the rest of
    /// the upload's data can be skipped in step.</summary>
    private ReadOnlySpan<byte> ReceiveBlock(PutState put, in Frame frame, int? exactLength = null)
    {
        int declared = frame.DeclaredBlockLength;
        if ((ulong)declared > put.Remaining)
            throw Violation($"Put {put.ClientPath}: the client sent {(ulong)declared - put.Remaining} bytes past the declared size of {put.DeclaredSize}");
        if (exactLength is { } exact && declared != exact)
            throw Violation($"Put {put.ClientPath}: a dedup block of {exact} bytes was expected, the frame carries {declared}");
        try
        {
            return ReadBlock(frame);
        }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.CorruptData)
        {
            put.Remaining -= (ulong)declared;
            throw new BcmrException(BcmrErrorCode.CorruptData, put.Path,
                $"{put.Path}: upload refused at byte {put.Position}: {e.Message}", e);
        }
    }

    private void CommitPut(PutState put)
    {
        var hash = put.Hasher.Finalize();
        if (Extended && !ClientAgrees(put, Hex(hash))) return;
        lock (_lock)
        {
            if (_interrupted) return; // Interrupt() has kept the bytes as the partial file
            // Under the lock: an Interrupt() meanwhile waits for a complete upload to commit rather than keeping it
            // as a partial.
            put.Staged.Commit(replace: true, flush: Sync, flushDirectory: Sync, directory: put.Dir.Opened);
            put.Finished = true;
        }
        if (Fs.TryLstat(put.Partial) is { Kind: EntryKind.File }) Fs.TryDeleteFile(put.Partial);
        if (put.Deduped) PruneAfterDedup(); // before Ok, so a client that sees Ok sees the store within its cap
        Send(new OkResponse(Hex(hash)));
        _afterPut = !Extended; // an extended client's verdict was its terminator
    }

    /// <summary>
    /// Under <see cref="Caps.Extended"/> the client's verdict follows the data: Commit with the BLAKE3 of what it
    /// sent. Only a hash equal to ours lets the upload replace the final name; a different one (the source changed
    /// between two reads, a resumed prefix that was not the source's) or an empty one (the client abandons: its source
    /// changed) discards the staging file, so the previous version stays as it was. Done (a client that has no
    /// verdict) commits as version 1 does.
    /// </summary>
    private bool ClientAgrees(PutState put, string hash)
    {
        if (!_reader.TryReadFrame(out var frame))
            throw new ProtocolException(ProtocolErrorKind.Truncated, $"connection closed before the client's verdict on Put {put.ClientPath}");
        if (frame.Type == MessageType.Done) return true;
        if (frame.Type != MessageType.Commit)
            throw Violation($"Put {put.ClientPath}: expected Commit after the data, got {Describe(frame.Type)}");
        var verdict = (CommitRequest)frame.Decode();
        if (verdict.Hash == hash) return true;
        lock (_lock)
        {
            if (!put.Finished)
            {
                put.Finished = true;
                put.Staged.Abandon();
            }
        }
        if (verdict.Hash.Length == 0)
            Fail($"{put.Path}: upload abandoned by the client (its source changed while it was sent); not committed, the previous version is unchanged",
                BcmrErrorCode.SourceChanged);
        else
            Fail($"{put.Path}: not committed: the bytes received hash to {hash}, the client's source to {verdict.Hash}; the previous version is unchanged",
                BcmrErrorCode.CorruptData);
        return false;
    }

    /// <summary>Keeps the good bytes of an upload that cannot finish as its partial file. Call under <c>_lock</c>.</summary>
    private void AbandonPut(PutState put, string reason)
    {
        if (put.Finished) return;
        put.Finished = true;
        try
        {
            put.Staged.Keep(put.Position, flush: Sync, partialPath: put.Partial);
            Log($"Put {put.Path}: {reason}; kept {put.Position} bytes in {put.Dir.Shown(put.Partial)} for resume");
        }
        catch (Exception e) when (e is BcmrException or IOException or ObjectDisposedException)
        {
            Log($"Put {put.Path}: {reason}; could not keep the partial file: {put.Dir.Shown(e.Message)}");
        }
    }

    /// <summary>Reads and discards <paramref name="remaining"/> bytes of Data frames (or up to a Done) belonging to a
    /// request that was refused, so that the next request is read from the right place.</summary>
    private void DrainData(ulong remaining, string what)
    {
        bool first = true;
        while (remaining > 0)
        {
            if (!_reader.TryReadFrame(out var frame))
                throw new ProtocolException(ProtocolErrorKind.Truncated, $"connection closed during the data of {what}");
            bool wasFirst = first;
            first = false;
            switch (frame.Type)
            {
                // A dedup client that sent HaveBlocks right behind a Put we refused waits for MissingBlocks, gets our
                // Error instead, and sends nothing more than Done.
                case MessageType.HaveBlocks when wasFirst:
                    break;
                case MessageType.Data or MessageType.DataCompressed:
                    ulong n = (ulong)frame.DeclaredBlockLength; // skipped, not decoded
                    if (n > remaining) throw Violation($"{what}: the client sent {n - remaining} bytes past the declared size");
                    remaining -= n;
                    break;
                case MessageType.Done:
                    return;
                default:
                    throw Violation($"{what}: expected Data, got {Describe(frame.Type)}");
            }
        }
        _afterPut = true;
    }

    /// <summary>Copies and hashes the first <paramref name="count"/> bytes of the final file into a new staging file
    /// (resuming in place without writing to the final name).</summary>
    private void CopyPrefix(string src, StagedFile dst, long count, Blake3Hasher hasher)
    {
        using var h = Fs.OpenRead(src);
        StopIfClientGone(src);
        long copied = DataCopier.ReadWriteRange(new DataCopier.Source(h, src, Fs.Fstat(h, src)), dst.Target, 0, count, hasher,
            _ => StopIfClientGone(src), CancellationToken.None);
        if (copied < count)
            throw new BcmrException(BcmrErrorCode.SourceChanged, src, $"{src}: ended at {copied} while its first {count} bytes were copied");
    }
}
