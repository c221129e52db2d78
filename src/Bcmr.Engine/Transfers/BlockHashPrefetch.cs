using Bcmr.Engine.Hashing;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// The HaveBlocks hashes of an upload's first source, computed while the connection is set up: an ssh login waits
/// most of a second on the server, time in which the client hashes about a GiB. A dedup upload then takes them
/// (<see cref="TakeFor"/>) instead of reading and hashing the file first, if they are of the same file as it opened
/// (device, inode, size, modification time and change time). Only for one large regular file (the single big upload)
/// and only with a thread of the budget to spare; what turns out unused (no dedup offered, a resume, another file)
/// is stopped and thrown away. Wrong hashes could only cost a transfer: the server verifies every stored block it
/// reads, and the file's own BLAKE3 is taken separately.
/// </summary>
internal sealed class BlockHashPrefetch : IDisposable
{
    private readonly string _path;
    private readonly ThreadBudget _budget;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task<(FileMeta Meta, byte[] Hashes)?> _work;

    private BlockHashPrefetch(string path, ThreadBudget budget)
    {
        _path = path;
        _budget = budget;
        _work = Task.Factory.StartNew(Hash, TaskCreationOptions.LongRunning);
    }

    /// <summary>Starts hashing <paramref name="source"/> when it is a regular file of at least
    /// <paramref name="threshold"/> bytes and the budget has a thread; null otherwise.</summary>
    public static BlockHashPrefetch? Start(string source, long threshold, ThreadBudget budget)
    {
        if (Fs.TryStat(source) is not { Kind: EntryKind.File } meta || meta.Size < threshold) return null;
        if (budget.Rent(1) != 1) return null;
        return new BlockHashPrefetch(Path.GetFullPath(source), budget);
    }

    /// <summary>The block hashes of <paramref name="path"/> if they are of the file described by
    /// <paramref name="opened"/> (waiting for them when the hashing is still under way); null otherwise.</summary>
    public byte[]? TakeFor(string path, in FileMeta opened, CancellationToken ct)
    {
        if (Path.GetFullPath(path) != _path) return null;
        try { _work.Wait(ct); }
        catch (AggregateException) { return null; }
        if (_work.Result is not { } done) return null;
        return done.Meta.SameFileAs(opened) && done.Meta.UnchangedAt(opened) ? done.Hashes : null;
    }

    private (FileMeta, byte[])? Hash()
    {
        var buffer = Codecs.BlockBuffers.Pool.Rent(Wire.MaxBlock);
        try
        {
            using var h = Fs.OpenRead(_path);
            var before = Fs.Fstat(h, _path);
            var hashes = OfFile(h, _path, before.Size, buffer, _stop.Token);
            var after = Fs.Fstat(h, _path);
            return before.SameFileAs(after) && before.UnchangedAt(after) ? (before, hashes) : null;
        }
        catch (Exception e) when (e is BcmrException or OperationCanceledException) { return null; }
        finally
        {
            Codecs.BlockBuffers.Pool.Return(buffer);
            _budget.Return(1);
        }
    }

    /// <summary>The HaveBlocks hashes of bytes [0, <paramref name="size"/>) of an open file: the BLAKE3 of each 4 MiB
    /// block, read into <paramref name="buffer"/>. A file that ends first is <see cref="BcmrErrorCode.SourceChanged"/>.</summary>
    internal static byte[] OfFile(Microsoft.Win32.SafeHandles.SafeFileHandle h, string path, long size, byte[] buffer, CancellationToken ct = default)
    {
        int count = (int)((size + Wire.MaxBlock - 1) / Wire.MaxBlock);
        var hashes = new byte[count * HaveBlocks.HashSize];
        for (int i = 0; i < count; i++)
        {
            ct.ThrowIfCancellationRequested();
            long at = (long)i * Wire.MaxBlock;
            int want = (int)Math.Min(Wire.MaxBlock, size - at);
            if (Fs.ReadFull(h, buffer.AsSpan(0, want), at, path) != want)
                throw new BcmrException(BcmrErrorCode.SourceChanged, path, $"{path}: changed while being read; not copied");
            Blake3.Hash(buffer.AsSpan(0, want), hashes.AsSpan(i * HaveBlocks.HashSize, HaveBlocks.HashSize));
        }
        return hashes;
    }

    /// <summary>Stops the hashing if it still runs and waits for it (its thread goes back to the budget).</summary>
    public void Dispose()
    {
        _stop.Cancel();
        try { _work.Wait(); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
