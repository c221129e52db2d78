using System.Diagnostics;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// <c>--ssh-persist SECONDS</c> through the loopback sshd: the first run starts one OpenSSH master with its socket in a
/// private 0700 directory and still ends at once (the master holds none of bcmr's output), the next run goes through
/// it without a new login, <c>--parallel</c> connections never use it, and a socket directory others could reach is
/// refused by name.
/// </summary>
public class SshPersistTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    /// <summary>"Master running (pid=N)" of the socket, or null when no master answers.</summary>
    private string? MasterStatus(string socketDir)
    {
        var psi = new ProcessStartInfo("ssh") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-F", fx.SshConfig, "-o", $"ControlPath={socketDir}/%C", "-O", "check", SshdFixture.Host }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? err.Trim() : null;
    }

    private void StopMaster(string socketDir)
    {
        var psi = new ProcessStartInfo("ssh") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-F", fx.SshConfig, "-o", $"ControlPath={socketDir}/%C", "-O", "exit", SshdFixture.Host }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
    }

    private static Dictionary<string, string> Env(RemoteScene s, string runtime) => s.Env(new() { ["XDG_RUNTIME_DIR"] = runtime });

    private static string Runtime(RemoteScene s)
    {
        var run = s.Local["run"];
        Directory.CreateDirectory(run);
        File.SetUnixFileMode(run, (UnixFileMode)0x1C0);
        return run;
    }

    /// <summary>Copies a new random file up with --ssh-persist SECONDS; the copy must succeed, its bytes identical.</summary>
    private void PersistentCopy(RemoteScene s, string run, string name, int size, int seed, int seconds = 120)
    {
        var local = s.Local.WriteRandom(name, size, seed);
        var r = BcmrRunner.Run(["copy", "--ssh-persist", seconds.ToString(), local, fx.Remote(s.R(name))], Env(s, run), timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(local), Trees.Sha256(s.R(name)));
    }

    private static string[] Forwards(RemoteScene s) => s.SshStarted.Where(l => l.Contains("-O forward")).ToArray();

    /// <summary>The resident servers running for this fixture: their command lines.</summary>
    private string[] Residents() => Directory.EnumerateDirectories("/proc")
        .Select(d => { try { return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' '); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; } })
        .Where(c => c.Contains("--resident " + fx.RemoteRuntime + "/", StringComparison.Ordinal)).ToArray();

    [SshFact]
    public void The_first_run_starts_one_master_and_a_resident_server_and_ends_at_once_the_next_run_starts_no_ssh()
    {
        using var s = new RemoteScene(fx, "k-");
        var run = Runtime(s);
        var sockets = Path.Combine(run, "bcmr-ssh");
        try
        {
            var a = s.Local.WriteRandom("a.bin", 100_000, 1);
            var clock = Stopwatch.StartNew();
            var first = BcmrRunner.Run(["copy", "--ssh-persist", "120", a, fx.Remote(s.R("a.bin"))], Env(s, run), timeout: TimeSpan.FromSeconds(60));
            Assert.True(first.ExitCode == 0, first.ToString());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the run waited for the master or the resident server ({clock.Elapsed})");
            Assert.Equal(Trees.Sha256(a), Trees.Sha256(s.R("a.bin")));
            // The session itself became the master (no second ssh to start or check one); one more ssh asked the master
            // to forward a local socket to the resident server the session's server started.
            Assert.Single(s.SshStarted, l => !l.Contains("-O forward"));
            Assert.Contains(s.SshStarted, l => l.Contains("ControlMaster=auto") && l.Contains("ControlPersist=120") && l.Contains($"ControlPath={sockets}/%C") && l.Contains("serve"));
            Assert.Single(Forwards(s));
            var status = MasterStatus(sockets);
            Assert.True(status is not null, "no master answers on the socket after the run");
            Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(sockets));
            var resident = Assert.Single(Residents());
            Assert.Contains("--idle 120", resident);
            var serveDir = Path.Combine(fx.RemoteRuntime, "bcmr-serve");
            Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(serveDir));
            var socket = Assert.Single(Directory.GetFiles(serveDir, "*.sock"));
            Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(socket));

            // The next run reaches that server through the master's forward: no ssh process at all.
            int before = s.SshStarted.Length;
            PersistentCopy(s, run, "b.bin", 100_000, 2);
            Assert.Equal(before, s.SshStarted.Length);
            Assert.Equal(status, MasterStatus(sockets)); // the same master process
            Assert.Equal(resident, Assert.Single(Residents())); // and the same resident server

            // A master that died leaves its sockets behind: the next run logs in itself, leaves a new master and
            // forwards again to the resident server, which still runs.
            int pid = int.Parse(System.Text.RegularExpressions.Regex.Match(status!, @"pid=(\d+)").Groups[1].Value);
            Process.GetProcessById(pid).Kill();
            Assert.True(SpinWait.SpinUntil(() => { try { return Process.GetProcessById(pid).HasExited; } catch (ArgumentException) { return true; } }, 10_000));
            PersistentCopy(s, run, "c0.bin", 100_000, 3);
            var restarted = MasterStatus(sockets);
            Assert.True(restarted is not null && restarted != status, $"no new master after the stale socket: {restarted}");
            Assert.Equal(2, Forwards(s).Length);
            Assert.Single(Residents());

            // --parallel: each connection its own, whatever the persist setting: no master, no resident server.
            File.Delete(s.SshLog);
            var parallel = BcmrRunner.Run(["copy", "-P", "2", "--ssh-persist", "120", a, fx.Remote(s.R("c.bin"))], Env(s, run), timeout: TimeSpan.FromSeconds(60));
            Assert.True(parallel.ExitCode == 0, parallel.ToString());
            Assert.Equal(2, s.SshStarted.Length);
            Assert.All(s.SshStarted, l => Assert.Contains("ControlPath=none", l));
        }
        finally
        {
            StopMaster(sockets);
            fx.StopResidentServers();
        }
    }

    /// <summary>A resident server that is gone (stopped, or timed out) while the master's forward remains: the run
    /// goes over ssh as before, and its server starts a new resident server for the runs after it.</summary>
    [SshFact]
    public void A_resident_server_that_ended_is_replaced_and_the_run_goes_over_ssh_meanwhile()
    {
        using var s = new RemoteScene(fx, "k-");
        var run = Runtime(s);
        var sockets = Path.Combine(run, "bcmr-ssh");
        try
        {
            PersistentCopy(s, run, "a.bin", 10_000, 5, 60);
            Assert.Single(Residents());
            Assert.Equal(1, fx.StopResidentServers());
            int before = s.SshStarted.Length;
            PersistentCopy(s, run, "b.bin", 10_000, 6, 60);
            Assert.Equal(before + 1, s.SshStarted.Length); // one ssh session; the forward to the same socket path stays
            Assert.Single(Residents());
            int after = s.SshStarted.Length;
            PersistentCopy(s, run, "c.bin", 10_000, 7, 60);
            Assert.Equal(after, s.SshStarted.Length); // the new resident server, through the old forward
        }
        finally
        {
            StopMaster(sockets);
            fx.StopResidentServers();
        }
    }

    [SshFact]
    public void A_socket_directory_others_can_reach_is_refused_by_name()
    {
        using var s = new RemoteScene(fx, "k-");
        var run = Runtime(s);
        var sockets = Path.Combine(run, "bcmr-ssh");
        Directory.CreateDirectory(sockets);
        File.SetUnixFileMode(sockets, (UnixFileMode)0x1FF);
        var a = s.Local.WriteRandom("a.bin", 1000, 3);
        var r = BcmrRunner.Run(["copy", "--ssh-persist", "60", a, fx.Remote(s.R("a.bin"))], Env(s, run), timeout: TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(sockets, r.Stderr);
        Assert.Contains("mode 0700", r.Stderr);
        Assert.False(File.Exists(s.R("a.bin")));
        Assert.DoesNotContain(s.SshStarted, l => l.Contains("ControlPersist"));
    }

    [SshFact]
    public void A_runtime_directory_too_long_for_a_socket_falls_back_to_the_temp_directory()
    {
        using var s = new RemoteScene(fx, "k-");
        var longRun = Path.Combine(s.Local.Path, new string('r', 60));
        Directory.CreateDirectory(longRun);
        File.SetUnixFileMode(longRun, (UnixFileMode)0x1C0);
        var tmp = Path.Combine("/tmp", "bk-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(tmp);
        var sockets = Path.Combine(tmp, $"bcmr-ssh-{Bcmr.Engine.Platform.Native.LibC.geteuid()}");
        try
        {
            var a = s.Local.WriteRandom("a.bin", 1000, 4);
            var r = BcmrRunner.Run(["copy", "--ssh-persist", "60", a, fx.Remote(s.R("a.bin"))],
                s.Env(new() { ["XDG_RUNTIME_DIR"] = longRun, ["TMPDIR"] = tmp }), timeout: TimeSpan.FromSeconds(60));
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.NotNull(MasterStatus(sockets));
            Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(sockets));
        }
        finally
        {
            StopMaster(sockets);
            fx.StopResidentServers();
            Directory.Delete(tmp, recursive: true);
        }
    }

    [Fact]
    public void A_negative_value_or_a_variable_that_is_not_a_number_is_a_usage_error()
    {
        using var dir = new TempDir();
        var r = BcmrRunner.Run("copy", "--ssh-persist", "-1", dir.WriteFile("a", [1]), "h:x");
        r.AssertExit(2);
        Assert.Contains("--ssh-persist must be 0", r.Stderr);

        var fromVariable = BcmrRunner.Run(["copy", dir["a"], dir["b"]], new Dictionary<string, string> { ["BCMR_SSH_PERSIST"] = "soon" });
        fromVariable.AssertExit(2);
        Assert.Contains("BCMR_SSH_PERSIST=soon: not a number of seconds", fromVariable.Stderr);
        Assert.DoesNotContain("Unhandled", fromVariable.Stderr);
        Assert.False(File.Exists(dir["b"]));
    }
}
