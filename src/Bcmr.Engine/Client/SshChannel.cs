using System.Diagnostics;

namespace Bcmr.Engine.Client;

/// <summary>
/// The ssh child process that carries one serve session: <c>ssh [user's options] -o BatchMode=yes ... -- TARGET bcmr serve</c>.
/// Its stdin/stdout are the protocol streams; its stderr is kept (the last lines) to explain a failure. The user's ssh
/// configuration, keys and agent apply as for any ssh call; our options come after theirs, and since ssh takes the
/// first value it sees for an option, a user who passes <c>-o BatchMode=no</c> in <c>--ssh</c> wins.
/// </summary>
public sealed class SshChannel : ProcessChannel
{
    /// <summary>What is always added: no prompts (a copy must never hang on a password question), a bounded connect,
    /// keepalives (a peer that stops answering for a minute is a dead connection, not a slow one), and none of the forwardings or local commands a user's config might turn on (scp disables the same).</summary>
    internal static readonly string[] FixedOptions =
    [
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-x", "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes",
        "-o", "PermitLocalCommand=no", "-o", "RequestTTY=no", "-o", "RemoteCommand=none",
    ];

    private static readonly string[] OwnConnectionOptions = ["-o", "ControlMaster=no", "-o", "ControlPath=none"];

    /// <summary>The ssh program when the caller names none.</summary>
    public const string DefaultSshCommand = "ssh";

    /// <summary>The remote program when the caller names none.</summary>
    public const string DefaultRemoteCommand = "bcmr";

    /// <summary>The variables the CLI and the cmdlets read when no flag names the ssh command or the remote program
    /// (flag, then variable, then default). The engine never reads them itself: what it is given is what it uses.</summary>
    public const string SshVariable = "BCMR_SSH", RemoteVariable = "BCMR_REMOTE";

    private SshChannel(Process process, string remote, string command, string remoteCommand) : base(process, remote, command)
    {
        RemoteCommand = remoteCommand;
    }

    public override string Transport => "ssh";

    /// <summary>The command the remote shell was asked to run.</summary>
    public string RemoteCommand { get; }

    /// <summary>The ssh argv for <paramref name="spec"/>: the ssh program and the user's options, our fixed options,
    /// "--", the target, and the remote command as one string for the remote shell.</summary>
    /// <para>With <paramref name="ownConnection"/> (one of several parallel connections) a ControlMaster the user's
    /// configuration names is neither used nor started: N sessions over one master would be N channels on one cipher.</para>
    /// <para>With <paramref name="sharedPath"/> (--ssh-persist) the session goes through that master's socket, or
    /// becomes the master, kept <paramref name="persistSeconds"/> after its last session.</para>
    /// <para><paramref name="cipherOptions"/>: what <see cref="SshCiphers.Options"/> chose for this connection.</para>
    public static List<string> BuildArguments(RemoteSpec spec, string? sshCommand, string? remoteCommand, bool ownConnection = false,
        string? sharedPath = null, int persistSeconds = 0, IReadOnlyList<string>? cipherOptions = null)
    {
        var ssh = ShellWords.Split(SshCommandOrDefault(sshCommand));
        if (ssh.Count == 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--ssh: empty command");
        var args = new List<string>(ssh);
        args.AddRange(FixedOptions);
        if (cipherOptions is not null) args.AddRange(cipherOptions);
        if (ownConnection) args.AddRange(OwnConnectionOptions);
        else if (sharedPath is not null) args.AddRange(SshPersist.SessionOptions(sharedPath, persistSeconds));
        args.Add("--");
        args.Add(spec.Target);
        args.Add(RemoteServeCommand(remoteCommand));
        return args;
    }

    public static string SshCommandOrDefault(string? sshCommand) =>
        !string.IsNullOrWhiteSpace(sshCommand) ? sshCommand : DefaultSshCommand;

    /// <summary>The command the remote shell runs. <c>--remote-bcmr</c> / <c>BCMR_REMOTE</c> is either one program
    /// (a path to bcmr: "serve" is appended) or a whole command line of several words, used as it is (e.g.
    /// <c>pwsh -NoProfile -NonInteractive -Command Start-BcmrServe</c>). Each word is quoted for the remote shell.</summary>
    public static string RemoteServeCommand(string? remoteCommand) =>
        string.Join(' ', ServeWords(!string.IsNullOrWhiteSpace(remoteCommand) ? remoteCommand : DefaultRemoteCommand).Select(ShellWords.Quote));

    /// <summary>The words of a server command: one program gets "serve" appended, several are used as they are.</summary>
    internal static List<string> ServeWords(string command)
    {
        var words = ShellWords.Split(command);
        if (words.Count == 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--remote-bcmr: empty command");
        if (words.Count == 1) words.Add("serve");
        return words;
    }

    /// <summary>Starts ssh for <paramref name="spec"/> (in <paramref name="workingDirectory"/>, so that relative
    /// paths in the ssh options mean the caller's). Throws <see cref="BcmrException"/> (ConnectionFailed) when ssh
    /// cannot be started.</summary>
    public static SshChannel Start(RemoteSpec spec, string? sshCommand, string? remoteCommand, string? workingDirectory = null,
        bool ownConnection = false, string? sharedPath = null, int persistSeconds = 0, IReadOnlyList<string>? cipherOptions = null)
    {
        var argv = BuildArguments(spec, sshCommand, remoteCommand, ownConnection, sharedPath, persistSeconds, cipherOptions);
        var process = Launch(argv, spec.Target, environment: null, workingDirectory);
        return new SshChannel(process, spec.Target, QuoteAll(argv), argv[^1]);
    }

    protected override string DescribeExit(int exitCode) => $"ssh exited with {exitCode}";

    /// <summary>126/127 come from the remote shell: no bcmr to run there (the caller may fall back to scp); 255 is
    /// ssh's own failure (cannot connect or authenticate).</summary>
    public override BcmrException? ExplainStartFailure(int exitCode, string detail) => exitCode switch
    {
        126 or 127 => new BcmrException(BcmrErrorCode.RemoteUnavailable, Remote,
            $"{Remote}: no bcmr to run on the remote host: '{RemoteCommand}' exited {exitCode}{detail} (set --remote-bcmr or BCMR_REMOTE if it is installed off the non-login PATH)"),
        255 => new BcmrException(BcmrErrorCode.ConnectionFailed, Remote, $"{Remote}: ssh failed{detail}"),
        _ => null,
    };
}
