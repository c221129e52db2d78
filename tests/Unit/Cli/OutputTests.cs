using System.Diagnostics;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>What a person or a script sees while a copy runs.</summary>
public class OutputTests
{
    private static readonly string[] ProgressFields =
        ["operation", "bytes_done", "bytes_total", "percent", "speed_bps", "eta_secs", "file", "file_size", "file_progress", "items_done", "items_total"];

    [Fact]
    public void Json_mode_streams_progress_lines_with_bcmr_fields_and_ends_with_the_result()
    {
        using var t = new TempDir();
        t.WriteRandom("big.bin", 512 * 1024 * 1024, 1);

        // Paced to at least 2 s (progress comes every 200 ms): unpaced, a -V copy of 512 MiB ended before the first.
        var r = BcmrRunner.Run("--json", "copy", "-V", "--bwlimit", "256M", t["big.bin"], t["copy.bin"]);

        r.AssertExit(0);
        var lines = r.JsonLines;
        var progress = lines.Where(l => l.GetProperty("type").GetString() == "progress").ToList();
        Assert.NotEmpty(progress);
        foreach (var field in ProgressFields) Assert.True(progress[0].TryGetProperty(field, out _), "missing " + field);
        Assert.All(progress, p => Assert.Equal(512L * 1024 * 1024, p.GetProperty("bytes_total").GetInt64()));
        var last = lines[^1];
        Assert.Equal("result", last.GetProperty("type").GetString());
        Assert.Equal("success", last.GetProperty("status").GetString());
        Assert.Equal(512L * 1024 * 1024, last.GetProperty("bytes_total").GetInt64());
        Assert.Equal(0, last.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void Json_result_reports_errors_and_the_exit_code()
    {
        using var t = new TempDir();
        var r = BcmrRunner.Run("--json", "copy", t["missing"], t["x"]);

        r.AssertExit(1);
        var result = r.JsonResult;
        Assert.Equal("error", result.GetProperty("status").GetString());
        Assert.Contains("No such file or directory", result.GetProperty("error").GetString());
        var file = Assert.Single(r.JsonFiles);
        Assert.Equal("NotFound", file.GetProperty("error_code").GetString());
    }

    [Fact]
    public void Quiet_success_prints_nothing_and_default_prints_one_summary_line()
    {
        using var t = new TempDir();
        t.WriteRandom("a.bin", 1000, 1);

        var quiet = BcmrRunner.Run("copy", "-q", t["a.bin"], t["b.bin"]);
        var normal = BcmrRunner.Run("copy", t["a.bin"], t["c.bin"]);

        Assert.Equal("", quiet.Stderr + quiet.Stdout);
        Assert.Matches(@"^bcmr: copied 1 file \(1000 B\) in [0-9.]+ s, .*/s; 0 skipped, 0 failed\n$", normal.Stderr);
    }

    [Fact]
    public void A_terminal_gets_a_live_progress_line_that_is_cleared_before_the_summary()
    {
        using var t = new TempDir();
        t.WriteRandom("big.bin", 512 * 1024 * 1024, 1);

        // script(1) gives bcmr a pseudo-terminal, as an interactive shell would, and records what it drew. Paced to at
        // least 2 s (progress is drawn every 200 ms): unpaced, the AOT pass's -V of 512 MiB ended before the first.
        var cmd = $"'{BcmrRunner.Executable}' copy -V --bwlimit 256M '{t["big.bin"]}' '{t["copy.bin"]}'";
        Assert.Equal(0, Tool.Run("script", "-qec", cmd, t["typescript"]).ExitCode);

        var screen = File.ReadAllText(t["typescript"]);
        Assert.Contains("\r\u001b[2K", screen);
        Assert.Matches(@"\d+\.\d% .* / 512\.0 MiB  0/1 files", screen);
        Assert.Contains("big.bin", screen); // the current file
        Assert.Matches("\u001b\\[2Kbcmr: copied 1 file", screen.Replace("\r", ""));
    }

    [Fact]
    public void Without_a_terminal_progress_comes_as_plain_lines_once_a_second()
    {
        using var t = new TempDir();
        t.WriteRandom("big.bin", 1024 * 1024 * 1024, 1);

        // Paced to at least 2 s, so that there is a progress line to see whatever the machine's speed.
        var r = BcmrRunner.Run("copy", "-V", "--reflink", "disable", "--bwlimit", "512M", t["big.bin"], t["copy.bin"]);

        r.AssertExit(0);
        Assert.DoesNotContain("\u001b", r.Stderr);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2, "no progress line before the summary: " + r.Stderr);
        Assert.Matches(@"^bcmr: copied 1 file", lines[^1]);
        Assert.All(lines[..^1], l => Assert.Matches(@"^bcmr: +\d+\.\d% .* files", l));
    }
}
