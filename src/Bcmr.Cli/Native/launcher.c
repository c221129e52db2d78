/*
 * The `bcmr` users run: a small static C program that starts the Native AOT image built for this CPU's x86-64
 * level, bcmr.x86-64-v4 (AVX-512), -v3 (AVX2) or -v2 (any x86-64 since 2009), found beside it (cpu_level.h).
 *
 * It replaced the portable .NET image as the program that chooses: that image paid for loading a 7 MiB program only
 * to exec another (3.4 ms of an 18.7 ms `bcmr --version`; this launcher costs about 0.3 ms, bench/RESULTS.md).
 * execv keeps the process id, arguments, environment and descriptors, so ssh and scripts see one program.
 * BCMR_SIMD=portable starts the -v2 image. Built static for the x86-64 baseline, so it starts on every x86-64.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_level.h"

int main(int argc, char **argv)
{
    (void)argc;
    int wanted = bcmr_wanted_level();
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 16);
    if (n <= 0) {
        fprintf(stderr, "bcmr: cannot find its own program file (/proc/self/exe): %s\n", strerror(errno));
        return 127;
    }
    self[n] = '\0';
    int failure = ENOENT;
    char tried[PATH_MAX + 16] = "";
    for (int level = wanted; level >= 2; level--) {
        char image[PATH_MAX + 16];
        bcmr_image_path(image, sizeof image, self, level); /* fits: self is at most PATH_MAX - 16 */
        execv(image, argv); /* returns only when it failed: try the next level down */
        if (errno != ENOENT || level == 2) {
            failure = errno;
            snprintf(tried, sizeof tried, "%s", image);
        }
        if (errno != ENOENT)
            break;
    }
    fprintf(stderr, "bcmr: cannot start %s: %s (bcmr.x86-64-v2, -v3 and -v4 are installed beside bcmr)\n", tried,
            strerror(failure));
    return 127;
}
