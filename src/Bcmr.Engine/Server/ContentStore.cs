using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

/// <summary>What a content store holds: its directory, how many blobs and bytes, and its cap (0 = unbounded).</summary>
public sealed class CasStats
{
    public required string Directory { get; init; }
    public long Blobs { get; init; }
    public long Bytes { get; init; }
    public long CapBytes { get; init; }
}

/// <summary>What a prune or clear removed and what is left.</summary>
public sealed class CasPruneResult
{
    public long BlobsFreed { get; init; }
    public long BytesFreed { get; init; }
    public long BlobsLeft { get; init; }
    public long BytesLeft { get; init; }
}

/// <summary>
/// The content-addressed block store behind dedup uploads (<see cref="Caps.Dedup"/>): one file per block, named by the
/// block's BLAKE3, laid out as bcmr 0.6 does (<c>ab/cd/&lt;rest of the hex&gt;.blk</c>), so a store may be shared
/// with bcmr 0.6.
/// <para>Safety: a blob is written to a unique temporary name in its directory and renamed into place, so a reader
/// never sees a torn blob; a blob is verified against its name (BLAKE3) every time it is read, and a blob that fails
/// (corrupt, truncated, too large) is deleted and reported as absent, so it is never copied into a destination.
/// Several processes may use one store at once: a blob removed under a reader is simply absent (on Unix an open blob
/// stays readable), two writers of the same blob both succeed (same content, atomic rename).</para>
/// <para>LRU: every use of a blob (written, or read for a hit) sets its modification time to now, explicitly; the
/// access time is not used because most filesystems are mounted relatime or noatime and would not record it.
/// <see cref="Prune"/> removes the blobs with the oldest modification time first. bcmr 0.6 orders by mtime too.</para>
/// </summary>
public sealed class ContentStore
{
    /// <summary>Default cap: 1024 MiB (<c>BCMR_CAS_CAP_MB</c>).</summary>
    public const long DefaultCapMb = EngineSettings.DefaultCasCapMb;

    private const string BlobExtension = ".blk";
    private const string TempMarker = ".blk.tmp.";

    /// <summary>Temporary files older than this are leftovers of a crashed writer; prune and clear remove them.</summary>
    private static readonly TimeSpan StaleTemp = TimeSpan.FromHours(1);

    private static long _tempCounter;

    /// <summary>The store the settings name: <c>BCMR_CAS_DIR</c>, else <c>&lt;data dir&gt;/bcmr/cas</c>
    /// (<see cref="EngineSettings.DataDirectory"/>); cap <c>BCMR_CAS_CAP_MB</c> MiB (default 1024, 0 = unbounded).</summary>
    public static ContentStore Default(EngineSettings settings) =>
        new(settings.CasDirectory ?? Path.Join(settings.DataDirectory, "cas"), settings.CasCapBytes);

    /// <summary>
    /// The store of a serve confined to <paramref name="root"/>: its own directory beside the default store
    /// (<c>&lt;data dir&gt;/bcmr/cas-roots/&lt;16 hex of the root&gt;</c>, same cap), so that a client of one jail cannot
    /// learn of, or be handed through dedup, blocks that only files of another jail under the same account hold. A
    /// serve that may reach everything the account may (root "/") uses the account's default store, and so does one
    /// given <c>BCMR_CAS_DIR</c>: that directory is the store its administrator chose for it.
    /// </summary>
    public static ContentStore ForRoot(string root, EngineSettings settings)
    {
        if (root == "/" || settings.CasDirectory is not null) return Default(settings);
        var id = Hashing.Blake3.ToHex(Hashing.Blake3.Hash(System.Text.Encoding.UTF8.GetBytes("bcmr root\0" + root)).AsSpan(0, 8));
        return new ContentStore(Path.Join(settings.DataDirectory, "cas-roots", id), settings.CasCapBytes);
    }

    /// <summary>A store in <paramref name="directory"/> (created when first written) with a cap in bytes (0 or less =
    /// unbounded).</summary>
    public ContentStore(string directory, long capBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
        CapBytes = Math.Max(0, capBytes);
    }

    public string Directory { get; }

    /// <summary>The size the store is pruned to before each dedup upload; 0 = unbounded.</summary>
    public long CapBytes { get; }

    /// <summary>Counts the blobs and their bytes (temporary files of writers in progress are not counted).</summary>
    public CasStats Stats()
    {
        long blobs = 0, bytes = 0;
        foreach (var blob in EnumerateBlobs())
        {
            blobs++;
            bytes += blob.Size;
        }
        return new CasStats { Directory = Directory, Blobs = blobs, Bytes = bytes, CapBytes = CapBytes };
    }

