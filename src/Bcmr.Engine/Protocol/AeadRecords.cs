using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Bcmr.Engine.Protocol;

/// <summary>Which way a record travels: the first byte of its nonce (bcmr 0.6's values), and which key seals it.</summary>
public enum AeadDirection : byte
{
    ClientToServer = 1,
    ServerToClient = 2,
}

/// <summary>
/// The record layer of the direct channel: the serve protocol's bytes cut into records
/// <c>[u32 LE n][ciphertext][16-byte tag]</c>, n = ciphertext + tag, sealed with AES-256-GCM
/// (<see cref="AesGcm"/>, OpenSSL underneath: no crypto of our own). The length field is the associated data, so a
/// changed length fails like a changed byte. The nonce is the direction byte, the record's number as a u64 LE and
/// three zero bytes: never sent, never reused (each direction has its own key and its own counter), and a record
/// that arrives out of its place (replayed, reordered, dropped, reflected from the other direction) fails to open.
/// </summary>
public static class AeadRecords
{
    /// <summary>The most plaintext one record carries: a 4 MiB Data frame is 16 records.</summary>
    public const int MaxPlaintext = 256 * 1024;

    public const int TagSize = 16;
    public const int HeaderSize = 4;
    public const int NonceSize = 12;

    internal static void Nonce(Span<byte> nonce, AeadDirection direction, ulong counter)
    {
        nonce.Clear();
        nonce[0] = (byte)direction;
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[1..], counter);
    }

    internal static string Name(AeadDirection d) => d == AeadDirection.ClientToServer ? "client" : "server";
}

/// <summary>A record that did not open: altered, replayed, reordered, truncated, reflected, or sealed with another key.
/// An <see cref="IOException"/>, so that both ends treat it as the connection failing (a download keeps its partial
/// file for <c>-C</c>, an upload its partial on the server), with a message that says what happened.</summary>
public sealed class DirectIntegrityException(string message) : IOException(message);

/// <summary>What the two record streams share: one AES-256-GCM key for one direction, no seeking; disposing frees
/// the cipher's key state and wipes the record buffer.</summary>
public abstract class AeadStream : Stream
{
    private protected readonly AesGcm Aes;
    private protected readonly AeadDirection Direction;
    private readonly byte[] _wipe;
    private protected bool Disposed;

    private protected AeadStream(ReadOnlySpan<byte> key, AeadDirection direction, byte[] wipeOnDispose)
    {
        Aes = new AesGcm(key, AeadRecords.TagSize);
        Direction = direction;
        _wipe = wipeOnDispose;
    }

    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !Disposed)
        {
            Disposed = true;
            Aes.Dispose();
            CryptographicOperations.ZeroMemory(_wipe);
        }
        base.Dispose(disposing);
    }
}

/// <summary>Seals everything written to it into records on <paramref name="inner"/>, one or more per Write (no
/// buffering of its own: the serve client and session buffer above it, so a flush above is a record here).</summary>
public sealed class AeadWriter : AeadStream
{
    private readonly Stream _inner;
    private readonly byte[] _record;
    private ulong _counter;

    public AeadWriter(Stream inner, ReadOnlySpan<byte> key, AeadDirection direction) : this(inner, key, direction, 0) { }

    /// <param name="firstCounter">Where the counter starts: tests start it near the end to prove a wrap ends the
    /// connection.</param>
    internal AeadWriter(Stream inner, ReadOnlySpan<byte> key, AeadDirection direction, ulong firstCounter)
        : this(inner, key, direction, firstCounter, new byte[AeadRecords.HeaderSize + AeadRecords.MaxPlaintext + AeadRecords.TagSize]) { }

    private AeadWriter(Stream inner, ReadOnlySpan<byte> key, AeadDirection direction, ulong firstCounter, byte[] record)
        : base(key, direction, record)
    {
        _inner = inner;
        _record = record;
        _counter = firstCounter;
    }

    /// <summary>Records sealed so far (the next record's number).</summary>
    public ulong Records => _counter;

    public override bool CanRead => false;
    public override bool CanWrite => !Disposed;

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        // One writer at a time, whoever calls: two records sealed at once could share a counter, and a nonce.
        lock (_record)
        {
            while (buffer.Length > 0)
            {
                int n = Math.Min(buffer.Length, AeadRecords.MaxPlaintext);
                Seal(buffer[..n]);
                buffer = buffer[n..];
            }
        }
    }

    private void Seal(ReadOnlySpan<byte> plain)
    {
        // A counter that would wrap would reuse a nonce under the same key: end the connection instead.
        if (_counter == ulong.MaxValue)
            throw new IOException($"the direct channel's {AeadRecords.Name(Direction)} nonce counter is exhausted; the connection is closed rather than reuse a nonce");
        Span<byte> nonce = stackalloc byte[AeadRecords.NonceSize];
        AeadRecords.Nonce(nonce, Direction, _counter);
        var header = _record.AsSpan(0, AeadRecords.HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(plain.Length + AeadRecords.TagSize));
        var cipher = _record.AsSpan(AeadRecords.HeaderSize, plain.Length);
        var tag = _record.AsSpan(AeadRecords.HeaderSize + plain.Length, AeadRecords.TagSize);
        Aes.Encrypt(nonce, plain, cipher, tag, header);
        _counter++;
        _inner.Write(_record, 0, AeadRecords.HeaderSize + plain.Length + AeadRecords.TagSize);
    }

    public override void Flush() => _inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Opens the records of <paramref name="inner"/> in order and reads out their plaintext. The end of the
