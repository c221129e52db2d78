namespace Bcmr.Engine.Platform;

/// <summary>Where bcmr keeps per-user state (sessions, the content store): <c>$XDG_DATA_HOME/bcmr</c> or
/// <c>~/.local/share/bcmr</c> on Linux and macOS, <c>%LOCALAPPDATA%\bcmr</c> on Windows; bcmr 0.6 uses the same places.
/// The variables come from the caller (<see cref="EngineSettings.FromEnvironment"/>).</summary>
public static class DataDirectory
{
    public static string Resolve(Func<string, string?> getenv)
    {
        if (OperatingSystem.IsWindows())
            return Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "bcmr");
        // The XDG spec ignores relative values.
        var xdg = getenv("XDG_DATA_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)) return Path.Join(xdg, "bcmr");
        var home = getenv("HOME");
        if (string.IsNullOrEmpty(home)) home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Join(home, ".local", "share", "bcmr");
    }
}
