using System.Diagnostics;
using Bcmr.Engine.Platform;
using System.Buffers;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Local;

namespace Bcmr.Engine.Server;

/// <summary>How a serve session ended.</summary>
public enum ServeEnd
{
    /// <summary>The client sent Done.</summary>
    Done,
    /// <summary>The input ended between requests (the client closed the connection).</summary>
    EndOfInput,
    /// <summary>The first message was not a Hello of version 1: Error sent, connection closed.</summary>
    HandshakeRefused,
    /// <summary>The client sent something that cannot be a frame (bad length, unknown type, a frame that does not
    /// belong where it came): Error sent where possible, connection closed.</summary>
    ProtocolError,
    /// <summary>The connection broke inside a frame or a Put, or a read/write on it failed.</summary>
    ConnectionLost,
    /// <summary><see cref="ServeSession.Interrupt"/> was called (a signal).</summary>
    Interrupted,
    /// <summary>A bug: an unexpected exception, reported on the log.</summary>
    InternalError,
}

public sealed class ServeOptions
{
    /// <summary>The directory clients may read and write; every path is resolved inside it (<see cref="RootJail"/>).</summary>
    public required string Root { get; init; }

    /// <summary>Where relative paths start; null: <see cref="Root"/>. See <see cref="SshScope"/>.</summary>
    public string? Home { get; init; }

    /// <summary>
    /// What a serve started over ssh (stdin/stdout) may reach. With a root (<c>--root</c>, <c>-Root</c>: forced
    /// commands, restricted accounts), only that directory, and relative paths start there. Without one, wherever
    /// the account may, as scp and sftp allow, with relative paths from the home directory: installing bcmr on a host
    /// must not break a command that worked through the scp fallback. (A TCP listener has no ssh login behind it and
    /// keeps its root, the home directory by default.) On Windows the home directory stays the root.
    /// </summary>
    public static (string Root, string? Home) SshScope(string? root, string home) =>
        root is not null ? (root, null) : OperatingSystem.IsWindows() ? (home, null) : ("/", home);

    /// <summary>Capabilities offered in Welcome (intersected with the client's and with <see cref="ServeSession.SupportedCaps"/>).</summary>
    public byte Capabilities { get; init; } = ServeSession.SupportedCaps;
    /// <summary>Features offered to our own clients (<see cref="Protocol.Features"/>), in the Welcome.
    /// <see cref="Protocol.Features.Resident"/> only with <see cref="StayResident"/>.</summary>
    public uint Features { get; init; } = Protocol.Features.Supported;

    /// <summary>StayResident: makes sure a resident server with this session's settings runs for the seconds given
    /// after its last connection, and returns its socket's path (<see cref="ResidentServer.Ensure"/>); null when this
    /// host cannot start one.</summary>
    public Func<uint, string>? StayResident { get; init; }

    /// <summary>Where a direct channel (<c>--direct direct</c>) listens: the address the ssh connection came in on
    /// (<see cref="ServeHost"/> takes it from <c>SSH_CONNECTION</c>); null: OpenDirectChannel is refused with
    /// <see cref="DirectRefusal"/>. Never 127.0.0.1 or 0.0.0.0 in place of an unknown address.</summary>
    public System.Net.IPAddress? DirectAddress { get; init; }

    /// <summary>The ssh client's address (SSH_CONNECTION's first field): a full direct listener drops connections
    /// from elsewhere first.</summary>
    public System.Net.IPAddress? DirectPeer { get; init; }

    /// <summary>Why there is no <see cref="DirectAddress"/>, in the words the client will show.</summary>
    public string? DirectRefusal { get; init; }

    /// <summary>How long a direct channel's listener waits for the client to authenticate before the server gives up
    /// (<c>BCMR_RENDEZVOUS_TIMEOUT_SECS</c>, default 30 s).</summary>
    public TimeSpan RendezvousTimeout { get; init; } = EngineSettings.DefaultRendezvousTimeout;

    /// <summary>The file descriptor behind the output stream (1 for <c>bcmr serve</c>), so that FAST downloads can be
    /// sent with sendfile(2) straight from the file; null: always the buffered path.</summary>
    public int? OutputFd { get; init; }

