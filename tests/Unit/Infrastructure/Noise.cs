using System.Buffers.Binary;

namespace Bcmr.Tests;

/// <summary>
/// Deterministic incompressible bytes for test files, from a seed. A seeded <see cref="Random"/> runs its
/// compatibility generator at about 120 MB/s here, so a test writing 1 GiB spent 8 s making bytes; SplitMix64
/// fills at several GB/s.
/// </summary>
public sealed class Noise(int seed)
{
    private ulong _state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ 0xD1B54A32D192ED03UL;

    public void Fill(Span<byte> buffer)
    {
        int i = 0;
        for (; i + 8 <= buffer.Length; i += 8) BinaryPrimitives.WriteUInt64LittleEndian(buffer[i..], Next());
        if (i < buffer.Length)
        {
            Span<byte> last = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(last, Next());
            last[..(buffer.Length - i)].CopyTo(buffer[i..]);
        }
    }

    private ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
