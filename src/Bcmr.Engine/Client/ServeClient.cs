using System.Diagnostics;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Client;

/// <summary>
/// One reply the client is waiting for. Replies arrive strictly in the order requests were sent (the server is FIFO),
/// so the reader thread hands every frame to the oldest pending reply until that reply says it is complete.
/// Handlers run on the reader thread; they must not throw for local failures (a download whose disk is full keeps
/// consuming its Data frames so the stream stays in step) and must not block on the writer.
/// </summary>
internal abstract class PendingReply
{
    // No spinning before blocking: the waiter is the sending thread, and the reply comes from the other end of ssh.
    private readonly ManualResetEventSlim _done = new(false, spinCount: 0);

    /// <summary>One frame of this reply; true when the reply is complete.</summary>
    public abstract bool OnFrame(in Frame frame);

    /// <summary>The connection ended before the reply was complete.</summary>
    public abstract void OnConnectionLost(BcmrException error);

    public bool IsDone => _done.IsSet;

    public void WaitDone(CancellationToken ct) => _done.Wait(ct);

    /// <summary>Called by the handlers once the reply is complete (or lost); publishes everything they recorded.</summary>
    protected void SetDone() => _done.Set();
}

/// <summary>The reply to a dedup Put: MissingBlocks (the writer waits for it before sending data), then Ok or Error;
/// or an Error straight away when the Put is refused.</summary>
internal sealed class DedupReply : PendingReply
{
    private readonly ManualResetEventSlim _missing = new();
    public MissingBlocks? Missing { get; private set; }
    public Message? Final { get; private set; }
    public BcmrException? Lost { get; private set; }

    public override bool OnFrame(in Frame frame)
    {
        Message m;
        try { m = frame.Decode(); }
        catch (ProtocolException e) { m = new ErrorResponse($"malformed {frame.Type} reply: {e.Message}"); }
        if (m is MissingBlocks missing && Missing is null && Final is null)
        {
            Missing = missing;
            _missing.Set();
            return false;
        }
        Final = m;
        _missing.Set();
        SetDone();
        return true;
    }

    public override void OnConnectionLost(BcmrException error)
    {
        Lost = error;
        _missing.Set();
        SetDone();
    }

    /// <summary>The server has said which blocks it needs, or ended the reply (<see cref="WaitMissing"/> returns at once).</summary>
    public bool Answered => _missing.IsSet;

    /// <summary>Waits until the server said which blocks it needs, or ended the reply.</summary>
    public void WaitMissing(CancellationToken ct) => _missing.Wait(ct);
}

/// <summary>A reply of exactly one message (Stat, List, Hash, Resume, Mkdir...).</summary>
internal sealed class SingleReply : PendingReply
{
    public Message? Message { get; private set; }
    public BcmrException? Lost { get; private set; }

    public override bool OnFrame(in Frame frame)
    {
        try { Message = frame.Decode(); }
        catch (ProtocolException e) { Message = new ErrorResponse($"malformed {frame.Type} reply: {e.Message}"); }
        SetDone();
        return true;
    }

    public override void OnConnectionLost(BcmrException error)
    {
        Lost = error;
        SetDone();
    }

    /// <summary>Waits for the reply: the message (an ErrorResponse too), or throws when the connection was lost.</summary>
    public Message Wait(CancellationToken ct)
    {
        WaitDone(ct);
        if (Lost is not null) throw Lost;
        return Message!;
    }
}

/// <summary>
/// The client end of one serve session: the handshake, then requests written by one caller thread (pipelined, with at
/// most <see cref="Window"/> replies outstanding) and replies consumed by a reader thread in FIFO order.
/// A broken connection fails every pending reply and every later request with <see cref="BcmrErrorCode.ConnectionFailed"/>.
/// </summary>
public sealed class ServeClient : IDisposable
{
    /// <summary>Replies outstanding before the writer waits: enough to hide the round trip for thousands of small
    /// files, small enough that the server never holds much for us.</summary>
    internal const int Window = 256;

