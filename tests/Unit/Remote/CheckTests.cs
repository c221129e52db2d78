using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>`bcmr check`: local against local, local against remote, remote against local.</summary>
public class CheckTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private static void Make(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "sub"));
        File.WriteAllText(Path.Combine(root, "a.txt"), "a");
        File.WriteAllText(Path.Combine(root, "sub", "b.txt"), "bb");
    }

    [Fact]
    public void Local_check_reports_added_modified_missing_with_bcmr_exit_codes()
    {
        using var d = new TempDir();
        Make(d["src"]);
        Directory.CreateDirectory(d["dst"]);
        BcmrRunner.Run("copy", "-r", d["src"], d["dst"]).AssertExit(0);
        var same = BcmrRunner.Run("--json", "check", "-r", d["src"], d["dst"]);
        Assert.True(same.ExitCode == 0, same.ToString());
        Assert.Equal("in_sync", same.JsonResult.GetProperty("status").GetString());

        File.WriteAllText(d["src/new.txt"], "n");
        File.WriteAllText(d["src/a.txt"], "longer now");
        File.WriteAllText(d["dst/src/extra.txt"], "x");
        var diff = BcmrRunner.Run("--json", "check", "-r", d["src"], d["dst"]);
        diff.AssertExit(1);
        var j = diff.JsonResult;
        Assert.Equal(["src/new.txt"], j.GetProperty("added").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["src/a.txt"], j.GetProperty("modified").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["src/extra.txt"], j.GetProperty("missing").EnumerateArray().Select(e => e.GetString()!).ToArray());
        var err = BcmrRunner.Run("check", d["nope"], d["dst"]);
        err.AssertExit(2);
        Assert.Contains("No such file or directory", err.Stderr);
    }

    [SshFact]
    public void Remote_check_in_both_directions()
    {
        using var d = new TempDir();
        Make(d["src"]);
        var remoteDir = Path.Combine(fx.RemoteHome, "chk-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(remoteDir);
        BcmrRunner.Run(["copy", "-r", d["src"], fx.Remote(remoteDir)], fx.Env()).AssertExit(0);
        var up = BcmrRunner.Run(["--json", "check", "-r", d["src"], fx.Remote(remoteDir)], fx.Env());
        Assert.True(up.ExitCode == 0, up.ToString());
        // Checked the way it was copied: a download compared with the remote it came from.
        Directory.CreateDirectory(d["back"]);
        BcmrRunner.Run(["copy", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env()).AssertExit(0);
        BcmrRunner.Run(["check", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env()).AssertExit(0);
        File.WriteAllText(Path.Combine(remoteDir, "src", "sub", "b.txt"), "changed size");
        var down = BcmrRunner.Run(["--json", "check", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env());
        down.AssertExit(1);
        Assert.Equal(["src/sub/b.txt"], down.JsonResult.GetProperty("modified").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Directory.Delete(remoteDir, true);
    }

    /// <summary>The tree of issue 15: a linked directory, a link to a file, a dangling link and a link back up.</summary>
    private static void MakeWithLinks(string root)
    {
        Make(root);
        Directory.CreateDirectory(Path.Combine(root, "real"));
        File.WriteAllText(Path.Combine(root, "real", "c.txt"), "ccc");
        File.CreateSymbolicLink(Path.Combine(root, "linkdir"), "real");
        File.CreateSymbolicLink(Path.Combine(root, "linkfile"), "a.txt");
        File.CreateSymbolicLink(Path.Combine(root, "dangling"), "nowhere");
        File.CreateSymbolicLink(Path.Combine(root, "sub", "up"), "..");
    }

    [SshFact]
    public void Check_after_an_upload_of_linked_directories_finds_nothing_missing()
    {
        using var d = new TempDir();
        MakeWithLinks(d["src"]);
        var remoteDir = Path.Combine(fx.RemoteHome, "chk-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(remoteDir);
        try
        {
            var copy = BcmrRunner.Run(["--json", "copy", "-r", d["src"], fx.Remote(remoteDir)], fx.Env());
            Assert.True(File.Exists(Path.Combine(remoteDir, "src", "linkdir", "c.txt")), copy.ToString());
            Assert.Equal("ccc", File.ReadAllText(Path.Combine(remoteDir, "src", "linkdir", "c.txt")));
            Assert.False(Path.Exists(Path.Combine(remoteDir, "src", "dangling")));
            Assert.False(Path.Exists(Path.Combine(remoteDir, "src", "sub", "up")), "a link back to an ancestor is not entered");

            var up = BcmrRunner.Run(["--json", "check", "-r", d["src"], fx.Remote(remoteDir)], fx.Env());
            Assert.True(up.ExitCode == 0, up.ToString());
            Assert.Equal("in_sync", up.JsonResult.GetProperty("status").GetString());

            // and the other way: what a download of it wrote is what the server lists
            Directory.CreateDirectory(d["back"]);
            BcmrRunner.Run(["copy", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env()).AssertExit(0);
            var down = BcmrRunner.Run(["check", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env());
            Assert.True(down.ExitCode == 0, down.ToString());

            // a file the upload wrote through the link, then removed on the server, is reported missing there
            File.Delete(Path.Combine(remoteDir, "src", "linkdir", "c.txt"));
            var gone = BcmrRunner.Run(["--json", "check", "-r", d["src"], fx.Remote(remoteDir)], fx.Env());
            gone.AssertExit(1);
            Assert.Equal(["src/linkdir/c.txt"], gone.JsonResult.GetProperty("added").EnumerateArray().Select(e => e.GetString()!).ToArray());
        }
        finally { Directory.Delete(remoteDir, true); }
    }

    [Fact]
    public void Local_check_compares_links_as_links_as_the_local_copy_keeps_them()
    {
        using var d = new TempDir();
        MakeWithLinks(d["src"]);
        Directory.CreateDirectory(d["dst"]);
        var copy = BcmrRunner.Run("copy", "-r", d["src"], d["dst"]);
        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.Equal("real", new FileInfo(d["dst/src/linkdir"]).LinkTarget);
        var same = BcmrRunner.Run("--json", "check", "-r", d["src"], d["dst"]);
        Assert.True(same.ExitCode == 0, same.ToString());

        // the link replaced by a real directory with the same contents is a difference: a local copy keeps the link
        Directory.Delete(d["dst/src/linkdir"]);
        Directory.CreateDirectory(d["dst/src/linkdir"]);
        File.WriteAllText(d["dst/src/linkdir/c.txt"], "ccc");
        var diff = BcmrRunner.Run("--json", "check", "-r", d["src"], d["dst"]);
        diff.AssertExit(1);
        Assert.Equal(["src/linkdir"], diff.JsonResult.GetProperty("modified").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["src/linkdir/c.txt"], diff.JsonResult.GetProperty("missing").EnumerateArray().Select(e => e.GetString()!).ToArray());
    }
}
