namespace Bcmr.Engine.Codecs;

/// <summary>
/// Which codec to try for the next block sent on a connection. Data that did not compress twice in a row (media, archives,
/// encrypted or random bytes) is sent raw without trying, except the first block after every 32 MiB sent raw, which probes
/// again so data that changes character (a tar of mixed content) still gets compressed. A failed zstd attempt costs about a
/// third of a millisecond per 4 MiB block... times every block of a large file, on the thread that also reads and hashes.
/// The back-off counts bytes, not blocks: counted in blocks, a tree of 64 KiB files was probed every 8th file, and the
/// failed attempts (each resetting zstd's tables) were most of the client's CPU in a 10 000-file upload (bench/RESULTS.md).
/// </summary>
public sealed class CompressionProbe(WireCodec codec)
{
    private const int MissesBeforeSkipping = 2;
    internal const long ProbeEveryBytes = 32L << 20;

    private int _misses;
    private long _rawSinceProbe;
    private bool _reported;

    /// <summary>The last block tried did not compress: the next choice depends on the blocks still being tried
    /// (BlockEncoder waits for their outcomes before asking).</summary>
    public bool LastMissed => _misses > 0;

    /// <summary>Some block tried with a codec has been reported.</summary>
    public bool HasOutcome => _reported;

    /// <summary>The codec to use for the next block, of <paramref name="length"/> bytes (None: send it raw without trying).</summary>
    public WireCodec Next(int length)
    {
        if (codec == WireCodec.None) return WireCodec.None;
        if (_misses < MissesBeforeSkipping) return codec;
        if (_rawSinceProbe >= ProbeEveryBytes)
        {
            _rawSinceProbe = 0;
            return codec;
        }
        _rawSinceProbe += length;
        return WireCodec.None;
    }

    /// <summary>What happened to a block encoded with <paramref name="tried"/>.</summary>
    public void Report(WireCodec tried, bool compressed)
    {
        if (tried == WireCodec.None) return;
        _reported = true;
        _misses = compressed ? 0 : _misses + 1;
        if (compressed) _rawSinceProbe = 0;
    }
}
