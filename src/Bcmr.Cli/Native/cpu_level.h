/*
 * The CPU's x86-64 level, decided in one place for the launcher (launcher.c) and the images (simd_dispatch.c).
 * Plain C with no libc calls beyond syscall(2), so the static launcher and every image can include it.
 */
#ifndef BCMR_CPU_LEVEL_H
#define BCMR_CPU_LEVEL_H
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* XSAVE state components: SSE and AVX (YMM) registers; AVX-512's opmask and upper ZMM registers. */
#define AVX_STATE 0x6ULL
#define AVX512_STATE 0xE6ULL
#define ARCH_GET_XCOMP_SUPP 0x1021

/* Whether the kernel saves these register states for processes, which the CPU's flags alone do not tell (a VM may
 * expose AVX-512 without enabling it, and an image that needs it would abort at start). Linux 5.16 and later answer;
 * an older kernel is trusted on OSXSAVE. */
static int kernel_saves(unsigned long long components)
{
    unsigned long long supported = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &supported) != 0)
        return 1;
    return (supported & components) == components;
}

/* x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), v3 (AVX, AVX2, BMI1/2, FMA, F16C, LZCNT, MOVBE) or 2. */
static int bcmr_detect_cpu_level(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 2;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, movbe = (c >> 22) & 1;
    if (!osxsave || !avx || !fma || !f16c || !movbe)
        return 2;
    if (__get_cpuid_max(0, 0) < 7)
        return 2;
    unsigned b7, c81;
    __cpuid_count(7, 0, a, b7, c, d);
    if (!__get_cpuid(0x80000001, &a, &b, &c81, &d))
        return 2;
    int avx2 = (b7 >> 5) & 1, bmi1 = (b7 >> 3) & 1, bmi2 = (b7 >> 8) & 1, lzcnt = (c81 >> 5) & 1;
    if (!avx2 || !bmi1 || !bmi2 || !lzcnt || !kernel_saves(AVX_STATE))
        return 2;
    const unsigned f = 1u << 16, dq = 1u << 17, cd = 1u << 28, bw = 1u << 30, vl = 1u << 31;
    return (b7 & (f | dq | cd | bw | vl)) == (f | dq | cd | bw | vl) && kernel_saves(AVX512_STATE) ? 4 : 3;
}

#endif
