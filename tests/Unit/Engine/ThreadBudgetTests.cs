using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Engine;

/// <summary>One budget of helper threads per transfer: renting never exceeds it, and a resumable copy of many files
/// at once hashes within it instead of starting two threads per file.</summary>
public class ThreadBudgetTests
{
    [Fact]
    public void Rent_gives_what_is_free_and_never_more()
    {
        var b = new ThreadBudget(2);
        Assert.Equal(2, b.Rent(3));
        Assert.Equal(0, b.Rent(1));
        b.Return(1);
        Assert.Equal(1, b.Rent(2));
        b.Return(2);
        Assert.Equal(0, b.InUse);
        Assert.Throws<InvalidOperationException>(() => b.Return(1));
    }

    [Fact]
    public void Many_threads_renting_at_once_stay_within_it()
    {
        var b = new ThreadBudget(3);
        var threads = Enumerable.Range(0, 8).Select(i => new Thread(() =>
        {
            var rnd = new Random(i);
            for (int n = 0; n < 20_000; n++)
            {
                int got = b.Rent(rnd.Next(1, 4));
                Assert.InRange(b.InUse, got, 3);
                b.Return(got);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(0, b.InUse);
        Assert.InRange(b.Peak, 1, 3);
    }

    [Fact]
    public void A_pipeline_without_threads_left_in_the_budget_hashes_inline_and_gets_the_same_hash()
    {
        var data = new byte[3 * BlockLedger.BlockSize + 1000];
        new Random(5).NextBytes(data);
        var budget = new ThreadBudget(2);
        byte[] HashWith(out int inUseDuring)
        {
            using var p = new BlockHashPipeline(new BlockLedger(), data.Length, threaded: true, budget);
            inUseDuring = budget.InUse;
            long index = 0;
            for (int pos = 0; pos < data.Length; pos += BlockLedger.BlockSize)
            {
                var buf = p.Rent(CancellationToken.None);
                int n = Math.Min(BlockLedger.BlockSize, data.Length - pos);
                data.AsSpan(pos, n).CopyTo(buf);
                p.Submit(index++, buf, n);
            }
            p.WaitFor(index, CancellationToken.None);
            return p.FileHash!;
        }
        var expected = Blake3.Hash(data);
        // the first holds the whole budget while the second runs without it
        using (var first = new BlockHashPipeline(new BlockLedger(), data.Length, threaded: true, budget))
        {
            Assert.Equal(2, budget.InUse);
            Assert.Equal(expected, HashWith(out int during));
            Assert.Equal(2, during); // the second rented nothing
        }
        Assert.Equal(0, budget.InUse);
        Assert.Equal(expected, HashWith(out int alone));
        Assert.Equal(2, alone);
        Assert.Equal(0, budget.InUse);
    }

    [Fact]
    public void Four_resumable_copies_at_once_hash_on_at_most_the_budget()
    {
        using var d = new TempDir();
        for (int i = 0; i < 4; i++) d.WriteRandom($"src/f{i}.bin", 6 * BlockLedger.BlockSize + i, 10 + i);
        Directory.CreateDirectory(d["dst"]);
        var budget = new ThreadBudget(2);
        int maxHashThreads = 0;
        using var stop = new CancellationTokenSource();
        // The kernel's own count of live threads named bcmr-hash-*, sampled while the copy runs.
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                int n = 0;
                foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
                {
                    try { if (File.ReadAllText(Path.Join(task, "comm")).StartsWith("bcmr-hash", StringComparison.Ordinal)) n++; }
                    catch (IOException) { }
                }
                maxHashThreads = Math.Max(maxHashThreads, n);
                Thread.Sleep(1);
            }
        });
        sampler.Start();
        var sessions = new SessionStore(d["sessions"]);
        var summary = TransferEngine.Run(new CopyRequest
        {
            Sources = [d["src"]], Destination = d["dst"], Recursive = true, Jobs = 4, Resume = ResumeMode.Strict,
            Sessions = sessions, Threads = budget,
        });
        stop.Cancel();
        sampler.Join();
        Assert.Equal(0, summary.Failed);
        for (int i = 0; i < 4; i++)
            Assert.Equal(Trees.Sha256(d[$"src/f{i}.bin"]), Trees.Sha256(d[$"dst/src/f{i}.bin"]));
        Assert.Equal(2, budget.Peak);     // the copy did hash on helper threads...
        Assert.InRange(maxHashThreads, 1, 2); // ...and never on more than the budget, where four files would have wanted eight
        Assert.Equal(0, budget.InUse);
    }
}
