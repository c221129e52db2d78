using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// Striping: one file's ranges carried by several connections side by side (PutChunked, GetChunked, Assemble,
// BlockHashes). Each connection is its own session (its own process under ssh): they meet only in the file.
public sealed partial class ServeSession
{
    /// <summary>
    /// PutChunked{path, offset, length}, followed by Data frames carrying exactly length bytes of the file from offset.
    /// <para>Our clients (<see cref="Caps.Extended"/>): the bytes go into the destination's partial file
    /// (<see cref="Temporaries.PartialPath"/>, created if absent, never truncated, held under a shared lock with the
    /// other connections writing it), at a 4 MiB-aligned offset; the reply is RangeHashes, the chaining value of each
    /// block as written, which the client compares with its source's. The final name is untouched until Assemble.
    /// Whatever was written stays in the partial file when the range cannot finish: a resume compares block by block,
    /// so a hole or a half-written block is never taken for data.</para>
    /// <para>bcmr 0.6 clients: its semantics, the bytes written in place into the file its Truncate made, then Ok.</para>
    /// <para>A range refused before its data (outside the root, misaligned, no file) gets its Error and its data is
    /// read and discarded; a write that fails (disk full) skips the rest of the range's data and then gets its Error.</para>
    /// </summary>
    private void HandlePutChunked(PutChunkedRequest r)
    {
        string dst;
        PinnedDirectory dir;
        SafeFileHandle h;
        try { (dst, dir, h) = OpenRangeTarget(r); }
        catch (BcmrException e)
        {
            Fail(e);
            DrainData(r.Length, $"PutChunked {r.Path}");
            return;
        }
        using (dir)
        using (h)
        {
            var values = Extended ? new BlockChainingValues((long)r.Offset) : null;
            ulong remaining = r.Length;
            long pos = (long)r.Offset;
            BcmrException? failed = null;
            while (remaining > 0)
            {
                if (!_reader.TryReadFrame(out var frame))
                    throw new ProtocolException(ProtocolErrorKind.Truncated,
                        $"connection closed during PutChunked of {r.Path} at byte {pos} (range {r.Offset} + {r.Length})");
                if (frame.Type == MessageType.Done)
                {
                    failed ??= new BcmrException(BcmrErrorCode.InvalidArgument, dst,
                        $"{dst}: the range at {r.Offset} ended after {r.Length - remaining} of its {r.Length} bytes");
                    break;
                }
                if (frame.Type is not (MessageType.Data or MessageType.DataCompressed))
                    throw Violation($"PutChunked {r.Path}: expected Data, got {Describe(frame.Type)}");
                int declared = frame.DeclaredBlockLength;
                if ((ulong)declared > remaining)
                    throw Violation($"PutChunked {r.Path}: the client sent {(ulong)declared - remaining} bytes past the range's {r.Length}");
                remaining -= (ulong)declared;
                if (failed is not null) continue; // skipped in step
                try
                {
                    var block = ReadBlock(frame);
                    Fs.Write(h, block, pos, dst);
                    values?.Update(block);
                    pos += block.Length;
                }
                catch (BcmrException e) { failed = e; }
            }
            if (failed is null && Sync)
            {
                try { Fs.FlushToDisk(h, dst); }
                catch (BcmrException e) { failed = e; }
            }
            if (failed is not null)
            {
                Fail(new BcmrException(failed.Code, dst, dir.Shown(failed.Message), failed));
                return;
            }
            if (values is null)
            {
                Send(OkResponse.Empty);
                _afterPut = true; // a bcmr 0.6 client may end the range with Done
            }
            else Send(new RangeHashes(r.Offset, Concat(values.Finish())));
        }
    }

