/* bench/zipf.c: Gray's zipfian generator (rank 0 most frequent, frequencies falling as
 * 1 / rank^theta), YCSB's FNV hash and scrambled generator (spread over the whole key space),
 * the skewed-latest generator, and determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "zipf.h"

#define SAMPLES 200000

static void test_zeta(void **state)
{
    (void)state;
    assert_true(fabs(zipf_zeta(1, 0.99) - 1.0) < 1e-12);
    assert_true(fabs(zipf_zeta(2, 0.99) - (1.0 + pow(2.0, -0.99))) < 1e-12);
    zipf_gen z;
    zipf_init(&z, 1000, 0.99);
    zipf_grow(&z, 2000);
    assert_true(fabs(z.zetan - zipf_zeta(2000, 0.99)) < 1e-9);
    assert_int_equal(z.items, 2000);
}

static void test_shape(void **state)
{
    (void)state;
    const uint64_t items = 1000;
    zipf_gen z;
    zipf_init(&z, items, 0.99);
    bench_rng r = {tu_seed(7)};
    uint64_t *count = calloc(items, sizeof *count);
    assert_non_null(count);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t k = zipf_next(&z, &r);
        assert_true(k < items);
        count[k]++;
    }
    /* Rank 0 is the most frequent, then the counts fall with the rank. */
    for (uint64_t k = 1; k < items; k++)
        assert_true(count[0] > count[k]);
    assert_true(count[1] > count[2]);
    assert_true(count[2] > count[10]);
    assert_true(count[10] > count[100] + count[101]);
    /* P(rank 0) = 1 / zeta(items): within 5% of it. */
    double p0 = (double)count[0] / SAMPLES, want = 1.0 / zipf_zeta(items, 0.99);
    assert_true(fabs(p0 - want) / want < 0.05);
    /* Ratio of rank 0 to rank 9 is about 10^theta (~9.8): between 7 and 13. */
    double ratio = (double)count[0] / (double)count[9];
    assert_true(ratio > 7 && ratio < 13);
    free(count);
}

static void test_fnv(void **state)
{
    (void)state;
    /* YCSB's Utils.fnvhash64 (FNV-1 over 8 LE bytes, then Math.abs). */
    assert_true(zipf_fnv64(0) == 6284781860667377211ull);
    assert_true(zipf_fnv64(1) == 8517097267634966620ull);
    assert_true(zipf_fnv64(12345) == 1792800413050876852ull);
    for (uint64_t v = 0; v < 1000; v++)
        assert_true(zipf_fnv64(v) >> 63 == 0 || zipf_fnv64(v) == (1ull << 63));
}

static void test_scrambled(void **state)
{
    (void)state;
    const uint64_t n = 1000;
    zipf_scrambled s;
    zipf_scrambled_init(&s, n);
    bench_rng r = {tu_seed(11)};
    uint64_t *count = calloc(n, sizeof *count);
    uint64_t decile[10] = {0};
    assert_non_null(count);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t k = zipf_scrambled_next(&s, &r);
        assert_true(k < n);
        count[k]++;
        decile[k * 10 / n]++;
    }
    /* The hottest key is the hash of rank 0, not key 0. */
    uint64_t hot = 0, distinct = 0;
    for (uint64_t k = 0; k < n; k++) {
        if (count[k] > count[hot])
            hot = k;
        distinct += count[k] > 0;
    }
    assert_int_equal(hot, zipf_fnv64(0) % n);
    /* Rank 0 over 10^10 items has P = 1 / 26.469 = 3.8%; collisions may add a little. */
    double p = (double)count[hot] / SAMPLES;
    assert_true(p > 0.03 && p < 0.06);
    /* Scrambling covers the key space: nearly every key is hit, every decile substantially. */
    assert_true(distinct >= n * 95 / 100);
    for (int d = 0; d < 10; d++)
        assert_true(decile[d] > SAMPLES / 40);
    free(count);
}

static void test_latest(void **state)
{
    (void)state;
    zipf_gen z;
    zipf_init(&z, 100, 0.99);
    bench_rng r = {tu_seed(3)};
    uint64_t at_newest = 0, near = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t newest = 500 + (uint64_t)i / 100; /* records keep arriving */
        uint64_t k = zipf_latest_next(&z, &r, newest);
        assert_true(k <= newest);
        at_newest += k == newest;
        near += newest - k < 10;
    }
    assert_int_equal(z.items, 500 + 19999 / 100 + 1);
    /* The newest record is the most popular: P(rank 0) = 1/zeta(~600) ~ 14%. */
    assert_true(at_newest > 20000 / 12);
    assert_true(near > 20000 / 3);
}

static void test_fastmod(void **state)
{
    (void)state;
    uint64_t ns[] = {1,
                     2,
                     3,
                     7,
                     1000,
                     200000,
                     200001,
                     1ull << 32,
                     (1ull << 32) + 1,
                     0x7fffffffffffffffull,
                     UINT64_MAX - 1,
                     UINT64_MAX};
    bench_rng r = {tu_seed(17)};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        unsigned __int128 m = zipf_fastmod_m(ns[i]);
        uint64_t edge[] = {0, 1, ns[i] - 1, ns[i], ns[i] + 1, UINT64_MAX, UINT64_MAX - 1};
        for (size_t e = 0; e < sizeof edge / sizeof *edge; e++)
            assert_true(zipf_fastmod(edge[e], m, ns[i]) == edge[e] % ns[i]);
        for (int k = 0; k < 20000; k++) {
            uint64_t a = rng_next(&r);
            assert_true(zipf_fastmod(a, m, ns[i]) == a % ns[i]);
            a >>= (unsigned)(k % 64);
            assert_true(zipf_fastmod(a, m, ns[i]) == a % ns[i]);
        }
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    zipf_scrambled a, b;
    zipf_scrambled_init(&a, 12345);
    zipf_scrambled_init(&b, 12345);
    bench_rng ra = {42}, rb = {42};
    for (int i = 0; i < 1000; i++)
        assert_true(zipf_scrambled_next(&a, &ra) == zipf_scrambled_next(&b, &rb));
    bench_rng u = {5};
    for (int i = 0; i < 10000; i++) {
        assert_true(rng_below(&u, 7) < 7);
        double d = rng_double(&u);
        assert_true(d >= 0 && d < 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeta),          cmocka_unit_test(test_shape),
        cmocka_unit_test(test_fnv),           cmocka_unit_test(test_scrambled),
        cmocka_unit_test(test_latest),        cmocka_unit_test(test_fastmod),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
