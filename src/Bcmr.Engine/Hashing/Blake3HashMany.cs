using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Bcmr.Engine.Hashing;

/// <summary>Which lane width compresses many chunks (or parents) at once.</summary>
internal enum Blake3Simd
{
    Scalar = 0,
    Vector128 = 1,
    Vector256 = 2,
    Vector512 = 3,
}

/// <summary>
/// The "hash many" layer: compresses N independent inputs of the same number of blocks at once,
/// one input per vector lane. Chunks (16 blocks each, counters incrementing) and parent nodes
/// (one block each, counter 0) both go through here.
/// </summary>
internal static unsafe class Blake3HashMany
{
    /// <summary>The widest path that is fast on this machine; narrower ones are used for remainders.</summary>
    public static readonly Blake3Simd Default =
        Vector512.IsHardwareAccelerated ? Blake3Simd.Vector512
        : Vector256.IsHardwareAccelerated ? Blake3Simd.Vector256
        : Vector128.IsHardwareAccelerated ? Blake3Simd.Vector128
        : Blake3Simd.Scalar;

    /// <summary>The kernel <see cref="Default"/> runs, as bcmr --version reports it: avx512, avx2, sse4.1/neon (128-bit
    /// lanes), or scalar.</summary>
    public static string KernelName => Default switch
    {
        Blake3Simd.Vector512 => "avx512",
        Blake3Simd.Vector256 => Avx2.IsSupported ? "avx2" : "vector256",
        Blake3Simd.Vector128 => System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "neon" : "sse (128-bit)",
        _ => "scalar",
    };

    /// <summary>
    /// Tests set this to run the generic kernels where the AVX2- or AVX-512-specific ones (<see cref="Blake3Avx2"/>,
    /// <see cref="Blake3Avx512"/>) would be chosen, so the generic code other machines rely on is exercised here too.
    /// Per thread, so concurrently running tests do not see each other's setting.
    /// </summary>
    [ThreadStatic]
    internal static bool GenericKernelsOnly;

    /// <summary>
    /// Compresses <paramref name="count"/> inputs laid out back to back (each <paramref name="blocks"/> x 64 bytes)
    /// and writes one 32-byte chaining value per input to <paramref name="output"/>.
    /// </summary>
    /// <remarks>
    /// Output may overlap input as long as output i never lies beyond input i (parents are reduced in place):
    /// each batch reads all of its input before it writes anything.
    /// </remarks>
    public static void HashMany(Blake3Simd simd, byte* input, int count, int blocks, uint* key, ulong counter,
        bool incrementCounter, uint flags, uint flagsStart, uint flagsEnd, byte* output)
    {
        nint stride = (nint)blocks * Blake3Core.BlockLen;
        while (count > 0)
        {
            int n;
            if (simd >= Blake3Simd.Vector512 && count >= 16)
            {
                n = 16;
                if (Blake3Avx512.IsSupported && !GenericKernelsOnly)
                {
                    Blake3Avx512.HashMany16(input, stride, blocks, key, counter, incrementCounter, flags, flagsStart, flagsEnd, output);
                }
                else
                {
                    Kernel<Vector512<uint>, Ops512>.Run(input, stride, blocks, key, counter, incrementCounter, flags, flagsStart, flagsEnd, output);
                }
            }
            else if (simd >= Blake3Simd.Vector256 && count >= 8)
            {
                n = 8;
                if (Avx2.IsSupported && !GenericKernelsOnly)
                {
                    Blake3Avx2.HashMany8(input, stride, blocks, key, counter, incrementCounter, flags, flagsStart, flagsEnd, output);
                }
                else
                {
                    Kernel<Vector256<uint>, Ops256>.Run(input, stride, blocks, key, counter, incrementCounter, flags, flagsStart, flagsEnd, output);
                }
            }
            else if (simd >= Blake3Simd.Vector128 && count >= 4)
            {
                n = 4;
                // An SSSE3-specific kernel shaped like Blake3Avx2 measured no faster under the JIT and slower
                // under default-ISA Native AOT (641 vs 473 ms for 512 MiB), so the generic one serves here.
                Kernel<Vector128<uint>, Ops128>.Run(input, stride, blocks, key, counter, incrementCounter, flags, flagsStart, flagsEnd, output);
            }
            else
            {
                n = 1;
                Kernel<uint, OpsScalar>.Run(input, stride, blocks, key, counter, incrementCounter, flags, flagsStart, flagsEnd, output);
            }

            input += n * stride;
            output += n * Blake3Core.OutLen;
            if (incrementCounter)
            {
                counter += (ulong)n;
            }
            count -= n;
        }
    }