    /// <summary>The file a PutChunked writes into, opened, with the pinned directory it was reached through.</summary>
    private (string Path, PinnedDirectory Dir, SafeFileHandle Handle) OpenRangeTarget(PutChunkedRequest r)
    {
        var dst = _jail.Resolve(r.Path);
        if (r.Offset > long.MaxValue || r.Length > long.MaxValue - r.Offset)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dst, $"{dst}: range {r.Offset} + {r.Length} is too large");
        if (Extended && r.Offset % BlockLedger.BlockSize != 0)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dst, $"{dst}: a range must start at a 4 MiB boundary, not at {r.Offset}");
        var existing = Fs.TryStat(dst);
        if (existing is { Kind: EntryKind.Directory })
            throw new BcmrException(BcmrErrorCode.IsADirectory, dst, $"{dst}: Is a directory");
        if (!Extended && existing is null) throw NotFound(dst);
        var dir = PinParent(dst);
        try
        {
            long end = (long)(r.Offset + r.Length);
            if (Extended)
            {
                var partial = dir.Name(Temporaries.PartialPath(dst));
                long held = Fs.TryLstat(partial)?.Size ?? 0;
                if (Fs.AvailableBytes(dir.Opened) is long free && end > free + held)
                    throw new BcmrException(BcmrErrorCode.DiskFull, dst,
                        $"{dst}: a range ending at {end} refused: only {free} bytes are free on its filesystem (No space left on device)");
                return (dst, dir, Fs.OpenShared(partial, 0x1B6, dst));
            }
            var h = Fs.OpenReadWrite(dir.Target);
            try { _jail.OpenedInside(h, dst); }
            catch
            {
                h.Dispose();
                throw;
            }
            return (dst, dir, h);
        }
        catch (BcmrException e)
        {
            dir.Dispose();
            throw new BcmrException(e.Code, dst, dir.Shown(e.Message), e);
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>
    /// GetChunked{path, offset, length}: bytes [offset, offset + length) of the file as Get sends them (block frames
    /// of up to 4 MiB, compressed as negotiated), then, for our clients, RangeHashes with the chaining value of each
    /// block as read (none under <see cref="Caps.Fast"/>; the offset must be 4 MiB-aligned), for bcmr 0.6 Ok. A file
    /// that ends before the range does gets an Error after the bytes it had.
    /// </summary>
    private void HandleGetChunked(GetChunkedRequest r)
    {
        SafeFileHandle h;
        string path;
        try
        {
            path = _jail.Resolve(r.Path);
            if (r.Offset > long.MaxValue || r.Length > long.MaxValue - r.Offset)
                throw new BcmrException(BcmrErrorCode.InvalidArgument, path, $"{path}: range {r.Offset} + {r.Length} is too large");
            if (Extended && r.Offset % BlockLedger.BlockSize != 0)
                throw new BcmrException(BcmrErrorCode.InvalidArgument, path, $"{path}: a range must start at a 4 MiB boundary, not at {r.Offset}");
            h = OpenRegular(path);
        }
        catch (BcmrException e)
        {
            Fail(e);
            return;
        }
        using (h)
        {
            try
            {
                long end = (long)(r.Offset + r.Length);
                var values = Extended && !Fast ? new BlockChainingValues((long)r.Offset) : null;
                long pos = SendFile(h, path, (long)r.Offset, end, null, values);
                if (pos < end)
                    throw new BcmrException(BcmrErrorCode.SourceChanged, path, $"{path}: ended at {pos}, inside the range {r.Offset} + {r.Length} (it changed meanwhile)");
                Send(Extended ? new RangeHashes(r.Offset, values is null ? [] : Concat(values.Finish())) : OkResponse.Empty);
            }
            catch (BcmrException e) { Fail(e); }
        }
    }

    /// <summary>
    /// Assemble{path, size} (<see cref="Caps.Extended"/>): the striped upload is complete and proven (the client has
    /// compared every block's chaining value from RangeHashes with its source's): the partial file is cut to size,
    /// fsynced under <see cref="Caps.Sync"/>, and renamed over the path (then the directory fsynced). A partial
    /// shorter than size was not completely written and is refused; nothing is renamed then.
    /// </summary>
    private OkResponse HandleAssemble(AssembleRequest r)
    {
        var dst = _jail.Resolve(r.Path);
        if (r.Size > long.MaxValue)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dst, $"{dst}: size {r.Size} is too large");
        if (Fs.TryStat(dst) is { Kind: EntryKind.Directory })
            throw new BcmrException(BcmrErrorCode.IsADirectory, dst, $"{dst}: Is a directory");
        using var dir = PinParent(dst);
        try
        {
            var partial = dir.Name(Temporaries.PartialPath(dst));
            if (Fs.TryLstat(partial) is not { Kind: EntryKind.File } meta)
                throw new BcmrException(BcmrErrorCode.NotFound, dst, $"{dst}: no striped upload to assemble (its partial file is gone)");
            if (meta.Size < (long)r.Size)
                throw new BcmrException(BcmrErrorCode.InvalidArgument, dst,
                    $"{dst}: the striped upload holds {meta.Size} bytes, fewer than its {r.Size}; not assembled");
            using (var h = Fs.OpenReadWrite(partial))
            {
                _jail.OpenedInside(h, dst);
                Fs.SetLength(h, (long)r.Size, dst);
                if (Sync) Fs.FlushToDisk(h, dst);
            }
            Fs.Rename(partial, dir.Target, replace: true);
            if (Sync) Fs.FlushDirectory(dir.Opened);
        }
        catch (BcmrException e) { throw new BcmrException(e.Code, dst, dir.Shown(e.Message), e); }
        return OkResponse.Empty;
    }

    /// <summary>
    /// BlockHashes{path, of} (<see cref="Caps.Extended"/>): the chaining value of every 4 MiB block of the file (of =
    /// File), or of what an upload of it would continue (of = Upload: the partial file, else the file, else nothing),
    /// read now: what a striped transfer resumes from, block by block.
    /// </summary>
    private BlockHashesResponse HandleBlockHashes(BlockHashesRequest r)
    {
        var path = _jail.Resolve(r.Path);
        byte held = ResumeProofResponse.Final;
        string report = path;
        if (r.Of == BlockHashesRequest.Upload)
        {
            var partial = Temporaries.PartialPath(path);
            if (Fs.TryLstat(partial) is { Kind: EntryKind.File })
            {
                held = ResumeProofResponse.Partial;
                report = partial;
            }
            else if (Fs.TryStat(path) is null) return new BlockHashesResponse(ResumeProofResponse.Nothing, 0, []);
        }
        using var h = OpenRegular(report);
        long size = Fs.Fstat(h, report).Size;
        if (size / BlockLedger.BlockSize > (Wire.MaxPayload - 64) / BlockLedger.HashSize)
            throw new BcmrException(BcmrErrorCode.Unsupported, path, $"{path}: {size} bytes is too large to list its block hashes in one reply");
        var values = BlockChainingValues.OfFile(h, report, 0, size, Block, () => StopIfClientGone(report));
        return new BlockHashesResponse(held, (ulong)size, Concat(values));
    }

    private static byte[] Concat(IReadOnlyList<byte[]> values)
    {
        var all = new byte[values.Count * BlockLedger.HashSize];
        for (int i = 0; i < values.Count; i++) values[i].CopyTo(all, i * BlockLedger.HashSize);
        return all;
    }
}
