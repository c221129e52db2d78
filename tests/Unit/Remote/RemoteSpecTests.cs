using Bcmr.Engine;
using Bcmr.Engine.Client;
using Bcmr.Engine.Transfers;
using CsCheck;

namespace Bcmr.Tests.Remote;

/// <summary>The rules that decide what is remote, and how ssh and scp are called.</summary>
public class RemoteSpecTests
{
    [Theory]
    [InlineData("host:path", null, "host", "path")]
    [InlineData("host:/abs/path", null, "host", "/abs/path")]
    [InlineData("user@host:path", "user", "host", "path")]
    [InlineData("user@host:", "user", "host", "")]
    [InlineData("build01:", null, "build01", "")]
    [InlineData("[::1]:/srv/x", null, "::1", "/srv/x")]
    [InlineData("me@[fe80::1%eth0]:x", "me", "fe80::1%eth0", "x")]
    [InlineData("host:a:b", null, "host", "a:b")]
    [InlineData("u@v@host:p", "u@v", "host", "p")]
    [InlineData("host.example.com:logs/*.gz", null, "host.example.com", "logs/*.gz")]
    public void Remote_forms(string text, string? user, string host, string path)
    {
        Assert.True(RemoteSpec.TryParse(text, out var spec), text);
        Assert.Equal(user, spec.User);
        Assert.Equal(host, spec.Host);
        Assert.Equal(path, spec.Path);
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("/abs/path")]
    [InlineData("./a:b")]          // a '/' before the first ':' makes it local
    [InlineData("dir/file:with:colons")]
    [InlineData(@"C:\Users\me")]   // Windows drives, both separators, and a bare letter
    [InlineData("C:/Users/me")]
    [InlineData("c:file")]
    [InlineData(":leading-colon")]
    [InlineData("[::1]")]
    [InlineData("[::1]x:y")]
    [InlineData("@host:p")]
    [InlineData("user@:p")]
    [InlineData("my host:p")]      // whitespace: not a host name ssh would take
    [InlineData("")]
    public void Local_forms(string text) => Assert.False(RemoteSpec.TryParse(text, out _), text);

    [Theory]
    [InlineData("-oProxyCommand=touch pwned:x")]
    [InlineData("-F:x")]
    public void A_host_that_ssh_would_read_as_an_option_is_an_error_not_a_local_path(string text)
    {
        Assert.False(RemoteSpec.TryParse(text, out _));
        var e = Assert.Throws<BcmrException>(() => RemoteSpec.ParseOrLocal(text));
        Assert.Equal(BcmrErrorCode.InvalidArgument, e.Code);
        Assert.Contains("starts with '-'", e.Message);
    }

    [Fact]
    public void A_user_name_with_shell_characters_is_not_remote() =>
        Assert.False(RemoteSpec.TryParse("a;rm -rf@host:x", out _));

    [Fact]
    public void Parsing_never_throws_and_a_parsed_target_never_starts_with_a_dash() =>
        Gen.String.Sample(text =>
        {
            if (RemoteSpec.TryParse(text, out var spec))
            {
                Assert.False(spec.Target.StartsWith('-'));
                Assert.DoesNotContain(spec.Target, c => char.IsWhiteSpace(c) || char.IsControl(c));
                // A path with '/' before the colon never parses as remote.
                int slash = text.IndexOf('/');
                Assert.True(slash < 0 || slash > text.IndexOf(':') || text.StartsWith('[') || text.Contains("@["), text);
            }
        }, iter: 20_000);

    [Fact]
    public void Ssh_gets_the_users_options_first_then_ours_then_the_target_after_a_double_dash()
    {
        RemoteSpec.TryParse("me@box:/x", out var spec);
        var argv = SshChannel.BuildArguments(spec, "ssh -p 2222 -o 'User Known=1' -i \"my key\"", "/opt/bcmr/bin/bcmr");
        Assert.Equal(["ssh", "-p", "2222", "-o", "User Known=1", "-i", "my key"], argv.Take(7));
        int batch = argv.IndexOf("BatchMode=yes");
        Assert.True(batch > 7);
        Assert.Equal("--", argv[^3]);
        Assert.Equal("me@box", argv[^2]);
        Assert.Equal("/opt/bcmr/bin/bcmr serve", argv[^1]);
    }

    [Fact]
    public void The_remote_command_is_one_program_plus_serve_or_a_whole_command_line_quoted_for_the_remote_shell()
    {
        Assert.Equal("bcmr serve", SshChannel.RemoteServeCommand("bcmr"));
        Assert.Equal("\"/path with space/bcmr\" serve", SshChannel.RemoteServeCommand("'/path with space/bcmr'"));
        Assert.Equal("pwsh -NoProfile -NonInteractive -Command Start-BcmrServe",
            SshChannel.RemoteServeCommand("pwsh -NoProfile -NonInteractive -Command Start-BcmrServe"));
        Assert.Equal("\"x;rm\" serve", SshChannel.RemoteServeCommand("'x;rm'"));
        Assert.Equal("'x;$(rm)' serve", SshChannel.RemoteServeCommand("'x;$(rm)'"));
    }

    [Fact]
    public void Shell_words_split_and_quote_round_trip() =>
        Gen.String.Array[0, 6].Sample(words =>
        {
            var line = string.Join(' ', words.Select(ShellWords.Quote));
            Assert.Equal(words, ShellWords.Split(line, windowsRules: false).ToArray());
        }, iter: 5_000);

