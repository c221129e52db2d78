/*
 * One `bcmr` for every x86-64 CPU (SimdImage.cs): the portable image hands over to the sibling built for this CPU's
 * level, bcmr.x86-64-v3 (AVX2) or bcmr.x86-64-v4 (AVX-512), found beside it.
 *
 * This runs as an ELF constructor, before the .NET runtime starts, because a hand-over from managed code paid for a
 * whole runtime start-up that was thrown away (about 10 ms of the 28 ms `bcmr --version` took, bench/simd.sh).
 * execv keeps the process id, arguments, environment and descriptors, so ssh and scripts see one program.
 * BCMR_SIMD=portable keeps the running image. glibc passes argc/argv/envp to constructors.
 *
 * bcmr_cpu_level() is also what the managed side reports in `bcmr --version`, so the level is decided in one place.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef BCMR_OWN_LEVEL
#error "build with -DBCMR_OWN_LEVEL=2|3|4: the x86-64 level this image is compiled for"
#endif

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
int bcmr_cpu_level(void)
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

__attribute__((constructor)) static void bcmr_exec_best_image(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)envp;
    const char *simd = getenv("BCMR_SIMD");
    if (simd && strcmp(simd, "portable") == 0)
        return;
    int cpu = bcmr_cpu_level();
    if (cpu <= BCMR_OWN_LEVEL)
        return;
    char base[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", base, sizeof base - 16);
    if (n <= 0)
        return;
    base[n] = '\0';
    /* Siblings live beside the portable image; a sibling itself is named bcmr.x86-64-vN. */
    char *dot = strrchr(base, '.');
    if (dot && strncmp(dot, ".x86-64-v", 9) == 0 && dot[9] >= '2' && dot[9] <= '4' && dot[10] == '\0')
        *dot = '\0';
    for (int level = cpu; level > BCMR_OWN_LEVEL; level--) {
        char image[PATH_MAX];
        if (snprintf(image, sizeof image, "%s.x86-64-v%d", base, level) >= (int)sizeof image)
            return;
        if (access(image, X_OK) == 0)
            execv(image, argv); /* returns only when it failed: try the next, then run on here */
    }
}
