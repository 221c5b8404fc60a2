/* Random key choosers of the benchmark: a seeded splitmix64 generator, uniform choice, and the
 * zipfian generator of Gray et al., "Quickly Generating Billion-Record Synthetic Databases"
 * (SIGMOD 1994), as YCSB's ZipfianGenerator, ScrambledZipfianGenerator and
 * SkewedLatestGenerator use it (Cooper et al., "Benchmarking Cloud Serving Systems with YCSB",
 * SoCC 2010). Ranks are 0-based: rank 0 is the most frequent. Not thread-safe: one per thread. */
#ifndef KVLAB_BENCH_ZIPF_H
#define KVLAB_BENCH_ZIPF_H

#include <stdint.h>

/* splitmix64 (Steele, Lea and Flood 2014): 8 bytes of state, period 2^64. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint64_t rng_next(bench_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double rng_double(bench_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift: no division, bias < n / 2^64). */
static inline uint64_t rng_below(bench_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* YCSB's zipfian constant and the precomputed zeta(10^10, 0.99) its scrambled generator uses. */
#define ZIPF_YCSB_THETA 0.99
#define ZIPF_YCSB_ITEMS 10000000000ull
#define ZIPF_YCSB_ZETAN 26.46902820178302

/* Gray's generator over ranks [0, items). */
typedef struct zipf_gen {
    uint64_t items;          /* ranks are in [0, items) */
    uint64_t count_for_zeta; /* items zetan was computed for */
    double theta, alpha, zetan, zeta2theta, eta;
    double half_pow_theta; /* 0.5^theta: 1 + this is the bound of rank 1 */
    unsigned int_alpha;    /* alpha when it is an integer (to 1e-9), else 0 */
} zipf_gen;

/* zeta(n, theta) = sum over i = 1..n of 1 / i^theta. O(n) time. */
double zipf_zeta(uint64_t n, double theta);

/* Sets z up over items >= 1 ranks with skew theta in (0, 1), computing zeta (O(items) pow()
 * calls: about 10 ms per million items). */
void zipf_init(zipf_gen *z, uint64_t items, double theta);

/* The same with zeta(items, theta) given (YCSB precomputes it for 10^10 items). */
void zipf_init_zetan(zipf_gen *z, uint64_t items, double theta, double zetan);

/* Grows the rank space to items (>= the current count), updating zeta incrementally in
 * O(items - old), as YCSB's ZipfianGenerator.nextLong(itemcount) does when records are added. */
void zipf_grow(zipf_gen *z, uint64_t items);

/* The next rank in [0, items): rank 0 with probability 1 / zeta(items). */
uint64_t zipf_next(zipf_gen *z, bench_rng *r);

/* YCSB's Utils.fnvhash64: FNV-1 64-bit over the 8 little-endian bytes of v, then Java's
 * Math.abs of the signed result. */
uint64_t zipf_fnv64(uint64_t v);

/* YCSB's ScrambledZipfianGenerator over [0, n): a zipfian rank over 10^10 items with theta
 * 0.99 and the precomputed zeta, hashed with zipf_fnv64 and reduced mod n, so that the popular
 * keys are spread over the key space instead of clustered at its start. */
typedef struct zipf_scrambled {
    zipf_gen z;
    uint64_t n;
    unsigned __int128 m; /* ceil(2^128 / n): h mod n by multiplications (zipf_fastmod) */
} zipf_scrambled;

/* a mod n with m = zipf_fastmod_m(n), by three multiplications instead of a division (Lemire,
 * Kaser and Kurz, "Faster Remainder by Direct Computation", 2019); exact for every a and n >= 1. */
unsigned __int128 zipf_fastmod_m(uint64_t n);
static inline uint64_t zipf_fastmod(uint64_t a, unsigned __int128 m, uint64_t n)
{
    unsigned __int128 low = m * a;
    unsigned __int128 bottom = ((low & UINT64_MAX) * n) >> 64;
    unsigned __int128 top = (low >> 64) * n;
    return (uint64_t)((bottom + top) >> 64);
}

void zipf_scrambled_init(zipf_scrambled *s, uint64_t n);
uint64_t zipf_scrambled_next(zipf_scrambled *s, bench_rng *r);

/* YCSB's SkewedLatestGenerator: with newest the index of the most recently inserted record,
 * returns newest - zipfian rank over newest + 1 items, so recent records are the most popular.
 * z is a zipf_gen set up with zipf_init over the records at the start (it grows with newest). */
uint64_t zipf_latest_next(zipf_gen *z, bench_rng *r, uint64_t newest);

#endif