    /// <summary>Removes the least recently used blobs until at most <paramref name="maxBytes"/> bytes remain (and
    /// temporary files of crashed writers). <paramref name="maxBytes"/> 0 empties the store.</summary>
    public CasPruneResult Prune(long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        var blobs = EnumerateBlobs().ToList();
        long total = blobs.Sum(b => b.Size);
        long freedBlobs = 0, freedBytes = 0;
        if (total > maxBytes)
        {
            // Oldest first; ties broken by name so the order is stable.
            blobs.Sort((a, b) => a.Mtime != b.Mtime ? a.Mtime.CompareTo(b.Mtime) : string.CompareOrdinal(a.Path, b.Path));
            foreach (var blob in blobs)
            {
                if (total - freedBytes <= maxBytes) break;
                if (TryDelete(blob.Path))
                {
                    freedBlobs++;
                    freedBytes += blob.Size;
                }
            }
        }
        RemoveStaleTemporaries(DateTime.UtcNow - StaleTemp);
        return new CasPruneResult
        {
            BlobsFreed = freedBlobs, BytesFreed = freedBytes,
            BlobsLeft = blobs.Count - freedBlobs, BytesLeft = total - freedBytes,
        };
    }

    /// <summary>Prunes to <see cref="CapBytes"/>; nothing when the store is unbounded.</summary>
    public CasPruneResult EnforceCap()
    {
        if (CapBytes > 0) return Prune(CapBytes);
        var s = Stats();
        return new CasPruneResult { BlobsLeft = s.Blobs, BytesLeft = s.Bytes };
    }

    /// <summary>Removes every blob, every temporary file older than an hour, and the directories left empty.</summary>
    public CasPruneResult Clear()
    {
        var result = Prune(0);
        RemoveEmptyDirectories();
        return result;
    }

    /// <summary>True when a blob for <paramref name="hash"/> exists (not verified).</summary>
    public bool Contains(ReadOnlySpan<byte> hash) => File.Exists(BlobPath(hash));

