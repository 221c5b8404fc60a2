/* test_conformance.c: the conformance suite every kvlab engine and production peer must pass
 * (docs/design.md section 2; BRIEF.md "The conformance suite"). One program, the engine name as
 * argv[1]; ctest runs it once per registered engine as conformance.<engine>. It uses only the
 * kv.h interface, at the limits and durability modes the engine declares. This file holds the
 * basic, size-limit, locking/option and inspection tests and main(); conf_concurrency.c,
 * conf_order.c and conf_differential.c hold the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "testutil.h"

/* ---- basic operations ---- */

static void test_basic(void **state)
{
    (void)state;
    char *dir = conf_dir("basic");
    kv_db *db = conf_open(dir, "os");
    conf_expect_missing(db, "k1", 2);
    EXPECT_OK(kv_put(db, "k1", 2, "v1", 2));
    conf_expect(db, "k1", 2, "v1", 2);
    EXPECT_OK(kv_put(db, "k1", 2, "value-two", 9)); /* overwrite */
    conf_expect(db, "k1", 2, "value-two", 9);
    EXPECT_OK(kv_put(db, "k2", 2, "v2", 2));
    EXPECT_OK(kv_delete(db, "k1", 2));
    conf_expect_missing(db, "k1", 2);
    conf_expect(db, "k2", 2, "v2", 2);
    EXPECT_OK(kv_delete(db, "never", 5));      /* deleting a missing key is KV_OK */
    EXPECT_OK(kv_put(db, "k1", 2, "back", 4)); /* a deleted key can come back */
    conf_expect(db, "k1", 2, "back", 4);
    char buf[4];
    size_t n = 0;
    EXPECT_OK(kv_get_into(db, "k1", 2, buf, sizeof buf, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "back", 4);
    EXPECT_STATUS(kv_get_into(db, "zz", 2, buf, sizeof buf, &n), KV_NOT_FOUND);
    assert_int_equal(conf_count(db), 2);
    assert_string_equal(kv_db_engine(db), conf_engine);
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

static void test_binary_and_empty(void **state)
{
    (void)state;
    char *dir = conf_dir("binary");
    kv_db *db = conf_open(dir, "os");
    /* keys made of every byte value, with zero bytes inside, at the start and at the end */
    for (int b = 0; b < 256; b++) {
        uint8_t k[3] = {(uint8_t)b, 0, (uint8_t)(255 - b)};
        uint8_t v[2] = {0, (uint8_t)b};
        EXPECT_OK(kv_put(db, k, 3, v, 2));
        EXPECT_OK(kv_put(db, k, 1, v, 1));
    }
    for (int b = 0; b < 256; b++) {
        uint8_t k[3] = {(uint8_t)b, 0, (uint8_t)(255 - b)};
        uint8_t v[2] = {0, (uint8_t)b};
        conf_expect(db, k, 3, v, 2);
        conf_expect(db, k, 1, v, 1);
        conf_expect_missing(db, k, 2); /* the 2-byte prefix was never written */
    }
    /* empty values are values, not deletes */
    EXPECT_OK(kv_put(db, "empty", 5, NULL, 0));
    EXPECT_OK(kv_put(db, "empty2", 6, "", 0));
    conf_expect(db, "empty", 5, "", 0);
    conf_expect(db, "empty2", 6, "", 0);
    kv_batch *b = kv_batch_new();
    EXPECT_OK(kv_batch_put(b, "empty3", 6, NULL, 0));
    EXPECT_OK(kv_write(db, b));
    kv_batch_free(b);
    EXPECT_OK(kv_close(db));
    db = conf_open(dir, "os");
    conf_expect(db, "empty", 5, "", 0);
    conf_expect(db, "empty3", 6, "", 0);
    uint8_t z[4] = {0, 0, 0, 0};
    conf_expect(db, z, 1, z, 1);
    assert_int_equal(conf_count(db), 512 + 3);
    kv_iter *it;
    EXPECT_OK(kv_iter_new(db, &it));
    kv_iter_seek(it, "empty", 5);
    assert_true(kv_iter_valid(it));
    size_t kl, vl;
    const void *k = kv_iter_key(it, &kl);
    (void)kv_iter_value(it, &vl);
    assert_int_equal(kl, 5);
    assert_memory_equal(k, "empty", 5);
    assert_int_equal(vl, 0);
    kv_iter_free(it);
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

/* ---- sizes at and past the declared limits ---- */

static void test_limits(void **state)
{
    (void)state;
    char *dir = conf_dir("limits");
    kv_db *db = conf_open(dir, "os");
    size_t mk = conf_limits.max_key;
    assert_true(mk >= 1 && mk <= KV_MAX_KEY);
    assert_true(conf_limits.max_value <= KV_MAX_VALUE);
    uint8_t *big = malloc(KV_MAX_KEY + 2);
    assert_non_null(big);
    for (size_t i = 0; i < KV_MAX_KEY + 2; i++)
        big[i] = (uint8_t)(i * 7 + 1);
    EXPECT_OK(kv_put(db, "x", 1, "one-byte key", 12));
    conf_expect(db, "x", 1, "one-byte key", 12);
    EXPECT_OK(kv_put(db, big, mk, "max key", 7));
    conf_expect(db, big, mk, "max key", 7);
    size_t before = conf_count(db);

    /* one byte past the declared key limit, and past kvlab's 65,535 */
    EXPECT_STATUS(kv_put(db, big, mk + 1, "too long", 8), KV_INVALID);
    EXPECT_STATUS(kv_put(db, big, KV_MAX_KEY + 1, "too long", 8), KV_INVALID);
    EXPECT_STATUS(kv_delete(db, big, mk + 1), KV_INVALID);
    EXPECT_STATUS(kv_put(db, "", 0, "v", 1), KV_INVALID);
    EXPECT_STATUS(kv_put(db, NULL, 3, "v", 1), KV_INVALID);
    EXPECT_STATUS(kv_delete(db, "", 0), KV_INVALID);
    void *v = NULL;
    size_t n = 0;
    EXPECT_STATUS(kv_get(db, "", 0, &v, &n), KV_INVALID);
    EXPECT_STATUS(kv_get(db, big, KV_MAX_KEY + 1, &v, &n), KV_INVALID);

    /* one byte past the declared value limit: nothing read, nothing written */
    uint8_t *huge = calloc(1, conf_limits.max_value + 1);
    assert_non_null(huge);
    EXPECT_STATUS(kv_put(db, "hv", 2, huge, conf_limits.max_value + 1), KV_INVALID);
    EXPECT_STATUS(kv_put(db, "hv", 2, NULL, 5), KV_INVALID);

    /* a batch with one bad operation applies none of them */
    kv_batch *b = kv_batch_new();
    EXPECT_OK(kv_batch_put(b, "good", 4, "g", 1));
    EXPECT_OK(kv_batch_delete(b, "x", 1));
    if (mk < KV_MAX_KEY) /* within kv_batch's own limits, past the engine's */
        EXPECT_OK(kv_batch_put(b, big, mk + 1, "v", 1));
    else if (conf_limits.max_value < KV_MAX_VALUE)
        EXPECT_OK(kv_batch_put(b, "hv", 2, huge, conf_limits.max_value + 1));
    else /* the batch itself refuses what every engine must refuse */
        EXPECT_STATUS(kv_batch_put(b, big, KV_MAX_KEY + 1, "v", 1), KV_INVALID);
    if (kv_batch_count(b) == 3)
        EXPECT_STATUS(kv_write(db, b), KV_INVALID);
    kv_batch_clear(b);
    EXPECT_STATUS(kv_batch_put(b, "", 0, "v", 1), KV_INVALID);
    assert_int_equal(kv_batch_count(b), 0);
    kv_batch_free(b);

    /* the store is unchanged */
    assert_int_equal(conf_count(db), before);
    conf_expect(db, big, mk, "max key", 7);
    conf_expect(db, "x", 1, "one-byte key", 12);
    conf_expect_missing(db, "good", 4);
    conf_expect_missing(db, "hv", 2);

    /* a value of exactly the declared maximum */
    memset(huge, 0x5a, conf_limits.max_value);
    huge[0] = 1;
    huge[conf_limits.max_value - 1] = 2;
    EXPECT_OK(kv_put(db, "maxvalue", 8, huge, conf_limits.max_value));
    conf_expect(db, "maxvalue", 8, huge, conf_limits.max_value);
    EXPECT_OK(kv_delete(db, "maxvalue", 8));
    free(huge);

    EXPECT_OK(kv_close(db));
    db = conf_open(dir, "os");
    conf_expect(db, big, mk, "max key", 7);
    assert_int_equal(conf_count(db), before);
    EXPECT_OK(kv_close(db));
    free(big);
    conf_dir_done(dir);
}

static void fill_value(uint8_t *v, size_t n, uint64_t seed)
{
    tu_rng r = {seed};
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = tu_next(&r);
        memcpy(v + i, &x, n - i < 8 ? n - i : 8);
    }
}

static void test_large_values(void **state)
{
    (void)state;
    enum { N = 12, MIB = 1 << 20 };
    char *dir = conf_dir("large");
    kv_db *db = conf_open(dir, "os");
    uint8_t *v = malloc(MIB + 1);
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "big%02d", i);
        fill_value(v, MIB + (size_t)(i % 2), (uint64_t)i);
        EXPECT_OK(kv_put(db, k, (size_t)kl, v, MIB + (size_t)(i % 2)));
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "big%02d", i);
            if (round && i % 3 == 0) {
                conf_expect_missing(db, k, (size_t)kl);
                continue;
            }
            fill_value(v, MIB + (size_t)(i % 2), (uint64_t)i);
            conf_expect(db, k, (size_t)kl, v, MIB + (size_t)(i % 2));
        }
        if (!round) {
            for (int i = 0; i < N; i += 3) {
                char k[16];
                int kl = snprintf(k, sizeof k, "big%02d", i);
                EXPECT_OK(kv_delete(db, k, (size_t)kl));
            }
            EXPECT_OK(kv_close(db));
            db = conf_open(dir, "os");
        }
    }
    EXPECT_OK(kv_close(db));
    free(v);
    conf_dir_done(dir);
}