    /// <summary>Each lane's chunk counter split into its low and high words: lane l counts from
    /// <paramref name="counter"/> + l when <paramref name="incrementCounter"/> (chunks), else all lanes use it (parents).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void LaneCounters(uint* low, uint* high, int lanes, ulong counter, bool incrementCounter)
    {
        for (int l = 0; l < lanes; l++)
        {
            ulong laneCounter = counter + (incrementCounter ? (ulong)l : 0);
            low[l] = (uint)laneCounter;
            high[l] = (uint)(laneCounter >> 32);
        }
    }

    /// <summary>Writes each lane's 32-byte chaining value to <paramref name="output"/> from the final state stored word
    /// by word (word i of lane l at <c>words[i * lanes + l]</c>): the un-transpose, once per input against 16
    /// compressions per chunk.</summary>
    internal static void StoreChainingValues(uint* words, int lanes, byte* output)
    {
        uint* o = (uint*)output;
        for (int l = 0; l < lanes; l++)
        {
            for (int i = 0; i < 8; i++)
            {
                o[l * 8 + i] = words[i * lanes + l];
            }
        }
    }

    /// <summary>
    /// Before block <paramref name="b"/> of <paramref name="lanes"/> inputs <paramref name="stride"/> apart, fetches
    /// each input's block four ahead, and in the last four blocks the first ones of the next batch of inputs, which
    /// <see cref="HashMany"/> hashes next. Eight or sixteen streams 1 KiB apart are more than the hardware prefetcher
    /// follows: this moved whole-buffer hashing from 6.0 to 6.6 GB/s (AVX-512) and AVX2 from 2.1 to 2.6 (HashBench).
    /// A prefetch never faults, so fetching past the end of the input is harmless.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Prefetch(byte* input, nint stride, int lanes, int b, int blocks)
    {
        if (!Sse.IsSupported)
        {
            return;
        }
        byte* ahead = input + (nint)(b + 4) * Blake3Core.BlockLen + (b + 4 < blocks ? 0 : (lanes - 1) * stride);
        for (int l = 0; l < lanes; l++)
        {
            Sse.Prefetch0(ahead + l * stride);
        }
    }

    /// <summary>
    /// One lane width's worth of vector operations. Static abstract members let the JIT specialise
    /// <see cref="Kernel{TVec,TOps}"/> per width with every call inlined, so the round code is written once.
    /// </summary>
    internal interface IVecOps<TVec> where TVec : unmanaged
    {
        static abstract int Lanes { get; }
        static abstract TVec Splat(uint x);
        static abstract TVec Add(TVec a, TVec b);
        static abstract TVec Xor(TVec a, TVec b);
        /// <summary>Fills the two constants the 16- and 8-bit rotates may use (byte-shuffle masks).</summary>
        static abstract void InitConstants(TVec* c);
        static abstract TVec Ror16(TVec x, TVec* c);
        static abstract TVec Ror12(TVec x);
        static abstract TVec Ror8(TVec x, TVec* c);
        static abstract TVec Ror7(TVec x);
        static abstract TVec Load(uint* p);
        static abstract void Store(TVec v, uint* p);

        /// <summary>Loads block 0 of each lane's input (lane i at input + i*stride) transposed: m[w] holds word w of every lane.</summary>
        static abstract void LoadMessage(byte* input, nint stride, TVec* m);
    }

