using System.Diagnostics;
using System.Text.Json;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// <c>-P/--parallel N</c> through the loopback sshd with real <c>bcmr serve</c> processes: N ssh processes, each with
/// its own connection (no ControlMaster), files spread over them, results in the plan's order, a connection killed
/// mid-copy, and a server that refuses logins beyond a limit. Every tree is compared by SHA-256.
/// </summary>
public class ParallelTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private const int MiB = 1024 * 1024;

    private static RunResult Bcmr(RemoteScene s, params string[] args) => BcmrRunner.Run(args, s.Env(), timeout: TimeSpan.FromMinutes(4));

    /// <summary>Small files, empty ones, one of several blocks, nested directories: what spreading must not reorder or lose.</summary>
    private static void MakeTree(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "sub", "deeper"));
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        for (int i = 0; i < 30; i++) ResumeTests.WriteRandom(Path.Combine(root, i % 3 == 0 ? "sub" : ".", $"f{i:D2}.bin"), 1000 * i + 7, i);
        File.WriteAllBytes(Path.Combine(root, "zero-length"), []);
        ResumeTests.WriteRandom(Path.Combine(root, "sub", "deeper", "big.bin"), 9 * MiB + 5, 99);
        ResumeTests.WriteRandom(Path.Combine(root, "mid.bin"), 3 * MiB, 98);
    }

    private static List<string> Sources(RunResult r) => r.JsonFiles.Select(f => f.GetProperty("source").GetString()!).ToList();

    [SshTheory]
    [InlineData(2)]
    [InlineData(4)]
    public void Trees_both_ways_are_identical_and_reported_in_the_same_order_as_over_one_connection(int n)
    {
        using var s = new RemoteScene(fx, "p-");
        var src = s.Local["tree"];
        MakeTree(src);

        var one = Bcmr(s, "--json", "copy", "-r", src, fx.Remote(s.R("one")));
        Assert.True(one.ExitCode == 0, one.ToString());
        File.Delete(s.SshLog);
        var up = Bcmr(s, "--json", "copy", "-r", "-P", n.ToString(), src, fx.Remote(s.R("up")));
        Assert.True(up.ExitCode == 0, up.ToString());
        Trees.AssertIdentical(src, s.R("up"));
        Trees.AssertNoStagingFiles(s.RemoteDir);
        Assert.Equal(Sources(one), Sources(up));
        var big = up.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("big.bin"));
        Assert.Equal(Tool.Output("b3sum", "--no-names", Path.Combine(src, "sub", "deeper", "big.bin")).Trim(), big.GetProperty("blake3").GetString());
        Assert.Equal(n, s.SshStarted.Length);

        var oneDown = Bcmr(s, "--json", "copy", "-r", fx.Remote(s.R("up")), s.Local["back1"]);
        Assert.True(oneDown.ExitCode == 0, oneDown.ToString());
        var down = Bcmr(s, "--json", "copy", "-r", "-P", n.ToString(), fx.Remote(s.R("up")), s.Local["back"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Trees.AssertIdentical(src, s.Local["back"]);
        Trees.AssertNoStagingFiles(s.Local["back"]);
        Assert.Equal(Sources(oneDown), Sources(down));
        Assert.Equal(one.JsonResult.GetProperty("files").GetInt32(), down.JsonResult.GetProperty("files").GetInt32());
    }

    [SshFact]
    public void Each_connection_is_its_own_ssh_process_that_neither_uses_nor_starts_a_control_master()
    {
        using var s = new RemoteScene(fx, "p-");
        var src = s.Local["tree"];
        MakeTree(src);
        var up = Bcmr(s, "copy", "-r", "-P", "3", src, fx.Remote(s.R("up")));
        Assert.True(up.ExitCode == 0, up.ToString());
        var started = s.SshStarted;
        Assert.Equal(3, started.Select(l => l.Split(' ')[0]).Distinct().Count());
        Assert.All(started, l => Assert.Contains("-o ControlMaster=no -o ControlPath=none", l));

        // One connection keeps the user's configuration (a ControlMaster there is theirs to use).
        File.Delete(s.SshLog);
        var single = Bcmr(s, "copy", "-r", src, fx.Remote(s.R("single")));
        Assert.True(single.ExitCode == 0, single.ToString());
        Assert.DoesNotContain("ControlMaster", Assert.Single(s.SshStarted));
    }

    [SshFact]
    public void Compression_dedup_fast_and_the_total_bandwidth_limit_hold_over_several_connections()
    {
        using var s = new RemoteScene(fx, "p-");
        var src = s.Local["src"];
        Directory.CreateDirectory(src);
        for (int i = 0; i < 3; i++) File.WriteAllText(Path.Combine(src, $"text{i}.log"), string.Concat(Enumerable.Repeat($"line {i} of a log that compresses\n", 100_000)));
        ResumeTests.WriteRandom(Path.Combine(src, "dedup.bin"), 20 * MiB, 7);

        // zstd on every connection: the logs cross in far fewer bytes than they hold.
        var up = Bcmr(s, "--json", "copy", "-r", "-P", "3", "--compress", "zstd", src, fx.Remote(s.R("a")));
        Assert.True(up.ExitCode == 0, up.ToString());
        Trees.AssertIdentical(src, s.R("a"));
        var logs = up.JsonFiles.Where(f => f.GetProperty("source").GetString()!.EndsWith(".log")).ToList();
        Assert.Equal(3, logs.Count);
        Assert.All(logs, f => Assert.True(f.GetProperty("wire_bytes").GetInt64() * 10 < f.GetProperty("bytes").GetInt64(), f.ToString()));

        // The same big file again, to another name: the server's content store has every block, none crosses.
        var again = Bcmr(s, "--json", "copy", "-r", "-P", "3", src, fx.Remote(s.R("b")));
        Assert.True(again.ExitCode == 0, again.ToString());
        var dedup = again.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("dedup.bin"));
        Assert.Equal(5, dedup.GetProperty("dedup_blocks").GetInt32());
        Assert.True(dedup.GetProperty("wire_bytes").GetInt64() < MiB, dedup.ToString());
        Trees.AssertIdentical(src, s.R("b"));

        // --fast downloads over three connections, checked here (-V against the server's hash of the source).
        var down = Bcmr(s, "--json", "copy", "-r", "-P", "3", "--fast", "-V", fx.Remote(s.R("a")), s.Local["down"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        Trees.AssertIdentical(src, s.Local["down"]);

        // --bwlimit is the total of all connections: 24 MiB at 8 MiB/s takes about 3 s however many carry it
        // (a limit per connection would let three finish in about 1 s).
        var limited = s.Local["limited"];
        Directory.CreateDirectory(limited);
        for (int i = 0; i < 3; i++) ResumeTests.WriteRandom(Path.Combine(limited, $"r{i}.bin"), 8 * MiB, 30 + i);
        var clock = Stopwatch.StartNew();
        var slow = Bcmr(s, "copy", "-r", "-P", "3", "--bwlimit", "8M", limited, fx.Remote(s.R("c")));
        Assert.True(slow.ExitCode == 0, slow.ToString());
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(2.5), $"24 MiB at a total of 8 MiB/s took {clock.Elapsed.TotalSeconds:0.0} s");
        Trees.AssertIdentical(limited, s.R("c"));
    }

    [SshFact]
    public void Without_bcmr_on_the_remote_host_a_parallel_copy_falls_back_to_scp()
    {
        using var s = new RemoteScene(fx, "p-");
        var src = s.Local["src"];
        MakeTree(src);
        var r = BcmrRunner.Run(["copy", "-r", "-P", "3", src, fx.Remote(s.R("scp"))],
            fx.Env(new() { ["BCMR_SSH"] = $"{s.SshWrapper} -F {fx.SshConfig}", ["BCMR_REMOTE"] = "/nonexistent/bcmr" }), timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("falling back to scp", r.Stderr);
        Trees.AssertIdentical(src, s.R("scp"));
    }

    [Fact]
    public void Parallel_below_one_is_a_usage_error()
    {
        using var dir = new TempDir();
        var r = BcmrRunner.Run("copy", "-P", "0", dir.WriteFile("a", [1]), "h:x");
        r.AssertExit(2);
        Assert.Contains("--parallel must be at least 1", r.Stderr);
    }

    [SshFact]
    public void A_killed_connection_fails_only_its_own_files_the_others_complete_and_a_resume_sends_only_what_is_missing()
    {
        using var s = new RemoteScene(fx, "p-");
        var src = s.Local["src"];
        Directory.CreateDirectory(src);
        const int files = 8, size = 12 * MiB;
        for (int i = 0; i < files; i++) ResumeTests.WriteRandom(Path.Combine(src, $"part{i}.bin"), size, 200 + i);
        var dst = s.R("src"); // the same command twice: copied into the remote directory, under its own name

        // 96 MiB at 24 MB/s in all: about four seconds, every connection busy when one of them is cut.
        var psi = BcmrRunner.StartInfo(["--json", "copy", "-r", "-P", "4", "--bwlimit", "24M", src, fx.Remote(s.RemoteDir)], s.Env());
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var deadline = Stopwatch.StartNew();
        while (s.SshStarted.Length < 4 && deadline.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(20);
        Assert.Equal(4, s.SshStarted.Length);
        // Cut one connection once data flows on all four (four files on the remote hold bytes, 8 MiB in all): on a
        // busy machine one login can lag the others, and a connection cut before it sent anything leaves nothing
        // for the rerun to resume.
        while (!Directory.Exists(dst) || Directory.EnumerateFiles(dst, "*", SearchOption.AllDirectories).Select(f => new FileInfo(f).Length).ToList() is var sizes
               && (sizes.Count(n => n > 0) < 4 || sizes.Sum() < 8 * MiB))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "no data arrived");
            Thread.Sleep(20);
        }
        int victim = int.Parse(s.SshStarted[1].Split(' ')[0]);
        Process.GetProcessById(victim).Kill();
        Assert.True(p.WaitForExit(120_000), "bcmr did not finish");
        var run = new RunResult(p.ExitCode, stdout.Result, stderr.Result);

        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("lost", run.Stderr);
        var failed = run.JsonFiles.Where(f => f.GetProperty("status").GetString() == "failed").ToList();
        var copied = run.JsonFiles.Where(f => f.GetProperty("status").GetString() == "copied").ToList();
        Assert.NotEmpty(failed);
        Assert.True(copied.Count >= 4, $"the three other connections should carry on:\n{run}");
        Assert.Equal(files, failed.Count + copied.Count);
        foreach (var f in copied)
        {
            var name = Path.GetFileName(f.GetProperty("source").GetString()!);
            Assert.Equal(Trees.Sha256(Path.Combine(src, name)), Trees.Sha256(Path.Combine(dst, name)));
        }
        foreach (var f in failed)
        {
            var name = Path.GetFileName(f.GetProperty("source").GetString()!);
            Assert.False(File.Exists(Path.Combine(dst, name)), $"{name} failed but exists under its final name");
        }

        var again = Bcmr(s, "--json", "copy", "-r", "-C", "-P", "4", src, fx.Remote(s.RemoteDir));
        Assert.True(again.ExitCode == 0, again.ToString());
        Trees.AssertIdentical(src, dst);
        Trees.AssertNoStagingFiles(s.RemoteDir);
        long wire = again.JsonFiles.Sum(f => f.TryGetProperty("wire_bytes", out var w) ? w.GetInt64() : 0);
        Assert.True(wire < (long)failed.Count * size, $"the rerun sent {wire} bytes for {failed.Count} unfinished files of {size}:\n{again}");
        Assert.Equal(copied.Count, again.JsonFiles.Count(f => f.GetProperty("status").GetString() == "skipped"));
    }
}

