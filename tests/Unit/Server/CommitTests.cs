using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>
/// Caps.Extended: an upload replaces the final name only when the client's verdict (Commit with the BLAKE3 of what it
/// sent) agrees with the server's hash of what it received (issue 16 item 3: before, the server renamed first and the
/// client emptied the remote file on a mismatch, so a failed upload destroyed the previous version); ResumeProof
/// reports what an upload can continue from with the BLAKE3 of all of it (item 2); a bcmr 0.6 client sees an
/// interrupted upload's partial file under the final name, where its own server would have left it (item 11).
/// </summary>
public sealed class CommitTests : IDisposable
{
    private readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();

    private static byte[] Random(int size, int seed) => ServeSessionTests.Random(size, seed);

    private static string B3(ReadOnlySpan<byte> data) => ServeSessionTests.B3(data);

    private ServeConnection Open(byte caps = Caps.Extended)
    {
        var c = ServeConnection.InProcess(_t.Path);
        Assert.Equal(caps & Caps.Extended, c.Handshake(caps).Caps & Caps.Extended);
        return c;
    }

    [Fact]
    public void A_Commit_that_agrees_replaces_the_file()
    {
        File.WriteAllBytes(_t["f.bin"], Random(500, 1));
        using var c = Open();
        var data = Random(5 * 1024 * 1024, 2);
        c.Send(new PutRequest("f.bin", (ulong)data.Length, 0));
        c.SendData(data);
        c.Send(new CommitRequest(B3(data)));
        Assert.Equal(new OkResponse(B3(data)), c.Receive());
        Assert.Equal(data, File.ReadAllBytes(_t["f.bin"]));
        c.Send(new StatRequest("f.bin")); // the verdict was the Put's terminator: the session goes on in step
        Assert.Equal((ulong)data.Length, Assert.IsType<StatResponse>(c.Receive()).Size);
        Trees.AssertNoStagingFiles(_t.Path);
    }

    [Theory]
    [InlineData("wrong")]
    [InlineData("abandon")]
    public void A_Commit_that_disagrees_or_abandons_keeps_the_previous_version(string verdict)
    {
        var old = Random(700, 3);
        File.WriteAllBytes(_t["f.bin"], old);
        using var c = Open();
        var data = Random(6 * 1024 * 1024 + 1, 4);
        c.Send(new PutRequest("f.bin", (ulong)data.Length, 0));
        c.SendData(data);
        c.Send(verdict == "wrong" ? new CommitRequest(B3(old)) : CommitRequest.Abandon);
        var e = Assert.IsType<ErrorResponse>(c.Receive());
        Assert.Contains("f.bin", e.Text);
        Assert.Contains(verdict == "wrong" ? "not committed" : "abandoned by the client", e.Text);
        Assert.Contains("the previous version is unchanged", e.Text);
        Assert.Equal(old, File.ReadAllBytes(_t["f.bin"]));
        Trees.AssertNoStagingFiles(_t.Path);
        c.Send(new StatRequest("f.bin"));
        Assert.Equal((ulong)old.Length, Assert.IsType<StatResponse>(c.Receive()).Size);
    }

