using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>Trees copy byte-identically with every kind of entry and awkward name, through both I/O paths.</summary>
public class CopyTreeTests
{
    /// <summary>Files of many sizes (empty, around the 4 MiB block), empty dirs, symlinks, and odd names.</summary>
    internal static void BuildAwkwardTree(TempDir t, string root)
    {
        t.WriteFile($"{root}/empty.txt", []);
        t.WriteRandom($"{root}/one.bin", 1, 1);
        t.WriteRandom($"{root}/block-minus-one.bin", 4 * 1024 * 1024 - 1, 2);
        t.WriteRandom($"{root}/block-plus-one.bin", 4 * 1024 * 1024 + 1, 3);
        t.WriteRandom($"{root}/name with spaces.txt", 1000, 4);
        t.WriteRandom($"{root}/ünïcødé-文件.txt", 2000, 5);
        t.WriteRandom($"{root}/-leading-dash.txt", 300, 6);
        t.WriteRandom($"{root}/deep/er/and/deeper/file.txt", 70000, 7);
        Directory.CreateDirectory(t[$"{root}/empty-dir"]);
        Directory.CreateDirectory(t[$"{root}/deep/empty-inside"]);
        File.CreateSymbolicLink(t[$"{root}/rel-link"], "one.bin");
        File.CreateSymbolicLink(t[$"{root}/deep/dir-link"], "er");
        File.CreateSymbolicLink(t[$"{root}/dangling"], "does-not-exist");
        File.CreateSymbolicLink(t[$"{root}/abs-link"], "/etc/hostname");
    }

    [Theory]
    [InlineData(false, "1")]
    [InlineData(false, "4")]
    [InlineData(true, "2")]
    public void Tree_with_every_kind_of_entry_copies_byte_identically(bool portable, string jobs)
    {
        using var t = new TempDir();
        BuildAwkwardTree(t, "src");
        var env = portable ? new Dictionary<string, string> { ["BCMR_PORTABLE_IO"] = "1" } : null;

        var r = BcmrRunner.Run(["copy", "-r", "-j", jobs, t["src"], t["dst"]], env);

        Assert.True(r.ExitCode == 0, r.ToString());
        Trees.AssertIdentical(t["src"], t["dst"]);
        Assert.Equal("one.bin", new FileInfo(t["dst/rel-link"]).LinkTarget);
        Assert.Equal("does-not-exist", new FileInfo(t["dst/dangling"]).LinkTarget);
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Fact]
    public void Copying_into_an_existing_directory_puts_the_item_inside_it()
    {
        using var t = new TempDir();
        t.WriteRandom("src/a.txt", 100, 1);
        t.WriteRandom("file.txt", 50, 2);
        Directory.CreateDirectory(t["dst"]);

        BcmrRunner.Run("copy", "-r", t["src"], t["dst"]).AssertExit(0);
        BcmrRunner.Run("copy", t["file.txt"], t["dst"] + "/").AssertExit(0);

        Assert.Equal(Trees.Sha256(t["src/a.txt"]), Trees.Sha256(t["dst/src/a.txt"]));
        Assert.Equal(Trees.Sha256(t["file.txt"]), Trees.Sha256(t["dst/file.txt"]));
    }