    /// <summary>The file descriptor behind the input stream (0 for <c>bcmr serve</c>); with <see cref="OutputFd"/>,
    /// grown to the largest pipe size when it is a pipe (<see cref="Fs.GrowPipe(int)"/>).</summary>
    public int? InputFd { get; init; }

    /// <summary>How long a reply may wait to leave with the replies to requests that are already there to be read
    /// (<see cref="InputFd"/>); 1 ms. Tests set it to count writes without a clock.</summary>
    internal TimeSpan ReplyHold { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Where diagnostics go, one line each (stderr for <c>bcmr serve</c>); null for none. Never the protocol stream.</summary>
    public TextWriter? Log { get; init; }

    /// <summary>The block store for dedup uploads; null: <see cref="ContentStore.ForRoot"/> of the root and
    /// <see cref="Settings"/> (<c>BCMR_CAS_DIR</c>, <c>BCMR_CAS_CAP_MB</c>), opened when a client first uses dedup.</summary>
    public ContentStore? Store { get; init; }

    /// <summary>The host's environment settings (the store, <c>BCMR_NO_SENDFILE</c>); the serve commands pass
    /// <see cref="EngineSettings.FromEnvironment"/>.</summary>
    public EngineSettings Settings { get; init; } = EngineSettings.Defaults;

    /// <summary>Compressing threads of the session's block encoder (<see cref="Codecs.BlockEncoder"/>); 0: on the
    /// session's thread. Set by benchmarks that measure the encoder off against on.</summary>
    internal int EncoderWorkers { get; init; } = Codecs.BlockEncoder.DefaultWorkers;
    /// <summary>The compressing threads of every session served with these options, together.</summary>
    internal ThreadBudget Threads { get; init; } = ThreadBudget.ForThisMachine();
}

/// <summary>
/// The <c>bcmr serve</c> loop: one client, one input and one output stream, requests answered strictly in the order
/// they arrive (FIFO), so a client may pipeline as many as it likes. Run it with <see cref="Run"/> on one thread; it
/// returns when the session ends and never throws for anything the client sends.
/// <para>Handshake: the first frame must be Hello with version 1, answered with Welcome{1, server caps ∩ client caps};
/// anything else gets an Error and the connection closes. Then each request gets exactly one reply (Get: Data frames
/// then Ok or Error), flushed at once.</para>
/// <para>Errors: a failed request (missing file, permission denied, path outside the root...) gets an Error naming the
/// path and the cause, and the session goes on with the next request. A well-framed message that is malformed or does
/// not belong gets an Error and the session goes on, except a Data/HaveBlocks/DataCompressed frame outside a Put,
/// which means the client and server disagree about the stream: Error, then close. Bytes that cannot be framed
/// (zero or oversized length, unknown type) get an Error and the connection closes; EOF inside a frame just closes.</para>
/// <para>Ending: Done ends the session. A Done that comes straight after a Put's data is that Put's terminator (bcmr
/// 0.6 clients send Put, Data..., Done) and is consumed silently; so a client that wants to end the session right after
/// a Put must send Done and close its side, which ends the session either way.</para>
/// <para>Capabilities: <see cref="Caps.Sync"/> fsyncs every written file and its directory; <see cref="Caps.Fast"/>
/// skips the BLAKE3 on Get (Ok without hash); <see cref="Caps.Zstd"/> / <see cref="Caps.Lz4"/>: Get sends each block
/// as DataCompressed with the best codec both sides have (zstd, else lz4) unless it compresses to more than 95 % of its
/// size (then raw Data); <see cref="Caps.Dedup"/>: a Put may start with HaveBlocks (see <see cref="ReceiveDedup"/>).
/// Incoming DataCompressed is accepted with either known algo, negotiated or not (as bcmr 0.6 does); an unknown algo,
/// a lying size or a corrupt payload refuses the Put (see <see cref="HandlePut"/>). Block reads and writes go through
/// <c>ReadBlock</c> and <c>SendFile</c>.</para>
/// <para>Put and resume rules: see <see cref="HandlePut"/>. Listing rules: see <see cref="HandleList"/>.</para>
/// </summary>
public sealed partial class ServeSession : IDisposable
{
    /// <summary>What this server implements: LZ4 and zstd blocks, dedup uploads, fsync on request and hash-less Get.</summary>
    public const byte SupportedCaps = Caps.Lz4 | Caps.Zstd | Caps.Dedup | Caps.Sync | Caps.Fast | Caps.Extended;

