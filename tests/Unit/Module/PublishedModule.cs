using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace Bcmr.Tests.Module;

/// <summary>
/// The module as users get it: README's publish command (<c>dotnet publish src/Bcmr.Cmdlets -c Release -o out/Bcmr</c>)
/// run once per test run, before the first module test, so that a fresh clone's <c>dotnet test -c Release</c> tests the
/// real layout (manifest, format file, generated help, the bcmr program) and never a stale one.
/// </summary>
public static class PublishedModule
{
    private static readonly Lazy<string> Folder = new(Publish, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>out/Bcmr, published.</summary>
    public static string Directory => Folder.Value;

    public static string Manifest => Path.Combine(Directory, "Bcmr.psd1");

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The cmdlets the manifest must export, no more, no less.</summary>
    public static readonly string[] Cmdlets = ["Clear-BcmrCas", "Copy-BcmrItem", "Get-BcmrSession", "Move-BcmrItem", "Remove-BcmrSession", "Start-BcmrServe", "Sync-BcmrItem"];

    /// <summary>
    /// The test project references Bcmr.Cmdlets without copying it (Private=false), so that one copy only is ever
    /// loaded: the published one, which Import-Module also loads. The plain unit tests of the cmdlets' logic reach it
    /// through this resolver (publishing first if needed).
    /// </summary>
    [ModuleInitializer]
    internal static void ResolveCmdletsFromThePublishedModule()
    {
        AssemblyLoadContext.Default.Resolving += (context, name) =>
            name.Name == "Bcmr.Cmdlets" ? context.LoadFromAssemblyPath(Path.Combine(Directory, "Bcmr.Cmdlets.dll")) : null;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Bcmr.PowerShell.sln"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Bcmr.PowerShell.sln) above " + AppContext.BaseDirectory);
    }

    private static string Publish()
    {
        var configuration = typeof(PublishedModule).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        var output = Path.Combine(RepoRoot, "out", "Bcmr");
        // `dotnet test` tells its children which dotnet runs it; fall back to the one on PATH.
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            WorkingDirectory = RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "publish", "src/Bcmr.Cmdlets", "-c", configuration, "-o", output, "-nologo", "-v", "quiet" }) psi.ArgumentList.Add(a);
        // Not the test host's MSBuild node settings: a nested build must not try to reuse the outer one's nodes.
        psi.Environment["MSBUILDNOINPROCNODE"] = "";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(8)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet publish src/Bcmr.Cmdlets did not finish in 8 minutes");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"dotnet publish src/Bcmr.Cmdlets failed ({p.ExitCode}):\n{stdout.Result}\n{stderr.Result}");
        return output;
    }
}