    [Fact]
    public void Several_sources_go_into_the_destination_directory()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 10, 1);
        t.WriteRandom("b.bin", 20, 2);
        Directory.CreateDirectory(t["dst"]);

        var r = BcmrRunner.Run("copy", t["a.bin"], t["b.bin"], t["dst"]);

        r.AssertExit(0);
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["dst/a.bin"]));
        Assert.Equal(Trees.Sha256(t["b.bin"]), Trees.Sha256(t["dst/b.bin"]));
    }

    [Fact]
    public void Leading_dash_names_work_after_double_dash()
    {
        using var t = new TempDir();
        t.WriteRandom("-x.txt", 10, 1);

        var r = BcmrRunner.Run(["copy", "--", "-x.txt", "-y.txt"], cwd: t.Path);

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(t["-x.txt"]), Trees.Sha256(t["-y.txt"]));
    }

    [Fact]
    public void Preserve_keeps_mode_and_mtime_of_files_directories_and_links()
    {
        using var t = new TempDir();
        var file = t.WriteRandom("src/sub/f.sh", 1000, 1);
        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("750", 8));
        var old = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc).AddTicks(1234567);
        File.SetLastWriteTimeUtc(file, old);
        File.SetUnixFileMode(t["src/sub"], (UnixFileMode)Convert.ToInt32("705", 8));
        Directory.SetLastWriteTimeUtc(t["src/sub"], old.AddDays(1));
        Directory.SetLastWriteTimeUtc(t["src"], old.AddDays(2));

        var r = BcmrRunner.Run("copy", "-r", "-p", t["src"], t["dst"]);

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(File.GetUnixFileMode(file), File.GetUnixFileMode(t["dst/sub/f.sh"]));
        Assert.Equal(old, File.GetLastWriteTimeUtc(t["dst/sub/f.sh"]));
        Assert.Equal(File.GetUnixFileMode(t["src/sub"]), File.GetUnixFileMode(t["dst/sub"]));
        Assert.Equal(old.AddDays(1), Directory.GetLastWriteTimeUtc(t["dst/sub"]));
        Assert.Equal(old.AddDays(2), Directory.GetLastWriteTimeUtc(t["dst"]));
    }

    [Fact]
    public void Preserve_through_the_portable_path_keeps_mode_and_mtime()
    {
        using var t = new TempDir();
        var file = t.WriteRandom("src/f.sh", 1000, 1);
        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("741", 8));
        var old = new DateTime(2003, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(file, old);

        var r = BcmrRunner.Run(["copy", "-r", "-p", t["src"], t["dst"]], new Dictionary<string, string> { ["BCMR_PORTABLE_IO"] = "1" });

        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(File.GetUnixFileMode(file), File.GetUnixFileMode(t["dst/f.sh"]));
        Assert.Equal(old, File.GetLastWriteTimeUtc(t["dst/f.sh"]));
    }

    [RequiresToolsFact("attr", "setfattr", "getfattr")]
    public void Preserve_copies_extended_attributes()
    {
        using var t = new TempDir();
        var file = t.WriteRandom("f.bin", 100, 1);
        Assert.True(Tool.TryRun("setfattr", "-n", "user.bcmr-test", "-v", "kept", file),
            "setfattr failed (.ci/run installs the attr package; /tmp must allow user xattrs)");

        BcmrRunner.Run("copy", "-p", file, t["copy.bin"]).AssertExit(0);
        BcmrRunner.Run("copy", file, t["plain.bin"]).AssertExit(0);

        Assert.Contains("user.bcmr-test=\"kept\"", Tool.Output("getfattr", "-d", t["copy.bin"]));
        Assert.DoesNotContain("user.bcmr-test", Tool.Output("getfattr", "-d", t["plain.bin"]));
    }

    /// <summary>The reference BLAKE3 (.ci/run installs b3sum).</summary>
    internal static string B3sum(string path) => Tool.Output("b3sum", "--no-names", path);

    [Fact]
    public void Without_preserve_the_copy_gets_a_new_mtime_and_the_source_mode_minus_umask()
    {
        using var t = new TempDir();
        var file = t.WriteRandom("f.sh", 100, 1);
        File.SetUnixFileMode(file, (UnixFileMode)Convert.ToInt32("777", 8));
        File.SetLastWriteTimeUtc(file, new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));

        BcmrRunner.Run("copy", file, t["g.sh"]).AssertExit(0);

        Assert.Equal((UnixFileMode)Convert.ToInt32("755", 8), File.GetUnixFileMode(t["g.sh"])); // test host umask is 022
        Assert.True(File.GetLastWriteTimeUtc(t["g.sh"]) > DateTime.UtcNow.AddMinutes(-5));
    }

    [Fact]
    public void Exclude_skips_matching_files_and_does_not_descend_matching_directories()
    {
        using var t = new TempDir();
        t.WriteRandom("src/keep.txt", 10, 1);
        t.WriteRandom("src/drop.log", 10, 2);
        t.WriteRandom("src/node_modules/x/y.js", 10, 3);
        t.WriteRandom("src/sub/keep2.txt", 10, 4);

        var r = BcmrRunner.Run("copy", "-r", "-e", @"\.log$", "-e", "node_modules", t["src"], t["dst"]);

        r.AssertExit(0);
        Assert.True(File.Exists(t["dst/keep.txt"]));
        Assert.True(File.Exists(t["dst/sub/keep2.txt"]));
        Assert.False(File.Exists(t["dst/drop.log"]));
        Assert.False(Directory.Exists(t["dst/node_modules"]));
    }

    [Fact]
    public void Dry_run_lists_what_it_would_copy_and_changes_nothing()
    {
        using var t = new TempDir();
        t.WriteRandom("src/a.txt", 10, 1);
        t.WriteRandom("src/b/c.txt", 10, 2);

        var r = BcmrRunner.Run("copy", "-r", "-n", t["src"], t["dst"]);

        r.AssertExit(0);
        Assert.Contains("a.txt", r.Stdout);
        Assert.Contains("c.txt", r.Stdout);
        Assert.False(Directory.Exists(t["dst"]));
    }

    [Fact]
    public void Force_overwrites_an_existing_destination()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 5000, 1);
        t.WriteRandom("b.bin", 300, 2);

        var r = BcmrRunner.Run("copy", "-f", t["a.bin"], t["b.bin"]);

        r.AssertExit(0);
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["b.bin"]));
    }

    [Fact]
    public void Verify_reports_the_blake3_of_each_copied_file_in_json()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 100_000, 1);

        var r = BcmrRunner.Run("--json", "copy", "-V", t["a.bin"], t["b.bin"]);

        r.AssertExit(0);
        var file = Assert.Single(r.JsonFiles);
        Assert.Equal("copied", file.GetProperty("status").GetString());
        Assert.Equal(B3sum(t["a.bin"]), file.GetProperty("blake3").GetString());
        Assert.Equal("success", r.JsonResult.GetProperty("status").GetString());
        Assert.Equal(100_000, r.JsonResult.GetProperty("bytes_total").GetInt64());
    }

    [Fact]
    public void Many_small_files_in_many_directories_copy_with_parallel_jobs()
    {
        using var t = new TempDir();
        var rnd = new Random(42);
        for (int d = 0; d < 40; d++)
            for (int f = 0; f < 25; f++)
                t.WriteRandom($"src/d{d % 7}/e{d}/f{f}.txt", rnd.Next(1, 8192), d * 100 + f);

        var r = BcmrRunner.Run("--json", "copy", "-r", "-j", "8", t["src"], t["dst"]);

        Assert.True(r.ExitCode == 0, r.ToString());
        Trees.AssertIdentical(t["src"], t["dst"]);
        Assert.Equal(1000, r.JsonResult.GetProperty("files").GetInt32());
    }
}
