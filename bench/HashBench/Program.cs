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
