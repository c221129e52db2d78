using Bcmr.Engine.Platform;

namespace Bcmr.Engine.Client;

/// <summary>
/// Which cipher bcmr asks its ssh for first. OpenSSH offers ChaCha20-Poly1305 first, the right choice for a machine
/// without AES instructions; where both ends have them, AES-GCM costs the ssh client and sshd a fraction of the CPU, and
/// a copy that ssh's cipher bounds takes that much less time (bench/RESULTS.md, issue 17, session 22). So bcmr passes
/// <c>-o Ciphers=</c> OpenSSH's own default set with AES-GCM moved to the front (<see cref="AesFirst"/>) when all of:
/// <list type="bullet">
/// <item>this machine has AES hardware (<see cref="AesHardware"/>), and the server said so of its own in an earlier
/// session over the same ssh command and target (<see cref="SshPeers"/>): a first connection keeps ssh's order, and a
/// server without it (a Raspberry Pi) never gets AES-GCM from us;</item>
/// <item>the ssh program is OpenSSH's <c>ssh</c>;</item>
/// <item>nobody chose ciphers: not the ssh command (<c>-c</c>, <c>-o Ciphers</c>), not a configuration file ssh reads
/// (its <c>-F</c> file, or <c>~/.ssh/config</c> and the system's <c>ssh_config</c>, and what they Include), wherever in
/// them the keyword stands (any Host or Match block counts).</item>
/// </list>
/// Nothing is weakened: the same six ciphers ssh offers by default, in another order, and the server still picks the
/// first of them it allows.
/// </summary>
public static class SshCiphers
{
    /// <summary>OpenSSH's default client cipher list (since 6.9, unchanged through 9.x) with AES-GCM first.</summary>
    public const string AesFirst = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr";

    /// <summary>ssh's options that take a value (OpenSSH 9's getopt string), so a cluster like <c>-qc x</c> is read
    /// as ssh reads it.</summary>
    private const string ValueOptions = "bceilmopBDEFIJLOPQRSwW";

    /// <summary>How deep ssh follows Include (its own limit).</summary>
    private const int MaxIncludeDepth = 16;

    /// <summary>The options to add to <paramref name="sshWords"/> (the ssh program and the user's options) for a
    /// server that has (<paramref name="peerHasAes"/>) AES hardware: <c>["-o", "Ciphers=…"]</c>, or none.
    /// <paramref name="home"/>: HOME (ssh's user configuration is looked for there and in the account's home);
    /// <paramref name="workingDirectory"/>: where ssh runs (a relative <c>-F</c> is its).</summary>
    public static string[] Options(IReadOnlyList<string> sshWords, bool peerHasAes, string? home, string? workingDirectory,
        string? systemConfig = null)
    {
        if (!peerHasAes || !AesHardware.Present || sshWords.Count == 0) return [];
        if (!IsOpenSsh(sshWords[0]) || CommandChooses(sshWords, out var configFiles)) return [];
        var homes = Homes(home);
        if (configFiles.Count > 0)
        {
            // Every -F given is read, whichever of them ssh takes.
            foreach (var file in configFiles)
            {
                if (file.Equals("none", StringComparison.Ordinal)) continue;
                var path = Path.IsPathRooted(file) ? file : Path.Join(workingDirectory ?? Directory.GetCurrentDirectory(), file);
                if (NamesCiphers(path, homes, UserIncludeBase(homes), 0)) return [];
            }
            return Prefer();
        }
        foreach (var h in homes)
            if (NamesCiphers(Path.Join(h, ".ssh", "config"), homes, Path.Join(h, ".ssh"), 0)) return [];
        var system = systemConfig ?? SystemConfig;
        return NamesCiphers(system, homes, Path.GetDirectoryName(system)!, 0) ? [] : Prefer();
    }

    private static string[] Prefer() => ["-o", "Ciphers=" + AesFirst];

