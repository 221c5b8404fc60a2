/* Keys, values and the Feistel permutation of keyval.h. */
#include <pthread.h>
#include <string.h>

#include "keyval.h"

size_t kvb_digits(uint64_t n)
{
    size_t d = 1;
    for (uint64_t top = n ? n - 1 : 0; top >= 10; top /= 10)
        d++;
    return d;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* v < 10^8 as eight ASCII digits, most significant first in memory: split into 4-digit,
 * 2-digit and 1-digit lanes with multiply-shift division (exact for these ranges). */
static inline uint64_t format8(uint64_t v)
{
    uint64_t abcdefgh = (v / 10000) | ((v % 10000) << 32);
    uint64_t ab = ((abcdefgh * 10486) >> 20) & 0x0000007F0000007Full;
    uint64_t abcd = ab | ((abcdefgh - ab * 100) << 16);
    uint64_t a = ((abcd * 103) >> 10) & 0x000F000F000F000Full;
    return (a | ((abcd - a * 10) << 8)) + 0x3030303030303030ull;
}
#endif

void kvb_key(uint8_t *buf, size_t key_size, uint64_t idx)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (key_size >= 16 && idx < 10000000000000000ull) {
        uint64_t hi = idx < 100000000 ? 0x3030303030303030ull : format8(idx / 100000000);
        uint64_t lo = format8(idx % 100000000);
        if (key_size > 16)
            memset(buf, '0', key_size - 16);
        memcpy(buf + key_size - 16, &hi, 8);
        memcpy(buf + key_size - 8, &lo, 8);
        return;
    }
#endif
    size_t p = key_size;
    memset(buf, '0', key_size);
    while (idx >= 100 && p >= 2) {
        unsigned d = (unsigned)(idx % 100);
        idx /= 100;
        p -= 2;
        buf[p] = (uint8_t)digit_pairs[2 * d];
        buf[p + 1] = (uint8_t)digit_pairs[2 * d + 1];
    }
    while (idx && p > 0) {
        buf[--p] = (uint8_t)('0' + idx % 10);
        idx /= 10;
    }
}

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline bool parse8(const uint8_t *p, uint64_t *out)
{
    uint64_t v;
    memcpy(&v, p, 8);
    v -= 0x3030303030303030ull;
    if ((v | (v + 0x7676767676767676ull)) & 0x8080808080808080ull)
        return false;
    v = (v * 10) + (v >> 8);
    v = (((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
         (((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
        32;
    *out = v;
    return true;
}
#endif

bool kvb_key_parse(const void *key, size_t klen, size_t key_size, uint64_t *idx)
{
    const uint8_t *k = key;
    if (klen != key_size)
        return false;
    uint64_t v = 0;
    size_t i = 0;
    for (; i < klen % 8; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i < klen; i += 8) {
        uint64_t c;
        if (!parse8(k + i, &c))
            return false;
        v = v * 100000000ull + c;
    }
#endif
    for (; i < klen; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    *idx = v;
    return true;
}

/* ---- values: a stamped slice of a random pool (db_bench's RandomGenerator idea) ---- */

uint8_t kvb_pool[2 * KVB_POOL_SIZE];
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* The pool's second half repeats the first, so a slice of up to KVB_POOL_SIZE bytes starting
 * anywhere in the first half is contiguous (one memcpy or memcmp, no wrap). */
static void pool_init(void)
{
    uint64_t s = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < KVB_POOL_SIZE; i += 8) {
        uint64_t w = kvb_mix(s += 0x9e3779b97f4a7c15ull);
        memcpy(kvb_pool + i, &w, 8);
    }
    memcpy(kvb_pool + KVB_POOL_SIZE, kvb_pool, KVB_POOL_SIZE);
}

void kvb_init(void)
{
    pthread_once(&pool_once, pool_init);
}

/* Copies n bytes of the pool from off (wrapping) into out. */
static void pool_copy(uint8_t *out, size_t off, size_t n)
{
    while (n) {
        size_t k = KVB_POOL_SIZE - off < n ? KVB_POOL_SIZE - off : n;
        memcpy(out, kvb_pool + off, k);
        out += k;
        n -= k;
        off = 0;
    }
}

/* Whether in (n bytes) equals the pool from off (wrapping). */
static bool pool_equal(const uint8_t *in, size_t off, size_t n)
{
    while (n) {
        size_t k = KVB_POOL_SIZE - off < n ? KVB_POOL_SIZE - off : n;
        if (memcmp(in, kvb_pool + off, k))
            return false;
        in += k;
        n -= k;
        off = 0;
    }
    return true;
}

void kvb_value(uint8_t *buf, size_t vlen, uint64_t idx, uint32_t version)
{
    kvb_init();
    if (vlen < KVB_STAMP) {
        pool_copy(buf, kvb_pool_offset(idx, 0), vlen);
        return;
    }
    kvb_stamp(buf, idx, version);
    pool_copy(buf + KVB_STAMP, kvb_pool_offset(idx, version), vlen - KVB_STAMP);
}

bool kvb_value_check(const void *v, size_t vlen, size_t want_len, uint64_t idx, uint32_t *version)
{
    const uint8_t *b = v;
    kvb_init();
    if (vlen != want_len)
        return false;
    if (vlen < KVB_STAMP) {
        *version = 0;
        return pool_equal(b, kvb_pool_offset(idx, 0), vlen);
    }
    uint32_t ver;
    if (!kvb_stamp_check(b, idx, &ver) ||
        !pool_equal(b + KVB_STAMP, kvb_pool_offset(idx, ver), vlen - KVB_STAMP))
        return false;
    *version = ver;
    return true;
}

void kvb_perm_init(kvb_perm *p, uint64_t n, uint64_t seed)
{
    unsigned bits = 2;
    while (bits < 64 && (1ull << bits) < n)
        bits += 2;
    p->n = n;
    p->half_bits = bits / 2;
    p->half_mask = (1ull << p->half_bits) - 1;
    for (int i = 0; i < 4; i++)
        p->keys[i] = kvb_mix(seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
}

static uint64_t feistel(const kvb_perm *p, uint64_t x)
{
    uint64_t l = x >> p->half_bits, r = x & p->half_mask;
    for (int i = 0; i < 4; i++) {
        uint64_t nl = r;
        r = l ^ (kvb_mix(r ^ p->keys[i]) & p->half_mask);
        l = nl;
    }
    return l << p->half_bits | r;
}

uint64_t kvb_perm_at(const kvb_perm *p, uint64_t i)
{
    uint64_t x = feistel(p, i);
    while (x >= p->n)
        x = feistel(p, x);
    return x;
}
