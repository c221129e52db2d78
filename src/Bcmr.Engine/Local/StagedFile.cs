using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Local;

/// <summary>
/// A file being written beside its destination, under a staging name (<see cref="Temporaries.StagingPath"/>, one per
/// attempt) or the destination's partial name (<see cref="Temporaries.PartialPath"/>, kept across runs for resume),
/// and moved under the final name only by <see cref="Commit"/>. Every "write a file safely" pipeline (local copy,
/// resumable copy, download, the server's Put) goes through one, so the rules live here once: the final name never
/// holds a partial file; whatever fails, the staged file is removed unless the pipeline chose to keep it for resume;
/// a source that changed while it was read, or bytes that do not read back as they were hashed, are never committed.
/// <para>Data may be written at any offset from any thread (<see cref="Write"/> is a positioned write), so blocks may
/// arrive out of order. Commit, keep and abandon belong to one thread, or to callers that serialise them.</para>
/// </summary>
internal sealed class StagedFile : IDisposable
{
    private SafeFileHandle? _handle;
    private SafeFileHandle? _source;
    private string? _sourcePath;
    private FileMeta _sourceMeta;
    private State _state;

    private enum State { Open, Committed, Kept, Abandoned }

    /// <summary>The name the bytes are written under.</summary>
    public string Path { get; }
    /// <summary>The final name, as it is reached (through a pinned directory on the server).</summary>
    public string Destination { get; }
    /// <summary>The final name as users know it: errors about the staged file are reported against it.</summary>
    public string Shown { get; }
    /// <summary>Where <see cref="Path"/> is the destination's partial name, which <see cref="Keep"/> leaves in place.</summary>
    public bool IsPartial { get; }

    private StagedFile(string path, string destination, string shown, SafeFileHandle handle, bool isPartial)
    {
        Path = path;
        Destination = destination;
        Shown = shown;
        _handle = handle;
        IsPartial = isPartial;
    }

    public SafeFileHandle Handle => _handle ?? throw new ObjectDisposedException(Path);

    /// <summary>A new, locked staging file beside <paramref name="destination"/> (stale ones of the directory swept
    /// first). <paramref name="stagingPath"/> and <paramref name="directoryShownAs"/> serve callers that reach the
    /// directory another way (the server's pinned descriptor).</summary>
    public static StagedFile CreateTemporary(string destination, uint mode, string? shown = null, string? stagingPath = null,
        string? directoryShownAs = null)
    {
        var path = stagingPath ?? Temporaries.StagingPath(destination);
        var handle = Temporaries.CreateStaging(path, mode, directoryShownAs);
        return new StagedFile(path, destination, shown ?? destination, handle, isPartial: false);
    }

    /// <summary>The destination's partial file, created if absent, held under an exclusive lock (a second bcmr
    /// writing the same destination is refused) and never truncated here: the caller decides what it keeps.</summary>
    public static StagedFile OpenPartial(string destination, uint mode, string? shown = null)
    {
        var path = Temporaries.PartialPath(destination);
        shown ??= destination;
        var handle = Fs.OpenExclusive(path, mode, shown);
        return new StagedFile(path, destination, shown, handle, isPartial: true);
    }

    /// <summary>A partial an earlier attempt kept as <paramref name="partialPath"/>, continued under a new staging
    /// name: the rename claims it, so two writers never continue the same partial, and the sweep sees it locked again.
    /// <see cref="Keep"/> gives it back.</summary>
    public static StagedFile ClaimPartial(string partialPath, string stagingPath, string destination, string shown)
    {
        Fs.Rename(partialPath, stagingPath, replace: false);
        SafeFileHandle handle;
        try { handle = Fs.OpenReadWrite(stagingPath); }
        catch
        {
            try { Fs.Rename(stagingPath, partialPath, replace: false); }
            catch (BcmrException) { Fs.TryDeleteFile(stagingPath); }
            throw;
        }
        Fs.TryLock(handle);
        return new StagedFile(stagingPath, destination, shown, handle, isPartial: false);
    }

    // Errors of the staged file's I/O name the destination, as users know it (disk full, quota, fsync).

    /// <summary>Positioned write: safe from several threads at once, at any offset.</summary>
    public void Write(ReadOnlySpan<byte> data, long offset) => Fs.Write(Handle, data, offset, Shown);

