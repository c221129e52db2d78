using System.Security.Cryptography;

namespace Bcmr.Tests.Infrastructure;

/// <summary>Compares trees the way a user would check a copy: every entry present, same kind, same bytes
/// (SHA-256, independent of the BLAKE3 under test), same symlink targets.</summary>
public static class Trees
{
    public static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s));
    }

    public static SortedDictionary<string, string> Describe(string root)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var opts = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", opts))
        {
            var rel = Path.GetRelativePath(root, path);
            var info = new FileInfo(path);
            if (info.LinkTarget is not null) map[rel] = "link:" + info.LinkTarget;
            else if (Directory.Exists(path)) map[rel] = "dir";
            else map[rel] = "file:" + Sha256(path);
        }
        return map;
    }

    public static void AssertIdentical(string expectedRoot, string actualRoot)
    {
        var expected = Describe(expectedRoot);
        var actual = Describe(actualRoot);
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (k, v) in expected) Assert.True(v == actual[k], $"{k}: expected {v}, got {actual[k]}");
    }

    /// <summary>Staging files (and, when <paramref name="partials"/>, resumable partial files) must not survive a run.</summary>
    public static void AssertNoStagingFiles(string root, bool partials = true)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        var leftovers = Directory.EnumerateFiles(root, "*.bcmr-tmp", options)
            .Concat(partials ? Directory.EnumerateFiles(root, "*.bcmr-part", options) : [])
            .Where(p => Bcmr.Engine.Local.Temporaries.IsOurs(System.IO.Path.GetDirectoryName(p)!, System.IO.Path.GetFileName(p)))
            .ToList();
        Assert.True(leftovers.Count == 0, "staging files left behind: " + string.Join(", ", leftovers));
    }
}
