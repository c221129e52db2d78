using Bcmr.Engine.Hashing;

namespace Bcmr.Engine.Local;

/// <summary>What a destination already holds for a file: <see cref="Size"/> bytes, in a partial file or under the
/// final name, and whether that file's modification time is the source's (false when not known).</summary>
internal readonly record struct HeldCopy(long Size, bool UnderFinalName, bool SameMtime = false);

/// <summary>
/// What the resume rules decided for one file: its <see cref="Decision"/>; the bytes kept, as a prefix
/// (<see cref="Offset"/>) or, for a striped file, as blocks anywhere in it (<see cref="KeptBlocks"/>: the chaining
/// value of each block kept, null for a hole); what proved them (<see cref="Compared"/>, as reported); and why held
/// bytes were not kept (<see cref="Note"/>).
/// </summary>
internal readonly record struct ResumeVerdict(ResumeDecision Decision, long Offset, string? Compared, string? Note, byte[]?[]? KeptBlocks = null)
{
    /// <summary>The final name already holds the whole file: nothing is written.</summary>
    public bool Complete => Decision == ResumeDecision.AlreadyComplete;
}

/// <summary>
/// The rules of -C, -s and -a in one place, for every direction (local, upload, download, striped or not). Each
/// copier gathers the proof its side can (a session's recorded blocks read back, the server's BLAKE3 of a prefix,
/// every block's chaining value from both ends); what the proof is worth is decided here:
/// <list type="number">
/// <item><see cref="Triage"/>, before anything is read: nothing held; more held than the source has (never
/// trusted); a shorter file under the final name that the writer cannot continue; -a, which trusts the length; -C on a
/// final file of the source's size and modification time. Anything else needs proof.</item>
/// <item><see cref="FromPrefix"/> and <see cref="FromBlocks"/>: only bytes proven equal are kept, as a prefix or as
/// blocks with holes; nothing proven is a start over with the reason.</item>
/// </list>
/// Bytes kept under the final name that are the whole file make it complete; anything less is continued (a partial
/// of the full size is only renamed).
/// </summary>
internal static class ResumePlanner
{
    public static readonly ResumeVerdict Fresh = new(ResumeDecision.Fresh, 0, null, null);

    /// <param name="holder">How the held bytes are named in a note ("the remote partial upload").</param>
    /// <param name="canContinueFinal">False where the writer cannot move a final file aside to continue it (a
    /// download into a partial file): a shorter final file is then copied again.</param>
    /// <returns>The verdict, or null when the held bytes must be proven (-C and -s).</returns>
    public static ResumeVerdict? Triage(ResumeMode mode, long sourceSize, HeldCopy held, string holder, bool canContinueFinal = true)
    {
        if (held.Size == 0) return Fresh;
        if (held.Size > sourceSize)
            return StartOver(null, $"{holder} is longer than the source ({held.Size} > {sourceSize} bytes); copied again");
        if (held.UnderFinalName && held.Size < sourceSize && !canContinueFinal)
            return StartOver(null, $"{holder} is shorter than the source; copied again");
        if (mode == ResumeMode.Append)
            return Kept(sourceSize, held, held.Size, "size",
                held.UnderFinalName && held.Size == sourceSize ? $"{holder} has the source's size; -a takes it as complete" : null);
        if (mode == ResumeMode.Resume && held.UnderFinalName && held.SameMtime && held.Size == sourceSize)
            return Kept(sourceSize, held, held.Size, "size+mtime", $"{holder} has the source's size and modification time; already complete");
        return null;
    }

    /// <summary>After proof of a prefix: its first <paramref name="proven"/> bytes are the source's. <paramref name="mismatch"/>
    /// says why, when nothing is proven; <paramref name="note"/> is kept with a verdict that keeps bytes.</summary>
    public static ResumeVerdict FromPrefix(long sourceSize, HeldCopy held, long proven, string compared, string mismatch, string? note = null) =>
        proven <= 0 ? StartOver(compared, mismatch) : Kept(sourceSize, held, Math.Min(proven, sourceSize), compared, note);

    /// <summary>After proof block by block (a striped file): <paramref name="kept"/> holds the chaining value of each
    /// block proven equal, null for the others. Striped ranges are written into the partial file, so a file under the
    /// final name is either complete or copied again; a partial file keeps its proven blocks wherever they are.</summary>
    public static ResumeVerdict FromBlocks(long sourceSize, HeldCopy held, byte[]?[] kept, string holder)
    {
        const string compared = "blake3-blocks";
        int count = kept.Count(v => v is not null);
        long blocks = (sourceSize + BlockLedger.BlockSize - 1) / BlockLedger.BlockSize;
        if (held.UnderFinalName)
            return held.Size == sourceSize && count == blocks
                ? new ResumeVerdict(ResumeDecision.AlreadyComplete, sourceSize, compared, "already complete (every 4 MiB block's BLAKE3 equals the source's)")
                : StartOver(compared, $"{holder} differs from the source (BLAKE3 of its 4 MiB blocks); copied again");
        if (count == 0) return StartOver(compared, $"no 4 MiB block of {holder} matches the source; copied again");
        return new ResumeVerdict(ResumeDecision.Resumed, 0, compared, null, kept);
    }

    /// <summary>The bytes of a prefix proven at the source's full size under the final name: complete; else continued
    /// after them (a partial of the full size continues with nothing left to move, and is renamed).</summary>
    private static ResumeVerdict Kept(long sourceSize, HeldCopy held, long proven, string compared, string? note) =>
        held.UnderFinalName && proven == sourceSize
            ? new ResumeVerdict(ResumeDecision.AlreadyComplete, sourceSize, compared, note)
            : new ResumeVerdict(ResumeDecision.Resumed, proven, compared, note);

    private static ResumeVerdict StartOver(string? compared, string note) => new(ResumeDecision.StartedOver, 0, compared, note);
}
