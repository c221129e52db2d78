using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Bcmr.Engine.Client;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Engine.Transfers;
using Bcmr.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Bcmr.Tests.Remote;

/// <summary>
/// The direct channel's record layer under an active attacker on the wire, end to end: a real transfer (the engine,
/// ServeClient, ServeSession) over AES-256-GCM records on loopback TCP, through a proxy that parses the record stream
/// of one direction by its length fields and changes record K, in the middle of the file's data: one ciphertext byte
/// flipped, K replayed, K and K+1 swapped, K's tag cut by a byte (length field minus one), K replaced by a record
/// that went the other way. Both directions: on a download the client must catch it, on an upload the server. Every
/// case fails the transfer at exactly record K (the AEAD layer, not the end-of-file BLAKE3), leaves nothing under the
/// final name, keeps only authenticated bytes in the partial file, and a rerun with -C over an honest connection
/// continues from that partial to a byte-identical copy. The handshake that derives the keys is tested elsewhere: both
/// ends here share <see cref="DirectKeys.Derive"/> of fresh random inputs, one set per connection.
/// </summary>
public sealed class DirectTamperTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private const int FileSize = 12 * MiB + 4321;
    /// <summary>Record K is the first record of the tampered direction that starts at or after this many bytes of
    /// that direction's stream: well inside the file's data (12 MiB) whichever way it goes.</summary>
    private const long TamperAt = 5 * MiB;
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;
    private readonly TempDir _t = new();
    private readonly string _root;
    private readonly string _local;

    public DirectTamperTests(ITestOutputHelper output)
    {
        _output = output;
        _root = Directory.CreateDirectory(_t["server-root"]).FullName;
        _local = Directory.CreateDirectory(_t["local"]).FullName;
    }

    public void Dispose() => _t.Dispose();

    public enum Tamper { None, FlipByte, Replay, Swap, TruncateTag, Reflect }

    // ---- the tests ------------------------------------------------------------------------------------------------

    [Fact]
    public void Without_tampering_the_harness_copies_both_ways_byte_identical()
    {
        var src = _t.WriteRandom("local/src.bin", FileSize, 7001);

        var up = Upload(src, "up.bin", Tamper.None, ResumeMode.None);
        Assert.True(up.Summary.Succeeded, Messages(up.Summary) + "\n" + up.ServerLog);
        Assert.Equal("stream", up.Summary.Transport);
        Assert.Equal(Sha(src), Sha(Path.Combine(_root, "up.bin")));
        // The data went through the proxy as records of the record layer (12 MiB: at least 48 of 256 KiB).
        Assert.True(up.Records.ClientToServer >= FileSize / AeadRecords.MaxPlaintext, $"{up.Records.ClientToServer} records client to server");

        var dst = Path.Combine(_local, "down.bin");
        var down = Download("up.bin", dst, Tamper.None, ResumeMode.None);
        Assert.True(down.Summary.Succeeded, Messages(down.Summary) + "\n" + down.ServerLog);
        Assert.Equal(Sha(src), Sha(dst));
        Assert.True(down.Records.ServerToClient >= FileSize / AeadRecords.MaxPlaintext, $"{down.Records.ServerToClient} records server to client");

        Assert.Empty(Leftovers(_root, "up.bin"));
        Assert.Empty(Leftovers(_local, "down.bin"));
    }

    [Theory]
    [InlineData(Tamper.FlipByte)]
    [InlineData(Tamper.Replay)]
    [InlineData(Tamper.Swap)]
    [InlineData(Tamper.TruncateTag)]
    [InlineData(Tamper.Reflect)]
    public void A_tampered_download_fails_at_the_record_keeps_nothing_unauthenticated_and_resumes_with_C(Tamper tamper)
    {
        var source = _t.WriteRandom("server-root/src.bin", FileSize, 7100 + (int)tamper);
        var dst = Path.Combine(_local, "src.bin");

        var bad = Download("src.bin", dst, tamper, ResumeMode.None);
        var text = Messages(bad.Summary);
        Assert.False(bad.Summary.Succeeded, "the tampered download succeeded\n" + bad.ServerLog);
        Assert.True(bad.Summary.Failed > 0, $"failed {bad.Summary.Failed}: {text}");
        Assert.Equal(1, bad.Tampered);
        Assert.Contains("integrity", text);
        Assert.Contains("integrity check failed on the direct channel from the server", text);
        // Caught at the record the proxy changed (one later for a replay: K itself is the genuine one), not later.
        Assert.Contains($"record {bad.FailsAt} did not authenticate", text);
        Assert.False(File.Exists(dst), "a tampered download left a file under the final name");

        // What was kept for -C is a prefix of the source: only records that authenticated were written.
        var partial = Temporaries.PartialPath(dst);
        Assert.True(File.Exists(partial), "no partial file kept for -C: " + text);
        var kept = File.ReadAllBytes(partial);
        Assert.True(kept.Length > 0 && kept.Length < FileSize, $"partial of {kept.Length} bytes");
        Assert.True(kept.AsSpan().SequenceEqual(File.ReadAllBytes(source).AsSpan(0, kept.Length)), "the partial file holds bytes that are not the source's");

        var good = Download("src.bin", dst, Tamper.None, ResumeMode.Resume);
        Assert.True(good.Summary.Succeeded, Messages(good.Summary) + "\n" + good.ServerLog);
        Assert.Equal(Sha(source), Sha(dst));
        var result = Assert.Single(good.Results);
        Assert.Equal(kept.Length, result.ResumedFrom);
        Assert.Equal(ResumeDecision.Resumed, result.Resume);
        Assert.Empty(Leftovers(_local, "src.bin"));
    }

    [Theory]
    [InlineData(Tamper.FlipByte)]
    [InlineData(Tamper.Replay)]
    [InlineData(Tamper.Swap)]
    [InlineData(Tamper.TruncateTag)]
    [InlineData(Tamper.Reflect)]
    public void A_tampered_upload_fails_at_the_record_keeps_nothing_unauthenticated_and_resumes_with_C(Tamper tamper)
    {
        var src = _t.WriteRandom("local/src.bin", FileSize, 7200 + (int)tamper);
        var final = Path.Combine(_root, "up.bin");

        var bad = Upload(src, "up.bin", tamper, ResumeMode.None);
        var text = Messages(bad.Summary);
        Assert.False(bad.Summary.Succeeded, "the tampered upload succeeded\n" + bad.ServerLog);
        Assert.True(bad.Summary.Failed > 0, $"failed {bad.Summary.Failed}: {text}");
        Assert.Equal(1, bad.Tampered);
        // The server caught it at the record the proxy changed, and said so.
        Assert.Contains($"integrity check failed on the direct channel from the client: record {bad.FailsAt} did not authenticate", bad.ServerLog);
        // The server's own direction is intact: it tells the client why before it closes.
        Assert.True(text.Contains("integrity check failed on the direct channel from the client"), $"the client was not told why: {text}\n{bad.ServerLog}");
        Assert.False(File.Exists(final), "a tampered upload left a file under the final name");

        var partial = Temporaries.PartialPath(final);
        Assert.True(File.Exists(partial), "no partial upload kept for -C:\n" + bad.ServerLog);
        var kept = File.ReadAllBytes(partial);
        Assert.True(kept.Length > 0 && kept.Length < FileSize, $"partial of {kept.Length} bytes");
        Assert.True(kept.AsSpan().SequenceEqual(File.ReadAllBytes(src).AsSpan(0, kept.Length)), "the partial upload holds bytes that are not the source's");

        var good = Upload(src, "up.bin", Tamper.None, ResumeMode.Resume);
        Assert.True(good.Summary.Succeeded, Messages(good.Summary) + "\n" + good.ServerLog);
        Assert.Equal(Sha(src), Sha(final));
        var result = Assert.Single(good.Results);
        Assert.Equal(kept.Length, result.ResumedFrom);
        Assert.Equal(ResumeDecision.Resumed, result.Resume);
        Assert.Empty(Leftovers(_root, "up.bin"));
    }

    // ---- running a transfer through the harness -------------------------------------------------------------------

    private sealed record Outcome(TransferSummary Summary, List<CopyResult> Results, string ServerLog, int Tampered, ulong? FailsAt,
        (long ClientToServer, long ServerToClient) Records);

    private Outcome Download(string remote, string dst, Tamper tamper, ResumeMode resume) =>
        Run(new CopyRequest { Sources = ["tamper:" + remote], Destination = dst, Resume = resume }, tamper, AeadDirection.ServerToClient);

    private Outcome Upload(string src, string remote, Tamper tamper, ResumeMode resume) =>
        Run(new CopyRequest { Sources = [src], Destination = "tamper:" + remote, Resume = resume }, tamper, AeadDirection.ClientToServer);

    private Outcome Run(CopyRequest request, Tamper tamper, AeadDirection direction)
    {
        using var harness = new TamperHarness(_root, tamper, direction);
        var results = new List<CopyResult>();
        request = request with
        {
            OpenChannel = harness.Open, Settings = TestSettings.Isolated, StallTimeout = TimeSpan.FromSeconds(10),
        };
        using var cts = new CancellationTokenSource(RunLimit);
        var clock = Stopwatch.StartNew();
        var run = Task.Factory.StartNew(() => TransferEngine.Run(request, null, r => { lock (results) results.Add(r); }, cts.Token),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!run.Wait(RunLimit + TimeSpan.FromSeconds(10)))
        {
            harness.Dispose(); // cut every socket, so that the engine's threads end
            Assert.Fail($"the transfer did not end within {RunLimit.TotalSeconds:0} s (tamper {tamper})\n{harness.ServerLog}");
        }
        var summary = run.Result;
        // The client side is done: close its sockets (a StreamChannel leaves them to whoever connected them), and
        // every server session, proxy pump and socket must end with it.
        harness.Finish(TimeSpan.FromSeconds(15));
        Assert.True(clock.Elapsed < RunLimit, $"took {clock.Elapsed}");
        _output.WriteLine($"{(direction == AeadDirection.ServerToClient ? "download" : "upload")}, {tamper}, {request.Resume}: " +
            $"{(summary.Succeeded ? "succeeded" : "failed: " + Messages(summary))} in {clock.ElapsedMilliseconds} ms; must fail at record {harness.FailsAt}\n" +
            $"server log:\n{harness.ServerLog}");
        return new Outcome(summary, results, harness.ServerLog, harness.Tampered, harness.FailsAt, harness.RecordCounts);
    }

    private static string Messages(TransferSummary s) =>
        s.Fatal?.Message + string.Join("; ", s.Failures.Select(f => f.Message));

    private static string Sha(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(f));
    }

    /// <summary>Partial and staging files of <paramref name="name"/> left in <paramref name="dir"/>.</summary>
    private static string[] Leftovers(string dir, string name) =>
        Directory.GetFiles(dir, "." + name + ".*").Select(Path.GetFileName).ToArray()!;

    // ---- the harness: server sessions behind a tampering proxy on loopback TCP ------------------------------------

    /// <summary>
    /// Each connection the engine opens (<see cref="Open"/>): a client socket and a server socket, both accepted from
    /// one loopback listener, joined by a proxy of two pump threads; a <see cref="ServeSession"/> on a thread of its
    /// own over AES-GCM records on the server socket; a <see cref="StreamChannel"/> over records on the client socket.
    /// The keys are fresh per connection. The pump of <c>direction</c> applies <c>tamper</c> to its record K.
    /// </summary>
    private sealed class TamperHarness : IDisposable
    {
        private readonly string _root;
        private readonly Tamper _tamper;
        private readonly AeadDirection _direction;
        private readonly TcpListener _listener;
        private readonly StringWriter _log = new();
        private readonly TextWriter _syncLog;
        private readonly List<Link> _links = [];
        private readonly object _lock = new();
        private bool _disposed;

        public TamperHarness(string root, Tamper tamper, AeadDirection direction)
        {
            _root = root;
            _tamper = tamper;
            _direction = direction;
            _syncLog = TextWriter.Synchronized(_log);
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
        }

        public string ServerLog { get { lock (_log) return _log.ToString(); } }

        /// <summary>How many connections had their record K changed.</summary>
        public int Tampered { get { lock (_lock) return _links.Count(l => l.Tampered is not null); } }

        /// <summary>The record number the reader must fail at: K, or K+1 for a replay (K itself arrives intact).</summary>
        public ulong? FailsAt
        {
            get
            {
                lock (_lock)
                {
                    var k = _links.Select(l => l.Tampered).FirstOrDefault(t => t is not null);
                    return k is null ? null : (ulong)k + (_tamper == Tamper.Replay ? 1UL : 0UL);
                }
            }
        }

        public (long, long) RecordCounts
        {
            get { lock (_lock) return (_links.Sum(l => l.ClientToServer.Records), _links.Sum(l => l.ServerToClient.Records)); }
        }

        /// <summary><see cref="CopyRequest.OpenChannel"/>.</summary>
        public IServeChannel Open(RemoteSpec spec)
        {
            Assert.Equal("tamper", spec.Host);
            var link = new Link(this);
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _links.Add(link);
            }
            return link.Start();
        }

        /// <summary>A connected pair of sockets through our listener: (the connecting end, the accepted end).</summary>
        private (Socket Connected, Socket Accepted) Pair()
        {
            var connected = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                connected.Connect((IPEndPoint)_listener.LocalEndpoint);
                var accepted = _listener.AcceptSocket();
                accepted.NoDelay = true;
                return (connected, accepted);
            }
            catch
            {
                connected.Dispose();
                throw;
            }
        }

        /// <summary>Closes the clients' sockets and waits for every server session and pump to end; fails the test
        /// when one does not.</summary>
        public void Finish(TimeSpan wait)
        {
            Link[] links;
            lock (_lock) links = [.. _links];
            foreach (var l in links) l.CloseClient();
            var deadline = Stopwatch.StartNew();
            foreach (var l in links)
            {
                var left = wait - deadline.Elapsed;
                if (!l.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero))
                {
                    Dispose();
                    Assert.Fail($"a server session or proxy pump did not end within {wait.TotalSeconds:0} s of the client closing\n{ServerLog}");
                }
            }
            if (links.Select(l => l.HarnessError).FirstOrDefault(e => e is not null) is { } error)
                Assert.Fail($"the harness failed: {error}\n{ServerLog}");
        }

        public void Dispose()
        {
            Link[] links;
            lock (_lock)
            {
                if (_disposed) return;
                _disposed = true;
                links = [.. _links];
            }
            foreach (var l in links) l.Cut();
            foreach (var l in links) l.Join(TimeSpan.FromSeconds(10));
            _listener.Stop();
            _listener.Dispose();
        }

        /// <summary>One connection: client socket ⇄ proxy ⇄ server socket, the session and the pumps.</summary>
        private sealed class Link
        {
            private readonly TamperHarness _h;
            private readonly Socket _client, _proxyClientSide, _proxyServerSide, _server;
            private readonly DirectKeys _keys = DirectKeys.Derive(DirectKeys.NewSecret(), DirectKeys.NewSecret());
            private Thread? _session;

            public readonly Pump ClientToServer, ServerToClient;

            /// <summary>What the session thread threw, which it never should.</summary>
            public Exception? Unexpected { get; private set; }

            /// <summary>Anything that went wrong in the harness itself on this connection.</summary>
            public Exception? HarnessError => Unexpected ?? ClientToServer.Error ?? ServerToClient.Error;

            public Link(TamperHarness h)
            {
                _h = h;
                (_client, _proxyClientSide) = h.Pair();
                (_proxyServerSide, _server) = h.Pair();
                ClientToServer = new Pump(this, AeadDirection.ClientToServer, _proxyClientSide, _proxyServerSide);
                ServerToClient = new Pump(this, AeadDirection.ServerToClient, _proxyServerSide, _proxyClientSide);
                ClientToServer.Other = ServerToClient;
                ServerToClient.Other = ClientToServer;
                var pump = h._direction == AeadDirection.ClientToServer ? ClientToServer : ServerToClient;
                pump.Tamper = h._tamper;
            }

            /// <summary>Record K of the tampered direction, once changed.</summary>
            public long? Tampered => (_h._direction == AeadDirection.ClientToServer ? ClientToServer : ServerToClient).TamperedAt;

            public IServeChannel Start()
            {
                var serverNet = new NetworkStream(_server, ownsSocket: true);
                var reader = new AeadReader(serverNet, _keys.ClientToServer, AeadDirection.ClientToServer);
                var writer = new AeadWriter(serverNet, _keys.ServerToClient, AeadDirection.ServerToClient);
                var session = new ServeSession(reader, writer, new ServeOptions { Root = _h._root, Log = _h._syncLog, Settings = TestSettings.Isolated });
                _session = new Thread(() =>
                {
                    try
                    {
                        var end = session.Run();
                        _h._syncLog.WriteLine($"[harness] session ended ({end})");
                    }
                    catch (Exception e) { Unexpected = e; } // Run() never throws for what the peer does
                    finally
                    {
                        session.Dispose();
                        reader.Dispose();
                        writer.Dispose();
                        ServeSession.CloseGracefully(_server); // as the direct channel's server ends its connection
                        serverNet.Dispose(); // the server's end of the connection: the proxy sees it close
                    }
                }) { IsBackground = true, Name = "tamper-serve-session" };
                _session.Start();
                ClientToServer.Start();
                ServerToClient.Start();

                var clientNet = new NetworkStream(_client, ownsSocket: false);
                return new StreamChannel(new AeadWriter(clientNet, _keys.ClientToServer, AeadDirection.ClientToServer),
                    new AeadReader(clientNet, _keys.ServerToClient, AeadDirection.ServerToClient), "tamper-test");
            }

            public void CloseClient() => _client.Dispose();

            /// <summary>Ends everything at once: every socket of this link closed.</summary>
            public void Cut()
            {
                foreach (var s in new[] { _client, _proxyClientSide, _proxyServerSide, _server })
                {
                    try { s.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                    s.Dispose();
                }
            }

            /// <summary>The proxy gave up on the connection (a side broke): both of its sockets closed.</summary>
            public void CutProxy()
            {
                foreach (var s in new[] { _proxyClientSide, _proxyServerSide })
                {
                    try { s.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                    s.Dispose();
                }
            }

            public bool Join(TimeSpan wait)
            {
                var clock = Stopwatch.StartNew();
                TimeSpan Left() => wait - clock.Elapsed > TimeSpan.Zero ? wait - clock.Elapsed : TimeSpan.Zero;
                bool ok = _session?.Join(Left()) ?? true;
                ok &= ClientToServer.Join(Left());
                ok &= ServerToClient.Join(Left());
                if (ok)
                {
                    // Everything has ended: the proxy's sockets (the others are closed already) go too.
                    _proxyClientSide.Dispose();
                    _proxyServerSide.Dispose();
                    _client.Dispose();
                }
                return ok;
            }
        }

        /// <summary>
        /// One direction of the proxy: reads records off <c>from</c> by their u32 LE length fields and forwards them
        /// to <c>to</c>, record K (the first at or after <see cref="TamperAt"/> bytes) changed by <see cref="Tamper"/>.
        /// The end of its input is passed on as a half-close; a broken side closes the proxy's both sockets.
        /// </summary>
        private sealed class Pump(Link link, AeadDirection direction, Socket from, Socket to)
        {
            private readonly List<byte[]> _seen = [];
            private Thread? _thread;
            private byte[]? _held;
            private long _records;

            public Pump? Other { get; set; }
            public Tamper Tamper { get; set; } = Tamper.None;
            public long? TamperedAt { get; private set; }
            public long Records => Interlocked.Read(ref _records);
            public Exception? Error { get; private set; }

            public void Start()
            {
                _thread = new Thread(Run) { IsBackground = true, Name = $"tamper-proxy-{direction}" };
                _thread.Start();
            }

            public bool Join(TimeSpan wait) => _thread?.Join(wait) ?? true;

            /// <summary>A record this pump forwarded, for the other direction to reflect: the one with the same
            /// number when there is one (same counter, other direction byte and key), else the latest.</summary>
            private byte[]? Reflection(long number)
            {
                lock (_seen)
                    return number < _seen.Count ? _seen[(int)number] : _seen.Count > 0 ? _seen[^1] : null;
            }

            private void Run()
            {
                using var input = new NetworkStream(from, ownsSocket: false);
                using var output = new NetworkStream(to, ownsSocket: false);
                long offset = 0;
                long index = 0;
                var header = new byte[AeadRecords.HeaderSize];
                try
                {
                    while (true)
                    {
                        int got = ReadFully(input, header);
                        if (got == 0) break;
                        if (got < header.Length) throw new IOException("the stream ended inside a length field");
                        uint n = BinaryPrimitives.ReadUInt32LittleEndian(header);
                        if (n < AeadRecords.TagSize || n > AeadRecords.MaxPlaintext + AeadRecords.TagSize)
                            throw new IOException($"record {index}: impossible length {n}");
                        var record = new byte[AeadRecords.HeaderSize + n];
                        header.CopyTo(record, 0);
                        if (ReadFully(input, record.AsSpan(AeadRecords.HeaderSize)) < n) throw new IOException("the stream ended inside a record");

                        if (Other?.Tamper == Tamper.Reflect)
                            lock (_seen) if (_seen.Count < 256) _seen.Add(record);

                        bool isK = Tamper != Tamper.None && TamperedAt is null && offset >= TamperAt;
                        if (isK) TamperedAt = index;
                        Forward(output, record, index, isK);
                        offset += record.Length;
                        index++;
                        Interlocked.Increment(ref _records);
                    }
                    if (_held is { } last) output.Write(last); // a swap whose K+1 never came: K goes after all
                    try { to.Shutdown(SocketShutdown.Send); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    link.CutProxy(); // a side went away: the other goes too
                }
                catch (Exception e)
                {
                    Error = e; // the harness's own failure: the test fails on it, the process does not
                    link.CutProxy();
                }
            }

            private void Forward(Stream output, byte[] record, long index, bool isK)
            {
                if (_held is { } held)
                {
                    // Swap: K+1 goes first, then K.
                    _held = null;
                    output.Write(record);
                    output.Write(held);
                    return;
                }
                if (!isK)
                {
                    output.Write(record);
                    return;
                }
                switch (Tamper)
                {
                    case Tamper.FlipByte:
                        var changed = (byte[])record.Clone();
                        changed[AeadRecords.HeaderSize + (record.Length - AeadRecords.HeaderSize - AeadRecords.TagSize) / 2] ^= 0x01;
                        output.Write(changed);
                        break;
                    case Tamper.Replay:
                        output.Write(record);
                        output.Write(record);
                        break;
                    case Tamper.Swap:
                        _held = record;
                        break;
                    case Tamper.TruncateTag:
                        var cut = record.AsSpan(0, record.Length - 1).ToArray();
                        BinaryPrimitives.WriteUInt32LittleEndian(cut, (uint)(cut.Length - AeadRecords.HeaderSize));
                        output.Write(cut);
                        break;
                    case Tamper.Reflect:
                        var other = Other!.Reflection(index) ?? throw new InvalidOperationException("no record went the other way to reflect");
                        output.Write(other);
                        break;
                    default:
                        throw new InvalidOperationException(Tamper.ToString());
                }
            }

            private static int ReadFully(Stream s, Span<byte> into)
            {
                int total = 0;
                while (total < into.Length)
                {
                    int n = s.Read(into[total..]);
                    if (n == 0) break;
                    total += n;
                }
                return total;
            }
        }
    }
}
