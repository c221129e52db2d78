using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Bcmr.Engine.Protocol;

namespace Bcmr.Tests.Protocol;

/// <summary>
/// The direct channel below the serve protocol (<c>--direct direct</c>): the AES-256-GCM record layer
/// (<see cref="AeadWriter"/>, <see cref="AeadReader"/>), the per-connection keys (<see cref="DirectKeys"/>) and the
/// AuthChallenge/AuthHello exchange (<see cref="DirectHandshake"/>). What a user relies on: bytes arrive exactly as sent,
/// and any change on the way (altered, replayed, reordered, truncated, reflected, another key) ends the connection
/// with "integrity check failed" before a byte of the bad record is handed on.
/// </summary>
public sealed class DirectRecordTests
{
    private const int Max = AeadRecords.MaxPlaintext;
    private const int Overhead = AeadRecords.HeaderSize + AeadRecords.TagSize;
    private const byte Sentinel = 0xA5;

    private static readonly byte[] Secret = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Challenge = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();

    private static byte[] Random(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static byte[] Seal(byte[] key, AeadDirection direction, params byte[][] writes)
    {
        var wire = new MemoryStream();
        using (var w = new AeadWriter(wire, key, direction))
            foreach (var x in writes) w.Write(x);
        return wire.ToArray();
    }

    /// <summary>The records of a valid stream, each with its length field, cut where the length fields say.</summary>
    private static List<byte[]> Records(byte[] wire)
    {
        var records = new List<byte[]>();
        for (int at = 0; at < wire.Length;)
        {
            int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(wire.AsSpan(at));
            records.Add(wire[at..(at + AeadRecords.HeaderSize + n)]);
            at += AeadRecords.HeaderSize + n;
        }
        return records;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>Reads <paramref name="wire"/> to its end with read sizes from <paramref name="slice"/>.</summary>
    private static byte[] ReadAll(byte[] wire, byte[] key, AeadDirection direction, Func<int> slice, out ulong records)
    {
        using var r = new AeadReader(new MemoryStream(wire), key, direction);
        var output = new MemoryStream();
        var buffer = new byte[8 << 20];
        while (true)
        {
            int size = slice();
            int n = r.Read(buffer, 0, size);
            if (n == 0) break;
            Assert.InRange(n, 1, size);
            output.Write(buffer, 0, n);
        }
        Assert.Equal(0, r.Read(buffer, 0, 100)); // the end stays the end
        records = r.Records;
        return output.ToArray();
    }

    // ---- round trips ------------------------------------------------------------------------------------------

    public static TheoryData<int[]> WriteSizes => new()
    {
        { new[] { 0 } },
        { new[] { 1 } },
        { new[] { 255 } },
        { new[] { Max } },
        { new[] { Max + 1 } },
        { new[] { (4 << 20) + 9 } },
        { new[] { 1, 0, 300_000, 17, Max, 5, 0, 2 * Max + 3 } },
    };

    [Theory]
    [MemberData(nameof(WriteSizes))]
    public void Every_write_size_round_trips_in_odd_slices_and_big_buffers(int[] sizes)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var writes = sizes.Select((s, i) => Random(s, 1000 + i)).ToArray();
        var plain = Concat(writes);
        var wire = new MemoryStream();
        ulong sealedRecords;
        using (var w = new AeadWriter(wire, key, AeadDirection.ClientToServer))
        {
            foreach (var x in writes) w.Write(x, 0, x.Length);
            sealedRecords = w.Records;
        }

        // One or more records per write (none for an empty one), each at most 256 KiB of plaintext, 20 bytes over.
        var expectedLengths = sizes.SelectMany(s => Enumerable.Range(0, (s + Max - 1) / Max).Select(k => Math.Min(Max, s - k * Max))).ToList();
        Assert.Equal((ulong)expectedLengths.Count, sealedRecords);
        Assert.Equal(plain.Length + expectedLengths.Count * Overhead, wire.Length);
        Assert.Equal(expectedLengths.Select(l => l + Overhead), Records(wire.ToArray()).Select(r => r.Length));

        int[] odd = [1, 7, 4093, 65_537, 300_001, 3];
        int k = 0;
        var slicesOut = ReadAll(wire.ToArray(), key, AeadDirection.ClientToServer, () => odd[k++ % odd.Length], out var opened);
        Assert.True(plain.AsSpan().SequenceEqual(slicesOut), "read in odd slices, the bytes differ");
        Assert.Equal(sealedRecords, opened);

        var bigOut = ReadAll(wire.ToArray(), key, AeadDirection.ClientToServer, () => 8 << 20, out _);
        Assert.True(plain.AsSpan().SequenceEqual(bigOut), "read into a big buffer, the bytes differ");

        var exactOut = ReadAll(wire.ToArray(), key, AeadDirection.ClientToServer, () => Max, out _);
        Assert.True(plain.AsSpan().SequenceEqual(exactOut), "read 256 KiB at a time, the bytes differ");
    }

    [Fact]
    public void Records_are_the_documented_wire_format_and_are_encrypted()
    {
        // [u32 LE n][ciphertext][tag], n = ciphertext + 16, nonce = direction ‖ u64 LE counter ‖ 3 zero bytes,
        // the 4 length bytes as associated data: checked with AesGcm directly, not through the reader.
        var key = RandomNumberGenerator.GetBytes(32);
        var first = new byte[1000];                    // zeros: a cipher that did nothing would show
        var second = Random(70_000, 2);
        var records = Records(Seal(key, AeadDirection.ServerToClient, first, second));
        Assert.Equal(2, records.Count);
        using var aes = new AesGcm(key, 16);
        for (int i = 0; i < 2; i++)
        {
            var expected = i == 0 ? first : second;
            var rec = records[i];
            Assert.Equal((uint)(expected.Length + 16), BinaryPrimitives.ReadUInt32LittleEndian(rec));
            var nonce = new byte[12];
            nonce[0] = 2;
            BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(1), (ulong)i);
            var cipher = rec.AsSpan(4, expected.Length);
            var tag = rec.AsSpan(4 + expected.Length, 16);
            var plain = new byte[expected.Length];
            aes.Decrypt(nonce, cipher, tag, plain, rec.AsSpan(0, 4));
            Assert.Equal(expected, plain);
            Assert.False(cipher.SequenceEqual(expected), $"record {i} is not encrypted");
        }
        Assert.True(records[0].AsSpan(4, 1000).IndexOfAnyExcept((byte)0) >= 0, "a record of zeros went out as zeros");
    }

