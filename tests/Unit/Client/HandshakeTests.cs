using System.Diagnostics;
using Bcmr.Engine;
using Bcmr.Engine.Client;
using Bcmr.Engine.Protocol;

namespace Bcmr.Tests.Client;

/// <summary>The client's reader thread starts while the server logs in, before the Welcome: a session that never
/// starts must end it at once, and a session that does must see every reply.</summary>
public class HandshakeTests
{
    private static byte[] Frames(params Message[] messages)
    {
        var bytes = new MemoryStream();
        using (var writer = new FrameWriter(bytes))
        {
            foreach (var m in messages) writer.Write(m);
            writer.Flush();
        }
        return bytes.ToArray();
    }

    public static TheoryData<string> Refusals => ["error", "garbage", "end", "wrong version"];

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_session_that_never_starts_fails_at_once_and_its_reader_ends_with_it(string how)
    {
        var replies = how switch
        {
            "error" => Frames(new ErrorResponse("no sessions today")),
            "garbage" => "Welcome to our server!\n"u8.ToArray(),
            "end" => [],
            _ => Frames(new Welcome(Wire.Version + 1, 0)),
        };
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<BcmrException>(() => ServeClient.Open(new StreamChannel(Stream.Null, new MemoryStream(replies), "peer"), 0));
        // The failed client was disposed inside Open, which joins its reader thread (10 s, then 5 s, if it still ran).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"Open took {clock.Elapsed} to fail: the reader thread outlived the handshake");
        Assert.Contains("peer", e.Message);
        if (how == "error") Assert.Contains("no sessions today", e.Message);
    }

    [Fact]
    public void A_reply_right_behind_the_Welcome_reaches_the_caller()
    {
        // The server answers the Stat in the same write as the Welcome: the reader thread, waiting since before the
        // Welcome, must take it from the same buffered stream the handshake read.
        var replies = Frames(new Welcome(Wire.Version, 0), new StatResponse(42, 7, IsDir: false));
        using var client = ServeClient.Open(new StreamChannel(Stream.Null, new MemoryStream(replies), "peer"), 0);
        var stat = Assert.IsType<StatResponse>(client.Call(new StatRequest("/f"), CancellationToken.None));
        Assert.Equal(42UL, stat.Size);
    }
}
