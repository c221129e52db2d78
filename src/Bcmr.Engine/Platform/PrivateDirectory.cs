namespace Bcmr.Engine.Platform;

/// <summary>
/// A directory for sockets only this user may reach (anyone who can connect to an ssh master's socket or a resident
/// server's can act as us): <c>$XDG_RUNTIME_DIR/NAME</c> when that path is short enough for the sockets to go in it,
/// else <c>/tmp/NAME-UID</c>. Made with mode 0700 when missing; one that exists must be a directory owned by us with
/// mode 0700, or it is refused by name.
/// </summary>
public static class PrivateDirectory
{
    /// <summary>The directory, made if missing; null when no candidate is at most <paramref name="maxLength"/> bytes
    /// long. <paramref name="purpose"/> begins the refusal ("not used for --ssh-persist").</summary>
    public static string? Ensure(string? runtime, string name, int maxLength, string purpose)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(runtime) && Directory.Exists(runtime)) candidates.Add(Path.Combine(runtime, name));
        candidates.Add(Path.Combine(Path.GetTempPath(), $"{name}-{(OperatingSystem.IsWindows() ? 0 : Native.LibC.geteuid())}"));
        var dir = candidates.FirstOrDefault(d => System.Text.Encoding.UTF8.GetByteCount(d) <= maxLength);
        if (dir is null) return null;
        if (Fs.TryLstat(dir) is null)
        {
            try { Fs.MakeDirectory(dir, 0x1C0); }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.AlreadyExists) { }
        }
        if (OperatingSystem.IsWindows()) return dir;
        var meta = Fs.TryLstat(dir);
        if (meta is not { Kind: EntryKind.Directory } m || m.Uid != Native.LibC.geteuid() || (m.Mode & 0x1FF) != 0x1C0)
            throw new BcmrException(BcmrErrorCode.PermissionDenied, dir,
                $"{dir}: {purpose}: its sockets must be in a directory owned by this user with mode 0700 " +
                (meta is null ? "(it could not be made)" : meta.Value.Kind != EntryKind.Directory ? "(it is not a directory)"
                    : $"(it has owner {meta.Value.Uid}, mode {Convert.ToString(meta.Value.Mode & 0x1FF, 8)})"));
        return dir;
    }
}
