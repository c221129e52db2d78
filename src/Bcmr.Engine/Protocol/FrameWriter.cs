using System.Buffers;
using System.Buffers.Binary;

namespace Bcmr.Engine.Protocol;

/// <summary>
/// Writes frames to a stream. Messages are encoded into a pooled scratch buffer and written with one call; Data frames
/// are written as a 9-byte header followed by the caller's bytes (no copy). Nothing is flushed implicitly: call
/// <see cref="Flush"/> at the end of each response or batch. Give it a buffered stream when many small frames are
/// written between flushes. Not thread-safe.
/// </summary>
public sealed class FrameWriter : IDisposable
{
    private readonly Stream _output;
    private readonly byte[] _dataHeader = new byte[Wire.HeaderSize + 4];
    private byte[] _scratch = Array.Empty<byte>();

    public FrameWriter(Stream output) => _output = output ?? throw new ArgumentNullException(nameof(output));

    public void Write(Message message)
    {
        int size = Encode(message);
        _output.Write(_scratch, 0, size);
    }

    public async ValueTask WriteAsync(Message message, CancellationToken ct = default)
    {
        int size = Encode(message);
        await _output.WriteAsync(_scratch.AsMemory(0, size), ct).ConfigureAwait(false);
    }

    /// <summary>Writes one Data frame carrying <paramref name="block"/> (at most <see cref="Wire.MaxBlock"/> bytes).</summary>
    public void WriteData(ReadOnlySpan<byte> block)
    {
        DataHeader(block.Length);
        _output.Write(_dataHeader);
        _output.Write(block);
    }

    public async ValueTask WriteDataAsync(ReadOnlyMemory<byte> block, CancellationToken ct = default)
    {
        DataHeader(block.Length);
        await _output.WriteAsync(_dataHeader, ct).ConfigureAwait(false);
        await _output.WriteAsync(block, ct).ConfigureAwait(false);
    }

    public void Flush() => _output.Flush();

    public Task FlushAsync(CancellationToken ct = default) => _output.FlushAsync(ct);

    private void DataHeader(int length)
    {
        if (length > Wire.MaxBlock)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"a Data frame carries at most {Wire.MaxBlock} bytes");
        BinaryPrimitives.WriteUInt32LittleEndian(_dataHeader, (uint)Wire.DataFrameLength(length));
        _dataHeader[4] = (byte)MessageType.Data;
        BinaryPrimitives.WriteUInt32LittleEndian(_dataHeader.AsSpan(5), (uint)length);
    }

    private int Encode(Message message)
    {
        int size = MessageCodec.FrameSize(message);
        if (_scratch.Length < size)
        {
            if (_scratch.Length > 0) ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = Array.Empty<byte>();
            _scratch = ArrayPool<byte>.Shared.Rent(Math.Max(size, 4096));
        }
        return MessageCodec.EncodeTo(message, _scratch);
    }

    public void Dispose()
    {
        if (_scratch.Length > 0) ArrayPool<byte>.Shared.Return(_scratch);
        _scratch = Array.Empty<byte>();
    }
}
