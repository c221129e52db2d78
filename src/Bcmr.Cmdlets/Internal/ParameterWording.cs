namespace Bcmr.Cmdlets.Internal;

/// <summary>
/// The engine words its hints for the command line ("use -f to overwrite"); a PowerShell user has parameters, not
/// flags. Every message the cmdlets pass on (error records, warnings, result messages) goes through
/// <see cref="ForCmdlet"/>, so the hints name Copy-BcmrItem's parameters. One table: a new engine hint that names a
/// flag gets its line here (the Pester acceptance tests check that messages name -Recurse and -NoClobber).
/// </summary>
internal static class ParameterWording
{
    internal static readonly (string Cli, string Cmdlet)[] Hints =
    [
        ("(use -f to overwrite)", "(kept because of -NoClobber)"),
        ("(use -r to copy directories)", "(use -Recurse to copy directories)"),
        ("(use -r)", "(use -Recurse)"),
        ("(rerun with -C to continue)", "(rerun with -Resume to continue)"),
        ("rerun without -C to copy it whole", "rerun without -Resume to copy it whole"),
        ("-a takes it as complete", "-Append takes it as complete"),
        ("(--no-fallback: not falling back to scp)", "(-NoFallback: not falling back to scp)"),
        ("(use --no-fallback, or install bcmr on the remote host)", "(use -NoFallback, or install bcmr on the remote host)"),
        ("from --ssh/BCMR_SSH", "from -SshCommand/BCMR_SSH"),
        ("(set --remote-bcmr or BCMR_REMOTE", "(set -RemoteCommand or BCMR_REMOTE"),
        ("--ssh: empty command", "-SshCommand: empty command"),
        ("--remote-bcmr: empty command", "-RemoteCommand: empty command"),
        ("--jobs must be at least 1", "-Jobs must be at least 1"),
        ("--parallel must be at least 1", "-Parallel must be at least 1"),
        ("--ssh-persist must be", "-SshPersist must be"),
        ("--bwlimit: ", "-BandwidthLimit: "),
        ("while waiting for the server (--timeout)", "while waiting for the server (-TimeoutSec)"),
        ("--max-delete ", "-MaxDelete "),
        ("(use --delete)", "(use -Delete or -Mirror)"),
        ("run without --delete and --backup-dir", "run without -Delete, -Mirror and -BackupDirectory"),
        ("(add --checksum to compare contents)", "(add -Checksum to compare contents)"),
    ];

    public static string ForCmdlet(string message)
    {
        foreach (var (cli, cmdlet) in Hints)
            if (message.Contains(cli, StringComparison.Ordinal)) message = message.Replace(cli, cmdlet, StringComparison.Ordinal);
        return message;
    }
}
