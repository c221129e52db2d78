namespace Bcmr.Engine.Client;

/// <summary>
/// The servers, reached over ssh, that said they have AES hardware (<see cref="Protocol.Features.AesHardware"/> in
/// their Welcome), remembered for the next connection's cipher choice (<see cref="SshCiphers"/>). One line per
/// connection in <c>ssh-peers-aes</c> of the data directory: the target, a tab, the ssh command. Every Welcome over ssh
/// updates it, so a host that changes hardware is wrong for one connection at most. A cache: a file that cannot be
/// read or written only means ssh's own order for the next connection.
/// </summary>
public static class SshPeers
{
    public const string FileName = "ssh-peers-aes";

    /// <summary>Lines kept at most (the oldest go first).</summary>
    private const int MaxEntries = 256;

    /// <summary>The line that stands for this connection, or null when it cannot be one line.</summary>
    public static string? Key(RemoteSpec remote, string? sshCommand)
    {
        var key = remote.Target + "\t" + SshChannel.SshCommandOrDefault(sshCommand);
        return key.AsSpan().ContainsAny('\n', '\r') ? null : key;
    }

    public static bool HasAes(string dataDirectory, string? key)
    {
        if (key is null) return false;
        try { return ReadAll(dataDirectory).Contains(key); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>Records what the server of <paramref name="key"/> said; writes only when that changes what is kept.</summary>
    public static void Remember(string dataDirectory, string? key, bool hasAes)
    {
        if (key is null) return;
        try
        {
            var lines = ReadAll(dataDirectory);
            if (lines.Contains(key) == hasAes) return;
            lines.Remove(key);
            if (hasAes) lines.Add(key);
            if (lines.Count > MaxEntries) lines.RemoveRange(0, lines.Count - MaxEntries);
            Directory.CreateDirectory(dataDirectory);
            var path = Path.Join(dataDirectory, FileName);
            // Written whole under another name and renamed over the old, so a reader never sees half of it; two
            // writers at once keep one's lines, which costs the other host ssh's own order for one connection.
            var temp = path + "." + Environment.ProcessId + ".tmp";
            try
            {
                File.WriteAllLines(temp, lines);
                File.Move(temp, path, overwrite: true);
            }
            finally { File.Delete(temp); }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static List<string> ReadAll(string dataDirectory)
    {
        var path = Path.Join(dataDirectory, FileName);
        return File.Exists(path) ? [.. File.ReadAllLines(path).Where(l => l.Length > 0)] : [];
    }
}