    [Fact]
    public void A_real_POSIX_shell_reads_each_quoted_word_back_unchanged() =>
        Gen.String[Gen.OneOf(Gen.Char[' ', '~'], Gen.Char['\u00e0', '\u00ff']), 0, 12].Array[1, 4].Sample(words =>
        {
            // printf prints each argument on its own line, as the remote shell split them.
            var line = "printf '%s\\n' " + string.Join(' ', words.Select(ShellWords.Quote));
            var psi = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", line]) { RedirectStandardOutput = true };
            using var p = System.Diagnostics.Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(string.Concat(words.Select(w => w + "\n")), output);
        }, iter: 300);

    [Theory]
    // Windows rules: a backslash is a path separator (typed on Windows, e.g. -SshCommand in PowerShell there).
    [InlineData(true, @"ssh -F C:\Users\me\.ssh\config", new[] { "ssh", "-F", @"C:\Users\me\.ssh\config" })]
    [InlineData(true, @"ssh -F ""C:\My Files\cfg"" -i 'D:\k ey'", new[] { "ssh", "-F", @"C:\My Files\cfg", "-i", @"D:\k ey" })]
    [InlineData(true, @"C:\bcmr\bcmr.exe", new[] { @"C:\bcmr\bcmr.exe" })]
    // POSIX rules: a backslash takes the next character literally, as sh does.
    [InlineData(false, @"ssh -F /a\ b/cfg", new[] { "ssh", "-F", "/a b/cfg" })]
    [InlineData(false, @"ssh -F C:\Users\me", new[] { "ssh", "-F", "C:Usersme" })]
    [InlineData(false, @"ssh -o 'ProxyCommand=ssh -W %h:%p jump'", new[] { "ssh", "-o", "ProxyCommand=ssh -W %h:%p jump" })]
    public void Commands_split_by_the_rules_of_the_platform_they_were_typed_on(bool windows, string text, string[] words) =>
        Assert.Equal(words, ShellWords.Split(text, windows).ToArray());

    [Theory]
    [InlineData("bcmr", "bcmr")]
    [InlineData("/opt/my bcmr/bcmr", "\"/opt/my bcmr/bcmr\"")]                            // sh and cmd.exe alike
    [InlineData(@"C:\Program Files\bcmr\bcmr.exe", @"""C:\Program Files\bcmr\bcmr.exe""")] // cmd.exe's own quoting
    [InlineData("it's", "\"it's\"")]
    [InlineData("50%", "'50%'")]                                                           // cmd.exe would expand %...%
    [InlineData("a$b", "'a$b'")]
    [InlineData(@"ends\", @"'ends\'")]
    public void Remote_words_are_quoted_so_that_a_POSIX_shell_and_cmd_exe_read_them_alike_where_they_can(string word, string quoted) =>
        Assert.Equal(quoted, ShellWords.Quote(word));

    [Fact]
    public void Scp_fallback_takes_the_same_ssh_options_and_refuses_what_it_cannot_map()
    {
        var req = new CopyRequest { Sources = ["a"], Destination = "h:b", SshCommand = "/usr/bin/ssh -p 2222 -F cfg -oBatchMode=yes -i key", Recursive = true, Preserve = true };
        var argv = ScpFallback.BuildArguments(req, ["a"], "h:b");
        Assert.Equal(["scp", "-B", "-S", "/usr/bin/ssh", "-P", "2222", "-F", "cfg", "-oBatchMode=yes", "-i", "key", "-r", "-p", "--", "a", "h:b"], argv);
        var odd = new CopyRequest { Sources = ["a"], Destination = "h:b", SshCommand = "ssh -L 80:x:80" };
        var e = Assert.Throws<BcmrException>(() => ScpFallback.BuildArguments(odd, ["a"], "h:b"));
        Assert.Contains("'-L'", e.Message);
    }

    [Theory]
    [InlineData("*.gz", "a.gz", true)]
    [InlineData("*.gz", "a.gzip", false)]
    [InlineData("f?.txt", "f1.txt", true)]
    [InlineData("f[0-3].txt", "f2.txt", true)]
    [InlineData("f[!0-3].txt", "f5.txt", true)]
    [InlineData("f[!0-3].txt", "f2.txt", false)]
    [InlineData("a+b(1).*", "a+b(1).c", true)]
    public void Remote_wildcards(string glob, string name, bool matches) =>
        Assert.Equal(matches, System.Text.RegularExpressions.Regex.IsMatch(name, Bcmr.Engine.Local.Wildcard.ShellToRegex(glob)));

    [Theory]
    [InlineData("a.txt", true, true)]
    [InlineData("dir/sub/a b [1].txt", true, true)]
    [InlineData("12:30:00.log", true, false)]     // a colon is a name on Linux, a drive or stream on Windows
    [InlineData("C:x", true, false)]
    [InlineData("a\\..\\..\\x", true, false)]     // one odd name on Linux; a way up on Windows
    [InlineData("a\nb", true, false)]
    [InlineData("../etc/passwd", false, false)]
    [InlineData("a/../../x", false, false)]
    [InlineData("/etc/passwd", false, false)]
    [InlineData("a//b", false, false)]
    [InlineData("./a", false, false)]
    [InlineData("", false, false)]
    public void Names_from_a_server_listing_only_go_down_from_the_destination_and_are_refused_only_where_unsafe_to_write(string name, bool safeOnLinux, bool safeOnWindows)
    {
        Assert.Equal(safeOnLinux, RemoteTree.IsSafeRelative(name, windows: false));
        Assert.Equal(safeOnWindows, RemoteTree.IsSafeRelative(name, windows: true));
    }
}
