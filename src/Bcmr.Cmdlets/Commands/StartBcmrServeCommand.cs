using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine;
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
        var root = ResolveRoot();
        if (ParameterSetName == ListenSet) ServeTcp(root);
        else ServeStdio(root, Root is null);
    }

    private string ResolveRoot()
    {
        var given = Root ?? (Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home
            ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
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

    /// <param name="root">-Root, or the home directory when <paramref name="noRootGiven"/>.</param>
    private void ServeStdio(string root, bool noRootGiven)
    {
        ServeSession session;
        var (boundary, home) = ServeOptions.SshScope(noRootGiven ? null : root, root);
        try
        {
            session = new ServeSession(Console.OpenStandardInput(), Console.OpenStandardOutput(),
                new ServeOptions { Root = boundary, Home = home, Log = Console.Error, Settings = ModuleEnvironment.Read() });
        }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, root));
            return;
        }
        // The session blocks in a read of stdin, which nothing can interrupt; it runs on its own thread so that
        // Ctrl+C still returns promptly (Interrupt keeps an upload's partial file, as a dropped connection does).
        var done = new ManualResetEventSlim();
        ServeEnd end = ServeEnd.InternalError;
        var thread = new Thread(() =>
        {
            try { end = session.Run(); }
            finally { done.Set(); }
        }) { IsBackground = true, Name = "bcmr-serve-stdio" };
        thread.Start();
        try { done.Wait(Cancellation); }
        catch (OperationCanceledException)
        {
            session.Interrupt();
            return;
        }
        session.Dispose();
        if (end is not (ServeEnd.Done or ServeEnd.EndOfInput))
            Console.Error.WriteLine($"Start-BcmrServe: session ended: {end}");
    }

    private void ServeTcp(string root)
    {
        using var pump = new EnginePump<string>();
        ServeListener listener;
        try
        {
            var endpoint = ServeListener.ParseEndpoint(Listen);
            listener = ServeListener.Start(endpoint, new ServeOptions { Root = root, Log = new LineWriter(pump.Post), Settings = ModuleEnvironment.Read() }, AllowRemoteListen);
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
