extern alias cmdlets;
using System.Management.Automation;
using System.Text.RegularExpressions;
using Bcmr.Engine;
using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;
using cmdlets::Bcmr.Cmdlets.Internal;

namespace Bcmr.Tests.Module;

/// <summary>The cmdlets' logic without PowerShell around it: destination parsing, request building, wildcard
/// excludes, error categories, progress throttling and the queue pump.</summary>
public class LogicTests
{
    private static readonly HashSet<string> Drives = new(StringComparer.OrdinalIgnoreCase) { "Temp", "build01", "Data" };
    private static bool IsDrive(string name) => Drives.Contains(name);

    [Theory]
    [InlineData("build02:/data", true)]
    [InlineData("user@build02:/data/x", true)]
    [InlineData("user@build02:", true)]
    [InlineData("[::1]:/srv", true)]
    [InlineData("[fe80::1%eth0]:rel/path", true)]
    [InlineData("host:relative/path", true)]
    [InlineData("build01:/data", false)]     // names an existing PSDrive: local
    [InlineData("Temp:/x", false)]
    [InlineData("data:/x", false)]           // drive names are case-insensitive
    [InlineData("C:\\dst", false)]           // a Windows drive letter, even where it does not exist
    [InlineData("c:dst", false)]
    [InlineData("/abs/path", false)]
    [InlineData("./a:b", false)]             // colon after a separator
    [InlineData("dir\\a:b", false)]
    [InlineData("relative", false)]
    [InlineData(":leading", false)]
    [InlineData("FileSystem::/tmp/x", false)] // provider-qualified
    [InlineData("Microsoft.PowerShell.Core\\FileSystem::/tmp/x", false)]
    [InlineData("user@:path", false)]
    [InlineData("@host:path", false)]
    [InlineData("", false)]
    public void Remote_or_local(string text, bool remote) => Assert.Equal(remote, RemotePath.IsRemote(text, IsDrive));

    [Theory]
    [InlineData("*.log", "src/a/b.log", true)]
    [InlineData("*.log", "src/b.LOG", true)]        // PowerShell wildcards ignore case
    [InlineData("*.log", "src/b.log.txt", false)]
    [InlineData("*.log", "src/logs/b.txt", false)]
    [InlineData("node_modules", "src/node_modules", true)]
    [InlineData("node_modules", "src/my_node_modules", false)]
    [InlineData("a?c", "src/abc", true)]
    [InlineData("a?c", "src/a/c", false)]           // ? never matches a separator
    [InlineData("[ab]*.txt", "src/b1.txt", true)]
    [InlineData("[ab]*.txt", "src/c1.txt", false)]
    [InlineData("file[1].txt", "src/file1.txt", true)]
    [InlineData("file`[1`].txt", "src/file[1].txt", true)]
    [InlineData("file`[1`].txt", "src/file1.txt", false)]
    [InlineData("a.b", "src/axb", false)]           // a dot is a dot
    [InlineData("(x)+", "src/(x)+", true)]          // regex syntax is literal
    public void Exclude_wildcards_match_whole_names(string wildcard, string relativePath, bool excluded) =>
        Assert.Equal(excluded, new Regex(Bcmr.Engine.Local.Wildcard.PowerShellToRegex(wildcard), RegexOptions.CultureInvariant).IsMatch(relativePath));

