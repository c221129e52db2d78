using System.Diagnostics;
using Bcmr.Engine.Local;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Engine;

/// <summary>Our staging and partial names: recognised only where we made them, never confused with a user's file,
/// and stale staging files of dead processes swept (issue 16, items 1 and 14).</summary>
public class TemporariesTests
{
    [Fact]
    public void Our_names_are_recognised_where_they_were_made_and_lookalikes_are_not()
    {
        using var t = new TempDir();
        var dst = t["x.bin"];
        var staging = Temporaries.StagingPath(dst);
        var partial = Temporaries.PartialPath(dst);
        Assert.Equal(Temporaries.StagingSuffix, Temporaries.Kind(t.Path, Path.GetFileName(staging)));
        Assert.Equal(Temporaries.PartialSuffix, Temporaries.Kind(t.Path, Path.GetFileName(partial)));
        Assert.Equal(partial, Temporaries.PartialPath(dst)); // the next run finds it
        Assert.NotEqual(staging, Temporaries.StagingPath(dst));

        Assert.False(Temporaries.IsOurs(t.Path, ".x.bin.bcmr-part"));
        Assert.False(Temporaries.IsOurs(t.Path, ".x.bin.0123456789ab.bcmr-tmp"));
        Assert.False(Temporaries.IsOurs(t.Path, ".x.bin.0123456789ab01234567.bcmr-tmp"));
        // One of our names copied into another directory is a plain file there.
        Assert.False(Temporaries.IsOurs(t["other"], Path.GetFileName(partial)));
        Assert.False(Temporaries.IsOurs(t["other"], Path.GetFileName(staging)));
        // Nor is it the partial of the same name in the other directory.
        Assert.NotEqual(Path.GetFileName(partial), Path.GetFileName(Temporaries.PartialPath(t["other/x.bin"])));
    }

    [Fact]
    public void Long_names_that_share_a_truncated_prefix_never_share_a_partial()
    {
        var stem = new string('a', 250);
        var a = Temporaries.PartialPath("/d/" + stem + "-one");
        var b = Temporaries.PartialPath("/d/" + stem + "-two");
        Assert.NotEqual(a, b);
        Assert.All(new[] { a, b }, p => Assert.True(System.Text.Encoding.UTF8.GetByteCount(Path.GetFileName(p)) <= 255));
        Assert.True(Temporaries.IsOurs("/d", Path.GetFileName(a)));
    }

