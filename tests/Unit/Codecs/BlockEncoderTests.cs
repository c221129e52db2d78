using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Codecs;

/// <summary>BlockEncoder: frames in file order and byte-identical after decoding, the compressed/raw choice per block,
/// the hash fed in order, no hand-off where there is nothing to overlap, and no thread left blocked after a failed
/// write, a cancellation, a worker's exception or a Dispose with blocks pending.</summary>
public sealed class BlockEncoderTests
{
    private const int MiB = BlockCodecTests.MiB;
    private const int Block = BlockCodec.MaxBlock;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>One frame as the sink saw it.</summary>
    private sealed record Frame(WireCodec Codec, byte[] Data, byte[] Payload, bool HashedWhileWritten);

    /// <summary>Records every frame (copies: the encoder reuses its buffers) and feeds a raw block's hasher as
    /// FrameWriter.WriteData does.</summary>
    private sealed class Recorder
    {
        public readonly List<Frame> Frames = [];
        public int Thread = -1;
        public Action<int>? Before;

        public void Write(in EncodedBlock b)
        {
            Before?.Invoke(Frames.Count);
            if (Thread == -1) Thread = Environment.CurrentManagedThreadId;
            Assert.Equal(Thread, Environment.CurrentManagedThreadId); // always the caller's thread
            b.Hasher?.Update(b.Data);
            Frames.Add(new Frame(b.Codec, b.Data.ToArray(), b.Payload.ToArray(), b.Hasher is not null));
        }

        /// <summary>The bytes the receiver reassembles.</summary>
        public byte[] Decoded()
        {
            var output = new MemoryStream();
            var buffer = new byte[Block];
            foreach (var f in Frames)
            {
                if (f.Codec == WireCodec.None)
                {
                    Assert.Empty(f.Payload);
                    output.Write(f.Data);
                    continue;
                }
                Assert.True(f.Payload.Length <= BlockCodec.MaxCompressedSize(f.Data.Length));
                var decoded = BlockCodec.Decode((byte)f.Codec, (uint)f.Data.Length, f.Payload, buffer);
                Assert.True(decoded.SequenceEqual(f.Data));
                output.Write(decoded);
            }
            return output.ToArray();
        }
    }