    private const int IoBufferSize = 64 * 1024;

    private readonly RootJail _jail;
    private readonly ServeOptions _options;
    private readonly Stream _output;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly TextWriter? _log;
    private readonly object _lock = new();
    private byte[]? _block;
    private byte[]? _decoded;
    private ContentStore? _store;
    private bool _afterPut;
    private volatile bool _interrupted;

    /// <summary>The descriptor our replies go out on, to notice a client that is gone while a request still works
    /// for it (<see cref="Fs.PeerGone"/>); null when unknown.</summary>
    private readonly int? _peerFd;

    /// <summary>Throws <see cref="BcmrException"/> when the root does not exist or is not a directory.</summary>
    public ServeSession(Stream input, Stream output, ServeOptions options) : this(input, output, options, options.OutputFd) { }

    /// <param name="peerFd">The descriptor behind <paramref name="output"/> (a listener's socket).</param>
    internal ServeSession(Stream input, Stream output, ServeOptions options, int? peerFd)
    {
        _peerFd = peerFd;
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _jail = new RootJail(options.Root, options.Home);
        _log = options.Log;
        _output = new BufferedStream(output, IoBufferSize);
        _reader = new FrameReader(new BufferedStream(new FlushBeforeRead(input, BeforeRead), IoBufferSize));
        _writer = new FrameWriter(_output);
        if (options.InputFd is int inFd) Fs.GrowPipe(inFd);
        if (options.OutputFd is int outFd) Fs.GrowPipe(outFd);
    }

    /// <summary>The canonical root.</summary>
    public string Root => _jail.Root;

    /// <summary>Capabilities in effect after the handshake.</summary>
    public byte EffectiveCaps { get; private set; }

    private bool Fast => (EffectiveCaps & Caps.Fast) != 0;
    private bool Sync => (EffectiveCaps & Caps.Sync) != 0;
    private bool Dedup => (EffectiveCaps & Caps.Dedup) != 0;
    /// <summary>The client is ours: Commit ends a Put, ResumeProof is understood; otherwise a bcmr 0.6 client, which
    /// sees an interrupted upload where it would have left it itself (see <see cref="LegacyView"/>).</summary>
    private bool Extended => (EffectiveCaps & Caps.Extended) != 0;

    /// <summary>Features offered in the Welcome (our clients only): see <see cref="Protocol.Features"/>.</summary>
    public uint Features { get; private set; }

    private bool TreeChanges => (Features & Protocol.Features.Tree) != 0;

    /// <summary>The codec Get uses for its blocks: zstd, else lz4, else raw, of what was negotiated.</summary>
    public WireCodec Codec { get; private set; }

    private ContentStore Store => _store ??= _options.Store ?? ContentStore.ForRoot(_jail.Root, _options.Settings);

    /// <summary>The BLAKE3 of whole files hashed before in this root (<see cref="HashCache"/>), opened on first use.</summary>
    private HashCache Hashes => _hashes ??= HashCache.For(_jail.Root, _options.Settings);
    private HashCache? _hashes;

    /// <summary>Between blocks of long work (hashing a large file, copying a prefix): stops it once the client is
    /// gone, instead of reading a 1 TiB file for nobody.</summary>
    private void StopIfClientGone(string path)
    {
        if (_peerFd is int fd && Fs.PeerGone(fd))
            throw new ClientGoneException($"the client is gone; stopped working on {path}");
    }

    /// <summary>Not an IOException: no handler may answer it with an Error, there is nobody to read one.</summary>
    private sealed class ClientGoneException(string message) : Exception(message);

