using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// Requests that read the tree or make directories: Stat, List, Hash, Get, Mkdir, Resume, Truncate.
public sealed partial class ServeSession
{
    /// <summary>Deepest directory nesting List descends into.</summary>
    internal const int MaxListDepth = 1024;

    /// <summary>Stat follows symlinks (the jail already resolved them). Directories report size 0.</summary>
    private StatResponse HandleStat(StatRequest r)
    {
        var path = LegacyView(_jail.Resolve(r.Path));
        var meta = Fs.TryStat(path) ?? throw NotFound(path);
        bool dir = meta.Kind == EntryKind.Directory;
        return new StatResponse(dir ? 0 : (ulong)meta.Size, meta.MtimeSec, dir);
    }

    /// <summary>
    /// Recursive listing of a directory: every file and directory below it (not the directory itself), depth first,
    /// names in ordinal order, a directory before its contents; paths relative to the listed directory with '/'.
    /// Directories carry size 0. Symlinks: a link whose target (fully resolved) stays inside the root is listed as
    /// what it points to, with the target's size and mtime, and a linked directory is descended into unless it is one
    /// of the directories already being listed above it (a cycle); a link that leads outside the root, dangles or
    /// loops is skipped and noted on the log, so a listing never reveals or offers anything outside the root. FIFOs,
    /// sockets and devices are skipped, and so are our own staging and partial files (uploads in flight or
    /// unfinished, never content; recognised by <see cref="Temporaries.IsOurs"/>, so a user's file that only looks like
    /// one is listed like any other). An unreadable directory fails the whole List (the protocol has no per-entry
    /// errors, and a silent gap would look like a complete tree). A listing that does not fit in one frame
    /// (<see cref="Wire.MaxPayload"/>) is an error.
    /// </summary>
    private ListResponse HandleList(ListRequest r) =>
        new(Listing(r.Path, withMeta: false).ConvertAll(e => new ListEntry(e.Path, e.Size, e.Mtime, e.IsDir)));

    /// <summary>ListMeta: List's entries with their mtime nanoseconds and modes (<see cref="Features.Meta"/>).</summary>
    private ListMetaResponse HandleListMeta(ListMetaRequest r) => new(Listing(r.Path, withMeta: true));

    private List<MetaEntry> Listing(string clientPath, bool withMeta)
    {
        var path = _jail.Resolve(clientPath);
        var meta = Fs.TryStat(path) ?? throw NotFound(path);
        if (meta.Kind != EntryKind.Directory)
            throw new BcmrException(BcmrErrorCode.NotADirectory, path, $"{path}: Not a directory");
        var entries = new List<MetaEntry>();
        long size = 1 + 4;
        var ancestors = new HashSet<(ulong, ulong)> { (meta.Device, meta.Inode) };
        ListInto(path, path, "", entries, ref size, ancestors, 1, withMeta ? 8 : 0);
        return entries;
    }

