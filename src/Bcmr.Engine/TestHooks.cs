using Bcmr.Engine.Platform;
using Microsoft.Win32.SafeHandles;

namespace Bcmr.Engine;

/// <summary>
/// Faults that tests inject into the real program to reach failure paths no honest input reaches on demand. The one
/// place such hooks live: internal, so only the assemblies named in InternalsVisibleTo can set them (the unit tests
/// and tests/FaultHost, a test-only program that wraps the CLI's Main). Nothing in the shipped bcmr or the module
/// sets them, and nothing reads them from the environment: a variable in a user's environment must never be able to
/// damage a copy.
/// </summary>
internal static class TestHooks
{
    /// <summary>Flip one byte of a staged copy whose destination path contains this substring, after the data is
    /// written and before verification reads it back. Null: off.</summary>
    internal static string? CorruptStagedWhenPathContains { get; set; }

    /// <summary>Capabilities a serve of this process may offer, at most (ANDed with what it would offer): a peer
    /// without <see cref="Protocol.Caps.Extended"/> is what a bcmr 0.6 server looks like to a client. Null: off.</summary>
    internal static byte? ServeCapabilityMask { get; set; }

    /// <summary>How long a staging file must lie untouched and unlocked before a sweep takes it for a dead copy's
    /// (10 s when null): lets a test find the one a killed copy left without waiting for it to age.</summary>
    internal static TimeSpan? StaleTemporaryAfter { get; set; }

    internal static void MaybeCorruptStaged(SafeFileHandle h, string dst, long size) => MaybeCorruptStaged(h, dst, size, 0, size);

    /// <summary>The same for a read-back of bytes [from, from + count) only: the byte flipped (the middle of the
    /// file) is flipped when this range holds it, so a read-back block by block meets it once.</summary>
    internal static void MaybeCorruptStaged(SafeFileHandle h, string dst, long size, long from, long count)
    {
        var match = CorruptStagedWhenPathContains;
        if (match is null || size == 0 || !dst.Contains(match, StringComparison.Ordinal)) return;
        long at = size / 2;
        if (at < from || at >= from + count) return;
        Span<byte> one = stackalloc byte[1];
        Fs.ReadFull(h, one, at, dst);
        one[0] ^= 0xFF;
        Fs.Write(h, one, at, dst);
    }
}