    /// <summary>Sends <paramref name="file"/> the way ServeSession.SendFile does: read into NextBuffer, Add, Finish;
    /// Abandon when anything throws.</summary>
    private static void Send(BlockEncoder encoder, byte[] file, CompressionProbe probe, Blake3Hasher? hasher, BlockSink sink, Action<int>? read = null)
    {
        encoder.Begin(probe, hasher, sink);
        bool finished = false;
        try
        {
            for (int pos = 0; pos < file.Length; pos += Block)
            {
                int n = Math.Min(Block, file.Length - pos);
                var buffer = encoder.NextBuffer();
                Assert.True(buffer.Length >= Block);
                file.AsSpan(pos, n).CopyTo(buffer);
                read?.Invoke(pos / Block); // a slow read: blocks in flight finish meanwhile
                encoder.Add(n, last: pos + n == file.Length);
            }
            encoder.Finish();
            finished = true;
        }
        finally
        {
            if (!finished) encoder.Abandon();
        }
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>Runs <paramref name="body"/> on its own thread and fails if it does not end in time (a deadlock
    /// would otherwise hang the run).</summary>
    private static void WithinLimit(Action body)
    {
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true };
        t.Start();
        Assert.True(t.Join(Limit), "the encoder did not finish in time (deadlock?)");
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
    }

    [Theory]
    [InlineData(WireCodec.Zstd, 2)]
    [InlineData(WireCodec.Lz4, 0)]
    public void Buffers_are_sized_by_what_is_asked_and_grow_for_a_bigger_block_with_every_byte_intact(WireCodec codec, int workers) =>
        WithinLimit(() =>
        {
            // Small files first (a sync of small files must not fault in 4 MiB per slot), then a two-block file whose
            // blocks need the full size, then a small one again: every file arrives byte-identical.
            var text = BlockCodecTests.SourceText(2 * Block, 33);
            var files = new[] { 100, 5000, Block + 7, 3 }.Select((n, i) => text.AsSpan(i * 11, n).ToArray()).ToArray();
            using var encoder = new BlockEncoder(workers);
            var probe = new CompressionProbe(codec);
            var recorder = new Recorder();
            int smallest = int.MaxValue;
            foreach (var file in files)
            {
                encoder.Begin(probe, null, recorder.Write);
                for (int pos = 0; pos < file.Length; pos += Block)
                {
                    int n = Math.Min(Block, file.Length - pos);
                    var buffer = encoder.NextBuffer(n);
                    Assert.True(buffer.Length >= n, $"asked {n}, got {buffer.Length}");
                    smallest = Math.Min(smallest, buffer.Length);
                    file.AsSpan(pos, n).CopyTo(buffer);
                    encoder.Add(n, last: pos + n == file.Length);
                }
                encoder.Finish();
            }
            Assert.True(smallest < 64 * 1024, $"the first small file got a {smallest}-byte buffer");
            Assert.Equal(Concat(files), recorder.Decoded());
            // More than the buffer holds is refused, not read past its end.
            using var fresh = new BlockEncoder(workers);
            fresh.Begin(probe, null, recorder.Write);
            var small = fresh.NextBuffer(10);
            Assert.True(small.Length < Block, $"a 10-byte block got {small.Length} bytes");
            Assert.Throws<ArgumentOutOfRangeException>(() => fresh.Add(small.Length + 1, last: true));
            fresh.Abandon();
        });

    [Fact]
    public void While_probing_a_block_whose_first_64_KiB_does_not_compress_goes_raw_and_once_compressing_it_is_tried_whole() =>
        WithinLimit(() =>
        {
            // 64 KiB of random bytes, then text: as a whole it compresses well, its sample does not.
            var head = new byte[BlockEncoder.ProbeSample];
            new Random(5).NextBytes(head);
            var block = Concat(head, BlockCodecTests.SourceText(Block - head.Length, 8));
            Assert.True(BlockCodec.TryEncode(WireCodec.Zstd, block, new byte[BlockCodec.MaxCompressedSize(Block)], out _));
            using var encoder = new BlockEncoder(0);
            var probe = new CompressionProbe(WireCodec.Zstd);
            var recorder = new Recorder();
            Send(encoder, block, probe, null, recorder.Write);
            Assert.Equal(WireCodec.None, Assert.Single(recorder.Frames).Codec);
            Assert.True(probe.LastMissed);
            // Text compresses and the probe hears it; the same block is then compressed whole.
            Send(encoder, BlockCodecTests.SourceText(Block, 9), probe, null, recorder.Write);
            Send(encoder, block, probe, null, recorder.Write);
            Assert.Equal([WireCodec.None, WireCodec.Zstd, WireCodec.Zstd], recorder.Frames.Select(f => f.Codec));
            Assert.Equal(Concat(block, BlockCodecTests.SourceText(Block, 9), block), recorder.Decoded());
        });

    public static TheoryData<WireCodec, int> CodecsAndWorkers => new()
    {
        { WireCodec.Zstd, 2 }, { WireCodec.Lz4, 2 }, { WireCodec.Zstd, 1 }, { WireCodec.Lz4, 3 }, { WireCodec.Zstd, 0 },
    };

    [Theory]
    [MemberData(nameof(CodecsAndWorkers))]
    public void Mixed_blocks_come_out_in_order_byte_identical_and_each_compressed_only_when_it_pays(WireCodec codec, int workers) =>
        WithinLimit(() =>
        {
            var text = BlockCodecTests.SourceText(Block, 21);
            var random = BlockCodecTests.RandomBytes(Block, 22);
            var file = Concat(text, random, BlockCodecTests.SourceText(Block, 23), BlockCodecTests.SourceText(Block, 24),
                BlockCodecTests.RandomBytes(Block, 25), text.AsSpan(0, 1000).ToArray());
            using var encoder = new BlockEncoder(workers);
            var recorder = new Recorder();
            var hasher = Blake3Hasher.Create();
            Send(encoder, file, new CompressionProbe(codec), hasher, recorder.Write);

            Assert.Equal(file, recorder.Decoded());
            Assert.Equal(Blake3.Hash(file), hasher.Finalize());
            Assert.Equal([codec, WireCodec.None, codec, codec, WireCodec.None, codec], recorder.Frames.Select(f => f.Codec));
            Assert.Equal([Block, Block, Block, Block, Block, 1000], recorder.Frames.Select(f => f.Data.Length));
            Assert.Equal(0, encoder.Pending);
            Assert.Equal(workers, encoder.ThreadsStarted);
            // Block 0 is compressed here (nothing known yet), block 1 (after a success) by a worker; later blocks
            // by a worker unless the random block's miss was already known when they were read.
            if (workers == 0) Assert.Equal(0, encoder.HandedOff);
            else Assert.InRange(encoder.HandedOff, 1, 5);
        });

    [Fact]
    public void The_same_encoder_sends_file_after_file_and_a_short_last_block_after_pending_ones() =>
        WithinLimit(() =>
        {
            using var encoder = new BlockEncoder(2);
            var probe = new CompressionProbe(WireCodec.Zstd);
            for (int k = 0; k < 4; k++)
            {
                var file = BlockCodecTests.SourceText(3 * Block + 1000 + 17 * k, 30 + k); // a last block big enough to compress
                var recorder = new Recorder();
                var hasher = Blake3Hasher.Create();
                Send(encoder, file, probe, hasher, recorder.Write);
                Assert.Equal(file, recorder.Decoded());
                Assert.Equal(Blake3.Hash(file), hasher.Finalize());
                Assert.All(recorder.Frames, f => Assert.Equal(WireCodec.Zstd, f.Codec));
            }
            Assert.Equal(2, encoder.ThreadsStarted);
        });

    [Fact]
    public void An_empty_file_sends_nothing_and_starts_no_thread()
    {
        using var encoder = new BlockEncoder(2);
        var recorder = new Recorder();
        var hasher = Blake3Hasher.Create();
        Send(encoder, [], new CompressionProbe(WireCodec.Zstd), hasher, recorder.Write);
        Assert.Empty(recorder.Frames);
        Assert.Equal(Blake3.Hash([]), hasher.Finalize());
        Assert.Equal(0, encoder.ThreadsStarted);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(Block)]
    public void A_file_of_one_block_is_compressed_on_the_callers_thread(int size)
    {
        var file = BlockCodecTests.SourceText(size, 40);
        using var encoder = new BlockEncoder(2);
        var recorder = new Recorder();
        var hasher = Blake3Hasher.Create();
        Send(encoder, file, new CompressionProbe(WireCodec.Lz4), hasher, recorder.Write);
        Assert.Equal(file, recorder.Decoded());
        Assert.Equal(Blake3.Hash(file), hasher.Finalize());
        Assert.Equal(0, encoder.ThreadsStarted);
        Assert.Equal(0, encoder.HandedOff);
    }

    [Fact]
    public void Raw_blocks_never_leave_the_callers_thread_and_are_hashed_as_they_are_written()
    {
        var file = BlockCodecTests.SourceText(5 * Block + 3, 41);
        using var encoder = new BlockEncoder(2);
        var recorder = new Recorder();
        var hasher = Blake3Hasher.Create();
        Send(encoder, file, new CompressionProbe(WireCodec.None), hasher, recorder.Write);
        Assert.Equal(file, recorder.Decoded());
        Assert.Equal(Blake3.Hash(file), hasher.Finalize());
        Assert.All(recorder.Frames, f => Assert.True(f.Codec == WireCodec.None && f.HashedWhileWritten));
        Assert.Equal(0, encoder.ThreadsStarted);
    }

    [Fact]
    public void Random_data_is_never_handed_off_and_starts_no_thread() =>
        WithinLimit(() =>
        {
            var file = BlockCodecTests.RandomBytes(24 * Block, 42);
            using var encoder = new BlockEncoder(2);
            var recorder = new Recorder();
            var hasher = Blake3Hasher.Create();
            Send(encoder, file, new CompressionProbe(WireCodec.Zstd), hasher, recorder.Write);
            Assert.Equal(file, recorder.Decoded());
            Assert.Equal(Blake3.Hash(file), hasher.Finalize());
            Assert.All(recorder.Frames, f => Assert.Equal(WireCodec.None, f.Codec));
            // Tried where the probe tries on one thread (blocks 0 and 1, then every 8th), and all of it on this
            // thread: data that has not compressed is never handed off, so no worker ever started.
            Assert.Equal(0, encoder.HandedOff);
            Assert.Equal(0, encoder.ThreadsStarted);
            Assert.All(recorder.Frames, f => Assert.True(f.HashedWhileWritten));
        });

    [Fact]
    public void Blocks_come_out_in_order_when_the_writer_is_slow_and_when_it_is_fast() =>
        WithinLimit(() =>
        {
            var parts = Enumerable.Range(0, 9).Select(i => i % 3 == 2 ? BlockCodecTests.RandomBytes(Block / 2 + i, 50 + i) : BlockCodecTests.SourceText(Block / 2 + i, 50 + i)).ToArray();
            // Half blocks: each 4 MiB buffer mixes text and random, so the outcome varies block by block.
            var file = Concat(parts);
            using var encoder = new BlockEncoder(2);
            var probe = new CompressionProbe(WireCodec.Zstd);
            foreach (int delay in new[] { 0, 30 })
            {
                var recorder = new Recorder { Before = i => { if (delay > 0 && i % 2 == 0) Thread.Sleep(delay); } };
                var hasher = Blake3Hasher.Create();
                Send(encoder, file, probe, hasher, recorder.Write);
                Assert.Equal(file, recorder.Decoded());
                Assert.Equal(Blake3.Hash(file), hasher.Finalize());
            }
        });

    [Fact]
    public void A_failing_writer_leaves_no_thread_blocked_and_the_encoder_usable() =>
        WithinLimit(() =>
        {
            var file = BlockCodecTests.SourceText(8 * Block, 60);
            var encoder = new BlockEncoder(2);
            var recorder = new Recorder { Before = i => { if (i == 2) throw new IOException("connection lost"); } };
            var e = Assert.Throws<IOException>(() => Send(encoder, file, new CompressionProbe(WireCodec.Zstd), Blake3Hasher.Create(), recorder.Write));
            Assert.Equal("connection lost", e.Message);
            Assert.Equal(2, recorder.Frames.Count);
            Assert.Equal(0, encoder.Pending);

            // The next file on the same encoder goes through whole.
            var again = new Recorder();
            var hasher = Blake3Hasher.Create();
            Send(encoder, file, new CompressionProbe(WireCodec.Zstd), hasher, again.Write);
            Assert.Equal(file, again.Decoded());
            Assert.Equal(Blake3.Hash(file), hasher.Finalize());

            encoder.Dispose();
            Assert.False(encoder.AnyThreadAlive);
        });

    [Fact]
    public void A_writer_failing_at_any_frame_leaves_every_buffer_free_for_the_next_file() =>
        WithinLimit(() =>
        {
            // Text, then random, then text: the failure lands in every path (a frame written while waiting for a
            // buffer, a finished one written before the probe chooses, a raw block after pending ones, the last).
            var file = Concat(BlockCodecTests.SourceText(3 * Block, 65), BlockCodecTests.RandomBytes(2 * Block, 66), BlockCodecTests.SourceText(2 * Block + 99, 67));
            using var encoder = new BlockEncoder(2);
            var probe = new CompressionProbe(WireCodec.Zstd);
            for (int run = 0; run < 16; run++)
            {
                int at = run % 8;
                // The second half of the runs read slowly, so that finished frames are written (and fail) inside Add.
                Action<int>? read = run >= 8 ? _ => Thread.Sleep(80) : null;
                var failing = new Recorder { Before = i => { if (i == at) throw new IOException($"lost at {at}"); } };
                Assert.Equal($"lost at {at}", Assert.Throws<IOException>(() => Send(encoder, file, probe, null, failing.Write, read)).Message);
                Assert.Equal(at, failing.Frames.Count);
                // Every slot comes back (a dropped block still being compressed frees its slot when done).
                Assert.True(SpinWait.SpinUntil(() => encoder.FreeSlots == 3, TimeSpan.FromSeconds(10)), $"{encoder.FreeSlots} of 3 slots free after a failure at frame {at}");
                var good = new Recorder { Before = i => { if (i % 3 == 0) Thread.Sleep(5); } };
                Send(encoder, file, probe, null, good.Write);
                Assert.Equal(file, good.Decoded());
                Assert.Equal(3, encoder.FreeSlots);
            }
        });

    [Fact]
    public void A_cancelled_run_stops_at_once_and_leaves_no_thread_blocked() =>
        WithinLimit(() =>
        {
            var file = BlockCodecTests.SourceText(10 * Block, 61);
            using var cts = new CancellationTokenSource();
            var encoder = new BlockEncoder(2);
            var recorder = new Recorder
            {
                Before = i =>
                {
                    if (i == 1) cts.Cancel();
                    cts.Token.ThrowIfCancellationRequested();
                },
            };
            Assert.Throws<OperationCanceledException>(() => Send(encoder, file, new CompressionProbe(WireCodec.Lz4), Blake3Hasher.Create(), recorder.Write));
            Assert.Single(recorder.Frames);
            encoder.Dispose();
            Assert.False(encoder.AnyThreadAlive);
        });

    [Fact]
    public void A_read_error_midway_then_Abandon_drops_the_pending_blocks() =>
        WithinLimit(() =>
        {
            var file = BlockCodecTests.SourceText(6 * Block, 62);
            using var encoder = new BlockEncoder(2);
            var recorder = new Recorder();
            encoder.Begin(new CompressionProbe(WireCodec.Zstd), Blake3Hasher.Create(), recorder.Write);
            for (int i = 0; i < 3; i++)
            {
                file.AsSpan(i * Block, Block).CopyTo(encoder.NextBuffer());
                encoder.Add(Block, last: false);
            }
            encoder.NextBuffer(); // the read that fails
            encoder.Abandon();
            Assert.Equal(0, encoder.Pending);
            int written = recorder.Frames.Count;
            Assert.InRange(written, 0, 3);
            Assert.Equal(file.AsSpan(0, written * Block).ToArray(), recorder.Decoded());
            // Nothing more is written for that file, and the next one starts clean.
            var next = new Recorder();
            Send(encoder, file, new CompressionProbe(WireCodec.Zstd), null, next.Write);
            Assert.Equal(written, recorder.Frames.Count);
            Assert.Equal(file, next.Decoded());
        });

    [Fact]
    public void A_workers_exception_is_rethrown_on_the_callers_thread() =>
        WithinLimit(() =>
        {
            var file = BlockCodecTests.SourceText(5 * Block, 63);
            // Block 0 is compressed on this thread, blocks 1.. by workers (hand-off numbers 0..); the second fails.
            var encoder = new BlockEncoder(2) { WorkerHook = n => { if (n == 1) throw new InvalidOperationException("worker failed"); } };
            var recorder = new Recorder();
            var e = Assert.Throws<InvalidOperationException>(() => Send(encoder, file, new CompressionProbe(WireCodec.Zstd), null, recorder.Write));
            Assert.Equal("worker failed", e.Message);
            Assert.Contains("BlockEncoder.Work", e.StackTrace); // the worker's stack, rethrown here
            Assert.Equal(2, recorder.Frames.Count); // blocks 0 and 1, then the failed one's turn
            Assert.Equal(2, encoder.ThreadsStarted);
            Assert.Equal(0, encoder.Pending);
            encoder.Dispose();
            Assert.False(encoder.AnyThreadAlive);
        });

    [Fact]
    public void Dispose_with_blocks_pending_returns_and_ends_the_threads() =>
        WithinLimit(() =>
        {
            var file = BlockCodecTests.SourceText(3 * Block, 64);
            var encoder = new BlockEncoder(2);
            var recorder = new Recorder();
            encoder.Begin(new CompressionProbe(WireCodec.Zstd), null, recorder.Write);
            for (int i = 0; i < 3; i++)
            {
                file.AsSpan(i * Block, Block).CopyTo(encoder.NextBuffer());
                encoder.Add(Block, last: false);
            }
            Assert.InRange(encoder.Pending, 1, 3);
            encoder.Dispose();
            Assert.False(encoder.AnyThreadAlive);
            Assert.Throws<ObjectDisposedException>(() => encoder.NextBuffer());
            encoder.Dispose(); // twice is fine
        });

    [Fact]
    public void Misuse_is_refused_plainly()
    {
        using var encoder = new BlockEncoder(1);
        Assert.Throws<InvalidOperationException>(() => encoder.NextBuffer());
        encoder.Begin(new CompressionProbe(WireCodec.Lz4), null, (in EncodedBlock _) => { });
        Assert.Throws<InvalidOperationException>(() => encoder.Add(10, last: true));
        Assert.Throws<InvalidOperationException>(() => encoder.Begin(new CompressionProbe(WireCodec.Lz4), null, (in EncodedBlock _) => { }));
        encoder.NextBuffer();
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.Add(Block + 1, last: true));
        encoder.Abandon();
        encoder.Abandon();
    }

