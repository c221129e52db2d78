using System.Diagnostics;
using System.Text.Json;
using Bcmr.Engine.Local;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// One large file striped over the connections of <c>-P N</c>, through the loopback sshd with real <c>bcmr serve</c>
/// processes: bytes identical both ways, the BLAKE3 reported merged from the blocks equal to b3sum's, nothing under
/// the final name until the whole file is proven, a connection killed mid-file, and resumes that keep exactly the
/// blocks proven equal (holes and blocks written out of order included) and send only the rest.
/// </summary>
public class StripeTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private const int MiB = 1024 * 1024;
    private const int Block = 4 * MiB;

    private static Dictionary<string, string> Env(RemoteScene s, int? stripeMinMb = null) =>
        s.Env(stripeMinMb is { } mb ? new() { ["BCMR_STRIPE_MIN_MB"] = mb.ToString() } : null);

    private static RunResult Bcmr(RemoteScene s, int? stripeMinMb, params string[] args) => BcmrRunner.Run(args, Env(s, stripeMinMb), timeout: TimeSpan.FromMinutes(4));

    private static JsonElement OnlyFile(RunResult r)
    {
        Assert.True(r.JsonFiles.Count() == 1, $"expected one file result:\n{r}");
        return r.JsonFiles.Single();
    }

    private static string B3(string path) => Tool.Output("b3sum", "--no-names", path).Trim();

    [SshFact]
    public void A_300_MiB_file_is_striped_both_ways_byte_identical_with_b3sums_BLAKE3()
    {
        using var s = new RemoteScene(fx, "s-");
        var src = s.Local["big.bin"];
        ResumeTests.WriteRandom(src, 300L * MiB + 12345, 1);
        var expected = B3(src);

        var up = Bcmr(s, null, "--json", "copy", "-P", "4", src, fx.Remote(s.R("big.bin")));
        Assert.True(up.ExitCode == 0, up.ToString());
        var f = OnlyFile(up);
        Assert.Equal(expected, f.GetProperty("blake3").GetString());
        Assert.True(f.GetProperty("connections").GetInt32() >= 2, $"not striped:\n{up}");
        Assert.Equal(expected, B3(s.R("big.bin")));
        Trees.AssertNoStagingFiles(s.RemoteDir);

        var down = Bcmr(s, null, "--json", "copy", "-P", "4", fx.Remote(s.R("big.bin")), s.Local["back.bin"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        f = OnlyFile(down);
        Assert.Equal(expected, f.GetProperty("blake3").GetString());
        Assert.True(f.GetProperty("connections").GetInt32() >= 2, $"not striped:\n{down}");
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.Local["back.bin"]));
        Trees.AssertNoStagingFiles(s.Local.Path);
    }

    [SshFact]
    public void Files_below_the_threshold_or_over_one_connection_are_not_striped()
    {
        using var s = new RemoteScene(fx, "s-");
        var src = s.Local["mid.bin"];
        ResumeTests.WriteRandom(src, 20L * MiB, 2);
        var below = Bcmr(s, null, "--json", "copy", "-P", "4", src, fx.Remote(s.R("a.bin")));
        Assert.True(below.ExitCode == 0, below.ToString());
        Assert.False(OnlyFile(below).TryGetProperty("connections", out _), below.ToString());
        var tuned = Bcmr(s, 16, "--json", "copy", "-P", "4", src, fx.Remote(s.R("b.bin")));
        Assert.True(tuned.ExitCode == 0, tuned.ToString());
        Assert.True(OnlyFile(tuned).GetProperty("connections").GetInt32() >= 2, tuned.ToString());
        Assert.Equal(B3(src), B3(s.R("b.bin")));
    }

    /// <summary>Starts a striped copy held to <paramref name="bwlimit"/>, kills one of its four ssh processes once
    /// 24 MiB have moved (every connection is open by then: data flows only after all handshakes), and returns the run.</summary>
    private RunResult CutOneConnection(RemoteScene s, string from, string to, string bwlimit, params string[] more)
    {
        var psi = BcmrRunner.StartInfo(["--json", "copy", "-P", "4", "--bwlimit", bwlimit, .. more, from, to], Env(s, 16));
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = new System.Text.StringBuilder();
        bool cut = false;
        while (p.StandardOutput.ReadLine() is { } line)
        {
            stdout.AppendLine(line);
            if (cut || !line.Contains("\"progress\"")) continue;
            if (JsonDocument.Parse(line).RootElement.GetProperty("bytes_done").GetInt64() < 24L * MiB) continue;
            Assert.Equal(4, s.SshStarted.Length);
            Process.GetProcessById(int.Parse(s.SshStarted[2].Split(' ')[0])).Kill();
            cut = true;
        }
        Assert.True(p.WaitForExit(120_000), "bcmr did not finish");
        Assert.True(cut, "the copy ended before a connection could be cut");
        return new RunResult(p.ExitCode, stdout.ToString(), stderr.Result);
    }

    [SshFact]
    public void A_connection_killed_mid_upload_fails_the_file_without_a_final_name_and_the_rerun_sends_only_missing_blocks()
    {
        using var s = new RemoteScene(fx, "s-");
        var src = s.Local["big.bin"];
        const long size = 160L * MiB + 7;
        ResumeTests.WriteRandom(src, size, 3);
        var dst = s.R("big.bin");

        var run = CutOneConnection(s, src, fx.Remote(dst), "32M");
        Assert.True(run.ExitCode == 1, run.ToString()); // the only file failed
        var failed = OnlyFile(run);
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("kept on the server", failed.GetProperty("error").GetString());
        Assert.False(File.Exists(dst), "a failed striped upload exists under its final name");

        var again = Bcmr(s, 16, "--json", "copy", "-C", "-P", "4", src, fx.Remote(dst));
        Assert.True(again.ExitCode == 0, again.ToString());
        var f = OnlyFile(again);
        Assert.Equal("blake3-blocks", f.GetProperty("resume_compared").GetString());
        long kept = f.GetProperty("resumed_from").GetInt64();
        long wire = f.GetProperty("wire_bytes").GetInt64();
        Assert.True(kept > 0 && kept % Block == 0, again.ToString());
        Assert.True(wire <= size - kept + 1024 * 1024, $"sent {wire} bytes with {kept} of {size} kept:\n{again}");
        Assert.Equal(B3(src), f.GetProperty("blake3").GetString());
        Assert.Equal(B3(src), B3(dst));
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }

    [SshFact]
    public void A_striped_download_cut_midway_resumes_from_every_ranges_proven_blocks()
    {
        using var s = new RemoteScene(fx, "s-");
        const long size = 160L * MiB + 7;
        var remote = s.R("big.bin");
        ResumeTests.WriteRandom(remote, size, 4);
        var dst = s.Local["big.bin"];

        var run = CutOneConnection(s, fx.Remote(remote), dst, "32M");
        Assert.True(run.ExitCode == 1, run.ToString()); // the only file failed
        Assert.Contains("rerun with -C", OnlyFile(run).GetProperty("error").GetString());
        Assert.False(File.Exists(dst), "a failed striped download exists under its final name");
        Assert.True(File.Exists(Temporaries.PartialPath(dst)), "the blocks that arrived were not kept");

        var again = Bcmr(s, 16, "--json", "copy", "-C", "-P", "4", fx.Remote(remote), dst);
        Assert.True(again.ExitCode == 0, again.ToString());
        var f = OnlyFile(again);
        long kept = f.GetProperty("resumed_from").GetInt64();
        long wire = f.GetProperty("wire_bytes").GetInt64();
        Assert.True(kept > 0 && kept % Block == 0, again.ToString());
        Assert.True(wire <= size - kept + 1024 * 1024, $"received {wire} bytes with {kept} of {size} kept:\n{again}");
        Assert.Equal(B3(remote), f.GetProperty("blake3").GetString());
        Assert.Equal(Trees.Sha256(remote), Trees.Sha256(dst));
        Trees.AssertNoStagingFiles(s.Local.Path);
    }

    /// <summary>A partial file of the full length whose first half is a hole (zeros) and whose second half holds the
    /// right blocks: what ranges written out of order leave. Only the second half may be kept.</summary>
    private static void WriteHalfPartial(string partial, string source, long size)
    {
        var data = File.ReadAllBytes(source);
        long half = size / Block / 2 * Block;
        using var fs = new FileStream(partial, FileMode.Create);
        fs.SetLength(size);
        fs.Position = half;
        fs.Write(data, (int)half, (int)(size - half));
    }

    [SshTheory]
    [InlineData("upload")]
    [InlineData("download")]
    public void Blocks_written_out_of_order_are_kept_one_by_one_and_a_hole_never_passes_for_data(string direction)
    {
        using var s = new RemoteScene(fx, "s-");
        const long size = 40L * MiB + 3;
        const long half = 20L * MiB; // blocks 5.. (of 11) are right
        var local = s.Local["f.bin"];
        var remote = s.R("f.bin");
        bool upload = direction == "upload";
        var source = upload ? local : remote;
        ResumeTests.WriteRandom(source, size, 5);
        WriteHalfPartial(Temporaries.PartialPath(upload ? remote : local), source, size);

        var run = upload
            ? Bcmr(s, 16, "--json", "copy", "-C", "-P", "2", local, fx.Remote(remote))
            : Bcmr(s, 16, "--json", "copy", "-C", "-P", "2", fx.Remote(remote), local);
        Assert.True(run.ExitCode == 0, run.ToString());
        var f = OnlyFile(run);
        Assert.Equal(size - half, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal("resumed", f.GetProperty("resume").GetString());
        Assert.True(f.GetProperty("wire_bytes").GetInt64() >= half, run.ToString());
        Assert.Equal(Trees.Sha256(local), Trees.Sha256(remote));
        Assert.Equal(B3(source), f.GetProperty("blake3").GetString());
        Trees.AssertNoStagingFiles(upload ? s.RemoteDir : s.Local.Path);
    }

    [SshFact]
    public void A_server_without_our_extensions_gets_whole_files_spread_over_the_connections_never_ranges()
    {
        using var s = new RemoteScene(fx, "s-");
        // What bcmr 0.6's serve looks like to our client: the same binary, offering only version 1's capabilities.
        var legacy = fx.LegacyRemote(s.Local.Path, 0x1f);
        var src = s.Local["src"];
        Directory.CreateDirectory(src);
        ResumeTests.WriteRandom(Path.Combine(src, "big.bin"), 40L * MiB + 1, 6);
        ResumeTests.WriteRandom(Path.Combine(src, "small.bin"), 100_000, 7);
        var env = Env(s, 16);
        env["BCMR_REMOTE"] = legacy;

        var up = BcmrRunner.Run(["--json", "copy", "-r", "-P", "4", src, fx.Remote(s.R("up"))], env, timeout: TimeSpan.FromMinutes(2));
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.All(up.JsonFiles, f => Assert.False(f.TryGetProperty("connections", out _), up.ToString()));
        Trees.AssertIdentical(src, s.R("up"));
        var down = BcmrRunner.Run(["--json", "copy", "-r", "-P", "4", fx.Remote(s.R("up")), s.Local["down"]], env, timeout: TimeSpan.FromMinutes(2));
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.All(down.JsonFiles, f => Assert.False(f.TryGetProperty("connections", out _), down.ToString()));
        Trees.AssertIdentical(src, s.Local["down"]);
        var big = down.JsonFiles.Single(f => f.GetProperty("source").GetString()!.EndsWith("big.bin"));
        Assert.Equal(B3(Path.Combine(src, "big.bin")), big.GetProperty("blake3").GetString());
    }

    [SshFact]
    public void Compression_sync_fast_verify_and_the_bandwidth_limit_hold_for_a_striped_file()
    {
        using var s = new RemoteScene(fx, "s-");
        var src = s.Local["log.bin"];
        // Half text (compresses), half random (does not): 48 MiB.
        using (var w = File.Create(src))
        {
            var text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("a line of a log that compresses well\n", 1000)));
            while (w.Length < 24L * MiB) w.Write(text);
            var noise = new byte[MiB];
            var rng = new Random(8);
            while (w.Length < 48L * MiB) { rng.NextBytes(noise); w.Write(noise); }
        }
        long size = new FileInfo(src).Length;
        var clock = Stopwatch.StartNew();
        var up = Bcmr(s, 16, "--json", "copy", "-P", "3", "--compress", "zstd", "--sync", "-V", "--bwlimit", "40M", src, fx.Remote(s.R("log.bin")));
        var took = clock.Elapsed;
        Assert.True(up.ExitCode == 0, up.ToString());
        var f = OnlyFile(up);
        Assert.True(f.GetProperty("connections").GetInt32() >= 2, up.ToString());
        Assert.True(f.GetProperty("wire_bytes").GetInt64() < size * 3 / 4, $"the text half was not compressed:\n{up}");
        Assert.Equal(B3(src), f.GetProperty("blake3").GetString());
        Assert.Equal(B3(src), B3(s.R("log.bin")));
        // --bwlimit is the total of all connections: the wire bytes at 40 MB/s take their time, whatever N.
        Assert.True(took.TotalSeconds >= f.GetProperty("wire_bytes").GetInt64() / 40e6 * 0.8, $"{took} is faster than --bwlimit 40M allows:\n{up}");

        var down = Bcmr(s, 16, "--json", "copy", "-P", "3", "--fast", "-V", fx.Remote(s.R("log.bin")), s.Local["back.bin"]);
        Assert.True(down.ExitCode == 0, down.ToString());
        f = OnlyFile(down);
        Assert.True(f.GetProperty("connections").GetInt32() >= 2, down.ToString());
        Assert.Equal(B3(src), f.GetProperty("blake3").GetString()); // --fast: hashed only by -V's read-back, against the server's
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.Local["back.bin"]));
    }

    [SshFact]
    public void With_retries_a_striped_upload_that_lost_a_connection_completes_and_the_retry_sends_only_the_missing_blocks()
    {
        using var s = new RemoteScene(fx, "s-");
        var src = s.Local["big.bin"];
        const long size = 160L * MiB + 7;
        ResumeTests.WriteRandom(src, size, 9);
        var dst = s.R("big.bin");
        var run = CutOneConnection(s, src, fx.Remote(dst), "32M", "--retries", "1", "--retry-delay", "0");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("retry 1/1", run.Stderr);
        var f = OnlyFile(run);
        Assert.Equal("copied", f.GetProperty("status").GetString());
        Assert.Equal("resumed", f.GetProperty("resume").GetString());
        long kept = f.GetProperty("resumed_from").GetInt64();
        Assert.True(kept > 0 && f.GetProperty("wire_bytes").GetInt64() <= size - kept + MiB, run.ToString());
        Assert.Equal(B3(src), f.GetProperty("blake3").GetString());
        Assert.Equal(B3(src), B3(dst));
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }
}
