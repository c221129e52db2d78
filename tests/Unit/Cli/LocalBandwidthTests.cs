using System.Diagnostics;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>--bwlimit holds local copies to the rate too (as rsync's does), on each copy path and summed over workers.</summary>
public class LocalBandwidthTests
{
    [Theory]
    [InlineData("kernel copy")]
    [InlineData("verify")]     // read, hash and write
    [InlineData("resumable")]  // -C: the checkpointing copy
    public void A_local_copy_keeps_to_the_rate_and_stays_exact(string path)
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 12 * 1024 * 1024, 7);
        string[] flags = path switch { "verify" => ["-V"], "resumable" => ["-C"], _ => [] };
        var clock = Stopwatch.StartNew();
        var r = BcmrRunner.Run(["--json", "copy", "--bwlimit", "4M", .. flags, t["a.bin"], t["b.bin"]],
            new Dictionary<string, string> { ["XDG_DATA_HOME"] = t["data"] });
        clock.Stop();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(t["a.bin"]), Trees.Sha256(t["b.bin"]));
        // 12 MiB at 4 MiB/s, less the bucket's first tenth of a second: at least 2.9 s (unlimited it takes milliseconds).
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"{path}: 12 MiB at --bwlimit 4M took {clock.Elapsed.TotalSeconds:F2} s");
    }

    [Fact]
    public void Parallel_workers_share_one_rate()
    {
        using var t = new TempDir();
        for (int i = 0; i < 4; i++) t.WriteRandom($"src/f{i}.bin", 3 * 1024 * 1024, 10 + i);
        var clock = Stopwatch.StartNew();
        var r = BcmrRunner.Run("copy", "-r", "-j", "4", "--bwlimit", "4M", t["src"], t["dst"]);
        clock.Stop();
        Assert.True(r.ExitCode == 0, r.ToString());
        Trees.AssertIdentical(t["src"], t["dst"]);
        // Four workers at 4 MiB/s each would take under a second; sharing one bucket, 12 MiB takes about three.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"12 MiB over -j 4 at --bwlimit 4M took {clock.Elapsed.TotalSeconds:F2} s");
    }
}
