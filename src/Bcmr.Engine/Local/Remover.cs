using Bcmr.Engine.Platform;
using System.Text.RegularExpressions;

namespace Bcmr.Engine.Local;

public sealed class RemoveRequest
{
    public required IReadOnlyList<string> Paths { get; init; }
    /// <summary>Remove directories and their contents.</summary>
    public bool Recursive { get; init; }
    /// <summary>Remove empty directories (rm -d).</summary>
    public bool EmptyDirectories { get; init; }
    /// <summary>A path that does not exist is not an error.</summary>
    public bool Force { get; init; }
    public bool DryRun { get; init; }
    /// <summary>Entries whose path relative to the operand's parent matches are kept (and so are the directories
    /// holding them).</summary>
    public IReadOnlyList<string> Excludes { get; init; } = Array.Empty<string>();
    /// <summary>Asked before each removal (-i); false keeps the entry. Null: no questions.</summary>
    public Func<string, EntryKind, bool>? Confirm { get; init; }
}

public enum RemoveStatus { Removed, Kept, Failed, DryRun }

public sealed record RemoveResult(string Path, EntryKind Kind, RemoveStatus Status, string? Message = null, BcmrErrorCode? ErrorCode = null);

public sealed class RemoveSummary
{
    public int Removed { get; init; }
    public int Kept { get; init; }
    public int Failed { get; init; }
    public bool Cancelled { get; init; }
}

/// <summary><c>bcmr remove</c>: rm with bcmr's flags. Links are removed, never followed; "/", "." and ".." are refused
/// as operands; a directory is removed only after everything in it was.</summary>
public static class Remover
{
    /// <summary>Removes <paramref name="path"/> and everything under it, links as links (rm -rf); what cannot be removed
    /// stays, and the first failure is thrown, naming its entry and cause.</summary>
    public static void RemoveTree(string path, CancellationToken ct = default)
    {
        RemoveResult? first = null;
        Run(new RemoveRequest { Paths = [path], Recursive = true, Force = true },
            r => { if (r.Status == RemoveStatus.Failed) first ??= r; }, ct);
        if (first is not null)
            throw new BcmrException(first.ErrorCode ?? BcmrErrorCode.PermissionDenied, first.Path, first.Message ?? $"{first.Path}: not removed");
    }

    public static RemoveSummary Run(RemoveRequest request, Action<RemoveResult>? onResult = null, CancellationToken ct = default)
    {
        var excludes = request.Excludes.Select(e => new Regex(e, RegexOptions.CultureInvariant)).ToArray();
        int removed = 0, kept = 0, failed = 0;
        void Report(RemoveResult r)
        {
            switch (r.Status)
            {
                case RemoveStatus.Removed or RemoveStatus.DryRun: removed++; break;
                case RemoveStatus.Kept: kept++; break;
                default: failed++; break;
            }
            onResult?.Invoke(r);
        }
        bool Excluded(string rel) => excludes.Any(x => x.IsMatch(rel));

        // True when the entry is gone (or would be, in a dry run).
        bool RemoveEntry(string path, string rel, FileMeta meta)
        {
            ct.ThrowIfCancellationRequested();
            if (Excluded(rel)) { Report(new RemoveResult(path, meta.Kind, RemoveStatus.Kept, $"{path}: excluded")); return false; }
            if (meta.Kind == EntryKind.Directory)
            {
                if (!request.Recursive)
                {
                    bool empty = Fs.ListDirectory(path).Count == 0;
                    if (!request.EmptyDirectories || !empty)
                    {
                        Report(new RemoveResult(path, meta.Kind, RemoveStatus.Failed,
                            request.EmptyDirectories ? $"{path}: Directory not empty (use -r)" : $"{path}: is a directory (use -r, or -d for an empty one)",
                            BcmrErrorCode.IsADirectory));
                        return false;
                    }
                }
                else
                {
                    bool all = true;
                    List<DirEntry> entries;
                    try { entries = Fs.ListDirectory(path); }
                    catch (BcmrException e) { Report(new RemoveResult(path, meta.Kind, RemoveStatus.Failed, e.Message, e.Code)); return false; }
                    foreach (var entry in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
                    {
                        var child = Path.Join(path, entry.Name);
                        if (Fs.TryLstat(child) is not { } cm) continue;
                        all &= RemoveEntry(child, rel + "/" + entry.Name, cm);
                    }
                    if (!all) { Report(new RemoveResult(path, meta.Kind, RemoveStatus.Kept, $"{path}: kept (it still holds entries that were not removed)")); return false; }
                }
            }
            if (request.Confirm is { } ask && !ask(path, meta.Kind)) { Report(new RemoveResult(path, meta.Kind, RemoveStatus.Kept)); return false; }
            if (request.DryRun) { Report(new RemoveResult(path, meta.Kind, RemoveStatus.DryRun)); return true; }
            try
            {
                if (meta.Kind == EntryKind.Directory) Fs.RemoveDirectory(path);
                else Fs.DeleteFile(path);
                Report(new RemoveResult(path, meta.Kind, RemoveStatus.Removed));
                return true;
            }
            catch (BcmrException e)
            {
                Report(new RemoveResult(path, meta.Kind, RemoveStatus.Failed, e.Message, e.Code));
                return false;
            }
        }

        bool cancelled = false;
        try
        {
            foreach (var path in request.Paths)
            {
                var trimmed = path.TrimEnd('/');
                var last = trimmed[(trimmed.LastIndexOf('/') + 1)..];
                if (trimmed.Length == 0 || last is "." or "..")
                {
                    Report(new RemoveResult(path, EntryKind.Directory, RemoveStatus.Failed,
                        $"{path}: refusing to remove '/', '.' or '..'", BcmrErrorCode.InvalidArgument));
                    continue;
                }
                var meta = Fs.TryLstat(path);
                if (meta is null)
                {
                    if (!request.Force)
                        Report(new RemoveResult(path, EntryKind.File, RemoveStatus.Failed, $"{path}: No such file or directory", BcmrErrorCode.NotFound));
                    continue;
                }
                RemoveEntry(path, last, meta.Value);
            }
        }
        catch (OperationCanceledException) { cancelled = true; }
        return new RemoveSummary { Removed = removed, Kept = kept, Failed = failed, Cancelled = cancelled };
    }
}