    internal static class Kernel<TVec, TOps>
        where TVec : unmanaged
        where TOps : struct, IVecOps<TVec>
    {
        [SkipLocalsInit]
        public static void Run(byte* input, nint stride, int blocks, uint* key, ulong counter, bool incrementCounter,
            uint flags, uint flagsStart, uint flagsEnd, byte* output)
        {
            int lanes = TOps.Lanes;
            uint* counterWords = stackalloc uint[32];
            LaneCounters(counterWords, counterWords + 16, lanes, counter, incrementCounter);
            TVec counterLow = TOps.Load(counterWords);
            TVec counterHigh = TOps.Load(counterWords + 16);
            TVec blockLen = TOps.Splat(Blake3Core.BlockLen);

            // The chaining value stays in memory across a block: with 16 state vectors already competing
            // for 16 registers, leaving it to the register allocator only made it spill worse.
            TVec* h = stackalloc TVec[8];
            for (int i = 0; i < 8; i++)
            {
                h[i] = TOps.Splat(key[i]);
            }

            // Message words, then state word 15 and the rotate constants: one buffer, because the JIT turns
            // a separate one-element stackalloc back into a register-allocated local.
            TVec* m = stackalloc TVec[16 + 1 + 2];
            TVec* p15 = m + 16;
            TVec* c = m + 17;
            TOps.InitConstants(c);
            uint blockFlags = flags | flagsStart;
            for (int b = 0; b < blocks; b++)
            {
                if (b == blocks - 1)
                {
                    blockFlags |= flagsEnd;
                }
                Prefetch(input, stride, lanes, b, blocks);
                TOps.LoadMessage(input + (nint)b * Blake3Core.BlockLen, stride, m);

                TVec v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
                TVec v8 = TOps.Splat(Blake3Core.IV0), v9 = TOps.Splat(Blake3Core.IV1);
                TVec v10 = TOps.Splat(Blake3Core.IV2), v11 = TOps.Splat(Blake3Core.IV3);
                TVec v12 = counterLow, v13 = counterHigh, v14 = blockLen;
                *p15 = TOps.Splat(blockFlags);

                byte* s = Blake3Core.MessageSchedule;
                for (int round = 0; round < 7; round++, s += 16)
                {
                    // Generated by tools/gen-blake3-rounds.py; see there for why this is a loop of one round.
                    v0 = TOps.Add(TOps.Add(v0, v4), m[s[0]]);
                    v1 = TOps.Add(TOps.Add(v1, v5), m[s[2]]);
                    v2 = TOps.Add(TOps.Add(v2, v6), m[s[4]]);
                    v3 = TOps.Add(TOps.Add(v3, v7), m[s[6]]);
                    v12 = TOps.Ror16(TOps.Xor(v12, v0), c);
                    v13 = TOps.Ror16(TOps.Xor(v13, v1), c);
                    v14 = TOps.Ror16(TOps.Xor(v14, v2), c);
                    *p15 = TOps.Ror16(TOps.Xor(*p15, v3), c);
                    v8 = TOps.Add(v8, v12);
                    v9 = TOps.Add(v9, v13);
                    v10 = TOps.Add(v10, v14);
                    v11 = TOps.Add(v11, *p15);
                    v4 = TOps.Ror12(TOps.Xor(v4, v8));
                    v5 = TOps.Ror12(TOps.Xor(v5, v9));
                    v6 = TOps.Ror12(TOps.Xor(v6, v10));
                    v7 = TOps.Ror12(TOps.Xor(v7, v11));
                    v0 = TOps.Add(TOps.Add(v0, v4), m[s[1]]);
                    v1 = TOps.Add(TOps.Add(v1, v5), m[s[3]]);
                    v2 = TOps.Add(TOps.Add(v2, v6), m[s[5]]);
                    v3 = TOps.Add(TOps.Add(v3, v7), m[s[7]]);
                    v12 = TOps.Ror8(TOps.Xor(v12, v0), c);
                    v13 = TOps.Ror8(TOps.Xor(v13, v1), c);
                    v14 = TOps.Ror8(TOps.Xor(v14, v2), c);
                    *p15 = TOps.Ror8(TOps.Xor(*p15, v3), c);
                    v8 = TOps.Add(v8, v12);
                    v9 = TOps.Add(v9, v13);
                    v10 = TOps.Add(v10, v14);
                    v11 = TOps.Add(v11, *p15);
                    v4 = TOps.Ror7(TOps.Xor(v4, v8));
                    v5 = TOps.Ror7(TOps.Xor(v5, v9));
                    v6 = TOps.Ror7(TOps.Xor(v6, v10));
                    v7 = TOps.Ror7(TOps.Xor(v7, v11));
                    v0 = TOps.Add(TOps.Add(v0, v5), m[s[8]]);
                    v1 = TOps.Add(TOps.Add(v1, v6), m[s[10]]);
                    v2 = TOps.Add(TOps.Add(v2, v7), m[s[12]]);
                    v3 = TOps.Add(TOps.Add(v3, v4), m[s[14]]);
                    *p15 = TOps.Ror16(TOps.Xor(*p15, v0), c);
                    v12 = TOps.Ror16(TOps.Xor(v12, v1), c);
                    v13 = TOps.Ror16(TOps.Xor(v13, v2), c);
                    v14 = TOps.Ror16(TOps.Xor(v14, v3), c);
                    v10 = TOps.Add(v10, *p15);
                    v11 = TOps.Add(v11, v12);
                    v8 = TOps.Add(v8, v13);
                    v9 = TOps.Add(v9, v14);
                    v5 = TOps.Ror12(TOps.Xor(v5, v10));
                    v6 = TOps.Ror12(TOps.Xor(v6, v11));
                    v7 = TOps.Ror12(TOps.Xor(v7, v8));
                    v4 = TOps.Ror12(TOps.Xor(v4, v9));
                    v0 = TOps.Add(TOps.Add(v0, v5), m[s[9]]);
                    v1 = TOps.Add(TOps.Add(v1, v6), m[s[11]]);
                    v2 = TOps.Add(TOps.Add(v2, v7), m[s[13]]);
                    v3 = TOps.Add(TOps.Add(v3, v4), m[s[15]]);
                    *p15 = TOps.Ror8(TOps.Xor(*p15, v0), c);
                    v12 = TOps.Ror8(TOps.Xor(v12, v1), c);
                    v13 = TOps.Ror8(TOps.Xor(v13, v2), c);
                    v14 = TOps.Ror8(TOps.Xor(v14, v3), c);
                    v10 = TOps.Add(v10, *p15);
                    v11 = TOps.Add(v11, v12);
                    v8 = TOps.Add(v8, v13);
                    v9 = TOps.Add(v9, v14);
                    v5 = TOps.Ror7(TOps.Xor(v5, v10));
                    v6 = TOps.Ror7(TOps.Xor(v6, v11));
                    v7 = TOps.Ror7(TOps.Xor(v7, v8));
                    v4 = TOps.Ror7(TOps.Xor(v4, v9));
                }

                h[0] = TOps.Xor(v0, v8); h[1] = TOps.Xor(v1, v9); h[2] = TOps.Xor(v2, v10); h[3] = TOps.Xor(v3, v11);
                h[4] = TOps.Xor(v4, v12); h[5] = TOps.Xor(v5, v13); h[6] = TOps.Xor(v6, v14); h[7] = TOps.Xor(v7, *p15);
                blockFlags = flags;
            }

            uint* words = stackalloc uint[8 * 16];
            for (int i = 0; i < 8; i++)
            {
                TOps.Store(h[i], words + i * lanes);
            }
            StoreChainingValues(words, lanes, output);
        }
    }

