using System.Diagnostics;
using System.Net.Sockets;
using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Server;

/// <summary>
/// A resident server (<see cref="Protocol.Features.Resident"/>, <c>--ssh-persist</c>): <c>bcmr serve --resident PATH
/// --idle SECONDS</c>, started once by a serve that an ssh session ran, listening on a Unix socket in a private
/// directory (<see cref="PrivateDirectory"/> "bcmr-serve", mode 0700; the socket 0600) until it has had no connection
/// for that long. The client reaches it through its ssh master's forward of a local socket, so a run within that time
/// starts neither ssh nor a server: what sparsync's resident server buys, with ssh's authentication in front.
/// <para>One per account, program and settings: the socket's name is a hash of the command and the environment the
/// server depends on (<paramref name="fingerprint"/> in <see cref="Ensure"/>), so that a client whose server would
/// start with another HOME, root or store never reaches one that started with different ones.</para>
/// </summary>
public static class ResidentServer
{
    /// <summary>"serve-" + 16 hex digits + ".sock" after the directory: a socket path is at most 107 bytes.</summary>
    private const int MaxDirectoryLength = 107 - 1 - 27;

    /// <summary>The longest a resident server waits for its next connection (a week; the client's limit is a day).</summary>
    public const uint MaxSeconds = 7 * 86400;

    /// <summary>How long a server just started may take to listen.</summary>
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(10);

    /// <summary>The socket of the resident server for <paramref name="command"/> (the program and its arguments, to
    /// which "--resident PATH --idle SECONDS" are added), starting one when none answers there. Serialised by a lock
    /// file, so that two sessions asking at once start one server. Throws <see cref="BcmrException"/> when no private
    /// directory can be had or the server does not start (with the last lines it logged).</summary>
    public static string Ensure(uint seconds, IReadOnlyList<string> command, string fingerprint, string? runtimeDirectory)
    {
        seconds = Math.Clamp(seconds, 1, MaxSeconds);
        var dir = PrivateDirectory.Ensure(runtimeDirectory, "bcmr-serve", MaxDirectoryLength, "no resident server")
            ?? throw new BcmrException(BcmrErrorCode.IoError, null,
                $"no resident server: no socket directory short enough (at most {MaxDirectoryLength} bytes; set XDG_RUNTIME_DIR or TMPDIR)");
        var key = Hashing.Blake3.ToHex(Hashing.Blake3.Hash(System.Text.Encoding.UTF8.GetBytes(
            "bcmr resident\0" + string.Join('\0', command) + "\0" + fingerprint)).AsSpan(0, 8));
        var path = Path.Combine(dir, $"serve-{key}.sock");
        var log = Path.Combine(dir, $"serve-{key}.log");
        using var guard = Fs.OpenLockWaiting(Path.Combine(dir, $"serve-{key}.lock"), 0x180);
        if (Answers(path)) return path;
        Fs.TryDeleteFile(path); // a server that died left it
        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        // In the background, on no stream of this session (which ends before it does), its messages in the log.
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("log=$1; shift; exec \"$@\" </dev/null >/dev/null 2>\"$log\" &");
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add(log);
        foreach (var word in command) psi.ArgumentList.Add(word);
        foreach (var word in new[] { "--resident", path, "--idle", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(word);
        using (var sh = Process.Start(psi)!)
        {
            sh.StandardInput.Close();
            sh.WaitForExit();
        }
        var clock = Stopwatch.StartNew();
        while (!Answers(path))
        {
            if (clock.Elapsed > StartLimit)
                throw new BcmrException(BcmrErrorCode.IoError, path, $"{path}: the resident server did not start within {StartLimit.TotalSeconds:0} s" +
                    (LastLines(log) is { Length: > 0 } said ? $": {said}" : ""));
            Thread.Sleep(5);
        }
        return path;
    }

    /// <summary>Whether a server accepts connections on <paramref name="path"/> (the probe's connection ends at once;
    /// the server sees a session that ended before its Hello).</summary>
    public static bool Answers(string path)
    {
        if (Fs.TryLstat(path) is not { Kind: EntryKind.Other }) return false;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException) { return false; }
    }

    private static string LastLines(string log)
    {
        try { return string.Join(" ", File.ReadAllLines(log).Where(l => l.Length > 0).TakeLast(3)); }
        catch (IOException) { return ""; }
    }
}