    /// <summary>The read/write loop's writer: hashes (when asked) and writes one block slice by slice.</summary>
    public void HashAndWrite(ReadOnlySpan<byte> block, Blake3Hasher? hasher, long offset) =>
        DataCopier.HashAndWrite(block, hasher, Handle, Shown, offset);

    public void SetLength(long length) => Fs.SetLength(Handle, length, Shown);

    public long Length => Fs.Fstat(Handle, Shown).Size;

    /// <summary>What <see cref="DataCopier"/> writes into.</summary>
    public DataCopier.Target Target => new(Handle, Path, Shown);

    // ---- the source ----------------------------------------------------------------------------------------------

    /// <summary>Remembers the source as it was opened, for <see cref="EnsureSourceUnchanged"/> and
    /// <see cref="PreserveFromSource"/>.</summary>
    public void WatchSource(SafeFileHandle source, string path, in FileMeta meta)
    {
        _source = source;
        _sourcePath = path;
        _sourceMeta = meta;
    }

    /// <summary>A source that grew, shrank or was rewritten while we read it must not be committed as a copy of it:
    /// its size and modification time now against those at open, and the bytes read against that size.</summary>
    public void EnsureSourceUnchanged(long copied)
    {
        var (h, src) = WatchedSource();
        EnsureUnchanged(h, src, _sourceMeta, copied);
    }

    /// <summary>The same check for a source that is read without being staged anywhere here (an upload).</summary>
    public static void EnsureUnchanged(SafeFileHandle h, string src, in FileMeta before, long copied)
    {
        var after = Fs.Fstat(h, src);
        if (copied != before.Size || after.Size != before.Size || after.MtimeSec != before.MtimeSec || after.MtimeNsec != before.MtimeNsec)
            throw new BcmrException(BcmrErrorCode.SourceChanged, src,
                $"{src}: changed while being copied (size {before.Size} -> {after.Size}, read {copied}); not committed");
    }

    private (SafeFileHandle, string) WatchedSource() =>
        _source is null || _sourcePath is null ? throw new InvalidOperationException("no source watched") : (_source, _sourcePath);

    // ---- verification --------------------------------------------------------------------------------------------

    /// <summary>-V: the BLAKE3 of the staged bytes as read back from the file (<paramref name="length"/> is what the
    /// caller believes it holds).</summary>
    /// <param name="threads">Where a helper thread may be rented: with one, a file of more than a block is read back
    /// in whole subtrees on two threads (its hash merged from their chaining values), in about half the time.</param>
    public byte[] ReadBack(long length, CancellationToken ct, ThreadBudget? threads = null)
    {
        TestHooks.MaybeCorruptStaged(Handle, Shown, length);
        // Chosen by the length the caller expects, so a small file costs no fstat; the parallel read takes the file's
        // own length, since every byte it holds must be hashed.
        int helpers = length > BlockLedger.BlockSize ? threads?.Rent(1) ?? 0 : 0;
        if (helpers == 0) return DataCopier.HashFile(Handle, Path, Blake3Hasher.Create(), ct);
        try
        {
            long size = Length;
            var hasher = Blake3Hasher.Create();
            Blake3.HashPositioned(hasher, size, 1 + helpers, (span, offset) => Fs.ReadFull(Handle, span, offset, Path), Shown, ct);
            return hasher.Finalize();
        }
        catch (IOException e) // it shrank under us: something else writes to our staged file
        {
            throw new BcmrException(BcmrErrorCode.IoError, Shown, e.Message, e);
        }
        finally { threads!.Return(helpers); }
    }

    /// <summary>-V against the hash the bytes had on their way in; a mismatch is
    /// <see cref="BcmrErrorCode.VerifyMismatch"/> and the file is not committed.</summary>
    public byte[] Verify(byte[] expected, long length, CancellationToken ct, string? consequence = null, ThreadBudget? threads = null) =>
        Verified(ReadBack(length, ct, threads), expected, consequence);

    /// <summary>-V with the copy's hash already read back (beside the copy: <see cref="OverlappedVerify"/>).</summary>
    public byte[] Verified(byte[] written, byte[] expected, string? consequence = null)
    {
        if (!written.AsSpan().SequenceEqual(expected))
            throw new BcmrException(BcmrErrorCode.VerifyMismatch, Shown,
                $"{Shown}: verification failed: BLAKE3 of the copy ({Blake3.ToHex(written)}) differs from the source ({Blake3.ToHex(expected)}){consequence}");
        return written;
    }

