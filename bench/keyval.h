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
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Bytes of the version and key tag at the start of a value. */
#define KVB_STAMP 8

/* Decimal digits needed to write every index below n (at least 1). */
size_t kvb_digits(uint64_t n);

/* Writes the key of idx into buf (key_size bytes, key_size >= kvb_digits(idx + 1)). */
void kvb_key(uint8_t *buf, size_t key_size, uint64_t idx);

/* Parses a key made by kvb_key back into *idx. False when it is not one (wrong length or a
 * non-digit). */
bool kvb_key_parse(const void *key, size_t klen, size_t key_size, uint64_t *idx);

/* Bytes of the random pool the values' filler is cut from (64 KiB: stays in the L2 cache). */
#define KVB_POOL_SIZE (1u << 16)

/* The pool, twice: bytes [KVB_POOL_SIZE, 2 x KVB_POOL_SIZE) repeat the first half, so a slice
 * of up to KVB_POOL_SIZE bytes from any offset below KVB_POOL_SIZE is contiguous. Valid after
 * kvb_init (the functions below that are not inline call it themselves). */
extern uint8_t kvb_pool[2 * KVB_POOL_SIZE];

/* Builds the pool once per process (thread-safe; later calls return at once). Call it before
 * kvb_value_fast and kvb_value_is. */
void kvb_init(void);

/* Fills buf (vlen bytes) with the value of (idx, version). */
void kvb_value(uint8_t *buf, size_t vlen, uint64_t idx, uint32_t version);

/* Checks that v (vlen bytes) is the value of (idx, version) for some version, expected length
 * want_len, storing that version in *version (0 for values shorter than KVB_STAMP bytes). */
bool kvb_value_check(const void *v, size_t vlen, size_t want_len, uint64_t idx, uint32_t *version);

/* splitmix64's finalizer (Steele, Lea and Flood 2014): the hash behind tags and offsets. */
static inline uint64_t kvb_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The 64-bit hash of idx behind its values: the low half is the key tag, the high half the
 * base of the filler's pool offset (one hash per value made or checked). */
static inline uint64_t kvb_key_hash(uint64_t idx)
{
    return kvb_mix(idx + 0x632be59bd9b4e019ull);
}

/* The 4-byte key tag of idx (bytes 4..7 of its values). */
static inline uint32_t kvb_key_tag(uint64_t idx)
{
    return (uint32_t)kvb_key_hash(idx);
}

/* Where the filler of a value starts in the pool (< KVB_POOL_SIZE), from the key hash h and
 * the version: the high half of h xor the high half of version x 0x9e3779b97f4a7c15 (every
 * version bit reaches it), modulo the pool size. */
static inline size_t kvb_pool_offset_h(uint64_t h, uint32_t version)
{
    uint32_t v = (uint32_t)(((uint64_t)version * 0x9e3779b97f4a7c15ull) >> 32);
    return (size_t)(((uint32_t)(h >> 32) ^ v) & (KVB_POOL_SIZE - 1));
}

static inline size_t kvb_pool_offset(uint64_t idx, uint32_t version)
{
    return kvb_pool_offset_h(kvb_key_hash(idx), version);
}

/* The 8-byte stamp from the key hash: version (little-endian u32) then the key tag (LE u32). */
static inline uint64_t kvb_stamp_word_h(uint64_t h, uint32_t version)
{
    return (uint64_t)version | h << 32;
}

static inline uint64_t kvb_stamp_word(uint64_t idx, uint32_t version)
{
    return kvb_stamp_word_h(kvb_key_hash(idx), version);
}

static inline void kvb_stamp(uint8_t *b, uint64_t idx, uint32_t version)
{
    uint64_t w = kvb_stamp_word(idx, version);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(b, &w, 8); /* one store (8 byte stores would stall the load that checks them) */
#else
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(w >> (8 * i));
#endif
}

/* The 8 stamp bytes at b as a word (kvb_stamp_word's layout). */
static inline uint64_t kvb_stamp_read(const uint8_t *b)
{
    uint64_t w = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&w, b, 8);
#else
    for (int i = 0; i < 8; i++)
        w |= (uint64_t)b[i] << (8 * i);
#endif
    return w;
}

/* Whether b starts with a stamp of idx; stores its version in *version. */
static inline bool kvb_stamp_check(const uint8_t *b, uint64_t idx, uint32_t *version)
{
    uint64_t w = kvb_stamp_read(b);
    *version = (uint32_t)w;
    return (uint32_t)(w >> 32) == kvb_key_tag(idx);
}

/* Copies n bytes: 16-byte SSE2 moves, the last one overlapping, for 16 <= n <= 256 on x86-64
 * (no call, unlike memcpy); memcpy otherwise. */
static inline void kvb_copy(uint8_t *d, const uint8_t *s, size_t n)
{
#ifdef __SSE2__
    if (n >= 16 && n <= 256) {
        __m128i last = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(void *)(d + i),
                             _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
        _mm_storeu_si128((__m128i *)(void *)(d + n - 16), last);
        return;
    }
#endif
    memcpy(d, s, n);
}

/* Whether a and b (n bytes) are equal: 16-byte SSE2 compares for 16 <= n <= 256 on x86-64
 * (no call, no early exit: the bytes are expected equal); memcmp otherwise. */
static inline bool kvb_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
#ifdef __SSE2__
    if (n >= 16 && n <= 256) {
        __m128i diff = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(a + n - 16)),
                                     _mm_loadu_si128((const __m128i *)(const void *)(b + n - 16)));
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            diff = _mm_or_si128(
                diff, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(a + i)),
                                    _mm_loadu_si128((const __m128i *)(const void *)(b + i))));
        return _mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xffff;
    }
#endif
    return memcmp(a, b, n) == 0;
}

/* kvb_value for the benchmark's loops: the same bytes, inline (a stamp store and one memcpy
 * from the pool) when KVB_STAMP <= vlen <= KVB_STAMP + KVB_POOL_SIZE. Needs kvb_init. */
static inline void kvb_value_fast(uint8_t *buf, size_t vlen, uint64_t idx, uint32_t version)
{
    if (vlen < KVB_STAMP || vlen - KVB_STAMP > KVB_POOL_SIZE) {
        kvb_value(buf, vlen, idx, version);
        return;
    }
    uint64_t h = kvb_key_hash(idx), w = kvb_stamp_word_h(h, version);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(buf, &w, 8);
#else
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(w >> (8 * i));
#endif
    kvb_copy(buf + KVB_STAMP, kvb_pool + kvb_pool_offset_h(h, version), vlen - KVB_STAMP);
}

/* Whether v (vlen bytes) is exactly the value of (idx, version) (length, stamp and every
 * filler byte), inline. Everything it compares with is computed from (idx, version) alone, so
 * the work overlaps the engine call that produced v. A false answer says nothing more: ask
 * kvb_value_check whether v is the value of another version. Needs kvb_init. */
static inline bool kvb_value_is(const void *v, size_t vlen, size_t want_len, uint64_t idx,
                                uint32_t version)
{
    if (vlen != want_len)
        return false;
    if (vlen < KVB_STAMP || vlen - KVB_STAMP > KVB_POOL_SIZE) {
        uint32_t got;
        return kvb_value_check(v, vlen, want_len, idx, &got) &&
               (vlen < KVB_STAMP || got == version);
    }
    const uint8_t *b = v;
    uint64_t h = kvb_key_hash(idx);
    return kvb_stamp_read(b) == kvb_stamp_word_h(h, version) &&
           kvb_equal(b + KVB_STAMP, kvb_pool + kvb_pool_offset_h(h, version), vlen - KVB_STAMP);
}

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
