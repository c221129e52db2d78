using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>`bcmr remove` through the real program: rm's rules with bcmr's flags.</summary>
public class RemoveTests
{
    private static TempDir Tree()
    {
        var d = new TempDir();
        Directory.CreateDirectory(d["t/sub/empty"]);
        File.WriteAllText(d["t/a.txt"], "a");
        File.WriteAllText(d["t/sub/keep.log"], "log");
        File.WriteAllText(d["t/sub/b.txt"], "b");
        File.WriteAllText(d["outside.txt"], "precious");
        File.CreateSymbolicLink(d["t/link-out"], d["outside.txt"]);
        Directory.CreateDirectory(d["t/dirlink-target"]);
        return d;
    }

    [Fact]
    public void Recursive_removal_removes_links_never_their_targets()
    {
        using var d = Tree();
        var r = BcmrRunner.Run("remove", "-r", d["t"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.False(Directory.Exists(d["t"]));
        Assert.Equal("precious", File.ReadAllText(d["outside.txt"]));
    }

    [Fact]
    public void A_directory_needs_r_or_d_when_empty_and_missing_paths_need_f()
    {
        using var d = Tree();
        var dir = BcmrRunner.Run("remove", d["t/sub"]);
        dir.AssertExit(1);
        Assert.Contains("is a directory (use -r", dir.Stderr);
        Assert.True(Directory.Exists(d["t/sub"]));
        BcmrRunner.Run("remove", "-d", d["t/sub/empty"]).AssertExit(0);
        Assert.False(Directory.Exists(d["t/sub/empty"]));
        var full = BcmrRunner.Run("remove", "-d", d["t/sub"]);
        full.AssertExit(1);
        Assert.Contains("Directory not empty", full.Stderr);

        var missing = BcmrRunner.Run("remove", d["nope"], d["t/a.txt"]);
        missing.AssertExit(3);
        Assert.Contains("nope: No such file or directory", missing.Stderr);
        Assert.False(File.Exists(d["t/a.txt"]));
        BcmrRunner.Run("remove", "-f", d["nope"]).AssertExit(0);
    }

    [Fact]
    public void Excluded_entries_and_the_directories_holding_them_are_kept()
    {
        using var d = Tree();
        var r = BcmrRunner.Run("--json", "remove", "-r", "-e", @"\.log$", d["t"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(d["t/sub/keep.log"]));
        Assert.False(File.Exists(d["t/sub/b.txt"]));
        Assert.False(File.Exists(d["t/a.txt"]));
        Assert.Equal(3, r.JsonResult.GetProperty("kept").GetInt32()); // keep.log, and sub and t that hold it
    }

    [Fact]
    public void Dry_run_lists_and_removes_nothing_and_dot_operands_are_refused()
    {
        using var d = Tree();
        var before = Trees.Describe(d.Path);
        var r = BcmrRunner.Run("remove", "-r", "-n", d["t"]);
        r.AssertExit(0);
        Assert.Contains("would remove " + d["t/a.txt"], r.Stdout);
        Assert.Equal(before, Trees.Describe(d.Path));
        var dot = BcmrRunner.Run("remove", "-r", d["t"] + "/.");
        dot.AssertExit(1);
        Assert.Contains("refusing to remove", dot.Stderr);
        Assert.Equal(before, Trees.Describe(d.Path));
    }

    [Fact]
    public void Interactive_asks_and_a_no_keeps_the_file()
    {
        using var d = Tree();
        var psi = BcmrRunner.StartInfo(["remove", "-i", d["t/a.txt"], d["t/sub/b.txt"]]);
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.StandardInput.Write("n\ny\n");
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("remove file '" + d["t/a.txt"] + "'? [y/N]", err);
        Assert.True(File.Exists(d["t/a.txt"]));
        Assert.False(File.Exists(d["t/sub/b.txt"]));
    }
}
