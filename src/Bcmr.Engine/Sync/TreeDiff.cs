namespace Bcmr.Engine.Sync;

/// <summary>
/// Two trees walked side by side, in the style of rclone's march: both listings in ordinal order of their relative
/// paths, advanced together, so that each path comes out once with what each side holds (null where it has nothing).
/// Check uses it today, sync will: what differs is decided by the caller, the pairing only here.
/// </summary>
internal static class TreeDiff
{
    public static IEnumerable<(string Path, T? Source, T? Destination)> March<T>(
        IEnumerable<(string Path, T Node)> source, IEnumerable<(string Path, T Node)> destination) where T : struct
    {
        using var s = Sorted(source).GetEnumerator();
        using var d = Sorted(destination).GetEnumerator();
        bool hasS = s.MoveNext(), hasD = d.MoveNext();
        while (hasS || hasD)
        {
            int order = !hasS ? 1 : !hasD ? -1 : string.CompareOrdinal(s.Current.Path, d.Current.Path);
            if (order < 0)
            {
                yield return (s.Current.Path, s.Current.Node, null);
                hasS = s.MoveNext();
            }
            else if (order > 0)
            {
                yield return (d.Current.Path, null, d.Current.Node);
                hasD = d.MoveNext();
            }
            else
            {
                yield return (s.Current.Path, s.Current.Node, d.Current.Node);
                hasS = s.MoveNext();
                hasD = d.MoveNext();
            }
        }
    }

    /// <summary>A walk lists "a/b" before "a-c" (parents before contents), which is not ordinal order of the whole
    /// path ('-' sorts before '/'); a path listed twice (two sources of the same name) keeps its last node.</summary>
    private static IEnumerable<(string Path, T Node)> Sorted<T>(IEnumerable<(string Path, T Node)> items)
    {
        var list = items.OrderBy(x => x.Path, StringComparer.Ordinal).ToList(); // stable: the last of equals stays last
        for (int i = 0; i < list.Count; i++)
            if (i + 1 == list.Count || list[i + 1].Path != list[i].Path) yield return list[i];
    }
}
