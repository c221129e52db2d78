using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine.Local;

namespace Bcmr.Cmdlets.Commands;

/// <summary>Remove-BcmrSession: deletes sessions and the partial files they vouch for (without its session a partial
/// file's bytes can never be trusted again). Takes Get-BcmrSession's objects or ids.</summary>
[Cmdlet(VerbsCommon.Remove, "BcmrSession", DefaultParameterSetName = IdSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(SessionInfo))]
public sealed class RemoveBcmrSessionCommand : PSCmdlet
{
    private const string IdSet = "Id";
    private const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = IdSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Id { get; set; } = [];

    [Parameter(Mandatory = true, ParameterSetName = InputObjectSet, ValueFromPipeline = true)]
    public SessionInfo[] InputObject { get; set; } = [];

    /// <summary>Emit each removed session.</summary>
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = SessionStore.Default(ModuleEnvironment.Read());
        var all = store.List();
        IEnumerable<string> ids = ParameterSetName == InputObjectSet ? InputObject.Select(s => s.Id) : Id;
        foreach (var id in ids)
        {
            var found = all.Where(s => s.Id.StartsWith(id, StringComparison.OrdinalIgnoreCase)).ToList();
            if (found.Count == 0)
            {
                WriteError(new ErrorRecord(new ItemNotFoundException($"No resume session has an id starting with '{id}'."),
                    "SessionNotFound", ErrorCategory.ObjectNotFound, id));
                continue;
            }
            foreach (var s in found)
            {
                var what = s.Source is null ? $"{s.Id} (unreadable: {s.Problem})" : $"{s.Id} ({s.Source} -> {s.Destination})";
                if (!ShouldProcess(what, "Remove resume session and its partial file")) continue;
                store.Remove(s);
                if (PassThru) WriteObject(SessionInfo.From(s));
            }
        }
    }
}
