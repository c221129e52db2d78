using System.Diagnostics;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Client;

/// <summary>
/// The client's way to a resident server (<see cref="Features.Resident"/>, <c>--ssh-persist</c>): a Unix socket in the
/// private ssh socket directory that the ssh master forwards (<c>ssh -O forward -L LOCAL:REMOTE</c>) to the server's
/// resident socket. A run finds it and talks to the server with no ssh process and no server start; a run that finds
/// nothing there, or a socket whose master or server is gone, connects over ssh as before and, through that session,
/// has the server make sure its resident server runs and the master forward to it, for the runs after it.
/// <para>Named by the host, the ssh command and the remote command, so that a run never reaches a server that another
/// configuration (another account, another remote bcmr) would have started.</para>
/// </summary>
internal sealed class ResidentRoute
{
    private readonly RemoteSpec _remote;
    private readonly string? _sshCommand;
    private readonly string _controlPath;
    /// <summary>The local socket accepted this run: its forward exists (the far end may be what failed).</summary>
    private bool _forwarded;

    private ResidentRoute(RemoteSpec remote, string? sshCommand, string controlPath, string localSocket)
    {
        _remote = remote;
        _sshCommand = sshCommand;
        _controlPath = controlPath;
        LocalSocket = localSocket;
    }

    /// <summary>The forwarded socket, beside the master's in <paramref name="socketDirectory"/>.</summary>
    public string LocalSocket { get; }

    public static ResidentRoute For(string socketDirectory, string controlPath, RemoteSpec remote, string? sshCommand, string? remoteCommand)
    {
        var key = Hashing.Blake3.ToHex(Hashing.Blake3.Hash(System.Text.Encoding.UTF8.GetBytes(
            $"bcmr route\0{remote.Target}\0{SshChannel.SshCommandOrDefault(sshCommand)}\0{SshChannel.RemoteServeCommand(remoteCommand)}")).AsSpan(0, 8));
        return new ResidentRoute(remote, sshCommand, controlPath, Path.Combine(socketDirectory, $"serve-{key}"));
    }

    /// <summary>A session with the resident server, or null when there is none to be had this way (then over ssh).</summary>
    public ServeClient? TryOpen(byte caps, TimeSpan? stallTimeout)
    {
        if (Fs.TryLstat(LocalSocket) is not { Kind: EntryKind.Other }) return null;
        TcpChannel channel;
        try { channel = TcpChannel.ConnectLocal(LocalSocket, _remote.Target, "ssh"); }
        catch (BcmrException)
        {
            Fs.TryDeleteFile(LocalSocket); // the master that listened there has ended
            return null;
        }
        _forwarded = true;
        // A forward whose server has ended is closed by the master at once: the handshake fails, and ssh takes over.
        try { return ServeClient.Open(channel, caps, stallTimeout); }
        catch (BcmrException) { return null; }
    }

    /// <summary>After a session over ssh: the server starts (or finds) its resident server, and the master is asked
    /// to forward <see cref="LocalSocket"/> to it, unless that forward exists already. Quietly nothing when the server
    /// offers none or refuses: the run itself is not concerned.</summary>
    public void Arrange(ServeClient session, int seconds, CancellationToken ct)
    {
        if ((session.Features & Features.Resident) == 0) return;
        Message reply;
        try { reply = session.Call(new StayResidentRequest((uint)seconds), ct); }
        catch (BcmrException) { return; }
        if (reply is not OkResponse { Hash: { Length: > 0 } remoteSocket } || _forwarded) return;
        // ssh's -L LOCAL:REMOTE has no quoting: a path with a colon cannot be forwarded.
        if (remoteSocket.Contains(':') || LocalSocket.Contains(':')) return;
        Fs.TryDeleteFile(LocalSocket);
        var argv = ShellWords.Split(SshChannel.SshCommandOrDefault(_sshCommand));
        // Not the session's fixed options: their ClearAllForwardings=yes would clear this -L too.
        argv.AddRange(["-o", "BatchMode=yes", "-o", $"ControlPath={_controlPath}", "-O", "forward", "-L", $"{LocalSocket}:{remoteSocket}", "--", _remote.Target]);
        var psi = new ProcessStartInfo(argv[0])
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        try
        {
            using var ssh = Process.Start(psi)!;
            ssh.StandardInput.Close();
            _ = ssh.StandardError.ReadToEndAsync(CancellationToken.None);
            _ = ssh.StandardOutput.ReadToEndAsync(CancellationToken.None);
            if (!ssh.WaitForExit(10_000))
            {
                try { ssh.Kill(); } catch (InvalidOperationException) { }
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException) { }
    }
}
