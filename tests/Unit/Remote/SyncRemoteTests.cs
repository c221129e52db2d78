using System.Text.Json;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// `bcmr sync` through the loopback sshd to a real `bcmr serve`, both ways: after the run the trees are identical
/// (contents, mtimes, modes), the extraneous entries gone from the destination, and a second run does
/// nothing and sends no file data. Against a server without the sync feature (what bcmr 0.6 looks like) a sync
/// still copies, says it compares sizes only, and refuses --delete.
/// </summary>
public class SyncRemoteTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private static JsonElement[] Actions(RunResult r) =>
        r.JsonLines.Where(l => l.GetProperty("type").GetString() == "action").ToArray();

    private static int Count(RunResult r, string field) => r.JsonResult.GetProperty(field).GetInt32();

    /// <summary>The source tree of <see cref="SyncTests.MakeSource"/> without its link (the protocol has none: an
    /// upload follows it, a download gets a file), plus many small files to exercise the pipelining.</summary>
    private static void MakeSource(string src)
    {
        SyncTests.MakeSource(src);
        File.Delete(Path.Combine(src, "link"));
        for (int i = 0; i < 40; i++) File.WriteAllText(Path.Combine(src, "a", $"small{i:00}.txt"), new string('s', i));
    }

    [SshFact]
    public void Upload_mirror_sets_times_and_modes_removes_extraneous_entries_and_a_second_run_sends_nothing()
    {
        using var s = new RemoteScene(fx, "sync-up-");
        MakeSource(s.Local["src"]);
        var dst = s.R("mirror");
        Directory.CreateDirectory(Path.Combine(dst, "old", "deeper"));
        File.WriteAllText(Path.Combine(dst, "old", "deeper", "z"), "z");
        File.WriteAllText(Path.Combine(dst, "stale.txt"), "s");
        File.WriteAllText(Path.Combine(dst, "run.sh"), "an older version");

        var first = BcmrRunner.Run(["--json", "sync", "--delete", s.Local["src"], fx.Remote(dst)], s.Env());
        Assert.True(first.ExitCode == 0, first.ToString());
        SyncTests.AssertMirror(s.Local["src"], dst);
        Assert.Equal(4, Count(first, "deleted"));
        Assert.Equal(1, Count(first, "updated"));
        Trees.AssertNoStagingFiles(dst);

        var second = BcmrRunner.Run(["--json", "sync", "--delete", s.Local["src"], fx.Remote(dst)], s.Env());
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Empty(Actions(second));
        Assert.Equal(0, second.JsonResult.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(0, Count(second, "copied") + Count(second, "updated") + Count(second, "deleted"));

        // --checksum: equal sizes compared by BLAKE3 on each side; a changed byte is found, the rest left alone.
        var path = s.Local["src/a/small10.txt"];
        var mtime = File.GetLastWriteTimeUtc(path);
        File.WriteAllText(path, new string('t', 10));
        File.SetLastWriteTimeUtc(path, mtime);
        var quick = BcmrRunner.Run(["--json", "sync", s.Local["src"], fx.Remote(dst)], s.Env());
        Assert.Empty(Actions(quick)); // same size and mtime: the quick check cannot see it
        var sum = BcmrRunner.Run(["--json", "sync", "-c", s.Local["src"], fx.Remote(dst)], s.Env());
        Assert.True(sum.ExitCode == 0, sum.ToString());
        var only = Assert.Single(Actions(sum));
        Assert.Equal("checksum", only.GetProperty("reason").GetString());
        Assert.Equal("a/small10.txt", only.GetProperty("path").GetString());
        SyncTests.AssertMirror(s.Local["src"], dst);
    }

    [SshFact]
    public void Download_mirror_keeps_times_and_modes_removes_extraneous_entries_and_a_second_run_receives_nothing()
    {
        using var s = new RemoteScene(fx, "sync-down-");
        MakeSource(s.R("src"));
        var dst = s.Local["mirror"];
        Directory.CreateDirectory(Path.Combine(dst, "old"));
        File.WriteAllText(Path.Combine(dst, "old", "z"), "z");
        File.WriteAllText(Path.Combine(dst, "stale.txt"), "s");
        Directory.CreateDirectory(s.Local["outside"]);
        File.WriteAllText(s.Local["outside/precious"], "p");
        File.CreateSymbolicLink(Path.Combine(dst, "escape"), s.Local["outside"]);

        var first = BcmrRunner.Run(["--json", "sync", "--delete", fx.Remote(s.R("src")), dst], s.Env());
        Assert.True(first.ExitCode == 0, first.ToString());
        SyncTests.AssertMirror(s.R("src"), dst); // contents, modes (ListMeta) and mtimes
        Assert.Equal(File.GetLastWriteTimeUtc(s.R("src/a/x.txt")), File.GetLastWriteTimeUtc(Path.Combine(dst, "a", "x.txt"))); // to the tick
        Assert.Equal("p", File.ReadAllText(s.Local["outside/precious"]));
        Assert.Equal(4, Count(first, "deleted")); // old, old/z, stale.txt, escape (the link, not what it points to)

        var second = BcmrRunner.Run(["--json", "sync", "--delete", fx.Remote(s.R("src")), dst], s.Env());
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Empty(Actions(second));
        Assert.Equal(0, second.JsonResult.GetProperty("wire_bytes").GetInt64());
    }

    [SshFact]
    public void Upload_backups_on_the_server_never_replace_an_earlier_backup_of_the_same_name()
    {
        using var s = new RemoteScene(fx, "sync-bak-");
        var src = s.Local["src"];
        Directory.CreateDirectory(Path.Combine(src, "d"));
        File.WriteAllText(Path.Combine(src, "top.txt"), "v1");
        File.WriteAllText(Path.Combine(src, "d", "f.txt"), "f1");
        var dst = s.R("mirror");
        RunResult Mirror() => BcmrRunner.Run(["--json", "sync", "--delete", "--backup-dir", "old/versions", src, fx.Remote(dst)], s.Env());
        Assert.True(Mirror() is { ExitCode: 0 }, "first run");
        File.WriteAllText(Path.Combine(dst, "old.txt"), "not in the source");
        Directory.CreateDirectory(Path.Combine(dst, "old"));

        File.WriteAllText(Path.Combine(src, "top.txt"), "v2, longer");
        Directory.Delete(Path.Combine(src, "d"), recursive: true);
        var r = Mirror();
        Assert.True(r.ExitCode == 0, r.ToString());
        Directory.CreateDirectory(Path.Combine(src, "d"));
        File.WriteAllText(Path.Combine(src, "d", "f.txt"), "f2");
        File.WriteAllText(Path.Combine(src, "top.txt"), "v3, longer still");
        Assert.True(Mirror() is { ExitCode: 0 }, "third run");
        Directory.Delete(Path.Combine(src, "d"), recursive: true);
        r = Mirror();
        Assert.True(r.ExitCode == 0, r.ToString());

        var versions = Path.Combine(dst, "old", "versions");
        Assert.Equal("v2, longer", File.ReadAllText(Path.Combine(versions, "top.txt")));
        Assert.Equal("v1", File.ReadAllText(Path.Combine(versions, "top.txt.~1~")));
        Assert.Equal("f2", File.ReadAllText(Path.Combine(versions, "d", "f.txt")));
        Assert.Equal("f1", File.ReadAllText(Path.Combine(versions, "d.~1~", "f.txt")));
        Assert.Equal("not in the source", File.ReadAllText(Path.Combine(versions, "old.txt")));
        Assert.Equal("v3, longer still", File.ReadAllText(Path.Combine(dst, "top.txt")));
    }

    [SshFact]
    public void A_server_without_the_sync_feature_gets_size_only_detection_with_a_note_and_delete_is_refused()
    {
        using var s = new RemoteScene(fx, "sync-v06-");
        MakeSource(s.Local["src"]);
        var dst = s.R("mirror");
        File.WriteAllText(s.R("extra.txt"), "x");
        // What bcmr 0.6's serve looks like to our client: the same binary, without the Extended capability.
        var legacy = fx.LegacyRemote(s.Local.Path);
        var env = s.Env(new() { ["BCMR_REMOTE"] = legacy });
        var copy = BcmrRunner.Run(["--json", "sync", s.Local["src"], fx.Remote(dst)], env);
        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.Contains("changes are detected by size only", copy.Stderr);
        Assert.Equal(Trees.Describe(s.Local["src"]), Trees.Describe(dst));
        var again = BcmrRunner.Run(["--json", "sync", s.Local["src"], fx.Remote(dst)], env);
        Assert.Empty(Actions(again));

        var refused = BcmrRunner.Run(["sync", "--delete", s.Local["src"], fx.Remote(s.RemoteDir)], env);
        refused.AssertExit(1);
        Assert.Contains("cannot remove or move files", refused.Stderr);
        Assert.True(File.Exists(s.R("extra.txt")));
    }

    [SshFact]
    public void A_download_sync_killed_mid_file_is_finished_by_its_rerun_which_copies_only_what_is_missing()
    {
        using var s = new RemoteScene(fx, "sync-kill-");
        MakeSource(s.R("src"));
        ResumeTests.WriteRandom(s.R("src/huge.bin"), 120L * 1024 * 1024, 9);
        var dst = s.Local["mirror"];
        var psi = BcmrRunner.StartInfo(["--json", "sync", "-C", "--bwlimit", "20M", fx.Remote(s.R("src")), dst], s.Env());
        using (var p = System.Diagnostics.Process.Start(psi)!)
        {
            p.StandardInput.Close();
            var stderr = p.StandardError.ReadToEndAsync();
            // 120 MiB at 20 MiB/s: about 6 s of huge.bin (the last file), killed once 8 MiB of it are here.
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null)
            {
                using var j = JsonDocument.Parse(line);
                if (j.RootElement.GetProperty("type").GetString() == "progress" && j.RootElement.GetProperty("file_progress").GetInt64() >= 8L << 20) break;
            }
            if (line is null) Assert.Fail("the sync finished before it could be killed: " + stderr.Result);
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.True(PartialBytes(dst) >= 4L << 20);
        Assert.False(File.Exists(Path.Combine(dst, "huge.bin")));
        Assert.True(File.Exists(Path.Combine(dst, "a", "x.txt"))); // files go in the listing's order over one connection: a/ first

        var rerun = BcmrRunner.Run(["--json", "sync", "-C", fx.Remote(s.R("src")), dst], s.Env());
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        var huge = Assert.Single(Actions(rerun), a => a.GetProperty("path").GetString() == "huge.bin");
        Assert.True(huge.GetProperty("resumed_from").GetInt64() > 0, huge.ToString());
        Assert.DoesNotContain(Actions(rerun), a => a.GetProperty("path").GetString() == "a/x.txt");
        Assert.Equal(Trees.Describe(s.R("src")), Trees.Describe(dst));
        Trees.AssertNoStagingFiles(dst);
    }

    private static long PartialBytes(string dir)
    {
        if (!Directory.Exists(dir)) return 0;
        var options = new EnumerationOptions { AttributesToSkip = 0, RecurseSubdirectories = true };
        long most = 0;
        foreach (var f in Directory.EnumerateFiles(dir, "*.bcmr-part", options))
        {
            try { most = Math.Max(most, new FileInfo(f).Length); }
            catch (FileNotFoundException) { }
        }
        return most;
    }
}