    [Fact]
    public void Options_become_the_request_the_engine_validates()
    {
        var options = new CopyOptions
        {
            Recurse = true, Force = true, Preserve = true, Exclude = ["*.tmp"], Verify = true, Sync = true, Jobs = 3,
            Fast = true, SshCommand = "ssh -p 2222", RemoteCommand = "pwsh -c Start-BcmrServe", NoFallback = true,
            Compress = "ZSTD", BandwidthLimit = 1_000_000,
        };
        var r = options.ToRequest(["/a", "host:/b"], "/dst");
        Assert.Equal(["/a", "host:/b"], r.Sources);
        Assert.Equal("/dst", r.Destination);
        Assert.True(r.Recursive && r.Force && r.Preserve && r.Verify && r.Sync && r.Fast && r.NoFallback);
        Assert.Equal(3, r.Jobs);
        Assert.Equal("ssh -p 2222", r.SshCommand);
        Assert.Equal("pwsh -c Start-BcmrServe", r.RemoteCommand);
        Assert.Equal("zstd", r.Compress);
        Assert.Equal(1_000_000, r.BandwidthLimit);
        Assert.Equal(ResumeMode.None, r.Resume);
        Assert.Equal(TimeSpan.FromMilliseconds(200), r.ProgressInterval);
        Assert.Matches(new Regex(Assert.Single(r.Excludes)), "src/x.tmp");
        Assert.False(r.Move);

        Action<string> warn = _ => { };
        Assert.Same(warn, options.ToRequest(["/a"], "/b", warn).Warn);

        var plain = new CopyOptions().ToRequest(["/a"], "/b");
        Assert.Equal(CopyRequest.DefaultJobs, plain.Jobs);
        Assert.Null(plain.SshCommand);
        Assert.Null(plain.RemoteCommand);
        Assert.Null(plain.Compress);
        Assert.Null(plain.Warn);
        Assert.Empty(plain.Excludes);
        Assert.False(plain.Recursive || plain.Force || plain.Verify || plain.SkipUnchanged);
        Assert.True(plain.KeepTimes); // as Copy-Item
        Assert.True(plain.CreateMissingDestination);
        Assert.True(new CopyOptions { SkipUnchanged = true }.ToRequest(["/a"], "/b").SkipUnchanged);
        Assert.Null(new CopyOptions { SshCommand = "" }.ToRequest(["/a"], "/b").SshCommand);
    }

    [Theory]
    [InlineData(false, false, false, ResumeMode.None)]
    [InlineData(true, false, false, ResumeMode.Resume)]
    [InlineData(false, false, true, ResumeMode.Append)]
    [InlineData(true, true, true, ResumeMode.Strict)]  // the strongest proof asked for wins, as with bcmr -C -s -a
    [InlineData(true, false, true, ResumeMode.Append)]
    public void Resume_switches(bool resume, bool strict, bool append, ResumeMode expected) =>
        Assert.Equal(expected, new CopyOptions { Resume = resume, Strict = strict, Append = append }.ToRequest(["/a"], "/b").Resume);

    [Theory]
    [InlineData(BcmrErrorCode.NotFound, ErrorCategory.ObjectNotFound)]
    [InlineData(BcmrErrorCode.PermissionDenied, ErrorCategory.PermissionDenied)]
    [InlineData(BcmrErrorCode.AlreadyExists, ErrorCategory.ResourceExists)]
    [InlineData(BcmrErrorCode.OutsideRoot, ErrorCategory.SecurityError)]
    [InlineData(BcmrErrorCode.VerifyMismatch, ErrorCategory.InvalidData)]
    [InlineData(BcmrErrorCode.CorruptData, ErrorCategory.InvalidData)]
    [InlineData(BcmrErrorCode.ConnectionFailed, ErrorCategory.ConnectionError)]
    [InlineData(BcmrErrorCode.DiskFull, ErrorCategory.WriteError)]
    [InlineData(BcmrErrorCode.IoError, ErrorCategory.WriteError)]
    [InlineData(BcmrErrorCode.ReadOnlyFileSystem, ErrorCategory.WriteError)]
    [InlineData(BcmrErrorCode.IsADirectory, ErrorCategory.InvalidArgument)]
    [InlineData(BcmrErrorCode.Cancelled, ErrorCategory.OperationStopped)]
    [InlineData(BcmrErrorCode.Unknown, ErrorCategory.NotSpecified)]
    public void Error_codes_map_to_categories(BcmrErrorCode code, ErrorCategory category) =>
        Assert.Equal(category, ErrorMapping.Category(code));

    [Fact]
    public void Every_error_code_has_a_distinct_stable_id()
    {
        var codes = Enum.GetValues<BcmrErrorCode>();
        var ids = codes.Select(ErrorMapping.ErrorId).ToList();
        Assert.Equal(codes.Length, ids.Distinct().Count());
        Assert.Equal("BcmrAlreadyExists", ErrorMapping.ErrorId(BcmrErrorCode.AlreadyExists));
        Assert.Equal("BcmrOutsideRoot", ErrorMapping.ErrorId(BcmrErrorCode.OutsideRoot));
    }