    [Fact]
    public void The_sweep_removes_only_unlocked_staging_files_of_ours_that_nothing_touched_for_a_while()
    {
        using var t = new TempDir();
        var quiet = TimeSpan.FromSeconds(1); // instead of 10 s; what the sweep judges by cannot be set back
        var old = t["old.bin"];
        var stale = Temporaries.StagingPath(old);
        File.WriteAllText(stale, "left by a killed copy");
        var held = Temporaries.StagingPath(t["held.bin"]);
        using var holder = Temporaries.CreateStaging(held, 0x1B6); // a live writer's lock
        var lookalike = t[".old.bin.0123456789ab01234567.bcmr-tmp"];
        File.WriteAllText(lookalike, "the user's");
        var partial = Temporaries.PartialPath(old);
        File.WriteAllText(partial, "kept for resume");
        Thread.Sleep(quiet + TimeSpan.FromMilliseconds(200));
        var young = Temporaries.StagingPath(t["young.bin"]);
        File.WriteAllText(young, "just created, not locked yet");

        Temporaries.ForgetSweeps();
        Assert.Equal(1, Temporaries.SweepStale(t.Path, staleAfter: quiet));

        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(held));
        Assert.True(File.Exists(young));
        Assert.True(File.Exists(lookalike));
        Assert.True(File.Exists(partial));
    }

    /// <summary>
    /// A copy that keeps times (-p, sync) gives its staging file the source's mtime, then drops the lock and renames
    /// it. In between, the file is unlocked and its mtime years old: a sweep judging by mtime (another worker's first
    /// file in the same directory, another bcmr process) removed it and the rename failed with "No such file or
    /// directory" (a sync of a fresh tree failed one file in 2 of 800 runs, four at once).
    /// </summary>
    [Fact]
    public void A_staging_file_given_an_old_mtime_and_unlocked_for_its_rename_is_not_swept()
    {
        using var t = new TempDir();
        var dst = t["run.sh"];
        var staging = Temporaries.StagingPath(dst);
        using (var h = Temporaries.CreateStaging(staging, 0x1ED))
        {
            RandomAccess.Write(h, "#!/bin/sh\n"u8, 0);
            File.SetLastWriteTimeUtc(h, new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        } // closed: unlocked, as StagedFile.Commit leaves it just before the rename

        Temporaries.ForgetSweeps();
        Assert.Equal(0, Temporaries.SweepStale(t.Path));
        Assert.Empty(Temporaries.FindStale(t.Path));
        File.Move(staging, dst);
        Assert.Equal("#!/bin/sh\n", File.ReadAllText(dst));
    }

    [Fact]
    public void A_killed_copy_leaves_a_staging_file_that_the_next_copy_into_the_directory_removes()
    {
        using var t = new TempDir();
        var src = t.WriteRandom("big.bin", 512 * 1024 * 1024, 1);
        Directory.CreateDirectory(t["d"]);
        using (var p = Process.Start(BcmrRunner.StartInfo(["copy", "--reflink", "disable", src, t["d/big.bin"]]))!)
        {
            var clock = Stopwatch.StartNew();
            while (!Directory.EnumerateFiles(t["d"], "*.bcmr-tmp", new EnumerationOptions { AttributesToSkip = 0 }).Any())
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the copy never started");
                Assert.False(p.HasExited, "the copy finished before it could be killed");
                Thread.Sleep(2);
            }
            p.Kill();
            p.WaitForExit();
        }
        var left = Directory.GetFiles(t["d"], "*.bcmr-tmp", new EnumerationOptions { AttributesToSkip = 0 }).Single();
        Assert.True(Temporaries.IsOurs(t["d"], Path.GetFileName(left)));
        var lookalike = t["d/.big.bin.0123456789ab01234567.bcmr-tmp"];
        File.WriteAllText(lookalike, "the user's");
        Thread.Sleep(300);

        // The dead copy's file was written a moment ago: the next copy is told that 200 ms untouched is stale (10 s
        // by default), as a run a while later would find it.
        var small = t.WriteRandom("small.txt", 100, 2);
        var r = BcmrRunner.Run(["copy", small, t["d/"]], new Dictionary<string, string> { ["BCMR_FAULT_STALE_AFTER_MS"] = "200" },
            executable: BcmrRunner.FaultHost);
        Assert.True(r.ExitCode == 0, r.ToString());

        Assert.False(File.Exists(left), "the dead copy's staging file is still there");
        Assert.True(File.Exists(lookalike));
        Assert.Equal(Trees.Sha256(small), Trees.Sha256(t["d/small.txt"]));
    }

    [Fact]
    public void Copy_C_r_of_a_tree_holding_a_file_named_like_a_partial_copies_both_unchanged()
    {
        using var t = new TempDir();
        t.WriteRandom("s/x", 9 * 1024 * 1024 + 5, 3);
        t.WriteRandom("s/.x.bcmr-part", 1024 * 1024, 4);
        t.WriteRandom("s/.x.0123456789ab01234567.bcmr-tmp", 1000, 5);

        Directory.CreateDirectory(t["d"]);
        var r = BcmrRunner.Run("copy", "-C", "-r", t["s"], t["d"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Trees.AssertIdentical(t["s"], t["d/s"]);

        // And again over the copy: the user's ".x.bcmr-part" in d is not taken for x's partial.
        var again = BcmrRunner.Run("--json", "copy", "-C", "-r", t["s"], t["d"]);
        Assert.True(again.ExitCode == 0, again.ToString());
        Trees.AssertIdentical(t["s"], t["d/s"]);
    }
}
