using Bcmr.Engine.Platform;
using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Bcmr.Engine.Hashing;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Local;

/// <summary>A staging file that a copy which died (SIGKILL, power loss) left beside its destination: ours by name,
/// held by no process. The next copy into its directory removes it.</summary>
public sealed record StaleTemporary(string Path, long Bytes, DateTimeOffset Modified);

/// <summary>Finding what <see cref="StaleTemporary"/> describes (for <c>bcmr session list DIR</c> and
/// Get-BcmrSession -TemporaryIn).</summary>
public static class StaleTemporaries
{
    public static IReadOnlyList<StaleTemporary> Find(string directory) => Temporaries.FindStale(directory);
}

/// <summary>
/// The names of our own files beside a destination, and how we recognise them again.
/// <para>A staging file (".NAME.&lt;20 hex&gt;.bcmr-tmp", one per attempt, renamed over the destination once complete)
/// and a partial file (".NAME.&lt;20 hex&gt;.bcmr-part", the bytes an interrupted resumable copy or upload kept) both
/// carry 12 hex digits that make them unique (random for staging; derived from the destination's full path for a
/// partial, so the next run finds it and two long names that share a truncated prefix never share it) and 8 hex digits
/// that check the rest of the name against the directory it lies in. A user's file that merely looks like ours
/// (".x.bcmr-part", or one of our names copied from another directory) fails the check and is an ordinary file: copied,
/// listed and never removed or continued by us.</para>
/// <para>Staging files are created with an exclusive advisory lock held until they are renamed or removed, so a
/// staging file that nobody holds a lock on, and that nothing has touched for a few seconds, was left by a process that
/// died (SIGKILL, power loss): <see cref="SweepStale"/> removes those from a directory the first time a run writes there.
/// "Touched" is the status-change time (ctime), not the modification time: a copy that keeps times (-p, sync) sets the
/// source's old mtime on its staging file and then, between dropping the lock and the rename, the file is unlocked and
/// looks years old; its ctime is the moment the times were set, and no call can set ctime back.</para>
/// </summary>
internal static partial class Temporaries
{
    public const string StagingSuffix = ".bcmr-tmp";
    public const string PartialSuffix = ".bcmr-part";

    /// <summary>A staging file touched more recently than this is never taken for stale: its creator may not have
    /// locked it yet, or has just unlocked it to rename it.</summary>
    private static readonly TimeSpan DefaultStaleAfter = TimeSpan.FromSeconds(10);
    private static TimeSpan StaleAfter => TestHooks.StaleTemporaryAfter ?? DefaultStaleAfter;

    /// <summary>How long ago anything changed the file: its data, mode, times or name (ctime, which mtime never passes
    /// unless a filesystem lacks it).</summary>
    private static TimeSpan Untouched(in FileMeta meta) =>
        DateTime.UtcNow - (meta.CtimeUtc > meta.MtimeUtc ? meta.CtimeUtc : meta.MtimeUtc);

    /// <summary>A directory swept this recently is not read again (a tree copy writes thousands of files into one).</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);
    private static readonly ConcurrentDictionary<string, long> Swept = new(StringComparer.Ordinal);

    /// <summary>A new staging name beside <paramref name="dst"/>: same filesystem (so the rename is atomic), hidden,
    /// unique per attempt.</summary>
    public static string StagingPath(string dst)
    {
        Span<byte> unique = stackalloc byte[6];
        Random.Shared.NextBytes(unique);
        return Name(dst, Convert.ToHexString(unique).ToLowerInvariant(), StagingSuffix);
    }

    /// <summary>The partial name of <paramref name="dst"/>: the same for every run, so an interrupted copy is found and
    /// continued; never the final name, so nothing half-written is mistaken for the destination.</summary>
    public static string PartialPath(string dst)
    {
        var full = Encoding.UTF8.GetBytes("bcmr partial\0" + Path.GetFullPath(dst.TrimEnd('/')));
        return Name(dst, Blake3.ToHex(Blake3.Hash(full).AsSpan(0, 6)), PartialSuffix);
    }

    private static string Name(string dst, string unique, string suffix)
    {
        var dir = FileCopier.ParentOf(dst);
        var name = Path.GetFileName(dst.AsSpan().TrimEnd('/')).ToString();
        // ".NAME." + 20 hex + suffix within NAME_MAX (255 bytes), even for long UTF-8 names.
        while (name.Length > 1 && Encoding.UTF8.GetByteCount(name) + 2 + 20 + suffix.Length > 255)
            name = name[..^(char.IsLowSurrogate(name[^1]) ? 2 : 1)];
        var stem = "." + name + "." + unique;
        return Path.Join(dir, stem + Check(dir, stem, suffix) + suffix);
    }

