using Bcmr.Engine.Protocol;

namespace Bcmr.Tests.Protocol;

/// <summary>Peer-declared lengths are checked before memory is committed to them.</summary>
public class FrameLimitTests
{
    /// <summary>A stream that claims endless bytes of 0xFF after a header and counts what is read from it.</summary>
    private sealed class EndlessStream(byte[] prefix) : Stream
    {
        public long Served;
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            for (int i = 0; i < buffer.Length; i++) buffer[i] = Served + i < prefix.Length ? prefix[Served + i] : (byte)0xFF;
            Served += buffer.Length;
            return buffer.Length;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Served; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Theory]
    [InlineData(0xFFFFFFFFu)]          // "4 GiB"
    [InlineData(0x80000000u)]          // 2 GiB: would overflow an int
    [InlineData((uint)Wire.FrameLimit + 1)]
    public void A_huge_length_is_refused_before_allocating(uint length)
    {
        var header = new byte[5];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header, length);
        header[4] = (byte)MessageType.Data;
        var stream = new EndlessStream(header);
        using var reader = new FrameReader(stream);

        // Warm up the exception path so JIT allocations are not counted.
        try { new FrameReader(new EndlessStream(header)).TryReadFrame(out _); } catch (ProtocolException) { }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ProtocolException>(() => reader.TryReadFrame(out _));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(ProtocolErrorKind.FrameTooLarge, e.Kind);
        Assert.Equal(length, e.Length);
        Assert.Contains(length.ToString(), e.Message);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes to refuse a frame of length {length}");
        Assert.Equal(0, reader.BufferCapacity);
        Assert.True(stream.Served <= 4, $"read {stream.Served} bytes of a frame that was refused by its length");
    }

    [Fact]
    public void The_largest_allowed_frame_is_read_and_the_next_one_is_refused()
    {
        var payload = new byte[Wire.FrameLimit - 1];
        var frame = new byte[4 + Wire.FrameLimit];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)Wire.FrameLimit);
        frame[4] = (byte)MessageType.Error;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(5), (uint)(payload.Length - 4));
        using var reader = new FrameReader(new MemoryStream(frame));
        Assert.True(reader.TryReadFrame(out var f));
        Assert.Equal(Wire.FrameLimit, f.Length);
        Assert.IsType<ErrorResponse>(f.Decode());
    }

    [Fact]
    public void Reading_Data_frames_allocates_nothing_per_frame()
    {
        var block = new byte[1024 * 1024];
        new Random(1).NextBytes(block);
        var sink = new MemoryStream();
        using (var writer = new FrameWriter(sink))
            for (int i = 0; i < 40; i++) writer.WriteData(block);
        sink.Position = 0;
        using var reader = new FrameReader(sink);
        Assert.True(reader.TryReadFrame(out var first));
        Assert.Equal(block.Length, first.DataBytes.Length);

        long before = GC.GetAllocatedBytesForCurrentThread();
        long total = 0;
        while (reader.TryReadFrame(out var frame)) total += frame.DataBytes.Length;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(39L * block.Length, total);
        Assert.True(allocated < 16 * 1024, $"allocated {allocated} bytes reading 39 MiB of Data frames");
    }

    [Fact]
    public void Writing_Data_frames_copies_nothing()
    {
        var block = new byte[4 * 1024 * 1024];
        var sink = new NullSink();
        using var writer = new FrameWriter(sink);
        writer.WriteData(block);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) writer.WriteData(block);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16 * 1024, $"allocated {allocated} bytes writing 80 MiB of Data frames");
        Assert.Equal(21L * (9 + block.Length), sink.Written);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WriteData(new byte[Wire.MaxBlock + 1]));
    }

    private sealed class NullSink : Stream
    {
        public long Written;
        public override void Write(ReadOnlySpan<byte> buffer) => Written += buffer.Length;
        public override void Write(byte[] buffer, int offset, int count) => Written += count;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
