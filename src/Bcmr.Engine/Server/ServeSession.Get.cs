using System.Buffers;
using System.Collections.Concurrent;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine.Server;

// Get's data path: blocks read, hashed, encoded and written.
public sealed partial class ServeSession
{
    /// <summary>When a Get's blocks are compressed, read + hash + compress run on a worker while this thread writes
    /// the previous block, two blocks ahead at most. Measured in bench/codecs.sh (RESULTS.md); on by default.</summary>
    internal static bool OverlapEncoding = Environment.GetEnvironmentVariable("BCMR_SERVE_OVERLAP") != "0";

    private const int PipelineDepth = 2;

    /// <summary>Sends bytes [pos, end) of the file as block frames; returns where it stopped (end, or earlier if the
    /// file shrank).</summary>
    private long SendFile(SafeFileHandle h, string path, long pos, long end, Blake3Hasher? hasher)
    {
        if (OverlapEncoding && Codec != WireCodec.None && end - pos > Wire.MaxBlock)
            return SendFileOverlapped(h, path, pos, end, hasher);
        var block = Block;
        while (pos < end)
        {
            int want = (int)Math.Min(Wire.MaxBlock, end - pos);
            int n = Fs.ReadFull(h, block.AsSpan(0, want), pos, path);
            if (n == 0) break;
            hasher?.Update(block.AsSpan(0, n));
            SendBlock(block.AsSpan(0, n));
            pos += n;
        }
        return pos;
    }

    /// <summary>One block in flight: its bytes, its encoded form, and what to send.</summary>
    private sealed class Slot
    {
        public readonly byte[] Block = ArrayPool<byte>.Shared.Rent(Wire.MaxBlock);
        public readonly byte[] Encoded = ArrayPool<byte>.Shared.Rent(BlockCodec.MaxCompressedSize(Wire.MaxBlock));
        public int Length;
        public int EncodedLength; // 0: send raw

        public void Return()
        {
            ArrayPool<byte>.Shared.Return(Block);
            ArrayPool<byte>.Shared.Return(Encoded);
        }
    }

    private long SendFileOverlapped(SafeFileHandle h, string path, long pos, long end, Blake3Hasher? hasher)
    {
        var slots = Enumerable.Range(0, PipelineDepth + 1).Select(_ => new Slot()).ToArray();
        using var free = new BlockingCollection<Slot>(new ConcurrentQueue<Slot>(slots));
        using var ready = new BlockingCollection<Slot>(new ConcurrentQueue<Slot>());
        using var stop = new CancellationTokenSource();
        var codec = Codec;
        long start = pos;
        long produced = pos;
        var worker = Task.Factory.StartNew(() =>
        {
            try
            {
                while (produced < end)
                {
                    var slot = free.Take(stop.Token);
                    int want = (int)Math.Min(Wire.MaxBlock, end - produced);
                    int n = Fs.ReadFull(h, slot.Block.AsSpan(0, want), produced, path);
                    if (n == 0)
                    {
                        free.Add(slot);
                        break;
                    }
                    hasher?.Update(slot.Block.AsSpan(0, n));
                    slot.Length = n;
                    slot.EncodedLength = BlockCodec.TryEncode(codec, slot.Block.AsSpan(0, n), slot.Encoded, out int e) ? e : 0;
                    produced += n;
                    ready.Add(slot);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            finally
            {
                ready.CompleteAdding();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        long sent = start;
        try
        {
            foreach (var slot in ready.GetConsumingEnumerable())
            {
                if (slot.EncodedLength > 0) _writer.WriteDataCompressed(codec, slot.Length, slot.Encoded.AsSpan(0, slot.EncodedLength));
                else _writer.WriteData(slot.Block.AsSpan(0, slot.Length));
                sent += slot.Length;
                free.Add(slot);
            }
            worker.GetAwaiter().GetResult(); // a read error of the worker surfaces here
        }
        finally
        {
            stop.Cancel();
            try { worker.Wait(); }
            catch (AggregateException) { /* already reported, or we are failing for another reason */ }
            foreach (var s in slots) s.Return();
        }
        return sent;
    }
}
