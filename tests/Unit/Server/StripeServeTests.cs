using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>
/// The server's side of striping, one session per connection as over ssh: PutChunked writes into the destination's
/// partial file (never the final name) and answers with the chaining values of what it wrote; two sessions write
/// their ranges side by side; Assemble renames only a partial that holds the whole size; GetChunked sends a range with
/// the values of what it read; BlockHashes lists what a resume can compare. A bcmr 0.6 client keeps its semantics.
/// </summary>
public sealed class StripeServeTests : IDisposable
{
    private const int Block = BlockLedger.BlockSize;
    private readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();

    private ServeConnection Open(byte caps = Caps.Extended)
    {
        var c = ServeConnection.InProcess(_t.Path);
        c.Handshake(caps);
        return c;
    }

    private static byte[] Values(ReadOnlySpan<byte> data, long offset)
    {
        var v = new BlockChainingValues(offset);
        v.Update(data);
        return v.Finish().SelectMany(x => x).ToArray();
    }

    [Fact]
    public void Two_sessions_write_ranges_into_the_partial_file_and_Assemble_makes_it_the_file()
    {
        var data = ServeSessionTests.Random(5 * Block + 99, 1);
        File.WriteAllBytes(_t["f.bin"], [1, 2, 3]); // the previous version stays until Assemble
        using var a = Open();
        using var b = Open();
        // Out of order: the second range first, on the other session.
        b.Send(new PutChunkedRequest("f.bin", 2 * Block, (ulong)(data.Length - 2 * Block)));
        b.SendData(data.AsSpan(2 * Block));
        Assert.Equal(new RangeHashes(2 * Block, Values(data.AsSpan(2 * Block), 2 * Block)), b.Receive());
        Assert.Equal([1, 2, 3], File.ReadAllBytes(_t["f.bin"]));

        // Assemble before the first range has arrived: the partial is as long as the file, but a hole is not data,
        // so the client never asks; the server only renames what the client proved. Here: the first range, then Assemble.
        a.Send(new PutChunkedRequest("f.bin", 0, 2 * Block));
        a.SendData(data.AsSpan(0, 2 * Block));
        Assert.Equal(new RangeHashes(0, Values(data.AsSpan(0, 2 * Block), 0)), a.Receive());
        a.Send(new AssembleRequest("f.bin", (ulong)data.Length));
        Assert.Equal(OkResponse.Empty, a.Receive());
        Assert.Equal(data, File.ReadAllBytes(_t["f.bin"]));
        Assert.False(File.Exists(Temporaries.PartialPath(_t["f.bin"])));
        Trees.AssertNoStagingFiles(_t.Path);
    }

