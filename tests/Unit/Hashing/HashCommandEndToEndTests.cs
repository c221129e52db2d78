using System.Text.Json;
using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

/// <summary>Runs the built <c>bcmr</c> executable and compares it with <c>b3sum</c>, the reference implementation.</summary>
public sealed class HashCommandEndToEndTests : IClassFixture<HashCommandEndToEndTests.Files>
{
    private static readonly string BcmrExe = Path.Combine(AppContext.BaseDirectory, "bcmr");

    private static readonly int[] Sizes =
        { 0, 1, 1023, 1024, 1025, 2047, 2048, 3073, 65535, 65536, 65537, (1 << 20) + 7, 100 << 20 };

    /// <summary>Random files shared by the tests in this class (the 100 MiB one is worth creating once).</summary>
    public sealed class Files : IDisposable
    {
        private readonly TempDir _dir = new();

        public Files()
        {
            var rng = new Random(5);
            Paths = Sizes.Select(size =>
            {
                byte[] data = new byte[size];
                rng.NextBytes(data);
                return _dir.File($"file-{size}.bin", data);
            }).ToArray();
        }

        public string[] Paths { get; }

        public string Dir => _dir.Path;

        public void Dispose() => _dir.Dispose();
    }

    private readonly Files _files;

    public HashCommandEndToEndTests(Files files) => _files = files;

    private static void AssertSameOutput(ProcessResult expected, ProcessResult actual)
    {
        Assert.True(expected.ExitCode == 0, $"b3sum failed: {expected.Stderr}");
        Assert.True(actual.ExitCode == 0, $"bcmr failed ({actual.ExitCode}): {actual.Stderr}");
        Assert.Equal(expected.StdoutText, actual.StdoutText);
    }

    [B3sumTheory]
    [InlineData(null)]
    [InlineData("1")]
    [InlineData("2")]
    [InlineData("3")]
    public void Plain_hash_lines_match_b3sum(string? threads)
    {
        string[] args = threads is null ? _files.Paths : _files.Paths.Prepend(threads).Prepend("--threads").ToArray();
        var b3 = Proc.Run(B3sum.Path!, _files.Paths);
        var ours = Proc.Run(BcmrExe, args.Prepend("hash"));
        AssertSameOutput(b3, ours);
        Assert.Equal(Sizes.Length, ours.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [B3sumFact]
    public void Keyed_mode_matches_b3sum()
    {
        byte[] key = new byte[32];
        new Random(77).NextBytes(key);
        var b3 = Proc.Run(B3sum.Path!, _files.Paths.Prepend("--keyed"), stdin: key);
        var ours = Proc.Run(BcmrExe, _files.Paths.Prepend("--keyed").Prepend("hash"), stdin: key);
        AssertSameOutput(b3, ours);

        // A key of the wrong length is refused, as b3sum does.
        var bad = Proc.Run(BcmrExe, new[] { "hash", "--keyed", _files.Paths[1] }, stdin: key.AsSpan(0, 31).ToArray());
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Equal("", bad.StdoutText);
    }

    [B3sumFact]
    public void Derive_key_mode_matches_b3sum()
    {
        string[] args = _files.Paths.Prepend("bcmr 2026-11-22 test context").Prepend("--derive-key").ToArray();
        AssertSameOutput(Proc.Run(B3sum.Path!, args), Proc.Run(BcmrExe, args.Prepend("hash")));
    }

    [B3sumTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(1000)]
    public void Length_option_matches_b3sum(int length)
    {
        string[] args = _files.Paths.Take(Sizes.Length - 1).Prepend(length.ToString()).Prepend("--length").ToArray();
        AssertSameOutput(Proc.Run(B3sum.Path!, args), Proc.Run(BcmrExe, args.Prepend("hash")));
    }

    [B3sumFact]
    public void Standard_input_is_read_for_dash()
    {
        byte[] data = File.ReadAllBytes(_files.Paths[Array.IndexOf(Sizes, (1 << 20) + 7)]);
        var b3 = Proc.Run(B3sum.Path!, new[] { "-" }, stdin: data);
        var ours = Proc.Run(BcmrExe, new[] { "hash", "-" }, stdin: data);
        AssertSameOutput(b3, ours);
        Assert.EndsWith("  -\n", ours.StdoutText);
    }

    [B3sumFact]
    public void Missing_file_is_reported_and_the_others_still_hash()
    {
        string missing = Path.Combine(_files.Dir, "does-not-exist");
        string[] good = { _files.Paths[1], _files.Paths[4] };
        var ours = Proc.Run(BcmrExe, new[] { "hash", good[0], missing, good[1] });
        Assert.Equal(1, ours.ExitCode);
        Assert.Contains($"bcmr: hash: {missing}: ", ours.Stderr);
        Assert.Equal(Proc.Run(B3sum.Path!, good).StdoutText, ours.StdoutText);
    }

    [Fact]
    public void Json_lines_carry_path_hash_and_size()
    {
        string[] paths = { _files.Paths[0], _files.Paths[4] };
        var ours = Proc.Run(BcmrExe, paths.Prepend("--json").Prepend("hash"));
        Assert.Equal(0, ours.ExitCode);
        string[] lines = ours.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        for (int i = 0; i < 2; i++)
        {
            using JsonDocument doc = JsonDocument.Parse(lines[i]);
            Assert.Equal("hash", doc.RootElement.GetProperty("type").GetString());
            Assert.Equal(paths[i], doc.RootElement.GetProperty("path").GetString());
            Assert.Equal(new FileInfo(paths[i]).Length, doc.RootElement.GetProperty("size").GetInt64());
            Assert.Equal(Blake3.ToHex(Blake3.Hash(File.ReadAllBytes(paths[i]))),
                doc.RootElement.GetProperty("blake3").GetString());
        }

        // --json is bcmr's global option, so it may also come before the subcommand.
        Assert.Equal(ours.StdoutText, Proc.Run(BcmrExe, paths.Prepend("hash").Prepend("--json")).StdoutText);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("lots")]
    public void Invalid_thread_counts_are_usage_errors(string threads)
    {
        var ours = Proc.Run(BcmrExe, new[] { "hash", "--threads", threads, _files.Paths[1] });
        Assert.Equal(2, ours.ExitCode);
        Assert.Equal("", ours.StdoutText);
        Assert.NotEqual("", ours.Stderr);
    }
}
