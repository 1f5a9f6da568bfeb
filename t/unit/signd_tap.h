/*
 * Minimal TAP for the sidecar's C unit tests.
 */

#ifndef SIGND_TAP_H
#define SIGND_TAP_H

#include <stdio.h>

static int  signd_tap_n;
static int  signd_tap_failed;

#define ok(cond, ...)                                                        \
    do {                                                                     \
        int ok_c_ = (cond);                                                  \
        printf("%sok %d - ", ok_c_ ? "" : "not ", ++signd_tap_n);            \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        if (!ok_c_) {                                                        \
            signd_tap_failed++;                                              \
            printf("#   failed at %s line %d\n", __FILE__, __LINE__);        \
        }                                                                    \
    } while (0)

#define done_testing()                                                       \
    (printf("1..%d\n", signd_tap_n), signd_tap_failed ? 1 : 0)

#endif /* SIGND_TAP_H */
