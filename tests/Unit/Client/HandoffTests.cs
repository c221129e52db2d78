using Bcmr.Engine.Client;
using Bcmr.Engine.Local;

namespace Bcmr.Tests.Client;

/// <summary>The hand-offs between a transfer's threads: they block without spinning, and nothing waits forever once
/// the other side is gone.</summary>
public class HandoffTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_full_request_window_lets_the_sender_on_once_a_quarter_of_it_is_free()
    {
        var window = new RequestWindow(8);
        for (int i = 0; i < 8; i++) Assert.True(window.TryEnter());
        Assert.False(window.TryEnter());
        var entered = new ManualResetEventSlim();
        var sender = new Thread(() => { window.Enter(CancellationToken.None); entered.Set(); });
        sender.Start();
        Assert.True(SpinWait.SpinUntil(() => window.SenderWaiting, Long));
        window.Release(); // one free of eight: not yet
        Assert.False(entered.Wait(TimeSpan.FromMilliseconds(300)));
        window.Release(); // two of eight, a quarter
        Assert.True(entered.Wait(Long), "the sender was not let on with a quarter of the window free");
        Assert.True(sender.Join(Long));
        Assert.True(window.TryEnter()); // it took one of the two: one is left
        Assert.False(window.TryEnter());
    }

    [Fact]
    public void A_sender_waiting_on_a_full_window_is_let_through_when_the_connection_is_gone()
    {
        var window = new RequestWindow(2);
        Assert.True(window.TryEnter() && window.TryEnter());
        var sender = Task.Run(() => window.Enter(CancellationToken.None));
        Assert.True(SpinWait.SpinUntil(() => window.SenderWaiting, Long));
        window.Close();
        Assert.True(sender.Wait(Long), "a sender waited forever for replies that will never come");
    }

    [Fact]
    public void A_sender_waiting_on_a_full_window_stops_when_cancelled()
    {
        var window = new RequestWindow(1);
        Assert.True(window.TryEnter());
        using var cts = new CancellationTokenSource();
        var sender = Task.Run(() => window.Enter(cts.Token));
        Assert.True(SpinWait.SpinUntil(() => window.SenderWaiting, Long));
        cts.Cancel();
        var e = Assert.ThrowsAny<AggregateException>(() => sender.Wait(Long));
        Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
    }

    [Fact]
    public void A_handoff_queue_delivers_in_order_and_ends_its_taker_once_complete()
    {
        var queue = new HandoffQueue<int>();
        var taken = new List<int>();
        var taker = new Thread(() => { while (queue.Take(out var x)) taken.Add(x); });
        taker.Start();
        for (int i = 0; i < 1000; i++) Assert.True(queue.TryAdd(i));
        queue.CompleteAdding();
        Assert.True(taker.Join(Long), "the taker did not end after CompleteAdding");
        Assert.Equal(Enumerable.Range(0, 1000), taken);
        Assert.False(queue.TryAdd(1)); // nobody would take it
    }
}