    /// <summary>Runs the session to its end. Never throws for anything the peer does.</summary>
    public ServeEnd Run()
    {
        try { return Serve(); }
        finally { _hashes?.Save(); }
    }

    private ServeEnd Serve()
    {
        try
        {
            var start = Handshake();
            if (start is not null) return start.Value;
            while (!_interrupted)
            {
                if (!_reader.TryReadFrame(out var frame)) return ServeEnd.EndOfInput;
                if (!Dispatch(frame)) return _directEnd ?? ServeEnd.Done;
            }
            return ServeEnd.Interrupted;
        }
        catch (ProtocolException e) when (e.IsTruncation)
        {
            Log($"connection lost: {e.Message}");
            return _interrupted ? ServeEnd.Interrupted : ServeEnd.ConnectionLost;
        }
        catch (ProtocolException e)
        {
            Log($"protocol error, closing: {e.Message}");
            TrySend(new ErrorResponse(e.Message));
            return ServeEnd.ProtocolError;
        }
        catch (DirectIntegrityException e)
        {
            // Our input was tampered with; our output is intact and authenticated: tell the client why, then close.
            Log($"closing: {e.Message}");
            // ConnectionFailed: what the client does with a lost connection (retry as -C), whichever end noticed.
            TrySend(new ErrorResponse(e.Message, Extended ? BcmrErrorCode.ConnectionFailed : null));
            return ServeEnd.ProtocolError;
        }
        catch (IOException e)
        {
            Log($"connection lost: {e.Message}");
            return _interrupted ? ServeEnd.Interrupted : ServeEnd.ConnectionLost;
        }
        catch (ClientGoneException e)
        {
            Log(e.Message);
            return ServeEnd.ConnectionLost;
        }
        catch (Exception e) when (e is ObjectDisposedException && _interrupted)
        {
            return ServeEnd.Interrupted;
        }
        catch (Exception e)
        {
            Log($"internal error: {e.GetType().Name}: {e.Message}");
            TrySend(new ErrorResponse($"internal server error: {e.Message}"));
            return ServeEnd.InternalError;
        }
        finally
        {
            try { _output.Flush(); } catch (Exception) { /* the peer is gone */ }
        }
    }

    /// <summary>
    /// Stops the session from another thread (a signal handler): an upload in progress keeps the bytes it received
    /// as its partial file, exactly as if the connection had dropped. The caller then exits the process; the session
    /// thread may still be blocked reading its input.
    /// </summary>
    public void Interrupt()
    {
        lock (_lock)
        {
            _interrupted = true;
            if (_activePut is { } put) AbandonPut(put, "interrupted");
        }
        InterruptDirect(); // a signal ends the direct session this one runs too, its upload kept as a partial
    }

    private ServeEnd? Handshake()
    {
        if (!_reader.TryReadFrame(out var frame)) return ServeEnd.EndOfInput;
        if (frame.Type != MessageType.Hello)
        {
            Refuse($"expected Hello, got {Describe(frame.Type)}");
            return ServeEnd.HandshakeRefused;
        }
        Hello hello;
        try { hello = (Hello)frame.Decode(); }
        catch (ProtocolException e)
        {
            Refuse(e.Message);
            return ServeEnd.HandshakeRefused;
        }
        if (hello.Version != Wire.Version)
        {
            Refuse($"protocol version mismatch: client={hello.Version} server={Wire.Version}");
            return ServeEnd.HandshakeRefused;
        }
        EffectiveCaps = (byte)(hello.Caps & _options.Capabilities & SupportedCaps);
        Codec = Compression.Choose(EffectiveCaps);
        Features = Extended ? Protocol.Features.Supported & _options.Features : 0;
        if (_options.StayResident is null) Features &= ~Protocol.Features.Resident;
        if (!Platform.AesHardware.Present) Features &= ~Protocol.Features.AesHardware;
        Send(new Welcome(Wire.Version, EffectiveCaps, Features));
        return null;
    }

    private void Refuse(string message)
    {
        Log($"handshake refused: {message}");
        Send(new ErrorResponse(message));
    }