    /// <summary>Transposes through scalar loads; correct on any hardware, used where no shuffle instructions are available.</summary>
    [SkipLocalsInit]
    private static void GatherMessage<TVec, TOps>(byte* input, nint stride, TVec* m)
        where TVec : unmanaged
        where TOps : struct, IVecOps<TVec>
    {
        int lanes = TOps.Lanes;
        uint* t = stackalloc uint[16 * 16];
        for (int l = 0; l < lanes; l++)
        {
            byte* src = input + l * stride;
            for (int w = 0; w < 16; w++)
            {
                t[w * lanes + l] = Unsafe.ReadUnaligned<uint>(src + 4 * w);
            }
        }
        for (int w = 0; w < 16; w++)
        {
            m[w] = TOps.Load(t + w * lanes);
        }
    }

    /// <summary>
    /// Transposes a 4x4 block of words: rows are four lanes' consecutive words, results are one word of four lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(Vector128<uint> a, Vector128<uint> b, Vector128<uint> c, Vector128<uint> d,
        out Vector128<uint> w0, out Vector128<uint> w1, out Vector128<uint> w2, out Vector128<uint> w3)
    {
        Vector128<ulong> ab0 = Sse2.UnpackLow(a, b).AsUInt64();
        Vector128<ulong> cd0 = Sse2.UnpackLow(c, d).AsUInt64();
        Vector128<ulong> ab1 = Sse2.UnpackHigh(a, b).AsUInt64();
        Vector128<ulong> cd1 = Sse2.UnpackHigh(c, d).AsUInt64();
        w0 = Sse2.UnpackLow(ab0, cd0).AsUInt32();
        w1 = Sse2.UnpackHigh(ab0, cd0).AsUInt32();
        w2 = Sse2.UnpackLow(ab1, cd1).AsUInt32();
        w3 = Sse2.UnpackHigh(ab1, cd1).AsUInt32();
    }

    internal struct OpsScalar : IVecOps<uint>
    {
        public static int Lanes => 1;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Splat(uint x) => x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Add(uint a, uint b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Xor(uint a, uint b) => a ^ b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void InitConstants(uint* c)
        {
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Ror16(uint x, uint* c) => System.Numerics.BitOperations.RotateRight(x, 16);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Ror12(uint x) => System.Numerics.BitOperations.RotateRight(x, 12);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Ror8(uint x, uint* c) => System.Numerics.BitOperations.RotateRight(x, 8);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Ror7(uint x) => System.Numerics.BitOperations.RotateRight(x, 7);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint Load(uint* p) => *p;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(uint v, uint* p) => *p = v;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LoadMessage(byte* input, nint stride, uint* m) => Unsafe.CopyBlockUnaligned(m, input, Blake3Core.BlockLen);
    }

    internal struct Ops128 : IVecOps<Vector128<uint>>
    {
        public static int Lanes => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Splat(uint x) => Vector128.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Add(Vector128<uint> a, Vector128<uint> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Xor(Vector128<uint> a, Vector128<uint> b) => a ^ b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void InitConstants(Vector128<uint>* c)
        {
            c[0] = Vector128.Create((byte)2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13).AsUInt32();
            c[1] = Vector128.Create((byte)1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12).AsUInt32();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Ror16(Vector128<uint> x, Vector128<uint>* c)
        {
            // A byte shuffle is one instruction where shift+shift+or is three.
            if (Ssse3.IsSupported)
            {
                return Ssse3.Shuffle(x.AsByte(), c[0].AsByte()).AsUInt32();
            }
            return Vector128.ShiftRightLogical(x, 16) | Vector128.ShiftLeft(x, 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Ror12(Vector128<uint> x) => Vector128.ShiftRightLogical(x, 12) | Vector128.ShiftLeft(x, 20);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Ror8(Vector128<uint> x, Vector128<uint>* c)
        {
            if (Ssse3.IsSupported)
            {
                return Ssse3.Shuffle(x.AsByte(), c[1].AsByte()).AsUInt32();
            }
            return Vector128.ShiftRightLogical(x, 8) | Vector128.ShiftLeft(x, 24);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Ror7(Vector128<uint> x) => Vector128.ShiftRightLogical(x, 7) | Vector128.ShiftLeft(x, 25);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Load(uint* p) => Vector128.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector128<uint> v, uint* p) => v.Store(p);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LoadMessage(byte* input, nint stride, Vector128<uint>* m)
        {
            if (!Sse2.IsSupported)
            {
                GatherMessage<Vector128<uint>, Ops128>(input, stride, m);
                return;
            }
            for (int q = 0; q < 4; q++)
            {
                byte* p = input + 16 * q;
                Transpose4x4(
                    Vector128.Load((uint*)p), Vector128.Load((uint*)(p + stride)),
                    Vector128.Load((uint*)(p + 2 * stride)), Vector128.Load((uint*)(p + 3 * stride)),
                    out m[4 * q], out m[4 * q + 1], out m[4 * q + 2], out m[4 * q + 3]);
            }
        }
    }

    internal struct Ops256 : IVecOps<Vector256<uint>>
    {
        public static int Lanes => 8;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Splat(uint x) => Vector256.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Add(Vector256<uint> a, Vector256<uint> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Xor(Vector256<uint> a, Vector256<uint> b) => a ^ b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void InitConstants(Vector256<uint>* c)
        {
            c[0] = Vector256.Create((byte)2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13).AsUInt32();
            c[1] = Vector256.Create((byte)1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
                1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12).AsUInt32();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Ror16(Vector256<uint> x, Vector256<uint>* c)
        {
            if (Avx2.IsSupported)
            {
                return Avx2.Shuffle(x.AsByte(), c[0].AsByte()).AsUInt32();
            }
            return Vector256.ShiftRightLogical(x, 16) | Vector256.ShiftLeft(x, 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Ror12(Vector256<uint> x) => Vector256.ShiftRightLogical(x, 12) | Vector256.ShiftLeft(x, 20);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Ror8(Vector256<uint> x, Vector256<uint>* c)
        {
            if (Avx2.IsSupported)
            {
                return Avx2.Shuffle(x.AsByte(), c[1].AsByte()).AsUInt32();
            }
            return Vector256.ShiftRightLogical(x, 8) | Vector256.ShiftLeft(x, 24);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Ror7(Vector256<uint> x) => Vector256.ShiftRightLogical(x, 7) | Vector256.ShiftLeft(x, 25);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Load(uint* p) => Vector256.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector256<uint> v, uint* p) => v.Store(p);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LoadMessage(byte* input, nint stride, Vector256<uint>* m)
        {
            if (!Avx2.IsSupported)
            {
                GatherMessage<Vector256<uint>, Ops256>(input, stride, m);
                return;
            }
            // Two 8x8 transposes: words 0-7 then words 8-15 of the block.
            for (int half = 0; half < 2; half++)
            {
                byte* p = input + 32 * half;
                Transpose8x8(
                    Vector256.Load((uint*)p), Vector256.Load((uint*)(p + stride)),
                    Vector256.Load((uint*)(p + 2 * stride)), Vector256.Load((uint*)(p + 3 * stride)),
                    Vector256.Load((uint*)(p + 4 * stride)), Vector256.Load((uint*)(p + 5 * stride)),
                    Vector256.Load((uint*)(p + 6 * stride)), Vector256.Load((uint*)(p + 7 * stride)),
                    m + 8 * half);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Transpose8x8(Vector256<uint> a, Vector256<uint> b, Vector256<uint> c, Vector256<uint> d,
            Vector256<uint> e, Vector256<uint> f, Vector256<uint> g, Vector256<uint> h, Vector256<uint>* o)
        {
            // Interleave 32-bit then 64-bit elements within each 128-bit half, then swap halves across rows.
            Vector256<ulong> ab0 = Avx2.UnpackLow(a, b).AsUInt64(), ab1 = Avx2.UnpackHigh(a, b).AsUInt64();
            Vector256<ulong> cd0 = Avx2.UnpackLow(c, d).AsUInt64(), cd1 = Avx2.UnpackHigh(c, d).AsUInt64();
            Vector256<ulong> ef0 = Avx2.UnpackLow(e, f).AsUInt64(), ef1 = Avx2.UnpackHigh(e, f).AsUInt64();
            Vector256<ulong> gh0 = Avx2.UnpackLow(g, h).AsUInt64(), gh1 = Avx2.UnpackHigh(g, h).AsUInt64();

            Vector256<uint> abcd0 = Avx2.UnpackLow(ab0, cd0).AsUInt32(), abcd1 = Avx2.UnpackHigh(ab0, cd0).AsUInt32();
            Vector256<uint> abcd2 = Avx2.UnpackLow(ab1, cd1).AsUInt32(), abcd3 = Avx2.UnpackHigh(ab1, cd1).AsUInt32();
            Vector256<uint> efgh0 = Avx2.UnpackLow(ef0, gh0).AsUInt32(), efgh1 = Avx2.UnpackHigh(ef0, gh0).AsUInt32();
            Vector256<uint> efgh2 = Avx2.UnpackLow(ef1, gh1).AsUInt32(), efgh3 = Avx2.UnpackHigh(ef1, gh1).AsUInt32();

            o[0] = Avx2.Permute2x128(abcd0, efgh0, 0x20);
            o[1] = Avx2.Permute2x128(abcd1, efgh1, 0x20);
            o[2] = Avx2.Permute2x128(abcd2, efgh2, 0x20);
            o[3] = Avx2.Permute2x128(abcd3, efgh3, 0x20);
            o[4] = Avx2.Permute2x128(abcd0, efgh0, 0x31);
            o[5] = Avx2.Permute2x128(abcd1, efgh1, 0x31);
            o[6] = Avx2.Permute2x128(abcd2, efgh2, 0x31);
            o[7] = Avx2.Permute2x128(abcd3, efgh3, 0x31);
        }
    }

    /// <remarks>AVX-512 rotates in one instruction (vprord); the shift-or pair it replaces made this kernel barely
    /// faster than AVX2's (bench/RESULTS.md, issue 17).</remarks>
    internal struct Ops512 : IVecOps<Vector512<uint>>
    {
        public static int Lanes => 16;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Splat(uint x) => Vector512.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Add(Vector512<uint> a, Vector512<uint> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Xor(Vector512<uint> a, Vector512<uint> b) => a ^ b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void InitConstants(Vector512<uint>* c)
        {
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Ror16(Vector512<uint> x, Vector512<uint>* c) =>
            Avx512F.IsSupported ? Avx512F.RotateRight(x, 16) : Vector512.ShiftRightLogical(x, 16) | Vector512.ShiftLeft(x, 16);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Ror12(Vector512<uint> x) =>
            Avx512F.IsSupported ? Avx512F.RotateRight(x, 12) : Vector512.ShiftRightLogical(x, 12) | Vector512.ShiftLeft(x, 20);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Ror8(Vector512<uint> x, Vector512<uint>* c) =>
            Avx512F.IsSupported ? Avx512F.RotateRight(x, 8) : Vector512.ShiftRightLogical(x, 8) | Vector512.ShiftLeft(x, 24);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Ror7(Vector512<uint> x) =>
            Avx512F.IsSupported ? Avx512F.RotateRight(x, 7) : Vector512.ShiftRightLogical(x, 7) | Vector512.ShiftLeft(x, 25);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Load(uint* p) => Vector512.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector512<uint> v, uint* p) => v.Store(p);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void LoadMessage(byte* input, nint stride, Vector512<uint>* m)
        {
            if (!Sse2.IsSupported)
            {
                GatherMessage<Vector512<uint>, Ops512>(input, stride, m);
                return;
            }
            // Built from 4x4 transposes of 128-bit pieces so it only needs baseline x64 shuffles; the pieces
            // are then concatenated, which is a plain insert on AVX-512 hardware.
            Vector128<uint>* piece = stackalloc Vector128<uint>[16];
            for (int q = 0; q < 4; q++)
            {
                for (int g = 0; g < 4; g++)
                {
                    byte* p = input + 16 * q + 4 * g * stride;
                    Transpose4x4(
                        Vector128.Load((uint*)p), Vector128.Load((uint*)(p + stride)),
                        Vector128.Load((uint*)(p + 2 * stride)), Vector128.Load((uint*)(p + 3 * stride)),
                        out piece[4 * g], out piece[4 * g + 1], out piece[4 * g + 2], out piece[4 * g + 3]);
                }
                for (int k = 0; k < 4; k++)
                {
                    m[4 * q + k] = Vector512.Create(
                        Vector256.Create(piece[k], piece[4 + k]),
                        Vector256.Create(piece[8 + k], piece[12 + k]));
                }
            }
        }
    }
}
