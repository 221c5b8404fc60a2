/* Conformance tests of ordered iteration (memcmp-then-length order, seek, ranges, deletes)
 * and of persistence in every durability mode (conf.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "testutil.h"

/* ---- ordered iteration ---- */

typedef struct bkey {
    const char *k;
    size_t n;
} bkey;

static int cmp_bkey(const void *a, const void *b)
{
    const bkey *x = a, *y = b;
    return conf_cmp(x->k, x->n, y->k, y->n);
}

void test_order(void **state)
{
    (void)state;
    bkey keys[] = {
        {"ab", 2},      {"a", 1},    {"a\0", 2},  {"a\0\0", 3}, {"a\x01", 2},
        {"b", 1},       {"\0", 1},   {"\0\0", 2}, {"\xff", 1},  {"\xff\xff", 2},
        {"\x7f", 1},    {"\x80", 1}, {"abc", 3},  {"abd", 3},   {"ab\xff", 3},
        {"a\xff\0", 3}, {"zz", 2},   {"m", 1},    {"m\0m", 3},  {"\x01", 1},
    };
    enum { NK = sizeof keys / sizeof *keys };
    char *dir = conf_dir("order");
    kv_db *db = conf_open(dir, "os");
    kv_iter *it;
    EXPECT_OK(kv_iter_new(db, &it)); /* an empty store */
    kv_iter_seek_first(it);
    assert_false(kv_iter_valid(it));
    kv_iter_seek(it, "a", 1);
    assert_false(kv_iter_valid(it));
    EXPECT_OK(kv_iter_status(it));
    kv_iter_free(it);
    for (int i = 0; i < NK; i++)
        EXPECT_OK(kv_put(db, keys[i].k, keys[i].n, &i, sizeof i));
    bkey sorted[NK];
    memcpy(sorted, keys, sizeof keys);
    qsort(sorted, NK, sizeof *sorted, cmp_bkey);
    for (int reopen = 0; reopen < 2; reopen++) {
        EXPECT_OK(kv_iter_new(db, &it));
        int i = 0;
        for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it), i++) {
            size_t kl;
            const void *k = kv_iter_key(it, &kl);
            assert_true(i < NK);
            if (conf_cmp(k, kl, sorted[i].k, sorted[i].n))
                fail_msg("position %d: wrong key of %zu bytes (memcmp-then-length order)", i, kl);
        }
        assert_int_equal(i, NK);
        /* seek to every key, to every key + "\0" and to every 1-byte prefix */
        for (int j = 0; j < NK; j++) {
            char probe[8];
            memcpy(probe, sorted[j].k, sorted[j].n);
            kv_iter_seek(it, probe, sorted[j].n);
            assert_true(kv_iter_valid(it));
            size_t kl;
            const void *k = kv_iter_key(it, &kl);
            assert_int_equal(conf_cmp(k, kl, sorted[j].k, sorted[j].n), 0);
            probe[sorted[j].n] = 0;
            kv_iter_seek(it, probe, sorted[j].n + 1);
            bkey want = {probe, sorted[j].n + 1};
            int w = 0;
            while (w < NK && cmp_bkey(&sorted[w], &want) < 0)
                w++;
            if (w == NK) {
                assert_false(kv_iter_valid(it));
            } else {
                assert_true(kv_iter_valid(it));
                k = kv_iter_key(it, &kl);
                assert_int_equal(conf_cmp(k, kl, sorted[w].k, sorted[w].n), 0);
            }
        }
        kv_iter_seek(it, "\xff\xff\xff", 3); /* past the last key */
        assert_false(kv_iter_valid(it));
        /* a range [a, b): keys with first byte 'a' */
        int in_range = 0;
        for (kv_iter_seek(it, "a", 1); kv_iter_valid(it); kv_iter_next(it)) {
            size_t kl;
            const void *k = kv_iter_key(it, &kl);
            if (conf_cmp(k, kl, "b", 1) >= 0)
                break;
            in_range++;
        }
        assert_int_equal(in_range, 9);
        EXPECT_OK(kv_iter_status(it));
        kv_iter_free(it);
        if (!reopen) {
            EXPECT_OK(kv_close(db));
            db = conf_open(dir, "os");
        }
    }
    /* deleted keys disappear from iteration; values come with their keys */
    EXPECT_OK(kv_delete(db, "a\0", 2));
    EXPECT_OK(kv_delete(db, "\xff\xff", 2));
    EXPECT_OK(kv_delete(db, "\0", 1));
    EXPECT_OK(kv_iter_new(db, &it));
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it), n++) {
        size_t kl, vl;
        const void *k = kv_iter_key(it, &kl);
        const void *v = kv_iter_value(it, &vl);
        assert_false(kl == 2 && !memcmp(k, "a\0", 2));
        assert_false(kl == 2 && !memcmp(k, "\xff\xff", 2));
        assert_false(kl == 1 && !memcmp(k, "\0", 1));
        int idx;
        assert_int_equal(vl, sizeof idx);
        memcpy(&idx, v, sizeof idx);
        assert_true(idx >= 0 && idx < NK);
        assert_int_equal(conf_cmp(k, kl, keys[idx].k, keys[idx].n), 0);
    }
    assert_int_equal(n, NK - 3);
    kv_iter_seek(it, "a", 1);
    size_t kl;
    assert_true(kv_iter_valid(it));
    const void *k = kv_iter_key(it, &kl);
    assert_int_equal(conf_cmp(k, kl, "a", 1), 0);
    kv_iter_next(it);
    k = kv_iter_key(it, &kl);
    assert_int_equal(conf_cmp(k, kl, "a\0\0", 3), 0); /* "a\0" is gone */
    kv_iter_free(it);
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

