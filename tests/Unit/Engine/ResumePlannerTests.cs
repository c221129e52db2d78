using Bcmr.Engine.Local;

namespace Bcmr.Tests.Engine;

/// <summary>The resume rules every direction shares (<see cref="ResumePlanner"/>): what held bytes are worth before
/// and after proof.</summary>
public class ResumePlannerTests
{
    private const long Block = 4L * 1024 * 1024;
    private const long Size = 10 * Block + 123;
    private static readonly ResumeMode[] Modes = [ResumeMode.Resume, ResumeMode.Strict, ResumeMode.Append];

    [Fact]
    public void Nothing_held_is_a_fresh_copy_in_every_mode()
    {
        foreach (var mode in Modes)
        {
            Assert.Equal(ResumeDecision.Fresh, ResumePlanner.Triage(mode, Size, new HeldCopy(0, true), "x")!.Value.Decision);
            Assert.Equal(ResumeDecision.Fresh, ResumePlanner.Triage(mode, Size, new HeldCopy(0, false), "x")!.Value.Decision);
        }
    }

    [Fact]
    public void More_than_the_source_is_never_kept_whatever_the_mode_or_the_modification_time()
    {
        foreach (var mode in Modes)
            foreach (var final in new[] { true, false })
            {
                var v = ResumePlanner.Triage(mode, Size, new HeldCopy(Size + 1, final, SameMtime: true), "the remote file")!.Value;
                Assert.Equal(ResumeDecision.StartedOver, v.Decision);
                Assert.Equal(0, v.Offset);
                Assert.Equal($"the remote file is longer than the source ({Size + 1} > {Size} bytes); copied again", v.Note);
            }
    }

    [Fact]
    public void A_shorter_final_file_is_copied_again_where_the_writer_cannot_continue_it_and_continued_where_it_can()
    {
        var held = new HeldCopy(3 * Block, UnderFinalName: true);
        foreach (var mode in Modes)
        {
            var v = ResumePlanner.Triage(mode, Size, held, "the local file", canContinueFinal: false)!.Value;
            Assert.Equal(ResumeDecision.StartedOver, v.Decision);
            Assert.Contains("shorter than the source", v.Note);
        }
        var append = ResumePlanner.Triage(ResumeMode.Append, Size, held, "the remote file")!.Value;
        Assert.Equal((ResumeDecision.Resumed, 3 * Block, "size"), (append.Decision, append.Offset, append.Compared));
        // -C and -s want proof of it.
        Assert.Null(ResumePlanner.Triage(ResumeMode.Resume, Size, held, "the remote file"));
        Assert.Null(ResumePlanner.Triage(ResumeMode.Strict, Size, held, "the remote file"));
    }

    [Fact]
    public void Append_trusts_the_length_and_only_a_final_file_of_full_size_is_complete()
    {
        var complete = ResumePlanner.Triage(ResumeMode.Append, Size, new HeldCopy(Size, true), "destination")!.Value;
        Assert.True(complete.Complete);
        Assert.Equal("size", complete.Compared);
        Assert.Contains("-a takes it as complete", complete.Note);

        // A partial file of the full size still has to be renamed into place: continued with nothing left to move.
        var partial = ResumePlanner.Triage(ResumeMode.Append, Size, new HeldCopy(Size, false), "p")!.Value;
        Assert.Equal((ResumeDecision.Resumed, Size), (partial.Decision, partial.Offset));

        var shorter = ResumePlanner.Triage(ResumeMode.Append, Size, new HeldCopy(5 * Block + 7, false), "p")!.Value;
        Assert.Equal((ResumeDecision.Resumed, 5 * Block + 7, "size"), (shorter.Decision, shorter.Offset, shorter.Compared));
    }

    [Fact]
    public void Size_and_modification_time_complete_a_final_file_under_resume_only()
    {
        var same = new HeldCopy(Size, UnderFinalName: true, SameMtime: true);
        var v = ResumePlanner.Triage(ResumeMode.Resume, Size, same, "destination")!.Value;
        Assert.True(v.Complete);
        Assert.Equal("size+mtime", v.Compared);
        // -s proves by hash whatever the time says; a partial file's time says nothing; another time needs proof.
        Assert.Null(ResumePlanner.Triage(ResumeMode.Strict, Size, same, "destination"));
        Assert.Null(ResumePlanner.Triage(ResumeMode.Resume, Size, same with { UnderFinalName = false }, "p"));
        Assert.Null(ResumePlanner.Triage(ResumeMode.Resume, Size, same with { SameMtime = false }, "destination"));
    }

    [Fact]
    public void A_proven_prefix_is_kept_and_nothing_proven_starts_over_with_the_reason()
    {
        var partial = new HeldCopy(6 * Block, false);
        var kept = ResumePlanner.FromPrefix(Size, partial, 6 * Block, "blake3-prefix", "differs", note: "n");
        Assert.Equal((ResumeDecision.Resumed, 6 * Block, "blake3-prefix", "n"), (kept.Decision, kept.Offset, kept.Compared, kept.Note));

        var none = ResumePlanner.FromPrefix(Size, partial, 0, "blake3-prefix", "differs");
        Assert.Equal((ResumeDecision.StartedOver, 0L, "blake3-prefix", "differs"), (none.Decision, none.Offset, none.Compared, none.Note));

        var whole = ResumePlanner.FromPrefix(Size, new HeldCopy(Size, true), Size, "blake3", "differs");
        Assert.True(whole.Complete);
        var wholePartial = ResumePlanner.FromPrefix(Size, new HeldCopy(Size, false), Size, "blake3", "differs");
        Assert.Equal((ResumeDecision.Resumed, Size), (wholePartial.Decision, wholePartial.Offset));
        // Proof never extends past the source.
        Assert.Equal(Size, ResumePlanner.FromPrefix(Size, new HeldCopy(Size, false), Size + Block, "blake3", "x").Offset);
    }

    [Fact]
    public void Proven_blocks_with_holes_are_kept_in_a_partial_file_and_a_final_file_is_complete_or_copied_again()
    {
        byte[] V(int i) => Enumerable.Repeat((byte)i, 32).ToArray();
        var holes = new byte[]?[] { V(0), null, V(2), null, V(4) };
        var partial = ResumePlanner.FromBlocks(Size, new HeldCopy(5 * Block, false), holes, "the local partial file");
        Assert.Equal(ResumeDecision.Resumed, partial.Decision);
        Assert.Same(holes, partial.KeptBlocks);
        Assert.Equal("blake3-blocks", partial.Compared);

        var none = ResumePlanner.FromBlocks(Size, new HeldCopy(5 * Block, false), new byte[]?[5], "the local partial file");
        Assert.Equal(ResumeDecision.StartedOver, none.Decision);
        Assert.Null(none.KeptBlocks);
        Assert.Contains("no 4 MiB block of the local partial file matches", none.Note);

        var all = Enumerable.Range(0, 11).Select(V).ToArray<byte[]?>();
        Assert.True(ResumePlanner.FromBlocks(Size, new HeldCopy(Size, true), all, "the remote file").Complete);
        all[3] = null;
        var differs = ResumePlanner.FromBlocks(Size, new HeldCopy(Size, true), all, "the remote file");
        Assert.Equal(ResumeDecision.StartedOver, differs.Decision);
        Assert.Null(differs.KeptBlocks); // the blocks of a final file are never kept: striped ranges go to the partial file
    }
}
