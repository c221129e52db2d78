using System.Diagnostics;
using System.IO.Pipes;
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
    public void A_reply_reaches_the_caller_through_the_reader_that_started_before_the_Welcome()
    {
        // The reader thread starts before the Welcome and reads from the stream the handshake read the Welcome from;
        // the server's reply comes once the request is written, as a real server's does (a reply already behind the
        // Welcome would be one to a request not yet sent: the client rightly refuses such a frame, and a test that fed
        // it one only passed when the request won the race against the reader).
        // The server's end is a real pipe, as ssh's stdout is: the Welcome is in it from the start, the reply is put in
        // once the request has been written, and the pipe is closed (the end of the stream) after the test.
        var server = new AnonymousPipeServerStream(PipeDirection.Out);
        var fromServer = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        server.Write(Frames(new Welcome(Wire.Version, 0)));
        var toServer = new RequestsSeen(Frames(new Hello(Wire.Version, 0)).Length, () => server.Write(Frames(new StatResponse(42, 7, IsDir: false))));
        using var client = ServeClient.Open(new StreamChannel(toServer, fromServer, "peer"), 0);
        try
        {
            var stat = Assert.IsType<StatResponse>(client.Call(new StatRequest("/f"), CancellationToken.None));
            Assert.Equal(42UL, stat.Size);
        }
        finally { server.Dispose(); }
    }

    /// <summary>The client's side of the pipe: runs <paramref name="answer"/> once more than the Hello was written.</summary>
    private sealed class RequestsSeen(int helloBytes, Action answer) : MemoryStream
    {
        private bool _answered;

        // (A derived MemoryStream's span writes come here too.)
        public override void Write(byte[] buffer, int offset, int count)
        {
            base.Write(buffer, offset, count);
            if (Length > helloBytes && !_answered)
            {
                _answered = true;
                answer();
            }
        }
    }
}
