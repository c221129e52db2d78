using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Bcmr.Engine.Client;

namespace Bcmr.Tests.Infrastructure;

/// <summary>Real <c>bcmr serve</c> processes on this machine, without ssh: a child on stdin/stdout
/// (<see cref="ProcessChannel"/>) or a <c>--listen</c> server on a loopback port (<see cref="TcpChannel"/>), with HOME
/// and the data directory private to the test.</summary>
public static class LocalServe
{
    public static Dictionary<string, string> Env(string home) => new()
    {
        ["HOME"] = home, ["XDG_DATA_HOME"] = Path.Combine(home, ".local", "share"), ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
    };

    /// <summary><c>bcmr serve --root ROOT</c> as a child process speaking on its stdin/stdout.</summary>
    public static ProcessChannel Child(string root, string home, string remote = "local-serve") =>
        ProcessChannel.Start([BcmrRunner.Executable, "serve", "--root", root], remote, Env(home));

    /// <summary>A <c>bcmr serve --listen 127.0.0.1:0 --root ROOT</c>; its bound port read from its first stderr line.</summary>
    public sealed class Listener : IDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _stderr;

        public Listener(string root, string home)
        {
            var psi = BcmrRunner.StartInfo(["serve", "--root", root, "--listen", "127.0.0.1:0"], Env(home));
            _process = Process.Start(psi)!;
            _process.StandardInput.Close();
            _ = _process.StandardOutput.ReadToEndAsync();
            var line = _process.StandardError.ReadLine() ?? "";
            var m = Regex.Match(line, @"^bcmr serve: listening on 127\.0\.0\.1:(\d+) ");
            if (!m.Success)
            {
                _process.Kill();
                throw new InvalidOperationException("bcmr serve --listen did not start: " + line + _process.StandardError.ReadToEnd());
            }
            Endpoint = new IPEndPoint(IPAddress.Loopback, int.Parse(m.Groups[1].Value));
            _stderr = _process.StandardError.ReadToEndAsync();
        }

        public IPEndPoint Endpoint { get; }

        public Process Process => _process;

        /// <summary>Everything it logged after the listening line, once it has ended.</summary>
        public string Log => _stderr.Result;

        private bool _disposed;

        /// <summary>SIGTERM, as a user stops it; more than once is harmless.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (!_process.HasExited)
            {
                Tool.Output("kill", "-TERM", _process.Id.ToString());
                if (!_process.WaitForExit(TimeSpan.FromSeconds(10))) _process.Kill();
            }
            _process.WaitForExit();
            _process.Dispose();
        }
    }

    /// <summary>Whether a process id names a live process (not gone, not a zombie waiting to be reaped).</summary>
    public static bool Running(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        var state = stat[(stat.LastIndexOf(')') + 2)..].TrimStart()[0];
        return state is not ('Z' or 'X');
    }
}
