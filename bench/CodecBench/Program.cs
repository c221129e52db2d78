using System.Diagnostics;
using System.Globalization;
using System.IO.Pipes;
using System.Text;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;

// CodecBench gen DIR MIB      text.txt (source-like) and random.bin of MIB MiB each
// CodecBench blocks DIR       encode/decode MB/s and ratio per 4 MiB block, per codec, on both files
// CodecBench serve-get DIR [MB/s]   a Get through an in-process ServeSession over OS pipes (median of 3); with a
//                             rate, the client reads the wire at that many MB/s (a slow link)
// CodecBench encoder DIR [RUNS] [MB/s] [FILE...]   compression off the I/O thread (BlockEncoder) off and on, median
//                             of RUNS (default 5) runs of each, interleaved: a server Get as serve-get does, and a
//                             client upload (RemoteTransfer) to an in-process peer that reads frames without decoding
//                             them; MB/s 0 = unlimited; FILE: text.txt random.bin (default both)
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
const int Block = 4 * 1024 * 1024;
switch (args.ElementAtOrDefault(0))
{
    case "gen": Gen(args[1], int.Parse(args[2])); break;
    case "blocks": Blocks(args[1]); break;
    case "serve-get": ServeGet(args[1], args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 0); break;
    case "encoder": EncoderOnOff(args[1], args.Length > 2 ? int.Parse(args[2]) : 5, args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 0, args.Length > 4 ? args[4..] : ["text.txt", "random.bin"]); break;
    default: Console.Error.WriteLine("usage: CodecBench gen DIR MIB | blocks DIR | serve-get DIR [MB/s] | encoder DIR [RUNS] [MB/s]"); return 2;
}
return 0;

static void Gen(string dir, int mib)
{
    Directory.CreateDirectory(dir);
    // Source-like text: indented statements from a small vocabulary with identifiers and numbers (about 4-5x with zstd -3).
    var rnd = new Random(1);
    string[] words = ["var", "return", "public", "static", "int", "string", "if", "else", "for", "foreach", "new", "await", "block", "buffer", "length", "offset", "count", "hash", "frame", "reader", "writer", "session", "path"];
    long size = (long)mib << 20;
    using (var w = new StreamWriter(Path.Combine(dir, "text.txt"), false, new UTF8Encoding(false), 1 << 20))
    {
        var sb = new StringBuilder();
        long written = 0;
        while (written < size)
        {
            sb.Clear();
            sb.Append(' ', rnd.Next(0, 4) * 4);
            int n = rnd.Next(3, 10);
            for (int i = 0; i < n; i++)
            {
                sb.Append(words[rnd.Next(words.Length)]);
                if (rnd.Next(4) == 0) sb.Append(rnd.Next(1000));
                sb.Append(rnd.Next(5) == 0 ? "(" : " ");
            }
            sb.Append(rnd.Next(3) == 0 ? ");\n" : ";\n");
            var line = sb.Length > size - written ? sb.ToString(0, (int)(size - written)) : sb.ToString();
            w.Write(line);
            written += line.Length;
        }
    }
    var buf = new byte[1 << 20];
    using var f = File.Create(Path.Combine(dir, "random.bin"));
    for (int i = 0; i < mib; i++)
    {
        rnd.NextBytes(buf);
        f.Write(buf);
    }
}

static void Blocks(string dir)
{
    Console.WriteLine("| data | codec | ratio | encode MB/s | decode MB/s | sent as |");
    Console.WriteLine("|---|---|---|---|---|---|");
    foreach (var name in new[] { "text.txt", "random.bin" })
    {
        var data = File.ReadAllBytes(Path.Combine(dir, name));
        int blocks = data.Length / Block;
        var scratch = new byte[Block];
        var output = new byte[Block];
        foreach (var codec in new[] { WireCodec.Lz4, WireCodec.Zstd })
        {
            // Ratio and the frame choice over all blocks; a full encode (no auto-skip limit) for the ratio.
            long encodedTotal = 0, compressed = 0;
            for (int b = 0; b < blocks; b++)
            {
                var block = data.AsSpan(b * Block, Block);
                if (BlockCodec.TryEncode(codec, block, scratch, out int n)) { encodedTotal += n; compressed++; }
                else encodedTotal += Block;
            }
            double encode = Rate(() =>
            {
                for (int b = 0; b < blocks; b++) BlockCodec.TryEncode(codec, data.AsSpan(b * Block, Block), scratch, out _);
            }, (long)blocks * Block);
            double decode = double.NaN;
            if (compressed == blocks)
            {
                var encoded = new byte[blocks][];
                for (int b = 0; b < blocks; b++)
                {
                    BlockCodec.TryEncode(codec, data.AsSpan(b * Block, Block), scratch, out int n);
                    encoded[b] = scratch[..n];
                }
                decode = Rate(() =>
                {
                    for (int b = 0; b < blocks; b++) BlockCodec.Decode((byte)codec, Block, encoded[b], output);
                }, (long)blocks * Block);
            }
            Console.WriteLine($"| {name} | {Compression.Name(codec)} | {(double)encodedTotal / ((long)blocks * Block):0.000} | {encode:0} | {(double.IsNaN(decode) ? "— (raw)" : decode.ToString("0"))} | {(compressed == blocks ? "DataCompressed" : compressed == 0 ? "Data (auto-skip)" : $"{compressed}/{blocks} compressed")} |");
        }
    }
}