    private readonly IServeChannel _channel;
    private readonly string _remote;
    private readonly Stream _toServer;
    private readonly FrameWriter _writer;
    private readonly FrameReader _reader;
    private readonly Queue<PendingReply> _pending = new();
    private readonly object _lock = new();
    private readonly RequestWindow _window = new(Window);
    private Thread? _readerThread;
    /// <summary>Set when the handshake is over; <see cref="_started"/> says whether a session began.</summary>
    private readonly ManualResetEventSlim _welcomed = new();
    private bool _started;
    private BcmrException? _broken;
    private bool _closed;
    private long _sent, _received;

    private ServeClient(IServeChannel channel, TimeSpan? stallTimeout)
    {
        _channel = channel;
        _remote = channel.Remote;
        var toServer = channel.ToServer;
        var fromServer = channel.FromServer;
        _lastActivity = Stopwatch.GetTimestamp();
        // The watchdog sees bytes as they move, below the buffers: a 4 MiB frame on a slow link is progress all along.
        _toServer = new BufferedStream(new ActivityStream(toServer, Touch), 256 * 1024);
        _writer = new FrameWriter(_toServer);
        _reader = new FrameReader(new BufferedStream(new ActivityStream(fromServer, Touch), 256 * 1024));
        _stallTimeout = stallTimeout ?? DefaultStallTimeout;
        if (_stallTimeout > TimeSpan.Zero)
        {
            var every = TimeSpan.FromTicks(Math.Clamp(_stallTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 50, TimeSpan.TicksPerSecond * 5));
            _watchdog = new Timer(_ => CheckStalled(), null, every, every);
        }
    }

    /// <summary>How long a session may wait for a reply while no byte moves either way before it is declared stalled
    /// (rclone's --timeout has the same default). Slow progress is not a stall: any byte read or written resets it.
    /// A server that reads a file larger than this many seconds of its disk speed before it answers (a Hash of a huge
    /// file) needs a larger value.</summary>
    public static readonly TimeSpan DefaultStallTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The least a connection is given to log in and say Welcome, whatever the stall timeout: an ssh login
    /// on a busy or distant host (key exchange, a slow name lookup, a login script) is not a stalled transfer, as
    /// rclone keeps --contimeout apart from --timeout. A login that never ends is still cut after this.</summary>
    public static readonly TimeSpan ConnectAllowance = TimeSpan.FromSeconds(30);

    private readonly TimeSpan _stallTimeout;
    private readonly Timer? _watchdog;
    private long _lastActivity;
    private bool _handshaking;
    // Time the client spends on its own (handling a frame: disk writes, --bwlimit; a paced upload) is not the server's.
    private int _ownTime;

