using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Security;

namespace Bcmr.Tests.Module;

/// <summary>What one script run produced, stream by stream, as a user of pwsh would see it.</summary>
public sealed class PsRun
{
    public required Collection<PSObject> Output { get; init; }
    public required IReadOnlyList<ErrorRecord> Errors { get; init; }
    public required IReadOnlyList<ProgressRecord> Progress { get; init; }
    public required IReadOnlyList<string> Warnings { get; init; }
    /// <summary>Lines the host was asked to print (What if lines go there, not to a stream).</summary>
    public required IReadOnlyList<string> HostLines { get; init; }
    public RuntimeException? Terminating { get; init; }

    public IEnumerable<T> Objects<T>() => Output.Select(o => o.BaseObject).OfType<T>();

    public override string ToString() =>
        $"output: {string.Join("; ", Output)}\nerrors: {string.Join("\n  ", Errors.Select(e => $"[{e.CategoryInfo.Category}] {e.FullyQualifiedErrorId} target={e.TargetObject}: {e}"))}" +
        $"\nterminating: {Terminating?.Message}\nhost: {string.Join("\n  ", HostLines)}";
}

/// <summary>
/// A runspace of the real PowerShell 7.6 engine (System.Management.Automation) with the published module imported,
/// and a host that records what it is asked to show. One per test; dispose it.
/// </summary>
public sealed class PowerShellSession : IDisposable
{
    private readonly RecordingHost _host = new();
    private readonly Runspace _runspace;

    public PowerShellSession(bool import = true)
    {
        _runspace = RunspaceFactory.CreateRunspace(_host, InitialSessionState.CreateDefault2());
        _runspace.Open();
        if (import)
        {
            var r = Run("Import-Module -Name $args[0] -ErrorAction Stop", PublishedModule.Manifest);
            Assert.True(r.Terminating is null && r.Errors.Count == 0, "Import-Module failed: " + r);
        }
    }

    public Runspace Runspace => _runspace;

    /// <summary>Answers for -Confirm prompts, in order (0 Yes, 1 Yes to All, 2 No, 3 No to All).</summary>
    public Queue<int> ConfirmAnswers => _host.Answers;

    /// <summary>The questions -Confirm asked.</summary>
    public List<string> ConfirmQuestions => _host.Questions;

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/> as $args; never throws for PowerShell errors.</summary>
    public PsRun Run(string script, params object[] args)
    {
        using var ps = Start(script, args);
        return Finish(ps, () => ps.Invoke());
    }

    public PowerShell Start(string script, params object[] args)
    {
        _host.Lines.Clear();
        var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (var a in args) ps.AddArgument(a);
        return ps;
    }

    public PsRun Finish(PowerShell ps, Func<Collection<PSObject>> invoke)
    {
        Collection<PSObject> output;
        RuntimeException? terminating = null;
        try { output = invoke(); }
        catch (RuntimeException e) { terminating = e; output = []; }
        return new PsRun
        {
            Output = output, Errors = ps.Streams.Error.ToList(), Progress = ps.Streams.Progress.ToList(),
            Warnings = ps.Streams.Warning.Select(w => w.Message).ToList(), HostLines = _host.Lines.ToList(), Terminating = terminating,
        };
    }

    public void Dispose() => _runspace.Dispose();

    /// <summary>What a stream holds now. Enumerating a PSDataCollection of a running pipeline blocks until the
    /// pipeline ends, so running pipelines are read by index.</summary>
    public static List<T> Snapshot<T>(PSDataCollection<T> stream)
    {
        var items = new List<T>();
        for (int i = 0; i < stream.Count; i++) items.Add(stream[i]);
        return items;
    }

    private sealed class RecordingHost : PSHost
    {
        private readonly RecordingUI _ui = new();
        public List<string> Lines => _ui.Lines;
        public Queue<int> Answers => _ui.Answers;
        public List<string> Questions => _ui.Questions;
        public override string Name => "bcmr-tests";
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

    private sealed class RecordingUI : PSHostUserInterface
    {
        public readonly List<string> Lines = [];
        public readonly Queue<int> Answers = new();
        public readonly List<string> Questions = [];
        private void Add(string s) { lock (Lines) Lines.Add(s); }
        public override PSHostRawUserInterface? RawUI => null;
        public override void Write(string value) => Add(value);
        public override void Write(ConsoleColor f, ConsoleColor b, string value) => Add(value);
        public override void WriteLine(string value) => Add(value);
        public override void WriteErrorLine(string value) => Add(value);
        public override void WriteDebugLine(string message) { }
        public override void WriteVerboseLine(string message) { }
        public override void WriteWarningLine(string message) { }
        public override void WriteProgress(long sourceId, ProgressRecord record) { }
        public override string ReadLine() => throw new NotSupportedException("no interactive input in tests");
        public override SecureString ReadLineAsSecureString() => throw new NotSupportedException("no interactive input in tests");
        public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) => throw new NotSupportedException("no interactive input in tests");
        public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
        {
            Questions.Add(message);
            return Answers.Count > 0 ? Answers.Dequeue() : throw new InvalidOperationException("unexpected prompt: " + message);
        }
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException();
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();
    }
}
