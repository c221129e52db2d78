using Bcmr.Engine.Platform;
using System.Diagnostics;
using System.Text.Json;
using Bcmr.Engine.Local;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>
/// Resumable copies (-C/-s/-a) through the real `bcmr` process: copies killed with SIGKILL and resumed, damaged and
/// truncated partial files, changed sources, corrupt sessions, and the session commands. Each test has its own data
/// directory, so sessions never touch the real home or each other.
/// </summary>
public class ResumeTests
{
    private const int Block = 4 * 1024 * 1024;

    /// <summary>One test's files: a source, a destination, and a private XDG_DATA_HOME for sessions.</summary>
    private sealed class Scene : IDisposable
    {
        public readonly TempDir Dir = new();
        public readonly string Src, Dst, Partial, Data;
        public readonly Dictionary<string, string> Env;

        public Scene(long size, int seed = 1, string name = "big.bin")
        {
            Src = Dir["src/" + name];
            Dst = Dir["dst/" + name];
            Partial = Temporaries.PartialPath(Dir["dst/" + name]);
            Data = Dir["data"];
            Directory.CreateDirectory(Dir["dst"]);
            if (size >= 0) WriteRandom(Src, size, seed);
            Env = new Dictionary<string, string> { ["XDG_DATA_HOME"] = Data };
        }

        public string SessionDir => Path.Combine(Data, "bcmr", "sessions");
        public string SessionFile => Path.Combine(SessionDir, SessionStore.IdFor(Src, Dst) + ".session");
        public ResumeSession Session => ResumeSession.Parse(File.ReadAllBytes(SessionFile));

        public RunResult Copy(params string[] flags) =>
            BcmrRunner.Run(["--json", "copy", .. flags, Src, Dst], Env);

        /// <summary>Starts a copy and SIGKILLs it once its partial file holds at least <paramref name="bytes"/>.
        /// False when the copy finished first (on a fast, idle machine the last megabytes can go between two polls):
        /// the caller decides what that means.</summary>
        /// <remarks>Paced (the default), the copy runs at a --bwlimit that leaves at least an eighth of a second between
        /// <paramref name="bytes"/> and the end of the file: unpaced, the native image on tmpfs covers the last 18 MiB
        /// of a 150 MiB file between two polls of a busy runner (CI, session 16: missed four times in a row).</remarks>
        public bool TryCopyAndKillAt(long bytes, string[] flags, bool paced = true)
        {
            string[] pace = paced ? ["--bwlimit", Math.Max(32L << 20, (new FileInfo(Src).Length - bytes) * 8).ToString()] : [];
            using var p = Process.Start(BcmrRunner.StartInfo(["copy", "-q", .. pace, .. flags, Src, Dst], Env))!;
            p.StandardInput.Close();
            _ = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            bool killed = false;
            while (!p.HasExited)
            {
                long len;
                try { len = new FileInfo(Partial).Length; }
                catch (FileNotFoundException) { len = 0; } // not created yet, or renamed into place: the copy is done
                if (len >= bytes)
                {
                    p.Kill(); // SIGKILL on Linux: no handler, no cleanup, as in a crash
                    killed = true;
                    break;
                }
                if (clock.Elapsed > TimeSpan.FromMinutes(2)) { p.Kill(); throw new TimeoutException("copy did not reach " + bytes); }
                Thread.Sleep(0);
            }
            p.WaitForExit();
            if (!killed) Assert.True(p.ExitCode == 0 && File.Exists(Dst), $"the copy neither reached {bytes} nor finished: {stderr.Result}");
            return killed;
        }

        /// <summary>As <see cref="TryCopyAndKillAt"/>, for points the copy cannot pass unnoticed.</summary>
        public void CopyAndKillAt(long bytes, params string[] flags) =>
            Assert.True(TryCopyAndKillAt(bytes, flags), $"the copy finished before it could be killed at {bytes}");

        public void Dispose() => Dir.Dispose();
    }

    internal static void WriteRandom(string path, long size, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var noise = new Noise(seed);
        var buf = new byte[1 << 20];
        using var f = File.Create(path);
        for (long done = 0; done < size; done += buf.Length)
        {
            noise.Fill(buf);
            f.Write(buf, 0, (int)Math.Min(buf.Length, size - done));
        }
    }

    private static string B3(string path) => Tool.Output("b3sum", "--no-names", path).Trim();

    private static JsonElement FileLine(RunResult r) => r.JsonFiles.Single();

