/* Keys, values and orders of the benchmark.
 *
 * A key is the record index in zero-padded decimal, right-aligned in key_size bytes
 * ("0000000000001234" for 16 bytes), so memcmp order equals index order as in LevelDB's
 * db_bench. A value of vlen >= 8 bytes is deterministic from (index, version): bytes 0..3 hold
 * the version (little-endian u32), bytes 4..7 a 32-bit tag of the index, and the rest is a
 * slice of a 64 KiB pool of random bytes (wrapping) at an offset hashed from index and version,
 * the way db_bench's RandomGenerator serves values from a random buffer. The values are
 * incompressible for block compressors, the same for every engine, cheap to make (a copy) and
 * to check (a compare), and the pool stays in the L2 cache. Values shorter than 8 bytes are a
 * pool slice chosen by the index alone (no version). A reader can therefore check that a value
 * is exactly one that was written for that key, and which version. */
#ifndef KVLAB_BENCH_KEYVAL_H
#define KVLAB_BENCH_KEYVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the version and key tag at the start of a value. */
#define KVB_STAMP 8

/* Decimal digits needed to write every index below n (at least 1). */
size_t kvb_digits(uint64_t n);

/* Writes the key of idx into buf (key_size bytes, key_size >= kvb_digits(idx + 1)). */
void kvb_key(uint8_t *buf, size_t key_size, uint64_t idx);

/* Parses a key made by kvb_key back into *idx. False when it is not one (wrong length or a
 * non-digit). */
bool kvb_key_parse(const void *key, size_t klen, size_t key_size, uint64_t *idx);

/* Fills buf (vlen bytes) with the value of (idx, version). */
void kvb_value(uint8_t *buf, size_t vlen, uint64_t idx, uint32_t version);

/* Checks that v (vlen bytes) is the value of (idx, version) for some version, expected length
 * want_len, storing that version in *version (0 for values shorter than KVB_STAMP bytes). */
bool kvb_value_check(const void *v, size_t vlen, size_t want_len, uint64_t idx, uint32_t *version);

/* A seeded pseudo-random permutation of [0, n): a 4-round Feistel network on the smallest even
 * bit width covering n, with cycle walking (Black and Rogaway, "Ciphers with Arbitrary Finite
 * Domains", 2002). Used to insert every key exactly once in a random order. */
typedef struct kvb_perm {
    uint64_t n;
    unsigned half_bits;
    uint64_t half_mask;
    uint64_t keys[4];
} kvb_perm;

void kvb_perm_init(kvb_perm *p, uint64_t n, uint64_t seed);

/* The image of i (< n) in [0, n). */
uint64_t kvb_perm_at(const kvb_perm *p, uint64_t i);

#endif
