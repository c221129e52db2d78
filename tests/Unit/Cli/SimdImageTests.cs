using System.Diagnostics;
using System.Text;
using B3sum = Bcmr.Tests.Hashing.B3sum;
using TestVectors = Bcmr.Tests.Hashing.TestVectors;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>
/// The one `bcmr` users install (a static C launcher with the Native AOT images bcmr.x86-64-v2, -v3 and -v4 beside it)
/// starts on every x86-64 CPU, runs the image of the CPU's level, and every image hashes as b3sum does. Older CPUs are played
/// by qemu-user (`qemu-x86_64 -cpu MODEL`); qemu 7.2 has no AVX-512, so the v4 image is checked on this machine's own
/// CPU where it has AVX-512. Runs in the AOT pass of tools/test.sh (BCMR_TEST_EXE is the published binary).
/// </summary>
public class SimdImageTests
{
    private static string Exe => BcmrRunner.Executable;

    /// <summary>Runs <paramref name="args"/> under qemu-x86_64 with a CPU model (or natively when it is null), with a
    /// private HOME; returns exit code, stdout, stderr.</summary>
    private static (int Code, string Out, string Err) Run(string? cpu, string exe, IEnumerable<string> args, string? stdinFile = null,
        Dictionary<string, string>? env = null)
    {
        var psi = cpu is null ? new ProcessStartInfo(exe) : new ProcessStartInfo("qemu-x86_64");
        if (cpu is not null) foreach (var a in new[] { "-cpu", cpu, exe }) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = psi.RedirectStandardError = psi.RedirectStandardInput = true;
        psi.Environment["HOME"] = Path.GetTempPath();
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        if (stdinFile is not null) p.StandardInput.BaseStream.Write(File.ReadAllBytes(stdinFile));
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), "timed out");
        return (p.ExitCode, output, err.Result);
    }

    [SimdImagesFact]
    public void Every_CPU_model_starts_the_launcher_and_it_starts_the_image_of_its_level()
    {
        // qemu -strace shows the launcher's execve (the image then runs natively, outside qemu).
        foreach (var (cpu, image) in new[] { ("Nehalem", ".x86-64-v2"), ("SandyBridge", ".x86-64-v2"), ("Haswell", ".x86-64-v3") })
        {
            var r = Run(cpu, Exe, ["--version"], env: new() { ["QEMU_STRACE"] = "1" });
            Assert.True(r.Code == 0, $"{cpu}: exit {r.Code}\n{r.Err}");
            var start = r.Err.Split('\n').FirstOrDefault(l => l.Contains("execve(", StringComparison.Ordinal));
            Assert.True(start?.Contains($"\"{Exe}{image}\"", StringComparison.Ordinal) == true, $"{cpu}: {start ?? r.Err}");
        }
    }

    [SimdImagesFact]
    public void Every_CPU_model_starts_the_portable_image_and_it_hands_over_before_the_runtime_starts()
    {
        // The image started by hand (not through the launcher) stays itself on CPUs without AVX2 ...
        foreach (var cpu in new[] { "Nehalem", "SandyBridge" })
        {
            var r = Run(cpu, Exe + ".x86-64-v2", ["--version"], env: new() { ["QEMU_STRACE"] = "1" });
            Assert.True(r.Code == 0, $"{cpu}: exit {r.Code}\n{r.Err}");
            var handOver = r.Err.Split('\n').FirstOrDefault(l => l.Contains("execve(", StringComparison.Ordinal));
            Assert.True(handOver is null, $"{cpu} must stay in the portable image: {handOver}");
            Assert.Contains("blake3: sse (128-bit); image x86-64-v2 of a CPU with x86-64-v2", r.Out);
        }
        // ... and hands over to its AVX2 sibling on one that has it, from a constructor in Native/simd_dispatch.c: the
        // runtime's first thread would show as a clone before the execve, and its start-up would be paid twice.
        var haswell = Run("Haswell", Exe + ".x86-64-v2", ["--version"], env: new() { ["QEMU_STRACE"] = "1" });
        Assert.True(haswell.Code == 0, haswell.Err);
        var exec = haswell.Err.Split('\n').FirstOrDefault(l => l.Contains("execve(", StringComparison.Ordinal));
        Assert.True(exec?.Contains($"\"{Exe}.x86-64-v3\"", StringComparison.Ordinal) == true, exec ?? haswell.Err);
        var before = haswell.Err[..haswell.Err.IndexOf(exec!, StringComparison.Ordinal)];
        Assert.False(before.Contains("clone", StringComparison.Ordinal), $"the runtime started before the hand-over:\n{before}");
    }

    [SimdImagesFact]
    public void The_launcher_falls_back_to_the_images_it_has_and_names_the_one_it_lacks()
    {
        using var t = new TempDir();
        // Alone, it says what is missing and where, and exits 127 (the shell's "cannot execute").
        File.Copy(Exe, t["bcmr"]);
        File.SetUnixFileMode(t["bcmr"], (UnixFileMode)0b111_101_101);
        var alone = Run(null, t["bcmr"], ["--version"]);
        Assert.Equal(127, alone.Code);
        Assert.Contains($"cannot start {t["bcmr"]}.x86-64-v2: No such file or directory", alone.Err);
        Assert.Equal("", alone.Out);
        // With only the portable image beside it (a copy: a link would lead the image to its siblings), that one runs,
        // whatever this CPU has, with the arguments and the exit code passed through.
        File.Copy(Exe + ".x86-64-v2", t["bcmr.x86-64-v2"]);
        File.SetUnixFileMode(t["bcmr.x86-64-v2"], (UnixFileMode)0b111_101_101);
        var portable = Run(null, t["bcmr"], ["--version"]);
        Assert.True(portable.Code == 0, portable.Err);
        Assert.Contains("image x86-64-v2 of a CPU with", portable.Out);
        var usage = Run(null, t["bcmr"], ["copy", "--no-such-option", "a", "b"]);
        Assert.Equal(2, usage.Code);
        Assert.Contains("--no-such-option", usage.Err);
    }

    [SimdImagesFact]
    public void On_this_machine_the_image_of_its_own_level_runs()
    {
        int level = SimdImages.CpuLevelFromProcCpuinfo();
        var r = Run(null, Exe, ["--version"]);
        Assert.Equal(0, r.Code);
        Assert.Contains($"image x86-64-v{Math.Max(level, 2)} of a CPU with x86-64-v{level}", r.Out);
        Assert.Contains(level >= 4 ? "blake3: avx512" : level == 3 ? "blake3: avx2" : "blake3: sse (128-bit)", r.Out);
        var portable = Run(null, Exe, ["--version"], env: new() { ["BCMR_SIMD"] = "portable" });
        Assert.Contains("blake3: sse (128-bit); image x86-64-v2", portable.Out);
    }

    [SimdImagesTheory]
    [InlineData("portable")]
    [InlineData("v3")]
    public void Every_image_hashes_as_b3sum_does_on_the_official_vectors_and_random_inputs(string image) => HashesAsB3sum(image);

    [SimdImagesFact(needsAvx512: true)]
    public void The_AVX512_image_hashes_as_b3sum_does_on_this_CPU() => HashesAsB3sum("v4");

    private static void HashesAsB3sum(string image)
    {
        // Each image on a CPU that has what it needs, and told to stay itself.
        var (cpu, exe) = image switch
        {
            "portable" => ("Nehalem", Exe + ".x86-64-v2"),
            "v3" => ("Haswell", Exe + ".x86-64-v3"),
            _ => ((string?)null, Exe + ".x86-64-v4"),
        };
        using var t = new TempDir();
        var files = new List<string>();
        // The vectors' lengths (inputs 0, 1, ..., 250 repeating) and random data around the chunk, block and tree edges.
        int[] lengths = TestVectors.Path is null ? [0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 31744, 102400]
            : TestVectors.Load().Cases.Select(c => c.InputLen).ToArray();
        foreach (var n in lengths)
        {
            var f = t[$"vec-{n}"];
            File.WriteAllBytes(f, TestVectors.Input(n));
            files.Add(f);
        }
        var rng = new Random(17);
        foreach (var n in new[] { 65536, 65537, 4 * 1024 * 1024 + 1 })
        {
            var data = new byte[n];
            rng.NextBytes(data);
            File.WriteAllBytes(t[$"rnd-{n}"], data);
            files.Add(t[$"rnd-{n}"]);
        }
        var env = new Dictionary<string, string> { ["BCMR_SIMD"] = "portable" };
        var ours = Run(cpu, exe, ["hash", .. files], env: env);
        Assert.True(ours.Code == 0, ours.Err);
        var oracle = Tool.Output(B3sum.Path ?? "b3sum", [.. files]);
        Assert.Equal(oracle.Trim(), ours.Out.Trim());
        // Keyed and derive-key modes: the multi-chunk paths with other flags.
        var key = t["key"];
        File.WriteAllBytes(key, Encoding.ASCII.GetBytes("whats the Elvish word for friend"));
        var big = t["rnd-4194305"];
        var keyed = Run(cpu, exe, ["hash", "--keyed", big], stdinFile: key, env: env);
        Assert.Equal(KeyedOracle(key, big), keyed.Out.Trim());
        var derived = Run(cpu, exe, ["hash", "--derive-key", "bcmr simd test", big], env: env);
        Assert.Equal(Tool.Output(B3sum.Path ?? "b3sum", "--derive-key", "bcmr simd test", big).Trim(), derived.Out.Trim());
    }

    private static string KeyedOracle(string keyFile, string file)
    {
        var psi = new ProcessStartInfo(B3sum.Path ?? "b3sum") { RedirectStandardInput = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("--keyed");
        psi.ArgumentList.Add(file);
        using var p = Process.Start(psi)!;
        p.StandardInput.BaseStream.Write(File.ReadAllBytes(keyFile));
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output.Trim();
    }
}