/* ---- locking and options ---- */

static void test_busy_and_options(void **state)
{
    (void)state;
    char *dir = conf_dir("busy");
    kv_db *db = conf_open(dir, "os");
    EXPECT_OK(kv_put(db, "k", 1, "v", 1));
    kv_db *db2 = NULL;
    EXPECT_STATUS(kv_open(conf_engine, dir, NULL, &db2), KV_BUSY);
    assert_null(db2);
    conf_expect(db, "k", 1, "v", 1); /* the first handle is unharmed */
    EXPECT_OK(kv_close(db));
    db = conf_open(dir, "os");
    conf_expect(db, "k", 1, "v", 1);
    EXPECT_OK(kv_close(db));

    kv_options o;
    kv_options_init(&o);
    EXPECT_OK(kv_options_set(&o, "no_such_option_xyz=1"));
    db = NULL;
    EXPECT_STATUS(kv_open(conf_engine, dir, &o, &db), KV_INVALID);
    assert_null(db);
    kv_options_free(&o);

    /* create_if_missing=false on a missing directory */
    kv_options_init(&o);
    o.create_if_missing = false;
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    EXPECT_STATUS(kv_open(conf_engine, missing, &o, &db), KV_NOT_FOUND);
    /* a cache size is accepted */
    o.create_if_missing = true;
    o.cache_size = 1 << 20;
    EXPECT_OK(kv_open(conf_engine, dir, &o, &db));
    conf_expect(db, "k", 1, "v", 1);
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

/* ---- check, stats, dump ---- */

static void test_check_stats_dump(void **state)
{
    (void)state;
    char *dir = conf_dir("inspect");
    kv_db *db = conf_open(dir, "os");
    for (int i = 0; i < 500; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "key%05d", i);
        EXPECT_OK(kv_put(db, k, (size_t)kl, k, (size_t)kl));
    }
    EXPECT_OK(kv_delete(db, "key00007", 8));
    EXPECT_OK(kv_check(db));
    kv_stats st;
    EXPECT_OK(kv_stats_get(db, &st));
    assert_true(st.user_bytes_written > 0);
    assert_true(st.user_bytes_written != UINT64_MAX);
    assert_int_equal(st.commits, 501);
    assert_true(st.live_keys == UINT64_MAX || st.live_keys == 499);
    assert_true(st.n_extra <= KV_STATS_EXTRA_MAX);
    FILE *f = tmpfile();
    assert_non_null(f);
    EXPECT_OK(kv_dump(db, f, NULL, -1));
    assert_true(ftell(f) > 0);
    fclose(f);
    char msg[64];
    kv_last_error(db, msg, sizeof msg); /* callable at any time */
    EXPECT_OK(kv_close(db));
    db = conf_open(dir, "os");
    EXPECT_OK(kv_check(db));
    EXPECT_OK(kv_stats_get(db, &st));
    assert_int_equal(st.user_bytes_written, 0); /* counted since open */
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !kv_engine_exists(argv[1])) {
        fprintf(stderr, "usage: %s ENGINE   (registered:", argv[0]);
        for (const char *const *n = kv_engine_names(); *n; n++)
            fprintf(stderr, " %s", *n);
        fprintf(stderr, ")\n");
        return 2;
    }
    conf_engine = argv[1];
    if (kv_engine_limits(conf_engine, &conf_limits) != KV_OK)
        return 2;
    conf_mask = kv_engine_durability_mask(conf_engine);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_binary_and_empty),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_iter_snapshot),
        cmocka_unit_test(test_durability_modes),
        cmocka_unit_test(test_busy_and_options),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_check_stats_dump),
        cmocka_unit_test(test_read_only),
    };
    return cmocka_run_group_tests_name(conf_engine, tests, NULL, NULL);
}
