namespace Bcmr.Engine.Client;

/// <summary>
/// A channel over two streams someone else connected: a server in this process (tests, benchmarks: a
/// <c>ServeSession</c> over pipes), or scripted replies. It owns the streams and disposes them.
/// </summary>
public sealed class StreamChannel(Stream toServer, Stream fromServer, string remote) : IServeChannel
{
    public string Remote { get; } = remote;

    public string Transport => "stream";

    public Stream ToServer { get; } = toServer;

    public Stream FromServer { get; } = fromServer;

    public void CloseOutput() => ToServer.Dispose();

    public void Abort() => Dispose();

    public PeerEnd WaitForPeer(TimeSpan wait) => new(null, "", null);

    public BcmrException? ExplainStartFailure(int exitCode, string detail) => null;

    public void Dispose()
    {
        try { ToServer.Dispose(); } catch (IOException) { }
        try { FromServer.Dispose(); } catch (IOException) { }
    }
}
