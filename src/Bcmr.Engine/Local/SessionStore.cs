using Bcmr.Engine.Platform;
using System.Text;
using Bcmr.Engine.Hashing;

namespace Bcmr.Engine.Local;

/// <summary>One stored resume session, as `bcmr session list` and Get-BcmrSession show it.</summary>
public sealed class SessionInfo
{
    /// <summary>The 16 hex digits that name the session file (the same for bcmr 0.6 and us).</summary>
    public required string Id { get; init; }
    public required string SessionFile { get; init; }
    /// <summary>Null when the file could not be read (see <see cref="Problem"/>).</summary>
    public string? Source { get; init; }
    public string? Destination { get; init; }
    /// <summary>Bytes of the destination that the session vouches for (durable at the last checkpoint).</summary>
    public long BytesDone { get; init; }
    public long TotalBytes { get; init; }
    public int Blocks { get; init; }
    public DateTimeOffset? Created { get; init; }
    public DateTimeOffset? Updated { get; init; }
    public TimeSpan? Age => Updated is { } u ? DateTimeOffset.UtcNow - u : null;
    /// <summary>Older than <see cref="SessionStore.MaxAge"/>: the next copy will refuse it and start over.</summary>
    public bool IsStale => Age > SessionStore.MaxAge;
    /// <summary>Why this session cannot be used (corrupt, truncated, unreadable), or null.</summary>
    public string? Problem { get; init; }
    /// <summary>Where the copy keeps its bytes until they are complete.</summary>
    public string? PartialFile { get; init; }
    public double Percent => TotalBytes > 0 ? 100.0 * BytesDone / TotalBytes : 0;
}

