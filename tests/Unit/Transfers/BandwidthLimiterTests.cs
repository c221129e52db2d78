using System.Diagnostics;
using Bcmr.Engine;
using Bcmr.Engine.Transfers;

namespace Bcmr.Tests.Transfers;

/// <summary>The --bwlimit token bucket and its rate parser.</summary>
public sealed class BandwidthLimiterTests
{
    [Theory]
    [InlineData("100", 100)]
    [InlineData("0", 0)]
    [InlineData("512k", 512 * 1024)]
    [InlineData("512K", 512 * 1024)]
    [InlineData("10M", 10 * 1024 * 1024)]
    [InlineData("10m", 10 * 1024 * 1024)]
    [InlineData("10MiB", 10 * 1024 * 1024)]
    [InlineData("1.5M", 1572864)]
    [InlineData("2G", 2L * 1024 * 1024 * 1024)]
    [InlineData("1.5MB", 1500000)]
    [InlineData("10KB", 10000)]
    [InlineData("3b", 3)]
    [InlineData(" 7k ", 7168)]
    public void Rates_parse_like_rsync_with_plain_numbers_in_bytes(string text, long expected)
    {
        Assert.True(BandwidthLimiter.TryParse(text, out long rate, out var error), error);
        Assert.Equal(expected, rate);
        Assert.Equal(expected, BandwidthLimiter.Parse(text));
    }

    [Theory]
    [InlineData("", "is not a rate")]
    [InlineData("fast", "is not a rate")]
    [InlineData("-5", "is not a rate")]
    [InlineData("10X", "unknown unit 'X'")]
    [InlineData("10 M", "unknown unit ' M'")]
    [InlineData("0.1", "less than one byte per second")]
    [InlineData("99999999999G", "too large")]
    public void Bad_rates_are_refused_with_a_reason(string text, string reason)
    {
        Assert.False(BandwidthLimiter.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
        var e = Assert.Throws<BcmrException>(() => BandwidthLimiter.Parse(text));
        Assert.Equal(BcmrErrorCode.InvalidArgument, e.Code);
        Assert.StartsWith("--bwlimit: ", e.Message);
    }

    [Fact]
    public void The_bucket_lets_a_burst_through_then_charges_the_debt_at_the_rate()
    {
        long now = 0;
        var l = new BandwidthLimiter(1_000_000, () => now, 1000); // 1 MB/s, clock in ms
        Assert.Equal(TimeSpan.Zero, l.Reserve(100_000)); // the burst: a tenth of a second
        Assert.Equal(TimeSpan.FromSeconds(4), l.Reserve(4_000_000)); // a 4 MB block: four seconds of debt
        now += 4000;
        Assert.Equal(TimeSpan.FromSeconds(0.5), l.Reserve(500_000));
        now += 60_000; // a long idle minute earns no more than the burst
        Assert.Equal(TimeSpan.Zero, l.Reserve(100_000));
        Assert.Equal(TimeSpan.FromSeconds(0.1), l.Reserve(100_000));
        Assert.Null(BandwidthLimiter.Create(0));
        Assert.Equal(5, BandwidthLimiter.Create(5)!.BytesPerSecond);
    }

    [Fact]
    public void Sending_6_MB_at_4_MB_per_second_takes_about_a_second_and_a_half_in_real_time()
    {
        var l = new BandwidthLimiter(4_000_000);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 24; i++) l.Wait(250_000);
        double s = sw.Elapsed.TotalSeconds;
        // (6 MB - 400 kB of initial burst) / 4 MB/s = 1.4 s; a shared machine may add a little.
        Assert.InRange(s, 1.3, 2.5);
    }

    [Fact]
    public void Two_threads_sharing_one_limiter_share_its_rate()
    {
        var l = new BandwidthLimiter(8_000_000);
        var sw = Stopwatch.StartNew();
        Parallel.For(0, 2, _ => { for (int i = 0; i < 8; i++) l.Wait(500_000); });
        // 8 MB at 8 MB/s minus the 800 kB burst: 0.9 s, not the 0.45 s two unshared limiters would take.
        Assert.InRange(sw.Elapsed.TotalSeconds, 0.8, 2.0);
    }

    [Fact]
    public async Task Waiting_is_cancellable()
    {
        var l = new BandwidthLimiter(1000);
        l.Reserve(100_000); // 100 s of debt
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var sw = Stopwatch.StartNew();
        Assert.Throws<OperationCanceledException>(() => l.Wait(1, cts.Token));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => l.WaitAsync(1, new CancellationTokenSource(50).Token));
    }
}
