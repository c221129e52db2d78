using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

public class BlockHasherTests
{
    private const int Block = BlockHasher.BlockSize;

    private static void Check(byte[] data, IEnumerable<int> pieces, BlockHasher hasher)
    {
        int offset = 0;
        foreach (int n in pieces)
        {
            hasher.Update(data.AsSpan(offset, n));
            offset += n;
        }
        Assert.Equal(data.Length, offset);
        Assert.Equal(data.Length, hasher.Length);
        byte[] fileHash = hasher.FinalizeBlocks();

        int expectedBlocks = (data.Length + Block - 1) / Block;
        Assert.Equal(expectedBlocks, hasher.BlockHashes.Count);
        for (int i = 0; i < expectedBlocks; i++)
        {
            int start = i * Block;
            byte[] want = Blake3.Hash(data.AsSpan(start, Math.Min(Block, data.Length - start)));
            Assert.True(want.AsSpan().SequenceEqual(hasher.BlockHashes[i]), $"block {i} of {data.Length} bytes");
        }
        Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), Blake3.ToHex(fileHash));
        Assert.Equal(Blake3.ToHex(fileHash), Blake3.ToHex(hasher.FileHash()));
    }

    private static IEnumerable<int> RandomPieces(int length, Random rng)
    {
        for (int done = 0; done < length;)
        {
            // Odd sizes up to a bit over a block, so pieces regularly straddle block boundaries.
            int n = Math.Min(length - done, rng.Next(3) switch { 0 => rng.Next(1, 5000), 1 => rng.Next(1, 300_000), _ => rng.Next(1, Block + 100_000) });
            yield return n;
            done += n;
        }
    }

    [Fact]
    public void Empty_input_has_no_blocks_and_the_empty_hash()
    {
        var h = new BlockHasher();
        Assert.Equal(Blake3.ToHex(Blake3.Hash(ReadOnlySpan<byte>.Empty)), Blake3.ToHex(h.FinalizeBlocks()));
        Assert.Empty(h.BlockHashes);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(Block - 1)]
    [InlineData(Block)]
    [InlineData(Block + 1)]
    [InlineData(2 * Block)]
    [InlineData(3 * Block + 12345)]
    public void Block_and_file_hashes_match_one_shot_hashes_in_one_piece(int length)
    {
        Check(Blake3HasherTests.RandomBytes(length, length), new[] { length }, new BlockHasher());
    }

    [Fact]
    public void Random_piece_sizes_crossing_block_boundaries_give_exact_block_hashes()
    {
        var rng = new Random(2024);
        for (int trial = 0; trial < 6; trial++)
        {
            int length = rng.Next(3) == 0 ? 2 * Block : rng.Next(Block / 2, 4 * Block);
            byte[] data = Blake3HasherTests.RandomBytes(length, trial);
            Check(data, RandomPieces(length, rng).ToList(), new BlockHasher());
        }
    }

    [Fact]
    public void Pieces_ending_exactly_on_block_boundaries()
    {
        byte[] data = Blake3HasherTests.RandomBytes(2 * Block + 10, 11);
        Check(data, new[] { Block - 1, 1, Block, 10 }, new BlockHasher(Blake3Simd.Scalar));
    }

    [Fact]
    public void No_updates_after_finalization()
    {
        var h = new BlockHasher();
        h.Update(new byte[10]);
        h.FinalizeBlocks();
        Assert.Throws<InvalidOperationException>(() => h.Update(new byte[1]));
        Assert.Single(h.BlockHashes);
    }
}
