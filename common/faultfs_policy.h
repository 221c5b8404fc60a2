/* The decisions of the power-loss policies (faultfs.h: kv_crash_policy), apart from any file.
 *
 * Given the policy, the seed and what was written since the last sync, these functions say what
 * survives a power loss: the size of a file, whether a 512-byte sector or a whole write call is
 * lost, which bytes of a write survive a byte-granular tear, and how many of a directory's
 * pending name operations survive. They do no I/O: faultfs (faultfs_data.c, faultfs_names.c)
 * applies them to the real files, and crashfs (bench/crash/crashfs.c) runs faultfs on its
 * backing directory, so both models make exactly the same choices for the same seed.
 *
 * Every choice comes from splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
 * number generators", OOPSLA 2014): a sequence seeded by the crash seed for the choices taken in
 * order (sizes, torn sectors, name prefixes), and a hash of (seed, write id) for the choices
 * that belong to one write call (random, torn-bytes), so that every byte a write touched shares
 * its write's fate whatever order the files are visited in. */
#ifndef KVLAB_FAULTFS_POLICY_H
#define KVLAB_FAULTFS_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "faultfs.h"

/* splitmix64: advances *s and returns the next value of its sequence. */
static inline uint64_t ff_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The most byte ranges a torn write is cut into (torn-bytes). */
#define FF_TEAR_MAX_PIECES 4

/* The state of one power loss: the policy, its seed and the two choice sequences. */
typedef struct ff_policy {
    kv_crash_policy policy;
    uint64_t seed;
    uint64_t data_rng; /* sizes and torn sectors, in the order files are visited */
    uint64_t name_rng; /* surviving prefixes of the directories' name operations */
} ff_policy;

/* Starts the choices of one power loss under policy with seed. */
void ff_policy_init(ff_policy *p, kv_crash_policy policy, uint64_t seed);

/* The size in bytes of a file after the crash, from its durable size (at its last successful
 * sync) and its current size. lose: durable; keep: current; random and torn: one of the two;
 * torn-bytes: durable, current or any byte count between them (a kept prefix of an extension
 * or of a shrink), each about a third of the time. */
uint64_t ff_policy_size(ff_policy *p, uint64_t durable, uint64_t current);

/* Whether a sector written since the last sync, last by write call wid, goes back to its durable
 * content (random: the fate of write wid; torn: a fresh choice per sector; lose: always; keep
 * and torn-bytes (decided per byte, ff_policy_write_tear): never). A doomed sector (a failed
 * sync covered it) is always lost. */
bool ff_policy_sector_lost(ff_policy *p, uint64_t wid, bool doomed);

/* torn-bytes: how the bytes of one write call survive. The write's range [off, off + len) is
 * split at cut points into n pieces (1 to FF_TEAR_MAX_PIECES) that are alternately lost and
 * kept, starting with first_lost: a third of the writes are kept whole, a third lost whole, a
 * third torn at 1 to 3 byte boundaries chosen anywhere inside the range (a kept prefix, a lost
 * prefix followed by kept bytes, or alternating ranges). */
typedef struct ff_tear {
    int n;                            /* pieces, 1..FF_TEAR_MAX_PIECES */
    uint64_t end[FF_TEAR_MAX_PIECES]; /* piece i covers [end[i-1], end[i]) (end[-1]=off) */
    bool first_lost;                  /* piece 0 is lost; pieces then alternate */
} ff_tear;

/* Fills *t for write call wid covering [off, off + len) (len >= 1). Depends only on the seed,
 * wid, off and len. */
void ff_policy_write_tear(const ff_policy *p, uint64_t wid, uint64_t off, uint64_t len, ff_tear *t);

/* Whether piece i of *t is lost. */
static inline bool ff_tear_piece_lost(const ff_tear *t, int i)
{
    return t->first_lost ^ (bool)(i & 1);
}

/* How many of a directory's `count` pending name operations survive, as a prefix: lose 0, keep
 * all, any other policy a choice from 0 to count. Call once per directory, in a fixed order. */
uint64_t ff_policy_names_kept(ff_policy *p, uint64_t count);

#endif