    private static string Check(string dir, string stem, string suffix)
    {
        var text = Encoding.UTF8.GetBytes("bcmr temporary\0" + Path.GetFullPath(dir) + "\0" + stem + "\0" + suffix);
        return Blake3.ToHex(Blake3.Hash(text).AsSpan(0, 4));
    }

    [GeneratedRegex(@"^(\..+\.[0-9a-f]{12})([0-9a-f]{8})(\.bcmr-tmp|\.bcmr-part)$", RegexOptions.CultureInvariant)]
    private static partial Regex OurName();

    /// <summary>Whether <paramref name="name"/>, an entry of <paramref name="dir"/>, is a staging or partial file we
    /// made there (not one that only looks like ours).</summary>
    public static bool IsOurs(string dir, string name) => Kind(dir, name) is not null;

    /// <summary><see cref="StagingSuffix"/> or <see cref="PartialSuffix"/> for one of our files; null for anything else.</summary>
    public static string? Kind(string dir, string name)
    {
        if (!name.EndsWith(StagingSuffix, StringComparison.Ordinal) && !name.EndsWith(PartialSuffix, StringComparison.Ordinal)) return null;
        var m = OurName().Match(name);
        if (!m.Success) return null;
        var suffix = m.Groups[3].Value;
        return Check(dir, m.Groups[1].Value, suffix) == m.Groups[2].Value ? suffix : null;
    }

    /// <summary>Creates a staging file (mode as given, less the umask) and locks it for as long as the handle lives,
    /// which is what tells <see cref="SweepStale"/> it is in use. Stale staging files of the directory are removed first.</summary>
    /// <param name="directoryShownAs">The canonical directory when <paramref name="staging"/> names it another way
    /// (through an open descriptor, see the server's root jail): our names are checked against it.</param>
    public static SafeFileHandle CreateStaging(string staging, uint mode, string? directoryShownAs = null)
    {
        SweepStale(FileCopier.ParentOf(staging), directoryShownAs);
        var h = Fs.CreateNew(staging, mode);
        Fs.TryLock(h);
        return h;
    }

    /// <summary>
    /// Removes the staging files of <paramref name="dir"/> that a dead process left: ours by name, unlocked,
    /// untouched for a few seconds. Best effort and at most once a minute per directory: an unreadable directory or a file that
    /// cannot be removed is left as it is (the copy that follows reports its own errors).
    /// </summary>
    /// <param name="staleAfter">Tests: the quiet time that makes a file stale, instead of <see cref="StaleAfter"/>.</param>
    public static int SweepStale(string dir, string? shownAs = null, TimeSpan? staleAfter = null)
    {
        string key, list;
        try
        {
            list = Path.GetFullPath(dir);
            key = shownAs is null ? list : Path.GetFullPath(shownAs);
        }
        catch (Exception e) when (e is ArgumentException or IOException or NotSupportedException) { return 0; }
        long now = Environment.TickCount64;
        if (Swept.TryGetValue(key, out var last) && now - last < SweepInterval.TotalMilliseconds) return 0;
        Swept[key] = now;
        if (Swept.Count > 4096) Swept.Clear();
        int removed = 0;
        try
        {
            foreach (var path in Directory.EnumerateFiles(list, "*" + StagingSuffix, new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true }))
            {
                if (Kind(key, Path.GetFileName(path)) != StagingSuffix) continue;
                if (Fs.TryLstat(path) is not { Kind: EntryKind.File } meta) continue;
                if (Untouched(meta) < (staleAfter ?? StaleAfter)) continue;
                if (Fs.TryRemoveUnlocked(path)) removed++;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return removed;
    }

    /// <summary>The staging files a dead process left in <paramref name="directory"/> and below (links not followed):
    /// what <see cref="SweepStale"/> removes the next time a copy writes there. Nothing is removed here.</summary>
    public static List<StaleTemporary> FindStale(string directory)
    {
        var found = new List<StaleTemporary>();
        var pending = new Stack<string>([Path.GetFullPath(directory)]);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            List<DirEntry> entries;
            try { entries = Fs.ListDirectory(dir); }
            catch (BcmrException) { continue; }
            foreach (var e in entries)
            {
                var path = Path.Join(dir, e.Name);
                if (e.Kind == EntryKind.Directory) pending.Push(path);
                else if (e.Kind == EntryKind.File && Kind(dir, e.Name) == StagingSuffix && Fs.TryLstat(path) is { } meta)
                {
                    if (Untouched(meta) >= StaleAfter && !Fs.IsLocked(path))
                        found.Add(new StaleTemporary(path, meta.Size, DateTimeOffset.FromUnixTimeSeconds(meta.MtimeSec)));
                }
            }
        }
        found.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return found;
    }

    /// <summary>Tests: forget which directories were swept.</summary>
    internal static void ForgetSweeps() => Swept.Clear();
}