    // ---- metadata ------------------------------------------------------------------------------------------------

    /// <summary>-p: mode, owner (where permitted), extended attributes, then times (last, since the others touch
    /// ctime only). Returns the attribute names the destination refused.</summary>
    public List<string>? PreserveFromSource()
    {
        var (h, src) = WatchedSource();
        Fs.SetMode(Handle, Path, _sourceMeta.Mode);
        Fs.TrySetOwner(Handle, Path, _sourceMeta);
        var dropped = Fs.CopyXattrs(h, src, Handle, Path);
        Fs.SetTimes(Handle, Path, _sourceMeta, noFollow: false);
        return dropped;
    }

    public void SetTimes(in FileMeta meta) => Fs.SetTimes(Handle, Path, meta, noFollow: false);

    /// <summary>Permission bits from elsewhere than a local source (a server's listing).</summary>
    public void SetMode(uint mode) => Fs.SetMode(Handle, Path, mode);

    // ---- the end -------------------------------------------------------------------------------------------------

    /// <summary>Moves the staged file under its final name. <paramref name="flush"/> makes its data durable first, so
    /// the rename never exposes bytes a crash could lose; <paramref name="flushDirectory"/> (the directory as it is
    /// reached, default the destination's parent) makes the rename itself durable. Without
    /// <paramref name="replace"/> an existing destination is refused, even one that appeared meanwhile.</summary>
    public void Commit(bool replace, bool flush, bool flushDirectory, string? directory = null)
    {
        if (_state != State.Open) throw new InvalidOperationException($"{Path}: already {_state}");
        if (flush) Fs.FlushToDisk(Handle, Shown);
        // Closed before the rename: its lock (which tells the stale sweep it is in use) would otherwise refuse .NET
        // readers of the final name until we close.
        CloseHandle();
        Fs.Rename(Path, Destination, replace);
        _state = State.Committed;
        if (flushDirectory) Fs.FlushDirectory(directory ?? FileCopier.ParentOf(Destination));
    }

    /// <summary>Keeps the bytes (the first <paramref name="length"/> of them, when given) for a later run to continue:
    /// a partial stays where it is; a staging file is renamed to <paramref name="partialPath"/> (replacing an older
    /// one). When that fails the error is thrown, and a staging file removed.</summary>
    public void Keep(long? length = null, bool flush = false, string? partialPath = null)
    {
        if (_state != State.Open) return;
        _state = State.Kept;
        try
        {
            if (_handle is not null)
            {
                if (length is { } l) Fs.SetLength(_handle, l, Shown);
                if (flush) Fs.FlushToDisk(_handle, Shown);
            }
            // Renamed while still locked: an unlocked staging file that a stalled transfer last wrote long ago is what
            // the stale sweep removes. Unlocked then, so that the next attempt of this process can open the partial.
            if (!IsPartial) Fs.Rename(Path, partialPath ?? throw new InvalidOperationException("a staging file needs a partial name to be kept"), replace: true);
            if (_handle is not null) Fs.Unlock(_handle);
        }
        catch
        {
            // A staging file that could not become the partial is nobody's; a partial is proven before any reuse
            // (chaining values, BLAKE3 against the source), so it stays.
            if (!IsPartial)
            {
                _state = State.Abandoned;
                Fs.TryDeleteFile(Path);
            }
            throw;
        }
    }

    /// <summary>Removes the staged file; the final name is untouched.</summary>
    public void Abandon()
    {
        if (_state != State.Open) return;
        _state = State.Abandoned;
        CloseHandle();
        Fs.TryDeleteFile(Path);
    }

    /// <summary>Whatever was not committed or kept is abandoned.</summary>
    public void Dispose()
    {
        Abandon();
        CloseHandle();
    }

    private void CloseHandle()
    {
        _handle?.Dispose();
        _handle = null;
    }

    /// <summary>An error about the staged name, reported against the destination (it names the staged file in
    /// brackets); any other error as it is.</summary>
    public BcmrException ForDestination(BcmrException e) => BcmrException.ForDestination(e, Path, Shown);
}
