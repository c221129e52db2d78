using Bcmr.Engine;
using System.Diagnostics;
using System.IO.Pipes;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;

namespace Bcmr.Tests.Infrastructure;

/// <summary>
/// A test client for <c>bcmr serve</c>: either the real built program (<see cref="Start"/>, talking over its
/// stdin/stdout) or a <see cref="ServeSession"/> on a thread over OS pipes (<see cref="InProcess"/>), driven with the
/// protocol codec.
/// </summary>
public sealed class ServeConnection : IDisposable
{
    private readonly Process? _process;
    private readonly Thread? _thread;
    private readonly Stream _toServer;
    private readonly CountingStream _counter;
    private readonly Stream _fromServer;
    private readonly Task<string>? _stderr;
    private readonly StringWriter? _log;
    private ServeEnd? _end;

    public FrameReader Reader { get; }
    public FrameWriter Writer { get; }

    private ServeConnection(Stream toServer, Stream fromServer, Process? process, Task<string>? stderr, Thread? thread, StringWriter? log)
    {
        _toServer = _counter = new CountingStream(toServer);
        _fromServer = fromServer;
        _process = process;
        _stderr = stderr;
        _thread = thread;
        _log = log;
        Reader = new FrameReader(fromServer);
        Writer = new FrameWriter(_toServer);
    }

    /// <summary>Starts the real <c>bcmr serve --root ROOT</c>.</summary>
    public static ServeConnection Start(string root, IDictionary<string, string>? env = null)
    {
        var p = Process.Start(BcmrRunner.StartInfo(["serve", "--root", root], env))!;
        var stderr = p.StandardError.ReadToEndAsync();
        return new ServeConnection(p.StandardInput.BaseStream, p.StandardOutput.BaseStream, p, stderr, null, null);
    }