    private void Touch() => Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());

    /// <summary>Runs a wait the client chose (--bwlimit) without the watchdog counting it as the server's silence.</summary>
    internal void OwnTime(Action wait)
    {
        Interlocked.Increment(ref _ownTime);
        try { wait(); }
        finally
        {
            Touch();
            Interlocked.Decrement(ref _ownTime);
        }
    }

    /// <summary>While a reply is awaited and nothing has moved for the timeout: the session is broken with a message
    /// that says so, and the connection is cut so that every waiter wakes up.</summary>
    private void CheckStalled()
    {
        lock (_lock)
        {
            if (_broken is not null || _closed && _pending.Count == 0) return;
            if (_pending.Count == 0 && !_handshaking || Volatile.Read(ref _ownTime) > 0) return;
            var idle = Stopwatch.GetElapsedTime(Volatile.Read(ref _lastActivity));
            if (idle < (_handshaking && ConnectAllowance > _stallTimeout ? ConnectAllowance : _stallTimeout)) return;
            _broken = new BcmrException(BcmrErrorCode.ConnectionFailed, _remote,
                $"{_remote}: stalled: no data received or sent for {idle.TotalSeconds:0} s while waiting for the server (--timeout)");
        }
        _watchdog?.Dispose();
        Cut();
    }

    /// <summary>Ends the connection at once (a process is killed, a socket or stream closed).</summary>
    private void Cut() => _channel.Abort();

    /// <summary>How a channel's streams fail once the connection is gone: an I/O error, or, when an abort disposed a
    /// stream under our buffers, a disposed or no longer readable/writable stream. Never left to escape the reader
    /// thread, where it would end the process.</summary>
    private static bool IsChannelFailure(Exception e) => e is IOException or ObjectDisposedException or NotSupportedException;

    /// <summary>Counts nothing, buffers nothing: calls <c>touch</c> whenever bytes move.</summary>
    private sealed class ActivityStream(Stream inner, Action touch) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            if (n > 0) touch();
            return n;
        }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            touch();
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Capabilities in effect (the server's answer).</summary>
    public byte Caps { get; private set; }

    /// <summary>Features in effect: those of the server's Welcome this client knows (<see cref="Protocol.Features"/>).</summary>
    public uint Features { get; private set; }

    public bool Has(uint feature) => (Features & feature) == feature;

    /// <summary>Frame bytes written to the server (headers included).</summary>
    public long BytesSent => Interlocked.Read(ref _sent);

    /// <summary>Frame bytes read from the server (headers included).</summary>
    public long BytesReceived => Interlocked.Read(ref _received);

    /// <summary>"user@host" for messages.</summary>
    public string Remote => _remote;

    /// <summary>The channel this session runs over (the client owns it and disposes it).</summary>
    public IServeChannel Channel => _channel;

    /// <summary>Starts ssh and opens a session over it (<see cref="SshChannel"/>, <see cref="Open"/>).</summary>
    public static ServeClient Connect(RemoteSpec spec, string? sshCommand, string? remoteCommand, byte caps,
        string? workingDirectory = null, TimeSpan? stallTimeout = null) =>
        Open(SshChannel.Start(spec, sshCommand, remoteCommand, workingDirectory), caps, stallTimeout);

    /// <summary>Opens a session over <paramref name="channel"/>, which the client owns from here on (disposed with it,
    /// or at once when the handshake fails). Throws <see cref="BcmrException"/>: <see cref="BcmrErrorCode.RemoteUnavailable"/>
    /// when there is no bcmr to talk to (the caller may fall back to scp), <see cref="BcmrErrorCode.ConnectionFailed"/>
    /// for everything else.</summary>
    public static ServeClient Open(IServeChannel channel, byte caps, TimeSpan? stallTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ServeClient client;
        try { client = new ServeClient(channel, stallTimeout); }
        catch
        {
            channel.Dispose();
            throw;
        }
        return HandshakeOrDispose(client, caps);
    }

    private static ServeClient HandshakeOrDispose(ServeClient client, byte caps)
    {
        try
        {
            client.Handshake(caps);
            return client;
        }
        catch
        {
            // Its watchdog timer would otherwise keep the client, and its 512 KiB of buffers, alive for good.
            client.Dispose();
            throw;
        }
    }

    private void Handshake(byte caps)
    {
        Message? first;
        bool started = false;
        lock (_lock) _handshaking = true;
        try
        {
            try
            {
                _writer.Write(new Hello(Wire.Version, caps));
                _writer.Flush();
                // The reader thread is started while the server logs in and starts (a thread's start costs ~0.5 ms
                // here, which after the Welcome every remote copy would wait for); it reads nothing until the
                // Welcome is in.
                _readerThread = new Thread(ReadLoop) { IsBackground = true, Name = "bcmr-client-reader" };
                _readerThread.Start();
                first = _reader.ReadMessage();
            }
            catch (Exception e) when (e is ProtocolException || IsChannelFailure(e))
            {
                lock (_lock) if (_broken is not null) throw _broken; // stalled
                if (e is DirectIntegrityException) // the Welcome did not open: another key, or tampered with
                    throw new BcmrException(BcmrErrorCode.ConnectionFailed, _remote, $"{_remote}: {e.Message}", e);
                throw HandshakeFailure(e is ProtocolException p && !p.IsTruncation ? p : null);
            }
            finally { lock (_lock) _handshaking = false; }
            lock (_lock) if (_broken is not null) throw _broken;
            switch (first)
            {
                case Welcome w when w.Version == Wire.Version:
                    Caps = (byte)(w.Caps & caps);
                    Features = (Caps & Protocol.Caps.Extended) != 0 ? w.Features & Protocol.Features.Supported : 0;
                    break;
                case Welcome w:
                    throw new BcmrException(BcmrErrorCode.RemoteUnavailable, _remote,
                        $"{_remote}: the remote bcmr speaks protocol version {w.Version}, this one {Wire.Version}");
                case ErrorResponse e:
                    throw new BcmrException(BcmrErrorCode.RemoteUnavailable, _remote, $"{_remote}: the remote bcmr refused the session: {e.Text}");
                case null:
                    throw HandshakeFailure(null);
                default:
                    throw new BcmrException(BcmrErrorCode.ConnectionFailed, _remote, $"{_remote}: expected Welcome from the remote bcmr, got {first.Type}");
            }
            started = true;
        }
        finally
        {
            _started = started;
            _welcomed.Set(); // the reader thread reads on, or (no session) ends
        }
    }

    /// <summary>Why the session did not start: what the transport makes of the peer's exit (ssh: no bcmr on the remote
    /// host, which lets the caller fall back to scp; ssh's own failure), something wrote non-protocol bytes to stdout
    /// (a chatty login script), or the peer ended.</summary>
    private BcmrException HandshakeFailure(ProtocolException? garbage)
    {
        var end = _channel.WaitForPeer(TimeSpan.FromSeconds(15));
        int? exit = end.ExitCode;
        var stderr = end.Stderr;
        var detail = stderr.Length > 0 ? $": {stderr}" : "";
        if (garbage is not null && exit is null or 0)
            return new BcmrException(BcmrErrorCode.ConnectionFailed, _remote,
                $"{_remote}: the remote end did not answer with the bcmr protocol ({garbage.Message}); is something in the remote shell's startup files printing to stdout?");
        if (exit is int code && _channel.ExplainStartFailure(code, detail) is { } explained) return explained;
        return exit switch
        {
            null => new BcmrException(BcmrErrorCode.ConnectionFailed, _remote, $"{_remote}: the connection closed during the handshake{detail}"),
            _ => new BcmrException(BcmrErrorCode.ConnectionFailed, _remote, $"{_remote}: the remote command exited with {exit} before the session started{detail}"),
        };
    }

    // ---- writing (one caller thread) ----------------------------------------------------------------------------

    /// <summary>Sends a request whose reply <paramref name="reply"/> will consume; waits (after flushing) while
    /// <see cref="Window"/> replies are outstanding.</summary>
    internal void Send(Message request, PendingReply reply, CancellationToken ct)
    {
        if (!_window.TryEnter())
        {
            Flush();
            _window.Enter(ct);
        }
        lock (_lock)
        {
            if (_broken is not null)
            {
                _window.Release();
                throw _broken;
            }
            _pending.Enqueue(reply);
        }
        Write(() => _writer.Write(request), MessageCodec.FrameSize(request));
    }

    /// <summary>Sends a message that has no reply of its own (Done after a Put, Data).</summary>
    internal void SendNoReply(Message message) => Write(() => _writer.Write(message), MessageCodec.FrameSize(message));

    /// <summary>Sends one block prepared by <see cref="BlockEncoder"/> (DataCompressed, or Data hashed slice by slice
    /// when it carries a hasher); returns the payload bytes that went on the wire.</summary>
    internal int SendEncoded(in EncodedBlock block)
    {
        ThrowIfBroken();
        int frame;
        try { frame = _writer.WriteEncoded(block); }
        catch (Exception e) when (IsChannelFailure(e)) { throw Lost(e); }
        Interlocked.Add(ref _sent, frame);
        return block.WireLength;
    }

    public void Flush()
    {
        ThrowIfBroken();
        try { _writer.Flush(); }
        catch (Exception e) when (IsChannelFailure(e)) { throw Lost(e); }
    }

    private void Write(Action write, int size)
    {
        ThrowIfBroken();
        try { write(); }
        catch (Exception e) when (IsChannelFailure(e)) { throw Lost(e); }
        Interlocked.Add(ref _sent, size);
    }

    /// <summary>Several requests sent together, then their replies, in order: one round trip for all of them.</summary>
    internal Message[] CallAll(IReadOnlyList<Message> requests, CancellationToken ct)
    {
        var replies = new SingleReply[requests.Count];
        for (int i = 0; i < requests.Count; i++) Send(requests[i], replies[i] = new SingleReply(), ct);
        Flush();
        var messages = new Message[replies.Length];
        for (int i = 0; i < replies.Length; i++) messages[i] = replies[i].Wait(ct);
        return messages;
    }

    /// <summary>One request, one reply, waited for (not pipelined with anything after it).</summary>
    internal Message Call(Message request, CancellationToken ct)
    {
        var reply = new SingleReply();
        Send(request, reply, ct);
        Flush();
        return reply.Wait(ct);
    }

    /// <summary>Stat of a remote path: null when it does not exist; every other error is thrown.</summary>
    /// <summary>A reply as the type its request is answered with. Callers deal with ErrorResponse first; any other
    /// frame is the peer breaking the protocol, reported with what was asked and what came, never a cast exception.</summary>
    public static T Expect<T>(string remote, Message reply, MessageType request) where T : Message =>
        reply as T ?? throw WrongReply(remote, reply, request, typeof(T).Name);

    public static BcmrException WrongReply(string remote, Message reply, MessageType request, string expected) =>
        new(BcmrErrorCode.ConnectionFailed, remote, $"{remote}: protocol error: the reply to {request} was {reply.Type}, not {expected}");

    internal T Expect<T>(Message reply, MessageType request) where T : Message => Expect<T>(_remote, reply, request);

    internal StatResponse? StatOrNull(string path, CancellationToken ct) => StatOrNull(path, Call(new StatRequest(path), ct));

    /// <summary>The same for a Stat's reply already in hand (from <see cref="CallAll"/>).</summary>
    internal StatResponse? StatOrNull(string path, Message reply) =>
        reply switch
        {
            StatResponse s => s,
            ErrorResponse e when ServerError(_remote, path, e) is { Code: BcmrErrorCode.NotFound } => null,
            ErrorResponse e => throw ServerError(_remote, path, e),
            var m => throw WrongReply(_remote, m, MessageType.Stat, nameof(StatResponse)),
        };

    private void ThrowIfBroken()
    {
        lock (_lock) if (_broken is not null) throw _broken;
    }

    // ---- reading (the reader thread) ----------------------------------------------------------------------------

    /// <summary>Cancelled when the reader stops: the connection ended or broke, cleanly or not (a direct channel's
    /// watch on its ssh control connection).</summary>
    internal CancellationToken Ended => _ended.Token;
    private readonly CancellationTokenSource _ended = new();

    private void ReadLoop()
    {
        _welcomed.Wait();
        if (!_started) return;
        try { ReadReplies(); }
        finally { _ended.Cancel(); }
    }

    private void ReadReplies()
    {
        BcmrException? end = null;
        try
        {
            while (true)
            {
                if (!_reader.TryReadFrame(out var frame))
                {
                    lock (_lock) if (_closed && _pending.Count == 0) return;
                    end = Lost(null);
                    break;
                }
                Interlocked.Add(ref _received, Wire.HeaderSize + frame.Payload.Length);
                // Only an Error that is the last frame before the end explains the end (a per-file Error earlier does not).
                _lastServerError = frame.Type == MessageType.Error ? TryErrorText(frame) : null;
                PendingReply head;
                lock (_lock)
                {
                    if (_pending.Count == 0)
                    {
                        end = new BcmrException(BcmrErrorCode.ConnectionFailed, _remote,
                            $"{_remote}: the server sent {frame.Type} when no reply was expected{TryErrorText(frame)}");
                        break;
                    }
                    head = _pending.Peek();
                }
                bool done;
                Interlocked.Increment(ref _ownTime);
                try { done = head.OnFrame(frame); }
                finally
                {
                    Touch();
                    Interlocked.Decrement(ref _ownTime);
                }
                if (done)
                {
                    lock (_lock) _pending.Dequeue();
                    _window.Release();
                }
            }
        }
        catch (ProtocolException e)
        {
            end = e.IsTruncation ? Lost(e)
                : new BcmrException(BcmrErrorCode.ConnectionFailed, _remote, $"{_remote}: the server broke the protocol: {e.Message}");
        }
        catch (Exception e) when (IsChannelFailure(e))
        {
            end = Lost(e);
        }
        FailPending(end!);
    }

    /// <summary>": text" of the last Error the server sent (null: none).</summary>
    private volatile string? _lastServerError;

    private static string TryErrorText(in Frame frame)
    {
        try { return frame.Type == MessageType.Error ? ": " + ((ErrorResponse)frame.Decode()).Text : ""; }
        catch (ProtocolException) { return ""; }
    }

    private void FailPending(BcmrException error)
    {
        List<PendingReply> failed;
        lock (_lock)
        {
            _broken ??= error;
            failed = _pending.ToList();
            _pending.Clear();
        }
        _window.Close();
        foreach (var p in failed) p.OnConnectionLost(_broken);
    }

    /// <summary>The connection-lost error, with how the peer ended and what it said when that is known. A peer
    /// process that closed its end is normally exiting: a moment's wait lets the message say how.</summary>
    private BcmrException Lost(Exception? cause)
    {
        lock (_lock) if (_broken is not null) return _broken;
        var end = _channel.WaitForPeer(TimeSpan.FromSeconds(1));
        var why = cause is null ? "the connection closed" : $"the connection broke ({cause.Message})";
        // A server that says why before it closes (a tampered direct channel) is heard even by a caller that meets
        // the closed connection before it reads that reply.
        var said = _lastServerError is { Length: > 0 } text ? $" after the server said{text}" : "";
        return new BcmrException(BcmrErrorCode.ConnectionFailed, _remote,
            $"{_remote}: {why}{said}{(end.How is { } how ? $" ({how})" : "")}{(end.Stderr.Length > 0 ? ": " + end.Stderr : "")}", cause);
    }

    /// <summary>A server's Error as our exception: the code it carries (our servers), else what its wording says
    /// (<see cref="WireErrors.CodeOf"/>).</summary>
    public static BcmrException ServerError(string remote, string path, ErrorResponse e) =>
        new(WireErrors.CodeOf(e), path, $"{remote}: {e.Text}");

    /// <summary>Ends the session cleanly: Done, close our side, let the server exit.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            if (_broken is not null) return;
        }
        try
        {
            _writer.Write(Done.Instance);
            _writer.Flush();
            _channel.CloseOutput();
        }
        catch (Exception e) when (IsChannelFailure(e)) { }
        _readerThread?.Join(TimeSpan.FromSeconds(10));
    }

    /// <summary>Cuts the connection at once (cancellation): the channel is aborted, pending replies fail.</summary>
    public void Abort()
    {
        lock (_lock) _closed = true;
        _channel.Abort();
    }

    public void Dispose()
    {
        _watchdog?.Dispose();
        Close();
        _channel.Dispose();
        _readerThread?.Join(TimeSpan.FromSeconds(5));
        _writer.Dispose();
        _reader.Dispose();
    }
}
