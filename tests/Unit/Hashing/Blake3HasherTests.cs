using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

public class Blake3HasherTests
{
    public static TheoryData<int, bool> SimdPaths => Paths.All;

    [Fact]
    public void Empty_input_hash_is_the_known_value()
    {
        // Also published in the BLAKE3 README, so this holds even without the vector file.
        Assert.Equal("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", Blake3.ToHex(Blake3.Hash(ReadOnlySpan<byte>.Empty)));
    }

    [Fact]
    public void Keyed_hasher_rejects_keys_that_are_not_32_bytes()
    {
        Assert.Throws<ArgumentException>(() => Blake3Hasher.CreateKeyed(new byte[31]));
        Assert.Throws<ArgumentException>(() => Blake3Hasher.CreateKeyed(new byte[33]));
        Assert.Throws<ArgumentException>(() => Blake3Hasher.CreateKeyed(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void Finalize_is_not_destructive_and_Reset_starts_over()
    {
        byte[] data = RandomBytes(5000, 1);
        Blake3Hasher h = Blake3Hasher.Create();
        h.Update(data.AsSpan(0, 3000));
        Assert.Equal(Blake3.Hash(data.AsSpan(0, 3000)), h.Finalize());
        Assert.Equal(Blake3.Hash(data.AsSpan(0, 3000)), h.Finalize());
        h.Update(data.AsSpan(3000));
        Assert.Equal(Blake3.Hash(data), h.Finalize());

        h.Reset();
        Assert.Equal(Blake3.Hash(ReadOnlySpan<byte>.Empty), h.Finalize());
        h.Update(data);
        Assert.Equal(Blake3.Hash(data), h.Finalize());
    }

    [Theory]
    [MemberData(nameof(SimdPaths))]
    public void Every_path_agrees_with_scalar_on_random_inputs(int path, bool genericKernels)
    {
        Paths.With(genericKernels, () =>
        {
            var simd = (Blake3Simd)path;
            var rng = new Random(42 + path);
            // The 512-bit path is emulated in software here, so keep its inputs moderate.
            int max = simd == Blake3Simd.Vector512 ? 300_000 : 3_000_000;
            foreach (int len in new[] { 16 * 1024, 17 * 1024 - 1, 64 * 1024 + 1, 256 * 1024, 256 * 1024 + 1024, rng.Next(max), max })
            {
                byte[] data = RandomBytes(len, len);
                byte[] key = RandomBytes(32, len + 1);
                Blake3Hasher a = Blake3Hasher.CreateKeyed(key, simd), b = Blake3Hasher.CreateKeyed(key, Blake3Simd.Scalar);
                a.Update(data);
                b.Update(data);
                Assert.Equal(Blake3.ToHex(b.Finalize()), Blake3.ToHex(a.Finalize()));
            }
        });
    }

    [Theory]
    [MemberData(nameof(SimdPaths))]
    public void Chunk_counters_above_32_bits_use_the_high_word(int path, bool genericKernels)
    {
        Paths.With(genericKernels, () =>
        {
            var simd = (Blake3Simd)path;
            byte[] data = RandomBytes(64 * 1024, 7);
            // Subtrees must start at a multiple of their size, so these are the 64-chunk subtrees
            // just below and just above 2^32 chunks.
            foreach (ulong start in new[] { (1UL << 32) - 64, 1UL << 32, (1UL << 40) + 64 })
            {
                Blake3Hasher a = Blake3Hasher.Create(simd), b = Blake3Hasher.Create(Blake3Simd.Scalar);
                a.ResetAt(start);
                b.ResetAt(start);
                a.Update(data);
                // One chunk per call keeps the reference entirely on the single-block chunk-state path.
                for (int i = 0; i < data.Length; i += 1024)
                {
                    b.Update(data.AsSpan(i, 1024));
                }
                byte[] cvA = new byte[32], cvB = new byte[32];
                a.SubtreeChainingValue(cvA);
                b.SubtreeChainingValue(cvB);
                Assert.Equal(Blake3.ToHex(cvB), Blake3.ToHex(cvA));

                // And the counter matters at all: the same bytes 64 chunks earlier give a different CV.
                Blake3Hasher c = Blake3Hasher.Create(simd);
                c.ResetAt(start - 64);
                c.Update(data);
                byte[] cvC = new byte[32];
                c.SubtreeChainingValue(cvC);
                Assert.NotEqual(Blake3.ToHex(cvA), Blake3.ToHex(cvC));
            }
        });
    }

    [Fact]
    public void Update_does_not_allocate()
    {
        byte[] data = RandomBytes(300_000, 3);
        int[] sizes = { 1, 7, 63, 64, 65, 1000, 1024, 1025, 4096, 8191, 65536, 100_000 };
        Blake3Hasher h = Blake3Hasher.Create();
        Span<byte> output = stackalloc byte[32];
        // Warm up so tiered compilation and static initialisation are out of the way.
        for (int round = 0; round < 50; round++)
        {
            foreach (int s in sizes)
            {
                h.Update(data.AsSpan(0, s));
            }
            h.Finalize(output);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int round = 0; round < 200; round++)
        {
            foreach (int s in sizes)
            {
                h.Update(data.AsSpan(round % 100, s));
            }
            h.Finalize(output);
            h.FinalizeXof(12345, output);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    internal static byte[] RandomBytes(int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}
