using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// Get's data path: blocks read, hashed, encoded and written.
public sealed partial class ServeSession
{
    /// <summary>Whether the data sent on this session has been compressing lately (across files, so a tree of small
    /// incompressible files stops paying for attempts too).</summary>
    private Codecs.CompressionProbe? _probe;

    /// <summary>
    /// Sends bytes [pos, end) of the file as block frames, one 4 MiB block at a time on this thread (read, hash,
    /// compress, write); returns where it stopped (end, or earlier if the file shrank).
    /// <para>Compression is not moved to a worker thread: measured (bench/codecs.sh, RESULTS.md, issue 9), a worker
    /// that reads, hashes and compresses two blocks ahead made no difference for zstd on text (the codec is the
    /// bottleneck and nothing else costs enough to hide behind it), none on a 20 MB/s link (the pipe and the reader's
    /// buffers already let the next block compress while the last one is on the wire), and cost 25 % on random data
    /// (the thread hand-off is dearer than a failed compression attempt).</para>
    /// </summary>
    private long SendFile(SafeFileHandle h, string path, long pos, long end, Blake3Hasher? hasher)
    {
        var block = Block;
        var probe = _probe ??= new Codecs.CompressionProbe(Codec);
        while (pos < end)
        {
            int want = (int)Math.Min(Wire.MaxBlock, end - pos);
            int n = Fs.ReadFull(h, block.AsSpan(0, want), pos, path);
            if (n == 0) break;
            var codec = probe.Next();
            _writer.WriteBlock(block.AsSpan(0, n), codec, Scratch, hasher, out bool compressed);
            probe.Report(codec, compressed);
            pos += n;
        }
        return pos;
    }
}
