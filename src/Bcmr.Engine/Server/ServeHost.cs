using Bcmr.Engine.Codecs;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Server;

/// <summary>
/// How a server process serves: <c>bcmr serve</c> and <c>Start-BcmrServe</c> both build one of these and let it decide
/// the root, the streams and descriptors, and the codecs offered, so that a copy behaves the same whichever of the two
/// the remote command starts. What stays with each caller, on purpose:
/// <list type="bullet">
/// <item>Reading the environment and resolving <see cref="Root"/>: <c>bcmr</c> against its working directory,
/// the cmdlet against PowerShell's location (which is not the process's); both then pass absolute paths.</item>
/// <item>Signals and exit: <c>bcmr serve</c> owns its process, so an interrupted stdio session ends it (exit 130) and
/// SIGHUP stops it; the cmdlet lives in a host that owns the signals (Ctrl+C arrives as StopProcessing) and must not
/// end the process, so it just returns.</item>
/// <item>Reporting: exit codes and stderr for <c>bcmr</c>; error records, and a listener's log as verbose records,
/// for the cmdlet.</item>
/// </list>
/// </summary>
public sealed record ServeHost
{
    /// <summary>The home directory: where relative paths start when there is no <see cref="Root"/>, and a listener's
    /// root by default.</summary>
    public required string Home { get; init; }

    /// <summary><c>--root</c> / <c>-Root</c>, absolute; null when not given (then see <see cref="ServeOptions.SshScope"/>).
    /// Created when missing.</summary>
    public string? Root { get; init; }

    /// <summary>The codecs this server offers (<c>BCMR_COMPRESS</c> on the server; none: it speaks raw only).</summary>
    public CompressionSetting Compression { get; init; } = CompressionSetting.Auto;

    /// <summary>Where diagnostics go, one line each; never the protocol stream.</summary>
    public TextWriter? Log { get; init; }

    /// <summary>The environment as the caller read it (the CAS directory and cap, sendfile, portable I/O).</summary>
    public EngineSettings Settings { get; init; } = EngineSettings.Defaults;

    /// <summary>The setting a <c>BCMR_COMPRESS</c> value asks for (null or empty: auto); an invalid value is an
    /// InvalidArgument error that names the variable.</summary>
    public static CompressionSetting CompressionFrom(string? variableValue) =>
        string.IsNullOrWhiteSpace(variableValue) ? CompressionSetting.Auto : Codecs.Compression.Parse(variableValue, Codecs.Compression.EnvironmentVariable);

    private byte Capabilities =>
        (byte)((ServeSession.SupportedCaps & ~(Caps.Lz4 | Caps.Zstd) | Codecs.Compression.OfferedCaps(Compression)) & (TestHooks.ServeCapabilityMask ?? 0xFF));

    /// <summary>The options of a session on this process's stdin/stdout (a serve started over ssh): the ssh scope of
    /// <see cref="ServeOptions.SshScope"/>, and on Linux descriptors 0 and 1, so that pipes are grown and FAST
    /// downloads go out with sendfile(2).</summary>
    public ServeOptions StdioOptions()
    {
        var (root, home) = SshScopeMade();
        bool fds = OperatingSystem.IsLinux();
        return new ServeOptions
        {
            Root = root, Home = home, Log = Log, Capabilities = Capabilities, Settings = Settings,
            InputFd = fds ? 0 : null, OutputFd = fds ? 1 : null,
            DirectAddress = SshServerAddress(Settings.SshConnection), DirectPeer = SshClientAddress(Settings.SshConnection),
            RendezvousTimeout = Settings.RendezvousTimeout,
            StayResident = StayResident,
            DirectRefusal = Settings.SshConnection is null
                ? "SSH_CONNECTION is not set, so this server does not know the address the ssh connection came in on (it binds only that address, never 127.0.0.1 or 0.0.0.0 in its place)"
                : $"cannot read the server address in SSH_CONNECTION '{Settings.SshConnection}'",
        };
    }

    /// <summary>What a serve that an ssh login started may reach (<see cref="ServeOptions.SshScope"/>), its --root
    /// made if missing: the same for its sessions on stdin/stdout and for the resident server it starts.</summary>
    private (string Root, string? Home) SshScopeMade()
    {
        if (Root is not null) Directory.CreateDirectory(Root);
        return ServeOptions.SshScope(Root, Home);
    }

    /// <summary>The server's own address of the ssh connection: the third field of <c>SSH_CONNECTION</c>
    /// ("client-ip client-port server-ip server-port"); null when absent or not an address.</summary>
    public static System.Net.IPAddress? SshServerAddress(string? sshConnection) => SshConnectionAddress(sshConnection, 2);

