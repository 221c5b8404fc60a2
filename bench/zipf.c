/* The zipfian generators of zipf.h, after Gray et al. (SIGMOD 1994) and YCSB's Java code. */
#include <math.h>

#include "zipf.h"

double zipf_zeta(uint64_t n, double theta)
{
    double sum = 0;
    for (uint64_t i = 1; i <= n; i++)
        sum += 1.0 / pow((double)i, theta);
    return sum;
}

/* x^n by squaring (n >= 1). */
static double ipow(double x, unsigned n)
{
    double r = 1.0;
    while (n) {
        if (n & 1)
            r *= x;
        x *= x;
        n >>= 1;
    }
    return r;
}

static void set_eta(zipf_gen *z)
{
    z->eta = (1.0 - pow(2.0 / (double)z->items, 1.0 - z->theta)) / (1.0 - z->zeta2theta / z->zetan);
}

void zipf_init_zetan(zipf_gen *z, uint64_t items, double theta, double zetan)
{
    z->items = items ? items : 1;
    z->count_for_zeta = z->items;
    z->theta = theta;
    z->alpha = 1.0 / (1.0 - theta);
    /* theta 0.99 gives alpha 100.00000000000009: x^100 by 8 multiplications instead of pow()
     * (the results differ by a relative 1e-13 at most, so no rank changes in practice). */
    double ra = floor(z->alpha + 0.5);
    z->int_alpha = ra >= 1 && ra <= 1024 && fabs(z->alpha - ra) < 1e-9 ? (unsigned)ra : 0;
    z->zeta2theta = zipf_zeta(2, theta);
    z->half_pow_theta = pow(0.5, theta);
    z->zetan = zetan;
    set_eta(z);
}

void zipf_init(zipf_gen *z, uint64_t items, double theta)
{
    zipf_init_zetan(z, items, theta, zipf_zeta(items ? items : 1, theta));
}

void zipf_grow(zipf_gen *z, uint64_t items)
{
    if (items <= z->count_for_zeta)
        return;
    for (uint64_t i = z->count_for_zeta + 1; i <= items; i++)
        z->zetan += 1.0 / pow((double)i, z->theta);
    z->count_for_zeta = items;
    z->items = items;
    set_eta(z);
}

uint64_t zipf_next(zipf_gen *z, bench_rng *r)
{
    double u = rng_double(r);
    double uz = u * z->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + z->half_pow_theta)
        return z->items > 1 ? 1 : 0;
    double x = z->eta * u - z->eta + 1.0;
    double p = z->int_alpha ? ipow(x, z->int_alpha) : pow(x, z->alpha);
    uint64_t rank = (uint64_t)((double)z->items * p);
    return rank < z->items ? rank : z->items - 1;
}

#define FNV_PRIME 1099511628211ull

/* FNV_PRIME^k mod 2^64 for k = 0..8: a zero byte only multiplies by the prime, so the high
 * zero bytes of a small rank collapse into one multiplication (the same hash, fewer steps). */
static const uint64_t prime_pow[9] = {
    1ull,
    FNV_PRIME,
    FNV_PRIME *FNV_PRIME,
    FNV_PRIME *FNV_PRIME *FNV_PRIME,
    FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME,
    FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME,
    FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME,
    FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME,
    FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME *FNV_PRIME,
};

uint64_t zipf_fnv64(uint64_t v)
{
    uint64_t h = 0xCBF29CE484222325ull;
    int i = 0;
    for (; i < 8 && v; i++) {
        h ^= v & 0xff;
        v >>= 8;
        h *= FNV_PRIME;
    }
    h *= prime_pow[8 - i];
    /* Java's Math.abs on the signed value (INT64_MIN stays 2^63 here). */
    return (h >> 63) ? (uint64_t)0 - h : h;
}

unsigned __int128 zipf_fastmod_m(uint64_t n)
{
    unsigned __int128 all = ~(unsigned __int128)0;
    return all / n + 1;
}

void zipf_scrambled_init(zipf_scrambled *s, uint64_t n)
{
    zipf_init_zetan(&s->z, ZIPF_YCSB_ITEMS, ZIPF_YCSB_THETA, ZIPF_YCSB_ZETAN);
    s->n = n ? n : 1;
    s->m = zipf_fastmod_m(s->n);
}

uint64_t zipf_scrambled_next(zipf_scrambled *s, bench_rng *r)
{
    return zipf_fastmod(zipf_fnv64(zipf_next(&s->z, r)), s->m, s->n);
}

uint64_t zipf_latest_next(zipf_gen *z, bench_rng *r, uint64_t newest)
{
    zipf_grow(z, newest + 1);
    uint64_t rank = zipf_next(z, r);
    return rank > newest ? 0 : newest - rank;
}
