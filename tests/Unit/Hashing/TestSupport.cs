using System.Diagnostics;
using System.Text.Json;
using Bcmr.Engine.Hashing;

namespace Bcmr.Tests.Hashing;

/// <summary>The official BLAKE3 test vectors, read from the shared test-data directory next to the repository.</summary>
internal static class TestVectors
{
    public static readonly string? Path = Find();

    public const string MissingReason =
        "BLAKE3 test vectors not found (expected ../shared/testdata/blake3-test-vectors.json beside the repository root); the b3sum comparison tests still cover every mode.";

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Bcmr.PowerShell.sln")))
            {
                string candidate = System.IO.Path.Combine(dir.FullName, "..", "shared", "testdata", "blake3-test-vectors.json");
                return File.Exists(candidate) ? System.IO.Path.GetFullPath(candidate) : null;
            }
        }
        return null;
    }

    public sealed record Case(int InputLen, byte[] Hash, byte[] KeyedHash, byte[] DeriveKey);

    public static (byte[] Key, string Context, IReadOnlyList<Case> Cases) Load()
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path!));
        JsonElement root = doc.RootElement;
        var cases = new List<Case>();
        foreach (JsonElement c in root.GetProperty("cases").EnumerateArray())
        {
            cases.Add(new Case(
                c.GetProperty("input_len").GetInt32(),
                Convert.FromHexString(c.GetProperty("hash").GetString()!),
                Convert.FromHexString(c.GetProperty("keyed_hash").GetString()!),
                Convert.FromHexString(c.GetProperty("derive_key").GetString()!)));
        }
        return (System.Text.Encoding.ASCII.GetBytes(root.GetProperty("key").GetString()!),
            root.GetProperty("context_string").GetString()!, cases);
    }

    /// <summary>The vectors' input: the repeating byte sequence 0, 1, ..., 250.</summary>
    public static byte[] Input(int length)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)(i % 251);
        }
        return data;
    }
}

public sealed class VectorsFactAttribute : FactAttribute
{
    public VectorsFactAttribute()
    {
        if (TestVectors.Path is null)
        {
            Skip = TestVectors.MissingReason;
        }
    }
}

public sealed class VectorsTheoryAttribute : TheoryAttribute
{
    public VectorsTheoryAttribute()
    {
        if (TestVectors.Path is null)
        {
            Skip = TestVectors.MissingReason;
        }
    }
}

/// <summary>The reference implementation's command-line tool, used as an oracle when installed.</summary>
internal static class B3sum
{
    public static readonly string? Path = Find();

    public const string MissingReason = "b3sum is not installed (not found on PATH); the comparison against the reference implementation was not run.";

    private static string? Find()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator))
        {
            if (dir.Length == 0)
            {
                continue;
            }
            string candidate = System.IO.Path.Combine(dir, "b3sum");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}

public sealed class B3sumFactAttribute : FactAttribute
{
    public B3sumFactAttribute()
    {
        if (B3sum.Path is null)
        {
            Skip = B3sum.MissingReason;
        }
    }
}

public sealed class B3sumTheoryAttribute : TheoryAttribute
{
    public B3sumTheoryAttribute()
    {
        if (B3sum.Path is null)
        {
            Skip = B3sum.MissingReason;
        }
    }
}

internal sealed record ProcessResult(int ExitCode, byte[] Stdout, string Stderr)
{
    public string StdoutText => System.Text.Encoding.UTF8.GetString(Stdout);
}

internal static class Proc
{
    public static ProcessResult Run(string exe, IEnumerable<string> args, byte[]? stdin = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using Process p = Process.Start(psi)!;
        var stdoutTask = Task.Run(() =>
        {
            using var ms = new MemoryStream();
            p.StandardOutput.BaseStream.CopyTo(ms);
            return ms.ToArray();
        });
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.BaseStream.Write(stdin);
        }
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} did not exit within 5 minutes");
        }
        return new ProcessResult(p.ExitCode, stdoutTask.Result, stderrTask.Result);
    }
}

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bcmr-hash-test-").FullName;

    public string File(string name, byte[] content)
    {
        string path = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllBytes(path, content);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

internal static class Paths
{
    /// <summary>
    /// Every SIMD path, including ones this machine only emulates in software; the 256- and 512-bit paths both
    /// with their AVX2/AVX-512 kernels and with the generic kernels used where those are missing.
    /// </summary>
    public static TheoryData<int, bool> All => new()
    {
        { (int)Blake3Simd.Scalar, false },
        { (int)Blake3Simd.Vector128, false },
        { (int)Blake3Simd.Vector256, false },
        { (int)Blake3Simd.Vector256, true },
        { (int)Blake3Simd.Vector512, false },
        { (int)Blake3Simd.Vector512, true },
    };

    /// <summary>Runs <paramref name="body"/> with the generic kernel forced (on this thread) or not.</summary>
    public static void With(bool genericKernels, Action body)
    {
        Blake3HashMany.GenericKernelsOnly = genericKernels;
        try
        {
            body();
        }
        finally
        {
            Blake3HashMany.GenericKernelsOnly = false;
        }
    }
}
