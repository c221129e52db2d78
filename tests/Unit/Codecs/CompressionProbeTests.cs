using Bcmr.Engine.Codecs;

namespace Bcmr.Tests.Codecs;

public class CompressionProbeTests
{
    [Fact]
    public void Incompressible_data_stops_being_tried_except_every_eighth_block_and_compressible_data_resumes_it()
    {
        var probe = new CompressionProbe(WireCodec.Zstd);
        var tried = new List<WireCodec>();
        for (int i = 0; i < 20; i++)
        {
            var c = probe.Next();
            tried.Add(c);
            probe.Report(c, compressed: i >= 16);
        }
        // blocks 0,1 tried and failed; then only 8 and 16 are probed; 16 compresses, so 17.. are tried again.
        var triedAt = tried.Select((c, i) => (c, i)).Where(t => t.c == WireCodec.Zstd).Select(t => t.i).ToArray();
        Assert.Equal([0, 1, 8, 16, 17, 18, 19], triedAt);
    }

    [Fact]
    public void No_codec_is_never_tried() =>
        Assert.All(Enumerable.Range(0, 10).Select(_ => new CompressionProbe(WireCodec.None).Next()), c => Assert.Equal(WireCodec.None, c));

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
