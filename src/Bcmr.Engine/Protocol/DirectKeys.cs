using System.Security.Cryptography;
using System.Text;

namespace Bcmr.Engine.Protocol;

/// <summary>
/// The keys of one direct connection (<c>--direct direct</c>), derived from the 32-byte secret the server handed out
/// over ssh (DirectChannelReady) and the 32-byte challenge the server sent on that TCP connection (AuthChallenge):
/// HKDF-SHA256 with the challenge as salt, one key per purpose (the info string names it). So a key is never used for
/// two things (bcmr 0.6 used its one secret as both MAC and cipher key), and every connection has keys of its own:
/// a squatter's connection, or a second try, never shares a nonce space with the real one. Dispose wipes the keys
/// (the record streams hold their own copies inside AesGcm once made).
/// </summary>
public sealed class DirectKeys : IDisposable
{
    /// <summary>The length of the secret, the challenge, each key and the authenticator.</summary>
    public const int Size = 32;

    private static readonly byte[] AuthInfo = Encoding.ASCII.GetBytes("bcmr direct v2 auth");
    private static readonly byte[] ClientToServerInfo = Encoding.ASCII.GetBytes("bcmr direct v2 client-to-server");
    private static readonly byte[] ServerToClientInfo = Encoding.ASCII.GetBytes("bcmr direct v2 server-to-client");
    private static readonly byte[] ClientProofLabel = Encoding.ASCII.GetBytes("bcmr direct v2 client proof");

    private DirectKeys(byte[] auth, byte[] clientToServer, byte[] serverToClient)
    {
        AuthKey = auth;
        ClientToServer = clientToServer;
        ServerToClient = serverToClient;
    }

    /// <summary>The key of the client's proof that it holds the secret (AuthHello's MAC).</summary>
    internal byte[] AuthKey { get; }

    /// <summary>AES-256-GCM key of the records the client sends.</summary>
    internal byte[] ClientToServer { get; }

    /// <summary>AES-256-GCM key of the records the server sends.</summary>
    internal byte[] ServerToClient { get; }

    /// <summary>A fresh secret for one rendezvous (or a challenge): 32 bytes from the system's CSPRNG.</summary>
    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(Size);

    /// <summary>The keys for <paramref name="secret"/> on the connection that was sent <paramref name="challenge"/>.</summary>
    public static DirectKeys Derive(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> challenge)
    {
        if (secret.Length != Size) throw new ArgumentException("the secret must be 32 bytes", nameof(secret));
        if (challenge.Length != Size) throw new ArgumentException("the challenge must be 32 bytes", nameof(challenge));
        var prk = new byte[Size];
        HKDF.Extract(HashAlgorithmName.SHA256, secret, challenge, prk);
        byte[] Expand(byte[] info)
        {
            var key = new byte[Size];
            HKDF.Expand(HashAlgorithmName.SHA256, prk, key, info);
            return key;
        }
        var keys = new DirectKeys(Expand(AuthInfo), Expand(ClientToServerInfo), Expand(ServerToClientInfo));
        CryptographicOperations.ZeroMemory(prk);
        return keys;
    }

    /// <summary>What the client sends in AuthHello: HMAC-SHA256 under <see cref="AuthKey"/> of a fixed label and the
    /// challenge. Only a holder of the secret can compute it; it says nothing about the cipher keys.</summary>
    public byte[] ClientProof(ReadOnlySpan<byte> challenge)
    {
        var message = new byte[ClientProofLabel.Length + challenge.Length];
        ClientProofLabel.CopyTo(message, 0);
        challenge.CopyTo(message.AsSpan(ClientProofLabel.Length));
        return HMACSHA256.HashData(AuthKey, message);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(AuthKey);
        CryptographicOperations.ZeroMemory(ClientToServer);
        CryptographicOperations.ZeroMemory(ServerToClient);
    }

    /// <summary>True when <paramref name="proof"/> is the client's proof for <paramref name="challenge"/>, compared in
    /// constant time.</summary>
    public bool IsClientProof(ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> proof) =>
        proof.Length == Size && CryptographicOperations.FixedTimeEquals(ClientProof(challenge), proof);
}
