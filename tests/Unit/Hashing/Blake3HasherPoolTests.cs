using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

/// <summary>The spare hashers that per-file code rents and gives back (Blake3Hasher.Rent/Return). The pool is shared
/// by the whole process, so these tests assert what must hold whoever else rents at the same time.</summary>
public class Blake3HasherPoolTests
{
    private static readonly byte[] Data = Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7 + 3)).ToArray();

    [Fact]
    public void A_rented_hasher_starts_clean_even_when_the_last_user_left_it_mid_input()
    {
        for (int i = 0; i < 50; i++)
        {
            var dirty = Blake3Hasher.Rent();
            dirty.Update(Data.AsSpan(0, 1 + i * 997));
            Blake3Hasher.Return(dirty);
            var h = Blake3Hasher.Rent();
            h.Update(Data);
            Assert.Equal(Blake3.Hash(Data), h.Finalize());
            Blake3Hasher.Return(h);
        }
    }

    [Fact]
    public void A_hasher_given_back_twice_is_never_rented_to_two_users_at_once()
    {
        for (int i = 0; i < 50; i++)
        {
            var h = Blake3Hasher.Rent();
            Blake3Hasher.Return(h);
            Blake3Hasher.Return(h);
            var a = Blake3Hasher.Rent();
            var b = Blake3Hasher.Rent();
            Assert.NotSame(a, b);
            Blake3Hasher.Return(a);
            Blake3Hasher.Return(b);
        }
    }

    [Fact]
    public void Keyed_and_derive_key_hashers_are_not_kept_for_plain_hashing()
    {
        for (int i = 0; i < 50; i++)
        {
            Blake3Hasher.Return(Blake3Hasher.CreateKeyed(new byte[32]));
            Blake3Hasher.Return(Blake3Hasher.CreateDeriveKey("bcmr pool test"));
            var h = Blake3Hasher.Rent();
            h.Update(Data);
            Assert.Equal(Blake3.Hash(Data), h.Finalize());
            Blake3Hasher.Return(h);
        }
    }
}
