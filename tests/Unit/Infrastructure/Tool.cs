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

    /// <summary>Whether <paramref name="exe"/> is an executable file in one of PATH's directories (or /sbin, /usr/sbin,
    /// where Debian keeps mkfs tools that a non-login root shell may not have on PATH).</summary>
    public static bool OnPath(string exe)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/sbin", "/usr/sbin"]);
        return dirs.Any(d => File.Exists(Path.Combine(d, exe)));
    }

    /// <summary>Why a test that needs <paramref name="tools"/> cannot run here, or null when they are all on PATH.</summary>
    public static string? MissingReason(string package, params string[] tools)
    {
        var missing = tools.Where(t => !OnPath(t)).ToArray();
        return missing.Length == 0 ? null : $"needs {string.Join(", ", missing)} (Debian package {package}; .ci/run installs it)";
    }

    public static bool TryRun(string exe, params string[] args)
    {
        try { return Run(exe, args).ExitCode == 0; }
        catch (System.ComponentModel.Win32Exception) { return false; } // tool not installed
    }
}

/// <summary>A test that needs system tools beyond the .NET SDK (btrfs-progs, attr, …): skipped, with the package to
/// install, where one is missing from PATH. `.ci/run` installs them all, so CI runs every such test.</summary>
public sealed class RequiresToolsFactAttribute : FactAttribute
{
    public RequiresToolsFactAttribute(string package, params string[] tools) => Skip = Tool.MissingReason(package, tools);
}

/// <summary>The <see cref="RequiresToolsFactAttribute"/> rule for a theory.</summary>
public sealed class RequiresToolsTheoryAttribute : TheoryAttribute
{
    public RequiresToolsTheoryAttribute(string package, params string[] tools) => Skip = Tool.MissingReason(package, tools);
}

/// <summary>A test that needs root (mounts, other users): skipped, with what it needs root for, elsewhere. CI runs as root.</summary>
public sealed class RequiresRootFactAttribute : FactAttribute
{
    public RequiresRootFactAttribute(string why)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Skip = $"needs root: it {why}";
    }
}
