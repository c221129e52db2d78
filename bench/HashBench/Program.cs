using System.Diagnostics;
using Bcmr.Engine.Hashing;

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
            byte[] h = Blake3.HashFile(args[1], threads);
            Console.WriteLine($"threads {threads}: {sw.Elapsed.TotalMilliseconds:F0} ms  {new FileInfo(args[1]).Length / sw.Elapsed.TotalSeconds / 1e9:F3} GB/s  {Blake3.ToHex(h)}");
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
    Report(simd.ToString(), () => Blake3.Hash(data, output, simd));
}
Report($"HashParallel({Environment.ProcessorCount})", () => Blake3.HashParallel(data, Environment.ProcessorCount));

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
