namespace Bcmr.Engine.Client;

/// <summary>
/// A framed stream to a server: the one seam between the transfer code and how it reaches a <c>bcmr serve</c>. Every
/// transport implements it (<see cref="SshChannel"/>, <see cref="ProcessChannel"/>, <see cref="TcpChannel"/>,
/// <see cref="StreamChannel"/>; an AEAD stage would wrap another channel's streams) and <see cref="ServeClientPool"/>
/// multiplies it; a <see cref="ServeClient"/> never knows which one it has.
/// <para>The streams are the raw bytes: the client does its own buffering and framing, so a channel adds no copy
/// per frame. <see cref="ToServer"/> is written by one thread and <see cref="FromServer"/> read by another at the
/// same time.</para>
/// </summary>
public interface IServeChannel : IDisposable
{
    /// <summary>Who the server is, for messages: "user@host", "127.0.0.1:7070".</summary>
    string Remote { get; }

    /// <summary>The kind of transport, as results report it: "ssh", "tcp", "process", "stream".</summary>
    string Transport { get; }

    /// <summary>Bytes to the server.</summary>
    Stream ToServer { get; }

    /// <summary>Bytes from the server.</summary>
    Stream FromServer { get; }

    /// <summary>Ends our sending half after the last request, so the server sees the end of its input while its
    /// replies can still be read (a socket is shut down for sending, a pipe closed).</summary>
    void CloseOutput();

    /// <summary>Ends the connection at once (cancellation, a stall): every blocked read and write wakes up failing.
    /// Safe from any thread, more than once.</summary>
    void Abort();

    /// <summary>How the peer ended, waiting for it at most <paramref name="wait"/>: its exit code when it is a
    /// process that has exited, and the last lines it wrote on stderr. Called only on failure paths.</summary>
    PeerEnd WaitForPeer(TimeSpan wait);

    /// <summary>What an exit before the handshake means on this transport, when it means something particular (ssh:
    /// 255 is ssh's own failure; a remote shell's 126/127 is no bcmr there, which lets the caller fall back to scp);
    /// null for the general message.</summary>
    BcmrException? ExplainStartFailure(int exitCode, string detail);
}

/// <summary>How a channel's peer ended: <paramref name="ExitCode"/> null while it runs or when no process is known
/// (TCP); <paramref name="Stderr"/> its last diagnostic lines joined, or ""; <paramref name="How"/> the exit in words
/// ("ssh exited with 255"), null when unknown.</summary>
public readonly record struct PeerEnd(int? ExitCode, string Stderr, string? How);
