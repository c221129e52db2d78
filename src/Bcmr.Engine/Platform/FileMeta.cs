namespace Bcmr.Engine.Platform;

public enum EntryKind { File, Directory, Symlink, Other }

/// <summary>One entry of a directory listing (<see cref="Fs.ListDirectory"/>).</summary>
internal readonly record struct DirEntry(string Name, EntryKind Kind, long Size);

/// <summary>What we know about one filesystem entry: enough to decide, copy, preserve and detect change.</summary>
internal readonly record struct FileMeta(
    EntryKind Kind,
    long Size,
    uint Mode,            // permission bits incl. setuid/setgid/sticky (07777)
    long MtimeSec, uint MtimeNsec,
    long AtimeSec, uint AtimeNsec,
    ulong Inode, ulong Device,
    uint Uid, uint Gid,
    long AllocatedBytes,  // st_blocks * 512; less than Size means the file has holes
    long CtimeSec = 0, uint CtimeNsec = 0)  // status change: any write, chmod or rename; no call sets it back
{
    /// <summary>Inode and device identify a file across paths; zero means the platform did not tell us.</summary>
    public bool SameFileAs(in FileMeta other) =>
        Inode != 0 && Inode == other.Inode && Device == other.Device;

    /// <summary>Whether <paramref name="later"/>, a later stat of the same file, shows no change since this one: same
    /// size, mtime and ctime (any write, chmod or rename moves ctime, and no call sets it back). A hash read between
    /// the two stats may be remembered for the file.</summary>
    public bool UnchangedAt(in FileMeta later) =>
        Size == later.Size && MtimeSec == later.MtimeSec && MtimeNsec == later.MtimeNsec
        && CtimeSec == later.CtimeSec && CtimeNsec == later.CtimeNsec;

    public bool LooksSparse => Kind == EntryKind.File && AllocatedBytes + 4096 <= Size;

    public DateTime MtimeUtc => Utc(MtimeSec, MtimeNsec);

    public DateTime CtimeUtc => Utc(CtimeSec, CtimeNsec);

    private static DateTime Utc(long sec, uint nsec) => DateTime.UnixEpoch.AddTicks(sec * TimeSpan.TicksPerSecond + nsec / 100);
}
