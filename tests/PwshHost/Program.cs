// Usage: bcmr-pwsh-host -c SCRIPT
// Runs SCRIPT in a fresh runspace of the real PowerShell engine. This host never writes to stdout itself: stdout
// belongs to whatever the script does with it (Start-BcmrServe speaks its protocol there). Everything the script
// emits is reported on stderr, one line each:
//   out: <object as string>    error: [Category] [FullyQualifiedErrorId] target=<target>: <message>
//   host: <line the host UI was asked to print, e.g. What if lines>
// Exit code: 0, 1 when an error record was written, 2 on a terminating error.
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Security;

if (args.Length != 2 || args[0] != "-c")
{
    Console.Error.WriteLine("usage: bcmr-pwsh-host -c SCRIPT");
    return 2;
}
var stderr = Console.Error;
var host = new ErrHost(stderr);
using var runspace = RunspaceFactory.CreateRunspace(host, InitialSessionState.CreateDefault2());
runspace.Open();
using var ps = PowerShell.Create();
ps.Runspace = runspace;
ps.AddScript(args[1]);
int errors = 0;
ps.Streams.Error.DataAdded += (_, e) =>
{
    var r = ps.Streams.Error[e.Index];
    Interlocked.Increment(ref errors);
    stderr.WriteLine($"error: [{r.CategoryInfo.Category}] [{r.FullyQualifiedErrorId}] target={r.TargetObject}: {r}");
};
var output = new PSDataCollection<PSObject>();
output.DataAdded += (_, e) => stderr.WriteLine("out: " + output[e.Index]);
// SIGTERM stops the pipeline as Ctrl+C would in pwsh.
using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; ps.BeginStop(null, null); });
try
{
    ps.Invoke(null, output);
}
catch (RuntimeException e)
{
    stderr.WriteLine($"terminating: [{e.ErrorRecord.CategoryInfo.Category}] [{e.ErrorRecord.FullyQualifiedErrorId}] {e.Message}");
    return 2;
}
return errors > 0 ? 1 : 0;

sealed class ErrHost(TextWriter w) : PSHost
{
    private readonly ErrUI _ui = new(w);
    public override string Name => "bcmr-pwsh-host";
    public override Version Version => new(1, 0);
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override PSHostUserInterface UI => _ui;
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;
    public override void SetShouldExit(int exitCode) { }
    public override void EnterNestedPrompt() => throw new NotSupportedException();
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
}

sealed class ErrUI(TextWriter w) : PSHostUserInterface
{
    public override PSHostRawUserInterface? RawUI => null;
    public override void Write(string value) => w.Write(value);
    public override void Write(ConsoleColor f, ConsoleColor b, string value) => w.Write(value);
    public override void WriteLine(string value) => w.WriteLine("host: " + value);
    public override void WriteErrorLine(string value) { }
    public override void WriteDebugLine(string message) { }
    public override void WriteVerboseLine(string message) => w.WriteLine("verbose: " + message);
    public override void WriteWarningLine(string message) => w.WriteLine("warning: " + message);
    public override void WriteProgress(long sourceId, ProgressRecord record) { }
    public override string ReadLine() => throw new NotSupportedException("no interactive input");
    public override SecureString ReadLineAsSecureString() => throw new NotSupportedException("no interactive input");
    public override Dictionary<string, PSObject> Prompt(string caption, string message, System.Collections.ObjectModel.Collection<FieldDescription> descriptions) => throw new NotSupportedException("no interactive input");
    public override int PromptForChoice(string caption, string message, System.Collections.ObjectModel.Collection<ChoiceDescription> choices, int defaultChoice) => throw new NotSupportedException("no interactive input");
    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException("no interactive input");
    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException("no interactive input");
}
