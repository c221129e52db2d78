using System.Security.Cryptography;
using System.Net;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Client;

/// <summary>
/// <c>--direct direct</c>: the serve protocol over a TCP connection of its own, in AES-256-GCM records, set up through
/// an ssh session (the control connection) that authenticated the server and carried the rendezvous: the client asks
/// OpenDirectChannel, the server answers DirectChannelReady{address, secret}, the client connects there and proves it
/// holds the secret (<see cref="DirectHandshake"/>); keys are per connection and per direction (<see cref="DirectKeys"/>).
/// So the data does not go through ssh's one cipher stream, and nobody but the ssh peer learns the secret.
/// <para>The control connection stays open and idle: when it ends (ssh killed, the network gone) this connection is
/// cut at once, and the transfer fails as on any lost connection (partial files kept for <c>-C</c>).</para>
/// </summary>
public sealed class DirectChannel : IServeChannel
{
    private readonly ServeClient _control;
    private readonly TcpChannel _tcp;
    private readonly AeadWriter _toServer;
    private readonly AeadReader _fromServer;
    private readonly CancellationTokenRegistration _watch;
    private volatile bool _closing, _controlLost;

    /// <summary>The variable the CLI and the cmdlets read when no flag says which data path to use.</summary>
    public const string Variable = "BCMR_DIRECT";

    /// <summary>"ssh" (the default: data through ssh) → false, "direct" → true; null or blank: false. Anything else
    /// is an InvalidArgument error naming <paramref name="source"/> (the flag or the variable).</summary>
    public static bool ParseMode(string? value, string source) =>
        string.IsNullOrWhiteSpace(value) ? false
        : value.Trim().ToLowerInvariant() switch
        {
            "ssh" => false,
            "direct" => true,
            _ => throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"{source}: '{value}' is not a data path; use ssh or direct"),
        };

    private DirectChannel(ServeClient control, TcpChannel tcp, DirectKeys keys)
    {
        _control = control;
        _tcp = tcp;
        _toServer = new AeadWriter(tcp.ToServer, keys.ClientToServer, AeadDirection.ClientToServer);
        _fromServer = new AeadReader(tcp.FromServer, keys.ServerToClient, AeadDirection.ServerToClient);
        keys.Dispose(); // the streams hold their own copies
        _watch = control.Ended.Register(() =>
        {
            if (_closing) return;
            _controlLost = true;
            _tcp.Abort();
        });
    }

    /// <summary>Asks the server at the other end of <paramref name="control"/> for a direct channel and connects to
    /// it. Owns <paramref name="control"/> from here on when it succeeds (closed with the channel). Throws
    /// <see cref="DirectRefusedException"/> saying why when there is none to be had: the server does not offer one,
    /// refused it, or the connection or its authentication failed; <paramref name="control"/> is then still open
    /// when <see cref="DirectRefusedException.ControlUsable"/>.</summary>
    public static DirectChannel Open(ServeClient control, CancellationToken ct, TimeSpan? connectTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(control);
        if (!control.Has(Features.Direct))
            throw new DirectRefusedException("the remote bcmr does not offer our direct channel (an older version, or bcmr 0.6, whose direct mode we do not use)", controlUsable: true);
        var reply = control.Call(OpenDirectChannel.Instance, ct);
        if (reply is ErrorResponse refused) throw new DirectRefusedException(refused.Text, controlUsable: true);
        if (reply is not DirectChannelReady ready)
            throw ServeClient.WrongReply(control.Remote, reply, MessageType.OpenDirectChannel, nameof(DirectChannelReady));
        // From here the server waits for us on the listener: its ssh session serves nothing else.
        if (!IPEndPoint.TryParse(ready.Address, out var endpoint) || endpoint.Port == 0)
            throw new DirectRefusedException($"the server named '{ready.Address}', which is not an address and port", controlUsable: false);
        TcpChannel tcp;
        try { tcp = TcpChannel.Connect(endpoint, connectTimeout ?? TimeSpan.FromSeconds(10)); }
        catch (BcmrException e) { throw new DirectRefusedException(e.Message, controlUsable: false); }
        try
        {
            // The challenge must come within the time, however slowly its bytes trickle in.
            DirectKeys keys;
            using (var cutoff = new Cutoff(TimeSpan.FromSeconds(10), tcp.Abort))
            {
                try { keys = DirectHandshake.Client(tcp.ToServer, ready.Key); }
                finally { CryptographicOperations.ZeroMemory(ready.Key); } // one rendezvous, one use
                if (!cutoff.Done()) throw new IOException("no challenge from the server within 10 s");
            }
            return new DirectChannel(control, tcp, keys);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            tcp.Dispose();
            throw new DirectRefusedException($"{endpoint}: {e.Message}", controlUsable: false);
        }
    }

    public string Remote => _control.Remote;

    public string Transport => "direct";

    public Stream ToServer => _toServer;

    public Stream FromServer => _fromServer;

    public void CloseOutput()
    {
        _closing = true;
        _tcp.CloseOutput();
    }

    public void Abort() => _tcp.Abort();

    /// <summary>How the server ended: its ssh control connection's peer (the server exits when its direct session
    /// ends, and says why on stderr, which ssh carries).</summary>
    public PeerEnd WaitForPeer(TimeSpan wait)
    {
        // Briefly: the ssh process lives on while the server merely refused or dropped this connection.
        var end = _control.Channel.WaitForPeer(wait < Brief ? wait : Brief);
        bool controlEnded = _controlLost || end.ExitCode is not null || _control.Ended.IsCancellationRequested;
        var how = controlEnded ? "the ssh control connection ended" + (end.How is { } h ? $": {h}" : "") : end.How;
        return end with { How = how };
    }

    private static readonly TimeSpan Brief = TimeSpan.FromSeconds(1);

    public BcmrException? ExplainStartFailure(int exitCode, string detail) => null;

    public void Dispose()
    {
        _closing = true;
        _watch.Dispose();
        _tcp.Dispose();
        _toServer.Dispose();
        _fromServer.Dispose();
        try { _control.Dispose(); } catch (Exception) { /* the server may have ended first */ }
    }
}

/// <summary>Why no direct channel was set up; <see cref="ControlUsable"/>: the ssh session that asked is still in
/// step and may carry the transfer instead (the server refused with an Error before it started listening).</summary>
public sealed class DirectRefusedException(string reason, bool controlUsable) : Exception(reason)
{
    public bool ControlUsable { get; } = controlUsable;
}
