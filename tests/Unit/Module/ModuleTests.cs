using System.Management.Automation;
using System.Text.RegularExpressions;

namespace Bcmr.Tests.Module;

/// <summary>The published module's layout, manifest, exported commands and help, as PowerShell loads them.</summary>
[Collection("Module")]
public class ModuleTests
{
    [Fact]
    public void Published_folder_holds_the_whole_module_and_no_PowerShell_assembly()
    {
        var dir = PublishedModule.Directory;
        foreach (var f in new[] { "Bcmr.psd1", "Bcmr.format.ps1xml", "Bcmr.Cmdlets.dll", "Bcmr.Engine.dll", "en-US/Bcmr.Cmdlets.dll-Help.xml", "bcmr", "bcmr.dll" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing from {dir}");
        var shipped = Directory.EnumerateFiles(dir, "*.dll", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        // What PowerShell itself ships (and would conflict with the host's own copies).
        var forbidden = shipped.Where(n => n!.StartsWith("System.Management.Automation", StringComparison.OrdinalIgnoreCase)
            || n.StartsWith("Microsoft.PowerShell.", StringComparison.OrdinalIgnoreCase)
            || n.StartsWith("Microsoft.Management.Infrastructure", StringComparison.OrdinalIgnoreCase)
            || n.Equals("PowerShellStandard.Library.dll", StringComparison.OrdinalIgnoreCase)
            || n.Equals("Newtonsoft.Json.dll", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.True(forbidden.Count == 0, "ships PowerShell's own assemblies: " + string.Join(", ", forbidden));
        if (!OperatingSystem.IsWindows())
            Assert.True((File.GetUnixFileMode(Path.Combine(dir, "bcmr")) & UnixFileMode.UserExecute) != 0, "bcmr is not executable");
    }

    [Fact]
    public void The_bcmr_program_in_the_module_runs()
    {
        var (code, stdout) = Infrastructure.Tool.Run(Path.Combine(PublishedModule.Directory, "bcmr"), "--version");
        Assert.Equal(0, code);
        Assert.Matches(@"\d+\.\d+\.\d+", stdout);
    }

    [Fact]
    public void Manifest_is_valid_and_exports_exactly_the_cmdlets()
    {
        using var ps = new PowerShellSession(import: false);
        var r = ps.Run("Test-ModuleManifest -Path $args[0] -ErrorAction Stop", PublishedModule.Manifest);
        Assert.True(r.Terminating is null && r.Errors.Count == 0, r.ToString());
        dynamic m = Assert.Single(r.Output);
        Assert.Equal("Bcmr.Cmdlets.dll", (string)m.RootModule);
        Assert.Equal(new Version(7, 4), (Version)m.PowerShellVersion);
        Assert.Equal(["Core"], ((IEnumerable<string>)m.CompatiblePSEditions).ToArray());
        Assert.NotEqual(Guid.Empty, (Guid)m.Guid);
        Assert.Equal(PublishedModule.Cmdlets, ((System.Collections.IDictionary)m.ExportedCmdlets).Keys.Cast<string>().Order());
        Assert.Contains("blake3", (IEnumerable<string>)m.Tags);
        // No placeholder links: the project has no public home yet, and the LICENSE file ships in the module.
        Assert.Null(m.ProjectUri);
        Assert.Null(m.LicenseUri);
        Assert.Contains((string)m.Version.ToString(), (string)m.ReleaseNotes);
        Assert.True(File.Exists(Path.Combine(PublishedModule.Directory, "LICENSE")));
    }

    [Fact]
    public void Get_Command_lists_exactly_the_exported_cmdlets()
    {
        using var ps = new PowerShellSession();
        var r = ps.Run("Get-Command -Module Bcmr");
        Assert.Equal(PublishedModule.Cmdlets, r.Output.Select(o => ((CommandInfo)o.BaseObject).Name).Order());
        Assert.All(r.Output, o => Assert.Equal(CommandTypes.Cmdlet, ((CommandInfo)o.BaseObject).CommandType));
        // The assembly PowerShell loaded is the published one.
        var dll = ps.Run("(Get-Command Copy-BcmrItem).DLL").Output.Single().ToString();
        Assert.Equal(Path.Combine(PublishedModule.Directory, "Bcmr.Cmdlets.dll"), dll);
    }

    [Fact]
    public void Every_cmdlet_declares_its_output_type_and_Copy_BcmrItem_binds_as_documented()
    {
        using var ps = new PowerShellSession();
        var r = ps.Run("foreach ($c in 'Copy-BcmrItem', 'Get-BcmrSession', 'Remove-BcmrSession', 'Start-BcmrServe', 'Clear-BcmrCas', 'Sync-BcmrItem') { (Get-Command $c).OutputType.Name }");
        Assert.Equal(["Bcmr.CopyResult", "Bcmr.TransferSummary", "Bcmr.SessionInfo", "Bcmr.StaleTemporary", "Bcmr.SessionInfo", "Bcmr.ServeEndpoint", "Bcmr.CasClearResult", "Bcmr.SyncAction", "Bcmr.SyncSummary"], r.Output.Select(o => o.ToString()));
        var meta = (CommandInfo)ps.Run("Get-Command Copy-BcmrItem").Output.Single().BaseObject;
        var path = meta.Parameters["Path"];
        var pathAttr = path.Attributes.OfType<ParameterAttribute>().Single();
        Assert.True(pathAttr.ValueFromPipeline && pathAttr.ValueFromPipelineByPropertyName && pathAttr.Position == 0 && pathAttr.ParameterSetName == "Path");
        var literal = meta.Parameters["LiteralPath"];
        Assert.Contains("PSPath", literal.Aliases);
        Assert.Contains("LP", literal.Aliases);
        Assert.Contains("FullName", literal.Aliases);
        var literalAttr = literal.Attributes.OfType<ParameterAttribute>().Single();
        Assert.True(literalAttr.ValueFromPipelineByPropertyName && !literalAttr.ValueFromPipeline);
        Assert.Equal(1, meta.Parameters["Destination"].Attributes.OfType<ParameterAttribute>().Single().Position);
        foreach (var p in new[] { "Recurse", "Force", "Exclude", "Resume", "Strict", "Append", "Verify", "Sync", "Jobs", "Fast", "SshCommand", "RemoteCommand", "NoFallback", "Compress", "BandwidthLimit", "PassThru", "Summary", "NoClobber", "SkipUnchanged", "WhatIf", "Confirm" })
            Assert.True(meta.Parameters.ContainsKey(p), $"no -{p}");
    }

    [Fact]
    public void Get_Help_Examples_shows_the_examples_from_docs_help()
    {
        using var ps = new PowerShellSession();
        foreach (var cmdlet in PublishedModule.Cmdlets)
        {
            var page = File.ReadAllText(Path.Combine(PublishedModule.RepoRoot, "docs", "help", cmdlet + ".md"));
            var expected = Regex.Matches(page, "```powershell\n(.*?)\n```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).ToList();
            Assert.True(expected.Count >= 2, $"{cmdlet}.md has fewer than two examples");
            var r = ps.Run("(Get-Help $args[0] -Examples).examples.example | ForEach-Object { $_.code }", cmdlet);
            Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
            Assert.Equal(expected, r.Output.Select(o => o.ToString()));
        }
        // (No Out-String in the hosted engine: the help object's parts are checked instead.)
        var title = ps.Run("(Get-Help Copy-BcmrItem -Examples).examples.example[0].title").Output.Single().ToString();
        Assert.Contains("Example 1: Copy the output of Get-ChildItem to a directory", title);
        var remarks = ps.Run("(Get-Help Copy-BcmrItem -Examples).examples.example[0].remarks.Text").Output.Single().ToString();
        Assert.StartsWith("Copies every item of ./out into /data/build as one batch", remarks);
        var synopsis = ps.Run("(Get-Help Start-BcmrServe).Synopsis").Output.Single().ToString();
        Assert.Equal("Runs the remote end of a bcmr transfer, on stdin/stdout or on a TCP port.", synopsis);
        var param = ps.Run("(Get-Help Copy-BcmrItem -Parameter LiteralPath).description.Text").Output.Single().ToString();
        Assert.StartsWith("The items to copy, taken exactly as written", param);
    }
}