    // ---- AddFile: the one loop that reads a file into frames -----------------------------------------------------

    [Theory]
    [InlineData(0, false)]
    [InlineData(3 * Block + 12345, false)]
    [InlineData(3 * Block + 12345, true)]
    public void AddFile_sends_a_range_of_a_file_in_order_and_each_block_is_seen_at_its_offset(int size, bool exact)
    {
        using var t = new Bcmr.Tests.Infrastructure.TempDir();
        var path = t.WriteRandom("f.bin", size, 3);
        var bytes = File.ReadAllBytes(path);
        using var h = File.OpenHandle(path);
        using var encoder = new BlockEncoder(0);
        var recorder = new Recorder();
        var seen = new List<long>();
        encoder.Begin(new CompressionProbe(WireCodec.None), null, recorder.Write);
        long from = size > 0 ? 1000 : 0;
        long end = encoder.AddFile(h, path, from, size, exact, (block, at) => { Assert.True(block.SequenceEqual(bytes.AsSpan((int)at, block.Length))); seen.Add(at); }, out var error);
        encoder.Finish();
        Assert.Null(error);
        Assert.Equal(size, end);
        Assert.Equal(bytes[(int)from..], recorder.Decoded());
        Assert.Equal(Enumerable.Range(0, seen.Count).Select(i => from + (long)i * Block), seen);
    }

