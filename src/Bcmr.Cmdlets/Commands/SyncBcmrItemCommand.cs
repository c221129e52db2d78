using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine;
using Bcmr.Engine.Sync;
using Bcmr.Engine.Transfers;
using EngineAction = Bcmr.Engine.Sync.SyncAction;
using EngineSummary = Bcmr.Engine.Sync.SyncSummary;

namespace Bcmr.Cmdlets.Commands;

/// <summary>
/// Sync-BcmrItem: make -Destination's tree match the directory -Path names (the contents of it go into the
/// destination, as rsync's <c>SRC/ DST/</c> and robocopy's <c>SRC DST /E</c>). -Delete (or -Mirror, robocopy's word)
/// also removes what the destination has and the source lacks, after every copy succeeded. Deletes are ConfirmImpact
/// High: each one is confirmed unless -Confirm:$false (or $ConfirmPreference is None); -WhatIf prints one line per
/// action and changes nothing. The summary is always the last output object; -PassThru adds one object per action.
/// </summary>
[Cmdlet(VerbsData.Sync, "BcmrItem", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(SyncAction), typeof(SyncSummary))]
public sealed class SyncBcmrItemCommand : CancellableCmdlet
{
    private const string PathSet = "Path";
    private const string LiteralPathSet = "LiteralPath";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    [Parameter(Mandatory = true, ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    [ValidateNotNullOrEmpty]
    public string LiteralPath { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    /// <summary>Remove what the destination has and the source lacks (after every copy succeeded).</summary>
    [Parameter] public SwitchParameter Delete { get; set; }
    /// <summary>Copy and delete: the destination becomes a mirror (robocopy's /MIR). The same as -Delete.</summary>
    [Parameter] public SwitchParameter Mirror { get; set; }
    /// <summary>With -Delete: excluded entries of the destination are removed too.</summary>
    [Parameter] public SwitchParameter DeleteExcluded { get; set; }
    /// <summary>With -Delete: more removals than this removes none and is an error.</summary>
    [Parameter] [ValidateRange(0, int.MaxValue)] public int MaxDelete { get; set; } = -1;
    /// <summary>Replaced and deleted entries are moved here (relative: inside the destination) instead of lost.</summary>
    [Parameter] [ValidateNotNullOrEmpty] public string? BackupDirectory { get; set; }
    /// <summary>Compare files of equal size by BLAKE3 instead of LastWriteTime.</summary>
    [Parameter] public SwitchParameter Checksum { get; set; }
    [Parameter] [SupportsWildcards] public string[] Exclude { get; set; } = [];
    [Parameter] public SwitchParameter Verify { get; set; }
    [Parameter] public SwitchParameter Sync { get; set; }
    /// <summary>Continue partial files of an interrupted sync (bcmr's -C).</summary>
    [Parameter] public SwitchParameter Resume { get; set; }
    [Parameter] [ValidateRange(1, 1024)] public int Jobs { get; set; }
    [Parameter] [ValidateRange(1, 64)] public int Parallel { get; set; } = 1;
    [Parameter] [ValidateRange(0, 86400)] public int SshPersist { get; set; }
    [Parameter] public string? SshCommand { get; set; }
    [Parameter] public string? RemoteCommand { get; set; }
    [Parameter] [ValidateSet("auto", "zstd", "lz4", "none")] public string? Compress { get; set; }
    /// <summary>Remote syncs: file data over a direct AES-256-GCM channel set up through ssh (bcmr's --direct direct).</summary>
    [Parameter] public SwitchParameter Direct { get; set; }
    [Parameter] [ValidateRange(0, long.MaxValue)] public long BandwidthLimit { get; set; }
    [Parameter] [ValidateRange(0, int.MaxValue)] public int TimeoutSec { get; set; } = -1;
    [Parameter] [ValidateRange(0, 100)] public int RetryCount { get; set; }
    [Parameter] [Seconds] public TimeSpan RetryDelay { get; set; } = Bcmr.Engine.Transfers.CopyRequest.DefaultRetryDelay;
    [Parameter] public SwitchParameter PassThru { get; set; }

    private string? _source;

    protected override void ProcessRecord()
    {
        if (_source is not null)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Sync-BcmrItem syncs one directory at a time; pipe one item, or call it once per directory."),
                "OneSourceOnly", ErrorCategory.InvalidArgument, Path));
            return;
        }
        bool literal = ParameterSetName == LiteralPathSet;
        var input = literal ? LiteralPath : Path;
        if (RemotePath.IsRemote(input, IsDriveName))
        {
            _source = input;
            return;
        }
        try
        {
            if (literal) _source = SessionState.Path.GetUnresolvedProviderPathFromPSPath(input);
            else
            {
                var paths = GetResolvedProviderPathFromPSPath(input, out var provider);
                if (provider.Name != "FileSystem")
                    throw new ArgumentException($"'{input}' is not a FileSystem path (its provider is {provider.Name}).");
                if (paths.Count != 1)
                    throw new ArgumentException($"'{input}' names {paths.Count} items; Sync-BcmrItem syncs one directory.");
                _source = paths[0];
            }
        }
        catch (Exception e) when (e is ItemNotFoundException or SessionStateException or ArgumentException or NotSupportedException or ProviderNotFoundException)
        {
            ThrowTerminatingError(new ErrorRecord(e, e is ItemNotFoundException ? "BcmrNotFound" : "PathInvalid",
                e is ItemNotFoundException ? ErrorCategory.ObjectNotFound : ErrorCategory.InvalidArgument, input));
        }
    }

