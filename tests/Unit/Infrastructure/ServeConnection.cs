using System.Diagnostics;
using System.IO.Pipes;
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
    private readonly Stream _fromServer;
    private readonly Task<string>? _stderr;
    private readonly StringWriter? _log;
    private ServeEnd? _end;

    public FrameReader Reader { get; }
    public FrameWriter Writer { get; }

    private ServeConnection(Stream toServer, Stream fromServer, Process? process, Task<string>? stderr, Thread? thread, StringWriter? log)
    {
        _toServer = toServer;
        _fromServer = fromServer;
        _process = process;
        _stderr = stderr;
        _thread = thread;
        _log = log;
        Reader = new FrameReader(fromServer);
        Writer = new FrameWriter(toServer);
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
    public static ServeConnection InProcess(string root, byte capabilities = ServeSession.SupportedCaps)
    {
        var toServer = new AnonymousPipeServerStream(PipeDirection.Out);
        var serverIn = new AnonymousPipeClientStream(PipeDirection.In, toServer.ClientSafePipeHandle);
        var fromServer = new AnonymousPipeServerStream(PipeDirection.In);
        var serverOut = new AnonymousPipeClientStream(PipeDirection.Out, fromServer.ClientSafePipeHandle);
        var log = new StringWriter();
        var session = new ServeSession(serverIn, serverOut, new ServeOptions { Root = root, Capabilities = capabilities, Log = TextWriter.Synchronized(log) });
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

    /// <summary>Reads the reply to a Get: the bytes of its Data frames and the final Ok or Error.</summary>
    public (byte[] Bytes, Message End) ReceiveGet()
    {
        var bytes = new MemoryStream();
        while (true)
        {
            if (!Reader.TryReadFrame(out var frame)) throw new EndOfStreamException("the server closed the connection during a Get");
            if (frame.Type == MessageType.Data)
            {
                bytes.Write(frame.DataBytes);
                continue;
            }
            return (bytes.ToArray(), frame.Decode());
        }
    }

    public void CloseInput() => _toServer.Dispose();

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
