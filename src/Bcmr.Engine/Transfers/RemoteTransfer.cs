using System.Collections.Concurrent;
using Bcmr.Engine.Client;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// A copy or move where one side is <c>host:path</c>: one ssh connection to one <c>bcmr serve</c> (or with --parallel N,
/// N of them, see RemoteTransfer.Lanes.cs), requests pipelined (see <see cref="ServeClient"/>). The calling thread plans
/// over the first connection, sends, and turns replies into results in order; each client's reader thread consumes
/// replies (and, for downloads, hands the received data to its disk thread).
/// <para>Integrity: every file's BLAKE3 is computed here from the bytes sent or received and compared with the one the
/// server computed from the bytes it wrote or read (Ok{hash}); a mismatch fails the file. Under --fast the server
/// sends no hash and only ssh's own integrity protects the data. -V also re-reads the destination.</para>
/// <para>The protocol has no symlinks: uploads follow them (like scp -r), and the server lists links as what they
/// point to. If the remote host has no bcmr, the copy falls back to scp (<see cref="ScpFallback"/>) with a warning,
/// unless <see cref="CopyRequest.NoFallback"/>.</para>
/// </summary>
internal sealed partial class RemoteTransfer
{
    private readonly CopyRequest _req;
    private readonly Action<CopyResult>? _onResult;
    private readonly PathFilter _filter;
    private readonly CancellationToken _ct;
    private readonly ProgressTracker _tracker;
    private readonly ResultLog _log;
    private readonly Queue<Inflight> _inflight = new();
    /// <summary>Data bytes the requests in <see cref="_inflight"/> still await (downloads).</summary>
    private long _inflightBytes;
    /// <summary>The transfer's connections: one, or with --parallel N up to N (the first plans).</summary>
    private IReadOnlyList<ServeClient> _clients = [];
    private string _transport = "ssh";
    private readonly CompressionSetting _compression;
    private readonly BandwidthLimiter? _limiter;
    /// <summary>The codec for data we send (chosen from the negotiated caps).</summary>
    private WireCodec _codec;
    /// <summary>Whether sent data has been compressing lately: one for the whole transfer, so a tree of small
    /// incompressible files stops paying for attempts too.</summary>
    private CompressionProbe? _probe;
    /// <summary>The disk thread of a download.</summary>
    private DiskSink? _sink;
    /// <summary>The helper threads of the whole transfer: every connection's encoder and the prefetch share them.</summary>
    private readonly ThreadBudget _threads;
    /// <summary>The first upload source's block hashes, computed while the connection is set up.</summary>
    private BlockHashPrefetch? _prefetch;
    /// <summary>A move from a remote host: the files copied and committed here (by every lane), whose sources are
    /// removed at the end, and the source directories listed (by the planning connection).</summary>
    private readonly ConcurrentQueue<MovedFile>? _moved;
    private readonly List<string> _sourceDirectories = new();

    /// <summary>A request whose reply the calling thread will turn into a result, in order.</summary>
    private readonly record struct Inflight(PendingReply Reply, Action Complete, long Bytes);

    public RemoteTransfer(CopyRequest req, IProgress<TransferProgress>? progress, Action<CopyResult>? onResult, PathFilter filter, CancellationToken ct)
    {
        _req = req;
        _onResult = onResult;
        _filter = filter;
        _ct = ct;
        _tracker = new ProgressTracker(req.Operation, progress, req.ProgressInterval);
        _log = new ResultLog(onResult);
        // --fast asks for the least work per byte: no codec (and so the server's sendfile path) unless one was named.
        _compression = CompressionOf(req);
        _limiter = BandwidthLimiter.Create(req.BandwidthLimit);
        _threads = req.Threads ?? ThreadBudget.ForThisMachine();
        if (req.Move) _moved = new();
    }

    /// <summary>Compressing threads of the uploads' block encoder; 0: on the I/O thread. Benchmarks set it to measure
    /// the encoder off against on.</summary>
    internal int EncoderWorkers { get; init; } = BlockEncoder.DefaultWorkers;

    /// <summary>True when any path of the request is remote (then this class handles it).</summary>
    public static bool Applies(CopyRequest r) =>
        RemoteSpec.ParseOrLocal(r.Destination) is not null || r.Sources.Any(s => RemoteSpec.ParseOrLocal(s) is not null);