    [Fact]
    public void Assemble_refuses_a_partial_shorter_than_the_size_and_one_that_does_not_exist()
    {
        using var c = Open();
        c.Send(new AssembleRequest("none.bin", 10));
        Assert.Contains("no striped upload", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        var data = ServeSessionTests.Random(Block, 2);
        c.Send(new PutChunkedRequest("f.bin", 0, (ulong)data.Length));
        c.SendData(data);
        Assert.IsType<RangeHashes>(c.Receive());
        c.Send(new AssembleRequest("f.bin", (ulong)data.Length + 1));
        Assert.Contains("fewer than", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.False(File.Exists(_t["f.bin"]));
    }

    [Fact]
    public void A_misaligned_range_is_refused_and_its_data_skipped_in_step()
    {
        using var c = Open();
        c.Send(new PutChunkedRequest("f.bin", 4096, 10));
        c.SendData(new byte[10]);
        Assert.Contains("4 MiB boundary", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.Send(new StatRequest("f.bin"));
        Assert.IsType<ErrorResponse>(c.Receive()); // still in step: the Stat is answered
        Assert.False(File.Exists(Temporaries.PartialPath(_t["f.bin"])));
    }

    [Fact]
    public void A_range_outside_the_root_is_refused()
    {
        using var c = Open();
        c.Send(new PutChunkedRequest("../../escape.bin", 0, 3));
        c.SendData(new byte[3]);
        Assert.IsType<ErrorResponse>(c.Receive());
        c.Send(new AssembleRequest("../../escape.bin", 3));
        Assert.IsType<ErrorResponse>(c.Receive());
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(_t.Path))!, "escape.bin")));
    }

    [Fact]
    public void GetChunked_sends_the_range_with_the_values_of_what_it_read()
    {
        var data = ServeSessionTests.Random(3 * Block + 5, 3);
        File.WriteAllBytes(_t["f.bin"], data);
        using var c = Open();
        c.Send(new GetChunkedRequest("f.bin", Block, 2 * Block + 5));
        var (bytes, end) = c.ReceiveGet();
        Assert.Equal(data.AsSpan(Block).ToArray(), bytes);
        Assert.Equal(new RangeHashes(Block, Values(data.AsSpan(Block), Block)), end);

        // A range past the end: what exists, then an Error naming the file.
        c.Send(new GetChunkedRequest("f.bin", 3 * Block, Block));
        var (tail, error) = c.ReceiveGet();
        Assert.Equal(5, tail.Length);
        Assert.Contains("f.bin", Assert.IsType<ErrorResponse>(error).Text);
    }

    [Fact]
    public void BlockHashes_lists_the_partial_upload_holes_included_else_the_file()
    {
        var data = ServeSessionTests.Random(4 * Block, 4);
        using var c = Open();
        c.Send(new BlockHashesRequest("f.bin", BlockHashesRequest.Upload));
        Assert.Equal(new BlockHashesResponse(0, 0, []), c.Receive());
        // Only block 2 written: blocks 0, 1 are a hole, block 3 missing.
        c.Send(new PutChunkedRequest("f.bin", 2 * Block, Block));
        c.SendData(data.AsSpan(2 * Block, Block));
        Assert.IsType<RangeHashes>(c.Receive());
        c.Send(new BlockHashesRequest("f.bin", BlockHashesRequest.Upload));
        var r = Assert.IsType<BlockHashesResponse>(c.Receive());
        Assert.Equal(1, r.Held);
        Assert.Equal((ulong)(3 * Block), r.Size);
        var ours = Values(data, 0);
        Assert.Equal(ours.AsSpan(2 * 32, 32).ToArray(), r.Values.AsSpan(2 * 32, 32).ToArray());
        Assert.NotEqual(ours.AsSpan(0, 32).ToArray(), r.Values.AsSpan(0, 32).ToArray());

        File.WriteAllBytes(_t["g.bin"], data);
        c.Send(new BlockHashesRequest("g.bin", BlockHashesRequest.File));
        Assert.Equal(new BlockHashesResponse(2, (ulong)data.Length, ours), c.Receive());
    }

    [Fact]
    public void A_bcmr_06_client_gets_its_semantics_in_place_after_Truncate_and_no_extended_message()
    {
        var data = ServeSessionTests.Random(Block + 10, 5);
        using var c = Open(caps: 0);
        c.Send(new TruncateRequest("f.bin", (ulong)data.Length));
        Assert.Equal(OkResponse.Empty, c.Receive());
        c.Send(new PutChunkedRequest("f.bin", 7, (ulong)(data.Length - 7)));
        c.SendData(data.AsSpan(7));
        Assert.Equal(OkResponse.Empty, c.Receive());
        c.Send(new PutChunkedRequest("f.bin", 0, 7));
        c.SendData(data.AsSpan(0, 7));
        Assert.Equal(OkResponse.Empty, c.Receive());
        Assert.Equal(data, File.ReadAllBytes(_t["f.bin"]));
        c.Send(new GetChunkedRequest("f.bin", 3, 4));
        var (bytes, end) = c.ReceiveGet();
        Assert.Equal(data.AsSpan(3, 4).ToArray(), bytes);
        Assert.Equal(OkResponse.Empty, end);
        c.Send(new AssembleRequest("f.bin", 1));
        Assert.IsType<ErrorResponse>(c.Receive());
    }
}
