using Bcmr.Cli;
using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;

namespace Bcmr.Tests.Engine;

public class LocalUnitTests
{
    [Theory]
    [InlineData("copy --reflink a b", "copy --reflink=force a b")]
    [InlineData("copy --reflink auto a b", "copy --reflink auto a b")]
    [InlineData("copy --sparse DISABLE a b", "copy --sparse DISABLE a b")]
    [InlineData("copy a b --sparse", "copy a b --sparse=force")]
    [InlineData("copy -- --reflink b", "copy -- --reflink b")]
    public void Bare_mode_flags_mean_force_without_swallowing_paths(string input, string expected) =>
        Assert.Equal(expected.Split(' '), CopyCommand.ExpandBareModeFlags(input.Split(' ')));

    [Fact]
    public void Staging_names_are_unique_hidden_siblings_within_name_max()
    {
        var longName = new string('ü', 127) + ".bin"; // 258 bytes of UTF-8
        var names = Enumerable.Range(0, 1000).Select(_ => Temporaries.StagingPath("/d/" + longName)).ToHashSet();

        Assert.Equal(1000, names.Count);
        Assert.All(names, n =>
        {
            Assert.Equal("/d", Path.GetDirectoryName(n));
            Assert.StartsWith(".", Path.GetFileName(n));
            Assert.EndsWith(".bcmr-tmp", n);
            Assert.True(System.Text.Encoding.UTF8.GetByteCount(Path.GetFileName(n)) <= 255);
        });
    }

    private sealed class Recorder : IProgress<TransferProgress>
    {
        public readonly List<TransferProgress> Seen = new();
        public void Report(TransferProgress p) { lock (Seen) Seen.Add(p); }
    }

    [Fact]
    public void Progress_is_throttled_and_always_ends_with_one_final_complete_report()
    {
        var sink = new Recorder();
        var tracker = new ProgressTracker("copy", sink, TimeSpan.FromMilliseconds(50));
        tracker.AddPlanned(1000);
        var f = tracker.StartFile("a", 1000);
        for (int i = 0; i < 10; i++) { tracker.AddBytes(f, 50); Thread.Sleep(30); }
        tracker.FinishFile(f, 500);
        tracker.Complete();
        Thread.Sleep(150); // a timer tick after completion must not report again

        Assert.InRange(sink.Seen.Count, 2, 10); // ~300 ms at 50 ms: throttled, not one report per AddBytes
        var last = sink.Seen[^1];
        Assert.True(last.Final);
        Assert.Single(sink.Seen, p => p.Final);
        Assert.Equal(100.0, last.Percent);
        Assert.Equal(1, last.FilesDone);
        Assert.Null(last.CurrentFile);
    }

    [Fact]
    public void Engine_rejects_a_zero_job_count_before_touching_anything()
    {
        var e = Assert.Throws<Bcmr.Engine.BcmrException>(() =>
            TransferEngine.Run(new CopyRequest { Sources = ["/nonexistent"], Destination = "/tmp/x", Jobs = 0 }));
        Assert.Equal(Bcmr.Engine.BcmrErrorCode.InvalidArgument, e.Code);
    }

    [Fact]
    public void Exit_codes_distinguish_partial_failure_from_total_failure()
    {
        Assert.Equal(0, ExitCodes.For(new TransferSummary { Operation = "copy", Files = 3 }));
        Assert.Equal(3, ExitCodes.For(new TransferSummary { Operation = "copy", Files = 3, Failed = 1 }));
        Assert.Equal(1, ExitCodes.For(new TransferSummary { Operation = "copy", Files = 0, Failed = 1 }));
        Assert.Equal(130, ExitCodes.For(new TransferSummary { Operation = "copy", Files = 3, Cancelled = true }));
    }
}
