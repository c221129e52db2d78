namespace Bcmr.Cli;

/// <summary>The configuration order of every setting (README): the flag, then its <c>BCMR_*</c> variable, then the
/// engine's default. The environment is read here, at the edge, so the engine uses exactly what it is given.</summary>
internal static class Settings
{
    /// <summary>The flag when it says something, else the variable when set, else null (the engine's default).</summary>
    public static string? FlagOrEnvironment(string? flag, string variable) =>
        !string.IsNullOrWhiteSpace(flag) ? flag
        : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : null;
}
