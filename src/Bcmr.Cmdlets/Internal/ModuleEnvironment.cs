using Bcmr.Engine;

namespace Bcmr.Cmdlets.Internal;

/// <summary>The module's one reader of bcmr's environment variables (BCMR_SSH and BCMR_REMOTE aside, which the
/// engine's ssh transport still reads). Each cmdlet reads them when it starts its work and passes them to the engine,
/// so a <c>$env:BCMR_...</c> set in a session applies from the next command on, as it always has; the engine itself
/// reads none.</summary>
internal static class ModuleEnvironment
{
    public static EngineSettings Read()
    {
        var settings = EngineSettings.FromEnvironment(Environment.GetEnvironmentVariable);
        // The I/O path is one for the process, fixed by its first file operation: only a request made before then counts.
        settings.ApplyProcessWide();
        return settings;
    }
}
