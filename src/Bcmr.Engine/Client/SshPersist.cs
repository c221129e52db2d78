using System.Diagnostics;
using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Client;

/// <summary>
/// <c>--ssh-persist SECONDS</c>: OpenSSH's own connection sharing, so that the next bcmr run to the same host within
/// that time skips the ssh handshake. A master (<c>ssh -M -N -f -o ControlPersist=SECONDS</c>) is started once,
/// detached from bcmr's standard streams (a master holding them would keep a caller that reads bcmr's output waiting
/// until it expires), with its socket in a private directory: <c>$XDG_RUNTIME_DIR/bcmr-ssh</c>, else
/// <c>/tmp/bcmr-ssh-UID</c>, which must be a directory of ours with mode 0700 (anyone who can reach the socket can run
/// commands as us on the host). The session itself goes through the socket with <c>ControlMaster=no</c>: if the master
/// is gone, ssh connects on its own. Connections of <c>--parallel</c> never use it.
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
    public static string? SocketDirectory(string? runtime)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(runtime) && Directory.Exists(runtime)) candidates.Add(Path.Combine(runtime, "bcmr-ssh"));
        candidates.Add(Path.Combine(Path.GetTempPath(), $"bcmr-ssh-{(OperatingSystem.IsWindows() ? 0 : Platform.Native.LibC.geteuid())}"));
        var dir = candidates.FirstOrDefault(d => System.Text.Encoding.UTF8.GetByteCount(d) <= MaxDirectoryLength);
        if (dir is null) return null;
        if (Fs.TryLstat(dir) is null)
        {
            try { Fs.MakeDirectory(dir, 0x1C0); }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists) { }
        }
        if (OperatingSystem.IsWindows()) return dir;
        var meta = Fs.TryLstat(dir);
        if (meta is not { Kind: EntryKind.Directory } m || m.Uid != Platform.Native.LibC.geteuid() || (m.Mode & 0x1FF) != 0x1C0)
            throw new BcmrException(BcmrErrorCode.PermissionDenied, dir,
                $"{dir}: not used for --ssh-persist: its ssh sockets must be in a directory owned by this user with mode 0700 " +
                (meta is null ? "(it could not be made)" : meta.Value.Kind != EntryKind.Directory ? "(it is not a directory)"
                    : $"(it has owner {meta.Value.Uid}, mode {Convert.ToString(meta.Value.Mode & 0x1FF, 8)})"));
        return dir;
    }

    /// <summary>The socket path given to ssh (<c>%C</c>: a hash of the local host, remote host, port and user).</summary>
    public static string ControlPath(string directory) => Path.Combine(directory, "%C");

    /// <summary>Makes sure a master for <paramref name="spec"/> listens on <paramref name="controlPath"/>: asks the
    /// socket (<c>ssh -O check</c>), and if nobody answers starts one that lives <paramref name="seconds"/> after its
    /// last session. A master that cannot be started is not an error: the session connects on its own.</summary>
    public static void EnsureMaster(RemoteSpec spec, string? sshCommand, string controlPath, int seconds, string? workingDirectory,
        Action<string>? warn)
    {
        var ssh = ShellWords.Split(SshChannel.SshCommandOrDefault(sshCommand));
        var check = new List<string>(ssh) { "-o", $"ControlPath={controlPath}", "-O", "check", "--", spec.Target };
        if (Run(check, workingDirectory, TimeSpan.FromSeconds(10), out _) == 0) return;
        var master = new List<string>(ssh);
        master.AddRange(SshChannel.FixedOptions);
        master.AddRange(["-o", "ControlMaster=yes", "-o", $"ControlPath={controlPath}", "-o", $"ControlPersist={seconds}", "-f", "-N", "--", spec.Target]);
        int exit = Run(master, workingDirectory, TimeSpan.FromSeconds(40), out var stderr);
        if (exit != 0)
            warn?.Invoke($"bcmr: {spec.Target}: --ssh-persist: the shared ssh connection could not be started (ssh exited with {exit}" +
                (stderr.Length > 0 ? $": {stderr}" : "") + "); connecting without it");
    }

    /// <summary>Runs ssh with its standard streams on /dev/null and a temporary file (never a pipe of ours: a master
    /// that forks into the background keeps what it was given).</summary>
    private static int Run(List<string> argv, string? workingDirectory, TimeSpan timeout, out string stderr)
    {
        var errFile = Path.GetTempFileName();
        try
        {
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, WorkingDirectory = workingDirectory ?? "" };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("exec \"$@\" </dev/null >/dev/null 2>\"$0\"");
            psi.ArgumentList.Add(errFile);
            foreach (var a in argv) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            if (!p.WaitForExit(timeout))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                stderr = "timed out";
                return -1;
            }
            stderr = string.Join(" ", File.ReadAllLines(errFile).Where(l => l.Length > 0).TakeLast(3));
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            stderr = e.Message;
            return -1;
        }
        finally { File.Delete(errFile); }
    }
}
