using System.Diagnostics;
using Bcmr.Engine.Hashing;
using Ours = Bcmr.Engine.Hashing.Blake3; // the Blake3 package brings a namespace of the same name

// Throughput of each SIMD path over one in-memory buffer, single-threaded, plus the parallel entry point.
// Usage: HashBench [MiB=64] [seconds-per-path=2]   or   HashBench --file PATH [threads...]
if (args.Length > 1 && args[0] == "--file")
{
    foreach (string t in args.Skip(2).DefaultIfEmpty("1"))
    {
        int threads = int.Parse(t);
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            byte[] h = Ours.HashFile(args[1], threads);
            Console.WriteLine($"threads {threads}: {sw.Elapsed.TotalMilliseconds:F0} ms  {new FileInfo(args[1]).Length / sw.Elapsed.TotalSeconds / 1e9:F3} GB/s  {Ours.ToHex(h)}");
        }
    }
    return;
}
if (args.Length > 0 && args[0] == "--package")
{
    // Ours against the Blake3 NuGet package (3.0.2, managed SIMD) on the same buffer, same process, interleaved:
    // one thread, then each side's multi-threaded entry point. Usage: HashBench --package [MiB=256] [rounds=5]
    int size = (args.Length > 1 ? int.Parse(args[1]) : 256) << 20;
    int rounds = args.Length > 2 ? int.Parse(args[2]) : 5;
    byte[] buffer = new byte[size];
    new Random(2).NextBytes(buffer);
    byte[] ours = new byte[32], theirs = new byte[32];
    Ours.Hash(buffer, ours);
    global::Blake3.Hasher.Hash(buffer, theirs);
    if (!ours.AsSpan().SequenceEqual(theirs)) throw new InvalidOperationException("the package and ours disagree");
    using (var joined = global::Blake3.Hasher.New())
    {
        joined.UpdateWithJoin(buffer);
        if (!joined.Finalize().AsSpan().SequenceEqual(ours)) throw new InvalidOperationException("the package's joined hash disagrees");
    }
    Console.WriteLine($"buffer {size >> 20} MiB, {Environment.ProcessorCount} cores, our kernel {Ours.KernelName}, AOT {!System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported}");
    var cases = new (string Name, Action Run)[]
    {
        ("ours, one thread", () => Ours.Hash(buffer, ours)),
        ("package, one thread", () => global::Blake3.Hasher.Hash(buffer, theirs)),
        ($"ours, HashParallel({Environment.ProcessorCount})", () => Ours.HashParallel(buffer, Environment.ProcessorCount)),
        ("package, UpdateWithJoin", () => { using var h = global::Blake3.Hasher.New(); h.UpdateWithJoin(buffer); h.Finalize(); }),
    };
    var best = new double[cases.Length];
    Array.Fill(best, double.MaxValue);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < cases.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            cases[i].Run();
            best[i] = Math.Min(best[i], sw.Elapsed.TotalSeconds);
        }
    for (int i = 0; i < cases.Length; i++)
        Console.WriteLine($"  {cases[i].Name,-28} {size / best[i] / (1 << 30),6:F2} GiB/s (best of {rounds})");
    return;
}
if (args.Length > 0 && args[0] == "--kernel")
{
    // The hash-many kernels alone, on 16 chunks that stay in L1: what the tree layer above them costs is the
    // difference to the whole-buffer figures. Usage: HashBench --kernel
    byte[] chunks = new byte[16 * 1024];
    new Random(3).NextBytes(chunks);
    byte[] cvs = new byte[16 * 32];
    uint[] key = new uint[8];
    foreach (Blake3Simd simd in Enum.GetValues<Blake3Simd>())
    {
        foreach (bool generic in simd >= Blake3Simd.Vector256 ? new[] { false, true } : new[] { false })
        {
            Blake3HashMany.GenericKernelsOnly = generic;
            double best = double.MaxValue;
            for (int round = 0; round < 5; round++)
            {
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < 4096; i++)
                {
                    unsafe
                    {
                        fixed (byte* input = chunks) fixed (byte* cvOut = cvs) fixed (uint* k = key)
                        {
                            Blake3HashMany.HashMany(simd, input, 16, 16, k, 0, true, 0, 1, 2, cvOut);
                        }
                    }
                }
                best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
            Blake3HashMany.GenericKernelsOnly = false;
            Console.WriteLine($"{simd,-10} {(generic ? "generic" : "specific"),-9} {4096.0 * chunks.Length / best / (1 << 30),6:F2} GiB/s");
        }
    }
    return;
}
if (args.Length > 0 && args[0] == "--create")
{
    // Cost of a hasher per small file, as the copy engine does when verifying.
    byte[] small = new byte[4096];
    for (int round = 0; round < 3; round++)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 100_000; i++)
        {
            Blake3Hasher h = Blake3Hasher.Create();
            h.Update(small);
            h.Finalize();
        }
        Console.WriteLine($"create + hash 4 KiB + finalize: {sw.Elapsed.TotalMilliseconds * 1000 / 100_000:F2} us per file");
        Blake3Hasher reused = Blake3Hasher.Create();
        sw.Restart();
        for (int i = 0; i < 100_000; i++)
        {
            reused.Reset();
            reused.Update(small);
            reused.Finalize();
        }
        Console.WriteLine($"reset + hash 4 KiB + finalize:  {sw.Elapsed.TotalMilliseconds * 1000 / 100_000:F2} us per file");
    }
    return;
}
int mib = args.Length > 0 ? int.Parse(args[0]) : 64;
double seconds = args.Length > 1 ? double.Parse(args[1]) : 2;
byte[] data = new byte[mib << 20];
new Random(1).NextBytes(data);
byte[] output = new byte[32];

Console.WriteLine($"buffer {mib} MiB, {Environment.ProcessorCount} cores, default path {Blake3HashMany.Default}");
foreach (Blake3Simd simd in Enum.GetValues<Blake3Simd>())
{
    Report(simd.ToString(), () => Ours.Hash(data, output, simd));
}
Report($"HashParallel({Environment.ProcessorCount})", () => Ours.HashParallel(data, Environment.ProcessorCount));

void Report(string name, Action hash)
{
    hash(); // warm-up: JIT tiering, page faults on the buffer
    hash();
    var sw = Stopwatch.StartNew();
    int runs = 0;
    double best = double.MaxValue;
    while (sw.Elapsed.TotalSeconds < seconds || runs < 3)
    {
        long start = Stopwatch.GetTimestamp();
        hash();
        best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        runs++;
    }
    Console.WriteLine($"{name,-20} {data.Length / best / 1e9,8:F3} GB/s  (best of {runs})");
}
