using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// The 8-lane hash-many kernel written directly against AVX2, used instead of the generic
/// <see cref="Blake3HashMany.Kernel{TVec,TOps}"/> when AVX2 is available. It is the same algorithm;
/// it exists because the JIT handles it better: vector operators need no inlining temporaries, so all
/// seven rounds fit unrolled within the locals the JIT tracks, and each round's message loads go
/// through a pointer the JIT cannot prove equal to the previous round's, so they stay memory
/// operands instead of being hoisted into spilled temporaries. Generated in the shape of
/// tools/gen-blake3-rounds.py (see there for the register-pressure reasoning behind *p15).
/// </summary>
internal static unsafe class Blake3Avx2
{
    // Always 0; read with Volatile.Read so each round's message pointer is opaque to the JIT.
    private static int s_opaqueZero = 0;

    [SkipLocalsInit]
    public static void HashMany8(byte* input, nint stride, int blocks, uint* key, ulong counter, bool incrementCounter,
        uint flags, uint flagsStart, uint flagsEnd, byte* output)
    {
        uint* counterWords = stackalloc uint[16];
        for (int l = 0; l < 8; l++)
        {
            ulong laneCounter = counter + (incrementCounter ? (ulong)l : 0);
            counterWords[l] = (uint)laneCounter;
            counterWords[8 + l] = (uint)(laneCounter >> 32);
        }
        Vector256<uint> counterLow = Vector256.Load(counterWords);
        Vector256<uint> counterHigh = Vector256.Load(counterWords + 8);
        Vector256<uint> blockLen = Vector256.Create((uint)Blake3Core.BlockLen);

        Vector256<uint>* h = stackalloc Vector256<uint>[8];
        for (int i = 0; i < 8; i++)
        {
            h[i] = Vector256.Create(key[i]);
        }

        // Message words, then state word 15, then the two byte-shuffle masks, all in one buffer
        // (a separate one-element stackalloc is turned back into a register-allocated local).
        Vector256<uint>* m = stackalloc Vector256<uint>[16 + 1 + 2];
        Vector256<uint>* p15 = m + 16;
        Vector256<byte>* rot16 = (Vector256<byte>*)(m + 17);
        Vector256<byte>* rot8 = (Vector256<byte>*)(m + 18);
        *rot16 = Vector256.Create((byte)2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
            2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
        *rot8 = Vector256.Create((byte)1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
            1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);

        uint blockFlags = flags | flagsStart;
        for (int b = 0; b < blocks; b++)
        {
            if (b == blocks - 1)
            {
                blockFlags |= flagsEnd;
            }
            Blake3HashMany.Ops256.LoadMessage(input + (nint)b * Blake3Core.BlockLen, stride, m);

            Vector256<uint> v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
            Vector256<uint> v8 = Vector256.Create(Blake3Core.IV0), v9 = Vector256.Create(Blake3Core.IV1);
            Vector256<uint> v10 = Vector256.Create(Blake3Core.IV2), v11 = Vector256.Create(Blake3Core.IV3);
            Vector256<uint> v12 = counterLow, v13 = counterHigh, v14 = blockLen;
            *p15 = Vector256.Create(blockFlags);
            Vector256<uint>* mr;
            Vector256<uint> t;

                // Round 0
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[0];
                v1 = v1 + v5 + mr[2];
                v2 = v2 + v6 + mr[4];
                v3 = v3 + v7 + mr[6];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[1];
                v1 = v1 + v5 + mr[3];
                v2 = v2 + v6 + mr[5];
                v3 = v3 + v7 + mr[7];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[8];
                v1 = v1 + v6 + mr[10];
                v2 = v2 + v7 + mr[12];
                v3 = v3 + v4 + mr[14];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[9];
                v1 = v1 + v6 + mr[11];
                v2 = v2 + v7 + mr[13];
                v3 = v3 + v4 + mr[15];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);
                // Round 1
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[2];
                v1 = v1 + v5 + mr[3];
                v2 = v2 + v6 + mr[7];
                v3 = v3 + v7 + mr[4];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[6];
                v1 = v1 + v5 + mr[10];
                v2 = v2 + v6 + mr[0];
                v3 = v3 + v7 + mr[13];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[1];
                v1 = v1 + v6 + mr[12];
                v2 = v2 + v7 + mr[9];
                v3 = v3 + v4 + mr[15];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[11];
                v1 = v1 + v6 + mr[5];
                v2 = v2 + v7 + mr[14];
                v3 = v3 + v4 + mr[8];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);
                // Round 2
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[3];
                v1 = v1 + v5 + mr[10];
                v2 = v2 + v6 + mr[13];
                v3 = v3 + v7 + mr[7];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[4];
                v1 = v1 + v5 + mr[12];
                v2 = v2 + v6 + mr[2];
                v3 = v3 + v7 + mr[14];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[6];
                v1 = v1 + v6 + mr[9];
                v2 = v2 + v7 + mr[11];
                v3 = v3 + v4 + mr[8];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[5];
                v1 = v1 + v6 + mr[0];
                v2 = v2 + v7 + mr[15];
                v3 = v3 + v4 + mr[1];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);
                // Round 3
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[10];
                v1 = v1 + v5 + mr[12];
                v2 = v2 + v6 + mr[14];
                v3 = v3 + v7 + mr[13];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[7];
                v1 = v1 + v5 + mr[9];
                v2 = v2 + v6 + mr[3];
                v3 = v3 + v7 + mr[15];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[4];
                v1 = v1 + v6 + mr[11];
                v2 = v2 + v7 + mr[5];
                v3 = v3 + v4 + mr[1];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[0];
                v1 = v1 + v6 + mr[2];
                v2 = v2 + v7 + mr[8];
                v3 = v3 + v4 + mr[6];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);
                // Round 4
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[12];
                v1 = v1 + v5 + mr[9];
                v2 = v2 + v6 + mr[15];
                v3 = v3 + v7 + mr[14];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[13];
                v1 = v1 + v5 + mr[11];
                v2 = v2 + v6 + mr[10];
                v3 = v3 + v7 + mr[8];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[7];
                v1 = v1 + v6 + mr[5];
                v2 = v2 + v7 + mr[0];
                v3 = v3 + v4 + mr[6];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[2];
                v1 = v1 + v6 + mr[3];
                v2 = v2 + v7 + mr[1];
                v3 = v3 + v4 + mr[4];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);
                // Round 5
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[9];
                v1 = v1 + v5 + mr[11];
                v2 = v2 + v6 + mr[8];
                v3 = v3 + v7 + mr[15];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[14];
                v1 = v1 + v5 + mr[5];
                v2 = v2 + v6 + mr[12];
                v3 = v3 + v7 + mr[1];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[13];
                v1 = v1 + v6 + mr[0];
                v2 = v2 + v7 + mr[2];
                v3 = v3 + v4 + mr[4];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[3];
                v1 = v1 + v6 + mr[10];
                v2 = v2 + v7 + mr[6];
                v3 = v3 + v4 + mr[7];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);
                // Round 6
                mr = m + Volatile.Read(ref s_opaqueZero);
                v0 = v0 + v4 + mr[11];
                v1 = v1 + v5 + mr[5];
                v2 = v2 + v6 + mr[1];
                v3 = v3 + v7 + mr[8];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot16[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 12) | (t << 20);
                t = v5 ^ v9; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v10; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v11; v7 = (t >> 12) | (t << 20);
                v0 = v0 + v4 + mr[15];
                v1 = v1 + v5 + mr[0];
                v2 = v2 + v6 + mr[9];
                v3 = v3 + v7 + mr[6];
                v12 = Avx2.Shuffle((v12 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v2).AsByte(), rot8[0]).AsUInt32();
                *p15 = Avx2.Shuffle((*p15 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v8 = v8 + v12;
                v9 = v9 + v13;
                v10 = v10 + v14;
                v11 = v11 + *p15;
                t = v4 ^ v8; v4 = (t >> 7) | (t << 25);
                t = v5 ^ v9; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v10; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v11; v7 = (t >> 7) | (t << 25);
                v0 = v0 + v5 + mr[14];
                v1 = v1 + v6 + mr[2];
                v2 = v2 + v7 + mr[3];
                v3 = v3 + v4 + mr[7];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot16[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot16[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot16[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot16[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 12) | (t << 20);
                t = v6 ^ v11; v6 = (t >> 12) | (t << 20);
                t = v7 ^ v8; v7 = (t >> 12) | (t << 20);
                t = v4 ^ v9; v4 = (t >> 12) | (t << 20);
                v0 = v0 + v5 + mr[10];
                v1 = v1 + v6 + mr[12];
                v2 = v2 + v7 + mr[4];
                v3 = v3 + v4 + mr[13];
                *p15 = Avx2.Shuffle((*p15 ^ v0).AsByte(), rot8[0]).AsUInt32();
                v12 = Avx2.Shuffle((v12 ^ v1).AsByte(), rot8[0]).AsUInt32();
                v13 = Avx2.Shuffle((v13 ^ v2).AsByte(), rot8[0]).AsUInt32();
                v14 = Avx2.Shuffle((v14 ^ v3).AsByte(), rot8[0]).AsUInt32();
                v10 = v10 + *p15;
                v11 = v11 + v12;
                v8 = v8 + v13;
                v9 = v9 + v14;
                t = v5 ^ v10; v5 = (t >> 7) | (t << 25);
                t = v6 ^ v11; v6 = (t >> 7) | (t << 25);
                t = v7 ^ v8; v7 = (t >> 7) | (t << 25);
                t = v4 ^ v9; v4 = (t >> 7) | (t << 25);


            h[0] = v0 ^ v8; h[1] = v1 ^ v9; h[2] = v2 ^ v10; h[3] = v3 ^ v11;
            h[4] = v4 ^ v12; h[5] = v5 ^ v13; h[6] = v6 ^ v14; h[7] = v7 ^ *p15;
            blockFlags = flags;
        }

        // Un-transpose through a small buffer: once per input, against 16 compressions per chunk.
        uint* words = stackalloc uint[8 * 8];
        for (int i = 0; i < 8; i++)
        {
            h[i].Store(words + 8 * i);
        }
        uint* o = (uint*)output;
        for (int l = 0; l < 8; l++)
        {
            for (int i = 0; i < 8; i++)
            {
                o[l * 8 + i] = words[i * 8 + l];
            }
        }
    }
}