    /// <summary>
    /// Reads the blob of <paramref name="hash"/> into <paramref name="destination"/> and checks it: true with its
    /// length when the blob exists, fits, and hashes to its name (its modification time is then set to now, for the
    /// LRU). False when it is absent, removed while being read, or fails the check: a bad blob is deleted, so the
    /// next upload stores a good one.
    /// </summary>
    public bool TryRead(ReadOnlySpan<byte> hash, Span<byte> destination, out int length)
    {
        length = 0;
        var path = BlobPath(hash);
        bool bad;
        try
        {
            using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long size = RandomAccess.GetLength(h);
            bad = size > destination.Length;
            if (!bad)
            {
                int n = ReadFull(h, destination[..(int)size]);
                Span<byte> actual = stackalloc byte[Blake3.OutLen];
                Blake3.Hash(destination[..n], actual);
                bad = n != size || !actual.SequenceEqual(hash);
                length = n;
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        if (bad)
        {
            length = 0;
            TryDelete(path);
            return false;
        }
        Touch(path);
        return true;
    }

    /// <summary>Stores <paramref name="data"/> under its BLAKE3 (computed here) and returns that hash.</summary>
    public byte[] Store(ReadOnlySpan<byte> data)
    {
        var hash = Blake3.Hash(data);
        Store(hash, data);
        return hash;
    }

    /// <summary>
    /// Stores <paramref name="data"/> as the blob of <paramref name="hash"/>, which the caller computed as the BLAKE3
    /// of it (not checked again here: a wrong one only makes a blob that fails verification when read, and is then
    /// deleted). An existing blob is only touched. Written to a unique temporary file and renamed into place.
    /// Throws <see cref="BcmrException"/> when the store cannot be written.
    /// </summary>
    public unsafe void Store(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            var (at, length) = ((nint)p, data.Length); // the write runs before this returns, inside the fixed block
            Keep(hash, blob => RandomAccess.Write(blob, new ReadOnlySpan<byte>((void*)at, length), 0));
        }
    }

    /// <summary>
    /// Stores bytes [<paramref name="offset"/>, + <paramref name="length"/>) of an open file as the blob of
    /// <paramref name="hash"/>, under the same rules as <see cref="Store(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>,
    /// moved by the kernel (copy_file_range: no pass through this process, a shared extent on btrfs and XFS). A file
    /// that holds fewer bytes there stores nothing and throws.
    /// </summary>
    public void Store(ReadOnlySpan<byte> hash, SafeFileHandle source, string sourcePath, long offset, int length)
    {
        var shown = BlobPath(hash);
        Keep(hash, blob => Local.DataCopier.CopyRange(source, sourcePath, offset, blob, shown, 0, length));
    }

    private const int RaceRetries = 50;

    private void Keep(ReadOnlySpan<byte> hash, Action<SafeFileHandle> write)
    {
        if (hash.Length != Blake3.OutLen) throw new ArgumentException("a block hash is 32 bytes", nameof(hash));
        var path = BlobPath(hash);
        if (File.Exists(path))
        {
            Touch(path);
            return;
        }
        var dir = Path.GetDirectoryName(path)!;
        CreatePrivately();
        // Written beside the fan-out directories, in the store's own directory, which a prune never removes: a
        // concurrent Clear (in this process or another serve) can remove an empty fan-out directory at any moment,
        // and then only the rename is tried again, not the write.
        var temp = Path.Join(Directory, Blake3.ToHex(hash) + TempMarker + Environment.ProcessId + "." + Interlocked.Increment(ref _tempCounter));
        try
        {
            using (var h = OpenTemporary(temp))
            {
                write(h);
                // An explicit, precise time: the kernel's own stamp is coarse (a jiffy), and ties would blur the LRU.
                File.SetLastWriteTimeUtc(h, DateTime.UtcNow);
            }
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    System.IO.Directory.CreateDirectory(dir);
                    File.Move(temp, path, overwrite: true);
                    return;
                }
                catch (IOException) when (attempt < RaceRetries && File.Exists(temp))
                {
                    // The fan-out directory went between its creation and the rename (.NET reports that as
                    // DirectoryNotFound, or as "file exists" inside CreateDirectory's own walk): make it again.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            if (File.Exists(path)) return; // another writer stored it meanwhile
            throw BcmrException.FromIo(e, path);
        }
        catch (BcmrException)
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>The store holds copies of file contents: a store directory this creates is its owner's alone (0700),
    /// like the session directory. One that exists keeps the mode it has.</summary>
    private void CreatePrivately()
    {
        if (_created || OperatingSystem.IsWindows()) return;
        if (!System.IO.Directory.Exists(Directory))
            System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _created = true;
    }

    private bool _created;

    private SafeFileHandle OpenTemporary(string temp)
    {
        try { return File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None); }
        catch (DirectoryNotFoundException)
        {
            // The whole store was removed under a running server (rm -rf): made again, as privately as at first.
            _created = false;
            CreatePrivately();
            return File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
    }

    /// <summary>Where the blob of <paramref name="hash"/> lives: <c>ab/cd/&lt;rest&gt;.blk</c> under the store.</summary>
    public string BlobPath(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != Blake3.OutLen) throw new ArgumentException("a block hash is 32 bytes", nameof(hash));
        var hex = Blake3.ToHex(hash);
        return Path.Join(Directory, hex[..2], hex[2..4], hex[4..] + BlobExtension);
    }

    private readonly record struct Blob(string Path, long Size, DateTime Mtime);

    private IEnumerable<Blob> EnumerateBlobs()
    {
        if (!System.IO.Directory.Exists(Directory)) yield break;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 2, AttributesToSkip = 0 };
        var files = new System.IO.Enumeration.FileSystemEnumerable<Blob>(Directory,
            (ref System.IO.Enumeration.FileSystemEntry e) => new Blob(e.ToFullPath(), e.Length, e.LastWriteTimeUtc.UtcDateTime), options)
        {
            ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) =>
                !e.IsDirectory && e.FileName.EndsWith(BlobExtension, StringComparison.Ordinal),
        };
        foreach (var f in files) yield return f;
    }

    private void RemoveStaleTemporaries(DateTime olderThan)
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 2, AttributesToSkip = 0 };
        var temps = new System.IO.Enumeration.FileSystemEnumerable<string>(Directory,
            (ref System.IO.Enumeration.FileSystemEntry e) => e.ToFullPath(), options)
        {
            ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) =>
                !e.IsDirectory && e.FileName.Contains(TempMarker, StringComparison.Ordinal) && e.LastWriteTimeUtc.UtcDateTime < olderThan,
        };
        foreach (var t in temps.ToList()) TryDelete(t);
    }

    private void RemoveEmptyDirectories()
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        foreach (var outer in SafeDirectories(Directory))
        {
            foreach (var inner in SafeDirectories(outer)) TryRemoveDirectory(inner);
            TryRemoveDirectory(outer);
        }
    }

    private static List<string> SafeDirectories(string dir)
    {
        try { return System.IO.Directory.EnumerateDirectories(dir).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static void TryRemoveDirectory(string dir)
    {
        try { System.IO.Directory.Delete(dir, recursive: false); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* not empty, or in use */ }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void Touch(string path)
    {
        try { File.SetLastWriteTimeUtc(path, DateTime.UtcNow); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* evicted meanwhile: fine */ }
    }

    private static int ReadFull(SafeFileHandle h, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(h, buffer[total..], total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