/// <summary>A server that drops logins beyond two at once (<c>MaxStartups 2</c>) and a copy asking for four.</summary>
public class ParallelLoginLimitTests(LimitedSshdFixture fx) : IClassFixture<LimitedSshdFixture>
{
    [SshFact]
    public void Connections_the_server_refuses_are_named_with_the_limit_and_the_copy_completes_on_the_others()
    {
        using var local = new TempDir();
        var src = local["src"];
        Directory.CreateDirectory(src);
        for (int i = 0; i < 12; i++) ResumeTests.WriteRandom(Path.Combine(src, $"f{i}.bin"), 300_000 + i, i);
        var dst = Path.Combine(fx.RemoteHome, "lim-" + Guid.NewGuid().ToString("n")[..12]);
        try
        {
            var r = BcmrRunner.Run(["--json", "copy", "-r", "-P", "4", src, fx.Remote(dst)], fx.Env(), timeout: TimeSpan.FromMinutes(2));
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("could not be opened", r.Stderr);
            Assert.Contains("MaxStartups", r.Stderr);
            Trees.AssertIdentical(src, dst);
            Assert.Equal(12, r.JsonFiles.Count(f => f.GetProperty("status").GetString() == "copied"));
        }
        finally
        {
            try { Directory.Delete(dst, recursive: true); } catch (IOException) { }
        }
    }
}
