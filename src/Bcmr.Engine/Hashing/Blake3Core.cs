using System.Numerics;
using System.Runtime.CompilerServices;

namespace Bcmr.Engine.Hashing;

/// <summary>
/// The BLAKE3 compression function for a single block, plus the constants of the tree mode.
/// Everything else (chunk state, subtree stack, SIMD batches) is built on top of this.
/// </summary>
/// <remarks>
/// The whole implementation assumes a little-endian machine: message words and chaining values
/// are read and written by reinterpreting bytes. Every platform .NET ships SIMD support for is
/// little-endian; <see cref="Blake3Hasher"/> refuses to run elsewhere rather than be silently wrong.
/// </remarks>
internal static unsafe class Blake3Core
{
    public const int BlockLen = 64;
    public const int ChunkLen = 1024;
    public const int OutLen = 32;
    public const int KeyLen = 32;

    // One stack entry per level of the tree; 54 levels cover 2^54 chunks = 2^64 bytes,
    // which is all the 64-bit chunk counter can address.
    public const int MaxDepth = 54;

    public const uint ChunkStart = 1;
    public const uint ChunkEnd = 2;
    public const uint Parent = 4;
    public const uint Root = 8;
    public const uint KeyedHash = 16;
    public const uint DeriveKeyContext = 32;
    public const uint DeriveKeyMaterial = 64;

    public const uint IV0 = 0x6A09E667, IV1 = 0xBB67AE85, IV2 = 0x3C6EF372, IV3 = 0xA54FF53A;
    public const uint IV4 = 0x510E527F, IV5 = 0x9B05688C, IV6 = 0x1F83D9AB, IV7 = 0x5BE0CD19;

