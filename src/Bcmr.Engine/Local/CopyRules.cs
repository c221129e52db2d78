using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Local;

/// <summary>
/// cp's rules for where a source goes and when it may not, in one place for a local copy, an upload and a download
/// (and for what a check compares). The table, each row tested for all three (tests/Unit/Remote/CopyRulesTests.cs):
/// <code>
/// sources  source     destination                  result
/// one      file       missing (parent exists)      the destination is the copy
/// one      file       missing, parent missing      refused: destination directory ... does not exist
/// one      file       missing, written "dst/"      refused: Not a directory
/// one      file       existing file                refused without -f (or a resume flag); replaced with it
/// one      file       existing directory           dst/name; refused if dst/name is a directory
/// one      directory  (without -r)                 refused: is a directory (use -r ...); a move needs no -r
/// one      directory  missing                      the destination is the copy of the directory
/// one      directory  existing directory           dst/name, merged into what is there
/// one      directory  existing file                refused: cannot overwrite non-directory with directory
/// several  any        existing directory           each into it as dst/name
/// several  any        existing file                refused: target is not a directory
/// several  any        missing                      refused: target directory does not exist (created first with -Container/--mkdir)
/// </code>
/// Names: a source's name is its last component ("a/b/" gives "b"; "." and ".." their real names).
/// </summary>
internal static class CopyRules
{
    /// <summary>The name a local item takes inside a destination directory; the root directory has none.</summary>
    public static string BaseName(string src)
    {
        var trimmed = src.TrimEnd('/', Path.DirectorySeparatorChar);
        var name = Path.GetFileName(trimmed);
        if (name is "" or "." or "..")
            name = Path.GetFileName(Fs.RealPath(src).TrimEnd('/', Path.DirectorySeparatorChar));
        if (string.IsNullOrEmpty(name))
            throw new BcmrException(BcmrErrorCode.InvalidArgument, src, $"{src}: cannot copy the root directory itself; name its contents instead");
        return name;
    }

    /// <summary>The rows for several sources, and whether one source lands inside the destination or as it.</summary>
    public static DestinationPlan PlanDestination(int sourceCount, string shown, bool exists, bool isDirectory, bool exact, bool createMissing)
    {
        if (exact && sourceCount == 1) return DestinationPlan.AsNamed;
        if (isDirectory) return DestinationPlan.IntoDirectory;
        if (sourceCount <= 1) return DestinationPlan.AsNamed;
        if (!exists && createMissing) return DestinationPlan.CreateDirectory;
        throw exists
            ? new BcmrException(BcmrErrorCode.NotADirectory, shown, $"{shown}: target is not a directory (several sources need an existing directory)")
            : new BcmrException(BcmrErrorCode.NotFound, shown, $"{shown}: target directory does not exist (several sources need an existing directory)");
    }

    /// <summary>The first check of every item, before its name is even looked at. <paramref name="recurses"/>: -r, or a move.</summary>
    public static void RequireRecursion(string src, bool srcIsDirectory, bool recurses)
    {
        if (srcIsDirectory && !recurses) throw NotRecursive(src);
    }

    public static BcmrException NotRecursive(string src) =>
        new(BcmrErrorCode.IsADirectory, src, $"{src}: is a directory (use -r to copy directories)");

    /// <summary>The rows for one item whose target (<paramref name="target"/>, shown as the user would write it) is
    /// known: <paramref name="targetIsDirectory"/> is null where nothing is there.</summary>
    public static void CheckItem(string src, bool srcIsDirectory, string dst, bool intoDirectory, string target, bool? targetIsDirectory)
    {
        if (srcIsDirectory)
        {
            if (targetIsDirectory == false)
                throw new BcmrException(BcmrErrorCode.NotADirectory, target, $"{target}: cannot overwrite non-directory with directory '{src}'");
            return;
        }
        if (!intoDirectory && EndsWithSeparator(dst))
            throw new BcmrException(BcmrErrorCode.NotADirectory, dst, $"{dst}: Not a directory");
        if (targetIsDirectory == true)
            throw new BcmrException(BcmrErrorCode.IsADirectory, target, $"{target}: cannot overwrite directory with non-directory '{src}'");
    }

    public static BcmrException MissingParent(string target, string parent) =>
        new(BcmrErrorCode.NotFound, target, $"{target}: destination directory {parent} does not exist");

    private static bool EndsWithSeparator(string p) => p.EndsWith('/') || p.EndsWith(Path.DirectorySeparatorChar);
}

internal enum DestinationPlan
{
    /// <summary>The destination names the copy itself (or, for a directory source, the directory it becomes).</summary>
    AsNamed,
    /// <summary>Each source lands inside the existing destination directory under its own name.</summary>
    IntoDirectory,
    /// <summary>The destination is created as a directory first, then as <see cref="IntoDirectory"/>.</summary>
    CreateDirectory,
}