    /// <param name="extra">Bytes each entry takes on the wire beyond a List entry (ListMeta's nanoseconds and mode).</param>
    private void ListInto(string listed, string dir, string prefix, List<MetaEntry> entries, ref long size,
        HashSet<(ulong, ulong)> ancestors, int depth, int extra)
    {
        if (depth > MaxListDepth)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, dir, $"{dir}: directories nested more than {MaxListDepth} deep");
        foreach (var name in ReadDirectory(dir))
        {
            if (Temporaries.IsOurs(dir, name)) continue;
            var full = dir + "/" + name;
            var rel = prefix + name;
            var meta = Fs.TryLstat(full);
            if (meta is null) continue; // removed while we listed
            var target = full;
            if (meta.Value.Kind == EntryKind.Symlink)
            {
                var resolved = _jail.TryResolveLocal(full);
                var targetMeta = resolved is null ? null : Fs.TryStat(resolved);
                if (targetMeta is null)
                {
                    Log($"list {listed}: skipped symlink {rel}: it leads outside the root, dangles or loops");
                    continue;
                }
                meta = targetMeta;
                target = resolved!;
            }
            var m = meta.Value;
            if (m.Kind is not (EntryKind.File or EntryKind.Directory)) continue;
            bool isDir = m.Kind == EntryKind.Directory;
            var entry = new MetaEntry(rel, isDir ? 0 : (ulong)m.Size, m.MtimeSec, m.MtimeNsec, m.Mode & 0xFFFu, isDir);
            size += entry.EncodedSize - 8 + extra;
            if (size > Wire.MaxPayload)
                throw new BcmrException(BcmrErrorCode.Unsupported, listed,
                    $"{listed}: the listing does not fit in one frame (more than {entries.Count} entries, over {Wire.MaxPayload} bytes); list a subdirectory");
            entries.Add(entry);
            if (!isDir) continue;
            if (!ancestors.Add((m.Device, m.Inode)))
            {
                Log($"list {listed}: not descending into {rel}: it links back to a directory above it");
                continue;
            }
            ListInto(listed, target, rel + "/", entries, ref size, ancestors, depth + 1, extra);
            ancestors.Remove((m.Device, m.Inode));
        }
    }

    private static List<string> ReadDirectory(string dir)
    {
        try
        {
            var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false };
            var names = new System.IO.Enumeration.FileSystemEnumerable<string>(dir,
                (ref System.IO.Enumeration.FileSystemEntry e) => e.FileName.ToString(), options).ToList();
            names.Sort(StringComparer.Ordinal);
            return names;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw BcmrException.FromIo(e, dir);
        }
    }

    /// <summary>BLAKE3 of the bytes in [offset, offset + limit) (to the end of the file when limit is None). A range
    /// reaching past the end is cut at the end, so an offset beyond it hashes no bytes (bcmr 0.6 does the same).</summary>
    private HashResponse HandleHash(HashRequest r)
    {
        var path = LegacyView(_jail.Resolve(r.Path));
        using var h = OpenRegular(path);
        var before = Fs.Fstat(h, path);
        long size = before.Size;
        long start = (long)Math.Min(r.Offset, (ulong)size);
        long end = r.Limit is { } limit ? (long)Math.Min((ulong)size, (ulong)start + Math.Min(limit, (ulong)size)) : size;
        // A whole file's hash is remembered: a repeated --checksum sync reads only what changed since.
        bool whole = start == 0 && end == size;
        if (whole && Hashes.TryGet(path, before) is { } known) return new HashResponse(known);
        var hasher = Blake3Hasher.Rent();
        HashRange(h, path, start, end - start, hasher);
        var hex = Hex(hasher.Finalize());
        Blake3Hasher.Return(hasher);
        if (whole && before.UnchangedAt(Fs.Fstat(h, path))) Hashes.Put(path, before, hex);
        return new HashResponse(hex);
    }

    /// <summary>
    /// Get{path, offset}: the bytes from offset to the end, in Data frames of up to 4 MiB, then Ok with the hex BLAKE3
    /// of the whole file (for offset &gt; 0 the server hashes the prefix it does not send, so the client can check
    /// the file it assembled), or Ok without hash under <see cref="Caps.Fast"/>. The size is taken when the file is
    /// opened; if the file changes while it is sent, the Data frames are followed by an Error instead of Ok.
    /// An offset beyond the end is an error.
    /// </summary>
    private void HandleGet(GetRequest r)
    {
        SafeFileHandle h;
        string path;
        FileMeta before;
        try
        {
            path = _jail.Resolve(r.Path);
            h = OpenRegular(path);
            before = Fs.Fstat(h, path);
        }
        catch (BcmrException e)
        {
            Fail(e);
            return;
        }
        using (h)
        {
            try
            {
                if (r.Offset > (ulong)before.Size)
                    throw new BcmrException(BcmrErrorCode.InvalidArgument, path,
                        $"{path}: offset {r.Offset} is beyond the end of the file ({before.Size} bytes)");
                long pos = (long)r.Offset;
                var hasher = Fast ? null : Blake3Hasher.Rent();
                if (hasher is not null && pos > 0) HashRange(h, path, 0, pos, hasher);
                if (hasher is null) TrySendWithSendfile(h, path, ref pos, before.Size);
                pos = SendFile(h, path, pos, before.Size, hasher);
                var after = Fs.Fstat(h, path);
                if (pos != before.Size || after.Size != before.Size || after.MtimeSec != before.MtimeSec || after.MtimeNsec != before.MtimeNsec)
                    throw new BcmrException(BcmrErrorCode.SourceChanged, path,
                        $"{path}: changed while being sent (size {before.Size} -> {after.Size}, sent up to {pos})");
                Send(new OkResponse(hasher is null ? null : Hex(hasher.Finalize())));
                if (hasher is not null) Blake3Hasher.Return(hasher);
            }
            catch (BcmrException e)
            {
                Fail(e);
            }
        }
    }

    /// <summary>mkdir -p inside the root; an existing directory is fine, an existing non-directory is an error.</summary>
    private OkResponse HandleMkdir(MkdirRequest r)
    {
        var path = _jail.Resolve(r.Path);
        if (path == _jail.Root) return OkResponse.Empty;
        using var dir = PinParent(path);
        try
        {
            try { Fs.MakeDirectory(dir.Target, 0x1FF); }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists)
            {
                if (Fs.TryStat(dir.Target) is not { Kind: EntryKind.Directory })
                    throw new BcmrException(BcmrErrorCode.NotADirectory, path, $"{path}: File exists (not a directory)");
            }
            if (Sync) Fs.FlushDirectory(dir.Opened);
        }
        catch (BcmrException e) { throw new BcmrException(e.Code, path, dir.Shown(e.Message), e); }
        return OkResponse.Empty;
    }

    /// <summary>The directory of <paramref name="path"/> held open, created where missing (see <see cref="RootJail.Pin"/>).</summary>
    private PinnedDirectory PinParent(string path)
    {
        if (!_jail.Pins) MakeDirectories(FileCopier.ParentOf(path));
        return _jail.Pin(path, createParents: true);
    }

    /// <summary>
    /// Resume{path}: where an upload of <paramref name="r"/>'s path can continue. When a partial upload exists
    /// (<see cref="Temporaries.PartialPath"/>, see <see cref="HandlePut"/>) it reports that file; otherwise the final file; otherwise size 0.
    /// The hash is the hex BLAKE3 of the last full 4 MiB block (the one ending at floor(size / 4 MiB) × 4 MiB), absent
    /// when the file is shorter than one block.
    /// </summary>
    private ResumeResponse HandleResume(ResumeRequest r)
    {
        var path = _jail.Resolve(r.Path);
        var partial = Temporaries.PartialPath(path);
        string? report = Fs.TryLstat(partial) is { Kind: EntryKind.File } ? partial : null;
        if (report is null)
        {
            var meta = Fs.TryStat(path);
            if (meta is null) return new ResumeResponse(0, null);
            if (meta.Value.Kind == EntryKind.Directory)
                throw new BcmrException(BcmrErrorCode.IsADirectory, path, $"{path}: Is a directory");
            report = path;
        }
        using var h = OpenRegular(report);
        long size = Fs.Fstat(h, report).Size;
        if (size < Wire.MaxBlock) return new ResumeResponse((ulong)size, null);
        long blockStart = (size / Wire.MaxBlock - 1) * Wire.MaxBlock;
        var hasher = Blake3Hasher.Create();
        HashRange(h, report, blockStart, Wire.MaxBlock, hasher);
        return new ResumeResponse((ulong)size, Hex(hasher.Finalize()));
    }

    /// <summary>
    /// ResumeProof{path, source size} (<see cref="Caps.Extended"/>): what an upload of the path can continue from (the
    /// partial upload, else the file under its final name, else nothing) and the BLAKE3 of all of it, so that the
    /// client continues only from bytes proven equal to its source's prefix and skips only a file proven whole. No
    /// hash when it holds more than the source: that is never continued.
    /// </summary>
    private ResumeProofResponse HandleResumeProof(ResumeProofRequest r)
    {
        var path = _jail.Resolve(r.Path);
        var partial = Temporaries.PartialPath(path);
        byte held = ResumeProofResponse.Partial;
        string report = partial;
        if (Fs.TryLstat(partial) is not { Kind: EntryKind.File })
        {
            var meta = Fs.TryStat(path);
            if (meta is null) return new ResumeProofResponse(ResumeProofResponse.Nothing, 0, 0, null);
            if (meta.Value.Kind == EntryKind.Directory)
                throw new BcmrException(BcmrErrorCode.IsADirectory, path, $"{path}: Is a directory");
            held = ResumeProofResponse.Final;
            report = path;
        }
        using var h = OpenRegular(report);
        var m = Fs.Fstat(h, report);
        if ((ulong)m.Size > r.SourceSize) return new ResumeProofResponse(held, (ulong)m.Size, m.MtimeSec, null);
        var hasher = Blake3Hasher.Create();
        HashRange(h, report, 0, m.Size, hasher);
        return new ResumeProofResponse(held, (ulong)m.Size, m.MtimeSec, Hex(hasher.Finalize()));
    }

    /// <summary>
    /// What a bcmr 0.6 client (no <see cref="Caps.Extended"/>) sees at <paramref name="path"/> for Stat and Hash: an
    /// interrupted upload's partial file when no file holds the final name yet. bcmr 0.6 writes uploads in place, so
    /// its client resumes by looking at the final name (Stat, then Hash of the prefix, then Put at an offset); showing
    /// it the partial lets it continue what it sent instead of starting over, and its Put at that offset continues
    /// the partial here. Our own clients ask with ResumeProof and see the final name as it is.
    /// </summary>
    private string LegacyView(string path)
    {
        if (Extended || Fs.TryLstat(path) is not null) return path;
        var partial = Temporaries.PartialPath(path);
        return Fs.TryLstat(partial) is { Kind: EntryKind.File } ? partial : path;
    }

    /// <summary>
    /// Truncate{path, size}: the file becomes <c>size</c> zero bytes (sparse), as bcmr 0.6 prepares a file for ranged
    /// writes. Done like every write here: a staging file of that size renamed over the final name (keeping the old
    /// file's mode), parents created as needed.
    /// </summary>
    private OkResponse HandleTruncate(TruncateRequest r)
    {
        var path = _jail.Resolve(r.Path);
        if (r.Size > long.MaxValue)
            throw new BcmrException(BcmrErrorCode.InvalidArgument, path, $"{path}: size {r.Size} is too large");
        var existing = Fs.TryStat(path);
        if (existing is { Kind: EntryKind.Directory })
            throw new BcmrException(BcmrErrorCode.IsADirectory, path, $"{path}: Is a directory");
        using var dir = PinParent(path);
        var parent = dir.Opened;
        // A sparse file costs nothing to make, but every later Hash or Get of it reads all of it: no larger than the
        // ranged writes it is made for could ever fill.
        if (Fs.AvailableBytes(parent) is long free && (long)r.Size > free + (existing?.Size ?? 0))
            throw new BcmrException(BcmrErrorCode.DiskFull, path,
                $"{path}: Truncate to {r.Size} bytes refused: only {free} bytes are free on its filesystem (No space left on device)");
        try
        {
            using var staged = CreateStaging(dir, path, existing);
            staged.SetLength((long)r.Size);
            staged.Commit(replace: true, flush: Sync, flushDirectory: Sync, directory: parent);
        }
        catch (BcmrException e) { throw new BcmrException(e.Code, path, dir.Shown(e.Message), e); }
        return OkResponse.Empty;
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private static BcmrException NotFound(string path) =>
        new(BcmrErrorCode.NotFound, path, $"{path}: No such file or directory");

    /// <summary>Opens a path that must be a regular file for reading.</summary>
    private SafeFileHandle OpenRegular(string path)
    {
        var meta = Fs.TryStat(path) ?? throw NotFound(path);
        if (meta.Kind == EntryKind.Directory)
            throw new BcmrException(BcmrErrorCode.IsADirectory, path, $"{path}: Is a directory");
        if (meta.Kind != EntryKind.File)
            throw new BcmrException(BcmrErrorCode.SpecialFile, path, $"{path}: not a regular file");
        var h = Fs.OpenRead(path);
        try { _jail.OpenedInside(h, path); }
        catch
        {
            h.Dispose();
            throw;
        }
        return h;
    }

    /// <summary>Feeds <paramref name="count"/> bytes from <paramref name="offset"/> to the hasher; a file that ends
    /// earlier is an error (it changed under us).</summary>
    private void HashRange(SafeFileHandle h, string path, long offset, long count, Blake3Hasher hasher)
    {
        const long Step = 16L * Wire.MaxBlock;
        for (long done = 0; done < count;)
        {
            StopIfClientGone(path);
            long want = Math.Min(Step, count - done);
            long got = DataCopier.HashRange(h, path, offset + done, want, hasher);
            done += got;
            if (got < want)
                throw new BcmrException(BcmrErrorCode.SourceChanged, path, $"{path}: ended at {offset + done} while being hashed (expected {count - done} more bytes)");
        }
    }

    /// <summary>mkdir -p: creates every missing directory down to <paramref name="path"/> (a canonical path inside
    /// the root, so the missing part holds no symlinks).</summary>
    private void MakeDirectories(string path)
    {
        if (_jail.IsKnownDirectory(path)) return;
        var missing = new Stack<string>();
        var probe = path;
        while (true)
        {
            var meta = Fs.TryStat(probe);
            if (meta is { Kind: EntryKind.Directory }) break;
            if (meta is not null)
                throw new BcmrException(BcmrErrorCode.NotADirectory, probe,
                    probe == path ? $"{probe}: File exists (not a directory)" : $"{probe}: Not a directory");
            missing.Push(probe);
            var parent = FileCopier.ParentOf(probe);
            if (parent == probe || !_jail.Contains(parent)) break;
            probe = parent;
        }
        while (missing.Count > 0)
        {
            var dir = missing.Pop();
            try { Fs.MakeDirectory(dir, 0x1FF); }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists && Fs.TryStat(dir) is { Kind: EntryKind.Directory }) { }
        }
        _jail.RememberDirectory(path);
    }

    /// <summary>A new staging file beside <paramref name="dst"/> in the pinned <paramref name="dir"/> (mode 0666 less
    /// the umask, or the mode of the file it will replace); errors name the destination, not the staging name.</summary>
    private static StagedFile CreateStaging(PinnedDirectory dir, string dst, FileMeta? existing)
    {
        var staging = dir.Name(Temporaries.StagingPath(dst));
        StagedFile staged;
        try { staged = StagedFile.CreateTemporary(dir.Target, 0x1B6, shown: dst, stagingPath: staging, directoryShownAs: FileCopier.ParentOf(dst)); }
        catch (BcmrException e)
        {
            throw new BcmrException(e.Code, dst, e.Message.Replace(staging, dst, StringComparison.Ordinal), e);
        }
        if (existing is { Kind: EntryKind.File } old)
        {
            try { Fs.SetMode(staged.Handle, staging, old.Mode); }
            catch (BcmrException) { /* keep the default mode rather than fail the write */ }
        }
        return staged;
    }
}
