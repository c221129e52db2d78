using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Bcmr.Tests.Infrastructure;

/// <summary>
/// A private OpenSSH server on 127.0.0.1 (random port, fresh host and user keys, its own config), the same approach
/// as ../shared/tools/sshd-loopback.sh. The remote command is a wrapper around the bcmr under test that points HOME
/// and XDG_DATA_HOME at <see cref="RemoteHome"/>, which is therefore the server root. One per test class; stopped
/// (and its directory removed) when the class is done.
/// </summary>
public class SshdFixture : IDisposable
{
    public const string Host = "bcmrtest";

    /// <summary>The same server reached over ::1 (listened on only by a <see cref="DualStackSshdFixture"/>).</summary>
    public const string Host6 = "bcmrtest6";

    /// <summary>Why remote tests cannot run here, or null. CI installs openssh-server, so there they always run.</summary>
    public static readonly string? MissingReason =
        !File.Exists("/usr/sbin/sshd") ? "/usr/sbin/sshd is not installed (apt-get install openssh-server)"
        : !OperatingSystem.IsLinux() ? "the loopback sshd fixture runs on Linux only"
        : null;

    private readonly Process? _sshd;
    private readonly TempDir _dir = new();

    public SshdFixture() : this(maxStartups: 100) { }

    /// <param name="maxStartups">sshd's MaxStartups: how many connections may be unauthenticated at once (more are dropped).</param>
    /// <param name="ipv6">Also listen on ::1 (reached as <see cref="Host6"/>).</param>
    protected SshdFixture(int maxStartups, bool ipv6 = false)
    {
        if (MissingReason is not null) return;
        Dir = _dir.Path;
        RemoteHome = Path.Combine(Dir, "home");
        Directory.CreateDirectory(RemoteHome);
        Directory.CreateDirectory("/run/sshd");
        Tool.Output("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(Dir, "host_ed25519"));
        Tool.Output("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(Dir, "client_ed25519"));
        File.Copy(Path.Combine(Dir, "client_ed25519.pub"), Path.Combine(Dir, "authorized_keys"));
        Port = FreePort();
        var sshdConfig = Path.Combine(Dir, "sshd_config");
        File.WriteAllText(sshdConfig, $"""
            Port {Port}
            ListenAddress 127.0.0.1
            {(ipv6 ? "ListenAddress ::1" : "")}
            HostKey {Dir}/host_ed25519
            AuthorizedKeysFile {Dir}/authorized_keys
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            PidFile {Dir}/sshd.pid
            UsePAM no
            MaxStartups {maxStartups}
            MaxSessions 100
            Subsystem sftp /usr/lib/openssh/sftp-server

            """);
        SshConfig = Path.Combine(Dir, "ssh_config");
        string HostEntry(string name, string address) => $"""
            Host {name}
              HostName {address}
              Port {Port}
              User root
              IdentityFile {Dir}/client_ed25519
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR

            """;
        File.WriteAllText(SshConfig, HostEntry(Host, "127.0.0.1") + HostEntry(Host6, "::1"));
        RemoteBcmr = Path.Combine(Dir, "remote-bcmr");
        var dotnetRoot = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        // The server's runtime directory (where a resident server's socket goes, --ssh-persist): short enough for a
        // socket path, private to this fixture, and every resident server started in it is stopped with the fixture.
        RemoteRuntime = Path.Combine("/tmp", "brt-" + Guid.NewGuid().ToString("n")[..10]);
        Directory.CreateDirectory(RemoteRuntime);
        File.SetUnixFileMode(RemoteRuntime, (UnixFileMode)0x1C0);
        File.WriteAllText(RemoteBcmr, "#!/bin/sh\n" +
            $"export HOME='{RemoteHome}' XDG_DATA_HOME='{RemoteHome}/.local/share' XDG_RUNTIME_DIR='{RemoteRuntime}'\n" +
            (dotnetRoot is null ? "" : $"export DOTNET_ROOT='{dotnetRoot}'\n") +
            $"exec '{BcmrRunner.Executable}' \"$@\"\n");
        File.SetUnixFileMode(RemoteBcmr, (UnixFileMode)0x1ED);
        // The same with the server jailed to the home directory (`bcmr serve --root HOME`, a forced-command setup).
        RemoteBcmrJailed = Path.Combine(Dir, "remote-bcmr-jailed");
        File.WriteAllText(RemoteBcmrJailed, $"#!/bin/sh\nexec '{RemoteBcmr}' \"$@\" --root '{RemoteHome}'\n");
        File.SetUnixFileMode(RemoteBcmrJailed, (UnixFileMode)0x1ED);

        var psi = new ProcessStartInfo("/usr/sbin/sshd") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-D", "-e", "-f", sshdConfig }) psi.ArgumentList.Add(a);
        _sshd = Process.Start(psi)!;
        _sshd.ErrorDataReceived += (_, _) => { };
        _sshd.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_sshd.HasExited) { Thread.Sleep(50); }
        }
    }

