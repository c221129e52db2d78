using Bcmr.Engine.Client;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Transfers;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Client;

/// <summary>A lying server's listing: names that would write outside the download's destination fail by name, with
/// everything under them, and nothing is written outside.</summary>
public class RemoteTreeTests
{
    /// <summary>A server in this thread's pipes: Welcome, the source is a directory, and this listing of it; any
    /// other request is refused.</summary>
    private static IServeChannel LyingServer(ListEntry[] entries, List<Thread> threads)
    {
        var toServer = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
        var serverIn = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, toServer.ClientSafePipeHandle);
        var fromServer = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.In);
        var serverOut = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.Out, fromServer.ClientSafePipeHandle);
        var server = new Thread(() =>
        {
            using var reader = new FrameReader(serverIn);
            using var writer = new FrameWriter(serverOut);
            try
            {
                while (reader.ReadMessage() is { } m)
                {
                    writer.Write(m switch
                    {
                        Hello => new Welcome(Wire.Version, 0),
                        StatRequest => new StatResponse(0, 0, IsDir: true),
                        ListRequest => new ListResponse(entries),
                        _ => new ErrorResponse("not in this script"),
                    });
                    writer.Flush();
                }
            }
            catch (IOException) { } // the client hung up
        }) { IsBackground = true };
        server.Start();
        threads.Add(server);
        return new StreamChannel(toServer, fromServer, "peer");
    }

    [Fact]
    public void A_listing_that_climbs_out_of_the_destination_writes_nothing_outside_and_names_each_refusal()
    {
        using var t = new TempDir();
        Directory.CreateDirectory(t["dst"]);
        var threads = new List<Thread>();
        ListEntry[] listing = [
            new ListEntry("../escape", 0, 0, IsDir: true),
            new ListEntry("../escape/inside.txt", 0, 0, IsDir: false),
            new ListEntry("/abs", 0, 0, IsDir: true),
            new ListEntry("ok", 0, 0, IsDir: true),
            new ListEntry("ok/../../up", 0, 0, IsDir: true)];
        var results = new List<CopyResult>();
        var request = new CopyRequest
        {
            Sources = ["peer:/d"], Destination = t["dst"], Recursive = true,
            OpenChannel = _ => LyingServer(listing, threads),
        };
        var summary = new RemoteTransfer(request, null, r => { lock (results) results.Add(r); }, new PathFilter([]), CancellationToken.None).Run();
        foreach (var th in threads) Assert.True(th.Join(TimeSpan.FromSeconds(10)), "the fake server did not end");

        Assert.True(summary.Fatal is null, summary.Fatal?.Message);
        var refused = results.Where(r => r.Message?.Contains("cannot be written here safely") == true).Select(r => r.Source).Order(StringComparer.Ordinal).ToList();
        Assert.True(refused.Count == 3, string.Join("\n", results.Select(r => $"{r.Status} {r.Source}: {r.Message}")));
        Assert.Equal(["peer:/d/../escape", "peer:/d//abs", "peer:/d/ok/../../up"], refused);
        Assert.Equal(3, summary.Failed);
        Assert.True(Directory.Exists(t["dst/d/ok"]));
        Assert.False(Path.Exists(t["escape"]));
        Assert.False(Path.Exists(t["dst/escape"]));
        Assert.False(Path.Exists(t["up"]));
        Assert.False(Path.Exists("/abs"));
        Assert.Equal(["dst"], Directory.EnumerateFileSystemEntries(t.Path).Select(p => Path.GetFileName(p)!).ToArray());
    }
}
