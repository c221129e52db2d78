using System.Management.Automation;
using Bcmr.Cmdlets.Internal;
using Bcmr.Engine.Local;

namespace Bcmr.Cmdlets.Commands;

/// <summary>Get-BcmrSession: the interrupted resumable copies in the same store `bcmr session list` reads, newest
/// first; -Path keeps those whose source or destination matches, -Id those whose id starts with one given.</summary>
[Cmdlet(VerbsCommon.Get, "BcmrSession", DefaultParameterSetName = PathSet)]
[OutputType(typeof(SessionInfo), ParameterSetName = [PathSet, IdSet])]
[OutputType(typeof(Bcmr.StaleTemporary), ParameterSetName = [TemporarySet])]
public sealed class GetBcmrSessionCommand : PSCmdlet
{
    private const string PathSet = "Path";
    private const string IdSet = "Id";
    private const string TemporarySet = "Temporary";

    /// <summary>Directories to search (with their subdirectories) for the temporaries killed copies left.</summary>
    [Parameter(Mandatory = true, ParameterSetName = TemporarySet)]
    [ValidateNotNullOrEmpty]
    public string[] TemporaryIn { get; set; } = [];

    [Parameter(Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "FullName")]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = IdSet)]
    [ValidateNotNullOrEmpty]
    public string[] Id { get; set; } = [];

    private IReadOnlyList<Engine.Local.SessionInfo>? _all;
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);

    protected override void ProcessRecord()
    {
        if (ParameterSetName == TemporarySet)
        {
            foreach (var dir in TemporaryIn)
            {
                var full = SessionState.Path.GetUnresolvedProviderPathFromPSPath(dir);
                if (!System.IO.Directory.Exists(full))
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"Cannot find the directory '{full}'."),
                        "DirectoryNotFound", ErrorCategory.ObjectNotFound, dir));
                    continue;
                }
                foreach (var t in StaleTemporaries.Find(full)) WriteObject(Bcmr.StaleTemporary.From(t));
            }
            return;
        }
        _all ??= SessionStore.Default(ModuleEnvironment.Read()).List();
        if (ParameterSetName == IdSet)
        {
            foreach (var id in Id)
            {
                var found = _all.Where(s => s.Id.StartsWith(id, StringComparison.OrdinalIgnoreCase)).ToList();
                if (found.Count == 0)
                    WriteError(new ErrorRecord(new ItemNotFoundException($"No resume session has an id starting with '{id}'."),
                        "SessionNotFound", ErrorCategory.ObjectNotFound, id));
                Write(found);
            }
            return;
        }
        if (Path is null || Path.Length == 0)
        {
            Write(_all);
            return;
        }
        foreach (var p in Path)
        {
            var full = SessionState.Path.GetUnresolvedProviderPathFromPSPath(p);
            var pattern = WildcardPattern.ContainsWildcardCharacters(p) ? new WildcardPattern(full, WildcardOptions.CultureInvariant) : null;
            bool Matches(string? s) => s is not null && (pattern?.IsMatch(s) ?? s == full);
            Write(_all.Where(s => Matches(s.Source) || Matches(s.Destination)));
        }
    }

    private void Write(IEnumerable<Engine.Local.SessionInfo> sessions)
    {
        foreach (var s in sessions)
            if (_written.Add(s.Id)) WriteObject(SessionInfo.From(s));
    }
}
