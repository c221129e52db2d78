namespace Bcmr.Cmdlets.Internal;

/// <summary>The configuration order of every setting, as in <c>bcmr</c>: the parameter, then its <c>BCMR_*</c>
/// variable, then the engine's default. The environment is read here, at the edge, so the engine uses exactly what it
/// is given.</summary>
internal static class Settings
{
    /// <summary>The parameter when it says something, else the variable when set, else null (the engine's default).</summary>
    public static string? FlagOrEnvironment(string? parameter, string variable) =>
        !string.IsNullOrWhiteSpace(parameter) ? parameter
        : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : null;

    /// <summary>A whole number of seconds from the variable, else 0; a value that is not one is an error that names it.</summary>
    public static int SecondsFromEnvironment(string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value)) return 0;
        return int.TryParse(value, out var seconds) && seconds >= 0 ? seconds
            : throw new Bcmr.Engine.BcmrException(Bcmr.Engine.BcmrErrorCode.InvalidArgument, null, $"${{env:{variable}}} = '{value}': not a number of seconds");
    }
}
