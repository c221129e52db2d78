using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Engine;

/// <summary>
/// -V on a file of more than one block reads the copy back beside the copy, on helper threads, and merges both hashes
/// from the blocks' chaining values: the hash it reports must be the file's BLAKE3 whatever the size's shape, the
/// helpers must really have been used, and a copy that differs must still be refused.
/// </summary>
public sealed class OverlappedVerifyTests
{
    private const int MiB = 1024 * 1024;

    private static FileCopyOptions Verify(ThreadBudget budget) =>
        new(Force: false, Preserve: false, Verify: true, Sync: false, ReflinkMode.Disable, SparseMode.Disable, Threads: budget);

    [Theory]
    [InlineData(4 * MiB + 1, 2)]   // a one-byte second block
    [InlineData(8 * MiB, 2)]       // two full blocks, no short one
    [InlineData(13 * MiB + 3, 2)]  // four blocks, the last short
    [InlineData(41 * MiB + 7, 1)]  // eleven: the source hashed by both threads, block by block as each has time
    [InlineData(13 * MiB + 3, 0)]  // no helper free: the copy thread hashes and reads back alone
    [InlineData(4 * MiB, 2)]       // one block: its own root, hashed on the copy thread
    public void The_reported_hash_is_the_files_BLAKE3_and_the_copy_is_identical(int size, int helpers)
    {
        using var t = new TempDir();
        var src = t.WriteRandom("src.bin", size, size);
        var budget = new ThreadBudget(helpers);

        var outcome = FileCopier.CopyFile(src, t["dst.bin"], Verify(budget), null, CancellationToken.None);

        Assert.Equal(size, outcome.Bytes);
        Assert.Equal(Blake3.ToHex(Blake3.Hash(File.ReadAllBytes(src))), Blake3.ToHex(outcome.Hash!));
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(t["dst.bin"]));
        Assert.Equal(0, budget.InUse);
        // The helper ran where there was more than one block and a thread to give (one at most).
        Assert.Equal(size > 4 * MiB ? Math.Min(helpers, 1) : 0, budget.Peak);
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Theory]
    [InlineData(9 * MiB + 5, 2)]
    [InlineData(9 * MiB + 5, 0)]
    [InlineData(3 * MiB + 5, 2)]
    public void A_copy_changed_after_its_write_is_refused_and_no_file_is_left(int size, int helpers)
    {
        using var t = new TempDir();
        var src = t.WriteRandom("src.bin", size, 3);
        var token = "corrupt-" + Guid.NewGuid().ToString("N");
        var dst = t[token + ".bin"];
        TestHooks.CorruptStagedWhenPathContains = token;
        try
        {
            var e = Assert.Throws<BcmrException>(() => FileCopier.CopyFile(src, dst, Verify(new ThreadBudget(helpers)), null, CancellationToken.None));
            Assert.Equal(BcmrErrorCode.VerifyMismatch, e.Code);
            Assert.Contains($"{dst}: verification failed", e.Message);
        }
        finally { TestHooks.CorruptStagedWhenPathContains = null; }
        Assert.False(File.Exists(dst));
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Theory]
    [InlineData(9 * MiB + 3, 1)]
    [InlineData(9 * MiB + 3, 0)]
    [InlineData(4 * MiB, 1)]
    public void A_read_back_after_the_copy_hashes_on_two_threads_when_it_may_and_gets_the_files_BLAKE3(int size, int helpers)
    {
        // A resumable copy's and a download's -V read the file back after it is written: with a helper, in whole
        // subtrees on two threads.
        using var t = new TempDir();
        var data = new byte[size];
        new Random(size).NextBytes(data);
        var budget = new ThreadBudget(helpers);
        using var staged = StagedFile.CreateTemporary(t["out.bin"], 0x1A4);
        staged.Write(data, 0);

        var hash = staged.ReadBack(size, CancellationToken.None, budget);

        Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), Blake3.ToHex(hash));
        Assert.Equal(size > 4 * MiB ? helpers : 0, budget.Peak);
        Assert.Equal(0, budget.InUse);
    }
}
