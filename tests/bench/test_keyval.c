/* bench/keyval.c: keys in zero-padded decimal (memcmp order = number order, parse round
 * trip), values determined by (key, version) and checked byte for byte, and the Feistel
 * permutation (a bijection of [0, n)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyval.h"
#include "testutil.h"

static void test_digits(void **state)
{
    (void)state;
    assert_int_equal(kvb_digits(0), 1);
    assert_int_equal(kvb_digits(1), 1);
    assert_int_equal(kvb_digits(10), 1);
    assert_int_equal(kvb_digits(11), 2);
    assert_int_equal(kvb_digits(200000), 6);
    assert_int_equal(kvb_digits(200001), 6);
    assert_int_equal(kvb_digits(1000001), 7);
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t k[32];
    kvb_key(k, 16, 1234);
    assert_memory_equal(k, "0000000000001234", 16);
    kvb_key(k, 16, 0);
    assert_memory_equal(k, "0000000000000000", 16);
    kvb_key(k, 6, 999999);
    assert_memory_equal(k, "999999", 6);
    kvb_key(k, 24, 12345678901234567ull);
    assert_memory_equal(k, "000000012345678901234567", 24);
    tu_rng r = {tu_seed(9)};
    size_t sizes[] = {6, 7, 8, 9, 16, 20, 23};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        for (int i = 0; i < 2000; i++) {
            uint64_t a = tu_below(&r, 1000000), b = tu_below(&r, 1000000), got;
            uint8_t ka[32], kb[32];
            kvb_key(ka, sizes[s], a);
            kvb_key(kb, sizes[s], b);
            int c = memcmp(ka, kb, sizes[s]);
            assert_true((a < b && c < 0) || (a == b && c == 0) || (a > b && c > 0));
            assert_true(kvb_key_parse(ka, sizes[s], sizes[s], &got));
            assert_true(got == a);
        }
    }
    uint64_t got;
    assert_false(kvb_key_parse("00000000000012a4", 16, 16, &got));
    assert_false(kvb_key_parse("0000000000001234", 15, 16, &got));
    assert_false(kvb_key_parse("000000000000123/", 16, 16, &got));
    assert_false(kvb_key_parse("\xff"
                               "000000000001234",
                               16, 16, &got));
    assert_false(kvb_key_parse("00000000:0001234", 16, 16, &got));
}

static void test_values(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 3, 7, 8, 9, 15, 16, 100, 1000, (1u << 20) + 5000};
    uint8_t *v = malloc((1u << 20) + 5000), *w = malloc((1u << 20) + 5000);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        uint32_t ver = 99;
        kvb_value(v, n, 77, 5);
        assert_true(kvb_value_check(v, n, n, 77, &ver));
        assert_int_equal(ver, n >= KVB_STAMP ? 5 : 0);
        kvb_value(w, n, 77, 5);
        assert_memory_equal(v, w, n);
        /* Any changed byte, another key, or another length fails. (A changed version byte
         * names another version, whose pool slice must then match: certain to fail only with
         * 8 or more bytes after the stamp.) */
        for (size_t i = n >= KVB_STAMP && n < 16 ? 4 : 0; i<n; i += n> 4096 ? 997 : 1) {
            v[i] ^= 0x01;
            assert_false(kvb_value_check(v, n, n, 77, &ver));
            v[i] ^= 0x01;
        }
        if (n >= KVB_STAMP) /* the key tag differs */
            assert_false(kvb_value_check(v, n, n, 78, &ver));
        if (n > 0)
            assert_false(kvb_value_check(v, n - 1, n, 77, &ver));
        if (n >= 16) {
            /* Another version's value is a valid value with that version. */
            kvb_value(w, n, 77, 6);
            assert_memory_not_equal(v, w, n);
            assert_true(kvb_value_check(w, n, n, 77, &ver));
            assert_int_equal(ver, 6);
        }
    }
    free(v);
    free(w);
}

