using System.Diagnostics;

namespace Bcmr.Tests.Module;

/// <summary>PowerShell in a child process (bcmr-pwsh-host, built beside the tests): for Start-BcmrServe on a real
/// process's stdin/stdout, and for cmdlets that must see another environment than the test process. The module is
/// imported from out/Bcmr first; HOME and XDG_DATA_HOME point into the test's own directory.</summary>
public static class PwshHostProcess
{
    public static string Executable => Path.Combine(AppContext.BaseDirectory, "bcmr-pwsh-host");

    public static ProcessStartInfo StartInfo(string script, string home, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(Executable)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"Import-Module -Name '{PublishedModule.Manifest.Replace("'", "''")}' -ErrorAction Stop; {script}");
        psi.Environment["HOME"] = home;
        psi.Environment["XDG_DATA_HOME"] = Path.Combine(home, ".local", "share");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>Runs a script to its end. Returns the exit code, the objects it emitted (one "out: " line each, as
    /// text), and everything the host reported on stderr.</summary>
    public static (int ExitCode, List<string> Output, string Stderr, string Stdout) Run(string script, string home, IDictionary<string, string>? env = null)
    {
        using var p = Process.Start(StartInfo(script, home, env))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("bcmr-pwsh-host did not finish: " + script);
        }
        var err = stderr.Result;
        var output = err.Split('\n').Where(l => l.StartsWith("out: ", StringComparison.Ordinal)).Select(l => l[5..]).ToList();
        return (p.ExitCode, output, err, stdout.Result);
    }
}