    public TransferSummary Run()
    {
        var clock = Stopwatch.StartNew();
        BcmrException? fatal = null;
        bool cancelled = false;
        ServeClient? client = null;
        ServeClientPool? pool = null;
        try
        {
            var dstSpec = RemoteSpec.ParseOrLocal(_req.Destination);
            var srcSpecs = _req.Sources.Select(RemoteSpec.ParseOrLocal).ToList();
            bool upload = dstSpec is not null;
            if (upload && srcSpecs.Any(s => s is not null))
                throw new BcmrException(BcmrErrorCode.Unsupported, _req.Destination, "copying from one remote host to another is not supported; copy through a local directory");
            if (!upload && srcSpecs.Any(s => s is null))
                throw new BcmrException(BcmrErrorCode.InvalidArgument, _req.Sources[srcSpecs.FindIndex(s => s is null)],
                    "local and remote sources cannot be mixed in one copy to a local destination");
            var remote = upload ? dstSpec! : srcSpecs[0]!;
            if (!upload && srcSpecs.Any(s => s!.ConnectionKey != remote.ConnectionKey))
                throw new BcmrException(BcmrErrorCode.Unsupported, _req.Sources[0], "remote sources must all be on the same host (one connection)");

            // One large file up: its dedup block hashes are taken while ssh logs in (most of a second of waiting).
            if (upload && !_req.DryRun && _req.Parallel <= 1 && _req.Sources.Count == 1)
                _prefetch = BlockHashPrefetch.Start(_req.Sources[0], DedupThreshold, _threads);
            try
            {
                if (_req.Parallel > 1)
                {
                    // N connections that cannot have a direct channel for the same reason say so once.
                    var opening = _req with { Warn = OnceEach(_req.Warn) };
                    pool = ServeClientPool.OpenAvailable(() => OpenClient(opening, remote, ownConnection: true, RequestedCaps(upload), _ct), _req.Parallel);
                    if (pool.Refused.Count > 0) _req.Warn?.Invoke(FewerConnections(remote, _req.Parallel, pool));
                    client = pool.Clients[0];
                    _clients = pool.Clients;
                }
                else
                {
                    client = _req.Connection ?? OpenClient(_req, remote, ownConnection: false, RequestedCaps(upload), _ct);
                    _clients = [client];
                }
                _transport = client.Channel.Transport;
                if (!upload && _req.Move && !client.Has(Features.Tree))
                    throw new BcmrException(BcmrErrorCode.Unsupported, _req.Sources[0],
                        $"{client.Remote}: the remote bcmr cannot remove files (an older version, or bcmr 0.6), so nothing can be moved from it; copy, then remove the remote files");
                if ((client.Caps & Caps.Dedup) == 0) StopPrefetch();
                _codec = Compression.Choose(client.Caps, _compression);
                _probe = new CompressionProbe(_codec);
            }
            catch (BcmrException e) when (e.Code == BcmrErrorCode.RemoteUnavailable)
            {
                if (!upload && _req.Move)
                    throw new BcmrException(BcmrErrorCode.RemoteUnavailable, e.Path, e.Message + " (a move from it needs bcmr there: scp cannot remove what it copied)", e);
                if (_req.NoFallback)
                    throw new BcmrException(BcmrErrorCode.RemoteUnavailable, e.Path, e.Message + " (--no-fallback: not falling back to scp)", e);
                _req.Warn?.Invoke($"bcmr: {e.Message}; falling back to scp (no resume, no end-to-end BLAKE3 check)");
                _transport = "scp";
                new ScpFallback(_req, _log, _tracker, _ct).Run(upload, srcSpecs, dstSpec);
                return Summary(clock, null, false);
            }
            using var abort = _ct.Register(AbortAll);
            if (upload) Upload(client, dstSpec!);
            else Download(client, srcSpecs.Select(s => s!).ToList(), _req.Destination);
            if (pool is null && client != _req.Connection) client.Close();
        }
        catch (OperationCanceledException) { cancelled = true; }
        catch (BcmrException e) when (_ct.IsCancellationRequested && e.Code == BcmrErrorCode.ConnectionFailed) { cancelled = true; }
        catch (BcmrException e) { fatal = e; }
        finally
        {
            StopPrefetch();
            if (cancelled || fatal is not null) AbortAll();
            try
            {
                if (pool is not null) pool.Dispose();
                else if (client != _req.Connection) client?.Dispose();
            }
            catch (Exception) { }
            _tracker.Complete();
            _tracker.Dispose();
        }
        return Summary(clock, fatal, cancelled);
    }

