using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>Wire compression and the dedup store through the real sshd and real `bcmr serve` processes.</summary>
public class WireCompressionDedupTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private const int MiB = 1024 * 1024;

    private sealed class Scene : IDisposable
    {
        public readonly TempDir Local = new();
        public readonly string RemoteDir;
        public readonly string Cas;

        public Scene(SshdFixture fx)
        {
            var id = Guid.NewGuid().ToString("n")[..12];
            RemoteDir = Path.Combine(fx.RemoteHome, "w-" + id);
            Cas = Path.Combine(fx.Dir, "cas-" + id);
            Directory.CreateDirectory(RemoteDir);
        }

        public string R(string rel) => Path.Combine(RemoteDir, rel);

        public void Dispose()
        {
            Local.Dispose();
            foreach (var d in new[] { RemoteDir, Cas })
                try { Directory.Delete(d, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>A remote command with extra server environment (its own store, cap, codecs).</summary>
    private string Server(Scene s, string name, string exports)
    {
        var path = s.Local["server-" + name];
        File.WriteAllText(path, $"#!/bin/sh\nexport BCMR_CAS_DIR='{s.Cas}' {exports}\nexec '{fx.RemoteBcmr}' \"$@\"\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1ED);
        return path;
    }

    private RunResult Bcmr(string server, params string[] args) =>
        BcmrRunner.Run(["--json", .. args], fx.Env(new() { ["BCMR_REMOTE"] = server }), timeout: TimeSpan.FromMinutes(4));

    /// <summary>Source-code-like text: compresses several times, like the reference's "source-like" data.</summary>
    internal static void WriteText(string path, long size, int seed)
    {
        var rnd = new Random(seed);
        string[] words = ["public", "static", "int", "string", "return", "var", "if", "else", "foreach", "in", "new", "List", "Count", "Path", "File", "await", "async", "bytes", "offset", "length"];
        var sb = new StringBuilder();
        using var f = File.Create(path);
        long written = 0;
        while (written < size)
        {
            sb.Clear();
            sb.Append(' ', 4 * rnd.Next(0, 4));
            for (int i = rnd.Next(3, 10); i > 0; i--) sb.Append(words[rnd.Next(words.Length)]).Append(rnd.Next(4) == 0 ? rnd.Next(100).ToString() : "").Append(' ');
            sb.Append(rnd.Next(3) == 0 ? "{\n" : ";\n");
            var bytes = Encoding.ASCII.GetBytes(sb.ToString());
            int n = (int)Math.Min(bytes.Length, size - written);
            f.Write(bytes, 0, n);
            written += n;
        }
    }

    private static JsonElement Only(RunResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.JsonFiles.Single();
    }

    [SshFact]
    public void Text_crosses_the_wire_compressed_random_data_raw_and_every_codec_round_trips()
    {
        using var s = new Scene(fx);
        var server = Server(s, "plain", "");
        var text = s.Local["text.txt"];
        var random = s.Local["random.bin"];
        WriteText(text, 9 * MiB + 11, 1);
        ResumeTests.WriteRandom(random, 9 * MiB + 11, 2);
        long size = 9 * MiB + 11;
        var sums = new Dictionary<string, long>();
        foreach (var codec in new[] { "auto", "zstd", "lz4", "none" })
        {
            var up = Only(Bcmr(server, "copy", "--compress", codec, text, fx.Remote(s.R($"up-{codec}.txt"))));
            Assert.Equal(Trees.Sha256(text), Trees.Sha256(s.R($"up-{codec}.txt")));
            var down = Only(Bcmr(server, "copy", "--compress", codec, fx.Remote(s.R($"up-{codec}.txt")), s.Local[$"down-{codec}.txt"]));
            Assert.Equal(Trees.Sha256(text), Trees.Sha256(s.Local[$"down-{codec}.txt"]));
            sums[codec] = up.GetProperty("wire_bytes").GetInt64();
            Assert.Equal(sums[codec], down.GetProperty("wire_bytes").GetInt64());
            var rnd = Only(Bcmr(server, "copy", "--compress", codec, random, fx.Remote(s.R($"r-{codec}.bin"))));
            Assert.Equal(size, rnd.GetProperty("wire_bytes").GetInt64()); // incompressible: sent raw
            Assert.Equal(Trees.Sha256(random), Trees.Sha256(s.R($"r-{codec}.bin")));
        }
        Assert.Equal(size, sums["none"]);
        Assert.True(sums["zstd"] * 3 < size, $"zstd sent {sums["zstd"]} of {size}");
        Assert.True(sums["lz4"] < size * 3 / 4, $"lz4 sent {sums["lz4"]} of {size}");
        Assert.Equal(sums["zstd"], sums["auto"]);
        Assert.True(sums["zstd"] < sums["lz4"]);
    }

    [SshFact]
    public void A_server_without_codecs_still_interoperates()
    {
        using var s = new Scene(fx);
        var server = Server(s, "raw", "BCMR_COMPRESS=none");
        var text = s.Local["text.txt"];
        WriteText(text, 3 * MiB, 3);
        var up = Only(Bcmr(server, "copy", "--compress", "zstd", text, fx.Remote(s.R("t.txt"))));
        Assert.Equal(3 * MiB, up.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(Trees.Sha256(text), Trees.Sha256(s.R("t.txt")));
        var down = Only(Bcmr(server, "copy", fx.Remote(s.R("t.txt")), s.Local["back.txt"]));
        Assert.Equal(3 * MiB, down.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(Trees.Sha256(text), Trees.Sha256(s.Local["back.txt"]));
    }

    private static IEnumerable<string> Blobs(string cas) =>
        Directory.Exists(cas) ? Directory.EnumerateFiles(cas, "*.blk", SearchOption.AllDirectories) : [];

    [SshFact]
    public void A_repeat_upload_sends_under_one_percent_and_a_corrupted_blob_is_sent_again()
    {
        using var s = new Scene(fx);
        var server = Server(s, "dedup", "");
        var big = s.Local["big.bin"];
        ResumeTests.WriteRandom(big, 64 * MiB, 4);
        // The client's whole-file BLAKE3 comes from the bytes as they go out (first upload), from a read while the
        // server fills the file from its store (second), and partly after the send (third): each must be b3sum's.
        var b3 = Tool.Output("b3sum", "--no-names", big).Trim();
        var first = Only(Bcmr(server, "copy", big, fx.Remote(s.R("one.bin"))));
        Assert.Equal(64 * MiB, first.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(16, Blobs(s.Cas).Count());
        Assert.Equal(b3, first.GetProperty("blake3").GetString());

        var second = Only(Bcmr(server, "copy", big, fx.Remote(s.R("two.bin"))));
        Assert.True(second.GetProperty("wire_bytes").GetInt64() < 64 * MiB / 100, second.ToString());
        Assert.Equal(16, second.GetProperty("dedup_blocks").GetInt32());
        Assert.Equal(Trees.Sha256(big), Trees.Sha256(s.R("two.bin")));
        Assert.Equal(b3, second.GetProperty("blake3").GetString());

        // One blob flipped on disk, one truncated: both are noticed, asked for over the wire, and the copy is exact.
        var blobs = Blobs(s.Cas).Order().ToList();
        var bytes = File.ReadAllBytes(blobs[3]);
        bytes[1000] ^= 0x40;
        File.WriteAllBytes(blobs[3], bytes);
        using (var f = File.OpenWrite(blobs[7])) f.SetLength(100);
        var third = Only(Bcmr(server, "copy", big, fx.Remote(s.R("three.bin"))));
        Assert.Equal(2L * 4 * MiB, third.GetProperty("wire_bytes").GetInt64());
        Assert.Equal(14, third.GetProperty("dedup_blocks").GetInt32());
        Assert.Equal(Trees.Sha256(big), Trees.Sha256(s.R("three.bin")));
        Assert.Equal(b3, third.GetProperty("blake3").GetString());
    }

    [SshFact]
    public void The_store_stays_under_its_cap_keeping_the_most_recent_blocks()
    {
        using var s = new Scene(fx);
        var server = Server(s, "capped", "BCMR_CAS_CAP_MB=32");
        var hashesOfLast = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var f = s.Local[$"f{i}.bin"];
            ResumeTests.WriteRandom(f, 24 * MiB, 40 + i);
            Only(Bcmr(server, "copy", f, fx.Remote(s.R($"f{i}.bin"))));
            Assert.Equal(Trees.Sha256(f), Trees.Sha256(s.R($"f{i}.bin")));
            long total = Blobs(s.Cas).Sum(b => new FileInfo(b).Length);
            Assert.True(total <= 32L * MiB, $"store holds {total} bytes after upload {i}");
        }
        // The last file's six blocks are the most recent: all of them are kept, so a repeat of it sends nothing.
        var again = Only(Bcmr(server, "copy", s.Local["f2.bin"], fx.Remote(s.R("f2-again.bin"))));
        Assert.Equal(6, again.GetProperty("dedup_blocks").GetInt32());
        Assert.Equal(0, again.GetProperty("wire_bytes").GetInt64());
    }

    [SshFact]
    public void Two_uploads_into_one_store_at_once_both_end_exact()
    {
        using var s = new Scene(fx);
        var server = Server(s, "shared", "BCMR_CAS_CAP_MB=40");
        var a = s.Local["a.bin"];
        var b = s.Local["b.bin"];
        ResumeTests.WriteRandom(a, 40 * MiB, 50);
        ResumeTests.WriteRandom(b, 40 * MiB, 51);
        // Prime the store with a, then upload a and b at the same time (a's blocks are being read while b's evict).
        Only(Bcmr(server, "copy", a, fx.Remote(s.R("prime.bin"))));
        var env = fx.Env(new() { ["BCMR_REMOTE"] = server });
        var runs = new[] { (a, "a.bin"), (b, "b.bin"), (a, "a2.bin") }.Select(t =>
            Task.Run(() => BcmrRunner.Run(["copy", t.Item1, fx.Remote(s.R(t.Item2))], env, timeout: TimeSpan.FromMinutes(3)))).ToArray();
        Task.WaitAll(runs);
        foreach (var r in runs) Assert.True(r.Result.ExitCode == 0, r.Result.ToString());
        Assert.Equal(Trees.Sha256(a), Trees.Sha256(s.R("a.bin")));
        Assert.Equal(Trees.Sha256(b), Trees.Sha256(s.R("b.bin")));
        Assert.Equal(Trees.Sha256(a), Trees.Sha256(s.R("a2.bin")));
    }

    [SshFact]
    public void Bwlimit_holds_the_wire_to_the_rate()
    {
        using var s = new Scene(fx);
        var server = Server(s, "slow", "");
        var f = s.Local["f.bin"];
        ResumeTests.WriteRandom(f, 3 * MiB, 60);
        var clock = Stopwatch.StartNew();
        Only(Bcmr(server, "copy", "--bwlimit", "1M", f, fx.Remote(s.R("f.bin"))));
        // 3 MiB at 1 MiB/s: about 3 s (the first 0.1 s is a burst); generous upper bound for a loaded machine.
        Assert.InRange(clock.Elapsed.TotalSeconds, 2.5, 30);
        Assert.Equal(Trees.Sha256(f), Trees.Sha256(s.R("f.bin")));
        var bad = BcmrRunner.Run(["copy", "--bwlimit", "fast", f, fx.Remote(s.R("g.bin"))], fx.Env());
        bad.AssertExit(2);
        Assert.Contains("--bwlimit", bad.Stderr);
    }
}
