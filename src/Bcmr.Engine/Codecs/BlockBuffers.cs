using System.Buffers;

namespace Bcmr.Engine.Codecs;

/// <summary>
/// The pool every block-sized buffer (4 MiB blocks, their compressed scratch, large frames) comes from. The shared
/// ArrayPool keeps up to 32 arrays per size per core and lets go of them only under memory pressure: a PowerShell
/// process that ran many transfers held 768 MiB of 4 and 8 MiB arrays it would never use again (measured by the
/// protocol fuzz test). This one keeps at most 8 of each size class; more at once are allocated and left to the GC.
/// </summary>
internal static class BlockBuffers
{
    public static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(maxArrayLength: 16 * 1024 * 1024, maxArraysPerBucket: 8);
}
