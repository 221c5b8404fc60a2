/* Helpers shared by kvlab's tests: scratch directories and a seeded random generator. */
#ifndef KVLAB_TESTUTIL_H
#define KVLAB_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A new empty directory under $KVLAB_TEST_TMP (or /tmp) named after tag, e.g.
 * ".../test-tmp/wal-crash-XXXXXX". Returns a malloc'd path (caller frees); aborts the test
 * program on failure. Whatever of it is left when the program exits (a failed test's) is
 * removed then, unless KVLAB_KEEP_TEST_DIRS is set (to look at it). */
char *tu_mkdtemp(const char *tag);

/* Removes path and everything under it (like rm -rf). Silently ignores a missing path. */
void tu_rmtree(const char *path);

/* What dir holds, recursively: one line per entry, "name size crc32 mtime" for a file, "name/"
 * for a directory, in name order. Two calls return equal strings when nothing in dir was created,
 * deleted, renamed, written or touched in between. Returns a malloc'd string (caller frees);
 * aborts when out of memory. */
char *tu_dir_state(const char *dir);

/* Asserts that x, a kv_status expression, is KV_OK (cmocka's assert_int_equal: the test includes
 * cmocka.h and kv.h). */
#define OK(x) assert_int_equal((x), KV_OK)

/* splitmix64: a small seeded generator for reproducible workloads. */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
static inline uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [0, n) (n > 0). */
static inline uint64_t tu_below(tu_rng *r, uint64_t n)
{
    return tu_next(r) % n;
}

/* The seed for randomized tests: $KVLAB_SEED when set, else the given default. Prints
 * "seed=N" to stderr so a failure can be replayed. */
uint64_t tu_seed(uint64_t dflt);

#endif