/// <summary>MB/s of the best of several runs of at least 0.5 s.</summary>
static double Rate(Action run, long bytes)
{
    run(); // warm up
    double best = double.MaxValue;
    for (int r = 0; r < 5; r++)
    {
        var sw = Stopwatch.StartNew();
        int reps = 0;
        do { run(); reps++; } while (sw.Elapsed.TotalSeconds < 0.5);
        best = Math.Min(best, sw.Elapsed.TotalSeconds / reps);
    }
    return bytes / best / 1e6;
}

static void ServeGet(string dir, double wireMBps)
{
    Console.WriteLine($"| file | codec | source MB/s | wire MB/s |{(wireMBps > 0 ? $" (client reads the wire at {wireMBps} MB/s)" : "")}");
    Console.WriteLine("|---|---|---|---|");
    foreach (var name in new[] { "text.txt", "random.bin" })
    {
        long size = new FileInfo(Path.Combine(dir, name)).Length;
        foreach (var caps in new[] { Caps.Zstd, Caps.Lz4, (byte)0 })
        {
            var runs = new List<(double Seconds, long Wire)>();
            for (int r = 0; r < 3; r++) runs.Add(GetOnce(dir, name, caps, wireMBps));
            var (s, wire) = runs.OrderBy(x => x.Seconds).ElementAt(1);
            string codec = caps == Caps.Zstd ? "zstd" : caps == Caps.Lz4 ? "lz4" : "none";
            Console.WriteLine($"| {name} | {codec} | {size / s / 1e6:0} | {wire / s / 1e6:0} |");
        }
    }
}

/// <summary>Seconds for one Get of the whole file; the client reads frames without decoding them (the server's side
/// of the cost).</summary>
static (double Seconds, long Wire) GetOnce(string dir, string name, byte caps, double wireMBps, int? encoderWorkers = null)
{
    var limiter = wireMBps > 0 ? new Bcmr.Engine.Transfers.BandwidthLimiter((long)(wireMBps * 1e6)) : null;
    using var toServer = new AnonymousPipeServerStream(PipeDirection.Out);
    using var serverIn = new AnonymousPipeClientStream(PipeDirection.In, toServer.ClientSafePipeHandle);
    using var fromServer = new AnonymousPipeServerStream(PipeDirection.In);
    using var serverOut = new AnonymousPipeClientStream(PipeDirection.Out, fromServer.ClientSafePipeHandle);
    var session = new ServeSession(serverIn, serverOut, new ServeOptions { Root = dir, EncoderWorkers = encoderWorkers ?? BlockEncoder.DefaultWorkers });
    var thread = new Thread(() => { session.Run(); session.Dispose(); serverOut.Dispose(); });
    thread.Start();
    var writer = new FrameWriter(toServer);
    using var reader = new FrameReader(new BufferedStream(fromServer, 1 << 16));
    writer.Write(new Hello(Wire.Version, caps));
    writer.Flush();
    reader.ReadMessage();
    var sw = Stopwatch.StartNew();
    writer.Write(new GetRequest(name, 0));
    writer.Flush();
    long wire = 0;
    while (reader.TryReadFrame(out var frame) && frame.IsBlock)
    {
        wire += 4 + frame.Length;
        limiter?.Wait(4 + frame.Length);
    }
    double s = sw.Elapsed.TotalSeconds;
    writer.Write(Done.Instance);
    writer.Flush();
    toServer.Dispose();
    thread.Join();
    return (s, wire);
}

