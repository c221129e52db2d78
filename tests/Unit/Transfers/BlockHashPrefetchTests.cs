using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Transfers;
using Bcmr.Tests.Codecs;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Transfers;

/// <summary>The dedup block hashes an upload computes while its connection is set up: right, of the file the upload
/// opens and of no other, on a thread of the budget that goes back.</summary>
public sealed class BlockHashPrefetchTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private const long Threshold = 16L * MiB;
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    private static byte[] BlockHashes(byte[] content)
    {
        int count = (content.Length + Wire.MaxBlock - 1) / Wire.MaxBlock;
        var hashes = new byte[count * HaveBlocks.HashSize];
        for (int i = 0; i < count; i++)
            Blake3.Hash(content.AsSpan(i * Wire.MaxBlock, Math.Min(Wire.MaxBlock, content.Length - i * Wire.MaxBlock)),
                hashes.AsSpan(i * HaveBlocks.HashSize, HaveBlocks.HashSize));
        return hashes;
    }

    private static FileMeta Opened(string path)
    {
        using var h = Fs.OpenRead(path);
        return Fs.Fstat(h, path);
    }

    [Fact]
    public void Hashes_every_block_of_a_large_file_on_one_thread_of_the_budget_and_gives_it_back()
    {
        var path = _t["big.bin"];
        var content = BlockCodecTests.RandomBytes(18 * MiB + 3, 1);
        File.WriteAllBytes(path, content);
        var budget = new ThreadBudget(2);
        using var prefetch = BlockHashPrefetch.Start(path, Threshold, budget);
        Assert.NotNull(prefetch);
        Assert.Equal(BlockHashes(content), prefetch.TakeFor(path, Opened(path), default));
        Assert.Equal(0, budget.InUse);
        Assert.Equal(1, budget.Peak);
    }

    [Fact]
    public void A_file_rewritten_after_the_prefetch_or_another_file_gets_no_hashes()
    {
        var path = _t["big.bin"];
        File.WriteAllBytes(path, BlockCodecTests.RandomBytes(17 * MiB, 2));
        using var prefetch = BlockHashPrefetch.Start(path, Threshold, new ThreadBudget(1))!;
        Assert.NotNull(prefetch.TakeFor(path, Opened(path), default)); // (waits for the hashing)

        var other = _t["other.bin"];
        File.Copy(path, other);
        Assert.Null(prefetch.TakeFor(other, Opened(other), default));

        // Same size, new bytes (a rewrite in place changes the modification and change times).
        var fresh = BlockCodecTests.RandomBytes(17 * MiB, 3);
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.Write(fresh);
        Assert.Null(prefetch.TakeFor(path, Opened(path), default));
    }

    [Fact]
    public void Nothing_starts_for_a_small_file_a_directory_a_missing_path_or_an_empty_budget()
    {
        var small = _t["small.bin"];
        File.WriteAllBytes(small, new byte[Threshold - 1]);
        var big = _t["big.bin"];
        File.WriteAllBytes(big, new byte[Threshold]);
        var budget = new ThreadBudget(1);
        Assert.Null(BlockHashPrefetch.Start(small, Threshold, budget));
        Assert.Null(BlockHashPrefetch.Start(_t.Path, Threshold, budget));
        Assert.Null(BlockHashPrefetch.Start(_t["missing.bin"], Threshold, budget));
        Assert.Equal(0, budget.InUse);
        Assert.Null(BlockHashPrefetch.Start(big, Threshold, new ThreadBudget(0)));
    }
}
