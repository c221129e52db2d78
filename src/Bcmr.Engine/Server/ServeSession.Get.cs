using Bcmr.Engine.Platform;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// Get's data path: blocks read, hashed, encoded and written.
public sealed partial class ServeSession
{
    /// <summary>Whether the data sent on this session has been compressing lately (across files, so a tree of small
    /// incompressible files stops paying for attempts too).</summary>
    private Codecs.CompressionProbe? _probe;

    /// <summary>Compresses Get's blocks off the session thread (created on the first Get, kept for the session).</summary>
    private Codecs.BlockEncoder? _encoder;

    /// <summary>Writes the encoder's frames (on the session thread).</summary>
    private Codecs.BlockSink? _blockSink;

    /// <summary>
    /// Sends bytes [pos, end) of the file as block frames of up to 4 MiB; returns where it stopped (end, or earlier
    /// if the file shrank). This thread reads and hashes every block in order and writes every frame; a block the
    /// probe wants compressed is compressed by the session's <see cref="Codecs.BlockEncoder"/> on a worker
    /// meanwhile (raw blocks, data that has not been compressing and one-block files never leave this thread).
    /// Measured in bench/RESULTS.md (issue 9).
    /// A read error still sends the blocks read before it, then the error. <paramref name="values"/> (a striped
    /// range) takes the chaining value of each block as read.
    /// </summary>
    private long SendFile(SafeFileHandle h, string path, long pos, long end, Blake3Hasher? hasher, BlockChainingValues? values = null)
    {
        var encoder = _encoder ??= new Codecs.BlockEncoder(_options.EncoderWorkers, _options.Threads);
        var probe = _probe ??= new Codecs.CompressionProbe(Codec);
        encoder.Begin(probe, hasher, _blockSink ??= (in Codecs.EncodedBlock b) => _writer.WriteEncoded(b));
        bool finished = false;
        try
        {
            pos = encoder.AddFile(h, path, pos, end, exact: false, values is null ? null : (block, _) => values.Update(block), out var error);
            encoder.Finish();
            finished = true;
            if (error is not null) throw error;
        }
        finally
        {
            if (!finished) encoder.Abandon();
        }
        return pos;
    }
}
