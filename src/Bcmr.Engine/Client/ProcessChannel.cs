using System.Diagnostics;
using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Client;

/// <summary>
/// A child process that speaks the protocol on its stdin/stdout: a local <c>bcmr serve</c> (no ssh in between: tests,
/// a server on this machine) or, through <see cref="SshChannel"/>, ssh running one on another host. Its stderr is kept
/// (the last lines) to explain a failure; it is never mixed into the protocol.
/// </summary>
public class ProcessChannel : IServeChannel
{
    private readonly Process _process;
    private readonly Queue<string> _stderr = new();
    private readonly object _lock = new();
    private int _disposed;

    protected ProcessChannel(Process process, string remote, string command)
    {
        _process = process;
        Remote = remote;
        Command = command;
        ProcessId = process.Id;
        Fs.GrowPipe(process.StandardInput.BaseStream);
        Fs.GrowPipe(process.StandardOutput.BaseStream);
        process.ErrorDataReceived += (_, e) => OnStderr(e.Data);
        process.BeginErrorReadLine();
    }

    public string Remote { get; }

    public virtual string Transport => "process";

    /// <summary>The command line, quoted, for messages.</summary>
    public string Command { get; }

    /// <summary>The child's process id.</summary>
    public int ProcessId { get; }

    public Stream ToServer => _process.StandardInput.BaseStream;

    public Stream FromServer => _process.StandardOutput.BaseStream;

    /// <summary>Starts <paramref name="argv"/> (program first, no shell) with its stdin/stdout as the protocol
    /// streams. <paramref name="environment"/> is added to this process's; <paramref name="remote"/> names the server
    /// in messages. Throws <see cref="BcmrException"/> (ConnectionFailed) when the program cannot be started.</summary>
    public static ProcessChannel Start(IReadOnlyList<string> argv, string remote,
        IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var process = Launch(argv, remote, environment, workingDirectory);
        return new ProcessChannel(process, remote, QuoteAll(argv));
    }

    /// <summary>A local server: <paramref name="command"/> is a bcmr program (its <c>serve</c> is run) or a whole
    /// server command line, as for <c>--remote-bcmr</c>.</summary>
    public static ProcessChannel StartServe(string command, string remote,
        IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null) =>
        Start(SshChannel.ServeWords(command), remote, environment, workingDirectory);

    protected static string QuoteAll(IEnumerable<string> argv) => string.Join(' ', argv.Select(ShellWords.Quote));

    protected static Process Launch(IReadOnlyList<string> argv, string remote, IReadOnlyDictionary<string, string>? environment, string? workingDirectory)
    {
        if (argv.Count == 0) throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"{remote}: empty server command");
        var psi = new ProcessStartInfo(argv[0])
        {
            WorkingDirectory = workingDirectory ?? "",
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        for (int i = 1; i < argv.Count; i++) psi.ArgumentList.Add(argv[i]);
        if (environment is not null) foreach (var (k, v) in environment) psi.Environment[k] = v;
        try
        {
            return Process.Start(psi) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new BcmrException(BcmrErrorCode.ConnectionFailed, remote, $"{remote}: cannot start '{argv[0]}': {e.Message}");
        }
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

    /// <summary>The last lines the process wrote to stderr, joined for a message.</summary>
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

    public PeerEnd WaitForPeer(TimeSpan wait)
    {
        int? exit = WaitForExit(wait);
        return new PeerEnd(exit, StderrTail, exit is int code ? DescribeExit(code) : null);
    }

    /// <summary>How the process ended, in words for a message.</summary>
    protected virtual string DescribeExit(int exitCode) =>
        OperatingSystem.IsWindows() || exitCode <= 128 ? $"the server process exited with {exitCode}"
        : $"the server process was killed by signal {exitCode - 128}";

    public virtual BcmrException? ExplainStartFailure(int exitCode, string detail) => null;

    public void CloseOutput()
    {
        try { _process.StandardInput.Close(); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    public void Abort()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException) { }
    }

    /// <summary>Closes our side of the pipes and gives the process a moment to finish; kills it if it does not.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        CloseOutput();
        if (WaitForExit(TimeSpan.FromSeconds(5)) is null) Abort();
        try { _process.StandardOutput.Close(); } catch (Exception) { }
        _process.WaitForExit(TimeSpan.FromSeconds(5));
        _process.Dispose();
        GC.SuppressFinalize(this);
    }
}