/// stream between records is the end; inside a record it is a lost connection (an IOException); a record that does
/// not open, or whose length is impossible (under a tag, over <see cref="AeadRecords.MaxPlaintext"/>), is a
/// <see cref="DirectIntegrityException"/> before any of it is used. Memory is bounded by one record.</summary>
public sealed class AeadReader : AeadStream
{
    private readonly Stream _inner;
    private readonly byte[] _record = new byte[AeadRecords.MaxPlaintext + AeadRecords.TagSize];
    private readonly byte[] _plain;
    private int _pos, _len;
    private ulong _counter;
    /// <summary>Why the stream cannot go on (an integrity failure, or an end inside a record): every later read
    /// fails with it instead of looking like a clean end.</summary>
    private string? _failure;

    public AeadReader(Stream inner, ReadOnlySpan<byte> key, AeadDirection direction) : this(inner, key, direction, new byte[AeadRecords.MaxPlaintext]) { }

    private AeadReader(Stream inner, ReadOnlySpan<byte> key, AeadDirection direction, byte[] plain) : base(key, direction, plain)
    {
        _inner = inner;
        _plain = plain;
    }

    /// <summary>Records opened so far.</summary>
    public ulong Records => _counter;

    public override bool CanRead => !Disposed;
    public override bool CanWrite => false;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (buffer.Length == 0) return 0;
        // An empty record: go on to the next, in a loop (a peer can send any number of them; recursing would let it
        // overflow the stack).
        while (_pos == _len)
        {
            _pos = _len = 0;
            // A caller with room for a whole record gets it decrypted straight into its buffer: no copy.
            int n = NextRecord(buffer);
            if (n < 0) return 0;
            if (n > 0) return n;
        }
        int take = Math.Min(buffer.Length, _len - _pos);
        _plain.AsSpan(_pos, take).CopyTo(buffer);
        _pos += take;
        return take;
    }

    /// <summary>Reads and opens one record: into <paramref name="direct"/> when it fits (returns its length), else
    /// into <see cref="_plain"/> (returns 0 and sets <see cref="_len"/>); -1 at a clean end of the stream.</summary>
    private int NextRecord(Span<byte> direct)
    {
        if (_failure is not null) throw new IOException(_failure);
        Span<byte> header = stackalloc byte[AeadRecords.HeaderSize];
        int got = ReadFully(header);
        if (got == 0) return -1;
        if (got < header.Length) throw Ended($"the direct connection ended inside a record's length ({got} of 4 bytes)");
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (n < AeadRecords.TagSize) throw Fail($"a record of {n} bytes is shorter than its tag");
        if (n > AeadRecords.MaxPlaintext + AeadRecords.TagSize) throw Fail($"a record of {n} bytes is larger than any record ({AeadRecords.MaxPlaintext + AeadRecords.TagSize})");
        var body = _record.AsSpan(0, (int)n);
        int read = ReadFully(body);
        if (read < body.Length) throw Ended($"the direct connection ended inside a record ({read} of {n} bytes)");
        if (_counter == ulong.MaxValue) throw Fail("the nonce counter is exhausted");
        int plainLength = (int)n - AeadRecords.TagSize;
        bool toCaller = plainLength > 0 && direct.Length >= plainLength;
        var target = toCaller ? direct[..plainLength] : _plain.AsSpan(0, plainLength);
        Span<byte> nonce = stackalloc byte[AeadRecords.NonceSize];
        AeadRecords.Nonce(nonce, Direction, _counter);
        try { Aes.Decrypt(nonce, body[..plainLength], body[plainLength..], target, header); }
        catch (AuthenticationTagMismatchException)
        {
            target.Clear(); // nothing of a record that did not open may be used
            throw Fail($"record {_counter} did not authenticate (altered, replayed, reordered, truncated, from the other direction, or sealed with another key)");
        }
        _counter++;
        if (toCaller) return plainLength;
        _len = plainLength;
        return 0;
    }

    private DirectIntegrityException Fail(string what)
    {
        var message = $"integrity check failed on the direct channel from the {AeadRecords.Name(Direction)}: {what}";
        _failure = message;
        return new DirectIntegrityException(message);
    }

    private IOException Ended(string message)
    {
        _failure = message;
        return new IOException(message);
    }

    private int ReadFully(Span<byte> into)
    {
        int total = 0;
        while (total < into.Length)
        {
            int n = _inner.Read(into[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public override void Flush() { }
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
