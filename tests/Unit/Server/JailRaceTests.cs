using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>
/// Another local process flips a directory inside the root to a symlink that leads outside while a client uploads
/// into it (issue 16 item 10; before, 2 of 3 000 Puts landed outside the root): every write is resolved through
/// directories opened one component at a time without following links, and every read checks what it opened.
/// </summary>
public sealed class JailRaceTests : IDisposable
{
    private readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();

    /// <summary>Flips root/d between the real directory and a symlink to <paramref name="outside"/> until stopped. The
    /// server may create a new "d" in between (mkdir -p of a Put): that one is moved aside, inside the root.</summary>
    private static Thread Flipper(string root, string outside, CancellationToken stop, Action flipped) => new(() =>
    {
        var d = Path.Combine(root, "d");
        var real = Path.Combine(root, "d.real");
        int aside = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                Directory.Move(d, real);
                File.CreateSymbolicLink(d, outside);
                Thread.Yield();
                File.Delete(d);
                Directory.Move(real, d);
                // A yield in each state, so that each lasts about as long as the other whatever the load: with one
                // only after making the link, a busy runner left the link in place for whole time slices and every
                // Put of a run met it (0 of 3000 succeeded, CI of session 17).
                Thread.Yield();
                flipped();
            }
            catch (IOException)
            {
                try
                {
                    if (new FileInfo(d).LinkTarget is not null) File.Delete(d);
                    if (Directory.Exists(real))
                    {
                        if (Directory.Exists(d)) Directory.Move(d, Path.Combine(root, $"d.aside{aside++}"));
                        Directory.Move(real, d);
                    }
                }
                catch (IOException) { }
            }
        }
    }) { IsBackground = true };

    [Fact]
    public void A_directory_flipped_to_a_symlink_never_lets_a_Put_Mkdir_Truncate_PutChunked_Assemble_or_a_tree_change_land_outside_the_root()
    {
        var root = _t["root"];
        var outside = _t["outside"];
        Directory.CreateDirectory(Path.Combine(root, "d"));
        Directory.CreateDirectory(outside);
        // What the tree changes of a sync could reach through the flipped link: none of it may move.
        File.WriteAllText(Path.Combine(outside, "victim"), "outside");
        var outsideBefore = File.GetLastWriteTimeUtc(Path.Combine(outside, "victim"));
        using var stop = new CancellationTokenSource();
        long flips = 0;
        var flipper = Flipper(root, outside, stop.Token, () => Interlocked.Increment(ref flips));
        var data = new byte[100];
        int putsOk = 0;
        var putErrors = new Dictionary<string, int>();
        using (var c = ServeConnection.InProcess(root))
        {
            c.Handshake(Caps.Extended);
            flipper.Start();
            var hash = Blake3.ToHex(Blake3.Hash(data));
            // At least 3000 Puts and 100 flips: on a loaded machine the flipper gets fewer turns, so the loop runs on.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; i < 3000 || Interlocked.Read(ref flips) <= 100 && clock.Elapsed < TimeSpan.FromSeconds(60); i++)
            {
                c.Send(new PutRequest($"d/f{i}", (ulong)data.Length, 0));
                c.SendData(data);
                c.Send(new CommitRequest(hash));
                // Ok, or an Error: refused or raced away, never written outside. Counted, so that a run where no Put
                // succeeds says what the Puts got.
                switch (c.Receive())
                {
                    case OkResponse: putsOk++; break;
                    case ErrorResponse e: putErrors[e.Text.Replace(i.ToString(), "N")] = putErrors.GetValueOrDefault(e.Text.Replace(i.ToString(), "N")) + 1; break;
                    case var m: putErrors[$"unexpected {m?.Type}"] = putErrors.GetValueOrDefault($"unexpected {m?.Type}") + 1; break;
                }
                if (i % 100 == 0)
                {
                    c.Send(new MkdirRequest($"d/m{i}/n"));
                    c.Receive();
                    c.Send(new TruncateRequest($"d/t{i}", 10));
                    c.Receive();
                    // A striped upload's range and its assembly: the partial file and the rename, both pinned.
                    c.Send(new PutChunkedRequest($"d/s{i}", 0, (ulong)data.Length));
                    c.SendData(data);
                    c.Receive();
                    c.Send(new AssembleRequest($"d/s{i}", (ulong)data.Length));
                    c.Receive();
                    // A sync's tree changes: each names a path through d, which may be the link to outside right now.
                    c.Send(new SetMetaRequest("d/victim", 1, 0, 0));
                    c.Receive();
                    c.Send(new RemoveRequest("d/victim", true));
                    c.Receive();
                    c.Send(new RenameRequest($"d/f{i}", "d/victim"));
                    c.Receive();
                    c.Send(new LinkRequest($"d/f{i}", "d/victim2"));
                    c.Receive();
                }
            }
            stop.Cancel();
            flipper.Join();
        }
        Assert.True(flips > 100, $"only {flips} flips: the race was hardly tried");
        Assert.Equal("outside", File.ReadAllText(Path.Combine(outside, "victim")));
        Assert.Equal(outsideBefore, File.GetLastWriteTimeUtc(Path.Combine(outside, "victim")));
        var leaked = Directory.EnumerateFileSystemEntries(outside, "*", SearchOption.AllDirectories).Where(p => p != Path.Combine(outside, "victim")).ToList();
        Assert.True(leaked.Count == 0, $"{leaked.Count} entries written outside the root, e.g. {leaked.FirstOrDefault()}");
        // Where the Puts that succeeded are depends on where the flipper left things: root/d, or a "d" it moved aside
        // (d.aside*, d.real), and root/d itself may be the link to outside when it stopped (never followed here).
        var inside = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint };
        Assert.True(Directory.EnumerateFiles(root, "f*", inside).Any(),
            $"no Put succeeded at all ({putsOk} answered Ok, {flips} flips; errors: " +
            string.Join("; ", putErrors.OrderByDescending(p => p.Value).Take(5).Select(p => $"{p.Value} x {p.Key}")) + ")");
    }

    [Fact]
    public void A_Get_or_Hash_raced_to_a_file_outside_the_root_sends_none_of_it()
    {
        var root = _t["root"];
        var outside = _t["outside"];
        Directory.CreateDirectory(Path.Combine(root, "d"));
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(root, "d", "f"), "inside");
        File.WriteAllText(Path.Combine(outside, "f"), "SECRET");
        using var stop = new CancellationTokenSource();
        var flipper = Flipper(root, outside, stop.Token, () => { });
        var secretHash = Blake3.ToHex(Blake3.Hash("SECRET"u8));
        using (var c = ServeConnection.InProcess(root))
        {
            c.Handshake();
            flipper.Start();
            for (int i = 0; i < 2000; i++)
            {
                c.Send(new GetRequest("d/f", 0));
                var (bytes, _) = c.ReceiveGet();
                Assert.NotEqual("SECRET"u8.ToArray(), bytes);
                c.Send(new HashRequest("d/f", 0, null));
                Assert.False(c.Receive() is HashResponse h && h.Hash == secretHash, "the hash of a file outside the root was sent");
            }
            stop.Cancel();
            flipper.Join();
        }
    }
}