    private static void AssertCopied(Scene s, RunResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Trees.Sha256(s.Src), Trees.Sha256(s.Dst));
        Assert.False(File.Exists(s.Partial), "partial file left behind");
        Assert.False(File.Exists(s.SessionFile), "session left behind after a completed copy");
    }

    // ---- the crash test ---------------------------------------------------------------------------------------

    [Fact]
    public void Copy_killed_at_20_random_points_and_resumed_each_time_ends_byte_identical()
    {
        const long size = 200L * 1024 * 1024 + 12345; // several 64 MiB checkpoints and a partial last block
        using var s = new Scene(size, seed: 42);
        var rnd = new Random(2026);
        var points = Enumerable.Range(0, 22).Select(_ => (long)(rnd.NextDouble() * (size - 24L * 1024 * 1024)) + 1).Order().ToList();

        long lastRecorded = 0;
        int resumedKills = 0, missed = 0;
        foreach (var point in points)
        {
            // Unpaced: the kills land wherever the copy is, mid-write and mid-checkpoint included.
            if (!s.TryCopyAndKillAt(point, ["-C"], paced: false))
            {
                // Finished before the poll saw the point: a completed copy leaves no session; start the file again.
                Assert.False(File.Exists(s.SessionFile), "a completed copy leaves no session behind");
                File.Delete(s.Dst);
                lastRecorded = 0;
                missed++;
                continue;
            }
            Assert.False(File.Exists(s.Dst), "a killed copy must not leave anything under the final name");
            if (File.Exists(s.SessionFile))
            {
                var recorded = (long)s.Session.BytesWritten;
                // A resumed run continues; one that started over would record less than before.
                Assert.True(recorded >= lastRecorded, $"session went back from {lastRecorded} to {recorded}: the run did not resume");
                Assert.Equal(0, recorded % (64L * 1024 * 1024));
                Assert.True(new FileInfo(s.Partial).Length >= recorded, "the session claims bytes the partial file does not have");
                if (lastRecorded > 0) resumedKills++;
                lastRecorded = recorded;
            }
        }
        Assert.True(resumedKills >= 5, $"only {resumedKills} kills happened after a checkpoint");
        Assert.True(missed <= 4, $"{missed} of {points.Count} copies finished before they could be killed");

        var final = s.Copy("-C");
        AssertCopied(s, final);
        var f = FileLine(final);
        Assert.Equal("resumed", f.GetProperty("resume").GetString());
        Assert.Equal(lastRecorded, f.GetProperty("resumed_from").GetInt64());
        // Every recorded block was read back and proven before its chaining value went into the reported hash.
        Assert.Equal(lastRecorded, f.GetProperty("resume_check_bytes").GetInt64());
        Assert.Equal("chaining-values", f.GetProperty("resume_compared").GetString());
        Assert.Equal(size - lastRecorded, f.GetProperty("bytes").GetInt64());
        // The whole-file hash comes from the carried-forward block hashes plus the new blocks: it must be b3sum's.
        Assert.Equal(B3(s.Src), f.GetProperty("blake3").GetString());
    }

    /// <summary>Interrupts a copy after its second checkpoint (128 MiB recorded) and returns the recorded length.</summary>
    private static long Interrupt(Scene s, long at = 132L * 1024 * 1024, params string[] flags)
    {
        // The last megabytes can go between two polls of a busy test runner: a copy that finished leaves only its
        // destination (no session, no partial), so it is removed and the same first run tried again.
        for (int attempt = 1; !s.TryCopyAndKillAt(at, ["-C", .. flags]); attempt++)
        {
            Assert.True(attempt < 4, $"the copy finished before it could be killed at {at}, {attempt} times");
            Assert.False(File.Exists(s.SessionFile), "a completed copy leaves no session behind");
            File.Delete(s.Dst);
        }
        Assert.True(File.Exists(s.SessionFile), $"no session after {at} bytes");
        return (long)s.Session.BytesWritten;
    }

    [Fact]
    public void Resume_reads_back_exactly_the_recorded_prefix_once()
    {
        using var s = new Scene(200L * 1024 * 1024);
        long recorded = Interrupt(s, at: 70L * 1024 * 1024);
        // Killed past 70 MiB: the session holds the first checkpoint, or the second when the copy ran on past 128 MiB
        // before the kill landed (a busy runner); either way whole checkpoints, and resume must read back exactly those.
        Assert.True(recorded is 64L * 1024 * 1024 or 128L * 1024 * 1024, $"recorded {recorded} bytes");
        var r = s.Copy("-C");
        AssertCopied(s, r);
        Assert.Equal(recorded, FileLine(r).GetProperty("resume_check_bytes").GetInt64());

        using var s2 = new Scene(200L * 1024 * 1024, seed: 2);
        recorded = Interrupt(s2, at: 195L * 1024 * 1024);
        Assert.Equal(192L * 1024 * 1024, recorded);
        r = s2.Copy("-C");
        AssertCopied(s2, r);
        Assert.Equal(recorded, FileLine(r).GetProperty("resume_check_bytes").GetInt64());
        Assert.Equal(192L * 1024 * 1024, FileLine(r).GetProperty("resumed_from").GetInt64());
    }

    // ---- damaged partial files ----------------------------------------------------------------------------------

    private static void FlipByte(string path, long at)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = at;
        int b = f.ReadByte();
        f.Position = at;
        f.WriteByte((byte)~b);
    }

    [Fact]
    public void Corrupted_tail_block_is_detected_and_copied_again()
    {
        using var s = new Scene(150L * 1024 * 1024);
        long recorded = Interrupt(s);
        FlipByte(s.Partial, recorded - 1000);
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var f = FileLine(r);
        Assert.Equal(recorded - Block, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal(recorded, f.GetProperty("resume_check_bytes").GetInt64());
        Assert.Contains("1 recorded block(s) missing or damaged", f.GetProperty("message").GetString());
    }

    [Fact]
    public void Several_damaged_blocks_at_the_end_are_all_sent_again()
    {
        using var s = new Scene(150L * 1024 * 1024);
        long recorded = Interrupt(s);
        for (int i = 1; i <= 3; i++) FlipByte(s.Partial, recorded - i * Block + 17);
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var f = FileLine(r);
        Assert.Equal(recorded - 3L * Block, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal(recorded - 2L * Block, f.GetProperty("resume_check_bytes").GetInt64());
        Assert.Contains("3 recorded block(s) missing or damaged", f.GetProperty("message").GetString());
    }

    [Fact]
    public void A_block_damaged_inside_the_recorded_prefix_is_found_and_the_reported_hash_is_true()
    {
        // Before: only the last recorded block was read back, so a damaged block 5 stayed in the copy while the
        // result reported the source's BLAKE3, computed from the session's chaining values.
        using var s = new Scene(150L * 1024 * 1024);
        long recorded = Interrupt(s);
        FlipByte(s.Partial, 5L * Block + 123);
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var f = FileLine(r);
        Assert.Equal(5L * Block, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal(6L * Block, f.GetProperty("resume_check_bytes").GetInt64());
        Assert.Equal(B3(s.Src), f.GetProperty("blake3").GetString());
        Assert.Equal(B3(s.Dst), f.GetProperty("blake3").GetString());
        Assert.Contains($"{recorded / Block - 5} recorded block(s) missing or damaged on disk (block 5 on)", f.GetProperty("message").GetString());
    }

    [Fact]
    public void Truncated_partial_file_resumes_from_the_last_whole_recorded_block()
    {
        using var s = new Scene(150L * 1024 * 1024);
        long recorded = Interrupt(s);
        using (var f = new FileStream(s.Partial, FileMode.Open)) f.SetLength(recorded - Block - 5);
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var line = FileLine(r);
        Assert.Equal(recorded - 2L * Block, line.GetProperty("resumed_from").GetInt64());
        Assert.Equal(recorded - 2L * Block, line.GetProperty("resume_check_bytes").GetInt64());
        Assert.Contains("2 recorded block(s) missing or damaged", line.GetProperty("message").GetString());
    }

    [Fact]
    public void Empty_partial_file_starts_over_with_a_message()
    {
        using var s = new Scene(150L * 1024 * 1024);
        Interrupt(s);
        using (var f = new FileStream(s.Partial, FileMode.Open)) f.SetLength(0);
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var line = FileLine(r);
        Assert.Equal("started_over", line.GetProperty("resume").GetString());
        Assert.Equal(0, line.GetProperty("resumed_from").GetInt64());
        Assert.Contains("none of the 32 recorded block(s) is on disk", line.GetProperty("message").GetString());
    }

    [Fact]
    public void Source_changed_between_runs_starts_over_and_says_so()
    {
        using var s = new Scene(150L * 1024 * 1024);
        Interrupt(s);
        FlipByte(s.Src, 5); // same size, new content and modification time
        File.SetLastWriteTimeUtc(s.Src, DateTime.UtcNow.AddMinutes(1));
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var line = FileLine(r);
        Assert.Equal("started_over", line.GetProperty("resume").GetString());
        Assert.Contains("source changed since the interrupted copy (modification time changed); starting over", line.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("empty")]
    public void Corrupt_or_truncated_session_is_never_trusted(string damage)
    {
        using var s = new Scene(150L * 1024 * 1024);
        Interrupt(s);
        // Make the partial file lie too: if the session were trusted anyway, the copy would keep these bytes.
        FlipByte(s.Partial, 10);
        var bytes = File.ReadAllBytes(s.SessionFile);
        if (damage == "flip") bytes[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(s.SessionFile, damage switch { "truncate" => bytes[..(bytes.Length - 40)], "empty" => [], _ => bytes });
        var r = s.Copy("-C");
        AssertCopied(s, r);
        var line = FileLine(r);
        Assert.Equal("started_over", line.GetProperty("resume").GetString());
        Assert.Contains($"session {s.SessionFile} is not usable: ", line.GetProperty("message").GetString());
        Assert.Contains(damage == "empty" ? "truncated" : "checksum mismatch", line.GetProperty("message").GetString());
    }

    [Fact]
    public void Stale_session_is_refused()
    {
        using var s = new Scene(150L * 1024 * 1024);
        Interrupt(s);
        var old = s.Session;
        old.UpdatedAt = ResumeSession.NowSeconds() - 8 * 24 * 3600;
        File.WriteAllBytes(s.SessionFile, old.Serialize());
        var r = s.Copy("-C");
        AssertCopied(s, r);
        Assert.Contains("days old (older than 7 days)", FileLine(r).GetProperty("message").GetString());
        Assert.Equal("started_over", FileLine(r).GetProperty("resume").GetString());
    }

    [Fact]
    public void Session_written_by_bcmr_06_in_place_is_resumed()
    {
        // bcmr 0.6 writes into the final name and records only standalone block hashes (no extension).
        using var s = new Scene(100L * 1024 * 1024 + 99);
        var src = File.ReadAllBytes(s.Src);
        File.WriteAllBytes(s.Dst, src[..(20 * Block)]);
        var meta = Fs.Lstat(s.Src);
        var roots = Enumerable.Range(0, 20).Select(i => Bcmr.Engine.Hashing.Blake3.Hash(src.AsSpan(i * Block, Block))).ToList();
        var session = new ResumeSession
        {
            Source = s.Src, Destination = s.Dst, SourceSize = (ulong)meta.Size, SourceMtime = (ulong)meta.MtimeSec,
            SourceInode = meta.Inode, BytesWritten = 20UL * Block, Blocks = new Bcmr.Engine.Hashing.BlockLedger(Bcmr.Engine.Hashing.BlockHashKind.Root, roots),
            CreatedAt = ResumeSession.NowSeconds(), UpdatedAt = ResumeSession.NowSeconds(),
        };
        var bytes = BcmrLayout(session);
        Assert.Equal(session.Source, ResumeSession.Parse(bytes).Source);
        Directory.CreateDirectory(s.SessionDir);
        File.WriteAllBytes(s.SessionFile, bytes);

        var r = s.Copy("-C");
        AssertCopied(s, r);
        Assert.Equal(20L * Block, FileLine(r).GetProperty("resumed_from").GetInt64());
        // Without chaining values for the prefix we cannot finish the whole-file hash: we say nothing rather than guess.
        Assert.Equal(JsonValueKind.Null, FileLine(r).GetProperty("blake3").ValueKind);

        // With -V the same resume is verified end to end and reports b3sum's hash.
        File.WriteAllBytes(s.Dst, src[..(20 * Block)]);
        File.WriteAllBytes(s.SessionFile, bytes);
        r = s.Copy("-C", "-V");
        AssertCopied(s, r);
        Assert.Equal(B3(s.Src), FileLine(r).GetProperty("blake3").GetString());
    }

    [Fact]
    public void Session_written_by_bcmr_06_continued_and_killed_again_keeps_roots_and_resumes()
    {
        // Continuing bcmr 0.6's bytes, our checkpoints keep its kind of slot (standalone roots: the prefix has no
        // chaining values), and a second interruption resumes from our own root session.
        using var s = new Scene(200L * 1024 * 1024 + 5);
        var src = File.ReadAllBytes(s.Src);
        File.WriteAllBytes(s.Dst, src[..(20 * Block)]);
        var meta = Fs.Lstat(s.Src);
        var session = new ResumeSession
        {
            Source = s.Src, Destination = s.Dst, SourceSize = (ulong)meta.Size, SourceMtime = (ulong)meta.MtimeSec,
            SourceInode = meta.Inode, BytesWritten = 20UL * Block,
            Blocks = new Bcmr.Engine.Hashing.BlockLedger(Bcmr.Engine.Hashing.BlockHashKind.Root,
                Enumerable.Range(0, 20).Select(i => Bcmr.Engine.Hashing.Blake3.Hash(src.AsSpan(i * Block, Block)))),
            CreatedAt = ResumeSession.NowSeconds(), UpdatedAt = ResumeSession.NowSeconds(),
        };
        Directory.CreateDirectory(s.SessionDir);
        File.WriteAllBytes(s.SessionFile, BcmrLayout(session));

        s.CopyAndKillAt(150L * 1024 * 1024, "-C"); // past the checkpoint at 80 + 64 MiB
        var ours = s.Session;
        Assert.Equal(144L * 1024 * 1024, (long)ours.BytesWritten);
        Assert.Equal(Bcmr.Engine.Hashing.BlockHashKind.Root, ours.Blocks.Kind);
        Assert.Equal(0, File.ReadAllBytes(s.SessionFile)[^9]); // BCX2 slot kind 0: roots
        for (int i = 0; i < ours.Blocks.Count; i++)
            Assert.Equal(Bcmr.Engine.Hashing.Blake3.Hash(src.AsSpan(i * Block, Block)), ours.Blocks.Hash(i));

        var r = s.Copy("-C");
        AssertCopied(s, r);
        Assert.Equal(144L * 1024 * 1024, FileLine(r).GetProperty("resumed_from").GetInt64());
        Assert.Equal(144L * 1024 * 1024, FileLine(r).GetProperty("resume_check_bytes").GetInt64());
    }

    [Fact]
    public void Session_slots_hold_each_blocks_chaining_value_which_combine_to_b3sum_of_the_prefix()
    {
        using var s = new Scene(150L * 1024 * 1024 + 3, seed: 4);
        long recorded = Interrupt(s);
        var session = s.Session;
        Assert.Equal(Bcmr.Engine.Hashing.BlockHashKind.ChainingValue, session.Blocks.Kind);
        Assert.Equal(1, File.ReadAllBytes(s.SessionFile)[^9]); // BCX2 slot kind 1: chaining values
        int n = (int)(recorded / Block);
        Assert.Equal(n, session.Blocks.Count);
        var src = File.ReadAllBytes(s.Src);
        // Each slot is the block's chaining value at its index, computed here apart from the engine's code path...
        for (int i = 0; i < n; i++)
            Assert.Equal(Bcmr.Tests.Engine.ResumeUnitTests.ReferenceChainingValue(src.AsSpan(i * Block, Block), i), session.Blocks.Hash(i));
        // ...and the slots are the nodes of the source's BLAKE3 tree: joined, they give b3sum of the recorded prefix.
        var prefix = s.Dir["prefix.bin"];
        File.WriteAllBytes(prefix, src[..(int)recorded]);
        Assert.Equal(B3(prefix), Bcmr.Engine.Hashing.Blake3.ToHex(session.Blocks.FileHash(recorded, [])!));
    }

    [Fact]
    public void Session_of_an_older_build_bcx1_is_resumed_from_its_chaining_values()
    {
        // The previous build wrote standalone roots in the slots and the chaining values in a "BCX1" extension.
        using var s = new Scene(150L * 1024 * 1024 + 11, seed: 6);
        long recorded = Interrupt(s);
        var cvs = s.Session.Blocks.Hashes;
        var src = File.ReadAllBytes(s.Src);
        var roots = new ResumeSession
        {
            Source = s.Src, Destination = s.Dst, SourceSize = s.Session.SourceSize, SourceMtime = s.Session.SourceMtime,
            SourceInode = s.Session.SourceInode, BytesWritten = (ulong)recorded,
            Blocks = new Bcmr.Engine.Hashing.BlockLedger(Bcmr.Engine.Hashing.BlockHashKind.Root,
                Enumerable.Range(0, cvs.Count).Select(i => Bcmr.Engine.Hashing.Blake3.Hash(src.AsSpan(i * Block, Block)))),
            CreatedAt = ResumeSession.NowSeconds(), UpdatedAt = ResumeSession.NowSeconds(),
        };
        var payload = BcmrLayout(roots)[..^8].ToList();
        payload.AddRange("BCX1"u8.ToArray());
        payload.AddRange(BitConverter.GetBytes(s.Session.SourceMtimeNsec!.Value));
        payload.AddRange(BitConverter.GetBytes((uint)cvs.Count));
        foreach (var cv in cvs) payload.AddRange(cv);
        File.WriteAllBytes(s.SessionFile, [.. payload, .. Bcmr.Engine.Hashing.Blake3.Hash(payload.ToArray())[..8]]);

        var r = s.Copy("-C");
        AssertCopied(s, r);
        var f = FileLine(r);
        Assert.Equal("resumed", f.GetProperty("resume").GetString());
        Assert.Equal(recorded, f.GetProperty("resumed_from").GetInt64());
        Assert.Equal(recorded, f.GetProperty("resume_check_bytes").GetInt64());
        Assert.Equal(B3(s.Src), f.GetProperty("blake3").GetString());
    }

    /// <summary>A session exactly as bcmr 0.6 serialises it: our layout minus the extension.</summary>
    private static byte[] BcmrLayout(ResumeSession s)
    {
        var ours = s.Serialize();
        // Ours = bcmr fields | "BCX2" | u32 nsec | u8 slot kind | trailer. Cut the extension and recompute the trailer.
        var payload = ours[..(ours.Length - 8 - 9)];
        Assert.Equal("BCX2"u8.ToArray(), ours[^17..^13]);
        return [.. payload, .. Bcmr.Engine.Hashing.Blake3.Hash(payload)[..8]];
    }

    // ---- flags and modes ------------------------------------------------------------------------------------

    [Fact]
    public void Completed_copy_leaves_no_session_and_a_plain_copy_creates_none()
    {
        using var s = new Scene(80L * 1024 * 1024);
        var r = s.Copy();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.False(Directory.Exists(s.SessionDir), "a copy without resume flags created a session directory");
        Assert.False(File.Exists(s.Partial));
        var line = FileLine(r);
        Assert.False(line.TryGetProperty("resume", out _));

        File.Delete(s.Dst);
        r = s.Copy("-C");
        AssertCopied(s, r);
        Assert.Empty(Directory.Exists(s.SessionDir) ? Directory.GetFiles(s.SessionDir) : []);
        Assert.Equal(B3(s.Src), FileLine(r).GetProperty("blake3").GetString());
        Assert.Equal("fresh", FileLine(r).GetProperty("resume").GetString());
    }

    [Fact]
    public void Rerun_after_completion_with_preserve_skips_as_already_complete()
    {
        using var s = new Scene(10L * 1024 * 1024);
        AssertCopied(s, s.Copy("-C", "-p"));
        var r = s.Copy("-C", "-p");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("skipped", FileLine(r).GetProperty("status").GetString());
        Assert.Equal("already_complete", FileLine(r).GetProperty("resume").GetString());
        Assert.Equal("size+mtime", FileLine(r).GetProperty("resume_compared").GetString()); // as a download says it
        Assert.Equal(0, r.JsonResult.GetProperty("bytes_total").GetInt64());
    }

    [Fact]
    public void Verify_after_resume_passes_and_a_corrupted_resumed_copy_is_removed()
    {
        using var s = new Scene(150L * 1024 * 1024);
        Interrupt(s);
        var r = s.Copy("-C", "-V");
        AssertCopied(s, r);
        Assert.Equal(B3(s.Src), FileLine(r).GetProperty("blake3").GetString());

        using var t = new Scene(150L * 1024 * 1024, seed: 9);
        Interrupt(t);
        var env = new Dictionary<string, string>(t.Env) { ["BCMR_FAULT_CORRUPT_STAGED"] = "big.bin" };
        var bad = BcmrRunner.Run(["--json", "copy", "-C", "-V", t.Src, t.Dst], env, executable: BcmrRunner.FaultHost);
        bad.AssertExit(1);
        Assert.Contains("verification failed", bad.JsonResult.GetProperty("error").GetString());
        Assert.False(File.Exists(t.Dst));
        Assert.False(File.Exists(t.Partial), "a partial file that failed verification must not be resumed later");
        Assert.False(File.Exists(t.SessionFile));
    }

    [Fact]
    public void Several_files_resume_at_once_with_jobs()
    {
        using var dir = new TempDir();
        var data = dir["data"];
        var env = new Dictionary<string, string> { ["XDG_DATA_HOME"] = data };
        for (int i = 0; i < 3; i++) WriteRandom(dir[$"src/f{i}.bin"], 180L * 1024 * 1024 + i, seed: 10 + i); // wide window: all three between 64 MiB and the end
        Directory.CreateDirectory(dir["dst"]);
        // Kill once every file has passed its first checkpoint.
        using (var p = Process.Start(BcmrRunner.StartInfo(["copy", "-q", "-C", "-r", "-j", "3", dir["src"], dir["dst"]], env))!)
        {
            p.StandardInput.Close();
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(1))
            {
                var sessions = Path.Combine(data, "bcmr", "sessions");
                if (Directory.Exists(sessions) && Directory.GetFiles(sessions, "*.session").Length == 3) { p.Kill(); break; }
                Thread.Sleep(1);
            }
            p.WaitForExit();
        }
        Assert.Equal(3, Directory.GetFiles(Path.Combine(data, "bcmr", "sessions"), "*.session").Length);
        var r = BcmrRunner.Run(["--json", "copy", "-C", "-r", "-j", "3", dir["src"], dir["dst"]], env);
        Assert.True(r.ExitCode == 0, r.ToString());
        Trees.AssertIdentical(dir["src"], dir["dst/src"]);
        Trees.AssertNoStagingFiles(dir["dst"]);
        Assert.All(r.JsonFiles, f => Assert.True(f.GetProperty("resumed_from").GetInt64() >= 64L * 1024 * 1024, f.ToString()));
        Assert.Empty(Directory.GetFiles(Path.Combine(data, "bcmr", "sessions")));
    }

    [Fact]
    public void Append_trusts_length_and_replaces_a_longer_destination()
    {
        using var s = new Scene(30L * 1024 * 1024 + 7);
        var src = File.ReadAllBytes(s.Src);
        File.WriteAllBytes(s.Dst, src[..(10 * 1024 * 1024 + 3)]); // e.g. left by an interrupted cp
        var r = s.Copy("-a");
        AssertCopied(s, r);
        Assert.Equal("resumed", FileLine(r).GetProperty("resume").GetString());
        Assert.Equal(8L * 1024 * 1024, FileLine(r).GetProperty("resumed_from").GetInt64()); // rounded down to a block
        Assert.Equal(0, FileLine(r).GetProperty("resume_check_bytes").GetInt64());
        Assert.Equal(B3(s.Src), FileLine(r).GetProperty("blake3").GetString());

        r = s.Copy("-a");
        Assert.Equal("already_complete", FileLine(r).GetProperty("resume").GetString());
        Assert.Equal("size", FileLine(r).GetProperty("resume_compared").GetString());

        File.WriteAllBytes(s.Dst, [.. src, 1, 2, 3]);
        r = s.Copy("-a");
        AssertCopied(s, r);
        Assert.Contains("longer than the source", FileLine(r).GetProperty("message").GetString());
    }

    [Fact]
    public void Strict_proves_by_hash()
    {
        using var s = new Scene(30L * 1024 * 1024 + 7);
        var src = File.ReadAllBytes(s.Src);
        File.WriteAllBytes(s.Dst, src);
        var r = s.Copy("-s");
        Assert.Equal("already_complete", FileLine(r).GetProperty("resume").GetString());
        Assert.Equal("blake3", FileLine(r).GetProperty("resume_compared").GetString());
        Assert.Contains("identical to the source", FileLine(r).GetProperty("message").GetString());

        // Same size, one byte different in block 5: -a would call this complete; -s continues from block 5.
        var wrong = (byte[])src.Clone();
        wrong[5 * Block + 100] ^= 0xFF;
        File.WriteAllBytes(s.Dst, wrong);
        r = s.Copy("-s");
        AssertCopied(s, r);
        Assert.Equal(5L * Block, FileLine(r).GetProperty("resumed_from").GetInt64());

        File.WriteAllBytes(s.Dst, src[..(12 * 1024 * 1024 + 5)]);
        r = s.Copy("-s");
        AssertCopied(s, r);
        Assert.Equal(12L * 1024 * 1024, FileLine(r).GetProperty("resumed_from").GetInt64());
        Assert.Equal(B3(s.Src), FileLine(r).GetProperty("blake3").GetString());
    }

    /// <summary>The descriptor the partial file was opened as, in an strace -f log; the call may be split by another
    /// thread's ("openat(... &lt;unfinished ...&gt;" then "&lt;... openat resumed&gt;) = N" on the same pid).</summary>
    private static string PartialDescriptor(string[] lines)
    {
        for (int i = 0; i < lines.Length; i++)
        {
            var open = System.Text.RegularExpressions.Regex.Match(lines[i], @"^(\d+)\s+openat\(.*\.big\.bin\.[0-9a-f]{20}\.bcmr-part");
            if (!open.Success) continue;
            var done = System.Text.RegularExpressions.Regex.Match(lines[i], @"\) = (\d+)$");
            if (done.Success) return done.Groups[1].Value;
            var pid = open.Groups[1].Value;
            for (int j = i + 1; j < lines.Length; j++)
            {
                var resumed = System.Text.RegularExpressions.Regex.Match(lines[j], $@"^{pid}\s+<\.\.\. openat resumed>.*\) = (\d+)$");
                if (resumed.Success) return resumed.Groups[1].Value;
            }
        }
        throw new InvalidOperationException("the partial file's openat is not in the strace log");
    }

    [RequiresToolsFact("strace", "strace")]
    public void Checkpoint_syncs_the_data_before_it_replaces_the_session()
    {
        using var s = new Scene(140L * 1024 * 1024);
        var log = s.Dir["strace.log"];
        var args = new List<string> { "-f", "-o", log, "-e", "trace=openat,pwrite64,fdatasync,fsync,rename,renameat,renameat2", BcmrRunner.Executable, "copy", "-q", "-C", s.Src, s.Dst };
        var psi = BcmrRunner.StartInfo([]);
        psi.FileName = "strace";
        psi.ArgumentList.Clear();
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in s.Env) psi.Environment[k] = v;
        using (var p = Process.Start(psi)!) { p.StandardInput.Close(); p.StandardOutput.ReadToEnd(); p.WaitForExit(); Assert.Equal(0, p.ExitCode); }
        Assert.Equal(Trees.Sha256(s.Src), Trees.Sha256(s.Dst));

        // Find the partial file's descriptor, then check: every session rename comes after a data sync of that
        // descriptor with no write to it in between.
        var lines = File.ReadAllLines(log);
        var fd = PartialDescriptor(lines);
        bool dirtySinceSync = false;
        int checkpoints = 0;
        foreach (var l in lines)
        {
            if (l.Contains($"pwrite64({fd},")) dirtySinceSync = true;
            // strace may split a call another thread interrupts: "fdatasync(9 <unfinished ...>".
            else if (System.Text.RegularExpressions.Regex.IsMatch(l, $@"\b(fdatasync|fsync)\({fd}[) ]")) dirtySinceSync = false;
            else if (l.Contains(".session.tmp") && l.Contains("rename"))
            {
                Assert.False(dirtySinceSync, "a session was saved while the data it describes was not yet synced:\n" + l);
                checkpoints++;
            }
        }
        Assert.Equal(2, checkpoints); // at 64 and 128 MiB
    }

    // ---- bcmr session ----------------------------------------------------------------------------------------

    [Fact]
    public void Session_list_show_and_clear()
    {
        using var s = new Scene(150L * 1024 * 1024);
        long recorded = Interrupt(s);
        var list = BcmrRunner.Run(["--json", "session", "list"], s.Env);
        list.AssertExit(0);
        var entry = list.JsonLines.Single();
        Assert.Equal(s.Src, entry.GetProperty("source").GetString());
        Assert.Equal(s.Dst, entry.GetProperty("destination").GetString());
        Assert.Equal(recorded, entry.GetProperty("bytes_done").GetInt64());
        Assert.Equal(150L * 1024 * 1024, entry.GetProperty("bytes_total").GetInt64());
        Assert.True(entry.GetProperty("age_secs").GetDouble() < 600);
        var id = entry.GetProperty("id").GetString()!;

        var text = BcmrRunner.Run(["session", "list"], s.Env);
        Assert.Contains(id, text.Stdout);
        Assert.Contains(s.Dst, text.Stdout);
        var show = BcmrRunner.Run(["session", "show", id[..6]], s.Env);
        Assert.Contains($"done:        {recorded} of {150L * 1024 * 1024} bytes", show.Stdout);
        BcmrRunner.Run(["session", "show", "ffffffffffff0000"], s.Env).AssertExit(1);

        var clear = BcmrRunner.Run(["session", "clear", s.Dst], s.Env);
        clear.AssertExit(0);
        Assert.Contains("removed 1 session", clear.Stdout);
        Assert.False(File.Exists(s.SessionFile));
        Assert.False(File.Exists(s.Partial), "clearing a session must remove the partial file it vouched for");
        Assert.Contains("no sessions", BcmrRunner.Run(["session", "list"], s.Env).Stdout);
        Assert.Equal("700", Convert.ToString((int)File.GetUnixFileMode(s.SessionDir) & 0x1FF, 8));
    }
}
