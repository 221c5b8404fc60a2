/* Where the crash tests put their scratch directories. faultfs decides what is durable by
 * itself, so the real disk's fdatasync adds only time: a memory file system (/dev/shm) makes a
 * sweep many times faster on a busy machine. $KVLAB_CRASH_TMP overrides; without /dev/shm the
 * tests use tu_mkdtemp()'s $KVLAB_TEST_TMP. Returns a malloc'd new directory (caller removes it
 * with tu_rmtree and frees it). */
#ifndef KVLAB_TESTS_CRASH_TMP_H
#define KVLAB_TESTS_CRASH_TMP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

static inline char *crash_test_tmp(const char *tag)
{
    const char *base = getenv("KVLAB_CRASH_TMP");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
    if (!base)
        return tu_mkdtemp(tag);
    size_t n = snprintf(NULL, 0, "%s/kvlab-%s-XXXXXX", base, tag) + 1;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/kvlab-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        free(p);
        return tu_mkdtemp(tag);
    }
    return p;
}

#endif
