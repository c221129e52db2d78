using System.Diagnostics;
using System.Management.Automation;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Module;

/// <summary>A file big enough that a verified copy takes a few seconds here: long enough for progress and for a stop
/// in the middle.</summary>
public sealed class BigFileFixture : IDisposable
{
    public const long Size = 2L << 30; // the tests that watch progress also pace the copy with -BandwidthLimit
    public readonly TempDir Dir = new();
    public readonly string Path;

    public BigFileFixture()
    {
        Path = Dir["big.bin"];
        var block = new byte[1 << 20];
        new Random(42).NextBytes(block);
        using var f = File.Create(Path);
        for (long done = 0; done < Size; done += block.Length)
        {
            block[0] = (byte)(done >> 20); // no two blocks alike
            f.Write(block);
        }
    }

    public void Dispose() => Dir.Dispose();
}

[Collection("Module")]
public sealed class ProgressAndStopTests(BigFileFixture big) : IClassFixture<BigFileFixture>, IDisposable
{
    private readonly TempDir _dst = new();
    private readonly PowerShellSession _ps = new();

    public void Dispose()
    {
        _ps.Dispose();
        _dst.Dispose();
    }

    [Fact]
    public void Progress_has_parent_and_child_records_with_percentages_and_ends_Completed()
    {
        var clock = Stopwatch.StartNew();
        // Paced to at least 2 s: -Verify reads the copy back beside the copy now, and 2 GiB took about 1 s unpaced.
        var r = _ps.Run("Copy-BcmrItem $args[0] $args[1] -Verify -BandwidthLimit 1GB", big.Path, _dst.Path);
        var elapsed = clock.Elapsed;
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        var progress = r.Progress;
        var parents = progress.Where(p => p.ActivityId == 1 && p.RecordType == ProgressRecordType.Processing).ToList();
        var children = progress.Where(p => p.ActivityId == 2 && p.RecordType == ProgressRecordType.Processing).ToList();
        Assert.True(parents.Count >= 2, $"only {parents.Count} parent records in {elapsed}");
        Assert.NotEmpty(children);
        Assert.All(parents, p => Assert.Equal(-1, p.ParentActivityId));
        Assert.All(children, c => Assert.Equal(1, c.ParentActivityId));
        Assert.All(children, c => Assert.Equal(big.Path, c.CurrentOperation));
        Assert.All(parents.Concat(children), p => Assert.InRange(p.PercentComplete, 0, 100));
        var percents = parents.Select(p => p.PercentComplete).ToList();
        Assert.Equal(percents.Order(), percents); // never goes back
        Assert.True(percents[^1] > percents[0], "the percentage never moved: " + string.Join(",", percents));
        Assert.Contains(parents, p => p.SecondsRemaining > 0);
        Assert.Contains("of 1 files", parents[0].StatusDescription);
        // About five updates a second, whatever the engine sends.
        Assert.True(parents.Count <= elapsed.TotalSeconds * 5 + 2, $"{parents.Count} parent records in {elapsed}");
        // The last two records close the child, then the parent.
        Assert.Equal((2, ProgressRecordType.Completed), (progress[^2].ActivityId, progress[^2].RecordType));
        Assert.Equal((1, ProgressRecordType.Completed), (progress[^1].ActivityId, progress[^1].RecordType));
    }

    [Theory]
    [InlineData("$ProgressPreference = 'SilentlyContinue'; Copy-BcmrItem $args[0] $args[1] -Verify")]
    [InlineData("Copy-BcmrItem $args[0] $args[1] -Verify -ProgressAction SilentlyContinue")]
    public void No_progress_at_all_when_it_is_silenced(string script)
    {
        var r = _ps.Run(script, big.Path, _dst.Path);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Empty(r.Progress);
        Assert.Equal(BigFileFixture.Size, new FileInfo(Path.Combine(_dst.Path, "big.bin")).Length);
    }

    [Fact]
    public void Stop_during_a_large_copy_ends_within_a_second_and_leaves_no_file()
    {
        // Paced to at least 4 s, so that the copy cannot end between the first progress and the Stop on a fast machine.
        using var ps = _ps.Start("Copy-BcmrItem $args[0] $args[1] -Verify -BandwidthLimit 512MB", big.Path, _dst.Path);
        var run = ps.BeginInvoke();
        var wait = Stopwatch.StartNew();
        // Under way: the child bar shows bytes of the file moving.
        while (!PowerShellSession.Snapshot(ps.Streams.Progress).Any(p => p.ActivityId == 2 && p.PercentComplete > 0))
        {
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(60) && !run.IsCompleted, "the copy never showed progress");
            Thread.Sleep(20);
        }
        Assert.False(run.IsCompleted, "the copy finished before it could be stopped");
        var clock = Stopwatch.StartNew();
        ps.Stop();
        var stopTook = clock.Elapsed;
        Assert.Throws<PipelineStoppedException>(() => ps.EndInvoke(run));
        Assert.True(stopTook < TimeSpan.FromSeconds(1), $"Stop took {stopTook}");
        Assert.Equal(PSInvocationState.Stopped, ps.InvocationStateInfo.State);
        // Neither the final name nor a temporary file beside it.
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dst.Path));
        var progress = PowerShellSession.Snapshot(ps.Streams.Progress);
        Assert.Equal((2, ProgressRecordType.Completed), (progress[^2].ActivityId, progress[^2].RecordType));
        Assert.Equal((1, ProgressRecordType.Completed), (progress[^1].ActivityId, progress[^1].RecordType));
        Assert.Empty(ps.Streams.Error);
    }
}
