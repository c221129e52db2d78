using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// What a tree of small files costs the client in memory, per file, through the real sshd and `bcmr serve`, read from
/// the line BCMR_RUNTIME_STATS=1 prints. Allocation turns into collections, and a collection stops every thread of
/// the client: on two busy cores a download of 10 000 files spent 0.2-0.3 s paused in them when each file allocated
/// a 10 KiB hasher (bench/RESULTS.md, session 20). The per-file figure is the difference between a tree of 1 000
/// files and one of 200, so start-up and the runtime's own allocations cancel out.
/// </summary>
public partial class AllocationTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    /// <summary>At most this many bytes allocated per further file, each way. Measured: about 3.2 KiB up and 4 KiB
    /// down; a hasher per downloaded file made it 12.8 KiB.</summary>
    private const int BytesPerFile = 8 * 1024;

    [GeneratedRegex(@"^bcmr: runtime: collections gen0 \d+, gen1 \d+, gen2 \d+; (\d+) bytes allocated; \d+ ms paused$", RegexOptions.Multiline)]
    private static partial Regex StatsLine();

    private static long Allocated(RunResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        var m = StatsLine().Match(r.Stderr);
        Assert.True(m.Success, "no runtime line on stderr: " + r);
        return long.Parse(m.Groups[1].Value);
    }

    private static void MakeTree(string root, int files)
    {
        Directory.CreateDirectory(root);
        var rng = new Random(files);
        var bytes = new byte[1024];
        for (int i = 0; i < files; i++)
        {
            rng.NextBytes(bytes);
            File.WriteAllBytes(Path.Combine(root, $"f{i:D5}"), bytes);
        }
    }

    private static void AssertSameTree(string expected, string actual)
    {
        var names = Directory.GetFiles(expected).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(names, Directory.GetFiles(actual).Select(Path.GetFileName).Order().ToArray());
        foreach (var n in names)
            Assert.Equal(SHA256.HashData(File.ReadAllBytes(Path.Combine(expected, n!))), SHA256.HashData(File.ReadAllBytes(Path.Combine(actual, n!))));
    }

    [SshFact]
    public void Small_files_cost_the_client_a_few_KiB_each_both_ways()
    {
        using var s = new RemoteScene(fx, "alloc-");
        var env = fx.Env(new() { ["BCMR_RUNTIME_STATS"] = "1" });
        RunResult Bcmr(params string[] args) => BcmrRunner.Run(args, env, timeout: TimeSpan.FromMinutes(4));
        var up = new Dictionary<int, long>();
        var down = new Dictionary<int, long>();
        foreach (int n in new[] { 200, 1000 })
        {
            var src = s.Local[$"src{n}"];
            MakeTree(src, n);
            up[n] = Allocated(Bcmr("copy", "-r", "-q", src, fx.Remote(s.R($"up{n}"))));
            AssertSameTree(src, s.R($"up{n}"));
            down[n] = Allocated(Bcmr("copy", "-r", "-q", fx.Remote(s.R($"up{n}")), s.Local[$"back{n}"]));
            AssertSameTree(src, s.Local[$"back{n}"]);
        }
        double upPerFile = (up[1000] - up[200]) / 800.0, downPerFile = (down[1000] - down[200]) / 800.0;
        Assert.True(upPerFile < BytesPerFile, $"an upload allocated {upPerFile:0} bytes per file ({up[200]} for 200 files, {up[1000]} for 1000)");
        Assert.True(downPerFile < BytesPerFile, $"a download allocated {downPerFile:0} bytes per file ({down[200]} for 200 files, {down[1000]} for 1000)");
    }

    [Fact]
    public void The_runtime_line_is_printed_only_when_asked_for()
    {
        using var d = new TempDir();
        var file = d["a"];
        File.WriteAllText(file, "abc");
        var plain = BcmrRunner.Run(["hash", file], new Dictionary<string, string>());
        plain.AssertExit(0);
        Assert.Equal("", plain.Stderr);
        var asked = BcmrRunner.Run(["hash", file], new Dictionary<string, string> { ["BCMR_RUNTIME_STATS"] = "1" });
        asked.AssertExit(0);
        Assert.Equal(plain.Stdout, asked.Stdout);
        Assert.Matches(StatsLine(), asked.Stderr);
    }
}
