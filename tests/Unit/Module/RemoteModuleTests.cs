using System.Management.Automation;
using System.Security.Cryptography;
using Bcmr.Engine.Hashing;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Module;

/// <summary>Copy-BcmrItem against the loopback sshd fixture: uploads and downloads from the cmdlet, a root-jail
/// refusal as a SecurityError record, and Start-BcmrServe (in a PowerShell process on the far side) as the remote
/// command of a copy.</summary>
[Collection("Module")]
public sealed class RemoteModuleTests(SshdFixture fx) : IClassFixture<SshdFixture>, IDisposable
{
    private readonly TempDir _local = new();
    private readonly PowerShellSession _ps = new();
    private readonly string _remoteDir = Path.Combine(fx.RemoteHome is { Length: > 0 } h ? h : Path.GetTempPath(), "m-" + Guid.NewGuid().ToString("n")[..12]);

    public void Dispose()
    {
        _ps.Dispose();
        _local.Dispose();
        try { Directory.Delete(_remoteDir, recursive: true); } catch (IOException) { }
    }

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private string Remote(string path) => fx.Remote(path);

    private PsRun Copy(string script, params object[] args) =>
        _ps.Run(script + " -SshCommand $ssh -RemoteCommand $remote", args);

    private void SetRemote(string remoteCommand)
    {
        _ps.Runspace.SessionStateProxy.SetVariable("ssh", fx.SshCommand);
        _ps.Runspace.SessionStateProxy.SetVariable("remote", remoteCommand);
    }

    private void MakeTree()
    {
        _local.WriteRandom("src/a.txt", 1000, 1);
        _local.WriteRandom("src/big.bin", 9 * 1024 * 1024 + 3, 2);
        _local.WriteRandom("src/sub/c.log", 4321, 3);
        _local.WriteFile("src/sub/empty.txt", []);
    }

