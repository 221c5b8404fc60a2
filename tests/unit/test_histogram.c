/* The latency histogram: relative error, merge, percentiles, the empty case. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "histogram.h"
#include "testutil.h"

#define HOUR_NS 3600000000000ull

static double rel_err(uint64_t got, uint64_t want)
{
    return fabs((double)got - (double)want) / (double)want;
}

/* A histogram holding one value reports it within 1% at every percentile. */
static void test_relative_error(void **state)
{
    (void)state;
    kv_histogram *h = kv_histogram_new();
    assert_non_null(h);
    tu_rng r = {tu_seed(1)};
    double worst = 0;
    for (int i = 0; i < 20000; i++) {
        /* log-uniform over 1 ns .. 1 hour */
        int bits = (int)tu_below(&r, 42);
        uint64_t v = (1ull << bits) + tu_below(&r, 1ull << bits);
        if (v > HOUR_NS)
            v = HOUR_NS;
        /* v is the median between 1 ns and 1 hour, so clamping to [min, max] cannot help */
        kv_histogram_reset(h);
        kv_histogram_record(h, 1);
        kv_histogram_record(h, v);
        kv_histogram_record(h, HOUR_NS);
        uint64_t p = kv_histogram_percentile(h, 50);
        double e = rel_err(p, v);
        if (e > worst)
            worst = e;
        assert_true(e <= 0.01);
    }
    assert_true(worst > 0); /* the buckets are not exact: the test can fail */
    kv_histogram_free(h);
}

static void test_extremes(void **state)
{
    (void)state;
    kv_histogram *h = kv_histogram_new();
    kv_histogram_record(h, 0); /* counts as 1 ns */
    assert_int_equal(kv_histogram_min(h), 1);
    kv_histogram_record(h, 5 * HOUR_NS); /* counted as an hour, max exact */
    assert_int_equal(kv_histogram_max(h), 5 * HOUR_NS);
    assert_int_equal(kv_histogram_count(h), 2);
    assert_int_equal(kv_histogram_percentile(h, 0), 1);
    uint64_t p100 = kv_histogram_percentile(h, 100);
    assert_true(rel_err(p100, HOUR_NS) <= 0.01);
    kv_histogram_free(h);
}

static void test_empty(void **state)
{
    (void)state;
    kv_histogram *h = kv_histogram_new();
    assert_int_equal(kv_histogram_count(h), 0);
    assert_int_equal(kv_histogram_min(h), 0);
    assert_int_equal(kv_histogram_max(h), 0);
    assert_true(kv_histogram_mean(h) == 0.0);
    assert_int_equal(kv_histogram_percentile(h, 50), 0);
    assert_int_equal(kv_histogram_percentile(h, 99.9), 0);
    kv_histogram_free(h);
}

/* Uniform 1..100000 ns: percentile p is about p * 1000 ns. */
static void test_known_distribution(void **state)
{
    (void)state;
    kv_histogram *h = kv_histogram_new();
    for (uint64_t v = 1; v <= 100000; v++)
        kv_histogram_record(h, v);
    assert_int_equal(kv_histogram_count(h), 100000);
    assert_int_equal(kv_histogram_min(h), 1);
    assert_int_equal(kv_histogram_max(h), 100000);
    assert_true(fabs(kv_histogram_mean(h) - 50000.5) < 1e-6);
    static const double ps[] = {1, 10, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t want = (uint64_t)(ps[i] * 1000);
        assert_true(rel_err(kv_histogram_percentile(h, ps[i]), want) <= 0.01);
    }
    assert_int_equal(kv_histogram_percentile(h, 100), 100000);
    /* a two-point distribution: 90% at 1 us, 10% at 1 ms */
    kv_histogram_reset(h);
    for (int i = 0; i < 900; i++)
        kv_histogram_record(h, 1000);
    for (int i = 0; i < 100; i++)
        kv_histogram_record(h, 1000000);
    assert_true(rel_err(kv_histogram_percentile(h, 90), 1000) <= 0.01);
    assert_true(rel_err(kv_histogram_percentile(h, 90.1), 1000000) <= 0.01);
    assert_true(rel_err(kv_histogram_percentile(h, 99), 1000000) <= 0.01);
    kv_histogram_free(h);
}

static void test_merge_equals_one(void **state)
{
    (void)state;
    kv_histogram *all = kv_histogram_new(), *a = kv_histogram_new(), *b = kv_histogram_new();
    tu_rng r = {7};
    for (int i = 0; i < 50000; i++) {
        uint64_t v = tu_below(&r, 1ull << (tu_below(&r, 40) + 1));
        kv_histogram_record(all, v);
        kv_histogram_record(i % 3 ? a : b, v);
    }
    kv_histogram *empty = kv_histogram_new();
    kv_histogram_merge(a, empty);
    kv_histogram_merge(a, b);
    assert_int_equal(kv_histogram_count(a), kv_histogram_count(all));
    assert_int_equal(kv_histogram_min(a), kv_histogram_min(all));
    assert_int_equal(kv_histogram_max(a), kv_histogram_max(all));
    assert_true(fabs(kv_histogram_mean(a) - kv_histogram_mean(all)) <=
                1e-9 * kv_histogram_mean(all));
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(kv_histogram_percentile(a, p), kv_histogram_percentile(all, p));
    kv_histogram_merge(empty, all); /* into an empty one */
    assert_int_equal(kv_histogram_min(empty), kv_histogram_min(all));
    assert_int_equal(kv_histogram_percentile(empty, 99), kv_histogram_percentile(all, 99));
    kv_histogram_free(all);
    kv_histogram_free(a);
    kv_histogram_free(b);
    kv_histogram_free(empty);
}

/* The buckets tile the values: ascending, contiguous, each recorded value in the bucket whose
 * range holds it, counts summing to the total. */
static void test_buckets(void **state)
{
    (void)state;
    kv_histogram *h = kv_histogram_new();
    static const uint64_t vals[] = {1, 255, 256, 257, 1000, 123456, 3600000000000ull};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        kv_histogram_record(h, vals[i]);
    uint64_t total = 0, prev_hi = 0;
    unsigned n = kv_histogram_buckets();
    for (unsigned i = 1; i < n; i++) {
        uint64_t lo, hi, c = kv_histogram_bucket(h, i, &lo, &hi);
        assert_true(lo <= hi);
        assert_int_equal(lo, prev_hi + 1);
        assert_true(hi - lo <= lo / 128);
        prev_hi = hi;
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
            if (vals[k] >= lo && vals[k] <= hi)
                assert_true(c >= 1);
        total += c;
    }
    assert_true(prev_hi >= 3600000000000ull);
    assert_int_equal(total, kv_histogram_count(h));
    uint64_t lo, hi;
    assert_int_equal(kv_histogram_bucket(h, n, &lo, &hi), 0);
    kv_histogram_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relative_error),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_known_distribution),
        cmocka_unit_test(test_merge_equals_one),
        cmocka_unit_test(test_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