/* The inline paths of the benchmark's loops (kvb_value_fast, kvb_value_is, kvb_copy,
 * kvb_equal) give the same bytes and the same verdicts as kvb_value and kvb_value_check, at
 * every length around their 16-, 256- and pool-size boundaries. */
static void test_values_fast(void **state)
{
    (void)state;
    size_t sizes[] = {0,
                      1,
                      7,
                      8,
                      9,
                      15,
                      16,
                      17,
                      23,
                      24,
                      31,
                      32,
                      100,
                      255,
                      256,
                      257,
                      263,
                      264,
                      265,
                      1000,
                      KVB_STAMP + KVB_POOL_SIZE,
                      KVB_STAMP + KVB_POOL_SIZE + 1,
                      (1u << 20) + 5000};
    size_t cap = (1u << 20) + 5000;
    uint8_t *v = malloc(cap), *w = malloc(cap);
    assert_non_null(v);
    assert_non_null(w);
    kvb_init();
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        for (uint64_t idx = 0; idx < 40; idx += 13) {
            uint32_t ver = 99, version = (uint32_t)(idx % 7 + 1);
            memset(v, 0xAA, n);
            kvb_value_fast(v, n, idx, version);
            kvb_value(w, n, idx, version);
            assert_memory_equal(v, w, n);
            assert_true(kvb_value_is(v, n, n, idx, version));
            assert_true(kvb_value_check(v, n, n, idx, &ver));
            if (n >= KVB_STAMP) {
                /* another version, another key, another length */
                assert_false(kvb_value_is(v, n, n, idx, version + 1));
                assert_false(kvb_value_is(v, n, n, idx + 1, version));
            }
            if (n > 0)
                assert_false(kvb_value_is(v, n - 1, n, idx, version));
            /* every changed byte (every 997th for the big ones) */
            for (size_t i = 0; i<n; i += n> 4096 ? 997 : 1) {
                v[i] ^= 0x20;
                assert_false(kvb_value_is(v, n, n, idx, version));
                v[i] ^= 0x20;
            }
            assert_true(kvb_value_is(v, n, n, idx, version));
        }
        /* kvb_copy and kvb_equal against memcpy and memcmp */
        if (n <= 4096) {
            for (size_t i = 0; i < n; i++)
                v[i] = (uint8_t)(i * 7 + 3);
            memset(w, 0, n + 1);
            kvb_copy(w, v, n);
            assert_memory_equal(v, w, n);
            assert_int_equal(w[n], 0); /* nothing written past n */
            assert_true(kvb_equal(v, w, n));
            for (size_t i = 0; i < n; i++) {
                w[i] ^= 0x80;
                assert_false(kvb_equal(v, w, n));
                w[i] ^= 0x80;
            }
        }
    }
    free(v);
    free(w);
}

static void test_perm(void **state)
{
    (void)state;
    uint64_t ns[] = {1, 2, 3, 7, 64, 1000, 4097, 100003};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        uint64_t n = ns[t];
        kvb_perm p;
        kvb_perm_init(&p, n, 42);
        uint8_t *seen = calloc(n, 1);
        uint64_t fixed = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t x = kvb_perm_at(&p, i);
            assert_true(x < n);
            assert_int_equal(seen[x], 0);
            seen[x] = 1;
            fixed += x == i;
        }
        if (n >= 1000)
            assert_true(fixed < n / 100); /* not the identity */
        free(seen);
    }
    kvb_perm a, b;
    kvb_perm_init(&a, 1000, 1);
    kvb_perm_init(&b, 1000, 2);
    int same = 0;
    for (uint64_t i = 0; i < 1000; i++)
        same += kvb_perm_at(&a, i) == kvb_perm_at(&b, i);
    assert_true(same < 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits), cmocka_unit_test(test_keys),
        cmocka_unit_test(test_values), cmocka_unit_test(test_values_fast),
        cmocka_unit_test(test_perm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
