using System.Diagnostics;
using Bcmr.Tests.Infrastructure;
using Bcmr.Tests.Module;

namespace Bcmr.Tests.Remote;

/// <summary>
/// The client against a server that breaks the protocol (tests/Unit/Remote/FakePeer/fake_serve.py, a real process
/// reached through a stand-in for ssh that runs the remote command locally): replies of the wrong type and a server
/// that goes silent after Welcome. Each ends with a clear message and a non-zero exit, never a crash or a hang.
/// </summary>
public class HostilePeerTests
{
    private static readonly string PeerDir = Path.Combine(PublishedModule.RepoRoot, "tests", "Unit", "Remote", "FakePeer");

    private static Dictionary<string, string> Peer(string mode) => new()
    {
        ["BCMR_SSH"] = $"sh {Path.Combine(PeerDir, "fake_ssh.sh")}",
        ["BCMR_REMOTE"] = $"python3 {Path.Combine(PeerDir, "fake_serve.py")} {mode}",
    };

    private static void AssertCleanFailure(RunResult r)
    {
        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("Unhandled", r.Stderr);
        Assert.DoesNotContain("Exception", r.Stderr);
    }

    [RequiresToolsTheory("python3", "python3")]
    [InlineData("welcome", "Stat", "StatResponse", false)]        // a download: the first Stat
    [InlineData("list-wrong", "List", "ListResponse", true)]     // a recursive download: the directory's List
    public void A_download_answered_with_the_wrong_reply_type_is_a_protocol_error_that_names_both(string mode, string request, string expected, bool recursive)
    {
        using var t = new TempDir();
        string[] args = recursive ? ["copy", "-r", "peer:/d", t["out"]] : ["copy", "peer:/f", t["out"]];
        var r = BcmrRunner.Run(args, Peer(mode), timeout: TimeSpan.FromMinutes(1));
        AssertCleanFailure(r);
        Assert.Contains($"protocol error: the reply to {request} was Welcome, not {expected}", r.Stderr);
        Assert.False(File.Exists(t["out"]));
    }

    /// <summary>A server whose listing names entries that escape the destination (.., an absolute path, a/../..):
    /// a sync either way stops before changing anything, in either tree, and never asks the server to remove, move
    /// or touch a thing; nothing outside the local destination is written.</summary>
    [RequiresToolsTheory("python3", "python3")]
    [InlineData("download")]
    [InlineData("upload")]
    public void A_sync_against_a_listing_that_escapes_changes_nothing_anywhere(string direction)
    {
        using var t = new TempDir();
        var dst = Directory.CreateDirectory(t["work/dst"]).FullName;
        File.WriteAllText(Path.Combine(dst, "keep.txt"), "mine");
        Directory.CreateDirectory(t["work/src"]);
        File.WriteAllText(t["work/src/ok.txt"], "a source file");
        var asked = t["asked.log"];
        var env = new Dictionary<string, string>
        {
            ["BCMR_SSH"] = $"sh {Path.Combine(PeerDir, "fake_ssh.sh")}",
            ["BCMR_REMOTE"] = $"python3 {Path.Combine(PeerDir, "fake_serve.py")} evil-list {asked}",
        };
        var before = Trees.Describe(t.Path);
        string[] args = direction == "download"
            ? ["sync", "--delete", "peer:/d", dst]
            : ["sync", "--delete", t["work/src"], "peer:/d"];
        var r = BcmrRunner.Run(args, env, timeout: TimeSpan.FromMinutes(1));
        AssertCleanFailure(r);
        Assert.Contains("cannot be written here safely", r.Stderr);
        Assert.False(File.Exists(asked), File.Exists(asked) ? File.ReadAllText(asked) : "");
        Assert.Equal(before, Trees.Describe(t.Path));
        Assert.False(File.Exists(t["escaped.txt"]));
        Assert.False(File.Exists("/tmp/absolute.txt"));
    }

    /// <summary>A server whose block hashes disagree with the bytes (damage the transport did not see): a striped
    /// upload is never assembled under its name, a striped download never committed.</summary>
    [RequiresToolsTheory("python3", "python3")]
    [InlineData("upload")]
    [InlineData("download")]
    public void A_striped_file_whose_block_hashes_disagree_is_never_assembled_or_committed(string direction)
    {
        using var t = new TempDir();
        var data = t.WriteRandom("f.bin", 20 * 1024 * 1024 + 5, 3);
        var assembled = t["assembled"];
        var env = new Dictionary<string, string>
        {
            ["BCMR_SSH"] = $"sh {Path.Combine(PeerDir, "fake_ssh.sh")}",
            ["BCMR_REMOTE"] = $"python3 {Path.Combine(PeerDir, "fake_serve.py")} stripe-liar {assembled}",
            ["BCMR_STRIPE_MIN_MB"] = "16",
        };
        string[] args = direction == "upload"
            ? ["--json", "copy", "-P", "2", data, $"peer:{t["up.bin"]}"]
            : ["--json", "copy", "-P", "2", $"peer:{data}", t["down.bin"]];
        var r = BcmrRunner.Run(args, env, timeout: TimeSpan.FromMinutes(1));
        AssertCleanFailure(r);
        Assert.Contains("BLAKE3 differ", r.Stdout + r.Stderr);
        Assert.Equal("CorruptData", Assert.Single(r.JsonFiles).GetProperty("error_code").GetString());
        Assert.False(File.Exists(assembled), "the client asked the server to assemble a file whose blocks did not match");
        Assert.False(File.Exists(t["down.bin"]));
    }

