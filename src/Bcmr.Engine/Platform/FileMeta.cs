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

    public bool LooksSparse => Kind == EntryKind.File && AllocatedBytes + 4096 <= Size;

    public DateTime MtimeUtc => DateTime.UnixEpoch.AddTicks(MtimeSec * TimeSpan.TicksPerSecond + MtimeNsec / 100);
}