    [Fact]
    public void A_resumed_upload_whose_partial_is_not_the_sources_prefix_is_not_committed()
    {
        var old = Random(900, 5);
        File.WriteAllBytes(_t["f.bin"], old);
        var source = Random(6 * 1024 * 1024, 6);
        var stale = Random(5 * 1024 * 1024, 7); // a partial of some other version
        File.WriteAllBytes(Temporaries.PartialPath(_t["f.bin"]), stale);
        using var c = Open();
        c.Send(new PutRequest("f.bin", (ulong)source.Length, (ulong)stale.Length));
        c.SendData(source.AsSpan(stale.Length));
        c.Send(new CommitRequest(B3(source)));
        Assert.Contains("not committed", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        Assert.Equal(old, File.ReadAllBytes(_t["f.bin"]));
    }

    [Fact]
    public void A_refused_Put_and_its_Commit_leave_the_session_in_step()
    {
        Directory.CreateDirectory(_t["dir"]);
        using var c = Open();
        var data = Random(1000, 8);
        c.Send(new PutRequest("dir", (ulong)data.Length, 0));
        c.SendData(data);
        c.Send(new CommitRequest(B3(data)));
        Assert.Contains("Is a directory", Assert.IsType<ErrorResponse>(c.Receive()).Text);
        c.Send(new StatRequest("dir"));
        Assert.True(Assert.IsType<StatResponse>(c.Receive()).IsDir);
    }

    [Fact]
    public void ResumeProof_reports_the_partial_or_the_file_with_the_hash_of_all_of_it()
    {
        var data = Random(3 * 1024 * 1024, 9);
        using var c = Open();
        c.Send(new ResumeProofRequest("f.bin", 10));
        Assert.Equal(new ResumeProofResponse(ResumeProofResponse.Nothing, 0, 0, null), c.Receive());

        File.WriteAllBytes(_t["f.bin"], data);
        c.Send(new ResumeProofRequest("f.bin", (ulong)data.Length));
        var final = Assert.IsType<ResumeProofResponse>(c.Receive());
        Assert.Equal((ResumeProofResponse.Final, (ulong)data.Length, B3(data)), (final.Held, final.Size, final.Hash));

        File.WriteAllBytes(Temporaries.PartialPath(_t["f.bin"]), data[..1000]);
        c.Send(new ResumeProofRequest("f.bin", (ulong)data.Length));
        var partial = Assert.IsType<ResumeProofResponse>(c.Receive());
        Assert.Equal((ResumeProofResponse.Partial, 1000UL, B3(data.AsSpan(0, 1000))), (partial.Held, partial.Size, partial.Hash));

        c.Send(new ResumeProofRequest("f.bin", 999)); // holds more than the source: no hash, never continued
        Assert.Null(Assert.IsType<ResumeProofResponse>(c.Receive()).Hash);
    }

    [Fact]
    public void A_bcmr_06_client_sees_an_interrupted_upload_under_its_final_name_and_continues_it()
    {
        var data = Random(6 * 1024 * 1024, 10);
        int cut = 5 * 1024 * 1024;
        File.WriteAllBytes(Temporaries.PartialPath(_t["f.bin"]), data[..cut]);
        using var c = Open(caps: 0);
        // What bcmr 0.6's client does to resume an upload: Stat, Hash of the prefix, Put at the offset.
        c.Send(new StatRequest("f.bin"));
        Assert.Equal((ulong)cut, Assert.IsType<StatResponse>(c.Receive()).Size);
        c.Send(new HashRequest("f.bin", 0, (ulong)cut));
        Assert.Equal(B3(data.AsSpan(0, cut)), Assert.IsType<HashResponse>(c.Receive()).Hash);
        c.Send(new PutRequest("f.bin", (ulong)data.Length, (ulong)cut));
        c.SendData(data.AsSpan(cut));
        c.Send(Done.Instance);
        Assert.Equal(new OkResponse(B3(data)), c.Receive());
        Assert.Equal(data, File.ReadAllBytes(_t["f.bin"]));
        Assert.False(File.Exists(Temporaries.PartialPath(_t["f.bin"])));
    }

    [Fact]
    public void Our_clients_get_the_error_code_beside_the_text_and_bcmr_06_clients_the_text_alone()
    {
        // Issue 15: the client classifies by code, not by wording (which is why it used to need the server's RootJail).
        Directory.CreateDirectory(_t["dir"]);
        using (var c = Open())
        {
            c.Send(new StatRequest("../outside"));
            var e = Assert.IsType<ErrorResponse>(c.Receive());
            Assert.Equal(BcmrErrorCode.OutsideRoot, e.Code);
            c.Send(new HashRequest("missing", 0, null));
            Assert.Equal(BcmrErrorCode.NotFound, Assert.IsType<ErrorResponse>(c.Receive()).Code);
            c.Send(new HashRequest("dir", 0, null));
            Assert.Equal(BcmrErrorCode.IsADirectory, Assert.IsType<ErrorResponse>(c.Receive()).Code);
        }
        using (var legacy = Open(caps: 0))
        {
            legacy.Send(new StatRequest("../outside"));
            var e = Assert.IsType<ErrorResponse>(legacy.Receive());
            Assert.Null(e.Code);
            Assert.Equal(BcmrErrorCode.OutsideRoot, WireErrors.CodeOf(e)); // still recognised by its wording
        }
    }
}
