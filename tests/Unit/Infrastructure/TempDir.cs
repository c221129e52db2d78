namespace Bcmr.Tests.Infrastructure;

/// <summary>A private directory under /tmp, removed (with everything in it) when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir(string? under = null)
    {
        Path = System.IO.Path.Combine(under ?? System.IO.Path.GetTempPath(), "bcmr-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public string WriteFile(string relative, byte[] content)
    {
        var full = this[relative];
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, content);
        return full;
    }

    public string WriteRandom(string relative, int size, int seed)
    {
        var data = new byte[size];
        new Noise(seed).Fill(data);
        return WriteFile(relative, data);
    }

    public void Dispose()
    {
        try
        {
            // Tests make read-only directories; give ourselves back the right to delete them.
            foreach (var d in Directory.EnumerateDirectories(Path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
                if ((File.GetAttributes(d) & FileAttributes.ReparsePoint) == 0) File.SetUnixFileMode(d, (UnixFileMode)0x1FF);
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception) { RemoveTree(Path); }
    }

    /// <summary>Removes a tree .NET cannot (deeper than PATH_MAX, as the long-path tests make) with rm, which walks it by
    /// descriptors. Best effort: never hides the test's own result.</summary>
    public static void RemoveTree(string path)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("rm") { UseShellExecute = false };
            foreach (var a in new[] { "-rf", "--", path }) psi.ArgumentList.Add(a);
            using var rm = System.Diagnostics.Process.Start(psi);
            rm?.WaitForExit(60_000);
        }
        catch (Exception) { }
    }

    /// <summary>A temporary directory for the whole test run (one per test process), removed when the process exits.</summary>
    public static string ForTheRun(string prefix)
    {
        var path = Directory.CreateTempSubdirectory(prefix).FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => RemoveTree(path);
        return path;
    }
}
