using System.CommandLine;
using System.Runtime.InteropServices;
using Bcmr.Engine;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Server;

namespace Bcmr.Cli;

/// <summary>
/// <c>bcmr serve [--root DIR]</c>: the remote end of a transfer, started by bcmr over ssh. Speaks the wire protocol on
/// stdin/stdout (raw streams, nothing else is ever written to stdout); diagnostics go to stderr. Unlike bcmr 0.6 it is
/// listed in the root help: System.CommandLine prints no help at all for a hidden command, and `bcmr serve --help`
/// should say what it is.
/// Exit codes: 0 when the client ended the session (Done or end of input), 1 when it ended in a protocol error, a
/// refused handshake or a broken connection, 130 on SIGINT/SIGTERM/SIGHUP (an upload in progress is kept as its
/// partial file first).
/// <para><c>--listen ADDR:PORT</c> serves plain TCP connections instead (see <see cref="ServeListener"/>): loopback
/// only unless <c>--allow-remote-listen</c>, since the protocol has no authentication. It runs until a signal (130).</para>
/// </summary>
internal static class ServeCommand
{
    internal static Command Create(EngineSettings settings)
    {
        var root = new Option<string?>("--root")
        {
            Description = "Directory the client may read and write; every path is resolved inside it, relative paths from it. Created if missing. " +
                "Without it, a serve on stdin/stdout reaches whatever the ssh account may (as scp does), with relative paths from $HOME; " +
                "with --listen the default root is $HOME.",
        };
        var command = new Command("serve",
            "Serve the bcmr wire protocol on stdin/stdout: the remote end of a transfer, started by bcmr over ssh, not by hand. " +
            "Offers lz4 and zstd block compression and dedup uploads; dedup keeps blocks in BCMR_CAS_DIR (default $XDG_DATA_HOME/bcmr/cas), " +
            "capped at BCMR_CAS_CAP_MB MiB (default 1024, 0 = unbounded; see 'bcmr cas'). " +
            "Exit codes: 0 session ended by the client; 1 protocol error or broken connection; 130 interrupted (an upload in progress is kept for resume).");
        var listen = new Option<string?>("--listen")
        {
            Description = "Serve plain TCP connections on ADDR:PORT (e.g. 127.0.0.1:7070, [::1]:7070; port 0 picks one) instead of stdin/stdout. " +
                "No authentication: only loopback addresses unless --allow-remote-listen. The bound address is printed on stderr.",
        };
        var allowRemote = new Option<bool>("--allow-remote-listen")
        {
            Description = "Allow --listen on a non-loopback address. Anyone who can reach the port can then read and write the root.",
        };
        var resident = new Option<string?>("--resident")
        {
            Description = "Serve connections on this Unix socket instead of stdin/stdout, as a resident server: what a serve started over ssh " +
                "starts for a client run with --ssh-persist (not meant to be run by hand). Its directory must be private (mode 0700).",
        };
        var idle = new Option<int>("--idle")
        {
            Description = "With --resident: stop after SECONDS without a connection (default 60).",
            DefaultValueFactory = _ => 60,
        };
        command.Options.Add(root);
        command.Options.Add(listen);
        command.Options.Add(allowRemote);
        command.Options.Add(resident);
        command.Options.Add(idle);
        command.SetAction((parse, ct) =>
        {
            ServeHost host;
            try
            {
                host = new ServeHost
                {
                    Home = DefaultRoot(), Root = parse.GetValue(root), Log = Console.Error,
                    Compression = ServeHost.CompressionFrom(settings.Compress), Settings = settings,
                    Resident = ResidentCommand(parse.GetValue(root)),
                };
            }
            catch (BcmrException e)
            {
                Console.Error.WriteLine($"bcmr serve: {e.Message}");
                return Task.FromResult(ExitCodes.Failure);
            }
            if (parse.GetValue(resident) is { } socket) return Task.FromResult(Resident(host, socket, parse.GetValue(idle), ct));
            return Task.FromResult(parse.GetValue(listen) is { } address
                ? Listen(host, address, parse.GetValue(allowRemote), ct)
                : Run(host, ct));
        });
        return command;
    }

