using System.Diagnostics;

namespace Bcmr.Tests.Infrastructure;

/// <summary>Runs a system tool (stat, b3sum, getfattr, mount, script…) the tests use as an independent oracle or to set the stage.</summary>
public static class Tool
{
    public static (int ExitCode, string Stdout) Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _ = stderr.Result;
        return (p.ExitCode, stdout);
    }

    /// <summary>Runs and demands success; returns trimmed stdout.</summary>
    public static string Output(string exe, params string[] args)
    {
        var (code, stdout) = Run(exe, args);
        Assert.True(code == 0, $"{exe} {string.Join(' ', args)} exited {code}");
        return stdout.Trim();
    }

    public static bool TryRun(string exe, params string[] args)
    {
        try { return Run(exe, args).ExitCode == 0; }
        catch (System.ComponentModel.Win32Exception) { return false; } // tool not installed
    }
}
