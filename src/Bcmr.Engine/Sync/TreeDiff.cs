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
        // The paths and their positions sorted, not the entries: a listing of 1 000 files sorted through LINQ (keys,
        // a map and a copy of every entry) was a tenth of a warm no-change sync's time.
        var list = items as IReadOnlyList<(string Path, T Node)> ?? items.ToList();
        var paths = new string[list.Count];
        var order = new int[list.Count];
        for (int i = 0; i < paths.Length; i++)
        {
            paths[i] = list[i].Path;
            order[i] = i;
        }
        Array.Sort(paths, order, StringComparer.Ordinal);
        for (int i = 0; i < paths.Length; i++)
        {
            int last = order[i];
            for (; i + 1 < paths.Length && paths[i + 1] == paths[i]; i++) last = Math.Max(last, order[i + 1]);
            yield return list[last];
        }
    }
}
