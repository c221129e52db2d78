/*
 * Which image runs, decided in one place for the launcher (launcher.c) and the images (simd_dispatch.c): the CPU's
 * x86-64 level, the BCMR_SIMD override, and the images' names. Plain C, so the static launcher and every image can
 * include it.
 */
#ifndef BCMR_CPU_LEVEL_H
#define BCMR_CPU_LEVEL_H
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* XSAVE state components: SSE and AVX (YMM) registers; AVX-512's opmask and upper ZMM registers. */
#define AVX_STATE 0x6ULL
#define AVX512_STATE 0xE6ULL
#define ARCH_GET_XCOMP_SUPP 0x1021

/* Whether the kernel saves these register states for processes, which the CPU's flags alone do not tell (a VM may
 * expose AVX-512 without enabling it, and an image that needs it would abort at start). Linux 5.16 and later answer;
 * an older kernel is trusted on OSXSAVE. */
static inline int kernel_saves(unsigned long long components)
{
    unsigned long long supported = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &supported) != 0)
        return 1;
    return (supported & components) == components;
}

/* x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), v3 (AVX, AVX2, BMI1/2, FMA, F16C, LZCNT, MOVBE) or 2. */
static inline int bcmr_detect_cpu_level(void)
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

/* The level whose image should run: the CPU's, or 2 under BCMR_SIMD=portable (for bug reports, and the tests). */
static inline int bcmr_wanted_level(void)
{
    const char *simd = getenv("BCMR_SIMD");
    return simd && strcmp(simd, "portable") == 0 ? 2 : bcmr_detect_cpu_level();
}

/* The images are BASE.x86-64-v2, -v3 and -v4, side by side; BASE is the launcher's own path. False if it does not
 * fit. */
static inline int bcmr_image_path(char *out, size_t size, const char *base, int level)
{
    return snprintf(out, size, "%s.x86-64-v%d", base, level) < (int)size;
}

/* The BASE of an image's own path: the path without its ".x86-64-vN" (unchanged when it has none). */
static inline void bcmr_strip_image_suffix(char *path)
{
    char *dot = strrchr(path, '.');
    if (dot && strncmp(dot, ".x86-64-v", 9) == 0 && dot[9] >= '2' && dot[9] <= '4' && dot[10] == '\0')
        *dot = '\0';
}

#endif
