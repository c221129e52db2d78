using Bcmr.Engine.Client;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>BCMR_SSH and BCMR_REMOTE are read by the CLI (and the cmdlets), not the engine: a flag beats the variable,
/// the variable beats the default, and the engine uses what it is given.</summary>
public class SshSettingsTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    [SshFact]
    public void Flags_beat_BCMR_SSH_and_BCMR_REMOTE_and_the_variables_beat_the_defaults()
    {
        using var t = new TempDir();
        File.WriteAllText(t["f"], "flags");
        var dir = "settings-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(Path.Combine(fx.RemoteHome, dir));
        // Variables that cannot work: only the flags can make this copy succeed.
        var broken = new Dictionary<string, string> { ["BCMR_SSH"] = fx.SshCommand + " -p 1", ["BCMR_REMOTE"] = "/nonexistent/bcmr" };
        var r = BcmrRunner.Run(["copy", "--no-fallback", "--ssh", fx.SshCommand, "--remote-bcmr", fx.RemoteBcmr, t["f"], fx.Remote(dir + "/f")], broken);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("flags", File.ReadAllText(Path.Combine(fx.RemoteHome, dir, "f")));

        // The same variables without flags are what is used (so the failure is theirs).
        var viaEnv = BcmrRunner.Run(["copy", "--no-fallback", t["f"], fx.Remote(dir + "/g")], broken);
        viaEnv.AssertExit(1);
        Assert.Contains("ssh failed", viaEnv.Stderr);

        var check = BcmrRunner.Run(["check", "--ssh", fx.SshCommand, "--remote-bcmr", fx.RemoteBcmr, t["f"], fx.Remote(dir + "/f")], broken);
        Assert.True(check.ExitCode == 0, check.ToString());
    }
}

/// <summary>Changes this process's environment, so it runs alone (no other test sees the variables).</summary>
[Collection("ProcessEnvironment")]
public class EngineIgnoresSshVariablesTests
{
    [Fact]
    public void The_engine_uses_its_defaults_whatever_BCMR_SSH_and_BCMR_REMOTE_say()
    {
        var (ssh, remote) = (Environment.GetEnvironmentVariable("BCMR_SSH"), Environment.GetEnvironmentVariable("BCMR_REMOTE"));
        try
        {
            Environment.SetEnvironmentVariable("BCMR_SSH", "not-ssh -p 1");
            Environment.SetEnvironmentVariable("BCMR_REMOTE", "/not/bcmr");
            var argv = SshChannel.BuildArguments(new RemoteSpec(null, "h", "p"), null, null);
            Assert.Equal("ssh", argv[0]);
            Assert.Equal("bcmr serve", argv[^1]);
            Assert.Equal("ssh", SshChannel.SshCommandOrDefault(null));
        }
        finally
        {
            Environment.SetEnvironmentVariable("BCMR_SSH", ssh);
            Environment.SetEnvironmentVariable("BCMR_REMOTE", remote);
        }
    }
}

[CollectionDefinition("ProcessEnvironment", DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection;
