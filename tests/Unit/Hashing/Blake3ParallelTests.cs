using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

public unsafe class Blake3ParallelTests
{
    public static TheoryData<int> Threads => new() { 1, 2, 3, 4 };

    private static IEnumerable<int> SizesAroundChunkPowers(int maxChunks)
    {
        for (int chunks = 1; chunks <= maxChunks; chunks *= 2)
        {
            foreach (int c in new[] { chunks - 1, chunks, chunks + 1 })
            {
                foreach (int delta in new[] { -1, 0, 1 })
                {
                    int size = c * 1024 + delta;
                    if (size >= 0)
                    {
                        yield return size;
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Threads))]
    public void Small_leaves_give_the_serial_hash_around_power_of_two_chunk_counts(int threads)
    {
        // Tiny leaves force the leaf/merge logic even on small inputs, where the public entry point stays serial.
        byte[] data = Blake3HasherTests.RandomBytes(300 * 1024, threads);
        var failures = new List<string>();
        foreach (int leaf in new[] { 1024, 2048, 8192 })
        {
            foreach (int size in SizesAroundChunkPowers(256))
            {
                byte[] want = Blake3.Hash(data.AsSpan(0, size));
                byte[] got = new byte[32];
                fixed (byte* p = data)
                {
                    Blake3.HashParallel(Blake3Hasher.Create(), p, size, threads, 0, leaf).Finalize(got);
                }
                if (!got.AsSpan().SequenceEqual(want))
                {
                    failures.Add($"leaf {leaf} size {size}");
                }
            }
        }
        Assert.Empty(failures);
    }

    [Theory]
    [MemberData(nameof(Threads))]
    public void HashParallel_equals_serial_hash(int threads)
    {
        byte[] data = Blake3HasherTests.RandomBytes(9 * 1024 * 1024, 99);
        foreach (int size in new[] { 0, 1, 1024, 1025, 1 << 20, (1 << 20) + 1, (1 << 21) - 1024, 1 << 21, (1 << 21) + 1024, (1 << 22) + 1, 9 * 1024 * 1024 })
        {
            ReadOnlySpan<byte> input = data.AsSpan(0, size);
            Assert.Equal(Blake3.ToHex(Blake3.Hash(input)), Blake3.ToHex(Blake3.HashParallel(input, threads)));
        }
    }

    [Fact]
    public void HashParallel_keeps_the_hasher_mode()
    {
        byte[] data = Blake3HasherTests.RandomBytes(3 * 1024 * 1024 + 5, 5);
        byte[] key = Blake3HasherTests.RandomBytes(32, 6);
        Blake3Hasher serial = Blake3Hasher.CreateKeyed(key);
        serial.Update(data);
        byte[] got = new byte[32];
        fixed (byte* p = data)
        {
            Blake3.HashParallel(Blake3Hasher.CreateKeyed(key), p, data.Length, 3, 0, Blake3.MinLeafBytes).Finalize(got);
        }
        Assert.Equal(Blake3.ToHex(serial.Finalize()), Blake3.ToHex(got));
    }

    [Fact]
    public void A_failing_leaf_read_surfaces_as_its_own_exception()
    {
        // The CLI reports IOException per file; an AggregateException from the workers would escape it.
        var e = Assert.Throws<IOException>(() => Blake3.HashParallel(Blake3Hasher.Create(), 8L << 20, 2, 0, Blake3.MinLeafBytes,
            (worker, offset, count) =>
            {
                if (offset >= 4L << 20)
                {
                    throw new IOException("simulated read failure");
                }
                worker.Hasher.Update(new byte[count]);
            }));
        Assert.Equal("simulated read failure", e.Message);
    }

    [Fact]
    public void HashParallel_rejects_nonpositive_thread_counts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Blake3.HashParallel(new byte[10], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Blake3.HashFile("/nonexistent", -1));
    }

    [Theory]
    [MemberData(nameof(Threads))]
    public void HashFile_equals_in_memory_hash(int threads)
    {
        using var dir = new TempDir();
        foreach (int size in new[] { 0, 1, 1025, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 5 * 1024 * 1024 + 333 })
        {
            byte[] data = Blake3HasherTests.RandomBytes(size, size);
            string path = dir.File($"f{size}", data);
            Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), Blake3.ToHex(Blake3.HashFile(path, threads)));
        }
    }

    [B3sumFact]
    public void HashFile_handles_files_larger_than_2_GiB()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "big");
        // Sparse, so it costs no disk space; the tail bytes make the end of the file distinctive.
        using (var fs = new FileStream(path, FileMode.CreateNew))
        {
            fs.SetLength((3L << 30) + 12345);
            fs.Seek(-5, SeekOrigin.End);
            fs.Write("tail!"u8);
        }
        string want = Proc.Run(B3sum.Path!, new[] { "--no-names", path }).StdoutText.Trim();
        Assert.Equal(64, want.Length);
        Assert.Equal(want, Blake3.ToHex(Blake3.HashFile(path, 2)));
        Assert.Equal(want, Blake3.ToHex(Blake3.HashFile(path, 1)));
    }
}