    /// <summary>Handles one frame; false when the session should end (Done).</summary>
    private bool Dispatch(in Frame frame)
    {
        if (frame.Type == MessageType.Done)
        {
            if (!_afterPut) return false;
            _afterPut = false; // a bcmr 0.6 client's terminator of the Put just completed
            return true;
        }
        if (frame.Type == MessageType.Commit && _afterPut)
        {
            _afterPut = false; // the verdict on a Put that was refused or failed (its Error is already sent)
            return true;
        }
        _afterPut = false;

        switch (frame.Type)
        {
            case MessageType.Data or MessageType.DataCompressed or MessageType.HaveBlocks:
                throw Violation($"{frame.Type} frame outside a Put");
        }

        Message message;
        try { message = frame.Decode(); }
        catch (ProtocolException e)
        {
            // The frame itself was whole, so the stream is still in step: answer and go on.
            Fail(e.Message);
            return true;
        }

        switch (message)
        {
            case StatRequest r: Respond(() => HandleStat(r)); break;
            case ListRequest r: Respond(() => HandleList(r)); break;
            case HashRequest r: Respond(() => HandleHash(r)); break;
            case GetRequest r: HandleGet(r); break;
            case PutRequest r: HandlePut(r); break;
            case MkdirRequest r: Respond(() => HandleMkdir(r)); break;
            case ResumeRequest r: Respond(() => HandleResume(r)); break;
            case ResumeProofRequest r when Extended: Respond(() => HandleResumeProof(r)); break;
            case TruncateRequest r: Respond(() => HandleTruncate(r)); break;
            case PutChunkedRequest r: HandlePutChunked(r); break;
            case GetChunkedRequest r: HandleGetChunked(r); break;
            case AssembleRequest r when Extended: Respond(() => HandleAssemble(r)); break;
            case BlockHashesRequest r when Extended: Respond(() => HandleBlockHashes(r)); break;
            case SetMetaRequest r when TreeChanges: Respond(() => HandleSetMeta(r)); break;
            case Protocol.RemoveRequest r when TreeChanges: Respond(() => HandleRemove(r)); break;
            case RenameRequest r when TreeChanges: Respond(() => HandleRename(r)); break;
            case LinkRequest r when TreeChanges: Respond(() => HandleLink(r)); break;
            case ListMetaRequest r when (Features & Protocol.Features.Meta) != 0: Respond(() => HandleListMeta(r)); break;
            case StayResidentRequest r when (Features & Protocol.Features.Resident) != 0: Respond(() => new OkResponse(_options.StayResident!(r.Seconds))); break;
            case OpenDirectChannel when (Features & Protocol.Features.Direct) != 0: return ServeDirect();
            case OpenDirectChannel: Fail("OpenDirectChannel: direct TCP is not offered by this server"); break;
            case Hello: Fail("unexpected Hello: the session is already open"); break;
            case AuthHello: Fail("unexpected AuthHello: direct TCP is not offered by this server"); break;
            default: Fail($"unexpected {Describe(message.Type)} from a client"); break;
        }
        return true;
    }

    /// <summary>Runs a request handler and sends its reply, or an Error naming the path and cause.</summary>
    private void Respond(Func<Message> handler)
    {
        Message reply;
        try { reply = handler(); }
        catch (BcmrException e)
        {
            Fail(e);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // These handlers touch only the filesystem, never the connection.
            Fail(e.Message, e is UnauthorizedAccessException ? BcmrErrorCode.PermissionDenied : BcmrErrorCode.IoError);
            return;
        }
        Send(reply);
    }

    /// <param name="code">Sent to our own clients (<see cref="Caps.Extended"/>) beside the text; a bcmr 0.6 client
    /// gets the text alone, as version 1 defines it, and so does any client for a refusal that has no code.</param>
    private void Fail(string message, BcmrErrorCode? code = null)
    {
        Log(message);
        Send(new ErrorResponse(message, Extended ? code : null));
    }

    private void Fail(BcmrException e) => Fail(e.Message, e.Code);

