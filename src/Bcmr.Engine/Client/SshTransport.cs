using Bcmr.Engine.Platform;
using System.Diagnostics;

namespace Bcmr.Engine.Client;

/// <summary>
/// The ssh child process that carries one serve session: <c>ssh [user's options] -o BatchMode=yes ... -- TARGET bcmr serve</c>.
/// Its stdin/stdout are the protocol streams; its stderr is kept (the last lines) to explain a failure. The user's ssh
/// configuration, keys and agent apply as for any ssh call; our options come after theirs, and since ssh takes the
/// first value it sees for an option, a user who passes <c>-o BatchMode=no</c> in <c>--ssh</c> wins.
/// </summary>
public sealed class SshTransport : IDisposable
{
    /// <summary>What is always added: no prompts (a copy must never hang on a password question), a bounded connect,
    /// keepalives (a peer that stops answering for a minute is a dead connection, not a slow one), and none of the forwardings or local commands a user's config might turn on (scp disables the same).</summary>
    private static readonly string[] FixedOptions =
    [
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-x", "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes",
        "-o", "PermitLocalCommand=no", "-o", "RequestTTY=no", "-o", "RemoteCommand=none",
    ];

    private readonly Process _process;
    private readonly Queue<string> _stderr = new();
    private readonly object _lock = new();

    private SshTransport(Process process, string description)
    {
        _process = process;
        Description = description;
    }

    /// <summary>The command line, for messages.</summary>
    public string Description { get; }

    /// <summary>The command the remote shell was asked to run.</summary>
    public string RemoteCommand { get; private init; } = "";

    /// <summary>Bytes to the server (ssh's stdin).</summary>
    public Stream ToServer => _process.StandardInput.BaseStream;

    /// <summary>Bytes from the server (ssh's stdout).</summary>
    public Stream FromServer => _process.StandardOutput.BaseStream;

    /// <summary>The ssh argv for <paramref name="spec"/>: the ssh program and the user's options, our fixed options,
    /// "--", the target, and the remote command as one string for the remote shell.</summary>
    public static List<string> BuildArguments(RemoteSpec spec, string? sshCommand, string? remoteCommand)
    {
        var ssh = ShellWords.Split(SshCommandOrDefault(sshCommand));
        if (ssh.Count == 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--ssh: empty command");
        var args = new List<string>(ssh);
        args.AddRange(FixedOptions);
        args.Add("--");
        args.Add(spec.Target);
        args.Add(RemoteServeCommand(remoteCommand));
        return args;
    }

    public static string SshCommandOrDefault(string? sshCommand) =>
        !string.IsNullOrWhiteSpace(sshCommand) ? sshCommand
        : Environment.GetEnvironmentVariable("BCMR_SSH") is { Length: > 0 } env ? env : "ssh";

    /// <summary>The command the remote shell runs. <c>--remote-bcmr</c> / <c>BCMR_REMOTE</c> is either one program
    /// (a path to bcmr: "serve" is appended) or a whole command line of several words, used as it is (e.g.
    /// <c>pwsh -NoProfile -NonInteractive -Command Start-BcmrServe</c>). Each word is quoted for the remote shell.</summary>
    public static string RemoteServeCommand(string? remoteCommand)
    {
        var text = !string.IsNullOrWhiteSpace(remoteCommand) ? remoteCommand
            : Environment.GetEnvironmentVariable("BCMR_REMOTE") is { Length: > 0 } env ? env : "bcmr";
        var words = ShellWords.Split(text);
        if (words.Count == 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--remote-bcmr: empty command");
        if (words.Count == 1) words.Add("serve");
        return string.Join(' ', words.Select(ShellWords.Quote));
    }

    public static SshTransport Start(RemoteSpec spec, string? sshCommand, string? remoteCommand, string? workingDirectory = null)
    {
        var argv = BuildArguments(spec, sshCommand, remoteCommand);
        var psi = new ProcessStartInfo(argv[0])
        {
            WorkingDirectory = workingDirectory ?? "",
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        for (int i = 1; i < argv.Count; i++) psi.ArgumentList.Add(argv[i]);
        var description = string.Join(' ', argv.Select(ShellWords.Quote));
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new BcmrException(BcmrErrorCode.ConnectionFailed, spec.ToString(), $"{spec}: cannot start '{argv[0]}': {e.Message}");
        }
        Fs.GrowPipe(process.StandardInput.BaseStream);
        Fs.GrowPipe(process.StandardOutput.BaseStream);
        var transport = new SshTransport(process, description) { RemoteCommand = argv[^1] };
        process.ErrorDataReceived += (_, e) => transport.OnStderr(e.Data);
        process.BeginErrorReadLine();
        return transport;
    }

    private void OnStderr(string? line)
    {
        if (line is null) return;
        lock (_lock)
        {
            _stderr.Enqueue(line);
            while (_stderr.Count > 20) _stderr.Dequeue();
        }
    }

    /// <summary>The last lines ssh or the remote command wrote to stderr, joined for a message.</summary>
    public string StderrTail
    {
        get
        {
            lock (_lock) return string.Join(" | ", _stderr.Where(l => l.Trim().Length > 0));
        }
    }

    /// <summary>The exit code once the process has ended within <paramref name="wait"/>; null if it is still running.</summary>
    public int? WaitForExit(TimeSpan wait)
    {
        try
        {
            if (!_process.WaitForExit(wait)) return null;
            _process.WaitForExit(); // drains stderr
            return _process.ExitCode;
        }
        catch (InvalidOperationException) { return null; }
    }

    public void Kill()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
    }

    /// <summary>Closes our side of the pipes and waits briefly for ssh to finish; kills it if it does not.</summary>
    public void Dispose()
    {
        try { _process.StandardInput.Close(); } catch (Exception) { }
        if (WaitForExit(TimeSpan.FromSeconds(5)) is null) Kill();
        try { _process.StandardOutput.Close(); } catch (Exception) { }
        _process.Dispose();
    }
}
