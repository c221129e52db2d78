using System.Net;
using System.Net.Sockets;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Server;

// The direct channel (--direct direct), server side. The ssh session that asked for it becomes its control channel:
// it carries nothing more, and its end (ssh killed, the client gone) ends the direct session at once.
public sealed partial class ServeSession
{
    /// <summary>How the direct session ended, which is how this session ends.</summary>
    private ServeEnd? _directEnd;

    /// <summary>The direct session running on this session's thread, and its socket, for <see cref="InterruptDirect"/>.</summary>
    private (ServeSession Session, Socket Socket)? _direct;

    /// <summary>Ends the direct session (the control connection ended, or a signal): its upload kept as a partial
    /// file, its socket shut so that a blocked read returns. Never throws: it runs on the control watcher's thread
    /// and in signal handling.</summary>
    private void InterruptDirect()
    {
        (ServeSession Session, Socket Socket)? direct;
        lock (_lock) direct = _direct;
        if (direct is not { } d) return;
        try { d.Session.Interrupt(); }
        catch (Exception e) { Log($"direct channel: interrupting: {e.Message}"); }
        try { d.Socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    /// <summary>OpenDirectChannel: listen on the ssh connection's own address, hand the client the address and a fresh
    /// secret over ssh (DirectChannelReady), wait for it to authenticate, and serve it on this thread over AES-GCM
    /// records. Refused with an Error, the session going on over ssh, when there is no address to bind (no
    /// <c>SSH_CONNECTION</c>) or binding fails. False: the session is over (the direct one ended, or nobody came).</summary>
    private bool ServeDirect()
    {
        if (_options.DirectAddress is not IPAddress address)
        {
            Fail(_options.DirectRefusal ?? "the server does not know the address the ssh connection came in on");
            return true;
        }
        DirectListener listener;
        try { listener = DirectListener.Start(address, _options.Log, _options.DirectPeer); }
        catch (BcmrException e)
        {
            Fail(e);
            return true;
        }
        using (listener)
        {
            Log($"direct channel: listening on {listener.Address} for {_options.RendezvousTimeout.TotalSeconds:0} s");
            Send(new DirectChannelReady(listener.Address, listener.Secret));
            FlushReplies(); // here, before the watcher thread below takes over the control connection's input

            using var controlGone = new CancellationTokenSource();
            var watcher = new Thread(() => WatchControl(controlGone)) { IsBackground = true, Name = "bcmr-serve-control" };
            watcher.Start();

            var accepted = listener.WaitForClient(_options.RendezvousTimeout, controlGone.Token);
            if (accepted is not { } client)
            {
                Log(controlGone.IsCancellationRequested
                    ? "direct channel: the control connection ended before a client authenticated"
                    : $"direct channel: no client authenticated within {_options.RendezvousTimeout.TotalSeconds:0} s ({listener.Refused} refused); giving up");
                _directEnd = ServeEnd.ConnectionLost;
                return false;
            }
            _directEnd = RunDirect(client.Socket, client.Keys, controlGone.Token);
            return false;
        }
    }

    /// <summary>Serves the authenticated connection until it ends, or until the control connection does.</summary>
    private ServeEnd RunDirect(Socket socket, DirectKeys keys, CancellationToken controlGone)
    {
        var net = new NetworkStream(socket, ownsSocket: true);
        var options = new ServeOptions
        {
            Root = _options.Root, Home = _options.Home, Log = _options.Log, Capabilities = _options.Capabilities,
            // A direct session cannot open another one.
            Features = _options.Features & ~Protocol.Features.Direct,
            Store = _options.Store, Settings = _options.Settings, EncoderWorkers = _options.EncoderWorkers, Threads = _options.Threads,
        };
        using var reader = new AeadReader(net, keys.ClientToServer, AeadDirection.ClientToServer);
        using var writer = new AeadWriter(net, keys.ServerToClient, AeadDirection.ServerToClient);
        keys.Dispose(); // the streams hold their own copies
        using var direct = new ServeSession(reader, writer, options, (int)socket.Handle);
        lock (_lock) _direct = (direct, socket);
        using var stop = controlGone.Register(() =>
        {
            Log("direct channel: the control connection ended; closing the direct connection");
            InterruptDirect();
        });
        if (_interrupted) InterruptDirect(); // a signal that came before the session was known
        var end = direct.Run();
        lock (_lock) _direct = null;
        Log($"direct channel: session ended ({end})");
        CloseGracefully(socket);
        net.Dispose();
        return end;
    }

    /// <summary>Ends a connection so that what was sent last (an Error saying why) reaches the peer: our side is shut
    /// for sending, then what the peer still sends is read and dropped until it closes, at most
    /// <paramref name="drain"/> (1 s by default). Closing at once with unread input would make the kernel answer with
    /// a reset, and a reset can discard our last bytes before the peer reads them.</summary>
    internal static void CloseGracefully(Socket socket, TimeSpan? drain = null)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
            var until = Environment.TickCount64 + (long)(drain ?? TimeSpan.FromSeconds(1)).TotalMilliseconds;
            var sink = new byte[64 * 1024];
            while (Environment.TickCount64 < until)
            {
                if (!socket.Poll(TimeSpan.FromMilliseconds(Math.Max(1, until - Environment.TickCount64)), SelectMode.SelectRead)) break;
                if (socket.Receive(sink) == 0) break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    /// <summary>The control connection carries nothing while the direct one runs: its end (EOF, Done, a broken pipe)
    /// or anything else on it means the client is gone or confused, and ends the direct session.</summary>
    private void WatchControl(CancellationTokenSource gone)
    {
        try
        {
            if (_reader.TryReadFrame(out var frame) && frame.Type != MessageType.Done)
                Log($"direct channel: unexpected {Describe(frame.Type)} on the control connection");
        }
        catch (Exception) { /* any failure of the control connection is its end */ }
        // The callbacks never throw (InterruptDirect), but nothing may escape this thread: it would end the process.
        try { gone.Cancel(); } catch (Exception) { }
    }
}
