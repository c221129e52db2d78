using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>A local temp directory and a remote one under the loopback sshd's home, with an ssh wrapper that logs
/// every ssh started ("pid argv", one line each) so that a test can count connections or kill one of them.</summary>
internal sealed class RemoteScene : IDisposable
{
    public readonly TempDir Local = new();
    public readonly string RemoteDir;
    public readonly string SshLog;
    public readonly string SshWrapper;

    private readonly SshdFixture _fx;

    public RemoteScene(SshdFixture fx, string prefix)
    {
        _fx = fx;
        RemoteDir = Path.Combine(fx.RemoteHome, prefix + Guid.NewGuid().ToString("n")[..12]);
        Directory.CreateDirectory(RemoteDir);
        SshLog = Local["ssh.log"];
        SshWrapper = Local["ssh-logging"];
        File.WriteAllText(SshWrapper, $"#!/bin/sh\necho \"$$ $*\" >> '{SshLog}'\nexec ssh \"$@\"\n");
        File.SetUnixFileMode(SshWrapper, (UnixFileMode)0x1ED);
    }

    public string R(string rel) => Path.Combine(RemoteDir, rel);

    /// <summary>The client's environment: the fixture's, ssh through the logging wrapper, and <paramref name="more"/>.</summary>
    public Dictionary<string, string> Env(Dictionary<string, string>? more = null)
    {
        var env = _fx.Env(new() { ["BCMR_SSH"] = $"{SshWrapper} -F {_fx.SshConfig}" });
        if (more is not null) foreach (var (k, v) in more) env[k] = v;
        return env;
    }

    /// <summary>One line per ssh started: "pid argv".</summary>
    public string[] SshStarted => File.Exists(SshLog) ? File.ReadAllLines(SshLog) : [];

    public void Dispose()
    {
        Local.Dispose();
        try { Directory.Delete(RemoteDir, recursive: true); } catch (IOException) { }
    }
}
