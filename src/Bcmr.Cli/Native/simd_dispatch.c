/*
 * Linked into every Native AOT image (bcmr.x86-64-v2, -v3, -v4; SimdImage.cs). Two jobs before the .NET runtime starts:
 *
 * 1. An image started directly (not through the `bcmr` launcher, launcher.c) hands over to the sibling built for this
 *    CPU's level when there is one. This runs as an ELF constructor because a hand-over from managed code paid for a
 *    whole runtime start-up that was thrown away. execv keeps the process id, arguments, environment and descriptors.
 *    BCMR_SIMD=portable keeps the running image.
 * 2. The runtime's first act is to rehydrate its type data (about 1.4 MiB here) into the image's zero-filled
 *    `.hydrated` section, one page fault per 4 KiB page. Those faults were a fifth of `bcmr --version`
 *    (bench/RESULTS.md, session 15); asking the kernel for the whole zero-filled part of the writable segment in one
 *    madvise(MADV_POPULATE_WRITE) is one system call instead. Kernels before 5.14 refuse it, and the runtime then
 *    faults the pages in as before.
 *
 * bcmr_cpu_level() is also what the managed side reports in `bcmr --version`, so the level is decided in one place
 * (cpu_level.h, shared with the launcher).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpu_level.h"

#ifndef BCMR_OWN_LEVEL
#error "build with -DBCMR_OWN_LEVEL=2|3|4: the x86-64 level this image is compiled for"
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int bcmr_cpu_level(void)
{
    return bcmr_detect_cpu_level();
}

static void exec_best_image(char **argv)
{
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
    /* Siblings are named bcmr.x86-64-vN, beside this image. */
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

/* The zero-filled tail of the program's writable segment (.bss and .hydrated), populated in one call. */
static int populate_zero_filled(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (info->dlpi_name && info->dlpi_name[0])
        return 0; /* a shared library; the program itself comes first and has an empty name */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_W) || p->p_memsz <= p->p_filesz)
            continue;
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t start = (info->dlpi_addr + p->p_vaddr + p->p_filesz + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + p->p_vaddr + p->p_memsz + page - 1) & ~(page - 1);
        if (end > start)
            madvise((void *)start, end - start, MADV_POPULATE_WRITE);
    }
    return 1;
}

__attribute__((constructor)) static void bcmr_before_runtime(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)envp;
    exec_best_image(argv);
    dl_iterate_phdr(populate_zero_filled, NULL);
}
