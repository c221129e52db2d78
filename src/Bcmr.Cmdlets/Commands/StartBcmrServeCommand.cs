using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Server;

namespace Bcmr.Cmdlets.Commands;

/// <summary>
/// Start-BcmrServe: the remote end of a transfer, for hosts that have the module but no <c>bcmr</c> program
/// (<c>ssh host pwsh -NoProfile -NonInteractive -Command Start-BcmrServe</c> as a copy's remote command). Without
/// -Listen it speaks the protocol on the process's raw stdin/stdout: it writes nothing to any PowerShell stream
/// (a host would print it on stdout, in the middle of the protocol), and diagnostics go to stderr.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "BcmrServe", DefaultParameterSetName = StdioSet)]
[OutputType(typeof(ServeEndpoint), ParameterSetName = [ListenSet])]
public sealed class StartBcmrServeCommand : CancellableCmdlet
{
    private const string StdioSet = "Stdio";
    private const string ListenSet = "Listen";

    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ListenSet)]
    [ValidateNotNullOrEmpty]
    public string Listen { get; set; } = "";

    [Parameter(ParameterSetName = ListenSet)]
    public SwitchParameter AllowRemoteListen { get; set; }

    protected override void EndProcessing()
    {
        var home = Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } h
            ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        ServeHost host;
        var settings = ModuleEnvironment.Read();
        try
        {
            host = new ServeHost
            {
                // The home directory matters only without -Root (relative paths start there, and a listener serves it).
                Home = Root is null ? ResolvePath(home) : home, Root = Root is null ? null : ResolvePath(Root), Log = Console.Error,
                Compression = ServeHost.CompressionFrom(settings.Compress), Settings = settings,
            };
        }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, Root ?? home));
            return;
        }
        if (ParameterSetName == ListenSet) ServeTcp(host);
        else ServeStdio(host);
    }

    /// <summary>A path as PowerShell means it (relative to its location, not the process's), created when missing.</summary>
    private string ResolvePath(string given)
    {
        string path;
        ProviderInfo provider;
        try { path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(given, out provider, out _); }
        catch (Exception e) when (e is SessionStateException or NotSupportedException or ArgumentException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "RootInvalid", ErrorCategory.InvalidArgument, given));
            throw; // not reached
        }
        if (provider.Name != "FileSystem")
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Root '{given}' is not a FileSystem path."),
                "NotFileSystemPath", ErrorCategory.InvalidArgument, given));
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "RootUnavailable", ErrorCategory.WriteError, path));
        }
        return path;
    }

    private void ServeStdio(ServeHost host)
    {
        ServeSession session;
        try
        {
            session = host.OpenStdio();
        }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, host.Root ?? host.Home));
            return;
        }
        // Ctrl+C (StopProcessing) interrupts the session and returns promptly; the session thread may stay blocked
        // in a read of stdin, so the session is not disposed then.
        var end = ServeHost.RunStdio(session, Cancellation);
        if (end == ServeEnd.Interrupted) return;
        session.Dispose();
        if (end is not (ServeEnd.Done or ServeEnd.EndOfInput))
            Console.Error.WriteLine($"Start-BcmrServe: session ended: {end}");
    }

    private void ServeTcp(ServeHost host)
    {
        using var pump = new EnginePump<string>();
        var root = host.Root ?? host.Home;
        ServeListener listener;
        try
        {
            listener = (host with { Log = new LineWriter(pump.Post) }).Listen(Listen, AllowRemoteListen);
        }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, Listen));
            return;
        }
        using (listener)
        {
            var ep = listener.LocalEndpoint;
            WriteObject(new ServeEndpoint { Address = ep.Address.ToString(), Port = ep.Port, Root = root });
            pump.Run(() => { listener.Run(Cancellation); return 0; }, WriteVerbose, Cancel);
        }
    }
}
