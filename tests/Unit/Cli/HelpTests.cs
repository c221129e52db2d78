using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>`--help` tells the truth whichever command it is asked of: bcmr builds only the command named on its
/// command line, and its help and version options only when the line asks for them (start-up time).</summary>
public class HelpTests
{
    private static readonly string[] Commands = ["copy", "move", "remove", "check", "sync", "hash", "session", "cas", "serve"];

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("-?")]
    public void The_root_help_lists_every_command_and_the_global_options(string flag)
    {
        var r = BcmrRunner.Run(flag);

        r.AssertExit(0);
        Assert.Contains("Usage:", r.Stdout);
        foreach (var command in Commands) Assert.Matches($@"(?m)^  {command}\b", r.Stdout);
        foreach (var option in new[] { "--json", "--version", "--help" }) Assert.Contains(option, r.Stdout);
    }

    [Theory]
    [InlineData("copy", "--parallel")]
    [InlineData("move", "--direct")]
    [InlineData("sync", "--delete")]
    [InlineData("serve", "--root")]
    [InlineData("hash", "--threads")]
    public void A_command_s_help_shows_its_own_usage_and_options(string command, string option)
    {
        var r = BcmrRunner.Run(command, "--help");

        r.AssertExit(0);
        Assert.Contains($"bcmr {command}", r.Stdout);
        Assert.Contains(option, r.Stdout);
        Assert.Contains("--json", r.Stdout); // the global option applies to every command
    }

    [Fact]
    public void Help_after_the_json_option_is_still_the_command_s_help()
    {
        var r = BcmrRunner.Run("--json", "sync", "-h");

        r.AssertExit(0);
        Assert.Contains("bcmr sync", r.Stdout);
        Assert.Contains("--delete", r.Stdout);
    }

    [Fact]
    public void The_version_is_printed_alone_and_names_the_SIMD_path()
    {
        var r = BcmrRunner.Run("--version");

        r.AssertExit(0);
        Assert.Matches(@"^\d+\.\d+\.\d+\S* \(blake3: ", r.Stdout);
    }

    [Theory]
    [InlineData("cpy")]
    [InlineData("--bogus")]
    public void A_word_that_names_no_command_is_a_usage_error_that_points_to_the_help(string word)
    {
        var r = BcmrRunner.Run(word, "a", "b");

        r.AssertExit(2);
        Assert.Contains($"'{word}'", r.Stderr);
        Assert.Contains("Try 'bcmr --help'", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Shell_completion_through_dotnet_suggest_s_directive_still_completes_commands()
    {
        var r = BcmrRunner.Run("[suggest]", "co");

        r.AssertExit(0);
        Assert.Equal(["copy"], r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void No_command_at_all_is_a_usage_error()
    {
        var r = BcmrRunner.Run();

        r.AssertExit(2);
        Assert.Contains("Required command was not provided", r.Stderr);
    }
}
