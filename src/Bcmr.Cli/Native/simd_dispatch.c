/*
 * Linked into every Native AOT image (bcmr.x86-64-v2, -v3, -v4; SimdImage.cs). An image started directly (not
 * through the `bcmr` launcher, launcher.c) hands over to the sibling built for this CPU's level when there is one,
 * before the .NET runtime starts. This runs as an ELF constructor because a hand-over from managed code paid for a
 * whole runtime start-up that was thrown away. execv keeps the process id, arguments, environment and descriptors.
 * BCMR_SIMD=portable keeps the running image.
 *
 * (Session 15 also pre-faulted the zero-filled `.hydrated` section here, where the runtime expanded its type data. The
 * images are now built with that data stored expanded (PublishProfiles/aot-linux-x64.props), the section is gone, and
 * pre-faulting what is left saved no page fault, so it was removed.)
 *
 * bcmr_cpu_level() is also what the managed side reports in `bcmr --version`, so the level is decided in one place
 * (cpu_level.h, shared with the launcher).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_level.h"

#ifndef BCMR_OWN_LEVEL
#error "build with -DBCMR_OWN_LEVEL=2|3|4: the x86-64 level this image is compiled for"
#endif

int bcmr_cpu_level(void)
{
    return bcmr_detect_cpu_level();
}

static void exec_best_image(char **argv)
{
    int wanted = bcmr_wanted_level();
    if (wanted <= BCMR_OWN_LEVEL)
        return;
    char base[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", base, sizeof base - 16);
    if (n <= 0)
        return;
    base[n] = '\0';
    bcmr_strip_image_suffix(base);
    for (int level = wanted; level > BCMR_OWN_LEVEL; level--) {
        char image[PATH_MAX];
        if (!bcmr_image_path(image, sizeof image, base, level))
            return;
        if (access(image, X_OK) == 0)
            execv(image, argv); /* returns only when it failed: try the next, then run on here */
    }
}

__attribute__((constructor)) static void bcmr_before_runtime(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)envp;
    exec_best_image(argv);
}
