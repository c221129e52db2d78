using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Bcmr.Cli;

/// <summary>
/// One `bcmr` for every x86-64 CPU, at full SIMD speed on each. Native AOT fixes the instruction set at build time,
/// and it can test AVX2 at run time only in a binary whose baseline is AVX (which then will not start on older CPUs),
/// so the published folder holds the portable binary `bcmr` and, beside it, the same program built for newer levels:
/// `bcmr.x86-64-v3` (AVX2) and `bcmr.x86-64-v4` (AVX-512). The first thing `bcmr` does is ask the CPU (cpuid) which
/// level it has; if a sibling for a higher level than its own is there, it replaces itself with that one (execv: same
/// process id, arguments, environment and descriptors, so ssh and scripts see one program). Measured: bench/RESULTS.md.
/// BCMR_SIMD=portable keeps the running image. The JIT build (the module's bcmr) chooses per method and does nothing here.
/// </summary>
internal static partial class SimdImage
{
    /// <summary>The x86-64 level this image was compiled for (Native AOT: constants of its baseline).</summary>
    public static int OwnLevel => Avx512F.IsSupported && Avx512BW.IsSupported ? 4 : Avx2.IsSupported ? 3 : 2;

    /// <summary>The suffix of the sibling image built for <paramref name="level"/>.</summary>
    public static string Suffix(int level) => $".x86-64-v{level}";

    public static void ExecBestImage(string[] args)
    {
        if (RuntimeFeature.IsDynamicCodeSupported || !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return;
        if (Environment.GetEnvironmentVariable("BCMR_SIMD") is "portable") return;
        int cpu = CpuLevel();
        var self = Environment.ProcessPath;
        if (self is null || cpu <= OwnLevel) return;
        // Siblings live beside the portable image; a sibling itself is named bcmr.x86-64-vN.
        var basePath = self;
        foreach (var level in new[] { 2, 3, 4 })
            if (basePath.EndsWith(Suffix(level), StringComparison.Ordinal)) basePath = basePath[..^Suffix(level).Length];
        for (int level = cpu; level > OwnLevel; level--)
        {
            var image = basePath + Suffix(level);
            if (!File.Exists(image)) continue;
            var argv = new string?[args.Length + 2];
            argv[0] = self;
            args.CopyTo(argv, 1);
            execv(image, argv); // returns only when it failed: run on here
        }
    }

    /// <summary>x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), v3 (AVX, AVX2, BMI1/2, FMA, F16C, LZCNT, MOVBE) or 2, from cpuid. The
    /// OS must have enabled the vector registers (OSXSAVE); the kernel does so for every state it supports.</summary>
    public static int CpuLevel()
    {
        if (!X86Base.IsSupported) return 1;
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        bool osxsave = (ecx1 & (1 << 27)) != 0, avx = (ecx1 & (1 << 28)) != 0, fma = (ecx1 & (1 << 12)) != 0,
            f16c = (ecx1 & (1 << 29)) != 0, movbe = (ecx1 & (1 << 22)) != 0;
        if (!osxsave || !avx || !fma || !f16c || !movbe) return 2;
        var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        if (maxLeaf < 7) return 2;
        var (_, ebx7, _, _) = X86Base.CpuId(7, 0);
        var (_, _, ecx81, _) = X86Base.CpuId(unchecked((int)0x80000001), 0);
        bool avx2 = (ebx7 & (1 << 5)) != 0, bmi1 = (ebx7 & (1 << 3)) != 0, bmi2 = (ebx7 & (1 << 8)) != 0, lzcnt = (ecx81 & (1 << 5)) != 0;
        if (!avx2 || !bmi1 || !bmi2 || !lzcnt) return 2;
        if (!KernelSaves(AvxState)) return 2;
        const int f = 1 << 16, dq = 1 << 17, cd = 1 << 28, bw = 1 << 30, vl = 1 << 31;
        return (ebx7 & (f | dq | cd | bw | vl)) == (f | dq | cd | bw | vl) && KernelSaves(Avx512State) ? 4 : 3;
    }

    // XSAVE state components: SSE and AVX (YMM) registers; AVX-512's opmask and upper ZMM registers.
    private const ulong AvxState = 0b110, Avx512State = 0b1110_0110;

    /// <summary>
    /// Whether the kernel saves these register states for processes, which the CPU's flags alone do not tell (a VM or
    /// kernel may expose AVX-512 without enabling it, and an image that needs it would abort at start with no way back).
    /// Asked through arch_prctl(ARCH_GET_XCOMP_SUPP), Linux 5.16 and later; an older kernel that cannot answer is
    /// trusted on OSXSAVE, as before the question existed.
    /// </summary>
    private static bool KernelSaves(ulong components)
    {
        ulong supported = 0;
        if (arch_prctl(ArchGetXcompSupp, ref supported) != 0) return true;
        return (supported & components) == components;
    }

    private const int ArchGetXcompSupp = 0x1021;

    [LibraryImport("libc", EntryPoint = "arch_prctl", SetLastError = true)]
    private static partial int arch_prctl(int code, ref ulong value);

    /// <summary>What `bcmr --version` says after the version: the image that runs and the BLAKE3 kernel it uses.</summary>
    public static string Description() =>
        RuntimeFeature.IsDynamicCodeSupported
            ? $"blake3: {Bcmr.Engine.Hashing.Blake3.KernelName}; JIT"
            : $"blake3: {Bcmr.Engine.Hashing.Blake3.KernelName}; image x86-64-v{OwnLevel} of a CPU with x86-64-v{CpuLevel()}";

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execv(string path, string?[] argv);
}
