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
}