    private static string SystemConfig => OperatingSystem.IsWindows()
        ? Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "ssh", "ssh_config")
        : "/etc/ssh/ssh_config";

    private static bool IsOpenSsh(string program) =>
        Path.GetFileName(program) is var name && (name == "ssh" || name.Equals("ssh.exe", StringComparison.OrdinalIgnoreCase));

    /// <summary>Whether the ssh command chooses ciphers itself (<c>-c</c>, <c>-o Ciphers…</c>); <paramref name="configFiles"/>:
    /// the files its <c>-F</c> names (with one, ssh reads no other configuration).</summary>
    internal static bool CommandChooses(IReadOnlyList<string> words, out List<string> configFiles)
    {
        configFiles = [];
        for (int i = 1; i < words.Count; i++)
        {
            var w = words[i];
            if (w == "--" || w.Length < 2 || w[0] != '-') break; // ssh's options end at its first argument
            for (int j = 1; j < w.Length; j++)
            {
                char flag = w[j];
                if (!ValueOptions.Contains(flag)) continue;
                string value = j + 1 < w.Length ? w[(j + 1)..] : i + 1 < words.Count ? words[++i] : "";
                if (flag == 'c') return true;
                if (flag == 'o' && IsKeyword(value, "ciphers")) return true;
                if (flag == 'F') configFiles.Add(value);
                break; // the value took the rest of the word
            }
        }
        return false;
    }

    /// <summary>Whether <paramref name="line"/> (a configuration line, or an <c>-o</c> value) starts with
    /// <paramref name="keyword"/>, as ssh reads keywords: any case, ended by whitespace or '='.</summary>
    private static bool IsKeyword(string line, string keyword)
    {
        var s = line.AsSpan().TrimStart();
        return s.StartsWith(keyword, StringComparison.OrdinalIgnoreCase)
            && (s.Length == keyword.Length || char.IsWhiteSpace(s[keyword.Length]) || s[keyword.Length] == '=');
    }

    /// <summary>Whether the configuration file names ciphers anywhere, itself or in what it Includes. A file that is
    /// missing names nothing (ssh skips it too); one that cannot be read, or an Include we cannot follow, counts as
    /// naming them, so that a choice we cannot see is never overridden.</summary>
    private static bool NamesCiphers(string file, List<string> homes, string includeBase, int depth)
    {
        if (depth > MaxIncludeDepth) return true;
        string[] lines;
        try
        {
            if (!File.Exists(file)) return false;
            lines = File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; }
        foreach (var line in lines)
        {
            if (IsKeyword(line, "ciphers")) return true;
            if (!IsKeyword(line, "include")) continue;
            List<string> targets;
            try { targets = ShellWords.Split(line.TrimStart()[7..].TrimStart(' ', '\t', '=')); }
            catch (BcmrException) { return true; }
            foreach (var target in targets)
                if (IncludeNamesCiphers(target, homes, includeBase, depth)) return true;
        }
        return false;
    }

    private static bool IncludeNamesCiphers(string target, List<string> homes, string includeBase, int depth)
    {
        if (target.StartsWith('~') && target.Length > 1 && target[1] != '/') return true; // ~user: someone else's home
        string path = target.StartsWith('~') ? Path.Join(homes[0], target[1..])
            : Path.IsPathRooted(target) ? target : Path.Join(includeBase, target);
        var dir = Path.GetDirectoryName(path);
        var name = Path.GetFileName(path);
        if (dir is null || dir.IndexOfAny(['*', '?', '[']) >= 0 || name.Contains('[')) return true;
        if (name.IndexOfAny(['*', '?']) < 0) return NamesCiphers(path, homes, includeBase, depth + 1);
        if (!Directory.Exists(dir)) return false;
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, name))
                if (NamesCiphers(f, homes, includeBase, depth + 1)) return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; }
        return false;
    }

    /// <summary>Where ssh may look for <c>~/.ssh/config</c>: HOME, and the account's home from the password file (what
    /// OpenSSH itself uses, which HOME may differ from).</summary>
    private static List<string> Homes(string? home)
    {
        var homes = new List<string>();
        if (!string.IsNullOrEmpty(home)) homes.Add(home);
        var profile = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(profile) && !homes.Contains(profile)) homes.Add(profile);
        if (!OperatingSystem.IsWindows() && AccountHome() is { } account && !homes.Contains(account)) homes.Add(account);
        if (homes.Count == 0) homes.Add("/");
        return homes;
    }

    private static string UserIncludeBase(List<string> homes) => Path.Join(homes[0], ".ssh");

    /// <summary>This account's home in /etc/passwd (null if it is not there: accounts from a directory service).</summary>
    private static string? AccountHome()
    {
        try
        {
            var uid = Platform.Native.LibC.geteuid().ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var f = line.Split(':');
                if (f.Length >= 6 && f[2] == uid) return f[5];
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException) { }
        return null;
    }
}
