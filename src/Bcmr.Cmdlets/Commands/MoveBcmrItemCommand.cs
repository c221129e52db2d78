using System.Management.Automation;
using Bcmr.Cmdlets.Internal;

namespace Bcmr.Cmdlets.Commands;

/// <summary>
/// Move-BcmrItem: <see cref="TransferItemCommand"/> as bcmr move. On one filesystem an item is renamed; otherwise each
/// file is copied, verified by BLAKE3 (always) and only then deleted, and a source directory is removed once it is
/// empty. Like Move-Item it takes directories without -Recurse. From a remote host, each source is removed on the
/// server once its copy is committed here (the engine's RemoteTransfer.RemoveMovedSources).
/// </summary>
[Cmdlet(VerbsCommon.Move, "BcmrItem", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(CopyResult), typeof(TransferSummary))]
public sealed class MoveBcmrItemCommand : TransferItemCommand
{
    protected override string Verb => "Move";

    private protected override CopyOptions Specific(CopyOptions shared) => shared with { Move = true };
}