/// <summary>Each case with the encoder off (0 encoder workers: read, compress, hash and write on the
/// I/O thread, as before BlockEncoder) and on (the default workers), runs interleaved so that load from elsewhere
/// hits both alike; MB/s of source from the median run.</summary>
static void EncoderOnOff(string dir, int runs, double wireMBps, string[] files)
{
    Console.WriteLine($"encoder workers when on: {Math.Min(2, Environment.ProcessorCount)}; median of {runs}{(wireMBps > 0 ? $"; wire read/limited at {wireMBps} MB/s" : "")}");
    Console.WriteLine("| path | file | codec | off MB/s | on MB/s | on/off |");
    Console.WriteLine("|---|---|---|---|---|---|");
    foreach (var path in new[] { "get", "upload" })
        foreach (var name in files)
        {
            long size = new FileInfo(Path.Combine(dir, name)).Length;
            foreach (var caps in new[] { Caps.Zstd, Caps.Lz4, (byte)0 })
            {
                var off = new List<double>();
                var on = new List<double>();
                for (int r = 0; r < runs; r++)
                    foreach (bool encoder in r % 2 == 0 ? new[] { false, true } : new[] { true, false })
                    {
                        int workers = encoder ? BlockEncoder.DefaultWorkers : 0;
                        double s = path == "get" ? GetOnce(dir, name, caps, wireMBps, workers).Seconds : UploadOnce(dir, name, caps, wireMBps, workers);
                        (encoder ? on : off).Add(s);
                    }
                double mOff = Median(off), mOn = Median(on);
                string codec = caps == Caps.Zstd ? "zstd" : caps == Caps.Lz4 ? "lz4" : "none";
                Console.WriteLine($"| {path} | {name} | {codec} | {size / mOff / 1e6:0} | {size / mOn / 1e6:0} | {mOff / mOn:0.00} |");
            }
        }
}

static double Median(List<double> xs)
{
    var s = xs.OrderBy(x => x).ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}

/// <summary>Seconds for one upload of the file through the real client code (RemoteTransfer: read, hash, encode,
/// write, --bwlimit when a rate is given) to an in-process peer over OS pipes that answers as bcmr serve would but
/// reads the frames without decoding, writing or hashing them (the client's side of the cost; Ok carries no hash,
/// so the client compares nothing).</summary>
static double UploadOnce(string dir, string name, byte caps, double wireMBps, int encoderWorkers)
{
    var compress = caps == Caps.Zstd ? "zstd" : caps == Caps.Lz4 ? "lz4" : "none";
    Thread? peer = null;
    var request = new Bcmr.Engine.Transfers.CopyRequest
    {
        Sources = [Path.Combine(dir, name)], Destination = "bench:" + name, Compress = compress,
        BandwidthLimit = wireMBps > 0 ? (long)(wireMBps * 1e6) : 0,
        OpenChannel = spec =>
        {
            var toServer = new AnonymousPipeServerStream(PipeDirection.Out);
            var serverIn = new AnonymousPipeClientStream(PipeDirection.In, toServer.ClientSafePipeHandle);
            var fromServer = new AnonymousPipeServerStream(PipeDirection.In);
            var serverOut = new AnonymousPipeClientStream(PipeDirection.Out, fromServer.ClientSafePipeHandle);
            peer = new Thread(() => DiscardingPeer(serverIn, serverOut, caps)) { IsBackground = true };
            peer.Start();
            return new Bcmr.Engine.Client.StreamChannel(toServer, fromServer, spec.Target);
        },
    };
    var transfer = new Bcmr.Engine.Transfers.RemoteTransfer(request, null, null, new Bcmr.Engine.Local.PathFilter([]), CancellationToken.None)
    {
        EncoderWorkers = encoderWorkers,
    };
    var sw = Stopwatch.StartNew();
    var summary = transfer.Run();
    double s = sw.Elapsed.TotalSeconds;
    peer?.Join();
    if (!summary.Succeeded || summary.Files != 1)
        throw new InvalidOperationException($"upload failed: {summary.Fatal?.Message}{string.Join("; ", summary.Failures.Select(f => f.Message))}");
    return s;
}

/// <summary>Enough of bcmr serve for one upload: Welcome (the codec caps given, no dedup), Stat = not found, Put's
/// block frames read and dropped, Ok without hash after its Done.</summary>
static void DiscardingPeer(Stream input, Stream output, byte caps)
{
    using var reader = new FrameReader(new BufferedStream(input, 1 << 16));
    using var writer = new FrameWriter(output);
    bool inPut = false;
    while (reader.TryReadFrame(out var frame))
    {
        if (frame.IsBlock) continue;
        var m = frame.Decode();
        Message? reply = m switch
        {
            Hello h => new Welcome(Wire.Version, (byte)(h.Caps & caps)),
            StatRequest s => new ErrorResponse($"{s.Path}: No such file or directory"),
            PutRequest => null,
            Done when inPut => OkResponse.Empty,
            Done => null,
            _ => new ErrorResponse($"unexpected {m.Type}"),
        };
        if (m is Done && !inPut) break;
        inPut = m is PutRequest;
        if (reply is null) continue;
        writer.Write(reply);
        writer.Flush();
    }
    output.Dispose();
    input.Dispose();
}