    /// <summary>Talks to a server process already started with redirected stdin, stdout and stderr (e.g. Start-BcmrServe
    /// in a PowerShell host).</summary>
    public static ServeConnection FromProcess(Process p)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        return new ServeConnection(p.StandardInput.BaseStream, p.StandardOutput.BaseStream, p, stderr, null, null);
    }

    /// <summary>Talks to a server over one duplex stream (a TCP connection to a listener).</summary>
    public static ServeConnection OverStream(Stream duplex) => new(duplex, duplex, null, null, null, new StringWriter());

    /// <summary>Runs a <see cref="ServeSession"/> in this process over a pair of OS pipes.</summary>
    public static ServeConnection InProcess(string root, byte capabilities = ServeSession.SupportedCaps, ContentStore? store = null, int? encoderWorkers = null,
        ThreadBudget? threads = null, Func<uint, string>? stayResident = null)
    {
        var toServer = new AnonymousPipeServerStream(PipeDirection.Out);
        var serverIn = new AnonymousPipeClientStream(PipeDirection.In, toServer.ClientSafePipeHandle);
        var fromServer = new AnonymousPipeServerStream(PipeDirection.In);
        var serverOut = new AnonymousPipeClientStream(PipeDirection.Out, fromServer.ClientSafePipeHandle);
        var log = new StringWriter();
        var session = new ServeSession(serverIn, serverOut, new ServeOptions
        {
            Root = root, Capabilities = capabilities, Log = TextWriter.Synchronized(log), Store = store,
            EncoderWorkers = encoderWorkers ?? Bcmr.Engine.Codecs.BlockEncoder.DefaultWorkers, Settings = TestSettings.Isolated,
            Threads = threads ?? ThreadBudget.ForThisMachine(), StayResident = stayResident,
        });
        ServeConnection? connection = null;
        var thread = new Thread(() =>
        {
            var end = session.Run();
            session.Dispose();
            serverOut.Dispose();
            serverIn.Dispose();
            connection!._end = end;
        }) { IsBackground = true, Name = "serve-session" };
        connection = new ServeConnection(toServer, fromServer, null, null, thread, log) { Session = session };
        thread.Start();
        return connection;
    }

    /// <summary>The in-process session (null for the real program).</summary>
    public ServeSession? Session { get; private init; }

    public Process? Process => _process;

    public Welcome Handshake(byte caps = 0)
    {
        Send(new Hello(Wire.Version, caps));
        return Assert.IsType<Welcome>(Receive());
    }

    public void Send(Message m)
    {
        Writer.Write(m);
        Writer.Flush();
    }

    public void SendRaw(ReadOnlySpan<byte> bytes)
    {
        _toServer.Write(bytes);
        _toServer.Flush();
    }

    /// <summary>Sends bytes as Data frames of at most 4 MiB (the last may be shorter); no flush.</summary>
    public void SendData(ReadOnlySpan<byte> content, int block = Wire.MaxBlock)
    {
        while (!content.IsEmpty)
        {
            int n = Math.Min(block, content.Length);
            Writer.WriteData(content[..n]);
            content = content[n..];
        }
    }

    /// <summary>Put of a whole file at offset 0, its data ended with Done as bcmr 0.6 does, then waits for the reply.</summary>
    public Message Put(string path, byte[] content)
    {
        Send(new PutRequest(path, (ulong)content.Length, 0));
        SendData(content);
        Send(Done.Instance);
        return Receive();
    }

    /// <summary>Bytes this client has written to the server so far (frames and raw bytes).</summary>
    public long BytesSent => _counter.Written;

    /// <summary>Put of a whole file at offset 0 with its blocks encoded for <paramref name="codec"/> (DataCompressed
    /// where that saves more than 5 %), then Done; waits for the reply.</summary>
    public Message PutEncoded(string path, byte[] content, WireCodec codec)
    {
        Send(new PutRequest(path, (ulong)content.Length, 0));
        var scratch = new byte[BlockCodec.MaxCompressedSize(Wire.MaxBlock)];
        for (int pos = 0; pos < content.Length; pos += Wire.MaxBlock)
            Writer.WriteBlock(content.AsSpan(pos, Math.Min(Wire.MaxBlock, content.Length - pos)), codec, scratch);
        Send(Done.Instance);
        return Receive();
    }

    /// <summary>A dedup Put as bcmr 0.6's client makes it: Put, HaveBlocks (BLAKE3 of each 4 MiB block), read
    /// MissingBlocks, send each missing block as one frame in ascending order, Done; returns the reply and the
    /// MissingBlocks (null when the server answered HaveBlocks with something else, which is then the reply).</summary>
    /// <param name="claim">Replaces the hash HaveBlocks gives block i (a lying client), when it returns one.</param>
    public (Message Reply, MissingBlocks? Missing) PutDedup(string path, byte[] content, WireCodec codec = WireCodec.None, int blockSize = Wire.MaxBlock,
        Func<int, byte[]?>? claim = null)
    {
        Send(new PutRequest(path, (ulong)content.Length, 0));
        int count = (content.Length + blockSize - 1) / blockSize;
        var hashes = new byte[count * HaveBlocks.HashSize];
        for (int i = 0; i < count; i++)
        {
            var slot = hashes.AsSpan(i * HaveBlocks.HashSize, HaveBlocks.HashSize);
            if (claim?.Invoke(i) is { } claimed) claimed.CopyTo(slot);
            else Blake3.Hash(Block(content, i, blockSize), slot);
        }
        Send(new HaveBlocks((uint)blockSize, hashes));
        var answer = Receive();
        if (answer is not MissingBlocks missing) return (answer, null);
        var scratch = new byte[BlockCodec.MaxCompressedSize(Wire.MaxBlock)];
        for (int i = 0; i < count; i++)
            if (missing.IsMissing(i)) Writer.WriteBlock(Block(content, i, blockSize), codec, scratch);
        Send(Done.Instance);
        return (Receive(), missing);
    }

    private static ReadOnlySpan<byte> Block(byte[] content, int i, int blockSize) =>
        content.AsSpan(i * blockSize, Math.Min(blockSize, content.Length - i * blockSize));

    /// <summary>Ends the session the unambiguous way: Done, then close our side (a Done straight after a Put's data
    /// would be read as that Put's terminator; end of input ends the session either way).</summary>
    public void EndSession()
    {
        Send(Done.Instance);
        CloseInput();
    }

    public Message Receive() => Reader.ReadMessage() ?? throw new EndOfStreamException("the server closed the connection");

    public Message? ReceiveOrEnd()
    {
        try { return Reader.ReadMessage(); }
        catch (ProtocolException e) when (e.IsTruncation) { return null; }
    }

    /// <summary>Reads the reply to a Get: the bytes of its Data and DataCompressed frames (decoded) and the final Ok
    /// or Error.</summary>
    public (byte[] Bytes, Message End) ReceiveGet() => ReceiveGet(out _);

    /// <summary><see cref="ReceiveGet()"/>, also counting the frames: how many were compressed, and the bytes they
    /// took on the wire (length fields included).</summary>
    public (byte[] Bytes, Message End) ReceiveGet(out GetStats stats)
    {
        var bytes = new MemoryStream();
        var buffer = new byte[Wire.MaxBlock];
        stats = new GetStats();
        while (true)
        {
            if (!Reader.TryReadFrame(out var frame)) throw new EndOfStreamException("the server closed the connection during a Get");
            if (frame.IsBlock)
            {
                stats.WireBytes += 4 + frame.Length;
                if (frame.Type == MessageType.DataCompressed) stats.Compressed++;
                else stats.Raw++;
                bytes.Write(frame.DecodeBlock(buffer));
                continue;
            }
            return (bytes.ToArray(), frame.Decode());
        }
    }

    public sealed class GetStats
    {
        public int Raw;
        public int Compressed;
        public long WireBytes;
    }

    public void CloseInput() => _toServer.Dispose();

    /// <summary>Goes away as a client whose connection dropped: closes what it writes and what it reads.</summary>
    public void CloseBothEnds()
    {
        _toServer.Dispose();
        _fromServer.Dispose();
    }

    /// <summary>Waits for the server to end (process exit or session end); returns the exit code (in process: 0 for
    /// Done/EndOfInput, 1 otherwise).</summary>
    public int WaitForExit(TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        if (_process is not null)
        {
            if (!_process.WaitForExit(limit))
            {
                _process.Kill(entireProcessTree: true);
                throw new TimeoutException("bcmr serve did not exit");
            }
            return _process.ExitCode;
        }
        if (_thread is null) throw new InvalidOperationException("a connection over a stream has no server to wait for");
        if (!_thread.Join(limit)) throw new TimeoutException("the serve session did not end");
        return End is ServeEnd.Done or ServeEnd.EndOfInput ? 0 : 1;
    }

    /// <summary>How the in-process session ended (after <see cref="WaitForExit"/>).</summary>
    public ServeEnd? End => _end;

    /// <summary>stderr of the program, or the session's log; complete once the server has ended.</summary>
    public string Stderr => _stderr is not null ? _stderr.Result : _log!.ToString();

    /// <summary>Resident memory of the server process in KiB (VmRSS).</summary>
    public long ResidentKiB()
    {
        foreach (var line in File.ReadLines($"/proc/{_process!.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0]);
        throw new InvalidOperationException("no VmRSS");
    }

    public void Dispose()
    {
        try { _toServer.Dispose(); } catch (IOException) { }
        if (_process is not null)
        {
            if (!_process.WaitForExit(TimeSpan.FromSeconds(10))) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
        else
        {
            _thread?.Join(TimeSpan.FromSeconds(10));
        }
        Reader.Dispose();
        Writer.Dispose();
        try { _fromServer.Dispose(); } catch (IOException) { }
    }
}

/// <summary>A write-only pass-through that counts the bytes written.</summary>
public sealed class CountingStream(Stream inner) : Stream
{
    private long _written;
    public long Written => Interlocked.Read(ref _written);
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        Interlocked.Add(ref _written, buffer.Length);
    }
    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
