using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// Every row of cp's destination table (src/Bcmr.Engine/Local/CopyRules.cs) for a local copy, an upload and a
/// download: the same outcome, the same words, nothing written where a row refuses.
/// </summary>
public class CopyRulesTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    public enum Way { Local, Upload, Download }

    /// <summary>One scene under the server's home, so that either side can be named locally or as host:path.</summary>
    private sealed class Scene(SshdFixture fx, Way way) : IDisposable
    {
        public readonly TempDir Dir = new(fx.RemoteHome);
        public string this[string rel] => Dir[rel];
        public string Src(string rel) => way == Way.Download ? fx.Remote(Dir[rel]) : Dir[rel];
        public string Dst(string rel) => way == Way.Upload ? fx.Remote(Dir[rel]) : Dir[rel];
        public RunResult Copy(params string[] args) => BcmrRunner.Run(["copy", "--no-fallback", .. args], fx.Env(), timeout: TimeSpan.FromMinutes(2));
        public void Dispose() => Dir.Dispose();
    }

    private Scene Make(Way way)
    {
        var s = new Scene(fx, way);
        s.Dir.WriteFile("src/a.txt", "alpha"u8.ToArray());
        s.Dir.WriteFile("src/b.txt", "beta"u8.ToArray());
        s.Dir.WriteFile("src/dir/x.txt", "ex"u8.ToArray());
        Directory.CreateDirectory(s["dst"]);
        return s;
    }

    private static void Refused(RunResult r, string words)
    {
        Assert.True(r.ExitCode != 0, r.ToString());
        Assert.Contains(words, r.Stderr);
    }

    [SshTheory]
    [InlineData(Way.Local)] [InlineData(Way.Upload)] [InlineData(Way.Download)]
    public void One_file(Way way)
    {
        using var s = Make(way);
        // to a missing name: the name is the copy
        s.Copy(s.Src("src/a.txt"), s.Dst("dst/new.txt")).AssertExit(0);
        Assert.Equal("alpha", File.ReadAllText(s["dst/new.txt"]));
        // into an existing directory: under its own name
        s.Copy(s.Src("src/a.txt"), s.Dst("dst")).AssertExit(0);
        Assert.Equal("alpha", File.ReadAllText(s["dst/a.txt"]));
        // onto an existing file: refused without -f, replaced with it
        Refused(s.Copy(s.Src("src/b.txt"), s.Dst("dst/a.txt")), "exists");
        Assert.Equal("alpha", File.ReadAllText(s["dst/a.txt"]));
        s.Copy("-f", s.Src("src/b.txt"), s.Dst("dst/a.txt")).AssertExit(0);
        Assert.Equal("beta", File.ReadAllText(s["dst/a.txt"]));
        // written as a directory that is not there
        Refused(s.Copy(s.Src("src/a.txt"), s.Dst("dst/nodir/")), "Not a directory");
        Assert.False(Path.Exists(s["dst/nodir"]));
        // into a directory that already holds a directory of its name
        Directory.CreateDirectory(s["dst2/a.txt/keep"]);
        Refused(s.Copy(s.Src("src/a.txt"), s.Dst("dst2")), "cannot overwrite directory with non-directory");
        Assert.True(Directory.Exists(s["dst2/a.txt/keep"]));
    }

    [SshTheory]
    [InlineData(Way.Local)] [InlineData(Way.Upload)] [InlineData(Way.Download)]
    public void One_file_whose_destination_directory_is_missing(Way way)
    {
        using var s = Make(way);
        var r = s.Copy(s.Src("src/a.txt"), s.Dst("missing/new.txt"));
        Assert.True(r.ExitCode != 0, r.ToString());
        Assert.Contains("missing", r.Stderr);
        Assert.False(Path.Exists(s["missing"]));
    }

    [SshTheory]
    [InlineData(Way.Local)] [InlineData(Way.Upload)] [InlineData(Way.Download)]
    public void One_directory(Way way)
    {
        using var s = Make(way);
        Refused(s.Copy(s.Src("src/dir"), s.Dst("dst")), "is a directory (use -r");
        Assert.False(Path.Exists(s["dst/dir"]));
        // to a missing name: the name is the copy
        s.Copy("-r", s.Src("src/dir"), s.Dst("dst/named")).AssertExit(0);
        Assert.Equal("ex", File.ReadAllText(s["dst/named/x.txt"]));
        // into an existing directory: under its own name, merged with what is there
        s.Dir.WriteFile("dst/dir/other.txt", "stays"u8.ToArray());
        s.Copy("-r", s.Src("src/dir"), s.Dst("dst")).AssertExit(0);
        Assert.Equal("ex", File.ReadAllText(s["dst/dir/x.txt"]));
        Assert.Equal("stays", File.ReadAllText(s["dst/dir/other.txt"]));
        // onto an existing file
        s.Dir.WriteFile("dst/file", "file"u8.ToArray());
        Refused(s.Copy("-r", s.Src("src/dir"), s.Dst("dst/file")), "cannot overwrite non-directory with directory");
        Assert.Equal("file", File.ReadAllText(s["dst/file"]));
    }

    [SshTheory]
    [InlineData(Way.Local)] [InlineData(Way.Upload)] [InlineData(Way.Download)]
    public void Several_sources(Way way)
    {
        using var s = Make(way);
        s.Copy(s.Src("src/a.txt"), s.Src("src/b.txt"), s.Dst("dst")).AssertExit(0);
        Assert.Equal("alpha", File.ReadAllText(s["dst/a.txt"]));
        Assert.Equal("beta", File.ReadAllText(s["dst/b.txt"]));
        s.Dir.WriteFile("dst/file", "file"u8.ToArray());
        Refused(s.Copy(s.Src("src/a.txt"), s.Src("src/b.txt"), s.Dst("dst/file")), "target is not a directory");
        Assert.Equal("file", File.ReadAllText(s["dst/file"]));
        Refused(s.Copy(s.Src("src/a.txt"), s.Src("src/b.txt"), s.Dst("dst/none")), "target directory does not exist");
        Assert.False(Path.Exists(s["dst/none"]));
    }
}
