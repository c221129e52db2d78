using System.Diagnostics;
using Bcmr.Engine.Local;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Module;

/// <summary>Get-BcmrSession and Remove-BcmrSession over the session a killed `bcmr copy -C` leaves, in a PowerShell
/// process whose XDG_DATA_HOME is the test's own (the store is found through the environment).</summary>
[Collection("Module")]
public sealed class SessionCmdletTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    [Fact]
    public void Get_shows_the_session_of_a_killed_copy_and_Remove_deletes_it_with_its_partial_file()
    {
        var home = _t["home"];
        var data = Path.Combine(home, ".local", "share");
        var src = _t["src/big.bin"];
        var dst = _t["dst/big.bin"];
        var partial = Temporaries.PartialPath(_t["dst/big.bin"]);
        Directory.CreateDirectory(_t["dst"]);
        Cli.ResumeTests.WriteRandom(src, 200L << 20, 7);
        var sessionFile = Path.Combine(data, "bcmr", "sessions", SessionStore.IdFor(src, dst) + ".session");

        // Kill the copy (SIGKILL, as in a crash) once its first checkpoint has been recorded.
        using (var p = Process.Start(BcmrRunner.StartInfo(["copy", "-q", "-C", src, dst], new Dictionary<string, string> { ["XDG_DATA_HOME"] = data, ["HOME"] = home }))!)
        {
            p.StandardInput.Close();
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && !File.Exists(sessionFile))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "no session was written");
                Thread.Sleep(1);
            }
            if (!p.HasExited) p.Kill();
            p.WaitForExit();
        }
        Assert.True(File.Exists(sessionFile), "the copy finished before it could be killed");
        Assert.False(File.Exists(dst));

        var line = "Get-BcmrSession | ForEach-Object { 'session|{0}|{1}|{2}|{3}|{4}|{5}|{6}|{7}' -f $_.Id, $_.Source, $_.Destination, $_.BytesDone, $_.TotalBytes, $_.Percent, $_.Age.TotalSeconds, $_.GetType().FullName }";
        var r = PwshHostProcess.Run(line, home);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var f = Assert.Single(r.Output).Split('|');
        Assert.Equal(SessionStore.IdFor(src, dst), f[1]);
        Assert.Equal(src, f[2]);
        Assert.Equal(dst, f[3]);
        long done = long.Parse(f[4]), total = long.Parse(f[5]);
        Assert.Equal(200L << 20, total);
        Assert.InRange(done, 64L << 20, total - 1); // at least one 64 MiB checkpoint, not the whole file
        Assert.Equal(100.0 * done / total, double.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture), 3);
        Assert.InRange(double.Parse(f[7], System.Globalization.CultureInfo.InvariantCulture), 0, 600);
        Assert.Equal("Bcmr.SessionInfo", f[8]);

        // -Path filters by source or destination; an unrelated path finds nothing.
        r = PwshHostProcess.Run($"(Get-BcmrSession -Path '{dst}').Id; (Get-BcmrSession -Path '{_t["dst/other"]}').Count; (Get-BcmrSession -Path '{_t["src"]}/*.bin').Id", home);
        Assert.Equal([SessionStore.IdFor(src, dst), "0", SessionStore.IdFor(src, dst)], r.Output);

        // -WhatIf removes nothing.
        r = PwshHostProcess.Run("Get-BcmrSession | Remove-BcmrSession -WhatIf", home);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("host: What if: Performing the operation \"Remove resume session and its partial file\"", r.Stderr);
        Assert.True(File.Exists(sessionFile) && File.Exists(partial));

        r = PwshHostProcess.Run($"Get-BcmrSession -Path '{dst}' | Remove-BcmrSession -PassThru | ForEach-Object Id; @(Get-BcmrSession).Count", home);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal([SessionStore.IdFor(src, dst), "0"], r.Output);
        Assert.False(File.Exists(sessionFile), "the session file is still there");
        Assert.False(File.Exists(partial), "the partial file is still there");
        Assert.True(File.Exists(src));

        // Removing it again is an ObjectNotFound error naming the id.
        r = PwshHostProcess.Run($"Remove-BcmrSession -Id {SessionStore.IdFor(src, dst)}", home);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: [ObjectNotFound] [SessionNotFound,Bcmr.Cmdlets.Commands.RemoveBcmrSessionCommand]", r.Stderr);
    }

    [Fact]
    public void No_sessions_means_no_output_and_no_error()
    {
        var r = PwshHostProcess.Run("@(Get-BcmrSession).Count", _t["home"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(["0"], r.Output);
    }

    [Fact]
    public void Get_TemporaryIn_lists_the_temporaries_killed_copies_left_and_not_lookalikes_or_ones_in_use()
    {
        var home = _t["home"];
        Directory.CreateDirectory(_t["dst/sub"]);
        var stale = Temporaries.StagingPath(_t["dst/sub/vm.img"]);
        File.WriteAllBytes(stale, new byte[1234]);
        var lookalike = _t["dst/.vm.img.0123456789ab01234567.bcmr-tmp"];
        File.WriteAllText(lookalike, "the user's");
        var held = Temporaries.StagingPath(_t["dst/held.bin"]);
        using var holder = Temporaries.CreateStaging(held, 0x1B6);
        // A dead copy's file is one nothing touched for 10 s (by ctime, which nothing can set back): wait that long.
        Thread.Sleep(TimeSpan.FromSeconds(10.5));
        // One being renamed by a copy that keeps times: unlocked, with the source's old mtime, just touched.
        var committing = Temporaries.StagingPath(_t["dst/run.sh"]);
        File.WriteAllText(committing, "#!/bin/sh");
        File.SetLastWriteTimeUtc(committing, DateTime.UtcNow.AddYears(-5));

        var r = PwshHostProcess.Run($"Get-BcmrSession -TemporaryIn '{_t["dst"]}' | ForEach-Object {{ '{{0}}|{{1}}|{{2}}' -f $_.Path, $_.Bytes, $_.GetType().FullName }}", home);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal([$"{stale}|1234|Bcmr.StaleTemporary"], r.Output);

        var cli = BcmrRunner.Run("--json", "session", "list", _t["dst"]);
        Assert.True(cli.ExitCode == 0, cli.ToString());
        var line = Assert.Single(cli.JsonLines, l => l.GetProperty("type").GetString() == "stale_temporary");
        Assert.Equal(stale, line.GetProperty("path").GetString());
        Assert.Equal(1234, line.GetProperty("bytes").GetInt64());
        Assert.True(File.Exists(stale), "listing must not remove anything");

        r = PwshHostProcess.Run($"Get-BcmrSession -TemporaryIn '{_t["missing"]}'", home);
        Assert.Contains("DirectoryNotFound", r.Stderr);
    }
}
