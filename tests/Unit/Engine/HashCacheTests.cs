using Bcmr.Engine;
using Bcmr.Engine.Hashing;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Protocol;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Engine;

/// <summary>
/// Remembered hashes (a repeated --checksum sync reads only what changed): a hash is trusted only while its file's
/// size, mtime, ctime and inode are unchanged, a file changed moments ago is never remembered, and the server answers
/// Hash from it. The server test plants a wrong hash to prove the cache is used, then changes the file with its size
/// and mtime restored to prove the ctime invalidates it.
/// </summary>
public sealed class HashCacheTests : IDisposable
{
    private readonly TempDir _t = new();
    private readonly EngineSettings _settings;

    public HashCacheTests() => _settings = EngineSettings.Defaults with { DataDirectory = _t["data"] };

    public void Dispose() => _t.Dispose();

    private static FileMeta Old(FileMeta m) => m with { CtimeSec = m.CtimeSec - 10 };

    [Fact]
    public void A_hash_is_kept_across_instances_while_size_mtime_ctime_and_inode_are_unchanged()
    {
        var path = _t.WriteRandom("f.bin", 1000, 1);
        var meta = Old(Fs.Lstat(path));
        var cache = HashCache.For("/some/root", _settings);
        Assert.Null(cache.TryGet(path, meta));
        cache.Put(path, meta, new string('a', 64));
        cache.Save();

        var again = HashCache.For("/some/root", _settings);
        Assert.Equal(new string('a', 64), again.TryGet(path, meta));
        Assert.Equal(1, again.Hits);
        Assert.Null(again.TryGet(path, meta with { Size = meta.Size + 1 }));
        Assert.Null(again.TryGet(path, meta with { MtimeNsec = meta.MtimeNsec + 1 }));
        Assert.Null(again.TryGet(path, meta with { CtimeSec = meta.CtimeSec + 1 }));
        Assert.Null(again.TryGet(path, meta with { Inode = meta.Inode + 1 }));
        Assert.Null(HashCache.For("/another/root", _settings).TryGet(path, meta));
    }

    [Fact]
    public void A_file_changed_moments_ago_is_not_remembered_and_odd_names_survive_the_file()
    {
        var path = _t.WriteRandom("fresh.bin", 10, 2);
        var cache = HashCache.For("/r", _settings);
        cache.Put(path, Fs.Lstat(path), new string('b', 64)); // ctime: now
        Assert.Null(cache.TryGet(path, Fs.Lstat(path)));

        var odd = "/r/a\tb\nc\\d";
        var meta = Old(Fs.Lstat(path));
        cache.Put(odd, meta, new string('c', 64));
        cache.Save();
        Assert.Equal(new string('c', 64), HashCache.For("/r", _settings).TryGet(odd, meta));
        File.WriteAllText(cache.Location, "garbage\nmore\tgarbage\n");
        Assert.Null(HashCache.For("/r", _settings).TryGet(odd, meta)); // damaged: empty, not an error
    }

    [Fact]
    public void The_server_answers_a_whole_file_Hash_from_the_cache_until_the_file_changes()
    {
        var root = Directory.CreateDirectory(_t["root"]).FullName;
        var path = Path.Combine(root, "f.bin");
        var data = new byte[100_000];
        new Noise(3).Fill(data);
        File.WriteAllBytes(path, data);
        var mtime = File.GetLastWriteTimeUtc(path);
        Thread.Sleep(TimeSpan.FromSeconds(HashCache.RacyWindowSeconds + 0.2)); // old enough to be remembered

        var settings = TestSettings.Isolated;
        var cache = HashCache.For(Fs.RealPath(root), settings);
        var planted = new string('0', 64);
        cache.Put(Fs.RealPath(path), Fs.Lstat(path), planted);
        cache.Save();
        Assert.Equal(planted, HashOnServer(root, "f.bin"));

        // The same size and mtime, other bytes: the ctime moved, so the server reads the file again.
        data[500] ^= 0xFF;
        File.WriteAllBytes(path, data);
        File.SetLastWriteTimeUtc(path, mtime);
        Assert.Equal(Blake3.ToHex(Blake3.Hash(data)), HashOnServer(root, "f.bin"));
    }

    private static string HashOnServer(string root, string path)
    {
        using var c = ServeConnection.InProcess(root);
        c.Handshake(Caps.Extended);
        c.Send(new HashRequest(path, 0, null));
        var reply = Assert.IsType<HashResponse>(c.Receive());
        c.EndSession();
        return reply.Hash;
    }
}