    public static void WriteIV(uint* key)
    {
        key[0] = IV0; key[1] = IV1; key[2] = IV2; key[3] = IV3;
        key[4] = IV4; key[5] = IV5; key[6] = IV6; key[7] = IV7;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G(ref uint a, ref uint b, ref uint c, ref uint d, uint x, uint y)
    {
        a = a + b + x;
        d = BitOperations.RotateRight(d ^ a, 16);
        c += d;
        b = BitOperations.RotateRight(b ^ c, 12);
        a = a + b + y;
        d = BitOperations.RotateRight(d ^ a, 8);
        c += d;
        b = BitOperations.RotateRight(b ^ c, 7);
    }

    /// <summary>
    /// Compresses one block and writes all 16 output words: the first 8 are the next chaining
    /// value, the last 8 are only needed for extended (XOF) root output.
    /// </summary>
    /// <remarks><paramref name="out16"/> may alias <paramref name="cv"/>: inputs are read before any output is written.</remarks>
    [SkipLocalsInit]
    public static void Compress(uint* cv, byte* block, uint blockLen, ulong counter, uint flags, uint* out16)
    {
        // Copy the message first so that callers may pass a block that aliases the output.
        uint* m = stackalloc uint[16];
        Unsafe.CopyBlockUnaligned(m, block, BlockLen);

        uint c0 = cv[0], c1 = cv[1], c2 = cv[2], c3 = cv[3], c4 = cv[4], c5 = cv[5], c6 = cv[6], c7 = cv[7];
        uint v0 = c0, v1 = c1, v2 = c2, v3 = c3, v4 = c4, v5 = c5, v6 = c6, v7 = c7;
        uint v8 = IV0, v9 = IV1, v10 = IV2, v11 = IV3;
        uint v12 = (uint)counter, v13 = (uint)(counter >> 32), v14 = blockLen, v15 = flags;

        // round 0
        G(ref v0, ref v4, ref v8, ref v12, m[0], m[1]);
        G(ref v1, ref v5, ref v9, ref v13, m[2], m[3]);
        G(ref v2, ref v6, ref v10, ref v14, m[4], m[5]);
        G(ref v3, ref v7, ref v11, ref v15, m[6], m[7]);
        G(ref v0, ref v5, ref v10, ref v15, m[8], m[9]);
        G(ref v1, ref v6, ref v11, ref v12, m[10], m[11]);
        G(ref v2, ref v7, ref v8, ref v13, m[12], m[13]);
        G(ref v3, ref v4, ref v9, ref v14, m[14], m[15]);
        // round 1
        G(ref v0, ref v4, ref v8, ref v12, m[2], m[6]);
        G(ref v1, ref v5, ref v9, ref v13, m[3], m[10]);
        G(ref v2, ref v6, ref v10, ref v14, m[7], m[0]);
        G(ref v3, ref v7, ref v11, ref v15, m[4], m[13]);
        G(ref v0, ref v5, ref v10, ref v15, m[1], m[11]);
        G(ref v1, ref v6, ref v11, ref v12, m[12], m[5]);
        G(ref v2, ref v7, ref v8, ref v13, m[9], m[14]);
        G(ref v3, ref v4, ref v9, ref v14, m[15], m[8]);
        // round 2
        G(ref v0, ref v4, ref v8, ref v12, m[3], m[4]);
        G(ref v1, ref v5, ref v9, ref v13, m[10], m[12]);
        G(ref v2, ref v6, ref v10, ref v14, m[13], m[2]);
        G(ref v3, ref v7, ref v11, ref v15, m[7], m[14]);
        G(ref v0, ref v5, ref v10, ref v15, m[6], m[5]);
        G(ref v1, ref v6, ref v11, ref v12, m[9], m[0]);
        G(ref v2, ref v7, ref v8, ref v13, m[11], m[15]);
        G(ref v3, ref v4, ref v9, ref v14, m[8], m[1]);
        // round 3
        G(ref v0, ref v4, ref v8, ref v12, m[10], m[7]);
        G(ref v1, ref v5, ref v9, ref v13, m[12], m[9]);
        G(ref v2, ref v6, ref v10, ref v14, m[14], m[3]);
        G(ref v3, ref v7, ref v11, ref v15, m[13], m[15]);
        G(ref v0, ref v5, ref v10, ref v15, m[4], m[0]);
        G(ref v1, ref v6, ref v11, ref v12, m[11], m[2]);
        G(ref v2, ref v7, ref v8, ref v13, m[5], m[8]);
        G(ref v3, ref v4, ref v9, ref v14, m[1], m[6]);
        // round 4
        G(ref v0, ref v4, ref v8, ref v12, m[12], m[13]);
        G(ref v1, ref v5, ref v9, ref v13, m[9], m[11]);
        G(ref v2, ref v6, ref v10, ref v14, m[15], m[10]);
        G(ref v3, ref v7, ref v11, ref v15, m[14], m[8]);
        G(ref v0, ref v5, ref v10, ref v15, m[7], m[2]);
        G(ref v1, ref v6, ref v11, ref v12, m[5], m[3]);
        G(ref v2, ref v7, ref v8, ref v13, m[0], m[1]);
        G(ref v3, ref v4, ref v9, ref v14, m[6], m[4]);
        // round 5
        G(ref v0, ref v4, ref v8, ref v12, m[9], m[14]);
        G(ref v1, ref v5, ref v9, ref v13, m[11], m[5]);
        G(ref v2, ref v6, ref v10, ref v14, m[8], m[12]);
        G(ref v3, ref v7, ref v11, ref v15, m[15], m[1]);
        G(ref v0, ref v5, ref v10, ref v15, m[13], m[3]);
        G(ref v1, ref v6, ref v11, ref v12, m[0], m[10]);
        G(ref v2, ref v7, ref v8, ref v13, m[2], m[6]);
        G(ref v3, ref v4, ref v9, ref v14, m[4], m[7]);
        // round 6
        G(ref v0, ref v4, ref v8, ref v12, m[11], m[15]);
        G(ref v1, ref v5, ref v9, ref v13, m[5], m[0]);
        G(ref v2, ref v6, ref v10, ref v14, m[1], m[9]);
        G(ref v3, ref v7, ref v11, ref v15, m[8], m[6]);
        G(ref v0, ref v5, ref v10, ref v15, m[14], m[10]);
        G(ref v1, ref v6, ref v11, ref v12, m[2], m[12]);
        G(ref v2, ref v7, ref v8, ref v13, m[3], m[4]);
        G(ref v3, ref v4, ref v9, ref v14, m[7], m[13]);

        out16[0] = v0 ^ v8; out16[1] = v1 ^ v9; out16[2] = v2 ^ v10; out16[3] = v3 ^ v11;
        out16[4] = v4 ^ v12; out16[5] = v5 ^ v13; out16[6] = v6 ^ v14; out16[7] = v7 ^ v15;
        out16[8] = v8 ^ c0; out16[9] = v9 ^ c1; out16[10] = v10 ^ c2; out16[11] = v11 ^ c3;
        out16[12] = v12 ^ c4; out16[13] = v13 ^ c5; out16[14] = v14 ^ c6; out16[15] = v15 ^ c7;
    }

    /// <summary>Replaces <paramref name="cv"/> with the chaining value of compressing one block.</summary>
    [SkipLocalsInit]
    public static void CompressInPlace(uint* cv, byte* block, uint blockLen, ulong counter, uint flags)
    {
        uint* full = stackalloc uint[16];
        Compress(cv, block, blockLen, counter, flags, full);
        Unsafe.CopyBlockUnaligned(cv, full, OutLen);
    }
}