/* ---- durability modes: persistence across close and reopen, NOTSUP for the others ---- */

static void write_mode_data(kv_db *db)
{
    for (int i = 0; i < 200; i++) {
        char k[16], v[24];
        int kl = snprintf(k, sizeof k, "p%04d", i);
        int vl = snprintf(v, sizeof v, "value-%d", i * 3);
        EXPECT_OK(kv_put(db, k, (size_t)kl, v, (size_t)vl));
    }
    for (int i = 0; i < 200; i += 4) {
        char k[16];
        int kl = snprintf(k, sizeof k, "p%04d", i);
        EXPECT_OK(kv_delete(db, k, (size_t)kl));
    }
    kv_batch *b = kv_batch_new();
    EXPECT_OK(kv_batch_put(b, "batch-a", 7, "A", 1));
    EXPECT_OK(kv_batch_put(b, "batch-b", 7, "", 0));
    EXPECT_OK(kv_batch_delete(b, "p0001", 5));
    EXPECT_OK(kv_write(db, b));
    kv_batch_free(b);
}

static void check_mode_data(kv_db *db, bool after_sync)
{
    for (int i = 0; i < 200; i++) {
        char k[16], v[24];
        int kl = snprintf(k, sizeof k, "p%04d", i);
        int vl = snprintf(v, sizeof v, "value-%d", i * 3);
        if (i % 4 == 0 || i == 1)
            conf_expect_missing(db, k, (size_t)kl);
        else
            conf_expect(db, k, (size_t)kl, v, (size_t)vl);
    }
    conf_expect(db, "batch-a", 7, "A", 1);
    conf_expect(db, "batch-b", 7, "", 0);
    if (after_sync)
        conf_expect(db, "after-sync", 10, "x", 1);
}

void test_durability_modes(void **state)
{
    (void)state;
    static const char *const modes[] = {"none", "os", "interval:20", "sync"};
    int supported = 0;
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        kv_options o;
        kv_options_init(&o);
        EXPECT_OK(kv_durability_parse(modes[m], &o.durability));
        char *dir = conf_dir("durability");
        if (!(conf_mask & KV_DURABILITY_BIT(o.durability.kind))) {
            kv_db *db = NULL;
            EXPECT_STATUS(kv_open(conf_engine, dir, &o, &db), KV_NOTSUP);
            assert_null(db);
            conf_dir_done(dir);
            continue;
        }
        supported++;
        kv_db *db = conf_open(dir, modes[m]);
        write_mode_data(db);
        check_mode_data(db, false);
        EXPECT_OK(kv_sync(db));
        EXPECT_OK(kv_put(db, "after-sync", 10, "x", 1));
        EXPECT_OK(kv_close(db));
        /* reopen in the same mode, then in the default one */
        db = conf_open(dir, modes[m]);
        check_mode_data(db, true);
        EXPECT_OK(kv_put(db, "second", 6, "2", 1));
        EXPECT_OK(kv_close(db));
        db = conf_open(dir, "sync");
        if (!(conf_mask & KV_DURABILITY_BIT(KV_DURABILITY_SYNC))) {
            EXPECT_OK(kv_close(db));
            db = conf_open(dir, "os");
        }
        check_mode_data(db, true);
        conf_expect(db, "second", 6, "2", 1);
        EXPECT_OK(kv_check(db));
        EXPECT_OK(kv_close(db));
        conf_dir_done(dir);
    }
    /* `os` is the default mode, so every engine must honour it */
    assert_true(conf_mask & KV_DURABILITY_BIT(KV_DURABILITY_OS));
    assert_true(supported >= 1);
}
