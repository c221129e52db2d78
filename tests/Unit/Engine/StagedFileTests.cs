using Bcmr.Engine;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Engine;

/// <summary>The one "write a file safely" discipline every pipeline uses: staged beside the destination, written at
/// any offset, committed only whole and only when the source held still.</summary>
public class StagedFileTests
{
    private static string[] Siblings(TempDir t) => Directory.GetFiles(t.Path).Select(Path.GetFileName).Order().ToArray()!;

    [Fact]
    public void Blocks_written_out_of_order_from_several_threads_commit_to_the_right_bytes()
    {
        using var t = new TempDir();
        const int block = 64 * 1024, blocks = 64;
        var expected = new byte[block * blocks - 1000]; // a short last block
        new Random(7).NextBytes(expected);
        var dst = t["out.bin"];

        using (var staged = StagedFile.CreateTemporary(dst, 0x1A4))
        {
            var order = Enumerable.Range(0, blocks).OrderBy(i => (i * 37) % blocks).ToArray();
            Parallel.ForEach(order, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                int at = i * block, n = Math.Min(block, expected.Length - at);
                staged.Write(expected.AsSpan(at, n), at);
            });
            Assert.False(File.Exists(dst)); // nothing under the final name before commit
            staged.Commit(replace: false, flush: true, flushDirectory: true);
        }

        Assert.Equal(expected, File.ReadAllBytes(dst));
        Assert.Equal(["out.bin"], Siblings(t));
    }

    [Fact]
    public void Abandon_leaves_neither_the_final_name_nor_the_staging_name()
    {
        using var t = new TempDir();
        var dst = t["out.bin"];
        string staging;
        using (var staged = StagedFile.CreateTemporary(dst, 0x1A4))
        {
            staging = staged.Path;
            staged.Write(new byte[4096], 0);
            Assert.True(File.Exists(staging));
            staged.Abandon();
        }
        Assert.False(File.Exists(staging));
        Assert.False(File.Exists(dst));
        Assert.Empty(Siblings(t));

        // Disposing without a commit abandons too (an exception between the write and the commit).
        using (var staged = StagedFile.CreateTemporary(dst, 0x1A4))
        {
            staging = staged.Path;
            staged.Write([1, 2, 3], 0);
        }
        Assert.False(File.Exists(staging));
        Assert.Empty(Siblings(t));
    }

    [Fact]
    public void A_kept_partial_stays_under_its_partial_name_and_an_abandoned_one_goes()
    {
        using var t = new TempDir();
        var dst = t["out.bin"];
        using (var staged = StagedFile.OpenPartial(dst, 0x1A4))
        {
            staged.Write(new byte[10_000], 0);
            staged.Keep(4096);
        }
        var partial = Temporaries.PartialPath(dst);
        Assert.Equal(4096, new FileInfo(partial).Length);
        Assert.False(File.Exists(dst));

        using (var staged = StagedFile.OpenPartial(dst, 0x1A4)) staged.Abandon();
        Assert.Empty(Siblings(t));
    }

    [Fact]
    public void Commit_without_replace_refuses_an_existing_destination_and_keeps_it()
    {
        using var t = new TempDir();
        var dst = t.WriteFile("out.bin", [9, 9, 9]);
        using (var staged = StagedFile.CreateTemporary(dst, 0x1A4))
        {
            staged.Write([1, 2, 3, 4], 0);
            var e = Assert.Throws<BcmrException>(() => staged.Commit(replace: false, flush: false, flushDirectory: false));
            Assert.Equal(BcmrErrorCode.AlreadyExists, e.Code);
        }
        Assert.Equal([9, 9, 9], File.ReadAllBytes(dst));
        Assert.Equal(["out.bin"], Siblings(t));

        using (var staged = StagedFile.CreateTemporary(dst, 0x1A4))
        {
            staged.Write([1, 2, 3, 4], 0);
            staged.Commit(replace: true, flush: false, flushDirectory: false);
        }
        Assert.Equal([1, 2, 3, 4], File.ReadAllBytes(dst));
    }

    [Fact]
    public void A_source_that_changes_during_the_copy_fails_and_leaves_the_destination_untouched()
    {
        using var t = new TempDir();
        var src = t.WriteRandom("src.bin", 100_000, 1);
        var dst = t.WriteFile("dst.bin", [5, 5, 5]);
        using (var srcHandle = Fs.OpenRead(src))
        using (var staged = StagedFile.CreateTemporary(dst, 0x1A4))
        {
            var meta = Fs.Fstat(srcHandle, src);
            staged.WatchSource(srcHandle, src, meta);
            var buffer = new byte[meta.Size];
            Fs.ReadFull(srcHandle, buffer, 0, src);
            staged.Write(buffer, 0);
            File.AppendAllText(src, "more"); // the source grows while we copy it

            var e = Assert.Throws<BcmrException>(() => staged.EnsureSourceUnchanged(meta.Size));
            Assert.Equal(BcmrErrorCode.SourceChanged, e.Code);
            Assert.Contains("changed while being copied", e.Message);
        }
        Assert.Equal([5, 5, 5], File.ReadAllBytes(dst));
        Assert.Equal(["dst.bin", "src.bin"], Siblings(t));
    }

    [Fact]
    public void Verify_refuses_bytes_that_do_not_read_back_as_they_were_hashed()
    {
        using var t = new TempDir();
        var dst = t["out.bin"];
        var data = new byte[300_000];
        new Random(3).NextBytes(data);
        using var staged = StagedFile.CreateTemporary(dst, 0x1A4);
        var hasher = Bcmr.Engine.Hashing.Blake3Hasher.Create();
        staged.HashAndWrite(data, hasher, 0);
        var hash = hasher.Finalize();
        Assert.Equal(hash, staged.Verify(hash, data.Length, CancellationToken.None));

        staged.Write([(byte)(data[1000] ^ 1)], 1000); // damaged after hashing
        var e = Assert.Throws<BcmrException>(() => staged.Verify(hash, data.Length, CancellationToken.None));
        Assert.Equal(BcmrErrorCode.VerifyMismatch, e.Code);
        Assert.StartsWith($"{dst}: verification failed", e.Message);
    }
}
