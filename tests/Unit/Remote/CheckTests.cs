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
        Assert.Equal(0, BcmrRunner.Run("copy", "-r", d["src"], d["dst"]).ExitCode);
        var same = BcmrRunner.Run("--json", "check", "-r", d["src"], d["dst"]);
        Assert.True(same.ExitCode == 0, same.ToString());
        Assert.Equal("in_sync", same.JsonResult.GetProperty("status").GetString());

        File.WriteAllText(d["src/new.txt"], "n");
        File.WriteAllText(d["src/a.txt"], "longer now");
        File.WriteAllText(d["dst/src/extra.txt"], "x");
        var diff = BcmrRunner.Run("--json", "check", "-r", d["src"], d["dst"]);
        Assert.Equal(1, diff.ExitCode);
        var j = diff.JsonResult;
        Assert.Equal(["src/new.txt"], j.GetProperty("added").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["src/a.txt"], j.GetProperty("modified").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["src/extra.txt"], j.GetProperty("missing").EnumerateArray().Select(e => e.GetString()!).ToArray());
        var err = BcmrRunner.Run("check", d["nope"], d["dst"]);
        Assert.Equal(2, err.ExitCode);
        Assert.Contains("No such file or directory", err.Stderr);
    }

    [SshFact]
    public void Remote_check_in_both_directions()
    {
        using var d = new TempDir();
        Make(d["src"]);
        var remoteDir = Path.Combine(fx.RemoteHome, "chk-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(remoteDir);
        Assert.Equal(0, BcmrRunner.Run(["copy", "-r", d["src"], fx.Remote(remoteDir)], fx.Env()).ExitCode);
        var up = BcmrRunner.Run(["--json", "check", "-r", d["src"], fx.Remote(remoteDir)], fx.Env());
        Assert.True(up.ExitCode == 0, up.ToString());
        // Checked the way it was copied: a download compared with the remote it came from.
        Directory.CreateDirectory(d["back"]);
        Assert.Equal(0, BcmrRunner.Run(["copy", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env()).ExitCode);
        Assert.Equal(0, BcmrRunner.Run(["check", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env()).ExitCode);
        File.WriteAllText(Path.Combine(remoteDir, "src", "sub", "b.txt"), "changed size");
        var down = BcmrRunner.Run(["--json", "check", "-r", fx.Remote(Path.Combine(remoteDir, "src")), d["back"]], fx.Env());
        Assert.Equal(1, down.ExitCode);
        Assert.Equal(["src/sub/b.txt"], down.JsonResult.GetProperty("modified").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Directory.Delete(remoteDir, true);
    }
}
