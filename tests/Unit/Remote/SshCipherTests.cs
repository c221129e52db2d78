using System.Security.Cryptography;
using Bcmr.Engine.Client;
using Bcmr.Engine.Platform;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>The cipher ssh negotiates for bcmr against a real sshd, read from ssh's own debug log: ssh's order on a
/// first connection, AES-GCM from the second on (the server said it has AES hardware), and never against a cipher the
/// user's configuration names.</summary>
public class SshCipherTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    /// <summary>An ssh named ssh (so bcmr takes it for OpenSSH's) that logs its debug output to a file of the test's.</summary>
    private static string LoggingSsh(TempDir t)
    {
        Directory.CreateDirectory(t["bin"]);
        var ssh = t["bin/ssh"];
        File.WriteAllText(ssh, $"#!/bin/sh\nexec /usr/bin/ssh -E '{t["ssh.log"]}' -v \"$@\"\n");
        File.SetUnixFileMode(ssh, (UnixFileMode)0x1ED);
        return ssh;
    }

    /// <summary>Copies a file up with <paramref name="sshCommand"/>; returns the cipher ssh negotiated.</summary>
    private string CopyAndReadCipher(TempDir t, string sshCommand, string name)
    {
        File.Delete(t["ssh.log"]);
        var env = fx.Env(new() { ["BCMR_SSH"] = sshCommand, ["XDG_DATA_HOME"] = t["data"] });
        var r = BcmrRunner.Run(["copy", "--no-fallback", t["src.bin"], fx.Remote(name)], env);
        r.AssertExit(0);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(t["src.bin"])), SHA256.HashData(File.ReadAllBytes(Path.Combine(fx.RemoteHome, name))));
        var line = File.ReadLines(t["ssh.log"]).First(l => l.Contains("kex: client->server cipher:"));
        return line.Split("cipher: ")[1].Split(' ')[0];
    }

    [SshFact]
    public void The_second_connection_to_a_server_with_AES_hardware_negotiates_AES_GCM()
    {
        using var t = new TempDir();
        t.WriteRandom("src.bin", 300_000, seed: 41);
        var ssh = LoggingSsh(t) + " -F " + fx.SshConfig;
        var id = Guid.NewGuid().ToString("N")[..8];
        Assert.Equal("chacha20-poly1305@openssh.com", CopyAndReadCipher(t, ssh, $"cipher-{id}-1"));
        var key = SshPeers.Key(new RemoteSpec(null, SshdFixture.Host, ""), ssh);
        Assert.Equal(AesHardware.Present, SshPeers.HasAes(t["data/bcmr"], key));
        Assert.Equal(AesHardware.Present ? "aes128-gcm@openssh.com" : "chacha20-poly1305@openssh.com", CopyAndReadCipher(t, ssh, $"cipher-{id}-2"));
    }

    [SshFact]
    public void Ciphers_the_ssh_configuration_names_are_what_ssh_negotiates()
    {
        using var t = new TempDir();
        t.WriteRandom("src.bin", 100_000, seed: 42);
        // The fixture's configuration with one cipher chosen for its host, as a user might.
        var config = t["ssh_config"];
        File.WriteAllText(config, File.ReadAllText(fx.SshConfig).Replace("  LogLevel ERROR", "  LogLevel ERROR\n  Ciphers chacha20-poly1305@openssh.com,aes256-ctr"));
        var ssh = LoggingSsh(t) + " -F " + config;
        var id = Guid.NewGuid().ToString("N")[..8];
        Assert.Equal("chacha20-poly1305@openssh.com", CopyAndReadCipher(t, ssh, $"chosen-{id}-1"));
        Assert.Equal("chacha20-poly1305@openssh.com", CopyAndReadCipher(t, ssh, $"chosen-{id}-2"));
        // The same through the command: -c wins over the configuration and over bcmr.
        Assert.Equal("aes256-ctr", CopyAndReadCipher(t, ssh + " -c aes256-ctr", $"chosen-{id}-3"));
        Assert.Equal("aes256-ctr", CopyAndReadCipher(t, ssh + " -c aes256-ctr", $"chosen-{id}-4"));
    }
}
