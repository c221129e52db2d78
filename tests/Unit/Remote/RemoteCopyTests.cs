using Bcmr.Engine.Local;
using System.Diagnostics;
using System.Text.Json;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// Remote copies through a real OpenSSH server on 127.0.0.1 and the real `bcmr serve` (the bcmr under test, run by
/// sshd as the remote command). Every result is checked by content hash (SHA-256, independent of our BLAKE3).
/// </summary>
public class RemoteCopyTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private const int MiB = 1024 * 1024;

    /// <summary>A fresh directory under the server root (the remote side) and a local temp dir.</summary>
    private sealed class Scene : IDisposable
    {
        public readonly TempDir Local = new();
        public readonly string RemoteDir;

        public Scene(SshdFixture fx)
        {
            RemoteDir = Path.Combine(fx.RemoteHome, "t-" + Guid.NewGuid().ToString("n")[..12]);
            Directory.CreateDirectory(RemoteDir);
        }

        public string R(string rel) => Path.Combine(RemoteDir, rel);

        public void Dispose()
        {
            Local.Dispose();
            try { Directory.Delete(RemoteDir, recursive: true); } catch (IOException) { }
        }
    }

    private RunResult Bcmr(params string[] args) => BcmrRunner.Run(args, fx.Env(), timeout: TimeSpan.FromMinutes(4));

    private static void MakeTree(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "sub", "deeper"));
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        File.WriteAllText(Path.Combine(root, "a.txt"), "alpha\n");
        File.WriteAllBytes(Path.Combine(root, "zero-length"), []);
        ResumeTests.WriteRandom(Path.Combine(root, "sub", "block-and-a-bit.bin"), 4 * MiB + 17, 3);
        File.WriteAllText(Path.Combine(root, "sub", "deeper", "odd name [1] $x 'q' ü.txt"), "odd\n");
        File.WriteAllText(Path.Combine(root, "-starts-with-dash"), "dash\n");
    }

    [SshFact]
    public void Upload_and_download_of_a_tree_are_byte_identical()
    {
        using var s = new Scene(fx);
        var src = s.Local["tree"];
        MakeTree(src);

        var up = Bcmr("--json", "copy", "-r", src, fx.Remote(s.R("up")));
        Assert.True(up.ExitCode == 0, up.ToString());
        Trees.AssertIdentical(src, s.R("up"));
        Trees.AssertNoStagingFiles(s.RemoteDir);
        Assert.All(up.JsonFiles, f => Assert.Equal("ssh", f.GetProperty("transport").GetString()));
        var sent = up.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("block-and-a-bit.bin"));
        Assert.Equal(4 * MiB + 17, sent.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(Tool.Output("b3sum", "--no-names", Path.Combine(src, "sub", "block-and-a-bit.bin")).Trim(), sent.GetProperty("blake3").GetString());

        var down = Bcmr("copy", "-r", fx.Remote(s.R("up")), s.Local["back"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Trees.AssertIdentical(src, s.Local["back"]);
        Trees.AssertNoStagingFiles(s.Local.Path);
    }

    [SshFact]
    public void Symlinks_are_followed_on_upload_and_listed_as_their_targets_on_download()
    {
        using var s = new Scene(fx);
        var src = s.Local["tree"];
        Directory.CreateDirectory(Path.Combine(src, "dir"));
        File.WriteAllText(Path.Combine(src, "dir", "real.txt"), "real\n");
        File.CreateSymbolicLink(Path.Combine(src, "link.txt"), "dir/real.txt");
        File.CreateSymbolicLink(Path.Combine(src, "dangling"), "nowhere");
        File.CreateSymbolicLink(Path.Combine(src, "dir", "loop"), "..");

        var up = Bcmr("--json", "copy", "-r", src, fx.Remote(s.R("up")));
        up.AssertExit(0);
        Assert.Equal("real\n", File.ReadAllText(s.R("up/link.txt")));
        Assert.False(new FileInfo(s.R("up/link.txt")).LinkTarget is not null, "uploaded as a file, not a link");
        Assert.False(File.Exists(s.R("up/dangling")));
        Assert.Contains(up.JsonFiles, f => f.GetProperty("status").GetString() == "skipped" && f.GetProperty("message").GetString()!.Contains("dangling"));
        Assert.Contains(up.JsonFiles, f => f.GetProperty("status").GetString() == "skipped" && f.GetProperty("message").GetString()!.Contains("links back"));

        // On the server side, a link inside the root is served as what it points to.
        File.CreateSymbolicLink(s.R("up/served-link"), "dir/real.txt");
        var down = Bcmr("copy", "-r", fx.Remote(s.R("up")), s.Local["back"]);
        down.AssertExit(0);
        Assert.Equal("real\n", File.ReadAllText(s.Local["back/served-link"]));
    }

    [SshFact]
    public void A_300_MiB_file_goes_up_and_down_intact()
    {
        using var s = new Scene(fx);
        var big = s.Local["big.bin"];
        ResumeTests.WriteRandom(big, 300L * MiB + 123, 7);
        var up = Bcmr("--json", "copy", big, fx.Remote(s.R("big.bin")));
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(Trees.Sha256(big), Trees.Sha256(s.R("big.bin")));
        var down = Bcmr("--json", "copy", fx.Remote(s.R("big.bin")), s.Local["back.bin"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(Trees.Sha256(big), Trees.Sha256(s.Local["back.bin"]));
        var expected = Tool.Output("b3sum", "--no-names", big).Trim();
        Assert.Equal(expected, up.JsonFiles.Single().GetProperty("blake3").GetString());
        Assert.Equal(expected, down.JsonFiles.Single().GetProperty("blake3").GetString());
    }

    [SshFact]
    public void Two_thousand_small_files_in_one_connection()
    {
        using var s = new Scene(fx);
        var src = s.Local["many"];
        var rnd = new Random(5);
        for (int d = 0; d < 20; d++)
        {
            Directory.CreateDirectory(Path.Combine(src, $"d{d:00}"));
            for (int i = 0; i < 100; i++)
            {
                var data = new byte[rnd.Next(0, 3000)];
                rnd.NextBytes(data);
                File.WriteAllBytes(Path.Combine(src, $"d{d:00}", $"f{i:000}"), data);
            }
        }
        var up = Bcmr("--json", "copy", "-r", src, fx.Remote(s.R("many")));
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(2000, up.JsonResult.GetProperty("files").GetInt32());
        Trees.AssertIdentical(src, s.R("many"));
        var down = Bcmr("--json", "copy", "-r", fx.Remote(s.R("many")), s.Local["back"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(2000, down.JsonResult.GetProperty("files").GetInt32());
        Trees.AssertIdentical(src, s.Local["back"]);
    }

    [SshFact]
    public void Existing_destinations_are_kept_without_force_and_replaced_with_it()
    {
        using var s = new Scene(fx);
        File.WriteAllText(s.Local["new.txt"], "new\n");
        File.WriteAllText(s.R("old.txt"), "old\n");
        var refused = Bcmr("copy", s.Local["new.txt"], fx.Remote(s.R("old.txt")));
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("destination exists (use -f to overwrite)", refused.Stderr);
        Assert.Equal("old\n", File.ReadAllText(s.R("old.txt")));
        var forced = Bcmr("copy", "-f", s.Local["new.txt"], fx.Remote(s.R("old.txt")));
        forced.AssertExit(0);
        Assert.Equal("new\n", File.ReadAllText(s.R("old.txt")));

        File.WriteAllText(s.Local["here.txt"], "mine\n");
        var refusedDown = Bcmr("copy", fx.Remote(s.R("old.txt")), s.Local["here.txt"]);
        Assert.NotEqual(0, refusedDown.ExitCode);
        Assert.Contains("destination exists", refusedDown.Stderr);
        Assert.Equal("mine\n", File.ReadAllText(s.Local["here.txt"]));
        Bcmr("copy", "-f", fx.Remote(s.R("old.txt")), s.Local["here.txt"]).AssertExit(0);
        Assert.Equal("new\n", File.ReadAllText(s.Local["here.txt"]));
        Trees.AssertNoStagingFiles(s.Local.Path);
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }

    [SshFact]
    public void Into_an_existing_remote_directory_and_several_sources()
    {
        using var s = new Scene(fx);
        File.WriteAllText(s.Local["one"], "1");
        File.WriteAllText(s.Local["two"], "2");
        var r = Bcmr("copy", s.Local["one"], s.Local["two"], fx.Remote(s.RemoteDir + "/"));
        r.AssertExit(0);
        Assert.Equal("1", File.ReadAllText(s.R("one")));
        Assert.Equal("2", File.ReadAllText(s.R("two")));
        var notDir = Bcmr("copy", s.Local["one"], s.Local["two"], fx.Remote(s.R("missing")));
        notDir.AssertExit(1);
        Assert.Contains("target directory does not exist", notDir.Stderr);

        // Relative remote paths are relative to the remote home (the server root); user@host: works too.
        var rel = Path.GetRelativePath(fx.RemoteHome, s.R("rel.txt"));
        Bcmr("copy", s.Local["one"], "root@" + SshdFixture.Host + ":" + rel).AssertExit(0);
        Assert.Equal("1", File.ReadAllText(s.R("rel.txt")));

        // Wildcards in a remote source are matched against the server's listing.
        Directory.CreateDirectory(s.R("logs"));
        File.WriteAllText(s.R("logs/a.gz"), "a");
        File.WriteAllText(s.R("logs/b.gz"), "b");
        File.WriteAllText(s.R("logs/c.txt"), "c");
        Directory.CreateDirectory(s.Local["logs"]);
        Bcmr("copy", fx.Remote(s.R("logs/*.gz")), s.Local["logs"]).AssertExit(0);
        Assert.Equal(["a.gz", "b.gz"], Directory.GetFiles(s.Local["logs"]).Select(p => Path.GetFileName(p)!).Order().ToArray());
    }

    [SshFact]
    public void Verify_catches_a_download_damaged_on_the_local_disk_with_and_without_fast()
    {
        using var s = new Scene(fx);
        ResumeTests.WriteRandom(s.R("f.bin"), 5 * MiB + 3, 31);
        // The test hook flips one byte of the received file after it is written and before -V reads it back. Without
        // --fast the read-back is compared with what was received; under --fast (nothing hashed while receiving) with
        // the server's BLAKE3 of the source.
        var env = fx.Env(new() { ["BCMR_FAULT_CORRUPT_STAGED"] = "damaged" });
        foreach (var fast in new[] { false, true })
        {
            var dst = s.Local[fast ? "damaged-fast.bin" : "damaged.bin"];
            var r = BcmrRunner.Run(["--json", "copy", "-V", .. fast ? new[] { "--fast" } : [], fx.Remote(s.R("f.bin")), dst], env,
                executable: BcmrRunner.FaultHost);
            Assert.True(r.ExitCode != 0, r.ToString());
            var failed = r.JsonFiles.Single();
            Assert.Equal("failed", failed.GetProperty("status").GetString());
            Assert.Contains("verification failed", failed.GetProperty("error").GetString());
            if (fast) Assert.Contains("the source's BLAKE3 is " + Tool.Output("b3sum", "--no-names", s.R("f.bin")).Trim(), failed.GetProperty("error").GetString());
            Assert.False(File.Exists(dst), "a copy that failed verification is removed");
            Trees.AssertNoStagingFiles(Path.GetDirectoryName(dst)!);
        }
        // The same download without the fault passes under --fast -V.
        var ok = BcmrRunner.Run(["copy", "-V", "--fast", fx.Remote(s.R("f.bin")), s.Local["good.bin"]], fx.Env());
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Equal(Trees.Sha256(s.R("f.bin")), Trees.Sha256(s.Local["good.bin"]));
    }

    [SshFact]
    public void Sync_fast_and_verify_still_give_identical_bytes()
    {
        using var s = new Scene(fx);
        var src = s.Local["tree"];
        MakeTree(src);
        Bcmr("copy", "-r", "--sync", "-V", src, fx.Remote(s.R("synced"))).AssertExit(0);
        Trees.AssertIdentical(src, s.R("synced"));
        var fast = Bcmr("--json", "copy", "-r", "--fast", "--sync", "-V", fx.Remote(s.R("synced")), s.Local["fast"]);
        Assert.True(fast.ExitCode == 0, fast.ToString());
        Trees.AssertIdentical(src, s.Local["fast"]);
        var big = fast.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("block-and-a-bit.bin"));
        Assert.Equal(Tool.Output("b3sum", "--no-names", Path.Combine(src, "sub", "block-and-a-bit.bin")).Trim(), big.GetProperty("blake3").GetString());
    }

    [SshFact("strace", "strace")]
    public void Fast_downloads_are_sent_with_sendfile_and_default_ones_are_hashed_by_the_server()
    {
        using var s = new Scene(fx);
        ResumeTests.WriteRandom(s.R("f.bin"), 9 * MiB + 5, 21);
        var trace = s.Local["trace"];
        var wrapper = s.Local["remote-strace"];
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec strace -f -e trace=sendfile -o '{trace}' '{fx.RemoteBcmr}' \"$@\"\n");
        File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ED);
        foreach (var (fast, name) in new[] { (true, "fast.bin"), (false, "slow.bin") })
        {
            File.Delete(trace);
            var r = BcmrRunner.Run(["--json", "copy", .. fast ? new[] { "--fast" } : [], fx.Remote(s.R("f.bin")), s.Local[name]],
                fx.Env(new() { ["BCMR_REMOTE"] = wrapper }));
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal(Trees.Sha256(s.R("f.bin")), Trees.Sha256(s.Local[name]));
            int calls = File.ReadAllLines(trace).Count(l => l.Contains("sendfile(1,"));
            if (fast) Assert.True(calls > 0, "--fast used sendfile");
            else Assert.Equal(0, calls);
            // --fast hashes nothing while the data flows (there is no server hash to compare with); the default does.
            var blake3 = r.JsonFiles.Single().GetProperty("blake3");
            if (fast) Assert.Equal(System.Text.Json.JsonValueKind.Null, blake3.ValueKind);
            else Assert.Equal(Tool.Output("b3sum", "--no-names", s.R("f.bin")).Trim(), blake3.GetString());
        }
    }

    [SshFact]
    public void A_file_the_server_refuses_in_the_middle_of_a_pipelined_batch_fails_alone()
    {
        using var s = new Scene(fx);
        var src = s.Local["many"];
        Directory.CreateDirectory(src);
        for (int i = 0; i < 200; i++) File.WriteAllText(Path.Combine(src, $"f{i:000}"), $"file {i}\n");
        // File 100 cannot be written on the server: a directory holds its name (with -f nothing is checked first).
        Directory.CreateDirectory(s.R("many/f100/blocker"));
        var r = Bcmr("--json", "copy", "-r", "-f", src, fx.Remote(s.RemoteDir));
        r.AssertExit(3);
        var failed = r.JsonFiles.Where(f => f.GetProperty("status").GetString() == "failed").ToList();
        Assert.Single(failed);
        Assert.EndsWith("f100", failed[0].GetProperty("source").GetString());
        Assert.Contains("f100", failed[0].GetProperty("error").GetString());
        for (int i = 0; i < 200; i++)
            if (i != 100) Assert.Equal($"file {i}\n", File.ReadAllText(s.R($"many/f{i:000}")));
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }

    [SshFact]
    public void Move_up_removes_the_sources_only_after_the_copy_is_confirmed()
    {
        using var s = new Scene(fx);
        var src = s.Local["tree"];
        MakeTree(src);
        var expected = Trees.Describe(src);
        var r = Bcmr("move", src, fx.Remote(s.R("moved")));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(expected, Trees.Describe(s.R("moved")));
        Assert.False(Directory.Exists(src), "the moved source tree is gone");
    }

    [SshFact]
    public void Move_down_removes_each_source_after_its_copy_is_committed_and_leaves_what_it_did_not_copy()
    {
        using var s = new Scene(fx);
        MakeTree(s.R("tree"));
        File.WriteAllText(s.R("tree/sub/notes.keep"), "excluded, so it stays on the server");
        var expected = Trees.Describe(s.R("tree"));
        var b3 = Tool.Output("b3sum", "--no-names", s.R("tree/sub/block-and-a-bit.bin")).Trim();

        var down = Bcmr("--json", "move", "-e", @"\.keep$", fx.Remote(s.R("tree")), s.Local["back"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.All(down.JsonFiles, f => Assert.Equal("moved", f.GetProperty("status").GetString()));
        Assert.Equal(b3, down.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("block-and-a-bit.bin")).GetProperty("blake3").GetString());
        expected.Remove("sub/notes.keep");
        Assert.Equal(expected, Trees.Describe(s.Local["back"]));
        // Only the excluded file and the directories that hold it are left on the server.
        Assert.Equal(["sub", "sub/notes.keep"], Trees.Describe(s.R("tree")).Keys.Order(StringComparer.Ordinal).ToArray());

        // -P 2: the files and the ranges of a striped one come over two connections; every source goes once all arrived.
        Directory.CreateDirectory(s.R("tree2/sub"));
        ResumeTests.WriteRandom(s.R("tree2/big.bin"), 70 * MiB, 8);
        for (int i = 0; i < 6; i++) File.WriteAllText(s.R($"tree2/sub/f{i}.txt"), $"file {i}");
        var expected2 = Trees.Describe(s.R("tree2"));
        var striped = Bcmr("--json", "move", "-P", "2", fx.Remote(s.R("tree2")), s.Local["back2"]);
        Assert.True(striped.ExitCode == 0, striped.ToString());
        Assert.Equal(2, striped.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("big.bin")).GetProperty("connections").GetInt32());
        Assert.Equal(expected2, Trees.Describe(s.Local["back2"]));
        Assert.False(Directory.Exists(s.R("tree2")));

        // One file: its source goes too.
        File.WriteAllText(s.R("one.txt"), "one");
        var one = Bcmr("move", fx.Remote(s.R("one.txt")), s.Local["one.txt"]);
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Equal("one", File.ReadAllText(s.Local["one.txt"]));
        Assert.False(File.Exists(s.R("one.txt")));

        // A server that cannot remove (what bcmr 0.6 looks like): refused before anything is copied.
        File.WriteAllText(s.R("two.txt"), "two");
        var legacy = BcmrRunner.Run(["move", fx.Remote(s.R("two.txt")), s.Local["two.txt"]], fx.Env(new() { ["BCMR_REMOTE"] = fx.LegacyRemote(s.Local.Path) }));
        Assert.NotEqual(0, legacy.ExitCode);
        Assert.Contains("cannot remove files", legacy.Stderr);
        Assert.True(File.Exists(s.R("two.txt")));
        Assert.False(File.Exists(s.Local["two.txt"]));
    }

    [SshFact]
    public void Names_legal_on_Linux_that_Windows_would_refuse_come_down_with_the_tree()
    {
        using var s = new Scene(fx);
        var tree = s.R("logs");
        Directory.CreateDirectory(Path.Combine(tree, "day:1"));
        File.WriteAllText(Path.Combine(tree, "12:30:00.log"), "noon");
        File.WriteAllText(Path.Combine(tree, "day:1", "back\\slash.txt"), "odd");
        File.WriteAllText(Path.Combine(tree, "plain.txt"), "plain");
        var r = Bcmr("copy", "-r", "--no-fallback", fx.Remote(tree), s.Local["logs"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("noon", File.ReadAllText(s.Local["logs/12:30:00.log"]));
        Assert.Equal("odd", File.ReadAllText(Path.Combine(s.Local["logs"], "day:1", "back\\slash.txt")));
        Assert.Equal("plain", File.ReadAllText(s.Local["logs/plain.txt"]));
    }

    [SshFact]
    public void Slow_progress_is_not_a_stall_a_rate_limited_upload_and_download_outlast_a_short_timeout()
    {
        using var s = new Scene(fx);
        var f = s.Local.WriteRandom("slow.bin", 12 * 1024 * 1024, 5);
        // 12 MiB at 2 MiB/s: about 6 s during which the server has nothing to say, against a 3 s timeout (the ssh login
        // of a busy machine gets ServeClient.ConnectAllowance, tested below).
        var up = Bcmr("copy", "--no-fallback", "--compress", "none", "--bwlimit", "2M", "--timeout", "3", f, fx.Remote(s.R("slow.bin")));
        Assert.True(up.ExitCode == 0, up.ToString());
        var down = Bcmr("copy", "--no-fallback", "--compress", "none", "--bwlimit", "2M", "--timeout", "3", fx.Remote(s.R("slow.bin")), s.Local["back.bin"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(Trees.Sha256(f), Trees.Sha256(s.Local["back.bin"]));
    }

    [SshFact]
    public void A_slow_login_is_not_a_stall()
    {
        using var s = new Scene(fx);
        var f = s.Local.WriteRandom("login.bin", 100_000, 6);
        // An ssh that takes 5 s to log in, against a 2 s --timeout.
        var slowSsh = s.Local.WriteFile("slow-ssh", System.Text.Encoding.UTF8.GetBytes($"#!/bin/sh\nsleep 5\nexec {fx.SshCommand} \"$@\"\n"));
        File.SetUnixFileMode(slowSsh, (UnixFileMode)0x1ED);
        var r = BcmrRunner.Run(["copy", "--no-fallback", "--timeout", "2", f, fx.Remote(s.R("login.bin"))],
            fx.Env(new() { ["BCMR_SSH"] = slowSsh }), timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(f), Trees.Sha256(s.R("login.bin")));
        // (A server that says Welcome and then nothing is still a stall after --timeout: HostilePeerTests.)
    }

    [SshFact]
    public void Without_a_root_an_ssh_started_serve_reaches_what_the_account_may_like_scp_relative_paths_from_home()
    {
        using var s = new Scene(fx);
        var f = s.Local.WriteRandom("f.bin", 100_000, 3);
        var elsewhere = Path.Combine(fx.Dir, "elsewhere-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(elsewhere);
        var up = Bcmr("copy", "--no-fallback", f, fx.Remote(elsewhere + "/"));
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Equal(Trees.Sha256(f), Trees.Sha256(Path.Combine(elsewhere, "f.bin")));
        var down = Bcmr("copy", "--no-fallback", fx.Remote(elsewhere + "/f.bin"), s.Local["back.bin"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(Trees.Sha256(f), Trees.Sha256(s.Local["back.bin"]));
        // A relative path still means "under the home directory".
        var rel = Bcmr("copy", "--no-fallback", f, fx.Remote("rel-" + Path.GetFileName(elsewhere) + ".bin"));
        Assert.True(rel.ExitCode == 0, rel.ToString());
        Assert.True(File.Exists(Path.Combine(fx.RemoteHome, "rel-" + Path.GetFileName(elsewhere) + ".bin")));
    }

    [SshFact]
    public void Paths_outside_the_server_root_are_refused_and_nothing_is_written_there()
    {
        using var s = new Scene(fx);
        File.WriteAllText(s.Local["f"], "x");
        var outside = Path.Combine(fx.Dir, "outside-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(outside);
        var escape = Path.GetRelativePath(fx.RemoteHome, outside);  // ../outside-...
        Assert.StartsWith("..", escape);
        File.CreateSymbolicLink(s.R("out-link"), outside);

        foreach (var target in new[] { escape + "/f", outside + "/f", s.R("out-link") + "/f" })
        {
            var r = BcmrRunner.Run(["copy", "--no-fallback", s.Local["f"], fx.Remote(target)], fx.Env(new() { ["BCMR_REMOTE"] = fx.RemoteBcmrJailed }));
            r.AssertExit(1);
            Assert.Contains("is outside the server root " + fx.RemoteHome, r.Stderr);
            Assert.DoesNotContain("scp", r.Stderr);
        }
        File.WriteAllText(Path.Combine(outside, "secret"), "secret");
        var down = BcmrRunner.Run(["copy", fx.Remote(s.R("out-link") + "/secret"), s.Local["stolen"]], fx.Env(new() { ["BCMR_REMOTE"] = fx.RemoteBcmrJailed }));
        Assert.NotEqual(0, down.ExitCode);
        Assert.Contains("outside the server root", down.Stderr);
        Assert.False(File.Exists(s.Local["stolen"]));
        Assert.Equal(["secret"], Directory.GetFileSystemEntries(outside).Select(p => Path.GetFileName(p)!).ToArray());
    }

    [SshFact]
    public void A_remote_without_bcmr_falls_back_to_scp_with_a_warning_and_not_with_no_fallback()
    {
        using var s = new Scene(fx);
        ResumeTests.WriteRandom(s.Local["f.bin"], 100_000, 9);
        var env = fx.Env(new() { ["BCMR_REMOTE"] = "/nonexistent/bcmr" });
        var r = BcmrRunner.Run(["--json", "copy", s.Local["f.bin"], fx.Remote(s.R("f.bin"))], env);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries),
            l => l.Contains("falling back to scp") && l.Contains("no bcmr") && l.Contains("'/nonexistent/bcmr serve' exited 127"));
        Assert.Equal("scp", r.JsonResult.GetProperty("transport").GetString());
        Assert.Equal(Trees.Sha256(s.Local["f.bin"]), Trees.Sha256(s.R("f.bin")));

        var no = BcmrRunner.Run(["copy", "--no-fallback", s.Local["f.bin"], fx.Remote(s.R("g.bin"))], env);
        no.AssertExit(1);
        Assert.Contains("no bcmr to run on the remote host", no.Stderr);
        Assert.Contains("--no-fallback", no.Stderr);
        Assert.False(File.Exists(s.R("g.bin")));
    }

    [SshFact]
    public void Connection_failures_name_the_host_and_the_cause()
    {
        using var s = new Scene(fx);
        File.WriteAllText(s.Local["f"], "x");
        var r = BcmrRunner.Run(["copy", s.Local["f"], fx.Remote(s.R("f"))], fx.Env(new() { ["BCMR_SSH"] = fx.SshCommand + " -p 1" }));
        r.AssertExit(1);
        Assert.Contains(SshdFixture.Host + ": ssh failed", r.Stderr);
        Assert.Contains("Connection refused", r.Stderr);
        var missing = Bcmr("copy", fx.Remote(s.R("nope")), s.Local["nope"]);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("No such file or directory", missing.Stderr);
        Assert.False(File.Exists(s.Local["nope"]));
    }

    // ---- cut connections and resume --------------------------------------------------------------------------

    /// <summary>Starts a copy and kills its ssh child once <paramref name="progress"/> reports at least
    /// <paramref name="bytes"/> transferred; returns the failed run.</summary>
    private RunResult CopyAndCutAt(long bytes, Func<long> progress, params string[] args)
    {
        using var p = Process.Start(BcmrRunner.StartInfo(["--json", .. args], fx.Env()))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        bool cut = false;
        while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (progress() >= bytes)
            {
                foreach (var pid in ProcessTree.Descendants(p.Id))
                    if (ProcessTree.Command(pid).StartsWith("ssh ", StringComparison.Ordinal))
                    {
                        try { Process.GetProcessById(pid).Kill(); cut = true; } catch (ArgumentException) { }
                    }
                if (cut) break;
            }
            Thread.Sleep(1);
        }
        p.WaitForExit();
        var result = new RunResult(p.ExitCode, stdout.Result, stderr.Result);
        Assert.True(cut, "the transfer ended before the connection could be cut: " + result);
        return result;
    }

    private static long SizeOf(string dir, string pattern) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, pattern).Sum(f => { try { return new FileInfo(f).Length; } catch (IOException) { return 0; } }) : 0;

    [SshFact]
    public void With_retries_an_upload_whose_connection_is_cut_once_completes_exactly_with_one_warning()
    {
        using var s = new Scene(fx);
        const long size = 200L * MiB;
        var big = s.Local["big.bin"];
        ResumeTests.WriteRandom(big, size, 12);
        s.Local.WriteRandom("small.txt", 1000, 13);
        Directory.CreateDirectory(s.R("in"));
        var r = CopyAndCutAt(40L * MiB, () => SizeOf(s.R("in"), ".big.bin.*"),
            "copy", "--retries", "2", "--retry-delay", "0", big, s.Local["small.txt"], fx.Remote(s.R("in")));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(big), Trees.Sha256(s.R("in/big.bin")));
        Assert.Equal(Trees.Sha256(s.Local["small.txt"]), Trees.Sha256(s.R("in/small.txt")));
        Assert.Single(r.Stderr.Split('\n'), l => l.Contains("retry 1/2 of ") && l.Contains("after a transient failure"));
        Assert.DoesNotContain("retry 2/2", r.Stderr);
        // One line per file, the last attempt's, and a result that counts two files and no failure.
        var files = r.Stdout.Split('\n').Where(l => l.Contains("\"type\":\"file\"")).ToList();
        Assert.Equal(2, files.Count);
        Assert.All(files, l => Assert.Contains("\"status\":\"copied\"", l));
        Assert.Contains("\"files\":2,\"skipped\":0,\"failed\":0", r.Stdout);
        // The retry continued from what the cut connection had delivered (as -C), not from the start.
        var bigLine = JsonDocument.Parse(files.Single(l => l.Contains("big.bin"))).RootElement;
        Assert.Equal("resumed", bigLine.GetProperty("resume").GetString());
        Assert.True(bigLine.GetProperty("resumed_from").GetInt64() > 0 && bigLine.GetProperty("wire_bytes").GetInt64() < size, r.ToString());
    }

    [SshFact]
    public void Without_retries_the_same_cut_fails_the_file_and_leaves_nothing_under_its_name()
    {
        using var s = new Scene(fx);
        var big = s.Local["big.bin"];
        ResumeTests.WriteRandom(big, 200L * MiB, 12);
        var r = CopyAndCutAt(40L * MiB, () => SizeOf(s.RemoteDir, ".big.bin.*"), "copy", big, fx.Remote(s.R("big.bin")));
        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("retry", r.Stderr);
        Assert.False(File.Exists(s.R("big.bin")));
    }

    [SshFact]
    public void Errors_that_cannot_heal_are_not_retried_a_missing_or_unreadable_source()
    {
        using var s = new Scene(fx);
        var secret = s.Local.WriteRandom("secret.bin", 1000, 14);
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        // Locally, as nobody (the retry rule is the same for every transport; nobody's ssh could not log in here).
        var open = s.Local["open"];
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0x1FF);
        var unreadable = BcmrRunner.Run(["copy", "--retries", "3", "--retry-delay", "0", secret, Path.Combine(open, "secret.bin")], asUser: "65534");
        Assert.NotEqual(0, unreadable.ExitCode);
        Assert.Contains("Permission denied", unreadable.Stderr);
        Assert.DoesNotContain("retry", unreadable.Stderr);
        var missing = Bcmr("copy", "--retries", "3", "--retry-delay", "0", s.Local["nope.bin"], fx.Remote(s.R("nope.bin")));
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("No such file or directory", missing.Stderr);
        Assert.DoesNotContain("retry", missing.Stderr);
    }

    [SshFact]
    public void An_upload_cut_mid_file_resumes_and_sends_only_the_rest()
    {
        using var s = new Scene(fx);
        const long size = 256L * MiB;
        var big = s.Local["big.bin"];
        ResumeTests.WriteRandom(big, size, 11);
        var first = CopyAndCutAt(96L * MiB, () => SizeOf(s.RemoteDir, ".big.bin.*"), "copy", big, fx.Remote(s.R("big.bin")));
        Assert.NotEqual(0, first.ExitCode);
        Assert.False(File.Exists(s.R("big.bin")), "no file under the final name after a cut upload");
        // The server keeps what arrived as the partial file.
        var partial = Temporaries.PartialPath(s.R("big.bin"));
        Assert.True(SpinUntil(() => File.Exists(partial)), "partial kept by the server");
        long kept = new FileInfo(partial).Length;
        Assert.True(kept >= 90L * MiB, $"kept {kept}");

        var second = Bcmr("--json", "copy", "-C", big, fx.Remote(s.R("big.bin")));
        Assert.True(second.ExitCode == 0, second.ToString());
        var line = second.JsonFiles.Single();
        long resumedFrom = line.GetProperty("resumed_from").GetInt64();
        long wire = line.GetProperty("wire_bytes").GetInt64();
        Assert.Equal("resumed", line.GetProperty("resume").GetString());
        Assert.True(resumedFrom >= 90L * MiB, $"resumed from {resumedFrom}");
        Assert.Equal(size - resumedFrom, wire);
        Assert.Equal(Trees.Sha256(big), Trees.Sha256(s.R("big.bin")));
        Assert.Equal(Tool.Output("b3sum", "--no-names", big).Trim(), line.GetProperty("blake3").GetString());
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }

    [SshFact]
    public void A_download_cut_mid_file_resumes_and_receives_only_the_rest()
    {
        using var s = new Scene(fx);
        const long size = 256L * MiB;
        ResumeTests.WriteRandom(s.R("big.bin"), size, 12);
        var partial = Temporaries.PartialPath(s.Local["big.bin"]);
        var first = CopyAndCutAt(96L * MiB, () => File.Exists(partial) ? new FileInfo(partial).Length : 0, "copy", fx.Remote(s.R("big.bin")), s.Local["big.bin"]);
        Assert.NotEqual(0, first.ExitCode);
        Assert.False(File.Exists(s.Local["big.bin"]), "no file under the final name after a cut download");
        Assert.Contains("rerun with -C", first.Stdout + first.Stderr);
        long kept = new FileInfo(partial).Length;
        Assert.True(kept >= 96L * MiB, $"kept {kept}");

        var second = Bcmr("--json", "copy", "-C", fx.Remote(s.R("big.bin")), s.Local["big.bin"]);
        Assert.True(second.ExitCode == 0, second.ToString());
        var line = second.JsonFiles.Single();
        Assert.Equal("resumed", line.GetProperty("resume").GetString());
        Assert.Equal(kept, line.GetProperty("resumed_from").GetInt64());
        Assert.Equal(size - kept, line.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(Trees.Sha256(s.R("big.bin")), Trees.Sha256(s.Local["big.bin"]));
        Trees.AssertNoStagingFiles(s.Local.Path);
    }

    [SshFact]
    public void Trees_resume_in_both_directions_and_a_damaged_partial_starts_over()
    {
        using var s = new Scene(fx);
        var src = s.Local["tree"];
        MakeTree(src);
        ResumeTests.WriteRandom(Path.Combine(src, "sub", "twelve.bin"), 12 * MiB, 4);
        // A complete earlier upload of part of the tree, a partial one, and a partial whose bytes are wrong.
        Bcmr("copy", "-r", src, fx.Remote(s.RemoteDir)).AssertExit(0);
        File.Delete(s.R("tree/a.txt"));
        File.Delete(s.R("tree/sub/twelve.bin"));
        var good = File.ReadAllBytes(Path.Combine(src, "sub", "twelve.bin"));
        File.WriteAllBytes(Temporaries.PartialPath(s.R("tree/sub/twelve.bin")), good[..(9 * MiB)]);
        var damaged = File.ReadAllBytes(Path.Combine(src, "sub", "block-and-a-bit.bin"))[..(4 * MiB + 5)];
        damaged[100] ^= 1;
        File.Delete(s.R("tree/sub/block-and-a-bit.bin"));
        File.WriteAllBytes(Temporaries.PartialPath(s.R("tree/sub/block-and-a-bit.bin")), damaged);

        var again = Bcmr("--json", "copy", "-r", "-C", src, fx.Remote(s.RemoteDir));
        Assert.True(again.ExitCode == 0, again.ToString());
        Trees.AssertIdentical(src, s.R("tree"));
        Trees.AssertNoStagingFiles(s.R("tree"));
        JsonElement F(RunResult r, string end) => r.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith(end));
        Assert.Equal("resumed", F(again, "twelve.bin").GetProperty("resume").GetString());
        Assert.Equal(9 * MiB, F(again, "twelve.bin").GetProperty("resumed_from").GetInt64());
        Assert.Equal(3 * MiB, F(again, "twelve.bin").GetProperty("wire_bytes").GetInt64());
        Assert.Equal("started_over", F(again, "block-and-a-bit.bin").GetProperty("resume").GetString());
        Assert.Equal("fresh", F(again, "/a.txt").GetProperty("resume").GetString());
        Assert.Equal(6, F(again, "/a.txt").GetProperty("wire_bytes").GetInt64());
        var complete = F(again, "deeper/odd name [1] $x 'q' ü.txt");
        Assert.Equal("skipped", complete.GetProperty("status").GetString());
        Assert.Equal("already_complete", complete.GetProperty("resume").GetString());
        Assert.Equal(0, complete.GetProperty("wire_bytes").GetInt64());

        // Download side: a partial local copy of a tree continues.
        Directory.CreateDirectory(s.Local["down"]);
        Bcmr("copy", "-r", fx.Remote(s.R("tree")), s.Local["down"]).AssertExit(0);
        File.Delete(s.Local["down/tree/sub/twelve.bin"]);
        File.WriteAllBytes(Temporaries.PartialPath(s.Local["down/tree/sub/twelve.bin"]), good[..(5 * MiB)]);
        var down = Bcmr("--json", "copy", "-r", "-C", fx.Remote(s.R("tree")), s.Local["down"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal(5 * MiB, F(down, "twelve.bin").GetProperty("resumed_from").GetInt64());
        Assert.Equal(7 * MiB, F(down, "twelve.bin").GetProperty("wire_bytes").GetInt64());
        Trees.AssertIdentical(src, s.Local["down/tree"]);
        Trees.AssertNoStagingFiles(s.Local["down"]);
    }

    [SshFact]
    public void Strict_and_append_resume_over_the_wire_in_both_directions()
    {
        using var s = new Scene(fx);
        var src = s.Local["f.bin"];
        ResumeTests.WriteRandom(src, 10 * MiB + 3, 31);
        var bytes = File.ReadAllBytes(src);
        JsonElement Run(params string[] args)
        {
            var r = Bcmr(["--json", "copy", .. args]);
            Assert.True(r.ExitCode == 0, r.ToString());
            return r.JsonFiles.Single();
        }

        // -a trusts the length the other side holds.
        File.WriteAllBytes(Temporaries.PartialPath(s.R("f.bin")), bytes[..(6 * MiB)]);
        var a = Run("-a", src, fx.Remote(s.R("f.bin")));
        Assert.Equal(6 * MiB, a.GetProperty("resumed_from").GetInt64());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.R("f.bin")));

        // -s proves the prefix: a partial with one flipped byte early on starts over.
        var bad = bytes[..(7 * MiB)];
        bad[10] ^= 0xff;
        File.WriteAllBytes(Temporaries.PartialPath(s.Local["down.bin"]), bad);
        var strict = Run("-s", fx.Remote(s.R("f.bin")), s.Local["down.bin"]);
        Assert.Equal("started_over", strict.GetProperty("resume").GetString());
        Assert.Equal(10 * MiB + 3, strict.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.Local["down.bin"]));

        // ... and a good one continues; an identical complete file is skipped without data.
        File.Delete(s.Local["down.bin"]);
        File.WriteAllBytes(Temporaries.PartialPath(s.Local["down.bin"]), bytes[..(7 * MiB)]);
        var good = Run("-s", fx.Remote(s.R("f.bin")), s.Local["down.bin"]);
        Assert.Equal(7 * MiB, good.GetProperty("resumed_from").GetInt64());
        Assert.Equal(3 * MiB + 3, good.GetProperty("wire_bytes").GetInt64());
        var again = Run("-s", fx.Remote(s.R("f.bin")), s.Local["down.bin"]);
        Assert.Equal("already_complete", again.GetProperty("resume").GetString());
        Assert.Equal(0, again.GetProperty("wire_bytes").GetInt64());
        var upAgain = Run("-s", src, fx.Remote(s.R("f.bin")));
        Assert.Equal("already_complete", upAgain.GetProperty("resume").GetString());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.Local["down.bin"]));
        Trees.AssertNoStagingFiles(s.Local.Path);
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }

    private static bool SpinUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10)) { if (condition()) return true; Thread.Sleep(20); }
        return condition();
    }
}
