using Bcmr.Engine;
using Bcmr.Engine.Transfers;

namespace Bcmr.Tests.Transfers;

/// <summary>Results of files spread over several connections come out in the plan's order, whichever finished first.</summary>
public class ResultOrderTests
{
    private static CopyResult File(int i) => new() { Source = $"f{i}", Destination = $"d{i}", Status = CopyStatus.Copied, Bytes = i };

    [Fact]
    public void Results_reported_out_of_order_from_many_threads_are_forwarded_in_plan_order_and_counted_at_once()
    {
        const int n = 2000;
        var seen = new List<string>();
        var log = new ResultLog(r => seen.Add(r.Source)); // not thread-safe on purpose: forwarding must be serialised
        log.BeginOrdered(n);
        var order = Enumerable.Range(0, n).OrderBy(i => (i * 7919) % n).ToArray();
        Parallel.ForEach(order, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            if (i % 10 == 3) log.Fail(new CopyResult { Source = $"f{i}", Destination = $"d{i}", Status = CopyStatus.Failed }, i);
            else log.Succeed(File(i), i);
        });
        log.EndOrdered();
        Assert.Equal(Enumerable.Range(0, n).Select(i => $"f{i}"), seen);
        var summary = log.Summary("copy", TimeSpan.Zero, null, false, "ssh");
        Assert.Equal((n - n / 10, n / 10), (summary.Files, summary.Failed));
    }

    [Fact]
    public void A_file_that_never_reports_does_not_hold_back_the_rest_past_the_end()
    {
        var seen = new List<string>();
        var log = new ResultLog(r => seen.Add(r.Source));
        log.BeginOrdered(4);
        log.Succeed(File(3), 3);
        log.Succeed(File(2), 2);
        log.Succeed(File(0), 0);
        Assert.Equal(["f0"], seen); // 1 has not reported: 2 and 3 wait
        log.Fail(new CopyResult { Source = "planning", Destination = "x", Status = CopyStatus.Failed }); // no place in the plan: at once
        Assert.Equal(["f0", "planning"], seen);
        log.EndOrdered();
        Assert.Equal(["f0", "planning", "f2", "f3"], seen);
        log.Succeed(File(9), 9); // after the end: at once
        Assert.Equal("f9", seen[^1]);
    }
}
