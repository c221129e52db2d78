namespace Bcmr.Cli;

/// <summary>The configuration order of every setting (README): the flag, then its <c>BCMR_*</c> variable, then the
/// engine's default. The environment is read here, at the edge, so the engine uses exactly what it is given.</summary>
internal static class Settings
{
    /// <summary>The flag when it says something, else the variable when set, else null (the engine's default).</summary>
    public static string? FlagOrEnvironment(string? flag, string variable) =>
        !string.IsNullOrWhiteSpace(flag) ? flag
        : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : null;

    /// <summary>A whole number of seconds from the flag, else the variable, else 0; a variable that is not one is a
    /// usage error that names it.</summary>
    public static int SecondsFlagOrEnvironment(int? flag, string variable)
    {
        if (flag is { } given) return given;
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value)) return 0;
        return int.TryParse(value, out var seconds) && seconds >= 0 ? seconds
            : throw new Bcmr.Engine.BcmrException(Bcmr.Engine.BcmrErrorCode.InvalidArgument, null, $"{variable}={value}: not a number of seconds");
    }
}
