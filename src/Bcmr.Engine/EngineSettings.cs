using System.Globalization;

namespace Bcmr.Engine;

/// <summary>
/// What bcmr takes from its environment, read once by the program that hosts the engine (the CLI's Program, each
/// cmdlet, the serve commands) with <see cref="FromEnvironment"/> and passed in (<c>CopyRequest.Settings</c>,
/// <c>ServeOptions.Settings</c>, the stores' factories). The engine itself reads no environment variable: what it
/// does is decided by its caller, and the callers that run inside PowerShell decide per command.
/// </summary>
public sealed record EngineSettings
{
    public const string CompressVariable = "BCMR_COMPRESS";
    public const string CasDirectoryVariable = "BCMR_CAS_DIR";
    public const string CasCapVariable = "BCMR_CAS_CAP_MB";
    public const string NoSendfileVariable = "BCMR_NO_SENDFILE";
    public const string PortableIoVariable = "BCMR_PORTABLE_IO";
    public const string StripeMinimumVariable = "BCMR_STRIPE_MIN_MB";
    public const string RendezvousTimeoutVariable = "BCMR_RENDEZVOUS_TIMEOUT_SECS";
    /// <summary>How long a server waits for the client of a direct channel to authenticate (bcmr 0.6's default).</summary>
    public static readonly TimeSpan DefaultRendezvousTimeout = TimeSpan.FromSeconds(30);
    /// <summary>Files this large are striped over the connections of --parallel N (bcmr 0.6's threshold).</summary>
    public const long DefaultStripeMinimumMb = 64;

    /// <summary>The content store's cap when <c>BCMR_CAS_CAP_MB</c> is unset or not a whole number: 1024 MiB.</summary>
    public const long DefaultCasCapMb = 1024;

    /// <summary>bcmr's per-user state (sessions, the content store): <c>$XDG_DATA_HOME/bcmr</c>, else
    /// <c>~/.local/share/bcmr</c>; <c>%LOCALAPPDATA%\bcmr</c> on Windows (Platform.DataDirectory).</summary>
    public required string DataDirectory { get; init; }

    /// <summary><c>BCMR_CAS_DIR</c>: the one content store to use; null: the data directory's.</summary>
    public string? CasDirectory { get; init; }

    /// <summary><c>BCMR_CAS_CAP_MB</c> in bytes: the size dedup uploads prune the store to; 0 = unbounded.</summary>
    public long CasCapBytes { get; init; } = DefaultCasCapMb * 1024 * 1024;

    /// <summary><c>BCMR_COMPRESS</c> as given (auto|zstd|lz4|none; empty or blank: auto), parsed where it is used
    /// (Codecs.Compression.Resolve) so that a bad value is an error of the command that needs it; null when unset.</summary>
    public string? Compress { get; init; }

    /// <summary><c>BCMR_NO_SENDFILE=1</c>: a server sends FAST downloads through its buffers instead of sendfile(2).</summary>
    public bool NoSendfile { get; init; }

    /// <summary><c>BCMR_PORTABLE_IO=1</c>: the portable .NET I/O path instead of Linux system calls. The I/O path is
    /// one for the whole process; <see cref="ApplyProcessWide"/> sets it.</summary>
    public bool PortableIo { get; init; }

    /// <summary>With --parallel N ≥ 2, a file of at least this many bytes is cut into 4 MiB-aligned ranges that the
    /// connections carry side by side (<c>BCMR_STRIPE_MIN_MB</c>; default 64 MiB; 0 stripes none).</summary>
    public long StripeMinimum { get; init; } = DefaultStripeMinimumMb * 1024 * 1024;

    /// <summary><c>XDG_RUNTIME_DIR</c>: where --ssh-persist keeps its sockets when set (else the temp directory).</summary>
    public string? RuntimeDirectory { get; init; }

    /// <summary><c>HOME</c>: one of the places ssh's own user configuration is looked for (Client.SshCiphers reads it
    /// to leave a user's cipher choice alone). Null when unset.</summary>
    public string? Home { get; init; }

    /// <summary><c>SSH_CONNECTION</c> as sshd set it for a serve ("client-ip client-port server-ip server-port"): the
    /// server address is where a direct channel listens. Null when not started by sshd.</summary>
    public string? SshConnection { get; init; }

    /// <summary><c>BCMR_RENDEZVOUS_TIMEOUT_SECS</c>: how long a direct channel's listener waits for its client
    /// (default 30 s; a value that is not a positive whole number is ignored).</summary>
    public TimeSpan RendezvousTimeout { get; init; } = DefaultRendezvousTimeout;

    /// <summary>The settings the variables give, through <paramref name="getenv"/> (the host's environment:
    /// <c>Environment.GetEnvironmentVariable</c>, or a test's dictionary).</summary>
    public static EngineSettings FromEnvironment(Func<string, string?> getenv)
    {
        ArgumentNullException.ThrowIfNull(getenv);
        return new EngineSettings
        {
            DataDirectory = Platform.DataDirectory.Resolve(getenv),
            CasDirectory = getenv(CasDirectoryVariable) is { Length: > 0 } cas ? cas : null,
            CasCapBytes = ParseCasCap(getenv(CasCapVariable)),
            Compress = getenv(CompressVariable),
            NoSendfile = getenv(NoSendfileVariable) == "1",
            PortableIo = getenv(PortableIoVariable) == "1",
            StripeMinimum = ParseStripeMinimum(getenv(StripeMinimumVariable)),
            RuntimeDirectory = getenv("XDG_RUNTIME_DIR") is { Length: > 0 } run ? run : null,
            Home = getenv("HOME") is { Length: > 0 } home ? home : null,
            SshConnection = getenv("SSH_CONNECTION") is { Length: > 0 } ssh ? ssh : null,
            RendezvousTimeout = int.TryParse(getenv(RendezvousTimeoutVariable), NumberStyles.None, CultureInfo.InvariantCulture, out int secs) && secs > 0
                ? TimeSpan.FromSeconds(Math.Min(secs, 86_400)) : DefaultRendezvousTimeout, // a day at most: waits take int milliseconds
        };
    }

    private static long ParseStripeMinimum(string? value) =>
        long.TryParse(value, out var mb) && mb >= 0 && mb <= long.MaxValue / (1024 * 1024)
            ? (mb == 0 ? long.MaxValue : mb * 1024 * 1024)
            : DefaultStripeMinimumMb * 1024 * 1024;

    /// <summary>No variable set: for callers that pass no settings (in-process tests, benchmarks).</summary>
    public static EngineSettings Defaults { get; } = FromEnvironment(_ => null);

    /// <summary>Applies what is one for the whole process, the I/O path, before the first file operation (later calls
    /// change nothing: a process does not switch I/O paths midway). The CLI calls it first thing.</summary>
    public void ApplyProcessWide()
    {
        if (PortableIo) Platform.Fs.RequestPortable();
    }

    /// <summary>Default 1024 MiB; 0 = unbounded; a value that is not a whole number of MiB is ignored (default), as
    /// bcmr 0.6 does.</summary>
    private static long ParseCasCap(string? raw)
    {
        long mb = DefaultCasCapMb;
        if (!string.IsNullOrWhiteSpace(raw) && long.TryParse(raw.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed)
                && parsed <= long.MaxValue / (1024 * 1024))
            mb = parsed;
        return mb * 1024 * 1024;
    }
}
