using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine;
using Bcmr.Engine.Client;
using Bcmr.Engine.Transfers;
using EngineResult = Bcmr.Engine.Transfers.CopyResult;
using EngineSummary = Bcmr.Engine.Transfers.TransferSummary;

namespace Bcmr.Cmdlets.Commands;

/// <summary>
/// Copy-BcmrItem and Move-BcmrItem: collects every input on the pipeline thread (resolved through the provider,
/// confirmed one by one), then runs them as one engine batch in EndProcessing so that -Jobs, pipelining and connection
/// reuse apply to pipeline input too. The engine runs on its own threads; its progress and results come back through an
/// <see cref="EnginePump{TItem}"/> and are written here. The two cmdlets differ only in the verb and in the parameters
/// that make sense for a copy (-Recurse, the resume modes, -Fast, -SkipUnchanged), which they add.
/// </summary>
public abstract class TransferItemCommand : CancellableCmdlet
{
    protected const string PathSet = "Path";
    protected const string LiteralPathSet = "LiteralPath";

    /// <summary>"Copy" or "Move": the ShouldProcess action, the progress activity, messages.</summary>
    protected abstract string Verb { get; }

    /// <summary>The engine switches of this cmdlet, the shared ones filled in by <see cref="Options"/>.</summary>
    private protected abstract CopyOptions Specific(CopyOptions shared);

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    [Parameter(Mandatory = true, ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[] LiteralPath { get; set; } = [];

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    /// <summary>Accepted for Copy-Item scripts: existing files are replaced anyway unless -NoClobber; -Force wins over it.</summary>
    [Parameter] public SwitchParameter Force { get; set; }
    /// <summary>Keep existing destination files: each one is an error (ResourceExists) instead of being replaced.</summary>
    [Parameter] public SwitchParameter NoClobber { get; set; }
    [Parameter] public SwitchParameter Preserve { get; set; }
    [Parameter] [SupportsWildcards] public string[] Exclude { get; set; } = [];
    [Parameter] public SwitchParameter Verify { get; set; }
    [Parameter] public SwitchParameter Sync { get; set; }
    [Parameter] [ValidateRange(1, 1024)] public int Jobs { get; set; }
    /// <summary>Remote copies: this many ssh connections (each its own cipher) carry the files, largest first, each
    /// taking the next file when free (bcmr's -P). Default 1.</summary>
    [Parameter] [ValidateRange(1, 64)] public int Parallel { get; set; } = 1;
    /// <summary>Seconds a shared ssh connection stays open after this copy, so that the next one to the host skips
    /// the handshake (bcmr's --ssh-persist). Default: $env:BCMR_SSH_PERSIST, else 0 (off).</summary>
    [Parameter] [ValidateRange(0, 86400)] public int SshPersist { get; set; }
    [Parameter] public string? SshCommand { get; set; }
    [Parameter] public string? RemoteCommand { get; set; }
    [Parameter] public SwitchParameter NoFallback { get; set; }
    /// <summary>Remote copies: file data over a TCP connection of its own in AES-256-GCM records, set up through the
    /// ssh login (bcmr's --direct direct). Default: $env:BCMR_DIRECT, else through ssh.</summary>
    [Parameter] public SwitchParameter Direct { get; set; }
    [Parameter] [ValidateSet("auto", "zstd", "lz4", "none")] public string? Compress { get; set; }
    [Parameter] [ValidateRange(0, long.MaxValue)] public long BandwidthLimit { get; set; }
    /// <summary>Seconds a remote connection may wait for its server while no byte moves before it is given up as
    /// stalled (default 300; 0 = never), as Invoke-WebRequest's -TimeoutSec.</summary>
    [Parameter] [ValidateRange(0, int.MaxValue)] public int TimeoutSec { get; set; } = -1;
    /// <summary>Tries a file that failed on a transient error this many more times (robocopy's /R, with a sane default: 0).</summary>
    [Parameter] [ValidateRange(0, 100)] public int RetryCount { get; set; }
    /// <summary>The wait before the first retry (a number is seconds); each further retry waits twice as long, at most 60 s.</summary>
    [Parameter] [Seconds] public TimeSpan RetryDelay { get; set; } = CopyRequest.DefaultRetryDelay;
    /// <summary>Appends a JSON line per file and one per run to this file (Get-Content | ConvertFrom-Json reads it).</summary>
    [Parameter] [ValidateNotNullOrEmpty] public string? LogPath { get; set; }
    /// <summary>One <see cref="CopyResult"/> per file on the output, as Copy-Item's -PassThru gives its items.</summary>
    [Parameter] public SwitchParameter PassThru { get; set; }
    /// <summary>The <see cref="TransferSummary"/> on the output too, after any per-file results. Without it the summary
    /// goes to the information stream only (-InformationVariable, 6>), so per-file output is never mixed with totals.</summary>
    [Parameter] public SwitchParameter Summary { get; set; }

    private readonly List<string> _sources = [];
    // What the user gave for each top-level source (a FileInfo's PSPath, a string), so errors target it.
    private readonly Dictionary<string, object> _targets = new(StringComparer.Ordinal);
    private string _destination = "";
    private bool _destinationIsRemote;
    private static long s_sourceIds = 0x6263_6D72_0000_0000; // "bcmr": apart from the runtime's own small source ids

    private TransferLog? _log;
    private int _unresolved; // inputs refused before the engine saw them (missing, not a FileSystem path)

    protected override void Dispose(bool disposing)
    {
        if (disposing) _log?.Dispose();
    }

    protected override void BeginProcessing()
    {
        _log = OpenLog();
        if (RemotePath.IsRemote(Destination, IsDriveName))
        {
            _destination = Destination;
            _destinationIsRemote = true;
            return;
        }
        string resolved;
        ProviderInfo provider;
        try { resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination, out provider, out _); }
        catch (Exception e) when (e is SessionStateException or NotSupportedException or ArgumentException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "DestinationInvalid", ErrorCategory.InvalidArgument, Destination));
            return;
        }
        if (!IsFileSystem(provider))
            ThrowTerminatingError(NotFileSystem(Destination, provider));
        // "dst/" means "an existing directory" to the engine (cp's rule); the provider drops the separator.
        if ((Destination.EndsWith('/') || Destination.EndsWith('\\')) && !System.IO.Path.EndsInDirectorySeparator(resolved))
            resolved += System.IO.Path.DirectorySeparatorChar;
        _destination = resolved;
    }

    protected override void ProcessRecord()
    {
        bool literal = ParameterSetName == LiteralPathSet;
        foreach (var input in literal ? LiteralPath : Path)
        {
            if (RemotePath.IsRemote(input, IsDriveName))
            {
                Collect(input, input, remote: true);
                continue;
            }
            foreach (var path in Resolve(input, literal)) Collect(path, input, remote: false);
        }
    }

    private IEnumerable<string> Resolve(string input, bool literal)
    {
        ProviderInfo provider;
        List<string> paths;
        try
        {
            if (literal)
            {
                paths = [SessionState.Path.GetUnresolvedProviderPathFromPSPath(input, out provider, out _)];
            }
            else
            {
                paths = [.. GetResolvedProviderPathFromPSPath(input, out provider)];
                if (paths.Count == 0) throw new ItemNotFoundException($"Cannot find path '{input}' because it does not exist.");
            }
        }
        catch (Exception e) when (e is ItemNotFoundException or System.Management.Automation.DriveNotFoundException or ProviderNotFoundException)
        {
            var missing = new BcmrException(BcmrErrorCode.NotFound, input, e.Message, e);
            WriteInputError(ErrorMapping.Record(missing, input), input);
            return [];
        }
        catch (Exception e) when (e is SessionStateException or NotSupportedException or ArgumentException)
        {
            WriteInputError(new ErrorRecord(e, "PathInvalid", ErrorCategory.InvalidArgument, input), input);
            return [];
        }
        if (!IsFileSystem(provider))
        {
            WriteInputError(NotFileSystem(input, provider), input);
            return [];
        }
        if (literal && !Exists(paths[0]))
        {
            var missing = new BcmrException(BcmrErrorCode.NotFound, paths[0], $"Cannot find path '{paths[0]}' because it does not exist.");
            WriteInputError(ErrorMapping.Record(missing, input), input);
            return [];
        }
        return paths;
    }

    private void Collect(string source, string input, bool remote)
    {
        // An item -Exclude leaves out is not offered to -WhatIf/-Confirm either (the engine would skip it).
        if (IsExcluded(source)) return;
        bool isDirectory = !remote && Directory.Exists(source);
        var action = remote ? Verb : isDirectory ? $"{Verb} Directory" : $"{Verb} File";
        var target = $"Item: {source} Destination: {WhereTo(source)}";
        if (!ShouldProcess(target, action)) return;
        _sources.Add(source);
        _targets.TryAdd(source, input);
    }

    private Regex[]? _excludes;

    private bool IsExcluded(string source)
    {
        if (Exclude.Length == 0) return false;
        _excludes ??= Exclude.Select(p => new Regex(Bcmr.Engine.Local.Wildcard.PowerShellToRegex(p), RegexOptions.CultureInvariant)).ToArray();
        var name = System.IO.Path.GetFileName(source.TrimEnd('/', '\\'));
        return _excludes.Any(r => r.IsMatch(name));
    }

    /// <summary>Where an item will land, for -WhatIf and -Confirm (the engine applies the same cp rule).</summary>
    private string WhereTo(string source)
    {
        if (_destinationIsRemote || !Directory.Exists(_destination)) return _destination;
        var name = System.IO.Path.GetFileName(source.TrimEnd('/', '\\'));
        return System.IO.Path.Join(_destination, name);
    }

    protected override void EndProcessing()
    {
        var log = _log;
        if (_sources.Count == 0)
        {
            if (_unresolved > 0) log?.Result(new EngineSummary { Operation = Verb.ToLowerInvariant(), Failed = _unresolved }, $"{_unresolved} item(s) failed; nothing to copy");
            return;
        }
        CopyOptions options;
        try { options = Options(); }
        catch (BcmrException e)
        {
            // A setting of the environment that cannot be used (BCMR_SSH_PERSIST): nothing was touched.
            log?.Result(null, e.Message);
            ThrowTerminatingError(ErrorMapping.Record(e, Destination));
            return;
        }
        using var pump = new EnginePump<EngineEvent>();
        // The engine's own warnings start with "bcmr: " for the CLI; a warning record says who it is from.
        var request = options.ToRequest(_sources, _destination,
            w => pump.Post(new EngineEvent(null, null, w.StartsWith("bcmr: ", StringComparison.Ordinal) ? w[6..] : w)))
            with { Settings = ModuleEnvironment.Read() };
        var view = ProgressWanted() ? new TransferProgressView($"{Verb}-BcmrItem to {Destination}", CopyOptions.ProgressInterval) : null;
        long sourceId = Interlocked.Increment(ref s_sourceIds);
        var clock = Stopwatch.StartNew();
        EngineSummary summary;
        try
        {
            summary = pump.Run(
                () => TransferEngine.Run(request, view is null ? null : new Progress(pump), r =>
                {
                    log?.File(r);
                    pump.Post(new EngineEvent(null, r, null));
                }, Cancellation),
                e => Handle(e, view, sourceId, clock),
                Cancel);
        }
        catch (BcmrException e)
        {
            // Rejected before anything was touched (a bad -Exclude, no usable destination).
            log?.Result(null, e.Message);
            WriteCompleted(view, sourceId);
            ThrowTerminatingError(ErrorMapping.Record(e, Destination));
            return;
        }
        finally
        {
            WriteCompleted(view, sourceId);
        }
        log?.Result(_unresolved == 0 ? summary : WithUnresolved(summary), TransferJson.ErrorOf(_unresolved == 0 ? summary : WithUnresolved(summary)));
        if (Stopping) return;
        if (summary.Fatal is { } fatal)
            ThrowTerminatingError(ErrorMapping.Record(fatal, fatal.Path ?? (object)Destination));
        var totals = TransferSummary.From(summary);
        WriteInformation(totals, ["Bcmr", "Summary"]);
        if (Summary) WriteObject(totals);
    }

    private EngineSummary WithUnresolved(EngineSummary s) => new()
    {
        Operation = s.Operation, Files = s.Files, Bytes = s.Bytes, Skipped = s.Skipped, Failed = s.Failed + _unresolved,
        Directories = s.Directories, Duration = s.Duration, WireBytes = s.WireBytes, DedupBlocks = s.DedupBlocks,
        Transport = s.Transport, Cancelled = s.Cancelled, Fatal = s.Fatal,
        Failures = s.Failures.Count > 0 ? s.Failures : [new EngineResult { Source = "", Destination = _destination, Status = CopyStatus.Failed, Message = "an input could not be resolved" }],
    };

    /// <summary>An input refused before the engine saw it: an error record, and a failed line in -LogPath's log.</summary>
    private void WriteInputError(ErrorRecord record, string input)
    {
        _unresolved++;
        var code = record.Exception is BcmrException b ? b.Code : BcmrErrorCode.InvalidArgument;
        _log?.File(new EngineResult { Source = input, Destination = _destination, Status = CopyStatus.Failed, Message = record.Exception.Message, ErrorCode = code });
        WriteError(record);
    }

    /// <summary>-LogPath, resolved against the PowerShell location; one that cannot be opened stops the command before
    /// anything is copied.</summary>
    private TransferLog? OpenLog()
    {
        if (LogPath is null) return null;
        string path;
        try { path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(LogPath); }
        catch (Exception e) when (e is SessionStateException or NotSupportedException or ArgumentException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "LogPathInvalid", ErrorCategory.InvalidArgument, LogPath));
            return null;
        }
        try { return TransferLog.Open(path, Verb.ToLowerInvariant()); }
        catch (BcmrException e)
        {
            ThrowTerminatingError(ErrorMapping.Record(e, LogPath));
            return null;
        }
    }

    private readonly record struct EngineEvent(TransferProgress? Progress, EngineResult? Result, string? Warning);

    /// <summary>IProgress without Progress&lt;T&gt;'s SynchronizationContext: straight into the queue.</summary>
    private sealed class Progress(EnginePump<EngineEvent> pump) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => pump.Post(new EngineEvent(value, null, null));
    }

    private void Handle(EngineEvent e, TransferProgressView? view, long sourceId, Stopwatch clock)
    {
        if (e.Progress is { } p)
        {
            if (view is null) return;
            foreach (var record in view.Update(p, clock.Elapsed)) CommandRuntime.WriteProgress(sourceId, record);
            return;
        }
        if (e.Warning is { } warning)
        {
            WriteWarning(ParameterWording.ForCmdlet(warning));
            return;
        }
        var r = e.Result!;
        if (r.Warnings is { } warnings) foreach (var w in warnings) WriteWarning(ParameterWording.ForCmdlet(w));
        if (r.Status == CopyStatus.Failed)
        {
            WriteError(ErrorMapping.Record(r, _targets.TryGetValue(r.Source, out var t) ? t : null));
            return;
        }
        if (r.Status == CopyStatus.Skipped && r.Message is { } why)
        {
            if (r.ErrorCode is not null) WriteWarning(ParameterWording.ForCmdlet(why));
            else WriteVerbose(ParameterWording.ForCmdlet(why));
        }
        if (PassThru) WriteObject(CopyResult.From(r));
    }

    /// <summary>Closes the progress bars, also when the pipeline is stopping: the command runtime refuses every write
    /// then, so the Completed records go straight to the host (which records them in the Progress stream as usual),
    /// and a stopped copy does not leave a bar behind.</summary>
    private void WriteCompleted(TransferProgressView? view, long sourceId)
    {
        if (view is null) return;
        foreach (var record in view.Complete())
        {
            if (!Stopping)
            {
                try
                {
                    CommandRuntime.WriteProgress(sourceId, record);
                    continue;
                }
                catch (PipelineStoppedException) { }
            }
            Host?.UI?.WriteProgress(sourceId, record);
        }
    }

    private CopyOptions Options() => Specific(new()
    {
        Force = Force || !NoClobber, Preserve = Preserve, Exclude = Exclude,
        Verify = Verify, Sync = Sync, Jobs = MyInvocation.BoundParameters.ContainsKey(nameof(Jobs)) ? Jobs : null,
        Parallel = Parallel,
        SshPersist = MyInvocation.BoundParameters.ContainsKey(nameof(SshPersist)) ? SshPersist
            : Settings.SecondsFromEnvironment(Bcmr.Engine.Client.SshPersist.Variable),
        SshCommand = Settings.FlagOrEnvironment(SshCommand, SshChannel.SshVariable),
        RemoteCommand = Settings.FlagOrEnvironment(RemoteCommand, SshChannel.RemoteVariable),
        NoFallback = NoFallback, Compress = Compress,
        Direct = MyInvocation.BoundParameters.ContainsKey(nameof(Direct)) ? Direct.IsPresent
            : DirectChannel.ParseMode(Environment.GetEnvironmentVariable(DirectChannel.Variable), DirectChannel.Variable),
        BandwidthLimit = BandwidthLimit,
        WorkingDirectory = SessionState.Path.CurrentFileSystemLocation.ProviderPath,
        StallTimeout = TimeoutSec >= 0 ? TimeSpan.FromSeconds(TimeoutSec) : null,
        Retries = RetryCount,
        RetryDelay = RetryDelay,
    });

    /// <summary>-ProgressAction, else $ProgressPreference. With SilentlyContinue or Ignore nothing is even computed.</summary>
    private bool ProgressWanted()
    {
        object? value = MyInvocation.BoundParameters.TryGetValue("ProgressAction", out var bound) ? bound
            : SessionState.PSVariable.GetValue("ProgressPreference");
        if (value is PSObject pso) value = pso.BaseObject;
        var preference = value switch
        {
            ActionPreference a => a,
            string s when Enum.TryParse<ActionPreference>(s, true, out var a) => a,
            _ => ActionPreference.Continue,
        };
        return preference is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore);
    }

    private bool IsDriveName(string name)
    {
        try { return SessionState.Drive.GetAtScope(name, "global") is not null || SessionState.Drive.Get(name) is not null; }
        catch (Exception e) when (e is SessionStateException or ArgumentException) { return false; }
    }

    private static bool IsFileSystem(ProviderInfo provider) => provider.Name == "FileSystem";

    private static bool Exists(string path)
    {
        if (File.Exists(path) || Directory.Exists(path)) return true;
        try { return new FileInfo(path).LinkTarget is not null; } // a dangling symlink is still an item
        catch (IOException) { return false; }
    }

    private ErrorRecord NotFileSystem(string input, ProviderInfo provider) => new(
        new ArgumentException($"'{input}' is not a FileSystem path (its provider is {provider.Name}); {Verb}-BcmrItem {Verb.ToLowerInvariant()}s files and directories only."),
        "NotFileSystemPath", ErrorCategory.InvalidArgument, input);
}
