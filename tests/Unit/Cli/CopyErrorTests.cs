using System.Diagnostics;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>Every failure a user can meet: one message naming the path and the cause, the documented exit code,
/// and nothing half-written under a final name.</summary>
public class CopyErrorTests
{
    private const int Failure = 1, Usage = 2, Partial = 3, Interrupted = 130;

    [Fact]
    public void Missing_source_names_the_path_and_creates_nothing()
    {
        using var t = new TempDir();
        var r = BcmrRunner.Run("copy", t["nope.txt"], t["dst.txt"]);

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains($"{t["nope.txt"]}: No such file or directory", r.Stderr);
        Assert.False(File.Exists(t["dst.txt"]));
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--delete-excluded")]       // an option of a newer bcmr sync (issue 21)
    [InlineData("--rendezvous", "x")]       // an option with a value, which none of our commands has
    public void Unknown_options_are_usage_errors_before_anything_is_copied(params string[] option)
    {
        using var t = new TempDir();
        t.WriteRandom("a.txt", 10, 1);
        Directory.CreateDirectory(t["dst"]);

        var r = BcmrRunner.Run(["copy", .. option, t["a.txt"], t["dst"]]);

        Assert.Equal(Usage, r.ExitCode);
        Assert.Contains($"unknown option '{option[0]}'", r.Stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(t["dst"]));
    }

    [Fact]
    public void A_path_that_starts_with_a_dash_is_copied_after_double_dash_and_an_option_value_may_start_with_one()
    {
        using var t = new TempDir();
        t.WriteRandom("-odd.txt", 10, 1);
        Directory.CreateDirectory(t["dst"]);

        var r = BcmrRunner.Run(["copy", "--exclude=-nomatch", "--", t["-odd.txt"], t["dst"]]);
        Assert.True(r.ExitCode == 0, r.ToString());
        // Relative, as users type it: only "--" makes it a path.
        var rel = BcmrRunner.Run(["copy", "--", "-odd.txt", "dst/again.txt"], cwd: t.Path);
        Assert.True(rel.ExitCode == 0, rel.ToString());
        Assert.Equal(Trees.Sha256(t["-odd.txt"]), Trees.Sha256(t["dst/again.txt"]));
    }

    [Fact]
    public void Log_appends_a_json_line_per_file_and_per_run_and_an_unopenable_log_stops_before_copying()
    {
        using var t = new TempDir();
        t.WriteRandom("a.txt", 10, 1);
        t.WriteRandom("b.txt", 20, 2);
        Directory.CreateDirectory(t["dst"]);
        var log = t["copies.log"];

        BcmrRunner.Run("copy", "--log", log, t["a.txt"], t["b.txt"], t["dst"]).AssertExit(0);
        var second = BcmrRunner.Run("copy", "-f", "--log", log, t["a.txt"], t["missing.txt"], t["dst"]);
        Assert.Equal(Partial, second.ExitCode);

        var lines = File.ReadAllLines(log).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["file", "file", "result", "file", "file", "result"], lines.Select(l => l.GetProperty("type").GetString()));
        Assert.All(lines, l => Assert.True(DateTime.TryParse(l.GetProperty("time").GetString(), out _)));
        Assert.All(lines, l => Assert.Equal("copy", l.GetProperty("operation").GetString()));
        Assert.Equal([t["dst/a.txt"], t["dst/b.txt"]], lines.Take(2).Select(l => l.GetProperty("destination").GetString()).Order());
        Assert.Equal(2, lines[2].GetProperty("files").GetInt32());
        Assert.Equal(0, lines[2].GetProperty("exit_code").GetInt32());
        Assert.Equal(1, lines[5].GetProperty("failed").GetInt32());
        Assert.Equal(Partial, lines[5].GetProperty("exit_code").GetInt32());
        Assert.Contains(lines.Skip(3).Take(2), l => l.GetProperty("status").GetString() == "failed" && l.GetProperty("error_code").GetString() == "NotFound");

        var refused = BcmrRunner.Run("copy", "--log", t["no/such/dir/x.log"], t["a.txt"], t["dst/c.txt"]);
        Assert.Equal(Usage, refused.ExitCode);
        Assert.Contains("log file", refused.Stderr);
        Assert.False(File.Exists(t["dst/c.txt"]));
    }

    [Fact]
    public void A_missing_source_among_good_ones_fails_alone_with_the_partial_exit_code()
    {
        using var t = new TempDir();
        t.WriteRandom("a.txt", 10, 1);
        Directory.CreateDirectory(t["dst"]);

        var r = BcmrRunner.Run("copy", t["a.txt"], t["missing.txt"], t["dst"]);

        Assert.Equal(Partial, r.ExitCode);
        Assert.Contains("missing.txt: No such file or directory", r.Stderr);
        Assert.Equal(Trees.Sha256(t["a.txt"]), Trees.Sha256(t["dst/a.txt"]));
    }