    /// <summary>Writes a reply; it leaves with the next ones when the session is about to wait for input
    /// (<see cref="BeforeRead"/>), or at the session's end. Measured: one write per burst of pipelined requests
    /// instead of one per reply, through every ssh hop (bench/RESULTS.md, sessions 15 and 20).</summary>
    private void Send(Message message)
    {
        _writer.Write(message);
        if (_repliesPending++ == 0) _firstHeld = Stopwatch.GetTimestamp();
    }

    /// <summary>Replies written and not yet sent, and when the first of them was written.</summary>
    private int _repliesPending;
    private long _firstHeld;

    /// <summary>How many replies the session holds while more requests are already waiting to be read (and for at
    /// most <see cref="ServeOptions.ReplyHold"/>): far below the client's window (<c>ServeClient.Window</c>, 256), so a
    /// client never stalls for want of replies.</summary>
    private const int MaxHeldReplies = 32;

    /// <summary>Sends the replies written so far (on the session's thread, or before another thread first reads the
    /// input: the direct channel's watcher).</summary>
    private void FlushReplies()
    {
        if (_repliesPending == 0) return;
        _repliesPending = 0;
        _writer.Flush();
    }

    /// <summary>Before the session reads its connection again: the replies written so far leave now, unless the
    /// client's next requests are already there to be read (a pipe that poll(2) finds readable), in which case they
    /// leave with the replies to those, up to <see cref="MaxHeldReplies"/> or <see cref="ServeOptions.ReplyHold"/>.
    /// A stream of small uploads otherwise sent one reply per file (each 64 KiB Data frame is read past the input's
    /// buffer, so every file meant a read), each a write of its own through sshd, ssh and the client's reader. Input
    /// that is not a pipe of ours (a direct channel, --listen) is never held for.</summary>
    private void BeforeRead()
    {
        if (_repliesPending == 0) return;
        if (_repliesPending >= MaxHeldReplies || Stopwatch.GetElapsedTime(_firstHeld) >= _options.ReplyHold
            || _options.InputFd is not int fd || !Fs.InputReady(fd))
            FlushReplies();
    }

    private void TrySend(Message message)
    {
        try { Send(message); }
        catch (Exception) { /* the peer is gone or the stream is broken: nothing more to say */ }
    }

    /// <summary>The content of an incoming block frame (Data, or DataCompressed decoded into the session's decode
    /// buffer), valid until the next read. A malformed frame throws <see cref="ProtocolException"/>; an unknown algo,
    /// a lying size or a corrupt payload throws <see cref="BcmrException"/> (<see cref="BcmrErrorCode.CorruptData"/>).</summary>
    private ReadOnlySpan<byte> ReadBlock(in Frame frame) => frame.Type switch
    {
        MessageType.Data => frame.DataBytes,
        MessageType.DataCompressed => frame.DecodeBlock(_decoded ??= BlockBuffers.Pool.Rent(Wire.MaxBlock)),
        _ => throw new InvalidOperationException(frame.Type.ToString()),
    };

    private static ProtocolException Violation(string message) => new(ProtocolErrorKind.Malformed, message);

    private static string Describe(MessageType type) =>
        Enum.IsDefined(type) ? $"{type} (0x{(byte)type:x2})" : $"type 0x{(byte)type:x2}";

    /// <summary>The session's one 4 MiB block buffer (Get, hashing, copying prefixes), rented on first use.</summary>
    private byte[] Block => _block ??= BlockBuffers.Pool.Rent(Wire.MaxBlock);

    private void Log(string line)
    {
        if (_log is null) return;
        try { _log.WriteLine("bcmr serve: " + line); }
        catch (Exception) { /* diagnostics must never break the session */ }
    }

    internal static string Hex(ReadOnlySpan<byte> hash) => Blake3.ToHex(hash);

    public void Dispose()
    {
        _reader.Dispose();
        _writer.Dispose();
        if (_block is not null) BlockBuffers.Pool.Return(_block);
        if (_decoded is not null) BlockBuffers.Pool.Return(_decoded);
        _block = _decoded = null;
        _encoder?.Dispose();
        _encoder = null;
    }
}
