using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Bcmr.Engine.Protocol;
using Xunit.Abstractions;

namespace Bcmr.Tests.Fuzz;

/// <summary>
/// Seeded fuzzing of the direct channel's two hostile surfaces, run with the suite: 10 000 mutated record streams into
/// <see cref="AeadReader"/> and 10 000 hostile first frames into <see cref="DirectHandshake.Server"/>. A reader
/// hands out the original bytes or fails with an IOException (an integrity failure, or a connection lost inside a
/// record), never a byte that was not sealed in that place; the server returns keys for the exact proof only. No
/// input may hang or make memory grow. Every input has a Random of its own (seed + input number), so a failure names
/// the seed and the input and replays alone.
/// </summary>
[Collection("Fuzz")]
public sealed class DirectFuzzTests(ITestOutputHelper output)
{
    /// <summary>10 000 each; BCMR_FUZZ_INPUTS runs more, or fewer while working on the harness.</summary>
    private static readonly int Inputs = int.TryParse(Environment.GetEnvironmentVariable("BCMR_FUZZ_INPUTS"), out var n) ? n : 10_000;
    private const int RecordSeed = 20260611;
    private const int HandshakeSeed = 20260612;
    /// <summary>An input still running after this long has hung (each needs well under a millisecond); generous, like
    /// ProtocolFuzzTests', for a machine that stalls for a while.</summary>
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);
    private const long MemoryLimit = 200L * 1024 * 1024;
    private const int Max = AeadRecords.MaxPlaintext;
    private const byte Sentinel = 0xA5;

    // ---- the harness ------------------------------------------------------------------------------------------

    /// <summary>Runs inputs 0..<see cref="Inputs"/> on a thread of their own, watched: an input running longer than
    /// <see cref="HangLimit"/> fails the test by name, and memory (after a collection) may not grow by more than
    /// <see cref="MemoryLimit"/>.</summary>
    private static void Run(string what, int seed, Action<int> one)
    {
        int current = -1;
        long startedAt = Stopwatch.GetTimestamp();
        long baseline = GC.GetTotalMemory(forceFullCollection: true), peak = baseline;
        ExceptionDispatchInfo? error = null;
        var worker = new Thread(() =>
        {
            try
            {
                for (int i = 0; i < Inputs; i++)
                {
                    Volatile.Write(ref startedAt, Stopwatch.GetTimestamp());
                    Volatile.Write(ref current, i);
                    one(i);
                    if (i % 500 == 499) peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));
                }
            }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
        }) { IsBackground = true, Name = what + " fuzz" };
        worker.Start();
        while (!worker.Join(100))
        {
            var running = Stopwatch.GetElapsedTime(Volatile.Read(ref startedAt));
            if (running > HangLimit) Assert.Fail($"{what} input {Volatile.Read(ref current)} (seed {seed}) still running after {running.TotalSeconds:F0} s");
        }
        error?.Throw();
        peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));
        Assert.True(peak - baseline < MemoryLimit, $"{what}: managed memory grew by {(peak - baseline) >> 20} MiB over {Inputs} inputs (seed {seed})");
    }

    // ---- (a) the record reader --------------------------------------------------------------------------------

    /// <summary>The records of a stream as far as their length fields hold together: (offset, total length).</summary>
    private static List<(int At, int Length)> Cut(byte[] wire)
    {
        var records = new List<(int, int)>();
        int at = 0;
        while (at + 4 <= wire.Length)
        {
            uint n = BinaryPrimitives.ReadUInt32LittleEndian(wire.AsSpan(at));
            if (n < 16 || n > Max + 16 || at + 4 + (long)n > wire.Length) break;
            records.Add((at, 4 + (int)n));
            at += 4 + (int)n;
        }
        return records;
    }

    private static uint LengthField(Random r) => r.Next(8) switch
    {
        0 => 0,
        1 => 15,
        2 => 16,
        3 => (uint)Max + 16,
        4 => (uint)Max + 17,
        5 => uint.MaxValue,
        6 => (uint)r.Next(16, 2100),
        _ => (uint)r.Next(),
    };

    private static byte[] Mutate(Random r, byte[] wire, out string what)
    {
        var records = Cut(wire);
        int kind = r.Next(10);
        if (kind >= 5 && records.Count == 0) kind = r.Next(5);
        byte[] Record(int k) => wire.AsSpan(records[k].At, records[k].Length).ToArray();
        byte[] Splice(int at, int remove, ReadOnlySpan<byte> insert) => [.. wire.AsSpan(0, at), .. insert, .. wire.AsSpan(at + remove)];
        switch (kind)
        {
            case 0 or 1:
            {
                if (wire.Length == 0) goto case 2;
                var copy = (byte[])wire.Clone();
                int flips = r.Next(1, 5);
                for (int k = 0; k < flips; k++) copy[r.Next(copy.Length)] ^= (byte)(1 << r.Next(8));
                what = $"{flips} bit(s) flipped";
                return copy;
            }
            case 2:
            {
                var bytes = new byte[r.Next(1, 17)];
                r.NextBytes(bytes);
                int at = r.Next(wire.Length + 1);
                what = $"{bytes.Length} byte(s) inserted at {at}";
                return Splice(at, 0, bytes);
            }
            case 3:
            {
                if (wire.Length == 0) goto case 2;
                int at = r.Next(wire.Length);
                int count = Math.Min(r.Next(1, 17), wire.Length - at);
                what = $"{count} byte(s) deleted at {at}";
                return Splice(at, count, []);
            }
            case 4:
            {
                int at = r.Next(wire.Length + 1);
                what = $"truncated to {at}";
                return wire[..at];
            }
            case 5:
            {
                int k = r.Next(records.Count);
                what = $"truncated after record {k}";
                return wire[..(records[k].At + records[k].Length)];
            }
            case 6:
            {
                int k = r.Next(records.Count), to = r.Next(records.Count + 1);
                int at = to == records.Count ? records[^1].At + records[^1].Length : records[to].At;
                what = $"record {k} duplicated before record {to}";
                return Splice(at, 0, Record(k));
            }
            case 7:
            {
                int a = r.Next(records.Count), b = r.Next(records.Count);
                if (a > b) (a, b) = (b, a);
                what = $"records {a} and {b} swapped";
                if (a == b) return wire;
                return [.. wire.AsSpan(0, records[a].At), .. Record(b), .. wire.AsSpan(records[a].At + records[a].Length, records[b].At - records[a].At - records[a].Length), .. Record(a), .. wire.AsSpan(records[b].At + records[b].Length)];
            }
            case 8:
            {
                int k = r.Next(records.Count);
                what = $"record {k} dropped";
                return Splice(records[k].At, records[k].Length, []);
            }
            default:
            {
                int k = r.Next(records.Count);
                var copy = (byte[])wire.Clone();
                uint value = LengthField(r);
                BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(records[k].At), value);
                what = $"record {k}'s length set to {value}";
                return copy;
            }
        }
    }

    private static int ReadSize(Random r) => r.Next(4) switch
    {
        0 => r.Next(1, 65),
        1 => r.Next(1, 4097),
        2 => Max,
        _ => r.Next(1, Max + 5000),
    };

    /// <summary>A valid record stream: what was written, what went out, and where its records end.</summary>
    private sealed record Sealed(byte[] Key, AeadDirection Direction, byte[] Plain, byte[] Wire, List<int> PlainAfter, List<int> RecordEnds);

    /// <summary>The streams the inputs start from: 1-5 writes each, mostly small, in some one over a record's worth,
    /// made once from the seed (a reader and a writer cost a megabyte of buffers each time; a writer per input would
    /// double the run time, and the mutations, not the starting streams, are what varies).</summary>
    private static Sealed[] Originals(int seed)
    {
        var r = new Random(seed);
        var originals = new Sealed[64];
        for (int o = 0; o < originals.Length; o++)
        {
            var key = new byte[32];
            r.NextBytes(key);
            var direction = r.Next(2) == 0 ? AeadDirection.ClientToServer : AeadDirection.ServerToClient;
            var plain = new MemoryStream();
            var wire = new MemoryStream();
            var plainAfter = new List<int>(); // plaintext length after each record
            using (var w = new AeadWriter(wire, key, direction))
            {
                int writes = r.Next(1, 6);
                for (int k = 0; k < writes; k++)
                {
                    var data = new byte[o < 4 && k == 0 ? r.Next(Max - 50, Max + 3000) : r.Next(1, 2049)];
                    r.NextBytes(data);
                    int before = (int)plain.Length;
                    w.Write(data);
                    plain.Write(data);
                    for (int off = 0; off < data.Length; off += Max) plainAfter.Add(before + Math.Min(data.Length, off + Max));
                }
            }
            var bytes = wire.ToArray();
            var ends = Cut(bytes).Select(c => c.At + c.Length).ToList();
            Assert.Equal(plainAfter.Count, ends.Count);
            originals[o] = new Sealed(key, direction, plain.ToArray(), bytes, plainAfter, ends);
        }
        return originals;
    }

    private static void OneRecordInput(int seed, int i, Sealed[] originals, Dictionary<string, int> outcomes, byte[] buffer)
    {
        var r = new Random(seed + i);
        int which = r.Next(originals.Length);
        var (key, direction, expected, original, plainAfter, recordEnds) = originals[which];

        var mutated = original;
        var done = new List<string>();
        for (int m = r.Next(1, 4); m > 0; m--)
        {
            mutated = Mutate(r, mutated, out var what);
            done.Add(what);
        }
        string Where() => $"record input {i} (seed {seed}; stream {which}: {string.Join(", ", done)})";
        bool unchanged = mutated.AsSpan().SequenceEqual(original);

        using var reader = new AeadReader(new MemoryStream(mutated), key, direction);
        var got = new MemoryStream();
        Exception? failure = null;
        while (true)
        {
            int size = ReadSize(r);
            buffer.AsSpan(0, size).Fill(Sentinel);
            int count;
            try { count = reader.Read(buffer, 0, size); }
            catch (Exception e)
            {
                failure = e;
                // Nothing of the record that failed reached the caller.
                Assert.True(buffer.AsSpan(0, size).IndexOfAnyExcept(Sentinel, (byte)0) < 0, $"{Where()}: bytes of a record that failed reached the caller");
                break;
            }
            if (count == 0) break;
            Assert.True(count <= size, $"{Where()}: read {count} into {size}");
            got.Write(buffer, 0, count);
        }
        var output = got.ToArray();
        // Whatever came out, before a failure or not, is the start of what was sealed: no byte out of its place.
        Assert.True(output.Length <= expected.Length && expected.AsSpan(0, output.Length).SequenceEqual(output),
            $"{Where()}: the reader handed out {output.Length} bytes that are not the start of the plaintext");

        if (failure is null)
        {
            if (unchanged)
            {
                Assert.True(output.Length == expected.Length, $"{Where()}: unchanged stream, {output.Length} of {expected.Length} bytes read");
                outcomes["unchanged, read whole"] = outcomes.GetValueOrDefault("unchanged, read whole") + 1;
                return;
            }
            // The one change the record layer cannot see: the stream cut between records (the protocol above ends
            // with Done/Ok and notices). Anything else must fail.
            int cut = recordEnds.IndexOf(mutated.Length);
            Assert.True(mutated.Length < original.Length && original.AsSpan(0, mutated.Length).SequenceEqual(mutated) && (mutated.Length == 0 || cut >= 0),
                $"{Where()}: a changed stream of {mutated.Length} bytes (original {original.Length}) was read to its end without an error");
            Assert.Equal(mutated.Length == 0 ? 0 : plainAfter[cut], output.Length);
            outcomes["cut between records"] = outcomes.GetValueOrDefault("cut between records") + 1;
            return;
        }

        Assert.False(unchanged, $"{Where()}: an unchanged stream failed: {failure}");
        if (failure is DirectIntegrityException)
        {
            Assert.StartsWith("integrity check failed on the direct channel", failure.Message);
            // It stays failed.
            buffer.AsSpan(0, 100).Fill(Sentinel);
            var again = Record.Exception(() => reader.Read(buffer, 0, 100));
            Assert.True(again is IOException, $"{Where()}: a read after the integrity failure gave {again?.GetType().Name ?? "no error"}");
            Assert.True(buffer.AsSpan(0, 100).IndexOfAnyExcept(Sentinel) < 0, $"{Where()}: a read after the failure wrote into the buffer");
            outcomes["integrity failure"] = outcomes.GetValueOrDefault("integrity failure") + 1;
        }
        else if (failure.GetType() == typeof(IOException))
        {
            Assert.True(failure.Message.Contains("ended inside a record"), $"{Where()}: {failure.Message}");
            outcomes["ended inside a record"] = outcomes.GetValueOrDefault("ended inside a record") + 1;
        }
        else Assert.Fail($"{Where()}: {failure.GetType().Name} escaped: {failure}");
    }

    [Fact]
    public void Ten_thousand_mutated_record_streams_give_the_original_bytes_or_an_IOException()
    {
        var outcomes = new Dictionary<string, int>();
        var buffer = new byte[Max + 5000];
        var originals = Originals(RecordSeed);
        Run("record", RecordSeed, i => OneRecordInput(RecordSeed, i, originals, outcomes, buffer));
        var summary = string.Join(", ", outcomes.Select(kv => $"{kv.Key}: {kv.Value}"));
        output.WriteLine(summary);
        // The inputs reached every way out: most fail the integrity check, some end inside a record or between two
        // (judged on runs big enough to say so; BCMR_FUZZ_INPUTS may ask for a handful).
        if (Inputs < 1000) return;
        Assert.True(outcomes.GetValueOrDefault("integrity failure") > Inputs / 2, summary);
        Assert.True(outcomes.GetValueOrDefault("ended inside a record") > Inputs / 50, summary);
        Assert.True(outcomes.GetValueOrDefault("cut between records") > Inputs / 100, summary);
    }

    // ---- (b) the server's handshake ---------------------------------------------------------------------------

    /// <summary>A connection whose peer's bytes are made once the server has sent its challenge (so that they can
    /// hold the right proof), handed out in random pieces; what the server writes is kept. Never blocks.</summary>
    private sealed class FakeConnection(Random r, Func<byte[], byte[]> answer) : Stream
    {
        private readonly MemoryStream _sent = new();
        private byte[]? _input;
        private int _pos;

        public byte[] Sent => _sent.ToArray();
        public byte[] Input => _input ?? [];
        public int Consumed => _pos;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            _input ??= answer(Sent);
            int n = Math.Min(buffer.Length, _input.Length - _pos);
            if (n > 1 && r.Next(3) == 0) n = r.Next(1, n + 1);
            _input.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            ct.ThrowIfCancellationRequested();
            return ValueTask.FromResult(Read(buffer.Span));
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => _sent.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            ct.ThrowIfCancellationRequested();
            _sent.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override Task FlushAsync(CancellationToken ct) => ct.IsCancellationRequested ? Task.FromCanceled(ct) : Task.CompletedTask;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private static byte[] MutateFrame(Random r, byte[] frame)
    {
        for (int m = r.Next(1, 4); m > 0; m--)
        {
            switch (r.Next(6))
            {
                case 0 when frame.Length > 0: frame[r.Next(frame.Length)] ^= (byte)(1 << r.Next(8)); break;
                case 1 when frame.Length > 0: frame = frame[..r.Next(frame.Length)]; break;
                case 2:
                    int at = r.Next(frame.Length + 1);
                    frame = [.. frame[..at], (byte)r.Next(256), .. frame[at..]];
                    break;
                case 3 when frame.Length > 0:
                    int del = r.Next(frame.Length);
                    frame = [.. frame[..del], .. frame[(del + 1)..]];
                    break;
                case 4 when frame.Length > 4: frame[4] = (byte)r.Next(256); break;
                case 5 when frame.Length >= 4: BinaryPrimitives.WriteUInt32LittleEndian(frame, LengthField(r)); break;
            }
        }
        return frame.Length > 80 ? frame[..80] : frame;
    }

    private static void OneHandshakeInput(int seed, int i, Dictionary<string, int> outcomes)
    {
        var r = new Random(seed + i);
        var secret = new byte[32];
        r.NextBytes(secret);
        string Where() => $"handshake input {i} (seed {seed})";
        byte[]? validFrame = null;
        string shape = "";
        var connection = new FakeConnection(r, sent =>
        {
            Assert.True(sent.Length == 37 && BinaryPrimitives.ReadUInt32LittleEndian(sent) == 33 && sent[4] == 0x8c,
                $"{Where()}: the server sent {Convert.ToHexString(sent)} instead of an AuthChallenge");
            var challenge = sent[5..];
            byte[] Frame(byte type, byte[] body) => [33, 0, 0, 0, type, .. body];
            validFrame = Frame(0x0c, DirectKeys.Derive(secret, challenge).ClientProof(challenge));
            var other = new byte[32];
            r.NextBytes(other);
            var bytes = new byte[r.Next(81)];
            r.NextBytes(bytes);
            (shape, var input) = r.Next(12) switch
            {
                0 or 1 => ("random bytes", bytes),
                2 => ("the valid proof", validFrame),
                3 => ("the valid proof and more", [.. validFrame, .. bytes[..Math.Min(bytes.Length, 43)]]),
                4 => ("a random proof", Frame(0x0c, other)),
                5 => ("a proof under another secret", Frame(0x0c, DirectKeys.Derive(other, challenge).ClientProof(challenge))),
                6 => ("a proof for another challenge", Frame(0x0c, DirectKeys.Derive(secret, other).ClientProof(other))),
                7 => ("the challenge reflected", sent),
                8 => ("the valid proof as another type", Frame((byte)r.Next(256), validFrame[5..])),
                _ => ("the valid proof mutated", MutateFrame(r, (byte[])validFrame.Clone())),
            };
            return input;
        });
        using var cts = new CancellationTokenSource();
        if (r.Next(100) == 0) cts.Cancel();

        DirectKeys? keys = null;
        Exception? failure = null;
        try
        {
            var task = Task.Run(() => DirectHandshake.Server(connection, secret), cts.Token);
            Assert.True(task.Wait(HangLimit), $"{Where()}: the server's handshake did not end");
            keys = task.Result;
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1) { failure = e.InnerException; }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException) { failure = e; }

        var input = connection.Input;
        bool valid = validFrame is not null && input.Length >= 37 && input.AsSpan(0, 37).SequenceEqual(validFrame);
        Assert.True(connection.Consumed <= 37, $"{Where()} ({shape}): the server read {connection.Consumed} bytes, past the AuthHello");
        if (failure is not null)
        {
            if (failure is Xunit.Sdk.XunitException) ExceptionDispatchInfo.Throw(failure);
            Assert.True(failure is IOException or OperationCanceledException, $"{Where()} ({shape}): {failure.GetType().Name} escaped: {failure}");
            var outcome = failure is OperationCanceledException ? "cancelled" : "IOException";
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            return;
        }
        if (cts.IsCancellationRequested)
        {
            Assert.True(keys is null, $"{Where()}: keys from a cancelled handshake");
            outcomes["cancelled"] = outcomes.GetValueOrDefault("cancelled") + 1;
            return;
        }
        if (!valid)
        {
            Assert.True(keys is null, $"{Where()} ({shape}): the server returned keys for {Convert.ToHexString(input)}");
            outcomes["refused"] = outcomes.GetValueOrDefault("refused") + 1;
            return;
        }
        Assert.True(keys is not null, $"{Where()} ({shape}): the exact valid proof was refused");
        var challenge = connection.Sent[5..];
        var expected = DirectKeys.Derive(secret, challenge);
        Assert.Equal(expected.ClientToServer, keys.ClientToServer);
        Assert.Equal(expected.ServerToClient, keys.ServerToClient);
        Assert.Equal(expected.AuthKey, keys.AuthKey);
        outcomes["accepted"] = outcomes.GetValueOrDefault("accepted") + 1;
    }

    [Fact]
    public void Ten_thousand_hostile_first_frames_get_keys_only_for_the_exact_proof()
    {
        var outcomes = new Dictionary<string, int>();
        Run("handshake", HandshakeSeed, i => OneHandshakeInput(HandshakeSeed, i, outcomes));
        var summary = string.Join(", ", outcomes.Select(kv => $"{kv.Key}: {kv.Value}"));
        output.WriteLine(summary);
        if (Inputs < 1000) return;
        Assert.True(outcomes.GetValueOrDefault("accepted") > Inputs / 20, summary);
        Assert.True(outcomes.GetValueOrDefault("refused") > Inputs / 2, summary);
    }
}