    [Fact]
    public void A_failed_result_becomes_an_error_record_targeting_what_the_user_gave()
    {
        var failed = new Bcmr.Engine.Transfers.CopyResult
        {
            Source = "/src/a.txt", Destination = "/dst/a.txt", Status = CopyStatus.Failed,
            ErrorCode = BcmrErrorCode.AlreadyExists, Message = "/dst/a.txt: destination exists",
        };
        var given = new FileInfo("/src/a.txt");
        var record = ErrorMapping.Record(failed, given);
        Assert.Same(given, record.TargetObject);
        Assert.Equal(ErrorCategory.ResourceExists, record.CategoryInfo.Category);
        Assert.Equal("BcmrAlreadyExists", record.FullyQualifiedErrorId);
        Assert.Equal("/dst/a.txt: destination exists", record.Exception.Message);
        var nested = ErrorMapping.Record(failed, null);
        Assert.Equal("/src/a.txt", nested.TargetObject);
    }

    private static TransferProgress Snapshot(long done, long total, string? file = "/src/big.bin", long fileDone = 0, long fileSize = 0, bool final = false) =>
        new("copy", done, total, 0, 1, file, fileDone, fileSize, TimeSpan.FromSeconds(1), 1000, TimeSpan.FromSeconds(3), final);

    [Fact]
    public void Progress_shows_a_parent_and_a_child_and_throttles_to_five_a_second()
    {
        var view = new TransferProgressView("Copy-BcmrItem", TimeSpan.FromMilliseconds(200));
        var first = view.Update(Snapshot(25, 100, fileDone: 25, fileSize: 50), TimeSpan.FromMilliseconds(0));
        Assert.Equal(2, first.Count);
        var (parent, child) = (first[0], first[1]);
        Assert.Equal(TransferProgressView.ParentId, parent.ActivityId);
        Assert.Equal(25, parent.PercentComplete);
        Assert.Equal(3, parent.SecondsRemaining);
        Assert.Contains("0 of 1 files", parent.StatusDescription);
        Assert.Equal(TransferProgressView.ParentId, child.ParentActivityId);
        Assert.Equal(50, child.PercentComplete);
        Assert.Equal("big.bin", child.Activity);
        Assert.Equal("/src/big.bin", child.CurrentOperation);

        // Ten snapshots in the next 199 ms: all dropped.
        for (int i = 1; i < 10; i++) Assert.Empty(view.Update(Snapshot(30 + i, 100), TimeSpan.FromMilliseconds(i * 20)));
        var later = view.Update(Snapshot(60, 100, file: null), TimeSpan.FromMilliseconds(200));
        // No file in flight any more: the parent, and the child's bar closed.
        Assert.Equal(60, later[0].PercentComplete);
        Assert.Equal((TransferProgressView.ChildId, ProgressRecordType.Completed), (later[1].ActivityId, later[1].RecordType));
        Assert.Equal(2, later.Count);
        Assert.Equal(60, Assert.Single(view.Update(Snapshot(60, 100, file: null), TimeSpan.FromMilliseconds(400))).PercentComplete);

        // Over 10 simulated seconds of snapshots every 10 ms, at most ~5 updates a second.
        int updates = 0;
        for (int ms = 210; ms < 10_210; ms += 10) updates += view.Update(Snapshot(60, 100, file: null), TimeSpan.FromMilliseconds(ms)).Count;
        Assert.InRange(updates, 45, 51);
    }

    [Fact]
    public void Progress_shows_a_child_per_file_in_flight_each_keeping_its_id_and_closes_the_ones_that_finished()
    {
        var view = new TransferProgressView("Copy-BcmrItem", TimeSpan.FromMilliseconds(200));
        TransferProgress Many(params (string Path, long Done)[] files) => Snapshot(50, 100, file: files.Last().Path) with
        {
            ActiveFiles = files.Select(f => new FileProgress(f.Path, f.Done, 100)).ToArray(),
        };
        var first = view.Update(Many(("/s/a", 10), ("/s/b", 20), ("/s/c", 30)), TimeSpan.Zero);
        Assert.Equal([TransferProgressView.ParentId, 2, 3, 4], first.Select(r => r.ActivityId));
        Assert.Equal([10, 20, 30], first.Skip(1).Select(r => r.PercentComplete));
        Assert.All(first.Skip(1), r => Assert.Equal(TransferProgressView.ParentId, r.ParentActivityId));

        // b finished, d started on its connection: b's bar is closed, d takes its id, a and c keep theirs.
        var next = view.Update(Many(("/s/a", 60), ("/s/c", 70), ("/s/d", 5)), TimeSpan.FromSeconds(1));
        Assert.Equal((3, ProgressRecordType.Completed), (next[1].ActivityId, next[1].RecordType));
        var live = next.Where(r => r.RecordType == ProgressRecordType.Processing && r.ActivityId != TransferProgressView.ParentId).ToList();
        Assert.Equal([("/s/a", 2), ("/s/c", 4), ("/s/d", 3)], live.Select(r => (r.CurrentOperation, r.ActivityId)));

        var done = view.Complete();
        Assert.Equal([2, 3, 4, TransferProgressView.ParentId], done.Select(r => r.ActivityId));
        Assert.All(done, r => Assert.Equal(ProgressRecordType.Completed, r.RecordType));
    }

