using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>move: rename on one filesystem, copy+verify+delete across filesystems, never lose the only copy.</summary>
public class MoveTests
{
    [Fact]
    public void Move_on_the_same_filesystem_renames_file_and_tree()
    {
        using var t = new TempDir();
        CopyTreeTests.BuildAwkwardTree(t, "src");
        CopyTreeTests.BuildAwkwardTree(t, "expected");
        var file = t.WriteRandom("f.bin", 5000, 9);
        var fileHash = Trees.Sha256(file);
        var inode = Inode(file);

        var tree = BcmrRunner.Run("move", t["src"], t["moved"]);
        var single = BcmrRunner.Run("move", file, t["g.bin"]);

        Assert.True(tree.ExitCode == 0, tree.ToString());
        single.AssertExit(0);
        Assert.False(Directory.Exists(t["src"]));
        Trees.AssertIdentical(t["expected"], t["moved"]);
        Assert.False(File.Exists(file));
        Assert.Equal(fileHash, Trees.Sha256(t["g.bin"]));
        Assert.Equal(inode, Inode(t["g.bin"])); // a rename, not a copy
    }

    [Fact]
    public void Move_across_filesystems_copies_verifies_then_deletes_the_source()
    {
        using var t = new TempDir();
        using var mount = TinyMount.TryCreate(t["other"], "64m");
        Assert.NotNull(mount);
        CopyTreeTests.BuildAwkwardTree(t, "src");
        CopyTreeTests.BuildAwkwardTree(t, "expected");

        var r = BcmrRunner.Run("--json", "move", t["src"], t["other/moved"]);

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.False(Directory.Exists(t["src"]));
        Trees.AssertIdentical(t["expected"], t["other/moved"]);
        // Cross-filesystem moves always verify: every moved regular file carries its BLAKE3.
        Assert.All(r.JsonFiles.Where(f => f.GetProperty("kind").GetString() == "file"),
            f => Assert.Matches("^[0-9a-f]{64}$", f.GetProperty("blake3").GetString()));
    }

    [Fact]
    public void A_failed_verification_during_a_cross_filesystem_move_keeps_the_source()
    {
        using var t = new TempDir();
        using var mount = TinyMount.TryCreate(t["other"], "16m");
        Assert.NotNull(mount);
        var src = t.WriteRandom("precious.bin", 100_000, 1);
        var hash = Trees.Sha256(src);

        var r = BcmrRunner.Run(["move", src, t["other/precious.bin"]], new Dictionary<string, string> { ["BCMR_FAULT_CORRUPT_STAGED"] = "precious" },
            executable: BcmrRunner.FaultHost);

        r.AssertExit(1);
        Assert.Contains("verification failed", r.Stderr);
        Assert.Equal(hash, Trees.Sha256(src));
        Assert.False(File.Exists(t["other/precious.bin"]));
    }

    [Theory]
    [InlineData("same")]
    [InlineData("hardlink")]
    [InlineData("symlink")]
    [InlineData("own-dir")]
    public void Move_onto_the_same_file_is_refused_before_anything_is_removed(string variant)
    {
        using var t = new TempDir();
        var a = t.WriteRandom("a.bin", 10_000, 1);
        var hash = Trees.Sha256(a);
        var alias = variant switch
        {
            "same" => a,
            "hardlink" => CopyErrorTests.MakeHardLink(a, t["b.bin"]),
            "symlink" => File.CreateSymbolicLink(t["c.bin"], a).FullName,
            _ => t.Path,
        };

        var r = BcmrRunner.Run("move", "-f", a, alias);

        r.AssertExit(1);
        Assert.Contains("are the same file", r.Stderr);
        Assert.Equal(hash, Trees.Sha256(a));
        if (alias != t.Path) Assert.Equal(hash, Trees.Sha256(alias));
    }

    [Fact]
    public void Move_with_exclude_leaves_excluded_entries_and_their_directories_at_the_source()
    {
        using var t = new TempDir();
        t.WriteRandom("src/keep.txt", 10, 1);
        t.WriteRandom("src/sub/skip.log", 10, 2);
        t.WriteRandom("src/sub/keep2.txt", 10, 3);

        var r = BcmrRunner.Run("move", "-e", @"\.log$", t["src"], t["dst"]);

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(t["dst/keep.txt"]));
        Assert.True(File.Exists(t["dst/sub/keep2.txt"]));
        Assert.False(File.Exists(t["dst/sub/skip.log"]));
        Assert.True(File.Exists(t["src/sub/skip.log"]));
        Assert.False(File.Exists(t["src/keep.txt"]));
    }

    [Fact]
    public void Move_onto_an_existing_file_without_force_keeps_both()
    {
        using var t = new TempDir();
        var a = Trees.Sha256(t.WriteRandom("a.bin", 100, 1));
        var b = Trees.Sha256(t.WriteRandom("b.bin", 100, 2));

        var r = BcmrRunner.Run("move", t["a.bin"], t["b.bin"]);

        r.AssertExit(1);
        Assert.Contains("destination exists", r.Stderr);
        Assert.Equal(a, Trees.Sha256(t["a.bin"]));
        Assert.Equal(b, Trees.Sha256(t["b.bin"]));
    }

    private static string Inode(string path) => Tool.Output("stat", "-c", "%i", path);
}
