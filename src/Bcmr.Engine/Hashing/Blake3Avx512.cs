using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// The 16-lane hash-many kernel written directly against AVX-512, used instead of the generic
/// <see cref="Blake3HashMany.Kernel{TVec,TOps}"/> where AVX-512 runs. The generic kernel ran at half the speed of
/// the Blake3 package here (bench/RESULTS.md, issue 17) for three reasons this one removes: it kept state word 15
/// in memory, which AVX2's 16 registers need and AVX-512's 32 do not; it ran the rounds as a loop through the
/// message schedule table; and it built each message row from 128-bit pieces through memory, where AVX-512
/// transposes 16 whole blocks in 64 register shuffles. The rounds come from <c>tools/gen-blake3-rounds.py avx512 12</c>;
/// each round reads the message through its own opaque pointer, as in <see cref="Blake3Avx2"/>.
/// </summary>
internal static unsafe class Blake3Avx512
{
    // Always 0; read with Volatile.Read so each round's message pointer is opaque to the JIT.
    private static int s_opaqueZero = 0;

    public static bool IsSupported => Avx512F.IsSupported;

    [SkipLocalsInit]
    public static void HashMany16(byte* input, nint stride, int blocks, uint* key, ulong counter, bool incrementCounter,
        uint flags, uint flagsStart, uint flagsEnd, byte* output)
    {
        uint* counterWords = stackalloc uint[32];
        Blake3HashMany.LaneCounters(counterWords, counterWords + 16, 16, counter, incrementCounter);
        Vector512<uint> counterLow = Vector512.Load(counterWords);
        Vector512<uint> counterHigh = Vector512.Load(counterWords + 16);

        Vector512<uint> h0 = Vector512.Create(key[0]), h1 = Vector512.Create(key[1]);
        Vector512<uint> h2 = Vector512.Create(key[2]), h3 = Vector512.Create(key[3]);
        Vector512<uint> h4 = Vector512.Create(key[4]), h5 = Vector512.Create(key[5]);
        Vector512<uint> h6 = Vector512.Create(key[6]), h7 = Vector512.Create(key[7]);

        Vector512<uint>* m = stackalloc Vector512<uint>[16];
        uint blockFlags = flags | flagsStart;
        for (int b = 0; b < blocks; b++)
        {
            if (b == blocks - 1)
            {
                blockFlags |= flagsEnd;
            }
            Blake3HashMany.Prefetch(input, stride, 16, b, blocks);
            LoadMessage(input + (nint)b * Blake3Core.BlockLen, stride, m);

            Vector512<uint> v0 = h0, v1 = h1, v2 = h2, v3 = h3, v4 = h4, v5 = h5, v6 = h6, v7 = h7;
            Vector512<uint> v8 = Vector512.Create(Blake3Core.IV0), v9 = Vector512.Create(Blake3Core.IV1);
            Vector512<uint> v10 = Vector512.Create(Blake3Core.IV2), v11 = Vector512.Create(Blake3Core.IV3);
            Vector512<uint> v12 = counterLow, v13 = counterHigh, v14 = Vector512.Create((uint)Blake3Core.BlockLen);
            Vector512<uint> v15 = Vector512.Create(blockFlags);
            Vector512<uint>* mr;

            // Round 0
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[0];
            v1 = v1 + v5 + mr[2];
            v2 = v2 + v6 + mr[4];
            v3 = v3 + v7 + mr[6];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[1];
            v1 = v1 + v5 + mr[3];
            v2 = v2 + v6 + mr[5];
            v3 = v3 + v7 + mr[7];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[8];
            v1 = v1 + v6 + mr[10];
            v2 = v2 + v7 + mr[12];
            v3 = v3 + v4 + mr[14];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[9];
            v1 = v1 + v6 + mr[11];
            v2 = v2 + v7 + mr[13];
            v3 = v3 + v4 + mr[15];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);
            // Round 1
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[2];
            v1 = v1 + v5 + mr[3];
            v2 = v2 + v6 + mr[7];
            v3 = v3 + v7 + mr[4];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[6];
            v1 = v1 + v5 + mr[10];
            v2 = v2 + v6 + mr[0];
            v3 = v3 + v7 + mr[13];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[1];
            v1 = v1 + v6 + mr[12];
            v2 = v2 + v7 + mr[9];
            v3 = v3 + v4 + mr[15];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[11];
            v1 = v1 + v6 + mr[5];
            v2 = v2 + v7 + mr[14];
            v3 = v3 + v4 + mr[8];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);
            // Round 2
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[3];
            v1 = v1 + v5 + mr[10];
            v2 = v2 + v6 + mr[13];
            v3 = v3 + v7 + mr[7];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[4];
            v1 = v1 + v5 + mr[12];
            v2 = v2 + v6 + mr[2];
            v3 = v3 + v7 + mr[14];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[6];
            v1 = v1 + v6 + mr[9];
            v2 = v2 + v7 + mr[11];
            v3 = v3 + v4 + mr[8];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[5];
            v1 = v1 + v6 + mr[0];
            v2 = v2 + v7 + mr[15];
            v3 = v3 + v4 + mr[1];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);
            // Round 3
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[10];
            v1 = v1 + v5 + mr[12];
            v2 = v2 + v6 + mr[14];
            v3 = v3 + v7 + mr[13];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[7];
            v1 = v1 + v5 + mr[9];
            v2 = v2 + v6 + mr[3];
            v3 = v3 + v7 + mr[15];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[4];
            v1 = v1 + v6 + mr[11];
            v2 = v2 + v7 + mr[5];
            v3 = v3 + v4 + mr[1];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[0];
            v1 = v1 + v6 + mr[2];
            v2 = v2 + v7 + mr[8];
            v3 = v3 + v4 + mr[6];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);
            // Round 4
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[12];
            v1 = v1 + v5 + mr[9];
            v2 = v2 + v6 + mr[15];
            v3 = v3 + v7 + mr[14];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[13];
            v1 = v1 + v5 + mr[11];
            v2 = v2 + v6 + mr[10];
            v3 = v3 + v7 + mr[8];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[7];
            v1 = v1 + v6 + mr[5];
            v2 = v2 + v7 + mr[0];
            v3 = v3 + v4 + mr[6];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[2];
            v1 = v1 + v6 + mr[3];
            v2 = v2 + v7 + mr[1];
            v3 = v3 + v4 + mr[4];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);
            // Round 5
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[9];
            v1 = v1 + v5 + mr[11];
            v2 = v2 + v6 + mr[8];
            v3 = v3 + v7 + mr[15];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[14];
            v1 = v1 + v5 + mr[5];
            v2 = v2 + v6 + mr[12];
            v3 = v3 + v7 + mr[1];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[13];
            v1 = v1 + v6 + mr[0];
            v2 = v2 + v7 + mr[2];
            v3 = v3 + v4 + mr[4];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[3];
            v1 = v1 + v6 + mr[10];
            v2 = v2 + v7 + mr[6];
            v3 = v3 + v4 + mr[7];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);
            // Round 6
            mr = m + Volatile.Read(ref s_opaqueZero);
            v0 = v0 + v4 + mr[11];
            v1 = v1 + v5 + mr[5];
            v2 = v2 + v6 + mr[1];
            v3 = v3 + v7 + mr[8];
            v12 = Avx512F.RotateRight(v12 ^ v0, 16);
            v13 = Avx512F.RotateRight(v13 ^ v1, 16);
            v14 = Avx512F.RotateRight(v14 ^ v2, 16);
            v15 = Avx512F.RotateRight(v15 ^ v3, 16);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 12);
            v5 = Avx512F.RotateRight(v5 ^ v9, 12);
            v6 = Avx512F.RotateRight(v6 ^ v10, 12);
            v7 = Avx512F.RotateRight(v7 ^ v11, 12);
            v0 = v0 + v4 + mr[15];
            v1 = v1 + v5 + mr[0];
            v2 = v2 + v6 + mr[9];
            v3 = v3 + v7 + mr[6];
            v12 = Avx512F.RotateRight(v12 ^ v0, 8);
            v13 = Avx512F.RotateRight(v13 ^ v1, 8);
            v14 = Avx512F.RotateRight(v14 ^ v2, 8);
            v15 = Avx512F.RotateRight(v15 ^ v3, 8);
            v8 = v8 + v12;
            v9 = v9 + v13;
            v10 = v10 + v14;
            v11 = v11 + v15;
            v4 = Avx512F.RotateRight(v4 ^ v8, 7);
            v5 = Avx512F.RotateRight(v5 ^ v9, 7);
            v6 = Avx512F.RotateRight(v6 ^ v10, 7);
            v7 = Avx512F.RotateRight(v7 ^ v11, 7);
            v0 = v0 + v5 + mr[14];
            v1 = v1 + v6 + mr[2];
            v2 = v2 + v7 + mr[3];
            v3 = v3 + v4 + mr[7];
            v15 = Avx512F.RotateRight(v15 ^ v0, 16);
            v12 = Avx512F.RotateRight(v12 ^ v1, 16);
            v13 = Avx512F.RotateRight(v13 ^ v2, 16);
            v14 = Avx512F.RotateRight(v14 ^ v3, 16);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 12);
            v6 = Avx512F.RotateRight(v6 ^ v11, 12);
            v7 = Avx512F.RotateRight(v7 ^ v8, 12);
            v4 = Avx512F.RotateRight(v4 ^ v9, 12);
            v0 = v0 + v5 + mr[10];
            v1 = v1 + v6 + mr[12];
            v2 = v2 + v7 + mr[4];
            v3 = v3 + v4 + mr[13];
            v15 = Avx512F.RotateRight(v15 ^ v0, 8);
            v12 = Avx512F.RotateRight(v12 ^ v1, 8);
            v13 = Avx512F.RotateRight(v13 ^ v2, 8);
            v14 = Avx512F.RotateRight(v14 ^ v3, 8);
            v10 = v10 + v15;
            v11 = v11 + v12;
            v8 = v8 + v13;
            v9 = v9 + v14;
            v5 = Avx512F.RotateRight(v5 ^ v10, 7);
            v6 = Avx512F.RotateRight(v6 ^ v11, 7);
            v7 = Avx512F.RotateRight(v7 ^ v8, 7);
            v4 = Avx512F.RotateRight(v4 ^ v9, 7);

            h0 = v0 ^ v8; h1 = v1 ^ v9; h2 = v2 ^ v10; h3 = v3 ^ v11;
            h4 = v4 ^ v12; h5 = v5 ^ v13; h6 = v6 ^ v14; h7 = v7 ^ v15;
            blockFlags = flags;
        }

        uint* words = stackalloc uint[8 * 16];
        h0.Store(words); h1.Store(words + 16); h2.Store(words + 32); h3.Store(words + 48);
        h4.Store(words + 64); h5.Store(words + 80); h6.Store(words + 96); h7.Store(words + 112);
        Blake3HashMany.StoreChainingValues(words, 16, output);
    }

    /// <summary>
    /// Loads one block of each of 16 inputs (lane l at input + l*stride) transposed, so m[w] holds word w of every
    /// lane. Words 4q..4q+3 of rows j, j+4, j+8, j+12 are loaded into the four 128-bit lanes of one vector (inserts
    /// from memory), so a 4x4 transpose within each 128-bit lane of four such vectors finishes the job: 32 register
    /// shuffles per block where a transpose of whole rows takes 64.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LoadMessage(byte* input, nint stride, Vector512<uint>* m)
    {
        nint s4 = 4 * stride;
        for (int q = 0; q < 4; q++)
        {
            byte* p = input + 16 * q;
            Vector512<uint> z0 = Rows(p, s4), z1 = Rows(p + stride, s4), z2 = Rows(p + 2 * stride, s4), z3 = Rows(p + 3 * stride, s4);
            Vector512<ulong> t0 = Avx512F.UnpackLow(z0, z1).AsUInt64(), t1 = Avx512F.UnpackHigh(z0, z1).AsUInt64();
            Vector512<ulong> t2 = Avx512F.UnpackLow(z2, z3).AsUInt64(), t3 = Avx512F.UnpackHigh(z2, z3).AsUInt64();
            m[4 * q] = Avx512F.UnpackLow(t0, t2).AsUInt32();
            m[4 * q + 1] = Avx512F.UnpackHigh(t0, t2).AsUInt32();
            m[4 * q + 2] = Avx512F.UnpackLow(t1, t3).AsUInt32();
            m[4 * q + 3] = Avx512F.UnpackHigh(t1, t3).AsUInt32();
        }
    }

    /// <summary>Four words at <paramref name="p"/> of rows 0, 4, 8 and 12 counted from it, one per 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Rows(byte* p, nint s4) => Vector512.Create(
        Vector256.Create(Vector128.Load((uint*)p), Vector128.Load((uint*)(p + s4))),
        Vector256.Create(Vector128.Load((uint*)(p + 2 * s4)), Vector128.Load((uint*)(p + 3 * s4))));
}