    [Fact]
    public void AddFile_past_the_end_is_the_end_of_a_file_read_to_its_end_and_a_changed_source_when_exact()
    {
        using var t = new Bcmr.Tests.Infrastructure.TempDir();
        var path = t.WriteRandom("short.bin", Block + 100, 4);
        using var h = File.OpenHandle(path);
        foreach (var exact in new[] { false, true })
        {
            using var encoder = new BlockEncoder(0);
            var recorder = new Recorder();
            encoder.Begin(new CompressionProbe(WireCodec.None), null, recorder.Write);
            long end = encoder.AddFile(h, path, 0, 3L * Block, exact, null, out var error);
            encoder.Finish();
            if (!exact)
            {
                // The server's Get: the file shrank since it was listed; what it holds goes, and the caller sees where it ended.
                Assert.Null(error);
                Assert.Equal(Block + 100, end);
                Assert.Equal(File.ReadAllBytes(path), recorder.Decoded());
                continue;
            }
            // An upload: a short read is the source changing; the blocks before it still go, the short one does not.
            Assert.NotNull(error);
            Assert.Equal(Bcmr.Engine.BcmrErrorCode.SourceChanged, error!.Code);
            Assert.StartsWith($"{path}: changed while being copied", error.Message);
            Assert.Equal(Block, end);
            Assert.Equal(File.ReadAllBytes(path)[..Block], recorder.Decoded());
        }
    }

    [Fact]
    public void AddFile_stops_where_the_block_check_refuses_and_hands_the_error_back()
    {
        using var t = new Bcmr.Tests.Infrastructure.TempDir();
        var path = t.WriteRandom("f.bin", 3 * Block, 5);
        using var h = File.OpenHandle(path);
        using var encoder = new BlockEncoder(0);
        var recorder = new Recorder();
        encoder.Begin(new CompressionProbe(WireCodec.None), null, recorder.Write);
        var refusal = new Bcmr.Engine.BcmrException(Bcmr.Engine.BcmrErrorCode.SourceChanged, path, "moved");
        long end = encoder.AddFile(h, path, 0, 3L * Block, exact: true, (_, at) => { if (at == 2L * Block) throw refusal; }, out var error);
        encoder.Finish();
        Assert.Same(refusal, error);
        Assert.Equal(2L * Block, end);
        Assert.Equal(2 * Block, recorder.Decoded().Length);
    }
}
