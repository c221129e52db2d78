using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Server;

// Dedup uploads (Caps.Dedup): HaveBlocks, MissingBlocks, blocks filled from the content store.
public sealed partial class ServeSession
{
    /// <summary>
    /// A Put at offset 0 whose first frame is HaveBlocks{block_size, hashes} (bcmr 0.6 clients send it for files of
    /// 16 MiB or more; any size is accepted here):
    /// <list type="number">
    /// <item>the store is pruned to its cap (least recently used blobs first);</item>
    /// <item>each block the store has is read, verified against its hash and written into the staging file at its
    /// offset; a blob that is absent, evicted meanwhile, corrupt or of the wrong length is a missing block (a bad blob
    /// is deleted), so nothing unverified ever reaches a destination;</item>
    /// <item>MissingBlocks{bitmap, bit i LSB first = 1 when block i must be sent} is sent;</item>
    /// <item>the client then sends exactly the missing blocks, in ascending order, one Data or DataCompressed frame
    /// each carrying the whole block (as bcmr 0.6's client does), then Done; each is written at its offset and kept
    /// in the store under the hash HaveBlocks gave it (<see cref="BlockKeeper"/>: verified when read, as every blob
    /// is);</item>
    /// <item>Ok carries the BLAKE3 of the whole file, computed in file order (blocks filled from the store are read
    /// back from the staging file when a missing block came before them).</item>
    /// </list>
    /// A HaveBlocks that does not describe the file (block size 0 or above 4 MiB, a count other than
    /// ceil(size / block size)) refuses the Put with an Error instead of MissingBlocks; the client then sends no data.
    /// After the upload the store is pruned to its cap again, so it stays within it while keeping this upload's
    /// blocks, the most recently used.
    /// </summary>
    private bool ReceiveDedup(PutState put, in Frame frame)
    {
        var have = (HaveBlocks)frame.Decode();
        long size = (long)put.DeclaredSize;
        long blockSize = have.BlockSize;
        if (blockSize is <= 0 or > Wire.MaxBlock || have.Count != (size + blockSize - 1) / blockSize)
        {
            put.Remaining = 0; // the client waits for MissingBlocks and will send no data
            throw new BcmrException(BcmrErrorCode.InvalidArgument, put.Path,
                $"{put.Path}: HaveBlocks does not describe a file of {size} bytes ({have.Count} blocks of {have.BlockSize} bytes); dedup upload refused");
        }
        put.Deduped = true;

        var store = Store;
        try { store.EnforceCap(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BcmrException)
        {
            Log($"content store {store.Directory}: could not prune to its cap: {e.Message}");
        }

        int count = have.Count;
        var bitmap = new byte[(count + 7) / 8];
        var block = Block;
        ulong missingBytes = 0;
        long firstMissing = -1;
        for (int i = 0; i < count; i++)
        {
            long offset = i * blockSize;
            int length = (int)Math.Min(blockSize, size - offset);
            if (store.TryRead(have.Hash(i), block, out int got) && got == length)
            {
                bool inOrder = put.Hashed == offset;
                put.Staged.HashAndWrite(block.AsSpan(0, length), inOrder ? put.Hasher : null, offset);
                if (inOrder) put.Hashed += length;
            }
            else
            {
                bitmap[i / 8] |= (byte)(1 << (i % 8));
                missingBytes += (ulong)length;
                if (firstMissing < 0) firstMissing = offset;
            }
        }
        // The good prefix (kept as the partial file should the upload stop) ends at the first missing block.
        put.Position = firstMissing < 0 ? size : firstMissing;
        put.Remaining = missingBytes;
        Send(new MissingBlocks(bitmap));
        Log($"Put {put.Path}: dedup, {count - BitCount(bitmap)} of {count} blocks from the store, {missingBytes} bytes to receive");

        using var keeper = new BlockKeeper(store, put.Staged.Handle, put.Staged.Path, _options.Threads, Log);
        for (int i = 0; i < count; i++)
        {
            if ((bitmap[i / 8] >> (i % 8) & 1) == 0) continue;
            long offset = i * blockSize;
            int length = (int)Math.Min(blockSize, size - offset);
            if (!_reader.TryReadFrame(out var next))
                throw new ProtocolException(ProtocolErrorKind.Truncated,
                    $"connection closed during dedup Put of {put.ClientPath} before block {i}");
            switch (next.Type)
            {
                case MessageType.Data or MessageType.DataCompressed:
                    var data = ReceiveBlock(put, next, length);
                    HashUpTo(put, offset);
                    put.Staged.HashAndWrite(data, put.Hasher, offset);
                    put.Hashed = offset + length;
                    put.Remaining -= (ulong)length;
                    put.Position = NextMissing(bitmap, i + 1, count, blockSize, size);
                    keeper.Keep(have.Hash(i), offset, length);
                    break;
                case MessageType.Done:
                    long kept = put.Position;
                    keeper.Finish(); // the blocks that arrived are good: kept before the staging file is cut
                    lock (_lock) AbandonPut(put, "ended short");
                    Fail($"{put.Path}: the dedup upload ended before block {i} of {count}; the first {kept} bytes are kept for resume");
                    return false;
                default:
                    throw Violation($"Put {put.ClientPath}: expected block {i} (Data), got {Describe(next.Type)}");
            }
        }
        HashUpTo(put, size);
        put.Position = size;
        keeper.Finish();
        return true;
    }

    /// <summary>Feeds the staging file's bytes [Hashed, end) to the hasher (blocks filled from the store that a
    /// missing block preceded).</summary>
    private void HashUpTo(PutState put, long end)
    {
        if (put.Hashed >= end) return;
        HashRange(put.Staged.Handle, put.Staged.Path, put.Hashed, end - put.Hashed, put.Hasher);
        put.Hashed = end;
    }

    private static long NextMissing(byte[] bitmap, int from, int count, long blockSize, long size)
    {
        for (int i = from; i < count; i++)
            if ((bitmap[i / 8] >> (i % 8) & 1) == 1) return i * blockSize;
        return size;
    }

    private static int BitCount(byte[] bitmap)
    {
        int n = 0;
        foreach (var b in bitmap) n += System.Numerics.BitOperations.PopCount(b);
        return n;
    }

    /// <summary>After a dedup upload: prune the store to its cap again (this upload's blocks are the newest).</summary>
    private void PruneAfterDedup()
    {
        try { Store.EnforceCap(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BcmrException)
        {
            Log($"content store {Store.Directory}: could not prune to its cap: {e.Message}");
        }
    }
}