    protected override void EndProcessing()
    {
        if (_source is null) return;
        string destination = Destination;
        if (!RemotePath.IsRemote(Destination, IsDriveName))
        {
            try { destination = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination); }
            catch (Exception e) when (e is SessionStateException or NotSupportedException or ArgumentException)
            {
                ThrowTerminatingError(new ErrorRecord(e, "DestinationInvalid", ErrorCategory.InvalidArgument, Destination));
                return;
            }
        }
        bool whatIf = WhatIfRequested();
        var copy = new CopyOptions
        {
            Verify = Verify, Sync = Sync, Resume = Resume, Exclude = Exclude,
            Jobs = MyInvocation.BoundParameters.ContainsKey(nameof(Jobs)) ? Jobs : null,
            Parallel = Parallel,
            SshPersist = MyInvocation.BoundParameters.ContainsKey(nameof(SshPersist)) ? SshPersist : 0,
            SshCommand = Settings.FlagOrEnvironment(SshCommand, Bcmr.Engine.Client.SshChannel.SshVariable),
            RemoteCommand = Settings.FlagOrEnvironment(RemoteCommand, Bcmr.Engine.Client.SshChannel.RemoteVariable),
            Compress = Compress, BandwidthLimit = BandwidthLimit,
            WorkingDirectory = SessionState.Path.CurrentFileSystemLocation.ProviderPath,
            StallTimeout = TimeoutSec >= 0 ? TimeSpan.FromSeconds(TimeoutSec) : null,
            Retries = RetryCount, RetryDelay = RetryDelay,
        };
        using var pump = new EnginePump<Event>();
        try
        {
            if (!MyInvocation.BoundParameters.ContainsKey(nameof(SshPersist)))
                copy = copy with { SshPersist = Settings.SecondsFromEnvironment(Bcmr.Engine.Client.SshPersist.Variable) };
            copy = copy with
            {
                Direct = MyInvocation.BoundParameters.ContainsKey(nameof(Direct)) ? Direct.IsPresent
                    : Bcmr.Engine.Client.DirectChannel.ParseMode(Environment.GetEnvironmentVariable(Bcmr.Engine.Client.DirectChannel.Variable), Bcmr.Engine.Client.DirectChannel.Variable),
            };
        }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, Destination));
            return;
        }
        var transfer = copy.ToRequest([_source], destination,
            w => pump.Post(new Event(null, w.StartsWith("bcmr: ", StringComparison.Ordinal) ? w[6..] : w, null))) with { Settings = ModuleEnvironment.Read() };
        var request = new SyncRequest
        {
            Source = _source, Destination = destination, Delete = Delete || Mirror, DeleteExcluded = DeleteExcluded,
            MaxDelete = MaxDelete >= 0 ? MaxDelete : null, BackupDirectory = BackupDirectory, Checksum = Checksum,
            DryRun = whatIf, Excludes = transfer.Excludes, Transfer = transfer,
            // Asked on this (the pipeline) thread: the engine's thread waits for the answer.
            ConfirmDelete = whatIf ? null : action =>
            {
                var answer = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                pump.Post(new Event(null, null, (action, answer)));
                answer.Task.Wait(Cancellation); // a stopped pipeline answers nothing: the wait ends with the cancellation
                return answer.Task.Result;
            },
        };
        if (DeleteExcluded && !request.Delete)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-DeleteExcluded needs -Delete or -Mirror."), "DeleteExcludedAlone", ErrorCategory.InvalidArgument, null));
            return;
        }
        EngineSummary summary;
        try
        {
            summary = pump.Run(() => SyncEngine.Run(request, null, a => pump.Post(new Event(a, null, null)), Cancellation),
                e => Handle(e, whatIf), Cancel);
        }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, e.Path ?? (object)Destination));
            return;
        }
        catch (OperationCanceledException) { return; }
        if (Stopping) return;
        if (summary.Fatal is { } fatal) ThrowTerminatingError(ErrorMapping.Record(fatal, fatal.Path ?? (object)Destination));
        if (summary.DeletesSkipped is { } why)
        {
            why = ParameterWording.ForCmdlet(why);
            if (whatIf) WriteWarning(why);
            else WriteError(new ErrorRecord(new BcmrException(BcmrErrorCode.Unknown, Destination, why), "BcmrDeletesSkipped", ErrorCategory.LimitsExceeded, Destination));
        }
        WriteObject(SyncSummary.From(summary));
    }

    private readonly record struct Event(EngineAction? Action, string? Warning, (EngineAction Action, TaskCompletionSource<bool> Answer)? Confirm);

    private void Handle(Event e, bool whatIf)
    {
        if (e.Warning is { } w)
        {
            WriteWarning(ParameterWording.ForCmdlet(w));
            return;
        }
        if (e.Confirm is { } ask)
        {
            bool yes;
            try { yes = ShouldProcess(ask.Action.Destination, $"Delete {Describe(ask.Action.Kind)} ({Reason(ask.Action)})"); }
            catch
            {
                ask.Answer.TrySetResult(false);
                throw;
            }
            ask.Answer.TrySetResult(yes);
            return;
        }
        var a = e.Action!;
        if (whatIf)
        {
            // ShouldProcess under -WhatIf prints "What if: Performing the operation ..." and returns false.
            ShouldProcess(a.Destination, $"{a.Verb switch { "copy" => "Copy", "update" => "Update", _ => "Delete" }} {Describe(a.Kind)} ({Reason(a)})");
        }
        else if (a.Status == SyncStatus.Failed)
        {
            var code = a.ErrorCode ?? BcmrErrorCode.Unknown;
            WriteError(new ErrorRecord(new BcmrException(code, a.Destination, ParameterWording.ForCmdlet(a.Message ?? $"{a.Destination}: failed")),
                ErrorMapping.ErrorId(code), ErrorMapping.Category(code), a.Source ?? a.Destination));
            return;
        }
        else if (a.Status is SyncStatus.Done) WriteVerbose($"{a.Verb} ({Reason(a)}): {a.Destination}");
        if (PassThru) WriteObject(SyncAction.From(a));
    }

    private static string Reason(EngineAction a) => a.ReasonText;

    private static string Describe(Bcmr.Engine.Platform.EntryKind kind) => kind switch
    {
        Bcmr.Engine.Platform.EntryKind.Directory => "Directory",
        Bcmr.Engine.Platform.EntryKind.Symlink => "SymbolicLink",
        _ => "File",
    };

    private bool WhatIfRequested()
    {
        if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var bound)) return bound is SwitchParameter s ? s.IsPresent : bound is true;
        var preference = SessionState.PSVariable.GetValue("WhatIfPreference");
        if (preference is PSObject pso) preference = pso.BaseObject;
        return preference is true or SwitchParameter { IsPresent: true };
    }

    private bool IsDriveName(string name)
    {
        try { return SessionState.Drive.GetAtScope(name, "global") is not null || SessionState.Drive.Get(name) is not null; }
        catch (Exception e) when (e is SessionStateException or ArgumentException) { return false; }
    }
}
