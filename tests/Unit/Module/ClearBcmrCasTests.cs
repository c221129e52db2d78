using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Module;

/// <summary>Clear-BcmrCas over a real content store, found as the engine finds it (BCMR_CAS_DIR), in a PowerShell
/// process of its own.</summary>
[Collection("Module")]
public sealed class ClearBcmrCasTests : IDisposable
{
    private const int Block = 512 * 1024;
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    /// <summary>Six blocks of 512 KiB, used oldest to newest in the order written.</summary>
    private (string Dir, List<string> Blobs) MakeStore()
    {
        var dir = _t["cas"];
        var store = new ContentStore(dir, 0);
        var blobs = new List<string>();
        for (int i = 0; i < 6; i++)
        {
            var data = new byte[Block];
            new Random(i).NextBytes(data);
            var path = store.BlobPath(store.Store(data));
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(-10 + i));
            blobs.Add(path);
        }
        return (dir, blobs);
    }

    private const string Report = " | ForEach-Object { '{0}|{1}|{2}|{3}|{4}' -f $_.BlobsFreed, $_.BytesFreed, $_.BlobsLeft, $_.BytesLeft, $_.GetType().FullName }";

    [Fact]
    public void WhatIf_removes_nothing_then_MaxSizeMB_prunes_least_recently_used_and_no_argument_clears_all()
    {
        var (dir, blobs) = MakeStore();
        var env = new Dictionary<string, string> { ["BCMR_CAS_DIR"] = dir };

        var r = PwshHostProcess.Run("Clear-BcmrCas -MaxSizeMB 1 -WhatIf; Clear-BcmrCas -WhatIf", _t["home"], env);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Empty(r.Output);
        Assert.Contains($"host: What if: Performing the operation \"Prune to 1 MiB, least recently used blocks first\" on target \"{dir} (6 blocks, 3.0 MiB)\".", r.Stderr);
        Assert.Contains("host: What if: Performing the operation \"Remove every block\"", r.Stderr);
        Assert.All(blobs, b => Assert.True(File.Exists(b)));

        r = PwshHostProcess.Run("Clear-BcmrCas -MaxSizeMB 1" + Report, _t["home"], env);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal([$"4|{4 * Block}|2|{2 * Block}|Bcmr.CasClearResult"], r.Output);
        Assert.All(blobs.Take(4), b => Assert.False(File.Exists(b), "an older block survived"));
        Assert.All(blobs.Skip(4), b => Assert.True(File.Exists(b), "a recent block was removed"));

        r = PwshHostProcess.Run("Clear-BcmrCas" + Report, _t["home"], env);
        Assert.Equal([$"2|{2 * Block}|0|0|Bcmr.CasClearResult"], r.Output);
        Assert.Empty(Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories) : []);
    }

    [Fact]
    public void The_default_store_is_under_XDG_DATA_HOME_and_an_empty_store_frees_nothing()
    {
        var home = _t["home"];
        var cas = Path.Combine(home, ".local", "share", "bcmr", "cas");
        var store = new ContentStore(cas, 0);
        store.Store(new byte[1000]);
        var r = PwshHostProcess.Run("Clear-BcmrCas" + Report + "; Clear-BcmrCas" + Report, home);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(["1|1000|0|0|Bcmr.CasClearResult", "0|0|0|0|Bcmr.CasClearResult"], r.Output);
    }
}
