using Bcmr.Engine.Platform;
using System.Buffers;
using System.Buffers.Binary;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;

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


    /// <summary>
    /// Writes one Data frame carrying <paramref name="block"/>, feeding <paramref name="hasher"/> (when given) each
    /// 256 KiB slice (<see cref="Platform.Fs.IoSlice"/>) just before writing it. Measured on a 1 GiB download over loopback ssh: the slice is still in
    /// cache for the write, and the pipe to ssh fills while the rest of the block is hashed instead of only after.
    /// </summary>
    public void WriteData(ReadOnlySpan<byte> block, Blake3Hasher? hasher)
    {
        if (hasher is null)
        {
            WriteData(block);
            return;
        }
        DataHeader(block.Length);
        _output.Write(_dataHeader);
        for (int at = 0; at < block.Length; at += Platform.Fs.IoSlice)
        {
            var slice = block.Slice(at, Math.Min(Platform.Fs.IoSlice, block.Length - at));
            hasher.Update(slice);
            _output.Write(slice);
        }
    }

    public async ValueTask WriteDataAsync(ReadOnlyMemory<byte> block, CancellationToken ct = default)
    {
        DataHeader(block.Length);
        await _output.WriteAsync(_dataHeader, ct).ConfigureAwait(false);
        await _output.WriteAsync(block, ct).ConfigureAwait(false);
    }

    /// <summary>Writes one DataCompressed frame: algo, original size, and the compressed bytes (no copy).</summary>
    public void WriteDataCompressed(WireCodec algo, int originalSize, ReadOnlySpan<byte> compressed)
    {
        int size = DataCompressedHeader(algo, originalSize, compressed.Length);
        _output.Write(_compressedHeader, 0, size);
        _output.Write(compressed);
    }

    public async ValueTask WriteDataCompressedAsync(WireCodec algo, int originalSize, ReadOnlyMemory<byte> compressed, CancellationToken ct = default)
    {
        int size = DataCompressedHeader(algo, originalSize, compressed.Length);
        await _output.WriteAsync(_compressedHeader.AsMemory(0, size), ct).ConfigureAwait(false);
        await _output.WriteAsync(compressed, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes one block of file content as the connection's codec wants it: DataCompressed when
    /// <paramref name="codec"/> is not None and the block compresses to at most 95 % of its size (compressed into
    /// <paramref name="scratch"/>, which needs <see cref="BlockCodec.MaxCompressedSize"/> bytes), else raw Data.
    /// Returns the bytes the frame takes on the wire (length field included). Compression runs on the calling thread.
    /// </summary>
    public int WriteBlock(ReadOnlySpan<byte> block, WireCodec codec, Span<byte> scratch)
    {
        if (BlockCodec.TryEncode(codec, block, scratch, out int n))
        {
            WriteDataCompressed(codec, block.Length, scratch[..n]);
            return Wire.HeaderSize + DataCompressedFields + n;
        }
        WriteData(block);
        return Wire.HeaderSize + 4 + block.Length;
    }

    /// <summary>Writes a block prepared by <see cref="BlockEncoder"/>: DataCompressed with its payload, or Data (fed
    /// to the block's hasher slice by slice when it has one). Returns the bytes the frame takes on the wire.</summary>
    internal int WriteEncoded(in EncodedBlock block)
    {
        if (block.Codec != WireCodec.None)
        {
            WriteDataCompressed(block.Codec, block.Data.Length, block.Payload);
            return Wire.HeaderSize + DataCompressedFields + block.Payload.Length;
        }
        WriteData(block.Data, block.Hasher);
        return Wire.HeaderSize + 4 + block.Data.Length;
    }

    /// <summary>Asynchronous <see cref="WriteBlock"/> (the compression itself runs synchronously first).</summary>
    public async ValueTask<int> WriteBlockAsync(ReadOnlyMemory<byte> block, WireCodec codec, Memory<byte> scratch, CancellationToken ct = default)
    {
        if (BlockCodec.TryEncode(codec, block.Span, scratch.Span, out int n))
        {
            await WriteDataCompressedAsync(codec, block.Length, scratch[..n], ct).ConfigureAwait(false);
            return Wire.HeaderSize + DataCompressedFields + n;
        }
        await WriteDataAsync(block, ct).ConfigureAwait(false);
        return Wire.HeaderSize + 4 + block.Length;
    }

    /// <summary>Bytes of a DataCompressed frame on the wire between the type byte and the compressed bytes: algo, original size, inner length.</summary>
    public const int DataCompressedFields = 1 + 4 + 4;

    private readonly byte[] _compressedHeader = new byte[Wire.HeaderSize + DataCompressedFields];

    private int DataCompressedHeader(WireCodec algo, int originalSize, int compressedLength)
    {
        if (algo is not (WireCodec.Lz4 or WireCodec.Zstd))
            throw new ArgumentOutOfRangeException(nameof(algo), algo, "DataCompressed carries lz4 or zstd");
        if ((uint)originalSize > Wire.MaxBlock)
            throw new ArgumentOutOfRangeException(nameof(originalSize), originalSize, $"a block is at most {Wire.MaxBlock} bytes");
        if (compressedLength > Wire.MaxPayload - 1 - DataCompressedFields)
            throw new ArgumentOutOfRangeException(nameof(compressedLength), compressedLength, "compressed block too large for a frame");
        BinaryPrimitives.WriteUInt32LittleEndian(_compressedHeader, (uint)(1 + DataCompressedFields + compressedLength));
        _compressedHeader[4] = (byte)MessageType.DataCompressed;
        _compressedHeader[5] = (byte)algo;
        BinaryPrimitives.WriteUInt32LittleEndian(_compressedHeader.AsSpan(6), (uint)originalSize);
        BinaryPrimitives.WriteUInt32LittleEndian(_compressedHeader.AsSpan(10), (uint)compressedLength);
        return _compressedHeader.Length;
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
            if (_scratch.Length > 0) BlockBuffers.Pool.Return(_scratch);
            _scratch = Array.Empty<byte>();
            _scratch = BlockBuffers.Pool.Rent(Math.Max(size, 4096));
        }
        return MessageCodec.EncodeTo(message, _scratch);
    }

    public void Dispose()
    {
        if (_scratch.Length > 0) BlockBuffers.Pool.Return(_scratch);
        _scratch = Array.Empty<byte>();
    }
}