    [Fact]
    public void Destination_exists_without_force_is_refused_and_left_untouched()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 5 * 1024 * 1024, 1);
        t.WriteRandom("small.bin", 100, 3);
        var before = Trees.Sha256(t.WriteRandom("b.bin", 300, 2));

        var big = BcmrRunner.Run("copy", t["a.bin"], t["b.bin"]);
        var small = BcmrRunner.Run("copy", t["small.bin"], t["b.bin"]);

        foreach (var r in new[] { big, small })
        {
            Assert.Equal(Failure, r.ExitCode);
            Assert.Contains($"{t["b.bin"]}: destination exists (use -f to overwrite)", r.Stderr);
        }
        Assert.Equal(before, Trees.Sha256(t["b.bin"]));
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Fact]
    public void Copying_a_directory_into_itself_is_refused()
    {
        using var t = new TempDir();
        t.WriteRandom("src/a.txt", 10, 1);

        var into = BcmrRunner.Run("copy", "-r", t["src"], t["src/sub"]);
        var self = BcmrRunner.Run("copy", "-r", t["src"], t["src"]);

        Assert.Equal(Failure, into.ExitCode);
        Assert.Contains("into itself", into.Stderr);
        Assert.Equal(Failure, self.ExitCode);
        Assert.False(Directory.Exists(t["src/sub"]));
        Assert.False(Directory.Exists(t["src/src"]));
    }

    [Theory]
    [InlineData("same")]
    [InlineData("force-same")]
    [InlineData("hardlink")]
    [InlineData("symlink")]
    [InlineData("into-own-dir")]
    public void Source_equal_to_destination_is_refused_and_the_file_survives(string variant)
    {
        using var t = new TempDir();
        var a = t.WriteRandom("a.bin", 10_000, 1);
        var hash = Trees.Sha256(a);
        string[] args = variant switch
        {
            "same" => ["copy", a, a],
            "force-same" => ["copy", "-f", a, a],
            "hardlink" => ["copy", "-f", a, MakeHardLink(a, t["b.bin"])],
            "symlink" => ["copy", "-f", a, File.CreateSymbolicLink(t["c.bin"], a).FullName],
            _ => ["copy", "-f", a, t.Path],
        };

        var r = BcmrRunner.Run(args);

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains("are the same file", r.Stderr);
        Assert.Equal(hash, Trees.Sha256(a));
        Trees.AssertNoStagingFiles(t.Path);
    }

    internal static string MakeHardLink(string existing, string link)
    {
        Tool.Output("ln", existing, link);
        return link;
    }

    [Fact]
    public void Several_sources_into_a_file_is_refused_before_anything_is_copied()
    {
        using var t = new TempDir();
        t.WriteRandom("a.txt", 10, 1);
        t.WriteRandom("b.txt", 10, 2);
        var before = Trees.Sha256(t.WriteRandom("target.txt", 10, 3));

        var r = BcmrRunner.Run("copy", "-f", t["a.txt"], t["b.txt"], t["target.txt"]);

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains("target is not a directory", r.Stderr);
        Assert.Equal(before, Trees.Sha256(t["target.txt"]));
    }

    [Fact]
    public void A_directory_without_recursive_is_refused()
    {
        using var t = new TempDir();
        t.WriteRandom("src/a.txt", 10, 1);

        var r = BcmrRunner.Run("copy", t["src"], t["dst"]);

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains("is a directory (use -r", r.Stderr);
        Assert.False(Directory.Exists(t["dst"]));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("many")]
    public void Bad_job_counts_are_usage_errors_not_hangs(string jobs)
    {
        using var t = new TempDir();
        t.WriteRandom("a.txt", 10, 1);
        var r = BcmrRunner.Run(["copy", "-j", jobs, t["a.txt"], t["b.txt"]], timeout: TimeSpan.FromSeconds(30));

        Assert.Equal(Usage, r.ExitCode);
        Assert.Contains("jobs", r.Stderr);
        Assert.False(File.Exists(t["b.txt"]));
    }

    [Fact]
    public void An_invalid_exclude_pattern_is_a_usage_error()
    {
        using var t = new TempDir();
        t.WriteRandom("a.txt", 10, 1);
        var r = BcmrRunner.Run("copy", "-e", "([", t["a.txt"], t["b.txt"]);

        Assert.Equal(Usage, r.ExitCode);
        Assert.Contains("not a valid regular expression", r.Stderr);
    }

    [Fact]
    public void Missing_destination_argument_is_a_usage_error()
    {
        var r = BcmrRunner.Run("copy", "/etc/hostname");
        Assert.Equal(Usage, r.ExitCode);
        Assert.Contains("missing destination", r.Stderr);
    }

    [Fact]
    public void Permission_denied_on_the_source_names_the_file()
    {
        using var t = new TempDir();
        File.SetUnixFileMode(t.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        var secret = t.WriteRandom("secret.bin", 100, 1);
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var r = BcmrRunner.Run(["copy", secret, t["out.bin"]], asUser: "65534");

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains($"{secret}: Permission denied", r.Stderr);
        Assert.False(File.Exists(t["out.bin"]));
    }

    [Fact]
    public void Permission_denied_on_the_destination_directory_names_it()
    {
        using var t = new TempDir();
        File.SetUnixFileMode(t.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        var src = t.WriteRandom("a.bin", 100, 1);
        File.SetUnixFileMode(src, (UnixFileMode)Convert.ToInt32("644", 8));
        Directory.CreateDirectory(t["locked"]);
        File.SetUnixFileMode(t["locked"], (UnixFileMode)Convert.ToInt32("555", 8));

        var r = BcmrRunner.Run(["copy", src, t["locked/a.bin"]], asUser: "65534");

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains("Permission denied", r.Stderr);
        Assert.Contains("locked", r.Stderr);
        Assert.False(File.Exists(t["locked/a.bin"]));
    }

    [Fact]
    public void One_unreadable_file_in_a_tree_is_reported_and_the_rest_is_copied()
    {
        using var t = new TempDir();
        File.SetUnixFileMode(t.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        for (int i = 0; i < 5; i++) t.WriteRandom($"src/f{i}.txt", 1000, i);
        foreach (var f in Directory.EnumerateFiles(t["src"])) File.SetUnixFileMode(f, (UnixFileMode)Convert.ToInt32("644", 8));
        File.SetUnixFileMode(t["src/f2.txt"], UnixFileMode.UserRead);
        File.SetUnixFileMode(t["src"], (UnixFileMode)Convert.ToInt32("755", 8));

        var r = BcmrRunner.Run(["copy", "-r", t["src"], t["dst"]], asUser: "65534");

        Assert.Equal(Partial, r.ExitCode);
        Assert.Contains($"{t["src/f2.txt"]}: Permission denied", r.Stderr);
        Assert.False(File.Exists(t["dst/f2.txt"]));
        foreach (var i in new[] { 0, 1, 3, 4 })
            Assert.Equal(Trees.Sha256(t[$"src/f{i}.txt"]), Trees.Sha256(t[$"dst/f{i}.txt"]));
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Theory]
    [InlineData(3 * 1024 * 1024 + 5)] // one block: read back after the copy
    [InlineData(9 * 1024 * 1024 + 5)] // three: read back block by block beside the copy, the damaged one in the middle
    public void Verify_detects_a_corrupted_copy_names_the_file_and_keeps_the_old_destination(int size)
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", size, 1);
        var oldHash = Trees.Sha256(t.WriteRandom("existing.bin", 1000, 2));
        var env = new Dictionary<string, string> { ["BCMR_FAULT_CORRUPT_STAGED"] = "bin" };

        var fresh = BcmrRunner.Run(["copy", "-V", t["a.bin"], t["new.bin"]], env, executable: BcmrRunner.FaultHost);
        var over = BcmrRunner.Run(["copy", "-V", "-f", t["a.bin"], t["existing.bin"]], env, executable: BcmrRunner.FaultHost);

        Assert.Equal(Failure, fresh.ExitCode);
        Assert.Contains($"{t["new.bin"]}: verification failed", fresh.Stderr);
        Assert.False(File.Exists(t["new.bin"]));
        Assert.Equal(Failure, over.ExitCode);
        Assert.Contains($"{t["existing.bin"]}: verification failed", over.Stderr);
        Assert.Equal(oldHash, Trees.Sha256(t["existing.bin"]));
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Fact]
    public void Without_verify_the_injected_corruption_goes_unnoticed_which_is_why_verify_exists()
    {
        // Guards the test above: the fault really corrupts, so -V is what catches it.
        using var t = new TempDir();
        t.WriteRandom("a.bin", 1000, 1);
        var env = new Dictionary<string, string> { ["BCMR_FAULT_CORRUPT_STAGED"] = "bin" };
        var r = BcmrRunner.Run(["copy", "-V", t["a.bin"], t["b.bin"]], env, executable: BcmrRunner.FaultHost);
        Assert.Equal(Failure, r.ExitCode);
        var ok = BcmrRunner.Run("copy", "-V", t["a.bin"], t["c.bin"]);
        ok.AssertExit(0);
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["c.bin"]));
    }

    [Fact]
    public void The_shipped_bcmr_ignores_the_fault_hosts_variable()
    {
        // The hook is the fault host's alone: the same variable in the environment of the real bcmr changes nothing.
        using var t = new TempDir();
        t.WriteRandom("a.bin", 1000, 1);
        var env = new Dictionary<string, string> { ["BCMR_FAULT_CORRUPT_STAGED"] = "bin" };
        var r = BcmrRunner.Run(["copy", "-V", t["a.bin"], t["b.bin"]], env);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["b.bin"]));
    }

    [RequiresRootFact("mounts a 1 MiB tmpfs")]
    public void Disk_full_names_the_destination_and_leaves_no_partial_file()
    {
        using var t = new TempDir();
        using var mount = TinyMount.TryCreate(t["small"], "1m");
        Assert.True(mount is not null, "mount -t tmpfs failed although this runs as root");
        t.WriteRandom("big.bin", 4 * 1024 * 1024, 1);

        foreach (var extra in new[] { "--reflink=disable", "-V", "-C" }) // -C writes a partial file, not a staged one
        {
            var r = BcmrRunner.Run("copy", extra, t["big.bin"], t["small/big.bin"]);

            Assert.Equal(Failure, r.ExitCode);
            Assert.Contains($"{t["small/big.bin"]}: No space left on device", r.Stderr);
            Assert.Empty(Directory.EnumerateFileSystemEntries(t["small"]));
        }
    }

    [Fact]
    public void A_source_that_grows_while_copied_is_not_committed()
    {
        using var t = new TempDir();
        var src = t.WriteRandom("growing.bin", 256 * 1024 * 1024, 1);
        using var stop = new CancellationTokenSource();
        using var appending = new ManualResetEventSlim();
        // A thread of its own (a pool task can start late on a busy test run, after the copy is done), and the copy
        // starts only once the file has begun to grow.
        var appender = new Thread(() =>
        {
            using var f = new FileStream(src, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            while (!stop.IsCancellationRequested) { f.WriteByte(1); f.Flush(); appending.Set(); Thread.Sleep(1); }
        }) { IsBackground = true };
        appender.Start();
        Assert.True(appending.Wait(TimeSpan.FromSeconds(30)), "the appender never started");

        var r = BcmrRunner.Run("copy", "-V", src, t["copy.bin"]);
        stop.Cancel();
        appender.Join();

        Assert.Equal(Failure, r.ExitCode);
        Assert.Contains($"{src}: changed while being copied", r.Stderr);
        Assert.False(File.Exists(t["copy.bin"]));
        Trees.AssertNoStagingFiles(t.Path);
    }

    [Theory]
    [InlineData("SIGTERM")]
    [InlineData("SIGINT")]
    public void A_signal_mid_copy_removes_the_temp_file_and_exits_130(string signal)
    {
        using var t = new TempDir();
        var src = t.WriteRandom("big.bin", 1024 * 1024 * 1024 - 7, 1);
        // Paced, so that the copy cannot end before the signal lands: starting `kill` on a busy runner took longer
        // than the whole unpaced copy once (exit 0 instead of 130).
        var start = BcmrRunner.StartInfo(["copy", "-V", "--reflink", "disable", "--bwlimit", "128M", src, t["copy.bin"]]);
        // A test run started as a script's background job (`cmd &`, no job control) has SIGINT ignored, and an
        // ignored signal stays ignored through exec: bcmr, like cp, leaves it so, and the copy ran to its end. The
        // signal's default is restored for bcmr (coreutils env), so the test does not depend on how it was started.
        start.ArgumentList.Insert(0, start.FileName);
        start.ArgumentList.Insert(0, "--default-signal=INT");
        start.FileName = "env";
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();

        var clock = Stopwatch.StartNew();
        while (!Directory.EnumerateFiles(t.Path, "*.bcmr-tmp", new EnumerationOptions { AttributesToSkip = 0 }).Any())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the copy never started");
            Assert.False(p.HasExited, "the copy finished before it could be interrupted");
            Thread.Sleep(2);
        }
        using (var kill = Process.Start("kill", ["-s", signal, p.Id.ToString()])!) kill.WaitForExit();
        Assert.True(p.WaitForExit(10_000), "bcmr did not stop after " + signal);

        Assert.Equal(Interrupted, p.ExitCode);
        Assert.Contains("interrupted", stderr.Result);
        Assert.False(File.Exists(t["copy.bin"]));
        Trees.AssertNoStagingFiles(t.Path);
    }
}

/// <summary>A tmpfs of a given size mounted for one test (we run as root in CI), for disk-full and cross-filesystem cases.</summary>
public sealed class TinyMount : IDisposable
{
    private readonly string _path;
    private TinyMount(string path) => _path = path;

    public static TinyMount? TryCreate(string path, string size)
    {
        Directory.CreateDirectory(path);
        return Tool.TryRun("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path) ? new TinyMount(path) : null;
    }

    public void Dispose() => Tool.TryRun("umount", "-l", _path);
}