    /// <summary>How this serve would start a resident server with its own settings: this program, "serve", the root;
    /// and what else its sessions depend on (the program's file, the home, the data directory, every BCMR_ variable,
    /// the directory it runs in), which names the server's socket. None off Linux, or when the program's path is
    /// unknown.</summary>
    private static Func<(IReadOnlyList<string>, string)>? ResidentCommand(string? root)
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessPath is not { } program) return null;
        return () => ResidentCommand(program, root);
    }

    private static (IReadOnlyList<string>, string) ResidentCommand(string program, string? root)
    {
        var command = new List<string> { program, "serve" };
        if (root is not null) command.AddRange(["--root", Path.GetFullPath(root)]);
        var env = Environment.GetEnvironmentVariables();
        var depends = env.Keys.Cast<string>()
            .Where(k => k.StartsWith("BCMR_", StringComparison.Ordinal) || k is "HOME" or "XDG_DATA_HOME" or "TMPDIR")
            .Order(StringComparer.Ordinal)
            .Select(k => $"{k}={env[k]}");
        // The program's size and time too: a bcmr upgraded in place starts a new resident server, not the old one's.
        var built = new FileInfo(program);
        var identity = built.Exists ? $"{built.Length}:{built.LastWriteTimeUtc.Ticks}" : "";
        return (command, string.Join('\0', depends.Prepend(Environment.CurrentDirectory).Prepend(identity)));
    }

    private static int Resident(ServeHost host, string socket, int idleSeconds, CancellationToken ct)
    {
        ServeListener listener;
        try { listener = host.ListenResident(socket, TimeSpan.FromSeconds(Math.Max(1, idleSeconds))); }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists)
        {
            return ExitCodes.Success; // another one started first and serves
        }
        catch (Exception e) when (e is BcmrException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"bcmr serve: cannot serve on {socket}: {e.Message}");
            return ExitCodes.Failure;
        }
        using (listener)
        {
            Console.Error.WriteLine($"bcmr serve: resident on {socket}, until {idleSeconds} s without a connection");
            using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; listener.Stop(); });
            listener.Run(ct);
        }
        return ExitCodes.Success;
    }

    private static string DefaultRoot() =>
        Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home
            ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static int Listen(ServeHost host, string address, bool allowRemote, CancellationToken ct)
    {
        var root = host.Root ?? host.Home;
        ServeListener listener;
        try
        {
            listener = host.Listen(address, allowRemote);
        }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.InvalidArgument)
        {
            Console.Error.WriteLine($"bcmr serve: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is BcmrException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"bcmr serve: cannot serve {root}: {e.Message}");
            return ExitCodes.Failure;
        }
        using (listener)
        {
            var ep = listener.LocalEndpoint;
            Console.Error.WriteLine($"bcmr serve: listening on {(ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString())}:{ep.Port} (root {root})");
            using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; listener.Stop(); });
            listener.Run(ct);
        }
        return ExitCodes.Interrupted;
    }

    private static int Run(ServeHost host, CancellationToken ct)
    {
        ServeSession session;
        try
        {
            session = host.OpenStdio();
        }
        catch (Exception e) when (e is BcmrException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"bcmr serve: cannot serve {ServeOptions.SshScope(host.Root, host.Home).Root}: {e.Message}");
            return ExitCodes.Failure;
        }

        using var hangup = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; hangup.Cancel(); });
        var end = ServeHost.RunStdio(session, hangup.Token);
        if (end == ServeEnd.Interrupted)
        {
            // The session thread may be blocked reading stdin and cannot be woken: end the process (the upload in
            // progress was kept as its partial file by the interruption).
            Console.Error.Flush();
            Environment.Exit(ExitCodes.Interrupted);
        }
        session.Dispose();
        return end switch
        {
            ServeEnd.Done or ServeEnd.EndOfInput => ExitCodes.Success,
            _ => ExitCodes.Failure,
        };
    }
}
