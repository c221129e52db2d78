using Bcmr.Engine.Client;
using Bcmr.Engine.Platform;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Client;

/// <summary>bcmr asks ssh for AES-GCM first only where both ends have AES hardware and nobody chose ciphers: not the
/// ssh command, not any configuration file ssh reads (or what it Includes).</summary>
public class SshCiphersTests
{
    private static readonly string[] Prefer = ["-o", "Ciphers=" + SshCiphers.AesFirst];

    /// <summary>What bcmr adds on this machine when it may choose: the AES-first list where this CPU has AES hardware,
    /// nothing where it does not (there ChaCha20, ssh's first, is the fast one).</summary>
    private static string[] Chosen => AesHardware.Present ? Prefer : [];

    private static string[] Options(TempDir t, IEnumerable<string> words, bool peerHasAes = true) =>
        SshCiphers.Options([.. words], peerHasAes, t["home"], t.Path, systemConfig: t["etc/ssh_config"]);

    private static string Config(TempDir t, string name, string text)
    {
        var path = t[name];
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void A_server_with_AES_hardware_gets_AES_GCM_first_and_the_same_six_ciphers_ssh_offers_by_default()
    {
        using var t = new TempDir();
        var cfg = Config(t, "cfg", "Host h\n  HostName 127.0.0.1\n  # Ciphers aes256-ctr (a comment names nothing)\n  Compression no\n");
        Assert.Equal(Chosen, Options(t, ["ssh", "-F", cfg]));
        Assert.Equal(
            ["aes128-ctr", "aes128-gcm@openssh.com", "aes192-ctr", "aes256-ctr", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"],
            SshCiphers.AesFirst.Split(',').Order());
    }

    [Fact]
    public void A_first_connection_or_a_server_without_AES_hardware_keeps_ssh_s_own_order()
    {
        using var t = new TempDir();
        Assert.Empty(Options(t, ["ssh", "-F", Config(t, "cfg", "Host h\n")], peerHasAes: false));
    }

    [Theory]
    [InlineData("-c aes256-ctr")]
    [InlineData("-caes256-ctr")]
    [InlineData("-qc aes256-ctr")]
    [InlineData("-o Ciphers=aes256-ctr")]
    [InlineData("-oCiphers=aes256-ctr")]
    [InlineData("-o|ciphers aes256-ctr")]
    [InlineData("-v -o CIPHERS=aes256-ctr")]
    public void A_cipher_choice_in_the_ssh_command_is_never_overridden(string options)
    {
        using var t = new TempDir();
        var words = new List<string> { "ssh", "-F", Config(t, "cfg", "Host h\n") };
        foreach (var part in options.Split(' ')) words.AddRange(part.Split('|'));
        Assert.Empty(Options(t, words));
    }

    [Theory]
    [InlineData("-o Compression=yes")]
    [InlineData("-p 2222 -v")]
    [InlineData("-E /tmp/log -v")]
    [InlineData("-i /keys/c")]
    public void Other_ssh_options_leave_the_choice_to_bcmr(string options)
    {
        using var t = new TempDir();
        Assert.Equal(Chosen, Options(t, ["ssh", "-F", Config(t, "cfg", "Host h\n"), .. options.Split(' ')]));
    }

    [Theory]
    [InlineData("Host other\n  Ciphers aes256-ctr\n")]
    [InlineData("Match host *\n\tCIPHERS=aes256-ctr\n")]
    [InlineData("  ciphers   chacha20-poly1305@openssh.com\n")]
    public void Ciphers_named_anywhere_in_the_ssh_configuration_are_never_overridden(string text)
    {
        using var t = new TempDir();
        Assert.Empty(Options(t, ["ssh", "-F", Config(t, "cfg", "Host h\n  Port 22\n" + text)]));
    }

    [Fact]
    public void Ciphers_in_a_file_the_configuration_includes_are_never_overridden()
    {
        using var t = new TempDir();
        Config(t, "inc/a.conf", "Host a\n  Port 2\n");
        Config(t, "inc/b.conf", "Host b\n  Ciphers aes256-ctr\n");
        Config(t, "home/sub/c.conf", "Ciphers aes256-ctr\n");
        Assert.Empty(Options(t, ["ssh", "-F", Config(t, "glob", $"Include {t["inc"]}/*.conf\n")]));
        Assert.Empty(Options(t, ["ssh", "-F", Config(t, "tilde", "Include ~/sub/c.conf\n")]));
        Assert.Empty(Options(t, ["ssh", "-F", Config(t, "nested", $"Include {t["glob"]}\n")]));
        // A relative Include of a user configuration is ssh's ~/.ssh/...
        Config(t, "home/.ssh/d.conf", "Ciphers aes256-ctr\n");
        Assert.Empty(Options(t, ["ssh", "-F", Config(t, "relative", "Include d.conf\n")]));
        // ...and an Include that finds nothing names nothing.
        Assert.Equal(Chosen, Options(t, ["ssh", "-F", Config(t, "missing", $"Include {t["inc"]}/*.none {t["nothing"]}\nInclude {t["inc/a.conf"]}\n")]));
    }

    [Fact]
    public void Without_F_the_user_s_and_the_system_s_configuration_are_read()
    {
        using var t = new TempDir();
        Config(t, "home/.ssh/config", "Host h\n  Ciphers aes256-ctr\n");
        Assert.Empty(Options(t, ["ssh"]));
        File.Delete(t["home/.ssh/config"]);
        Config(t, "etc/ssh_config", "Include conf.d/*.conf\n");
        Config(t, "etc/conf.d/x.conf", "Ciphers aes256-ctr\n");
        Assert.Empty(Options(t, ["ssh"]));
        // -F replaces both: what they say no longer counts.
        Assert.Equal(Chosen, Options(t, ["ssh", "-F", Config(t, "cfg", "Host h\n")]));
        Assert.Equal(Chosen, Options(t, ["ssh", "-F", "none"]));
        // Two -F: what either names counts.
        var chosen = Config(t, "chosen", "Ciphers aes256-ctr\n");
        Assert.Empty(Options(t, ["ssh", "-F", t["cfg"], "-F", chosen]));
        Assert.Empty(Options(t, ["ssh", "-F", chosen, "-F", t["cfg"]]));
    }

    [Theory]
    [InlineData("/usr/bin/dbclient")]
    [InlineData("env|ssh")]
    [InlineData("/opt/wrappers/ssh-with-logging")]
    public void A_program_that_is_not_OpenSSH_s_ssh_gets_no_cipher_option(string program)
    {
        using var t = new TempDir();
        Assert.Empty(Options(t, program.Split('|')));
        Assert.Equal(Chosen, Options(t, ["/usr/bin/ssh", "-F", "none"]));
    }
}

/// <summary>What bcmr remembers of the servers it reached over ssh: which said they have AES hardware.</summary>
public class SshPeersTests
{
    [Fact]
    public void A_server_is_remembered_per_target_and_ssh_command_until_it_says_otherwise()
    {
        using var t = new TempDir();
        var data = t["data"];
        var key = SshPeers.Key(new RemoteSpec("u", "host", "/p"), "ssh -F a");
        var other = SshPeers.Key(new RemoteSpec("u", "host", "/p"), "ssh -F b");
        Assert.False(SshPeers.HasAes(data, key)); // nothing kept yet: no file, no error
        SshPeers.Remember(data, key, hasAes: true);
        Assert.True(SshPeers.HasAes(data, key));
        Assert.False(SshPeers.HasAes(data, other)); // another ssh command may reach another machine under that name
        Assert.True(SshPeers.HasAes(data, SshPeers.Key(new RemoteSpec("u", "host", "/elsewhere"), "ssh -F a")));
        SshPeers.Remember(data, other, hasAes: true);
        SshPeers.Remember(data, key, hasAes: false);
        Assert.False(SshPeers.HasAes(data, key));
        Assert.True(SshPeers.HasAes(data, other));
        Assert.Equal(["u@host\tssh -F b"], File.ReadAllLines(Path.Combine(data, SshPeers.FileName)));
        Assert.Empty(Directory.GetFiles(data, "*.tmp"));
    }

    [Fact]
    public void A_connection_that_is_not_one_line_is_not_remembered_and_a_bad_file_is_only_a_miss()
    {
        using var t = new TempDir();
        Assert.Null(SshPeers.Key(new RemoteSpec(null, "host", "/p"), "ssh -o 'ProxyCommand=a\nb'"));
        SshPeers.Remember(t["data"], null, hasAes: true);
        Assert.False(Directory.Exists(t["data"]));
        // A directory where the file should be: reads as nothing known, and remembering fails quietly.
        Directory.CreateDirectory(Path.Combine(t["data"], SshPeers.FileName));
        var key = SshPeers.Key(new RemoteSpec(null, "host", "/p"), null);
        SshPeers.Remember(t["data"], key, hasAes: true);
        Assert.False(SshPeers.HasAes(t["data"], key));
        Assert.Empty(Directory.GetFiles(t["data"])); // its temporary file is not left behind
    }
}