    public string Dir { get; } = "";
    /// <summary>The server's XDG_RUNTIME_DIR: resident servers (--ssh-persist) keep their sockets under it.</summary>
    public string RemoteRuntime { get; } = "";
    public int Port { get; }
    public string SshConfig { get; } = "";
    /// <summary>The server root and the remote user's HOME.</summary>
    public string RemoteHome { get; } = "";
    /// <summary>The program given to --remote-bcmr / BCMR_REMOTE.</summary>
    public string RemoteBcmr { get; } = "";
    /// <summary>As <see cref="RemoteBcmr"/>, serving with <c>--root</c> <see cref="RemoteHome"/>.</summary>
    public string RemoteBcmrJailed { get; } = "";

    /// <summary>A server command (BCMR_REMOTE) written into <paramref name="dir"/> that looks like bcmr 0.6's serve to
    /// our client: the fault host (tests/FaultHost), whose serve offers at most the capabilities in
    /// <paramref name="capsMask"/> (no Extended bit: version 1 as it is, none of our messages or features).</summary>
    public string LegacyRemote(string dir, byte capsMask = 0x7f)
    {
        var legacy = Path.Combine(dir, "remote-legacy");
        File.WriteAllText(legacy, "#!/bin/sh\n" +
            $"export HOME='{RemoteHome}' XDG_DATA_HOME='{RemoteHome}/.local/share' XDG_RUNTIME_DIR='{RemoteRuntime}' BCMR_FAULT_SERVE_CAPS={capsMask:x2}\n" +
            (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { } root ? $"export DOTNET_ROOT='{root}'\n" : "") +
            $"exec '{BcmrRunner.FaultHost}' \"$@\"\n");
        File.SetUnixFileMode(legacy, (UnixFileMode)0x1ED);
        return legacy;
    }

    /// <summary>The ssh command (BCMR_SSH).</summary>
    public string SshCommand => $"ssh -F {SshConfig}";

    /// <summary>Environment for a bcmr client run against this server.</summary>
    public Dictionary<string, string> Env(Dictionary<string, string>? more = null)
    {
        var env = new Dictionary<string, string> { ["BCMR_SSH"] = SshCommand, ["BCMR_REMOTE"] = RemoteBcmr };
        if (more is not null) foreach (var (k, v) in more) env[k] = v;
        return env;
    }

    /// <summary>host:path for a path under the server root (absolute paths are used as they are).</summary>
    public string Remote(string path) => Host + ":" + path;

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Stops the resident servers (--ssh-persist) started under <see cref="RemoteRuntime"/>; how many.</summary>
    public int StopResidentServers()
    {
        int stopped = 0;
        if (RemoteRuntime.Length == 0) return 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' '); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (!cmdline.Contains("--resident " + RemoteRuntime + "/", StringComparison.Ordinal)) continue;
            try { using var p = Process.GetProcessById(pid); p.Kill(); p.WaitForExit(5000); stopped++; }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        return stopped;
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        StopResidentServers();
        if (RemoteRuntime.Length > 0) try { Directory.Delete(RemoteRuntime, recursive: true); } catch (IOException) { }
        if (_sshd is not null)
        {
            try { _sshd.Kill(entireProcessTree: true); _sshd.WaitForExit(5000); } catch (InvalidOperationException) { }
            _sshd.Dispose();
        }
        _dir.Dispose();
    }
}

/// <summary>A test that needs the loopback sshd: skipped, with the reason, only when sshd is not installed.</summary>
/// <summary>A loopback sshd that drops connections beyond two unauthenticated at once (<c>MaxStartups 2</c>).</summary>
public sealed class LimitedSshdFixture() : SshdFixture(maxStartups: 2);

/// <summary>A loopback sshd on 127.0.0.1 and ::1 (<see cref="SshdFixture.Host6"/>).</summary>
public sealed class DualStackSshdFixture() : SshdFixture(maxStartups: 100, ipv6: true);

public sealed class SshFactAttribute : FactAttribute
{
    public SshFactAttribute()
    {
        if (SshdFixture.MissingReason is not null) Skip = SshdFixture.MissingReason;
    }

    /// <summary>Also needs <paramref name="tools"/> (from Debian's <paramref name="package"/>): skipped, saying so, without them.</summary>
    public SshFactAttribute(string package, params string[] tools) : this()
    {
        Skip ??= Tool.MissingReason(package, tools);
    }
}

/// <summary>The <see cref="SshFactAttribute"/> rule for a theory.</summary>
public sealed class SshTheoryAttribute : TheoryAttribute
{
    public SshTheoryAttribute()
    {
        if (SshdFixture.MissingReason is not null) Skip = SshdFixture.MissingReason;
    }
}

/// <summary>Processes below a pid (for killing the ssh a bcmr started).</summary>
public static class ProcessTree
{
    public static List<int> Descendants(int pid)
    {
        var result = new List<int>();
        var queue = new Queue<int>([pid]);
        while (queue.Count > 0)
        {
            int p = queue.Dequeue();
            foreach (var task in SafeDirs($"/proc/{p}/task"))
            {
                string children;
                try { children = File.ReadAllText(Path.Combine(task, "children")); }
                catch (IOException) { continue; }
                foreach (var c in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    int child = int.Parse(c);
                    result.Add(child);
                    queue.Enqueue(child);
                }
            }
        }
        return result;
    }

    public static string Command(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim(); }
        catch (IOException) { return ""; }
    }

    private static IEnumerable<string> SafeDirs(string dir)
    {
        try { return Directory.GetDirectories(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }
}
