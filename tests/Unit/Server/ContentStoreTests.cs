using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Codecs;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>The content store on a real filesystem: layout, verified reads, LRU pruning, stats, clear, concurrency.</summary>
public sealed class ContentStoreTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly TempDir _t = new();
    private string Dir => _t["cas"];

    public void Dispose() => _t.Dispose();

    private static byte[] Block(int size, int seed) => BlockCodecTests.RandomBytes(size, seed);

    [Fact]
    public void A_store_it_creates_is_readable_by_its_owner_only()
    {
        var store = new ContentStore(Dir, 0);
        store.Store(Block(1000, 2));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Dir));
    }

    [Fact]
    public void A_blob_stored_from_a_range_of_an_open_file_holds_exactly_those_bytes_and_a_short_file_stores_nothing()
    {
        var store = new ContentStore(Dir, 0);
        var content = Block(3 * MiB + 77, 5);
        var file = _t["staged.bin"];
        File.WriteAllBytes(file, content);
        using var h = File.OpenHandle(file);
        var middle = content.AsSpan(MiB + 3, 2 * MiB).ToArray();
        var hash = Blake3.Hash(middle);
        store.Store(hash, h, file, MiB + 3, middle.Length);
        Assert.Equal(middle, File.ReadAllBytes(store.BlobPath(hash)));
        var buffer = new byte[Wire.MaxBlock];
        Assert.True(store.TryRead(hash, buffer, out int n));
        Assert.Equal(middle, buffer[..n]);

        // The range runs past the end of the file (the staging file was cut meanwhile): an error naming the file,
        // and neither a short blob nor a temporary file is left.
        var tail = Blake3.Hash([9, 9, 9]);
        var e = Assert.Throws<BcmrException>(() => store.Store(tail, h, file, 2 * MiB, 2 * MiB));
        Assert.Contains(file, e.Message);
        Assert.False(File.Exists(store.BlobPath(tail)));
        Assert.Empty(Directory.EnumerateFiles(Dir, "*.tmp.*", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_blob_lives_at_ab_cd_rest_blk_and_reads_back_verified()
    {
        var store = new ContentStore(Dir, 0);
        var data = Block(1000, 1);
        var hash = store.Store(data);
        var hex = Blake3.ToHex(hash);
        Assert.Equal(Path.Combine(Dir, hex[..2], hex[2..4], hex[4..] + ".blk"), store.BlobPath(hash));
        Assert.Equal(data, File.ReadAllBytes(store.BlobPath(hash)));
        var buffer = new byte[Wire.MaxBlock];
        Assert.True(store.TryRead(hash, buffer, out int n));
        Assert.Equal(data, buffer[..n]);
        Assert.False(store.TryRead(Blake3.Hash([1, 2, 3]), buffer, out _));
        Assert.Empty(Directory.EnumerateFiles(Dir, "*.tmp.*", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_corrupt_truncated_or_oversized_blob_is_never_returned_and_is_deleted()
    {
        var store = new ContentStore(Dir, 0);
        var buffer = new byte[Wire.MaxBlock];
        var a = store.Store(Block(4 * MiB, 2));
        var b = store.Store(Block(4 * MiB, 3));
        var c = store.Store(Block(100, 4));
        var flipped = File.ReadAllBytes(store.BlobPath(a));
        flipped[4 * MiB - 1] ^= 0x80;
        File.WriteAllBytes(store.BlobPath(a), flipped);
        using (var f = File.OpenWrite(store.BlobPath(b))) f.SetLength(4 * MiB - 1);
        File.WriteAllBytes(store.BlobPath(c), new byte[Wire.MaxBlock + 1]);

        buffer.AsSpan().Fill(0x77);
        Assert.False(store.TryRead(a, buffer, out int n));
        Assert.Equal(0, n);
        Assert.False(store.TryRead(b, buffer, out _));
        Assert.False(store.TryRead(c, buffer, out _));
        Assert.False(File.Exists(store.BlobPath(a)));
        Assert.False(File.Exists(store.BlobPath(b)));
        Assert.False(File.Exists(store.BlobPath(c)));
        Assert.Equal(0, store.Stats().Blobs);
    }

    [Fact]
    public void Prune_removes_the_least_recently_used_first_and_a_read_counts_as_use()
    {
        var store = new ContentStore(Dir, 0);
        var hashes = Enumerable.Range(0, 5).Select(i => store.Store(Block(MiB, 10 + i))).ToArray();
        var now = DateTime.UtcNow;
        for (int i = 0; i < 5; i++) File.SetLastWriteTimeUtc(store.BlobPath(hashes[i]), now.AddMinutes(-10 + i)); // 0 oldest
        Assert.True(store.TryRead(hashes[0], new byte[Wire.MaxBlock], out _)); // 0 becomes the newest

        var r = store.Prune(3L * MiB);
        Assert.Equal(2, r.BlobsFreed);
        Assert.Equal(2L * MiB, r.BytesFreed);
        Assert.Equal(3, r.BlobsLeft);
        Assert.Equal(3L * MiB, r.BytesLeft);
        Assert.False(File.Exists(store.BlobPath(hashes[1])));
        Assert.False(File.Exists(store.BlobPath(hashes[2])));
        Assert.True(File.Exists(store.BlobPath(hashes[0])));
        Assert.True(File.Exists(store.BlobPath(hashes[3])));

        // Storing an existing blob is a use too.
        File.SetLastWriteTimeUtc(store.BlobPath(hashes[3]), now.AddHours(-1));
        store.Store(Block(MiB, 13));
        store.Prune(2L * MiB);
        Assert.True(File.Exists(store.BlobPath(hashes[3])));
        Assert.False(File.Exists(store.BlobPath(hashes[4]))); // the oldest left
        Assert.True(File.Exists(store.BlobPath(hashes[0])));
    }

    [Fact]
    public void Stats_count_blobs_only_and_prune_removes_only_stale_temporaries()
    {
        var store = new ContentStore(Dir, 5L * MiB);
        store.Store(Block(1000, 20));
        store.Store(Block(2000, 21));
        var fresh = Path.Combine(Dir, "ab", "cd", "0000.blk.tmp.123.1");
        var stale = Path.Combine(Dir, "ab", "cd", "0001.blk.tmp.123.2");
        Directory.CreateDirectory(Path.GetDirectoryName(fresh)!);
        File.WriteAllBytes(fresh, new byte[500]);
        File.WriteAllBytes(stale, new byte[500]);
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-2));

        var s = store.Stats();
        Assert.Equal(Path.GetFullPath(Dir), s.Directory);
        Assert.Equal(2, s.Blobs);
        Assert.Equal(3000, s.Bytes);
        Assert.Equal(5L * MiB, s.CapBytes);

        store.Prune(long.MaxValue);
        Assert.True(File.Exists(fresh)); // a writer may be about to rename it
        Assert.False(File.Exists(stale));
    }

    [Fact]
    public void Clear_empties_the_store_and_its_directories()
    {
        var store = new ContentStore(Dir, 0);
        for (int i = 0; i < 20; i++) store.Store(Block(100, 30 + i));
        var r = store.Clear();
        Assert.Equal(20, r.BlobsFreed);
        Assert.Equal(2000, r.BytesFreed);
        Assert.Equal(0, r.BlobsLeft);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Dir));
        Assert.Equal(0, store.Stats().Blobs);
        // A store that does not exist is empty, not an error.
        var none = new ContentStore(_t["nowhere"], 0);
        Assert.Equal(0, none.Stats().Blobs);
        Assert.Equal(0, none.Clear().BlobsFreed);
    }

    [Fact]
    public void Default_comes_from_BCMR_CAS_DIR_and_BCMR_CAS_CAP_MB()
    {
        // The variables as the CLI and the cmdlets read them (EngineSettings.FromEnvironment), from a dictionary here;
        // the process-level tests (ServeCodecProcessTests, ClearBcmrCasTests) set them in a real environment.
        ContentStore Default(string? cap) => ContentStore.Default(EngineSettings.FromEnvironment(
            name => name switch { "BCMR_CAS_DIR" => Dir, "BCMR_CAS_CAP_MB" => cap, _ => null }));
        Assert.Equal(Path.GetFullPath(Dir), Default(null).Directory);
        Assert.Equal(1024L * MiB, Default(null).CapBytes);
        Assert.Equal(32L * MiB, Default("32").CapBytes);
        Assert.Equal(0, Default("0").CapBytes); // unbounded
        Assert.Equal(0, Default("0").EnforceCap().BlobsFreed);
        Assert.Equal(1024L * MiB, Default("lots").CapBytes);
    }

    [Fact]
    public void Without_BCMR_CAS_DIR_the_store_is_in_the_data_directory_and_a_jailed_serve_has_its_own()
    {
        var data = _t["data"];
        var settings = EngineSettings.FromEnvironment(name => name == "XDG_DATA_HOME" ? data : null);
        Assert.Equal(Path.Join(data, "bcmr", "cas"), ContentStore.Default(settings).Directory);
        Assert.Equal(Path.Join(data, "bcmr", "cas"), ContentStore.ForRoot("/", settings).Directory);
        var jailed = ContentStore.ForRoot("/srv/a", settings).Directory;
        Assert.StartsWith(Path.Join(data, "bcmr", "cas-roots") + "/", jailed);
        Assert.NotEqual(jailed, ContentStore.ForRoot("/srv/b", settings).Directory);
        var named = EngineSettings.FromEnvironment(name => name == "BCMR_CAS_DIR" ? Dir : null);
        Assert.Equal(Path.GetFullPath(Dir), ContentStore.ForRoot("/srv/a", named).Directory);
    }

    [Fact]
    public void Concurrent_writers_readers_and_pruners_never_see_a_torn_or_wrong_blob()
    {
        var store = new ContentStore(Dir, 0);
        var blocks = Enumerable.Range(0, 6).Select(i => Block(512 * 1024, 40 + i)).ToArray();
        var hashes = blocks.Select(b => Blake3.Hash(b)).ToArray();
        // Three seconds of all six racing, and on until some read has hit (at most 30 s): under a loaded CI machine the
        // pruners' Clear could win every race for three seconds, and the test must still see reads succeed. Threads of
        // their own, not pool tasks, so all six run from the start however busy the pool is.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int reads = 0;
        bool Running() => clock.Elapsed < TimeSpan.FromSeconds(3) || Volatile.Read(ref reads) == 0 && clock.Elapsed < TimeSpan.FromSeconds(30);
        Exception? failure = null;
        var workers = Enumerable.Range(0, 6).Select(w => new Thread(() =>
        {
            try { Work(w); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        })).ToArray();
        foreach (var t in workers) t.Start();
        foreach (var t in workers) t.Join();
        if (failure is not null) throw failure;
        Assert.True(reads > 0, "no read ever hit");
        Assert.Empty(Directory.EnumerateFiles(Dir, "*.tmp.*", SearchOption.AllDirectories));

        void Work(int w)
        {
            var buffer = new byte[Wire.MaxBlock];
            var rnd = new Random(w);
            while (Running())
            {
                int i = rnd.Next(blocks.Length);
                switch (w % 3)
                {
                    case 0: store.Store(hashes[i], blocks[i]); break;
                    case 1:
                        if (store.TryRead(hashes[i], buffer, out int n))
                        {
                            Assert.True(buffer.AsSpan(0, n).SequenceEqual(blocks[i]), "a read returned other bytes");
                            Interlocked.Increment(ref reads);
                        }
                        break;
                    default: if (rnd.Next(2) == 0) store.Prune(MiB); else store.Clear(); break;
                }
            }
        }
    }
}
