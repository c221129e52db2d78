using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

public class Blake3VectorTests
{
    public static TheoryData<int, bool> SimdPaths => Paths.All;

    // Piece sizes chosen to straddle block (64) and chunk (1024) boundaries; 0 means "all at once".
    private static readonly int[] SplitSizes = { 0, 1, 63, 64, 65, 1023, 1024, 1025, 4096 + 1, 3 * 1024 + 17 };

    private static IEnumerable<(string Name, IEnumerable<int> Pieces)> Splits(int length)
    {
        foreach (int s in SplitSizes)
        {
            yield return ($"split {s}", Pieces(length, s));
        }
        yield return ("random splits", RandomPieces(length, new Random(length)));
    }

    private static IEnumerable<int> Pieces(int length, int size)
    {
        if (size == 0)
        {
            yield return length;
            yield break;
        }
        for (int done = 0; done < length; done += size)
        {
            yield return Math.Min(size, length - done);
        }
    }

    private static IEnumerable<int> RandomPieces(int length, Random rng)
    {
        for (int done = 0; done < length;)
        {
            // Mostly small pieces, sometimes multi-chunk ones so the SIMD subtree path is reached mid-stream.
            int n = Math.Min(length - done, rng.Next(4) == 0 ? rng.Next(1, 20_000) : rng.Next(0, 1100));
            yield return n;
            done += n;
        }
    }

    private static byte[] Feed(Blake3Hasher hasher, byte[] input, IEnumerable<int> pieces, int outLen)
    {
        int offset = 0;
        foreach (int n in pieces)
        {
            hasher.Update(input.AsSpan(offset, n));
            offset += n;
        }
        Assert.Equal(input.Length, offset);
        byte[] output = new byte[outLen];
        hasher.Finalize(output);
        return output;
    }

    private static void CheckMode(Blake3Simd simd, string mode, Func<Blake3Hasher> create, Func<TestVectors.Case, byte[]> expected)
    {
        var (_, _, cases) = TestVectors.Load();
        var failures = new List<string>();
        foreach (TestVectors.Case c in cases)
        {
            byte[] input = TestVectors.Input(c.InputLen);
            byte[] want = expected(c);
            foreach (var (name, pieces) in Splits(c.InputLen))
            {
                byte[] got = Feed(create(), input, pieces, want.Length);
                if (!got.AsSpan().SequenceEqual(want))
                {
                    failures.Add($"{simd} {mode} len {c.InputLen} {name}: got {Blake3.ToHex(got)}");
                }
            }

            // The default-length output is the prefix of the extended output.
            Blake3Hasher h = create();
            h.Update(input);
            if (!h.Finalize().AsSpan().SequenceEqual(want.AsSpan(0, 32)))
            {
                failures.Add($"{simd} {mode} len {c.InputLen}: 32-byte Finalize() differs");
            }
        }
        Assert.Empty(failures);
    }

    [VectorsTheory]
    [MemberData(nameof(SimdPaths))]
    public void Hash_matches_every_vector(int path, bool genericKernels)
    {
        Paths.With(genericKernels, () =>
        {
            var simd = (Blake3Simd)path;
            CheckMode(simd, "hash", () => Blake3Hasher.Create(simd), c => c.Hash);
        });
    }

    [VectorsTheory]
    [MemberData(nameof(SimdPaths))]
    public void KeyedHash_matches_every_vector(int path, bool genericKernels)
    {
        Paths.With(genericKernels, () =>
        {
            var simd = (Blake3Simd)path;
            byte[] key = TestVectors.Load().Key;
            CheckMode(simd, "keyed_hash", () => Blake3Hasher.CreateKeyed(key, simd), c => c.KeyedHash);
        });
    }

    [VectorsTheory]
    [MemberData(nameof(SimdPaths))]
    public void DeriveKey_matches_every_vector(int path, bool genericKernels)
    {
        Paths.With(genericKernels, () =>
        {
            var simd = (Blake3Simd)path;
            string context = TestVectors.Load().Context;
            CheckMode(simd, "derive_key", () => Blake3Hasher.CreateDeriveKey(context, simd), c => c.DeriveKey);
        });
    }

    [VectorsTheory]
    [MemberData(nameof(SimdPaths))]
    public void FinalizeXof_at_any_offset_is_the_tail_of_the_full_output(int path, bool genericKernels)
    {
        Paths.With(genericKernels, () =>
        {
            var simd = (Blake3Simd)path;
            var (key, _, cases) = TestVectors.Load();
            var failures = new List<string>();
            foreach (TestVectors.Case c in cases)
            {
                Blake3Hasher h = Blake3Hasher.CreateKeyed(key, simd);
                h.Update(TestVectors.Input(c.InputLen));
                foreach (int offset in new[] { 0, 1, 31, 32, 63, 64, 65, 100, c.KeyedHash.Length - 1 })
                {
                    byte[] tail = new byte[c.KeyedHash.Length - offset];
                    h.FinalizeXof((ulong)offset, tail);
                    if (!tail.AsSpan().SequenceEqual(c.KeyedHash.AsSpan(offset)))
                    {
                        failures.Add($"len {c.InputLen} offset {offset}");
                    }
                }
            }
            Assert.Empty(failures);
        });
    }

    [VectorsFact]
    public void Default_entry_points_match_vectors()
    {
        var (key, context, cases) = TestVectors.Load();
        foreach (TestVectors.Case c in cases)
        {
            byte[] input = TestVectors.Input(c.InputLen);
            Assert.Equal(Blake3.ToHex(c.Hash.AsSpan(0, 32)), Blake3.ToHex(Blake3.Hash(input)));
            byte[] xof = new byte[c.Hash.Length];
            Blake3.Hash(input, xof);
            Assert.Equal(Blake3.ToHex(c.Hash), Blake3.ToHex(xof));

            Blake3Hasher keyed = Blake3Hasher.CreateKeyed(key);
            keyed.Update(input);
            Assert.Equal(Blake3.ToHex(c.KeyedHash.AsSpan(0, 32)), Blake3.ToHex(keyed.Finalize()));

            Blake3Hasher derive = Blake3Hasher.CreateDeriveKey(context);
            derive.Update(input);
            Assert.Equal(Blake3.ToHex(c.DeriveKey.AsSpan(0, 32)), Blake3.ToHex(derive.Finalize()));
        }
    }
}
