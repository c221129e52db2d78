using Bcmr.Engine.Transfers;

namespace Bcmr.Cli;

/// <summary>The exit codes `bcmr --help` and README document. Scripts rely on them; change them never.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    /// <summary>An error stopped the operation, or nothing that was asked for could be done.</summary>
    public const int Failure = 1;
    /// <summary>The command line was wrong (unknown flag, bad value, missing destination).</summary>
    public const int Usage = 2;
    /// <summary>Some items failed; the others were done.</summary>
    public const int Partial = 3;
    /// <summary>Interrupted by Ctrl-C or SIGTERM; temp files were removed.</summary>
    public const int Interrupted = 130;

    public const string HelpText =
        "Exit codes: 0 all done; 1 error (nothing, or nothing more, could be done); 2 usage error; " +
        "3 partial failure (some items failed, the rest were done); 130 interrupted (Ctrl-C/SIGTERM; temp files removed, or with -C/-s/-a progress recorded).";

    public static int For(TransferSummary s) =>
        s.Cancelled ? Interrupted
        : s.Fatal is not null ? Failure
        : s.Failed == 0 ? Success
        : s.Files > 0 ? Partial
        : Failure;
}