    /// <summary><paramref name="empty"/> empty records (client to server), then one holding "x": what a peer with
    /// the key may send, though our writer never sends an empty record.</summary>
    private static byte[] EmptyRecordsThenX(byte[] key, int empty)
    {
        var wire = new MemoryStream();
        using var aes = new AesGcm(key, 16);
        var nonce = new byte[12];
        nonce[0] = 1;
        var header = new byte[4];
        var tag = new byte[16];
        for (ulong c = 0; c <= (ulong)empty; c++)
        {
            var plain = c < (ulong)empty ? [] : "x"u8.ToArray();
            var cipher = new byte[plain.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(1), c);
            BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)(plain.Length + 16));
            aes.Encrypt(nonce, plain, cipher, tag, header);
            wire.Write(header);
            wire.Write(cipher);
            wire.Write(tag);
        }
        return wire.ToArray();
    }

    [Fact]
    public void Empty_records_are_skipped_and_the_end_is_still_the_end()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        using var r = new AeadReader(new MemoryStream(EmptyRecordsThenX(key, 1000)), key, AeadDirection.ClientToServer);
        var buffer = new byte[10];
        Assert.Equal(1, r.Read(buffer, 0, 10));
        Assert.Equal((byte)'x', buffer[0]);
        Assert.Equal(0, r.Read(buffer, 0, 10));
        Assert.Equal(1001UL, r.Records);
    }

    [Fact]
    public void Any_number_of_empty_records_cannot_overflow_the_stack()
    {
        // A peer holding the key (a hostile server, say) sends 100 000 empty records, 2 MB. The reader went on to the
        // next record by recursing, one frame per record: 500 000 of them overflowed a 1 MiB stack and killed the
        // process (no exception can catch that). Read on a thread with a 256 KiB stack: it must come back with "x".
        var key = RandomNumberGenerator.GetBytes(32);
        var wire = EmptyRecordsThenX(key, 100_000);
        int got = -1;
        byte first = 0;
        ulong records = 0;
        var reader = new Thread(() =>
        {
            using var r = new AeadReader(new MemoryStream(wire), key, AeadDirection.ClientToServer);
            var buffer = new byte[10];
            got = r.Read(buffer, 0, buffer.Length);
            first = buffer[0];
            records = r.Records;
        }, 256 * 1024);
        reader.Start();
        Assert.True(reader.Join(TimeSpan.FromSeconds(30)), "the reader did not come back");
        Assert.Equal(1, got);
        Assert.Equal((byte)'x', first);
        Assert.Equal(100_001UL, records);
    }

    // ---- tampering --------------------------------------------------------------------------------------------

    private static DirectKeys Keys => DirectKeys.Derive(Secret, Challenge);

    private static readonly byte[] P0 = Random(1000, 10), P1 = Random(3000, 11), P2 = Random(500, 12);

    private static byte[] WithLength(byte[] record, uint n)
    {
        var copy = (byte[])record.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy, n);
        return copy;
    }

    private static byte[] Flip(byte[] record, int at, byte mask)
    {
        var copy = (byte[])record.Clone();
        copy[at] ^= mask;
        return copy;
    }

    /// <summary>Record <paramref name="index"/> of the stream another writer seals: another key, direction or both.</summary>
    private static byte[] SealedBy(byte[] key, AeadDirection direction, int index) =>
        Records(Seal(key, direction, [.. Enumerable.Repeat(P1, index + 1)]))[index];

    /// <summary>A stream of the three records R0 R1 R2 (client to server) with one thing done to it, and the
    /// plaintext that may be read before the failure.</summary>
    private static (byte[] Wire, byte[] Before) Tampered(string kind)
    {
        var k = Keys.ClientToServer;
        var r = Records(Seal(k, AeadDirection.ClientToServer, P0, P1, P2));
        var (r0, r1, r2) = (r[0], r[1], r[2]);
        uint n1 = (uint)(P1.Length + 16);
        return kind switch
        {
            "ciphertext byte flipped" => (Concat(r0, Flip(r1, 4 + 100, 0x01), r2), P0),
            "first ciphertext byte flipped" => (Concat(Flip(r0, 4, 0x80), r1, r2), []),
            "tag byte flipped" => (Concat(r0, Flip(r1, r1.Length - 1, 0x80), r2), P0),
            "length field shorter" => (Concat(r0, WithLength(r1, n1 - 100), r2), P0),
            "length field longer" => (Concat(r0, WithLength(r1, n1 + 1), r2), P0),
            "record replayed" => (Concat(r0, r1, r1, r2), Concat(P0, P1)),
            "first record replayed" => (Concat(r0, r0, r1, r2), P0),
            "records swapped" => (Concat(r0, r2, r1), P0),
            "record dropped" => (Concat(r0, r2), P0),
            "tag truncated" => (Concat(r0, WithLength(r1, n1 - 1)[..^1], r2), P0),
            "reflected: same key, other direction" => (Concat(r0, SealedBy(k, AeadDirection.ServerToClient, 1), r2), P0),
            "reflected: the other direction's key" => (Concat(r0, SealedBy(Keys.ServerToClient, AeadDirection.ServerToClient, 1), r2), P0),
            "other direction's key, this direction" => (Concat(r0, SealedBy(Keys.ServerToClient, AeadDirection.ClientToServer, 1), r2), P0),
            "the auth key" => (Concat(r0, SealedBy(Keys.AuthKey, AeadDirection.ClientToServer, 1), r2), P0),
            "another connection's key" => (Concat(r0, SealedBy(DirectKeys.Derive(Secret, Random(32, 5)).ClientToServer, AeadDirection.ClientToServer, 1), r2), P0),
            "wrong key" => (Concat(r0, SealedBy(RandomNumberGenerator.GetBytes(32), AeadDirection.ClientToServer, 1), r2), P0),
            "length 15 (under a tag)" => (Concat(r0, WithLength(r1, 15)[..(4 + 15)], r2), P0),
            "length 0" => (Concat(r0, WithLength(r1, 0)[..4], r2), P0),
            "length over the largest record" => (Concat(r0, WithLength(r1, Max + 17)), P0),
            _ => throw new ArgumentException(kind),
        };
    }

    public static TheoryData<string, int> TamperCases()
    {
        var data = new TheoryData<string, int>();
        string[] kinds =
        [
            "ciphertext byte flipped", "first ciphertext byte flipped", "tag byte flipped", "length field shorter", "length field longer",
            "record replayed", "first record replayed", "records swapped", "record dropped", "tag truncated",
            "reflected: same key, other direction", "reflected: the other direction's key", "other direction's key, this direction",
            "the auth key", "another connection's key", "wrong key", "length 15 (under a tag)", "length 0", "length over the largest record",
        ];
        foreach (var kind in kinds)
        {
            data.Add(kind, 7);        // the reader opens into its own buffer and hands out slices
            data.Add(kind, 1 << 20);  // the reader opens straight into the caller's buffer
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TamperCases))]
    public void A_tampered_stream_fails_the_integrity_check_without_handing_out_a_byte_of_the_bad_record(string kind, int bufferSize)
    {
        var (wire, before) = Tampered(kind);
        using var r = new AeadReader(new MemoryStream(wire), Keys.ClientToServer, AeadDirection.ClientToServer);
        var got = new MemoryStream();
        var buffer = new byte[bufferSize];
        DirectIntegrityException? failure = null;
        while (failure is null)
        {
            Array.Fill(buffer, Sentinel);
            try
            {
                int n = r.Read(buffer, 0, buffer.Length);
                Assert.True(n > 0, $"{kind}: the stream was read to its end without an integrity failure");
                got.Write(buffer, 0, n);
            }
            catch (DirectIntegrityException e) { failure = e; }
        }
        Assert.StartsWith("integrity check failed on the direct channel", failure.Message);
        Assert.Contains("integrity", failure.Message);
        Assert.Equal(before, got.ToArray());
        // Nothing of the record that failed reached the caller: the buffer holds what it held, or zeros.
        Assert.True(buffer.AsSpan().IndexOfAnyExcept(Sentinel, (byte)0) < 0, $"{kind}: bytes of a record that did not open reached the caller");
        // And it stays failed: no later read hands out anything, nor reports a clean end.
        for (int i = 0; i < 3; i++)
        {
            Array.Fill(buffer, Sentinel);
            Assert.ThrowsAny<IOException>(() => r.Read(buffer, 0, i == 0 ? 1 : buffer.Length));
            Assert.True(buffer.AsSpan().IndexOfAnyExcept(Sentinel) < 0, $"{kind}: a read after the failure wrote into the caller's buffer");
        }
    }

    /// <summary>Returns the 4 header bytes, then fails the test on any further read: the reader must judge the length
    /// before it asks for (or makes room for) the body.</summary>
    private sealed class HeaderOnly(uint n) : Stream
    {
        private readonly byte[] _header = BitConverter.GetBytes(n);
        private int _pos;
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_pos == 4) throw new InvalidOperationException($"the reader asked for the body of a record of {n} bytes");
            int k = Math.Min(buffer.Length, 4 - _pos);
            _header.AsSpan(_pos, k).CopyTo(buffer);
            _pos += k;
            return k;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Theory]
    [InlineData(0xFFFFFFFFu)]
    [InlineData(0x80000000u)]
    [InlineData((uint)(Max + 17))]
    [InlineData(15u)]
    [InlineData(0u)]
    public void An_impossible_length_fails_before_the_body_is_read_or_allocated(uint n)
    {
        using var r = new AeadReader(new HeaderOnly(n), Keys.ClientToServer, AeadDirection.ClientToServer);
        var buffer = new byte[64];
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DirectIntegrityException>(() => r.Read(buffer, 0, buffer.Length));
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.StartsWith("integrity check failed on the direct channel", e.Message);
        Assert.Contains(n.ToString(), e.Message);
        Assert.True(allocated < 64 * 1024, $"{allocated} bytes allocated to refuse a record of {n} bytes");
    }

    [Theory]
    [InlineData(16u)]
    [InlineData((uint)(Max + 16))]
    public void The_largest_and_smallest_lengths_are_accepted_and_a_missing_body_is_a_lost_connection(uint n)
    {
        // n = 16 (an empty record) and n = 256 KiB + 16 are valid lengths: with nothing after them the connection was
        // lost, not tampered with.
        var wire = new byte[4 + 3];
        BinaryPrimitives.WriteUInt32LittleEndian(wire, n);
        using var r = new AeadReader(new MemoryStream(wire), Keys.ClientToServer, AeadDirection.ClientToServer);
        var e = Assert.ThrowsAny<IOException>(() => r.Read(new byte[10], 0, 10));
        Assert.IsNotType<DirectIntegrityException>(e);
        Assert.Contains("ended inside a record", e.Message);
    }

    [Theory]
    [InlineData(2)]          // inside the length
    [InlineData(4)]          // after the length, before the body
    [InlineData(4 + 1500)]   // inside the ciphertext
    [InlineData(4 + 3015)]   // the last tag byte missing
    public void The_end_of_the_stream_inside_a_record_is_an_IOException_not_an_integrity_failure(int keep)
    {
        var r = Records(Seal(Keys.ClientToServer, AeadDirection.ClientToServer, P0, P1));
        var wire = Concat(r[0], r[1][..keep]);
        using var reader = new AeadReader(new MemoryStream(wire), Keys.ClientToServer, AeadDirection.ClientToServer);
        var buffer = new byte[1 << 20];
        Assert.Equal(P0.Length, reader.Read(buffer, 0, buffer.Length));
        Assert.Equal(P0, buffer[..P0.Length]);
        var e = Assert.ThrowsAny<IOException>(() => reader.Read(buffer, 0, buffer.Length));
        Assert.IsNotType<DirectIntegrityException>(e);
        Assert.Contains("ended inside a record", e.Message);
        // And it stays a failure: a later read must not look like a clean end of the stream.
        var again = Assert.ThrowsAny<IOException>(() => reader.Read(buffer, 0, buffer.Length));
        Assert.Contains("ended inside a record", again.Message);
    }

    [Fact]
    public void The_counter_never_wraps_to_reuse_a_nonce()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var wire = new MemoryStream();
        using var w = new AeadWriter(wire, key, AeadDirection.ClientToServer, ulong.MaxValue - 1);
        w.Write("last"u8);
        Assert.Equal(4 + 4 + 16, wire.Length);
        Assert.Equal(ulong.MaxValue, w.Records);

        // The record that went out was sealed under counter 2^64 - 2.
        var nonce = new byte[12];
        nonce[0] = 1;
        BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(1), ulong.MaxValue - 1);
        var rec = wire.ToArray();
        var plain = new byte[4];
        using (var aes = new AesGcm(key, 16)) aes.Decrypt(nonce, rec.AsSpan(4, 4), rec.AsSpan(8, 16), plain, rec.AsSpan(0, 4));
        Assert.Equal("last"u8.ToArray(), plain);

        var e = Assert.ThrowsAny<IOException>(() => w.Write("again"u8));
        Assert.Contains("nonce", e.Message);
        Assert.Equal(4 + 4 + 16, wire.Length); // nothing more was sent
        Assert.ThrowsAny<IOException>(() => w.Write("and again"u8));
        Assert.Equal(4 + 4 + 16, wire.Length);
    }

    // ---- keys -------------------------------------------------------------------------------------------------

    private static byte[] HkdfExpand(byte[] prk, string info) =>
        HMACSHA256.HashData(prk, (byte[])[.. Encoding.ASCII.GetBytes(info), 0x01]);

    [Fact]
    public void The_three_keys_differ_from_each_other_and_from_the_secret_and_are_the_documented_HKDF()
    {
        var keys = DirectKeys.Derive(Secret, Challenge);
        byte[][] all = [keys.AuthKey, keys.ClientToServer, keys.ServerToClient];
        Assert.All(all, k => Assert.Equal(32, k.Length));
        for (int i = 0; i < all.Length; i++)
        {
            Assert.NotEqual(Secret, all[i]);
            Assert.NotEqual(Challenge, all[i]);
            for (int j = i + 1; j < all.Length; j++) Assert.NotEqual(all[i], all[j]);
        }

        // HKDF-SHA256, the challenge as salt, one info string per key: computed here with plain HMAC, so a change of
        // derivation (which would break every older peer) shows.
        var prk = HMACSHA256.HashData(Challenge, Secret);
        Assert.Equal(HkdfExpand(prk, "bcmr direct v2 auth"), keys.AuthKey);
        Assert.Equal(HkdfExpand(prk, "bcmr direct v2 client-to-server"), keys.ClientToServer);
        Assert.Equal(HkdfExpand(prk, "bcmr direct v2 server-to-client"), keys.ServerToClient);
        Assert.Equal(HMACSHA256.HashData(keys.AuthKey, (byte[])[.. Encoding.ASCII.GetBytes("bcmr direct v2 client proof"), .. Challenge]), keys.ClientProof(Challenge));

        // The same inputs give the same keys.
        var again = DirectKeys.Derive(Secret, Challenge);
        Assert.Equal(keys.AuthKey, again.AuthKey);
        Assert.Equal(keys.ClientToServer, again.ClientToServer);
        Assert.Equal(keys.ServerToClient, again.ServerToClient);
    }

    [Fact]
    public void Disposed_keys_are_wiped_and_a_record_stream_made_before_keeps_working()
    {
        var keys = DirectKeys.Derive(Secret, Challenge);
        byte[][] all = [keys.AuthKey, keys.ClientToServer, keys.ServerToClient];
        var wire = new MemoryStream();
        var writer = new AeadWriter(wire, keys.ClientToServer, AeadDirection.ClientToServer);
        var reader = new AeadReader(wire, DirectKeys.Derive(Secret, Challenge).ClientToServer, AeadDirection.ClientToServer);
        keys.Dispose();
        Assert.All(all, k => Assert.True(k.All(b => b == 0), "a key was not wiped"));
        var data = Random(1000, 9);
        writer.Write(data);
        writer.Flush();
        wire.Position = 0;
        var got = new byte[data.Length];
        reader.ReadExactly(got);
        Assert.Equal(data, got);
    }

    [Fact]
    public void Another_challenge_or_another_secret_gives_other_keys()
    {
        var keys = DirectKeys.Derive(Secret, Challenge);
        var otherChallenge = (byte[])Challenge.Clone();
        otherChallenge[31] ^= 1;
        var otherSecret = (byte[])Secret.Clone();
        otherSecret[0] ^= 1;
        foreach (var other in new[] { DirectKeys.Derive(Secret, otherChallenge), DirectKeys.Derive(otherSecret, Challenge) })
        {
            Assert.NotEqual(keys.AuthKey, other.AuthKey);
            Assert.NotEqual(keys.ClientToServer, other.ClientToServer);
            Assert.NotEqual(keys.ServerToClient, other.ServerToClient);
        }
    }

    [Fact]
    public void The_proof_verifies_only_with_the_same_secret_and_challenge()
    {
        var keys = DirectKeys.Derive(Secret, Challenge);
        var proof = keys.ClientProof(Challenge);
        Assert.Equal(32, proof.Length);
        Assert.True(keys.IsClientProof(Challenge, proof));
        Assert.True(DirectKeys.Derive(Secret, Challenge).IsClientProof(Challenge, proof));

        var otherChallenge = (byte[])Challenge.Clone();
        otherChallenge[0] ^= 0x40;
        var otherSecret = (byte[])Secret.Clone();
        otherSecret[17] ^= 0x02;
        Assert.False(DirectKeys.Derive(otherSecret, Challenge).IsClientProof(Challenge, proof), "a proof verified under another secret");
        Assert.False(DirectKeys.Derive(Secret, otherChallenge).IsClientProof(otherChallenge, proof), "a proof verified for another challenge");
        Assert.False(keys.IsClientProof(otherChallenge, proof), "a proof verified for another challenge");
        Assert.False(keys.IsClientProof(Challenge, DirectKeys.Derive(otherSecret, Challenge).ClientProof(Challenge)));
        for (int bit = 0; bit < 256; bit += 37)
        {
            var flipped = (byte[])proof.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.False(keys.IsClientProof(Challenge, flipped), $"a proof with bit {bit} flipped verified");
        }
        Assert.False(keys.IsClientProof(Challenge, proof[..31]));
        Assert.False(keys.IsClientProof(Challenge, [.. proof, 0]));
        Assert.False(keys.IsClientProof(Challenge, []));
        Assert.False(keys.IsClientProof(Challenge, new byte[32]));
    }

    [Fact]
    public void Secrets_are_fresh_and_only_32_byte_inputs_are_taken()
    {
        var a = DirectKeys.NewSecret();
        var b = DirectKeys.NewSecret();
        Assert.Equal(32, a.Length);
        Assert.NotEqual(a, b);
        Assert.Throws<ArgumentException>(() => DirectKeys.Derive(Secret[..31], Challenge));
        Assert.Throws<ArgumentException>(() => DirectKeys.Derive(Secret, [.. Challenge, 0]));
    }

    // ---- handshake --------------------------------------------------------------------------------------------

    /// <summary>Two ends of a real loopback TCP connection.</summary>
    private sealed class SocketPair : IDisposable
    {
        public readonly Socket ClientSocket, ServerSocket;
        public readonly NetworkStream Client, Server;

        public SocketPair()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            ClientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            ClientSocket.Connect(listener.LocalEndPoint!);
            ServerSocket = listener.Accept();
            ClientSocket.ReceiveTimeout = ServerSocket.ReceiveTimeout = 10_000;
            Client = new NetworkStream(ClientSocket, ownsSocket: true);
            Server = new NetworkStream(ServerSocket, ownsSocket: true);
        }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
        }
    }

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    private static DirectKeys? Await(Task<DirectKeys?> server)
    {
        Assert.True(server.Wait(Limit), "the server's handshake did not end");
        return server.Result;
    }

    private static void AssertSameKeys(DirectKeys a, DirectKeys b)
    {
        Assert.Equal(a.AuthKey, b.AuthKey);
        Assert.Equal(a.ClientToServer, b.ClientToServer);
        Assert.Equal(a.ServerToClient, b.ServerToClient);
    }

    [Fact]
    public void With_the_right_secret_both_ends_get_the_same_keys_and_the_first_record_follows_the_proof()
    {
        using var pair = new SocketPair();
        var secret = DirectKeys.NewSecret();
        using var cts = new CancellationTokenSource(Limit);
        var server = Task.Run(() => DirectHandshake.Server(pair.Server, secret), cts.Token);
        var clientKeys = DirectHandshake.Client(pair.Client, secret);
        // The client's first record goes out right behind its proof: the server must not read past the proof.
        var hello = Random(5000, 3);
        using (var w = new AeadWriter(pair.Client, clientKeys.ClientToServer, AeadDirection.ClientToServer)) w.Write(hello);
        var serverKeys = Await(server);
        Assert.NotNull(serverKeys);
        AssertSameKeys(clientKeys, serverKeys);
        Assert.NotEqual(secret, serverKeys.ClientToServer);

        using var fromClient = new AeadReader(pair.Server, serverKeys.ClientToServer, AeadDirection.ClientToServer);
        var got = new byte[hello.Length];
        fromClient.ReadExactly(got);
        Assert.Equal(hello, got);

        // A second connection with the same secret has keys of its own (another challenge).
        using var pair2 = new SocketPair();
        var server2 = Task.Run(() => DirectHandshake.Server(pair2.Server, secret), cts.Token);
        var clientKeys2 = DirectHandshake.Client(pair2.Client, secret);
        Assert.NotNull(Await(server2));
        Assert.NotEqual(clientKeys.ClientToServer, clientKeys2.ClientToServer);
    }

    [Fact]
    public void With_a_wrong_secret_the_server_returns_null()
    {
        using var pair = new SocketPair();
        var secret = DirectKeys.NewSecret();
        var server = Task.Run(() => DirectHandshake.Server(pair.Server, secret), CancellationToken.None);
        var clientKeys = DirectHandshake.Client(pair.Client, DirectKeys.NewSecret());
        Assert.NotNull(clientKeys); // the client cannot tell; its first record will not open at the server
        Assert.Null(Await(server));
    }

    public static TheoryData<string, bool> ServerFrames => new()
    {
        { "the valid proof", true },
        { "the valid proof, then more bytes", true },
        { "type AuthChallenge (the challenge reflected)", false },
        { "the challenge frame itself", false },
        { "type 0x0d", false },
        { "type 0x00", false },
        { "length 32", false },
        { "length 34", false },
        { "length 33 big-endian", false },
        { "36 bytes then EOF", false },
        { "5 bytes then EOF", false },
        { "nothing then EOF", false },
        { "a proof for another challenge", false },
        { "a proof with one bit flipped", false },
        { "all zeros", false },
    };

    [Theory]
    [MemberData(nameof(ServerFrames))]
    public void The_server_takes_only_the_exact_AuthHello_with_the_right_proof(string kind, bool accepted)
    {
        using var pair = new SocketPair();
        var secret = DirectKeys.NewSecret();
        using var cts = new CancellationTokenSource(Limit);
        var server = Task.Run(() => DirectHandshake.Server(pair.Server, secret), cts.Token);
        var challengeFrame = new byte[37];
        pair.Client.ReadExactly(challengeFrame);
        Assert.Equal(33u, BinaryPrimitives.ReadUInt32LittleEndian(challengeFrame));
        Assert.Equal(0x8c, challengeFrame[4]);
        var challenge = challengeFrame[5..];
        var keys = DirectKeys.Derive(secret, challenge);
        byte[] valid = [33, 0, 0, 0, 0x0c, .. keys.ClientProof(challenge)];
        byte[] Patched(int at, byte value) { var f = (byte[])valid.Clone(); f[at] = value; return f; }
        var other = Random(32, 9);
        byte[] frame = kind switch
        {
            "the valid proof" => valid,
            "the valid proof, then more bytes" => [.. valid, 1, 2, 3, 4, 5],
            "type AuthChallenge (the challenge reflected)" => Patched(4, 0x8c),
            "the challenge frame itself" => challengeFrame,
            "type 0x0d" => Patched(4, 0x0d),
            "type 0x00" => Patched(4, 0x00),
            "length 32" => Patched(0, 32),
            "length 34" => [34, 0, 0, 0, 0x0c, .. keys.ClientProof(challenge), 0],
            "length 33 big-endian" => [0, 0, 0, 33, 0x0c, .. keys.ClientProof(challenge)],
            "36 bytes then EOF" => valid[..36],
            "5 bytes then EOF" => valid[..5],
            "nothing then EOF" => [],
            "a proof for another challenge" => [33, 0, 0, 0, 0x0c, .. DirectKeys.Derive(secret, other).ClientProof(other)],
            "a proof with one bit flipped" => Patched(20, (byte)(valid[20] ^ 0x08)),
            "all zeros" => new byte[37],
            _ => throw new ArgumentException(kind),
        };
        pair.Client.Write(frame);
        pair.ClientSocket.Shutdown(SocketShutdown.Send);
        var result = Await(server);
        if (!accepted)
        {
            Assert.Null(result);
            return;
        }
        Assert.NotNull(result);
        AssertSameKeys(keys, result);
        if (frame.Length > 37)
        {
            // What followed the proof is still there for the record layer.
            var rest = new byte[frame.Length - 37];
            pair.Server.ReadExactly(rest);
            Assert.Equal(frame[37..], rest);
        }
    }

    [Fact]
    public void The_client_refuses_anything_but_a_challenge()
    {
        using (var pair = new SocketPair())
        {
            // Something else listening on the port: an AuthHello, say, or an ssh banner.
            pair.Server.Write((byte[])[33, 0, 0, 0, 0x0c, .. new byte[32]]);
            var e = Assert.ThrowsAny<IOException>(() => DirectHandshake.Client(pair.Client, Secret));
            Assert.Contains("AuthChallenge", e.Message);
        }
        using (var pair = new SocketPair())
        {
            pair.Server.Write("SSH-2.0-OpenSSH_9.6\r\n"u8);
            pair.ServerSocket.Shutdown(SocketShutdown.Send);
            var e = Assert.ThrowsAny<IOException>(() => DirectHandshake.Client(pair.Client, Secret));
            Assert.Contains("before its challenge", e.Message);
        }
    }
}