    /// <summary>The ssh client's address: the first field of <c>SSH_CONNECTION</c>; null when absent or unusable.</summary>
    public static System.Net.IPAddress? SshClientAddress(string? sshConnection) => SshConnectionAddress(sshConnection, 0);

    private static System.Net.IPAddress? SshConnectionAddress(string? sshConnection, int field)
    {
        var fields = sshConnection?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields is not { Length: 4 } || !System.Net.IPAddress.TryParse(fields[field], out var address)) return null;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any) ? null : address;
    }

    /// <summary>StayResident for the sessions of this host (<see cref="ResidentServer.Ensure"/>): gives the command
    /// that starts a resident server with this host's settings, and the environment it depends on, when a client asks
    /// for one (not at every start: it reads the environment and the program file); null: not offered.</summary>
    public Func<(IReadOnlyList<string> Command, string Fingerprint)>? Resident { get; init; }

    private Func<uint, string>? StayResident => Resident is { } resident
        ? seconds =>
        {
            var (command, fingerprint) = resident();
            return ResidentServer.Ensure(seconds, command, fingerprint, Settings.RuntimeDirectory);
        }
        : null;

    /// <summary>The options of a resident server's sessions (<c>--resident</c>): those of a serve started over ssh,
    /// without its descriptors and its ssh connection (no direct channel: a client that wants one starts a session
    /// over ssh); StayResident answers with this server's own socket.</summary>
    public ServeOptions ResidentOptions(string socketPath)
    {
        var (root, home) = SshScopeMade();
        return new ServeOptions
        {
            Root = root, Home = home, Log = Log, Capabilities = Capabilities, Settings = Settings,
            StayResident = _ => socketPath,
            DirectRefusal = "a resident server's sessions have no ssh connection of their own (run without --ssh-persist for --direct direct)",
        };
    }

    /// <summary>Listens on <paramref name="socketPath"/> as a resident server, in a session of its own (setsid: the
    /// ssh session that started it may end first), until no connection came for <paramref name="idle"/>.</summary>
    public ServeListener ListenResident(string socketPath, TimeSpan idle)
    {
        if (OperatingSystem.IsLinux()) Platform.Native.LibC.setsid();
        return ServeListener.StartLocal(socketPath, ResidentOptions(socketPath), idle);
    }

    /// <summary>The options of a TCP listener's sessions: no ssh login behind them, so always a root (the home
    /// directory unless <see cref="Root"/>).</summary>
    public ServeOptions ListenOptions()
    {
        var root = Root ?? Home;
        Directory.CreateDirectory(root);
        return new ServeOptions
        {
            Root = root, Log = Log, Capabilities = Capabilities, Settings = Settings,
            DirectRefusal = "a --listen connection has none: it is offered to sessions started over ssh",
        };
    }

    /// <summary>A session on this process's raw stdin/stdout. Throws <see cref="BcmrException"/> (or an IO error)
    /// when the root cannot be served.</summary>
    public ServeSession OpenStdio() =>
        new(Console.OpenStandardInput(), Console.OpenStandardOutput(), StdioOptions());

    /// <summary>Runs <paramref name="session"/> until the client ends it, or until <paramref name="cancellationToken"/>
    /// interrupts it (an upload in progress is kept as its partial file): then <see cref="ServeEnd.Interrupted"/> at
    /// once. The session runs on a thread of its own because a read of stdin cannot be interrupted; after an
    /// interruption that thread may stay blocked until the process ends, and the session must not be disposed.</summary>
    public static ServeEnd RunStdio(ServeSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        // Not disposed: after an interruption the session thread may still set it, whenever its read returns.
        var done = new ManualResetEventSlim();
        ServeEnd end = ServeEnd.InternalError;
        var thread = new Thread(() =>
        {
            try { end = session.Run(); }
            finally { done.Set(); }
        }) { IsBackground = true, Name = "bcmr-serve-stdio" };
        thread.Start();
        try { done.Wait(cancellationToken); }
        catch (OperationCanceledException)
        {
            session.Interrupt();
            return ServeEnd.Interrupted;
        }
        return end;
    }

    /// <summary>Binds a listener on <paramref name="address"/> (ADDR:PORT) over <see cref="ListenOptions"/>. Throws
    /// <see cref="BcmrException"/>: InvalidArgument for a bad or non-loopback address (without
    /// <paramref name="allowRemote"/>), IoError when it cannot be bound.</summary>
    public ServeListener Listen(string address, bool allowRemote)
    {
        var endpoint = ServeListener.ParseEndpoint(address);
        return ServeListener.Start(endpoint, ListenOptions(), allowRemote);
    }
}
