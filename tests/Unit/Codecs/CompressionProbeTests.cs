using Bcmr.Engine.Codecs;

namespace Bcmr.Tests.Codecs;

public class CompressionProbeTests
{
    /// <summary>Which of <paramref name="blocks"/> blocks of <paramref name="length"/> bytes are tried, when the ones at
    /// <paramref name="compressibleFrom"/> and after compress.</summary>
    private static int[] TriedAt(int blocks, int length, int compressibleFrom)
    {
        var probe = new CompressionProbe(WireCodec.Zstd);
        var tried = new List<int>();
        for (int i = 0; i < blocks; i++)
        {
            var c = probe.Next(length);
            if (c == WireCodec.Zstd) tried.Add(i);
            probe.Report(c, compressed: i >= compressibleFrom);
        }
        return [.. tried];
    }

    [Fact]
    public void Incompressible_data_stops_being_tried_except_after_every_32_MiB_and_compressible_data_resumes_it() =>
        // 4 MiB blocks: 0 and 1 fail; after 8 raw blocks (32 MiB) block 10 probes, then 19; 19 compresses, so 20.. are tried.
        Assert.Equal([0, 1, 10, 19, 20, 21], TriedAt(22, 4 << 20, compressibleFrom: 19));

    [Fact]
    public void Small_files_are_probed_by_the_bytes_sent_not_once_every_few_files()
    {
        // 64 KiB files, one block each: after two misses, one probe per 512 files (32 MiB), not one per 8 files.
        var tried = TriedAt(2000, 64 << 10, compressibleFrom: int.MaxValue);
        Assert.Equal([0, 1, 514, 1027, 1540], tried);
    }

    [Fact]
    public void No_codec_is_never_tried() =>
        Assert.All(Enumerable.Range(0, 10).Select(_ => new CompressionProbe(WireCodec.None).Next(4 << 20)), c => Assert.Equal(WireCodec.None, c));

    [Fact]
    public void The_probe_says_whether_anything_is_known_and_whether_the_last_attempt_missed()
    {
        var probe = new CompressionProbe(WireCodec.Lz4);
        Assert.False(probe.HasOutcome);
        Assert.False(probe.LastMissed);
        probe.Report(WireCodec.None, false); // raw blocks tell nothing
        Assert.False(probe.HasOutcome);
        probe.Report(WireCodec.Lz4, false);
        Assert.True(probe.HasOutcome && probe.LastMissed);
        probe.Report(WireCodec.Lz4, true);
        Assert.True(probe.HasOutcome && !probe.LastMissed);
    }
}