    private static void AssertSameTree(string from, string to)
    {
        var want = Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(from, f)).Order().ToList();
        var got = Directory.EnumerateFiles(to, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(to, f)).Order().ToList();
        Assert.Equal(want, got);
        foreach (var rel in want) Assert.True(Sha(Path.Combine(from, rel)) == Sha(Path.Combine(to, rel)), $"{rel} differs");
    }

    [SshFact]
    public void Upload_of_piped_items_and_download_with_a_remote_wildcard()
    {
        SetRemote(fx.RemoteBcmr);
        MakeTree();
        Directory.CreateDirectory(_remoteDir);
        var up = Copy("$ExecutionContext.InvokeProvider.ChildItem.Get($args[0], $false) | Copy-BcmrItem -Destination $args[1] -Recurse -PassThru -Summary",
            _local["src"], Remote(_remoteDir));
        Assert.True(up.Errors.Count == 0 && up.Terminating is null, up.ToString());
        AssertSameTree(_local["src"], _remoteDir);
        var results = up.Output.Where(o => o.TypeNames[0] == "Bcmr.CopyResult").ToList();
        Assert.Equal(4, results.Count);
        var upSummary = up.Output.Last();
        Assert.Equal("ssh", (string)upSummary.Properties["Transport"].Value);
        Assert.True((long)upSummary.Properties["WireBytes"].Value > 0);
        foreach (dynamic r in results)
        {
            Assert.Equal("ssh", (string)r.Transport);
            if (r.Blake3 is string hex) Assert.Equal(Blake3.ToHex(Blake3.Hash(File.ReadAllBytes((string)r.Source))), hex);
        }

        // Down again, through a wildcard the remote side expands.
        var back = _local["back"];
        Directory.CreateDirectory(back);
        var down = Copy("Copy-BcmrItem $args[0] $args[1] -PassThru -Summary", Remote(_remoteDir + "/*.bin"), back);
        Assert.True(down.Errors.Count == 0 && down.Terminating is null, down.ToString());
        Assert.Equal(["big.bin"], Directory.GetFiles(back).Select(Path.GetFileName));
        Assert.Equal(Sha(_local["src/big.bin"]), Sha(Path.Combine(back, "big.bin")));
        Assert.Equal(1, (int)down.Output.Last().Properties["Files"].Value);
    }

    [SshFact]
    public void Parallel_spreads_piped_items_over_connections_and_passes_results_through_in_pipeline_order()
    {
        SetRemote(fx.RemoteBcmr);
        MakeTree();
        for (int i = 0; i < 12; i++) _local.WriteRandom($"src/n{i:D2}.dat", 50_000 + 1000 * i, 10 + i);
        Directory.CreateDirectory(_remoteDir);
        var up = Copy("$ExecutionContext.InvokeProvider.ChildItem.Get($args[0], $false) | Copy-BcmrItem -Destination $args[1] -Recurse -Parallel 3 -PassThru",
            _local["src"], Remote(_remoteDir));
        Assert.True(up.Errors.Count == 0 && up.Terminating is null, up.ToString());
        AssertSameTree(_local["src"], _remoteDir);
        // The plan's order (the pipeline's, each folder's files in name order), whichever connection finished first.
        var sources = up.Output.Select(o => (string)o.Properties["Source"].Value).ToList();
        var piped = _ps.Run("($ExecutionContext.InvokeProvider.ChildItem.Get($args[0], $false)).FullName", _local["src"]).Output.Select(o => o.ToString());
        var expected = piped.SelectMany(p => Directory.Exists(p)
            ? Directory.GetFiles(p).Order(StringComparer.Ordinal) : (IEnumerable<string>)[p]).ToList();
        Assert.Equal(16, expected.Count);
        Assert.Equal(expected, sources);

        var bad = _ps.Run("try { Copy-BcmrItem $args[0] $args[1] -Parallel 0 } catch { $_ }", _local["src/a.txt"], Remote(_remoteDir));
        Assert.Contains("Parallel", bad.Output.Single().ToString());
    }

    [SshFact]
    public void A_path_outside_the_server_root_is_a_SecurityError_record_and_the_other_files_still_copy()
    {
        SetRemote(fx.RemoteBcmrJailed);
        var outside = Path.Combine(fx.Dir, "outside-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(outside);
        Directory.CreateDirectory(_remoteDir);
        File.WriteAllText(Path.Combine(outside, "secret"), "secret");
        File.WriteAllText(Path.Combine(_remoteDir, "fine.txt"), "fine");
        var escape = Path.GetRelativePath(fx.RemoteHome, Path.Combine(outside, "secret"));
        Assert.StartsWith("..", escape);

        var dst = _local["dst"];
        Directory.CreateDirectory(dst);
        var r = Copy("Copy-BcmrItem $args[0], $args[1] $args[2] -NoFallback", Remote(escape), Remote(_remoteDir + "/fine.txt"), dst);
        Assert.Null(r.Terminating);
        var e = Assert.Single(r.Errors);
        Assert.Equal(ErrorCategory.SecurityError, e.CategoryInfo.Category);
        Assert.Equal("BcmrOutsideRoot,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        Assert.Contains("outside the server root", e.Exception.Message);
        Assert.Equal(["fine.txt"], Directory.GetFiles(dst).Select(Path.GetFileName));
        Assert.Equal(["secret"], Directory.GetFileSystemEntries(outside).Select(Path.GetFileName));
    }

    [SshFact]
    public void The_scp_fallback_is_a_warning_record()
    {
        SetRemote("/nonexistent/bcmr");
        _local.WriteRandom("f.bin", 100_000, 9);
        Directory.CreateDirectory(_remoteDir);
        var r = Copy("Copy-BcmrItem $args[0] $args[1] -Summary", _local["f.bin"], Remote(_remoteDir + "/"));
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        var warning = Assert.Single(r.Warnings);
        Assert.Contains("falling back to scp", warning);
        Assert.DoesNotContain("bcmr: ", warning[..6]);
        Assert.Equal("scp", (string)r.Output.Last().Properties["Transport"].Value);
        Assert.Equal(Sha(_local["f.bin"]), Sha(Path.Combine(_remoteDir, "f.bin")));
    }

    [SshFact]
    public void Cannot_connect_is_a_terminating_ConnectionError()
    {
        SetRemote(fx.RemoteBcmr);
        _local.WriteFile("a.txt", [1]);
        var r = _ps.Run("try { Copy-BcmrItem $args[0] $args[1] -SshCommand $args[2] -NoFallback; 'no terminating error' } catch { $_ }",
            _local["a.txt"], Remote("/x"), fx.SshCommand + " -o Port=1"); // the fixture's host, on a closed loopback port
        var e = r.Objects<ErrorRecord>().SingleOrDefault();
        Assert.True(e is not null, r.ToString());
        Assert.Equal(ErrorCategory.ConnectionError, e!.CategoryInfo.Category);
    }

    [SshFact]
    public void Start_BcmrServe_in_a_PowerShell_process_serves_a_copy_as_the_remote_command()
    {
        // What `ssh host pwsh -NoProfile -NonInteractive -Command Start-BcmrServe` does on a host with the module and
        // no bcmr: here the remote PowerShell is bcmr-pwsh-host over the published module.
        var wrapper = Path.Combine(fx.Dir, "remote-pwsh-" + Guid.NewGuid().ToString("n")[..8]);
        var dotnetRoot = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        File.WriteAllText(wrapper, "#!/bin/sh\n" +
            $"export HOME='{fx.RemoteHome}' XDG_DATA_HOME='{fx.RemoteHome}/.local/share' DOTNET_CLI_TELEMETRY_OPTOUT=1\n" +
            (dotnetRoot is null ? "" : $"export DOTNET_ROOT='{dotnetRoot}'\n") +
            $"exec '{PwshHostProcess.Executable}' -c \"Import-Module '{PublishedModule.Manifest}'; $*\"\n");
        File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ED);
        SetRemote(wrapper + " Start-BcmrServe");
        MakeTree();
        Directory.CreateDirectory(_remoteDir);

        var up = Copy("Copy-BcmrItem $args[0] $args[1] -Recurse -NoFallback", _local["src"], Remote(_remoteDir));
        Assert.True(up.Errors.Count == 0 && up.Terminating is null, up.ToString());
        AssertSameTree(_local["src"], Path.Combine(_remoteDir, "src"));

        var back = _local["back"];
        var down = Copy("Copy-BcmrItem $args[0] $args[1] -Recurse -NoFallback -Verify -Summary", Remote(_remoteDir + "/src"), back);
        Assert.True(down.Errors.Count == 0 && down.Terminating is null, down.ToString());
        AssertSameTree(_local["src"], back);
        Assert.Equal(4, (int)down.Output.Last().Properties["Files"].Value);
    }
}
