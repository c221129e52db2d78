using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Bcmr.Cli;

/// <summary>
/// One `bcmr` for every x86-64 CPU, at full SIMD speed on each. Native AOT fixes the instruction set at build time,
/// and it can test AVX2 at run time only in a binary whose baseline is AVX (which then will not start on older CPUs),
/// so the published folder holds the same program built for three levels, `bcmr.x86-64-v2` (portable), `-v3` (AVX2)
/// and `-v4` (AVX-512), and `bcmr` is a small static C launcher (Native/launcher.c) that asks the CPU which level it
/// has and execs the image for it. An image started by hand hands over to a higher sibling the same way, from a
/// constructor that runs before the runtime (Native/simd_dispatch.c). Measured: bench/RESULTS.md. BCMR_SIMD=portable
/// starts (and keeps) the portable image. The JIT build (the module's bcmr) chooses per method and has no images.
/// </summary>
internal static partial class SimdImage
{
    /// <summary>The x86-64 level this image was compiled for (Native AOT: constants of its baseline).</summary>
    public static int OwnLevel => Avx512F.IsSupported && Avx512BW.IsSupported ? 4 : Avx2.IsSupported ? 3 : 2;

    /// <summary>What `bcmr --version` says after the version: the image that runs and the BLAKE3 kernel it uses.</summary>
    public static string Description() =>
        RuntimeFeature.IsDynamicCodeSupported ? $"blake3: {Bcmr.Engine.Hashing.Blake3.KernelName}; JIT"
        : OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            ? $"blake3: {Bcmr.Engine.Hashing.Blake3.KernelName}; image x86-64-v{OwnLevel} of a CPU with x86-64-v{CpuLevel()}"
        : $"blake3: {Bcmr.Engine.Hashing.Blake3.KernelName}; Native AOT";

    /// <summary>The CPU's x86-64 level as the launcher decides it (Native/cpu_level.h, linked into AOT images only).</summary>
    [LibraryImport("bcmrnative", EntryPoint = "bcmr_cpu_level")]
    private static partial int CpuLevel();
}
