using Bcmr.Engine.Local;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// Remote -C never takes a stale copy for the source (issue 16 item 2): before, equal sizes under 4 MiB counted as
/// complete, and from 4 MiB on equal sizes plus the last block, so a 40 MiB image changed in its first MiB was skipped
/// in both directions with exit 0; and a failed upload never destroys the previous remote version (item 3).
/// </summary>
public class StaleResumeTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private const int MiB = 1024 * 1024;
    private RunResult Bcmr(params string[] args) => BcmrRunner.Run(args, fx.Env(), timeout: TimeSpan.FromMinutes(4));

    private sealed class Scene : IDisposable
    {
        public readonly TempDir Local = new();
        public readonly string RemoteDir;
        public Scene(SshdFixture fx)
        {
            RemoteDir = Path.Combine(fx.RemoteHome, "stale-" + Guid.NewGuid().ToString("n")[..10]);
            Directory.CreateDirectory(RemoteDir);
        }
        public string R(string rel) => Path.Combine(RemoteDir, rel);
        public void Dispose()
        {
            Local.Dispose();
            try { Directory.Delete(RemoteDir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Writes <paramref name="path"/> as <paramref name="like"/> with its first MiB changed, same size.</summary>
    private static void ChangedFirstMiB(string like, string path)
    {
        var b = File.ReadAllBytes(like);
        for (int i = 0; i < Math.Min(MiB, b.Length); i += 4096) b[i] ^= 0x5a;
        File.WriteAllBytes(path, b);
    }

    [SshTheory]
    [InlineData(40 * MiB)]
    [InlineData(MiB + 7)]
    public void Upload_C_over_a_same_size_remote_file_that_differs_copies_it_again(int size)
    {
        using var s = new Scene(fx);
        var src = s.Local.WriteRandom("img.bin", size, 1);
        ChangedFirstMiB(src, s.R("img.bin"));

        var r = Bcmr("--json", "copy", "-C", src, fx.Remote(s.R("img.bin")));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(s.R("img.bin")));
        var f = r.JsonFiles.Single();
        Assert.Equal("started_over", f.GetProperty("resume").GetString());
        Assert.Equal("blake3", f.GetProperty("resume_compared").GetString());

        // And an identical one is skipped, proven by the whole file's BLAKE3.
        var again = Bcmr("--json", "copy", "-C", src, fx.Remote(s.R("img.bin")));
        Assert.True(again.ExitCode == 0, again.ToString());
        var g = again.JsonFiles.Single();
        Assert.Equal("already_complete", g.GetProperty("resume").GetString());
        Assert.Equal("blake3", g.GetProperty("resume_compared").GetString());
    }

    [SshTheory]
    [InlineData(40 * MiB)]
    [InlineData(MiB + 7)]
    public void Download_C_over_a_same_size_local_file_that_differs_copies_it_again(int size)
    {
        using var s = new Scene(fx);
        var remote = s.R("img.bin");
        ResumeTests.WriteRandom(remote, size, 2);
        var dst = s.Local["img.bin"];
        ChangedFirstMiB(remote, dst);

        var r = Bcmr("--json", "copy", "-C", "-p", fx.Remote(remote), dst);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(remote), Trees.Sha256(dst));
        Assert.Equal("started_over", r.JsonFiles.Single().GetProperty("resume").GetString());
        Assert.Equal("blake3", r.JsonFiles.Single().GetProperty("resume_compared").GetString());

        // -p gave the copy the source's modification time: the next -C needs to read nothing to know.
        var again = Bcmr("--json", "copy", "-C", fx.Remote(remote), dst);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal("already_complete", again.JsonFiles.Single().GetProperty("resume").GetString());
        Assert.Equal("size+mtime", again.JsonFiles.Single().GetProperty("resume_compared").GetString());
    }

    [SshFact]
    public void Fast_download_C_does_not_continue_an_old_partial_after_the_remote_changed()
    {
        using var s = new Scene(fx);
        var remote = s.R("f.bin");
        ResumeTests.WriteRandom(remote, 12 * MiB, 3);
        var dst = s.Local["f.bin"];
        var old = File.ReadAllBytes(remote);
        for (int i = 0; i < old.Length; i += 4096) old[i] ^= 0x33; // an older version of the file
        File.WriteAllBytes(Temporaries.PartialPath(dst), old[..(9 * MiB)]);

        var r = Bcmr("--json", "copy", "-C", "--fast", fx.Remote(remote), dst);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(remote), Trees.Sha256(dst));
        var f = r.JsonFiles.Single();
        Assert.Equal(0, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal("blake3-prefix", f.GetProperty("resume_compared").GetString());
    }

    [SshFact]
    public void Upload_C_does_not_continue_a_server_partial_the_source_no_longer_matches()
    {
        using var s = new Scene(fx);
        var src = s.Local.WriteRandom("f.bin", 12 * MiB, 4);
        var previous = s.R("f.bin");
        ResumeTests.WriteRandom(previous, 3 * MiB, 5);
        var stale = File.ReadAllBytes(src)[..(9 * MiB)];
        stale[100] ^= 1;
        File.WriteAllBytes(Temporaries.PartialPath(previous), stale);

        var r = Bcmr("--json", "copy", "-C", src, fx.Remote(previous));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(previous));
        var f = r.JsonFiles.Single();
        Assert.Equal(0, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal("started_over", f.GetProperty("resume").GetString());

        // A partial that is the source's prefix is continued, and only the rest is sent.
        File.WriteAllBytes(Temporaries.PartialPath(previous), File.ReadAllBytes(src)[..(9 * MiB)]);
        var changed = s.Local.WriteRandom("f.bin", 12 * MiB, 4); // same bytes, rewritten
        var again = Bcmr("--json", "copy", "-C", changed, fx.Remote(previous));
        Assert.True(again.ExitCode == 0, again.ToString());
        var g = again.JsonFiles.Single();
        Assert.Equal(9 * MiB, g.GetProperty("resumed_from").GetInt64());
        Assert.Equal("blake3-prefix", g.GetProperty("resume_compared").GetString());
        Assert.Equal(3 * MiB, g.GetProperty("wire_bytes").GetInt64(), 3 * MiB / 10.0);
        Assert.Equal(Trees.Sha256(src), Trees.Sha256(previous));
    }

    [SshFact]
    public void A_dedup_upload_whose_source_changes_while_sent_keeps_the_previous_remote_version()
    {
        using var s = new Scene(fx);
        // Content the server's block store cannot have seen (it would then need no data at all).
        var src = s.Local.WriteRandom("big.bin", 32 * MiB, System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue));
        var previous = s.R("big.bin");
        ResumeTests.WriteRandom(previous, 5 * MiB, 7);
        var before = Trees.Sha256(previous);

        // Slow enough (8 MiB/s over 32 MiB) to change the source's last block while it is being sent.
        using var p = System.Diagnostics.Process.Start(BcmrRunner.StartInfo(["copy", "-f", "--bwlimit", "8M", src, fx.Remote(previous)], fx.Env()))!;
        var stderr = p.StandardError.ReadToEndAsync();
        // Once the server holds 8 MiB of the upload, the last block (sent last, 3 s later) is changed.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!Directory.EnumerateFiles(s.RemoteDir, "*.bcmr-tmp", new EnumerationOptions { AttributesToSkip = 0 })
                   .Any(f => new FileInfo(f).Length >= 8 * MiB))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60) && !p.HasExited, "the upload never got going:\n" + (p.HasExited ? stderr.Result : ""));
            Thread.Sleep(20);
        }
        using (var w = new FileStream(src, FileMode.Open, FileAccess.Write))
        {
            w.Position = 31 * MiB;
            w.Write(new byte[4096]);
        }
        Assert.True(p.WaitForExit(120_000), "the upload did not end");
        Assert.True(p.ExitCode != 0, "the upload of a changing file succeeded:\n" + stderr.Result);
        Assert.Contains("changed", stderr.Result);
        Assert.Equal(before, Trees.Sha256(previous));
        Trees.AssertNoStagingFiles(s.RemoteDir);
    }
}
