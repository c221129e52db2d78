// TEMPORARY: stands in for the managed BLAKE3 (issue 5, branch blake3) until it is merged. Same public API.
using System.Security.Cryptography;

namespace Bcmr.Engine.Hashing;

public sealed class Blake3Hasher
{
    private readonly IncrementalHash _h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    public static Blake3Hasher Create() => new();
    public void Update(ReadOnlySpan<byte> data) => _h.AppendData(data);
    public byte[] Finalize() => _h.GetCurrentHash();
    public void Reset() => _h.GetHashAndReset();
}

public static class Blake3
{
    public static byte[] Hash(ReadOnlySpan<byte> data) => SHA256.HashData(data);
    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
