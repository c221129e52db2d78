// Cmdlets arrive with the PowerShell module issue; this project exists so the module builds
// against PowerShellStandard.Library from the start.
namespace Bcmr.Cmdlets;

internal static class ModuleInfo
{
    internal const string Name = "Bcmr";
}
