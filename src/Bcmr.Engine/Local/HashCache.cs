using System.Globalization;
using System.Text;
using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Local;

/// <summary>
/// The BLAKE3 of files hashed before, per tree root, each valid while its file's size, mtime, ctime and inode are what
/// they were when it was hashed: how a repeated --checksum sync hashes only what changed (the server for its root, the
/// client for its local tree). The ctime is what makes it safe: any write or chmod sets it, and no call sets it back,
/// so a file rewritten with its old size and mtime restored still misses. Kept in the data directory
/// (<c>hashes/ID.tsv</c>, one line per file); a missing, damaged or foreign file is an empty cache, never an error,
/// and it is rewritten whole (temporary name, rename) when something was added.
/// </summary>
internal sealed class HashCache
{
    private readonly record struct Entry(long Size, long MtimeSec, uint MtimeNsec, long CtimeSec, uint CtimeNsec, ulong Inode, string Hash);

    internal const int RacyWindowSeconds = 2;

    private readonly object _lock = new();
    private readonly string _file;
    private Dictionary<string, Entry>? _entries;
    private bool _dirty;

    private HashCache(string file) => _file = file;

    public static HashCache For(string root, EngineSettings settings)
    {
        var id = Hashing.Blake3.ToHex(Hashing.Blake3.Hash(Encoding.UTF8.GetBytes("bcmr hashes\0" + root)).AsSpan(0, 8));
        return new HashCache(Path.Join(settings.DataDirectory, "hashes", id + ".tsv"));
    }

    /// <summary>The file the cache is kept in.</summary>
    internal string Location => _file;

    /// <summary>Lookups that found a valid hash (what a test or a benchmark can read).</summary>
    public int Hits { get; private set; }

    public string? TryGet(string path, in FileMeta m)
    {
        lock (_lock)
        {
            if (!Load().TryGetValue(path, out var e) || e != Of(m, e.Hash)) return null;
            Hits++;
            return e.Hash;
        }
    }

    public void Put(string path, in FileMeta m, string hash)
    {
        // A file changed moments before it was hashed could be changed again within the same timestamp tick, unseen
        // (git's "racy" entries): only what has been still for a while is remembered.
        if (m.CtimeSec == 0 || m.Inode == 0 || DateTimeOffset.UtcNow.ToUnixTimeSeconds() - m.CtimeSec < RacyWindowSeconds) return;
        lock (_lock)
        {
            Load()[path] = Of(m, hash);
            _dirty = true;
        }
    }

    /// <summary>Writes the cache back when something was added; failures are ignored (a cache).</summary>
    public void Save()
    {
        lock (_lock)
        {
            if (!_dirty || _entries is null) return;
            var temp = _file + "." + Environment.ProcessId + ".tmp";
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(_file)!);
                using (var w = new StreamWriter(temp, false, new UTF8Encoding(false)))
                    foreach (var (path, e) in _entries)
                        w.Write(string.Create(CultureInfo.InvariantCulture,
                            $"{e.Hash}\t{e.Size}\t{e.MtimeSec}\t{e.MtimeNsec}\t{e.CtimeSec}\t{e.CtimeNsec}\t{e.Inode}\t{Escape(path)}\n"));
                File.Move(temp, _file, overwrite: true);
                _dirty = false;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                try { File.Delete(temp); } catch (Exception) { }
            }
        }
    }

    private static Entry Of(in FileMeta m, string hash) => new(m.Size, m.MtimeSec, m.MtimeNsec, m.CtimeSec, m.CtimeNsec, m.Inode, hash);

    private Dictionary<string, Entry> Load()
    {
        if (_entries is not null) return _entries;
        _entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadLines(_file))
            {
                var f = line.Split('\t', 8);
                if (f.Length == 8 && f[0].Length == 64
                    && long.TryParse(f[1], CultureInfo.InvariantCulture, out var size) && long.TryParse(f[2], CultureInfo.InvariantCulture, out var ms)
                    && uint.TryParse(f[3], CultureInfo.InvariantCulture, out var mn) && long.TryParse(f[4], CultureInfo.InvariantCulture, out var cs)
                    && uint.TryParse(f[5], CultureInfo.InvariantCulture, out var cn) && ulong.TryParse(f[6], CultureInfo.InvariantCulture, out var ino))
                    _entries[Unescape(f[7])] = new Entry(size, ms, mn, cs, cn, ino, f[0]);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return _entries;
    }

    // A path may hold a tab, a newline or a backslash: one line per entry all the same.
    private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("\t", "\\t").Replace("\n", "\\n");

    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var b = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\' || i + 1 == s.Length) { b.Append(s[i]); continue; }
            b.Append(s[++i] switch { 't' => '\t', 'n' => '\n', var c => c });
        }
        return b.ToString();
    }
}
