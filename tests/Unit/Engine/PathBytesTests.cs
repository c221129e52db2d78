using System.Text;
using Bcmr.Engine.Platform.Native;
using CsCheck;

namespace Bcmr.Tests.Engine;

/// <summary>The one-call UTF-8 paths of PathBytes give exactly what the rune-by-rune ones give (which carry names that
/// are not UTF-8 as escaped bytes), for any bytes and any string, and names round-trip to the same bytes.</summary>
public sealed class PathBytesTests
{
    /// <summary>Bytes that are mostly UTF-8 (ASCII, accented letters, emoji), with stray and truncated sequences.</summary>
    private static readonly Gen<byte[]> NameBytes = Gen.OneOf(
        Gen.Byte.Array[0, 40],
        Gen.String.Select(s => Encoding.UTF8.GetBytes(s)),
        Gen.Select(Gen.String, Gen.Byte.Array[0, 3], Gen.Int[0, 20], (string s, byte[] junk, int at) =>
        {
            var b = Encoding.UTF8.GetBytes(s + "é😀");
            at = Math.Min(at, b.Length);
            return (byte[])[.. b[..at], .. junk, .. b[at..]];
        }));

    [Fact]
    public void Decode_equals_the_rune_by_rune_decoding_and_encodes_back_to_the_same_bytes() =>
        NameBytes.Sample(bytes =>
        {
            var name = PathBytes.Decode(bytes);
            Assert.Equal(PathBytes.DecodeEscaped(bytes), name);
            Assert.Equal(bytes, PathBytes.Encode(name));
        }, iter: 20_000);

    [Fact]
    public void Encode_equals_the_rune_by_rune_encoding_for_any_string() =>
        Gen.Select(Gen.String, Gen.Char.Array[0, 4], Gen.Int[0, 20], (s, odd, at) => s.Insert(Math.Min(at, s.Length), new string(odd)))
            .Sample(s => Assert.Equal(PathBytes.EncodeEscaped(s), PathBytes.Encode(s)), iter: 20_000);

    [Fact]
    public void A_byte_that_is_not_UTF8_survives_as_itself_and_lone_surrogates_become_U_FFFD()
    {
        byte[] latin1 = [(byte)'c', 0xE9, (byte)'.', (byte)'t', (byte)'x', (byte)'t'];
        var name = PathBytes.Decode(latin1);
        Assert.Equal("c\uDCE9.txt", name);
        Assert.Equal(latin1, PathBytes.Encode(name));
        Assert.Equal("a\uFFFDb"u8.ToArray(), PathBytes.Encode("a\uD800b"));
        Assert.Equal("x😀"u8.ToArray(), PathBytes.Encode("x\uD83D\uDE00"));
    }
}
