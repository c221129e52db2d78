using System.Diagnostics;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>The kernel fast paths run where the filesystem offers them, and their results are still exact.</summary>
public class FastPathTests
{
    private static string Method(RunResult r) => Assert.Single(r.JsonFiles).GetProperty("method").GetString()!;

    private static long AllocatedBytes(string path)
    {
        var parts = Tool.Output("stat", "-c", "%b %B", path).Split(' ');
        return long.Parse(parts[0]) * long.Parse(parts[1]);
    }

    [Fact]
    public void Plain_copies_use_copy_file_range_where_cloning_is_impossible()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 3_000_000, 1);

        var auto = BcmrRunner.Run("--json", "copy", t["a.bin"], t["b.bin"]);
        var disabled = BcmrRunner.Run("--json", "copy", "--reflink", "disable", t["a.bin"], t["c.bin"]);

        auto.AssertExit(0);
        Assert.Equal("copyfilerange", Method(auto));
        Assert.Equal("readwrite", Method(disabled));
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["b.bin"]));
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["c.bin"]));
    }

    [RequiresToolsFact("btrfs-progs", "mkfs.btrfs")]
    public void Reflink_disable_makes_an_independent_copy_even_on_btrfs()
    {
        using var t = new TempDir();
        using var btrfs = LoopFs.TryCreate(t["btrfs"], "mkfs.btrfs");
        Assert.NotNull(btrfs);
        t.WriteRandom("btrfs/a.bin", 8 * 1024 * 1024, 1);
        Tool.Output("sync");

        BcmrRunner.Run("copy", "--reflink", "disable", t["btrfs/a.bin"], t["btrfs/own.bin"]).AssertExit(0);
        BcmrRunner.Run("copy", t["btrfs/a.bin"], t["btrfs/shared.bin"]).AssertExit(0);
        Tool.Output("sync");

        Assert.DoesNotContain("shared", Tool.Output("filefrag", "-v", t["btrfs/own.bin"]));
        Assert.Contains("shared", Tool.Output("filefrag", "-v", t["btrfs/shared.bin"]));
        Assert.Equal(Trees.Sha256(t["btrfs/a.bin"]), Trees.Sha256(t["btrfs/own.bin"]));
    }

    [RequiresToolsFact("btrfs-progs", "mkfs.btrfs")]
    public void Reflink_force_clones_on_btrfs_and_fails_clearly_where_cloning_is_impossible()
    {
        using var t = new TempDir();
        using var btrfs = LoopFs.TryCreate(t["btrfs"], "mkfs.btrfs");
        Assert.NotNull(btrfs); // CI runs as root with btrfs-progs installed
        t.WriteRandom("btrfs/a.bin", 8 * 1024 * 1024 + 3, 1);

        var cloned = BcmrRunner.Run("--json", "copy", "--reflink", "force", t["btrfs/a.bin"], t["btrfs/b.bin"]);
        t.WriteRandom("ext.bin", 10_000, 2);
        var refused = BcmrRunner.Run("copy", "--reflink", "force", t["ext.bin"], t["btrfs/c.bin"]);

        Assert.True(cloned.ExitCode == 0, cloned.ToString());
        Assert.Equal("reflink", Method(cloned));
        Assert.Equal(Trees.Sha256(t["btrfs/a.bin"]), Trees.Sha256(t["btrfs/b.bin"]));
        refused.AssertExit(1);
        Assert.Contains("reflink not supported", refused.Stderr);
        Assert.False(File.Exists(t["btrfs/c.bin"]));
    }

    [RequiresToolsFact("btrfs-progs", "mkfs.btrfs")]
    public void Reflink_auto_clones_on_btrfs_and_verify_still_reads_both()
    {
        using var t = new TempDir();
        using var btrfs = LoopFs.TryCreate(t["btrfs"], "mkfs.btrfs");
        Assert.NotNull(btrfs);
        t.WriteRandom("btrfs/a.bin", 5_000_000, 1);

        var r = BcmrRunner.Run("--json", "copy", "-V", t["btrfs/a.bin"], t["btrfs/b.bin"]);

        r.AssertExit(0);
        Assert.Equal("reflink", Method(r));
        Assert.Matches("^[0-9a-f]{64}$", Assert.Single(r.JsonFiles).GetProperty("blake3").GetString());
        Assert.Equal(Trees.Sha256(t["btrfs/a.bin"]), Trees.Sha256(t["btrfs/b.bin"]));
    }

    /// <summary>64 MiB with three 1 MiB data islands and holes between them and at the end.</summary>
    private static string MakeSparse(TempDir t, string name)
    {
        var path = t[name];
        using (var f = new FileStream(path, FileMode.CreateNew))
        {
            var rnd = new Random(5);
            var chunk = new byte[1024 * 1024];
            foreach (var at in new long[] { 0, 20L << 20, 50L << 20 })
            {
                rnd.NextBytes(chunk);
                f.Position = at;
                f.Write(chunk);
            }
            f.SetLength(64L << 20);
        }
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_sparse_file_stays_sparse(bool verify)
    {
        using var t = new TempDir();
        var src = MakeSparse(t, "sparse.bin");
        Assert.True(AllocatedBytes(src) < 8L << 20, "test setup: the source should be sparse");

        var r = BcmrRunner.Run(verify ? ["--json", "copy", "-V", src, t["copy.bin"]] : ["--json", "copy", src, t["copy.bin"]]);

        r.AssertExit(0);
        Assert.Equal("sparseextents", Method(r));
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(t["copy.bin"]));
        Assert.Equal(new FileInfo(src).Length, new FileInfo(t["copy.bin"]).Length);
        Assert.True(AllocatedBytes(t["copy.bin"]) <= AllocatedBytes(src) + (1 << 20),
            $"copy allocates {AllocatedBytes(t["copy.bin"])} bytes, source {AllocatedBytes(src)}");
    }

    [Fact]
    public void Sparse_disable_writes_every_byte_and_sparse_force_punches_zero_runs()
    {
        using var t = new TempDir();
        var src = MakeSparse(t, "sparse.bin");
        var zeros = t.WriteFile("zeros.bin", new byte[16 * 1024 * 1024]); // fully allocated, all zero

        var dense = BcmrRunner.Run("copy", "--sparse", "disable", src, t["dense.bin"]);
        var punched = BcmrRunner.Run("copy", "--sparse", "force", zeros, t["punched.bin"]);

        dense.AssertExit(0);
        punched.AssertExit(0);
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(t["dense.bin"]));
        Assert.Equal(Trees.Sha256(zeros), Trees.Sha256(t["punched.bin"]));
        Assert.True(AllocatedBytes(t["dense.bin"]) >= 64L << 20);
        Assert.True(AllocatedBytes(zeros) >= 16L << 20);
        Assert.True(AllocatedBytes(t["punched.bin"]) < 1 << 20);
    }

    [Fact]
    public void Bare_reflink_flag_means_force_and_does_not_swallow_the_source_argument()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 100, 1);

        var r = BcmrRunner.Run("copy", "--reflink", t["a.bin"], t["b.bin"]);

        r.AssertExit(1); // ext4/tmpfs under /tmp cannot clone: force must say so
        Assert.Contains("reflink not supported", r.Stderr);
    }
}

/// <summary>A loop-mounted filesystem image for one test (btrfs for reflink).</summary>
public sealed class LoopFs : IDisposable
{
    private readonly string _mountPoint, _image;
    private LoopFs(string mountPoint, string image) { _mountPoint = mountPoint; _image = image; }

    public static LoopFs? TryCreate(string mountPoint, string mkfs, int sizeMb = 256)
    {
        var image = mountPoint + ".img";
        Directory.CreateDirectory(mountPoint);
        using (var f = new FileStream(image, FileMode.CreateNew)) f.SetLength(sizeMb * 1024L * 1024);
        if (!Tool.TryRun(mkfs, "-q", image) || !Tool.TryRun("mount", "-o", "loop", image, mountPoint)) return null;
        return new LoopFs(mountPoint, image);
    }

    public void Dispose()
    {
        Tool.TryRun("umount", _mountPoint);
        File.Delete(_image);
    }
}
