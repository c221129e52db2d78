namespace Bcmr.Engine.Codecs;

/// <summary>
/// Which codec to try for the next block sent on a connection. Data that did not compress twice in a row (media, archives,
/// encrypted or random bytes) is sent raw without trying, except every 8th block, which probes again so a file that
/// changes character (a tar of mixed content) still gets compressed. A failed zstd attempt costs about a third of a
/// millisecond per 4 MiB block... times every block of a large file, on the thread that also reads and hashes.
/// </summary>
public sealed class CompressionProbe(WireCodec codec)
{
    private const int MissesBeforeSkipping = 2;
    private const int ProbeEvery = 8;

    private int _misses;
    private long _blocks;
    private bool _reported;

    /// <summary>The last block tried did not compress: the next choice depends on the blocks still being tried
    /// (BlockEncoder waits for their outcomes before asking).</summary>
    public bool LastMissed => _misses > 0;

    /// <summary>Some block tried with a codec has been reported.</summary>
    public bool HasOutcome => _reported;

    /// <summary>The codec to use for the next block (None: send it raw without trying).</summary>
    public WireCodec Next()
    {
        long index = _blocks++;
        if (codec == WireCodec.None) return WireCodec.None;
        return _misses >= MissesBeforeSkipping && index % ProbeEvery != 0 ? WireCodec.None : codec;
    }

    /// <summary>What happened to a block encoded with <paramref name="tried"/>.</summary>
    public void Report(WireCodec tried, bool compressed)
    {
        if (tried == WireCodec.None) return;
        _reported = true;
        _misses = compressed ? 0 : _misses + 1;
    }
}
