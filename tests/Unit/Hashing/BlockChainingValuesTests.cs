using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

/// <summary>
/// A striped file's BLAKE3 is merged from the chaining values of its 4 MiB blocks, each hashed by whichever connection
/// carried it: the merge must give exactly the hash of the whole file (and b3sum's), whatever the number of blocks
/// (powers of two and not, a short last block or not) and however the bytes were fed.
/// </summary>
public class BlockChainingValuesTests
{
    private const int Block = BlockLedger.BlockSize;

    public static TheoryData<long> Sizes => new() { 2L * Block, 2L * Block + 1, 3L * Block - 1, 5L * Block + 777, 8L * Block, 9L * Block + 1, 17L * Block - 3 };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void The_root_merged_from_block_values_is_the_files_BLAKE3(long size)
    {
        var data = Bcmr.Tests.Server.ServeSessionTests.Random((int)size, (int)(size % 1000));
        // Fed range by range from different starting blocks, in odd slices, as connections would.
        var values = new byte[]?[(int)((size + Block - 1) / Block)];
        var rng = new Random(1);
        for (long start = 0; start < size; start += 3L * Block)
        {
            long end = Math.Min(size, start + 3L * Block);
            var v = new BlockChainingValues(start);
            for (long pos = start; pos < end;)
            {
                int n = (int)Math.Min(end - pos, rng.Next(1, 3 * 1024 * 1024));
                v.Update(data.AsSpan((int)pos, n));
                pos += n;
            }
            var got = v.Finish();
            for (int i = 0; i < got.Count; i++) values[start / Block + i] = got[i];
        }
        Assert.All(values, Assert.NotNull);
        Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), Blake3.ToHex(BlockChainingValues.FileHash(values.Select(x => x!).ToList())));
    }

    [Fact]
    public void A_block_value_depends_on_its_position_and_length()
    {
        var block = Bcmr.Tests.Server.ServeSessionTests.Random(Block, 5);
        var at0 = new BlockChainingValues(0);
        at0.Update(block);
        var at1 = new BlockChainingValues(Block);
        at1.Update(block);
        var shorter = new BlockChainingValues(0);
        shorter.Update(block.AsSpan(0, Block - 1));
        Assert.NotEqual(at0.Finish()[0], at1.Finish()[0]);
        Assert.NotEqual(at0.Values[0], shorter.Finish()[0]);
    }

    [Fact]
    public void A_misaligned_start_and_a_one_block_merge_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new BlockChainingValues(4096));
        Assert.Throws<ArgumentException>(() => BlockChainingValues.FileHash([new byte[32]]));
    }

    [Fact]
    public void The_merge_agrees_with_b3sum()
    {
        using var dir = new Bcmr.Tests.Infrastructure.TempDir();
        var data = Bcmr.Tests.Server.ServeSessionTests.Random(6 * Block + 12345, 9);
        File.WriteAllBytes(dir["f"], data);
        var v = new BlockChainingValues(0);
        v.Update(data);
        Assert.Equal(Bcmr.Tests.Infrastructure.Tool.Output("b3sum", "--no-names", dir["f"]).Trim(), Blake3.ToHex(BlockChainingValues.FileHash(v.Finish())));
    }
}
