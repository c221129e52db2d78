using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Bcmr.Tests.Infrastructure;

public sealed record RunResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The JSON lines of a --json run.</summary>
    public IReadOnlyList<JsonElement> JsonLines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    public JsonElement JsonResult => JsonLines.Single(l => l.GetProperty("type").GetString() == "result");

    public IEnumerable<JsonElement> JsonFiles => JsonLines.Where(l => l.GetProperty("type").GetString() == "file");

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";

    /// <summary>Asserts the exit code; when it differs the message carries the run's stdout and stderr, so that a
    /// failure seen once in CI says why.</summary>
    public RunResult AssertExit(int expected)
    {
        Assert.True(ExitCode == expected, $"expected exit {expected}, got {this}");
        return this;
    }
}

/// <summary>Runs the built `bcmr` program as a user would, with HOME and XDG_DATA_HOME pointed at a private
/// directory so that sessions and stores never touch the real home.</summary>
public static class BcmrRunner
{
    public static string Executable =>
        Environment.GetEnvironmentVariable("BCMR_TEST_EXE") is { Length: > 0 } exe ? exe : Path.Combine(AppContext.BaseDirectory, "bcmr");

    /// <summary>
    /// bcmr-fault-host (tests/FaultHost): bcmr's own Main with the engine's test hooks set from its environment
    /// (BCMR_FAULT_CORRUPT_STAGED=substring), for the tests of failure paths; the shipped bcmr cannot turn a hook on.
    /// Always the JIT build beside the tests, also in tools/test.sh's Native AOT pass (BCMR_TEST_EXE): there the fault
    /// tests check the engine's handling of the fault, not the AOT binary.
    /// </summary>
    public static string FaultHost => Path.Combine(AppContext.BaseDirectory, "bcmr-fault-host");

    private static readonly string IsolatedHome = TempDir.ForTheRun("bcmr-test-home-");

    /// <param name="executable">The program to run instead of <see cref="Executable"/> (<see cref="FaultHost"/>).</param>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IDictionary<string, string>? env = null, string? asUser = null, string? cwd = null,
        string? executable = null)
    {
        executable ??= Executable;
        var psi = new ProcessStartInfo
        {
            WorkingDirectory = cwd ?? "",
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (asUser is null)
        {
            psi.FileName = executable;
        }
        else
        {
            // Drop root so that permission checks apply (root bypasses them).
            psi.FileName = "setpriv";
            foreach (var a in new[] { "--reuid=" + asUser, "--regid=" + asUser, "--clear-groups", executable }) psi.ArgumentList.Add(a);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = IsolatedHome;
        psi.Environment["XDG_DATA_HOME"] = Path.Combine(IsolatedHome, ".local", "share");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        return psi;
    }

    public static RunResult Run(params string[] args) => Run(args, env: null);

    public static RunResult Run(IEnumerable<string> args, IDictionary<string, string>? env = null, string? asUser = null, TimeSpan? timeout = null, string? cwd = null,
        string? executable = null)
    {
        using var p = Process.Start(StartInfo(args, env, asUser, cwd, executable))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"bcmr {string.Join(' ', args)} did not finish in time");
        }
        return new RunResult(p.ExitCode, stdout.Result, stderr.Result);
    }
}