    [Fact]
    public void Progress_always_ends_with_completed_records_for_what_was_shown()
    {
        var view = new TransferProgressView("Copy-BcmrItem", TimeSpan.FromMilliseconds(200));
        Assert.Empty(view.Complete()); // nothing shown, nothing to close
        view.Update(Snapshot(10, 100, fileDone: 10, fileSize: 100), TimeSpan.Zero);
        Assert.Empty(view.Update(Snapshot(100, 100, file: null, final: true), TimeSpan.FromSeconds(5)));
        var done = view.Complete();
        Assert.Equal([TransferProgressView.ChildId, TransferProgressView.ParentId], done.Select(r => r.ActivityId));
        Assert.All(done, r => Assert.Equal(ProgressRecordType.Completed, r.RecordType));
        Assert.Empty(view.Complete());

        var parentOnly = new TransferProgressView("x", TimeSpan.FromMilliseconds(200));
        parentOnly.Update(Snapshot(0, 0, file: null), TimeSpan.Zero);
        Assert.Equal(TransferProgressView.ParentId, Assert.Single(parentOnly.Complete()).ActivityId);
    }

    [Fact]
    public void Pump_hands_every_item_to_the_calling_thread_in_order()
    {
        using var pump = new EnginePump<int>();
        var caller = Environment.CurrentManagedThreadId;
        var seen = new List<int>();
        var result = pump.Run(() =>
        {
            // Posted from several threads at once, as the engine's workers do.
            Parallel.For(0, 4, t => { for (int i = 0; i < 1000; i++) pump.Post(t * 1000 + i); });
            return "done";
        }, item =>
        {
            Assert.Equal(caller, Environment.CurrentManagedThreadId);
            seen.Add(item);
        }, () => throw new InvalidOperationException("nothing should cancel"));
        Assert.Equal("done", result);
        Assert.Equal(4000, seen.Count);
        for (int t = 0; t < 4; t++)
        {
            var mine = seen.Where(i => i / 1000 == t).ToList();
            Assert.Equal(Enumerable.Range(t * 1000, 1000), mine); // per producer, in order
        }
        pump.Post(1); // after the end: ignored, not thrown
    }

    [Fact]
    public void Pump_rethrows_the_work_failure_after_draining()
    {
        using var pump = new EnginePump<int>();
        var seen = new List<int>();
        var e = Assert.Throws<BcmrException>(() => pump.Run<int>(() =>
        {
            pump.Post(1);
            pump.Post(2);
            throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "bad request");
        }, seen.Add, () => { }));
        Assert.Equal("bad request", e.Message);
        Assert.Equal([1, 2], seen);
    }

    [Fact]
    public void Pump_cancels_and_waits_for_the_work_when_a_handler_throws()
    {
        using var pump = new EnginePump<int>();
        using var cts = new CancellationTokenSource();
        bool workFinished = false;
        Assert.Throws<PipelineStoppedException>(() => pump.Run(() =>
        {
            pump.Post(1);
            // The engine honours its token, then cleans up before returning.
            cts.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(30));
            Thread.Sleep(100);
            workFinished = true;
            return 0;
        }, _ => throw new PipelineStoppedException(), cts.Cancel));
        Assert.True(cts.IsCancellationRequested);
        Assert.True(workFinished, "Run returned before the work had finished cleaning up");
    }
}
