using System.Management.Automation;

namespace Bcmr.Cmdlets;

/// <summary>
/// Runs when the module is imported. A module installed from a gallery package (Install-PSResource, Save-PSResource)
/// arrives from a zip, which keeps no Unix permissions, so the bcmr program beside the cmdlets has lost its execute
/// bit; it gets it back here wherever the account may change the file (a read-only install stays as it is, and
/// running bcmr from there then needs `chmod +x`).
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    public void OnImport()
    {
        if (OperatingSystem.IsWindows()) return;
        var folder = Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location);
        if (string.IsNullOrEmpty(folder)) return;
        var bcmr = Path.Combine(folder, "bcmr");
        try
        {
            if (!File.Exists(bcmr)) return;
            var mode = File.GetUnixFileMode(bcmr);
            const UnixFileMode execute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            if ((mode & UnixFileMode.UserExecute) == 0) File.SetUnixFileMode(bcmr, mode | execute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
