using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Client;

/// <summary>
/// <c>--ssh-persist SECONDS</c>: OpenSSH's own connection sharing, so that the next bcmr run to the same host within
/// that time skips the ssh handshake (<see cref="SessionOptions"/>), with the socket in a private directory:
/// <c>$XDG_RUNTIME_DIR/bcmr-ssh</c>, else <c>/tmp/bcmr-ssh-UID</c>, which must be a directory of ours with mode 0700
/// (anyone who can reach the socket can run commands as us on the host). Connections of <c>--parallel</c> never use it.
/// </summary>
public static class SshPersist
{
    /// <summary>The variable the CLI and the cmdlets read when no flag gives the seconds.</summary>
    public const string Variable = "BCMR_SSH_PERSIST";

    /// <summary>The longest socket directory ssh can use: a socket path is at most 107 bytes, and ssh binds
    /// DIR/%C (40 hex digits) plus a temporary suffix of 17 characters first.</summary>
    internal const int MaxDirectoryLength = 107 - 1 - 40 - 17;

    /// <summary>The private directory of the sockets, made if missing: under <paramref name="runtime"/>
    /// (<c>XDG_RUNTIME_DIR</c>) when its path is short enough for a socket, else under the temp directory; null when
    /// neither is (the copy then connects without sharing). Refused when it is not ours alone.</summary>
    public static string? SocketDirectory(string? runtime) =>
        PrivateDirectory.Ensure(runtime, "bcmr-ssh", MaxDirectoryLength, "not used for --ssh-persist");

    /// <summary>The socket path given to ssh (<c>%C</c>: a hash of the local host, remote host, port and user).</summary>
    public static string ControlPath(string directory) => Path.Combine(directory, "%C");

    /// <summary>The ssh options of a session that shares: the first session to a host becomes the master itself
    /// (<c>ControlMaster=auto</c>) and, once logged in, leaves a copy of itself in the background for
    /// <paramref name="seconds"/> after its last session (<c>ControlPersist</c>); the sessions after it go through
    /// the socket with no login. OpenSSH points the background master's standard streams at /dev/null, so it holds
    /// none of bcmr's output; a stale socket (a master that died) is removed by ssh, which then logs in itself.</summary>
    public static string[] SessionOptions(string controlPath, int seconds) =>
        ["-o", "ControlMaster=auto", "-o", $"ControlPath={controlPath}", "-o", $"ControlPersist={seconds}"];
}
