using System.Management.Automation;
using Bcmr.Cmdlets.Internal;

namespace Bcmr.Cmdlets.Commands;

/// <summary>Copy-BcmrItem: <see cref="TransferItemCommand"/> with what only a copy has: -Recurse, resume, -Fast and
/// -SkipUnchanged.</summary>
[Cmdlet(VerbsCommon.Copy, "BcmrItem", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(CopyResult), typeof(TransferSummary))]
public sealed class CopyBcmrItemCommand : TransferItemCommand
{
    [Parameter] public SwitchParameter Recurse { get; set; }
    /// <summary>Leave destination files that are already copies of their source (size and LastWriteTime; uploads: size
    /// and BLAKE3), so that a rerun copies only what changed.</summary>
    [Parameter] public SwitchParameter SkipUnchanged { get; set; }
    [Parameter] public SwitchParameter Resume { get; set; }
    [Parameter] public SwitchParameter Strict { get; set; }
    [Parameter] public SwitchParameter Append { get; set; }
    [Parameter] public SwitchParameter Fast { get; set; }

    protected override string Verb => "Copy";

    private protected override CopyOptions Specific(CopyOptions shared) => shared with
    {
        Recurse = Recurse, SkipUnchanged = SkipUnchanged, Resume = Resume, Strict = Strict, Append = Append, Fast = Fast,
    };
}