/// <summary>Why the SIMD image tests cannot run here, or null: they need qemu-user, b3sum and the AOT bcmr published
/// with its images (the AOT pass of tools/test.sh, which .ci/run always runs).</summary>
internal static class SimdImages
{
    /// <summary>This CPU's x86-64 level as the kernel reports its flags (it hides what it does not enable): an oracle
    /// independent of the cpuid code under test (src/Bcmr.Cli/Native/simd_dispatch.c).</summary>
    public static int CpuLevelFromProcCpuinfo()
    {
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        var flags = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        bool v3 = new[] { "avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe" }.All(flags.Contains);
        bool v4 = v3 && new[] { "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl" }.All(flags.Contains);
        return v4 ? 4 : v3 ? 3 : 2;
    }

    public static readonly string? MissingReason =
        !OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64
            ? "x86-64 Linux only"
        : new[] { 2, 3, 4 }.Any(level => !File.Exists($"{BcmrRunner.Executable}.x86-64-v{level}"))
            ? "needs the Native AOT bcmr with its SIMD images (BCMR_TEST_EXE=out/bcmr-linux-x64/bcmr, as tools/test.sh's AOT pass sets)"
        : !Tool.OnPath("qemu-x86_64") ? "needs qemu-x86_64 (Debian package qemu-user)"
        : B3sum.Path is null ? B3sum.MissingReason
        : null;
}

public sealed class SimdImagesFactAttribute : FactAttribute
{
    public SimdImagesFactAttribute(bool needsAvx512 = false)
    {
        if (SimdImages.MissingReason is { } why) Skip = why;
        else if (needsAvx512 && SimdImages.CpuLevelFromProcCpuinfo() < 4)
            Skip = "this CPU has no AVX-512, and qemu 7.2 cannot emulate it: the x86-64-v4 image is checked on machines that have it";
    }
}

public sealed class SimdImagesTheoryAttribute : TheoryAttribute
{
    public SimdImagesTheoryAttribute() { if (SimdImages.MissingReason is { } why) Skip = why; }
}