    private void StopPrefetch()
    {
        _prefetch?.Dispose();
        _prefetch = null;
    }

    private void AbortAll()
    {
        foreach (var c in _clients) c.Abort();
    }

    /// <summary>A session to <paramref name="remote"/> over the request's transport (shared by a sync's own listing
    /// connection). With <see cref="CopyRequest.Direct"/>: over a direct channel set up through an ssh session; when
    /// none can be had, over ssh with a warning that says why (or a failure, with --no-fallback).</summary>
    internal static ServeClient OpenClient(CopyRequest req, RemoteSpec remote, bool ownConnection, byte caps, CancellationToken ct)
    {
        // --ssh-persist: a resident server through the master's forward, when one answers (not for a direct channel,
        // whose rendezvous needs a session of the ssh connection).
        var route = !ownConnection && !req.Direct && req.SshPersist > 0 && req.OpenChannel is null ? Route(req, remote) : null;
        if (route?.TryOpen(caps, req.StallTimeout) is { } resident) return resident;
        var session = OpenSession(req, remote, ownConnection, caps);
        route?.Arrange(session, req.SshPersist, ct);
        if (!req.Direct) return session;
        try
        {
            // The direct channel never rides a shared --ssh-persist master's cipher for its data, only its rendezvous.
            var direct = DirectChannel.Open(session, ct);
            try { return ServeClient.Open(direct, caps, req.StallTimeout); }
            catch (BcmrException e) { throw new DirectRefusedException(e.Message, controlUsable: false); }
        }
        catch (DirectRefusedException e)
        {
            if (req.NoFallback)
            {
                session.Dispose();
                throw new BcmrException(BcmrErrorCode.ConnectionFailed, remote.Target,
                    $"{remote.Target}: --direct direct: no direct channel: {e.Message} (--no-fallback: not continuing over ssh)");
            }
            req.Warn?.Invoke($"bcmr: {remote.Target}: no direct channel ({e.Message}); continuing over ssh");
            if (e.ControlUsable) return session;
            session.Dispose();
            return OpenSession(req, remote, ownConnection, caps);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary><paramref name="warn"/>, passing each distinct line on once (called from several threads).</summary>
    private static Action<string>? OnceEach(Action<string>? warn)
    {
        if (warn is null) return null;
        var said = new HashSet<string>(StringComparer.Ordinal);
        return line =>
        {
            lock (said) if (!said.Add(line)) return;
            warn(line);
        };
    }

    private static ResidentRoute? Route(CopyRequest req, RemoteSpec remote)
    {
        try
        {
            return SshPersist.SocketDirectory(req.Settings.RuntimeDirectory) is { } sockets
                ? ResidentRoute.For(sockets, SshPersist.ControlPath(sockets), remote, req.SshCommand, req.RemoteCommand)
                : null;
        }
        catch (BcmrException) { return null; } // OpenChannel reports the socket directory
    }

    /// <summary>A session over the request's transport; over ssh, what the server says of its AES hardware is
    /// remembered for the next connection's cipher (<see cref="SshCiphers"/>).</summary>
    private static ServeClient OpenSession(CopyRequest req, RemoteSpec remote, bool ownConnection, byte caps)
    {
        if (req.OpenChannel is { } open) return ServeClient.Open(open(remote), caps, req.StallTimeout);
        var peer = SshPeers.Key(remote, req.SshCommand);
        bool keptAes = SshPeers.HasAes(req.Settings.DataDirectory, peer);
        var session = ServeClient.Open(OpenChannel(req, remote, ownConnection, keptAes), caps, req.StallTimeout);
        // The file is read once per connection, before it; written only when the server says otherwise than it kept.
        if (session.Has(Features.AesHardware) != keptAes) SshPeers.Remember(req.Settings.DataDirectory, peer, !keptAes);
        return session;
    }

    /// <summary>The ssh channel of the request; <paramref name="peerHasAes"/>: what was kept of its server's hardware.</summary>
    private static SshChannel OpenChannel(CopyRequest req, RemoteSpec remote, bool ownConnection, bool peerHasAes)
    {
        string? shared = null;
        if (req.SshPersist > 0 && !ownConnection)
        {
            if (SshPersist.SocketDirectory(req.Settings.RuntimeDirectory) is { } sockets) shared = SshPersist.ControlPath(sockets);
            else req.Warn?.Invoke($"bcmr: --ssh-persist: no socket directory short enough for ssh (at most {SshPersist.MaxDirectoryLength} bytes: " +
                "set XDG_RUNTIME_DIR or TMPDIR to a shorter one); connecting without sharing");
        }
        var ciphers = SshCiphers.Options(ShellWords.Split(SshChannel.SshCommandOrDefault(req.SshCommand)),
            peerHasAes, req.Settings.Home, req.WorkingDirectory);
        return SshChannel.Start(remote, req.SshCommand, req.RemoteCommand, req.WorkingDirectory, ownConnection, shared, req.SshPersist, ciphers);
    }

    private TransferSummary Summary(Stopwatch clock, BcmrException? fatal, bool cancelled) =>
        _log.Summary(_req.Operation, clock.Elapsed, fatal, cancelled || _ct.IsCancellationRequested, _transport);

    private byte RequestedCaps(bool upload) => RequestedCaps(_req, upload);

    /// <summary>The capabilities a copy of <paramref name="req"/> asks its server for (and a sync for the connection
    /// it lists over and then lends to its copies, <see cref="CopyRequest.Connection"/>).</summary>
    internal static byte RequestedCaps(CopyRequest req, bool upload)
    {
        byte caps = Compression.OfferedCaps(CompressionOf(req));
        if (upload) caps |= Caps.Dedup;
        if (req.Sync) caps |= Caps.Sync;
        if (req.Fast) caps |= Caps.Fast;
        return (byte)(caps | Caps.Extended);
    }

    // --fast asks for the least work per byte: no codec (and so the server's sendfile path) unless one was named.
    private static CompressionSetting CompressionOf(CopyRequest req) =>
        req.Fast && req.Compress is null && req.Settings.Compress is null or ""
            ? CompressionSetting.None : Compression.Resolve(req.Compress, req.Settings.Compress);

    // ---- replies, in order --------------------------------------------------------------------------------------

    /// <summary>Queues <paramref name="reply"/> to be completed in order; <paramref name="bytes"/>: the data it awaits.</summary>
    private void Track(PendingReply reply, Action complete, long bytes = 0)
    {
        _inflight.Enqueue(new Inflight(reply, complete, bytes));
        _inflightBytes += bytes;
        Complete(client: null, block: false);
    }

    /// <summary>Turns finished replies at the head into results; with <paramref name="block"/>, waits for all
    /// (flushing first, so the server has every request we are waiting on).</summary>
    private void Complete(ServeClient? client, bool block)
    {
        if (block && _inflight.Count > 0) FlushUnlessLost(client);
        while (_inflight.Count > 0)
        {
            if (!block && !_inflight.Peek().Reply.IsDone) return;
            CompleteHead();
        }
    }

    /// <summary>Flushes what was sent; a connection already lost has nothing to flush, and every reply it owed
    /// completes as lost, so waiting for them still ends.</summary>
    private static void FlushUnlessLost(ServeClient? c)
    {
        try { c?.Flush(); }
        catch (BcmrException e) when (e.Code == BcmrErrorCode.ConnectionFailed) { }
    }

    /// <summary>Waits for the oldest reply and turns it into its result.</summary>
    private void CompleteHead()
    {
        var head = _inflight.Peek();
        if (!head.Reply.IsDone) head.Reply.WaitDone(_ct);
        _inflight.Dequeue();
        _inflightBytes -= head.Bytes;
        head.Complete();
    }

    /// <summary>A one-message request answered in order; <paramref name="onReply"/> runs on this thread later.</summary>
    private void Request(ServeClient c, Message request, Action<Message> onReply, Action<BcmrException> onLost)
    {
        var reply = new SingleReply();
        c.Send(request, reply, _ct);
        Track(reply, () =>
        {
            if (reply.Lost is { } lost) onLost(lost);
            else onReply(reply.Message!);
        });
    }

    private static BcmrException ServerError(ServeClient c, string path, ErrorResponse e) => ServeClient.ServerError(c.Remote, path, e);

    /// <summary>What -C/-s/-a did for a copied file: continued at <paramref name="offset"/>, started over (a note says
    /// why the held bytes were not used), or a fresh copy; null without a resume flag.</summary>
    private ResumeDecision? ResumeOutcome(long offset, string? note) =>
        _req.Resume == ResumeMode.None ? null
        : offset > 0 ? ResumeDecision.Resumed
        : note is null ? ResumeDecision.Fresh
        : ResumeDecision.StartedOver;
}