/// <summary>
/// The session directory (<c>&lt;data dir&gt;/bcmr/sessions</c>, mode 0700): one file per interrupted resumable copy,
/// named by the first 16 hex digits of BLAKE3(u32 len(src) ‖ src ‖ u32 len(dst) ‖ dst) as bcmr 0.6 names them.
/// Saved atomically (temp, fsync, rename, fsync directory), so a crash leaves the old session or the new one.
/// </summary>
public sealed class SessionStore
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromDays(7);
    private const string Extension = ".session";

    public SessionStore(string directory) => Directory = directory;

    /// <summary>The store in the user's data directory.</summary>
    public static SessionStore Default(EngineSettings settings) => new(Path.Join(settings.DataDirectory, "sessions"));

    public string Directory { get; }

    public static string IdFor(string source, string destination)
    {
        var src = Encoding.UTF8.GetBytes(source);
        var dst = Encoding.UTF8.GetBytes(destination);
        var key = new byte[8 + src.Length + dst.Length];
        BitConverter.TryWriteBytes(key.AsSpan(0, 4), (uint)src.Length);
        src.CopyTo(key, 4);
        BitConverter.TryWriteBytes(key.AsSpan(4 + src.Length, 4), (uint)dst.Length);
        dst.CopyTo(key, 8 + src.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("bcmr's session key is little-endian");
        return Blake3.ToHex(Blake3.Hash(key))[..16];
    }

    private string FileFor(string id) => Path.Join(Directory, id + Extension);

    /// <summary>Every session in the store, newest first; unreadable ones included with their problem.</summary>
    public IReadOnlyList<SessionInfo> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return Array.Empty<SessionInfo>();
        var result = new List<SessionInfo>();
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*" + Extension))
            result.Add(Describe(file));
        return result.OrderByDescending(s => s.Updated ?? DateTimeOffset.MinValue).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>Sessions whose id starts with <paramref name="idOrPath"/>, or whose source or destination is that path.</summary>
    public IReadOnlyList<SessionInfo> Find(string idOrPath)
    {
        var full = Path.GetFullPath(idOrPath);
        return List().Where(s => s.Id.StartsWith(idOrPath, StringComparison.OrdinalIgnoreCase) && idOrPath.Length > 0
            || s.Destination == full || s.Source == full).ToList();
    }

    /// <summary>Deletes a session and the partial file it describes (its bytes cannot be trusted without it).</summary>
    public void Remove(SessionInfo session)
    {
        if (session.PartialFile is { } partial && Fs.TryLstat(partial) is { Kind: EntryKind.File }) Fs.TryDeleteFile(partial);
        Fs.TryDeleteFile(session.SessionFile);
    }

    private static SessionInfo Describe(string file)
    {
        var id = Path.GetFileNameWithoutExtension(file);
        try
        {
            var s = ResumeSession.Parse(File.ReadAllBytes(file));
            return new SessionInfo
            {
                Id = id, SessionFile = file, Source = s.Source, Destination = s.Destination,
                BytesDone = (long)s.BytesWritten, TotalBytes = (long)s.SourceSize, Blocks = s.Blocks.Count,
                Created = DateTimeOffset.FromUnixTimeSeconds((long)Math.Min(s.CreatedAt, 253402300799)),
                Updated = DateTimeOffset.FromUnixTimeSeconds((long)Math.Min(s.UpdatedAt, 253402300799)),
                PartialFile = Temporaries.PartialPath(s.Destination),
            };
        }
        catch (Exception e) when (e is SessionFormatException or IOException or UnauthorizedAccessException)
        {
            return new SessionInfo { Id = id, SessionFile = file, Problem = e.Message };
        }
    }

    // ---- what a copy uses --------------------------------------------------------------------------------------

    /// <summary>The session for this copy, or null with the reason it was refused (null reason: there is none).
    /// A refused session file is deleted: it will never be trusted, and the copy writes a new one.</summary>
    internal ResumeSession? Load(string source, string destination, out string? refusal)
    {
        refusal = null;
        var file = FileFor(IdFor(source, destination));
        byte[] data;
        try { data = File.ReadAllBytes(file); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            refusal = $"session {file} cannot be read ({e.Message})";
            return null;
        }
        ResumeSession s;
        try { s = ResumeSession.Parse(data); }
        catch (SessionFormatException e)
        {
            refusal = $"session {file} is not usable: {e.Message}";
            Fs.TryDeleteFile(file);
            return null;
        }
        if (s.Source != source || s.Destination != destination)
        {
            refusal = $"session {file} belongs to another copy ({s.Source} -> {s.Destination})";
            Fs.TryDeleteFile(file);
            return null;
        }
        var age = TimeSpan.FromSeconds(ResumeSession.NowSeconds() - Math.Min(s.UpdatedAt, ResumeSession.NowSeconds()));
        if (age > MaxAge)
        {
            refusal = $"session {file} is {(int)age.TotalDays} days old (older than {MaxAge.Days} days)";
            Fs.TryDeleteFile(file);
            return null;
        }
        return s;
    }

    internal void Save(ResumeSession session)
    {
        EnsureDirectory();
        var file = FileFor(IdFor(session.Source, session.Destination));
        var temp = file + ".tmp";
        session.UpdatedAt = ResumeSession.NowSeconds();
        var data = session.Serialize();
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var stream = new FileStream(temp, options);
            stream.Write(data);
            stream.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw BcmrException.FromIo(e, temp); }
        Fs.Rename(temp, file, replace: true);
        Fs.FlushDirectory(Directory);
    }

    internal void Delete(string source, string destination) => Fs.TryDeleteFile(FileFor(IdFor(source, destination)));

    private void EnsureDirectory()
    {
        var parent = Path.GetDirectoryName(Directory);
        if (!string.IsNullOrEmpty(parent)) System.IO.Directory.CreateDirectory(parent);
        try { Fs.MakeDirectory(Directory, 0x1C0); }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists) { }
        // Sessions name the files a user copies: keep them private even if the directory existed with a wider mode.
        if (!OperatingSystem.IsWindows()) Fs.SetMode(null, Directory, 0x1C0);
    }
}