    /// <summary>A small file's Get answered wrongly. A download this small writes on the reader thread (no disk
    /// thread); whatever the server does, the file that was at the destination stays as it was, the message names the
    /// file and the cause, and only a cut connection leaves a partial behind (for -C).</summary>
    [RequiresToolsTheory("python3", "python3")]
    [InlineData("wrong-hash", "BLAKE3 mismatch after download")]
    [InlineData("short", "received 12 bytes, the listing said 13")]
    [InlineData("long", "more than the 13 bytes it announced")]
    [InlineData("cut", "connection")]
    public void A_small_download_answered_wrongly_leaves_the_file_that_was_there_as_it_was(string how, string cause)
    {
        using var t = new TempDir();
        File.WriteAllText(t["src.txt"], "new contents\n"); // 13 bytes
        File.WriteAllText(t["dst.txt"], "old contents");
        var r = BcmrRunner.Run(["copy", "-f", "peer:" + t["src.txt"], t["dst.txt"]], Peer("get-liar " + how), timeout: TimeSpan.FromMinutes(1));
        AssertCleanFailure(r);
        Assert.Contains(cause, r.Stderr);
        Assert.True(r.Stderr.Contains(t["src.txt"]) || r.Stderr.Contains(t["dst.txt"]), r.Stderr);
        Assert.Equal("old contents", File.ReadAllText(t["dst.txt"]));
        Trees.AssertNoStagingFiles(t.Path, partials: how != "cut");
    }

    [RequiresToolsFact("python3", "python3")]
    public void A_resumed_upload_answered_with_the_wrong_reply_type_fails_cleanly()
    {
        using var t = new TempDir();
        var f = t.WriteRandom("f.bin", 1000, 1);
        var r = BcmrRunner.Run(["copy", "-C", f, "peer:/up.bin"], Peer("resume-wrong"), timeout: TimeSpan.FromMinutes(1));
        AssertCleanFailure(r);
        Assert.Contains("protocol error: the reply to Resume was Welcome, not ResumeResponse", r.Stderr);
    }

    [RequiresToolsFact("python3", "python3")]
    public void Check_against_a_wrong_listing_reply_fails_cleanly()
    {
        using var t = new TempDir();
        Directory.CreateDirectory(t["d"]);
        var r = BcmrRunner.Run(["check", "-r", t["d"], "peer:/d"], Peer("list-wrong"), timeout: TimeSpan.FromMinutes(1));
        AssertCleanFailure(r);
        Assert.Contains("protocol error: the reply to List was Welcome, not ListResponse", r.Stderr);
    }

    [RequiresToolsFact("python3", "python3")]
    public void A_server_that_goes_silent_after_Welcome_is_given_up_as_stalled_after_the_timeout()
    {
        using var t = new TempDir();
        var clock = Stopwatch.StartNew();
        var r = BcmrRunner.Run(["copy", "--timeout", "2", "peer:/f", t["out"]], Peer("stall"), timeout: TimeSpan.FromMinutes(1));
        clock.Stop();
        AssertCleanFailure(r);
        Assert.Contains("stalled: no data received or sent for", r.Stderr);
        Assert.Contains("(--timeout)", r.Stderr);
        Assert.False(File.Exists(t["out"]));
        // The watchdog looks every half second; the process gives up once, not after the test's own minute.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("soon")]
    public void A_timeout_that_is_not_a_number_of_seconds_is_a_usage_error(string value)
    {
        var r = BcmrRunner.Run(["copy", "--timeout", value, "a", "b"]);
        r.AssertExit(2);
    }

    [RequiresToolsFact("b3sum", "python3", "b3sum")]
    public void Download_C_from_a_bcmr_06_server_continues_the_partial_it_answers_with_the_hash_from_the_offset()
    {
        // bcmr 0.6 answers a Get at an offset with the BLAKE3 of the bytes it sent, ours with the whole file's;
        // before, our client took 0.6's answer for a mismatch, failed and deleted the partial file.
        using var t = new TempDir();
        var remote = t.WriteRandom("remote/f.bin", 9 * 1024 * 1024 + 11, 21);
        var bytes = File.ReadAllBytes(remote);
        var dst = t["local/f.bin"];
        Directory.CreateDirectory(t["local"]);
        File.WriteAllBytes(Bcmr.Engine.Local.Temporaries.PartialPath(dst), bytes[..(5 * 1024 * 1024)]);

        var r = BcmrRunner.Run(["--json", "copy", "-C", "peer:" + remote, dst], Peer("v06"), timeout: TimeSpan.FromMinutes(1));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(remote), Trees.Sha256(dst));
        var f = r.JsonFiles.Single();
        Assert.Equal(5 * 1024 * 1024, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal("blake3-prefix", f.GetProperty("resume_compared").GetString());
        Assert.Equal(Tool.Output("b3sum", "--no-names", remote).Trim(), f.GetProperty("blake3").GetString());
    }
}
