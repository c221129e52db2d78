using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine.Server;

namespace Bcmr.Cmdlets.Commands;

/// <summary>Clear-BcmrCas: empties the content-addressed block store that dedup uploads fill (BCMR_CAS_DIR, else
/// &lt;data dir&gt;/bcmr/cas), or with -MaxSizeMB prunes its least recently used blocks down to that size.</summary>
[Cmdlet(VerbsCommon.Clear, "BcmrCas", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(CasClearResult))]
public sealed class ClearBcmrCasCommand : PSCmdlet
{
    /// <summary>Keep at most this many MiB, removing the least recently used blocks first. Without it everything goes.</summary>
    [Parameter(Position = 0)]
    [ValidateRange(0, long.MaxValue / (1024 * 1024))]
    public long MaxSizeMB { get; set; }

    protected override void EndProcessing()
    {
        var store = ContentStore.Default(ModuleEnvironment.Read());
        var stats = store.Stats();
        bool prune = MyInvocation.BoundParameters.ContainsKey(nameof(MaxSizeMB));
        var target = $"{store.Directory} ({stats.Blobs} blocks, {Bcmr.Units.Bytes(stats.Bytes)})";
        var action = prune ? $"Prune to {MaxSizeMB} MiB, least recently used blocks first" : "Remove every block";
        if (!ShouldProcess(target, action)) return;
        CasPruneResult r;
        try { r = prune ? store.Prune(MaxSizeMB * 1024 * 1024) : store.Clear(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "CasUnavailable", ErrorCategory.WriteError, store.Directory));
            return;
        }
        WriteObject(new CasClearResult
        {
            Directory = store.Directory, BlobsFreed = r.BlobsFreed, BytesFreed = r.BytesFreed, BlobsLeft = r.BlobsLeft, BytesLeft = r.BytesLeft,
        });
    }
}
