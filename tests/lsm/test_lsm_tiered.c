/* Tests of size-tiered compaction in the lsm engine (-o compaction=tiered; lsm/compact.c):
 * merges happen and keep every table a sorted run at level 0; reads across runs answer as the
 * model says (overwrites, tombstones, scans), before and after merges and reopens; a merge of
 * the newest runs keeps its tombstones while an older run remains, and a merge that includes
 * the oldest run drops them with the values they hide; a database keeps the strategy it was
 * created with (the other one is refused with KV_INVALID naming the stored one, no option
 * adopts it); bad option values are refused.
 *
 * Runs are made deterministic with reopens: every reopen replays the WAL into one new level-0
 * table, i.e. one new run, and the background thread's work is waited for with
 * lsm_pause_background_work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv.h"
#include "lsm.h"
#include "lsm_testutil.h"
#include "testutil.h"

#define NKEYS 400

static char model[NKEYS][64]; /* "" = absent */

static int keyname(char *buf, int i)
{
    return snprintf(buf, 32, "key%05d", i);
}

static void reset_model(void)
{
    memset(model, 0, sizeof model);
}

/* Opens dir with the given options (NULL-terminated "key=value" list) and durability os. */
static kv_status open_with(const char *dir, const char *const *opts, kv_db **db)
{
    kv_options o;
    kv_options_init(&o);
    assert_int_equal(kv_durability_parse("os", &o.durability), KV_OK);
    for (size_t i = 0; opts && opts[i]; i++)
        assert_int_equal(kv_options_set(&o, opts[i]), KV_OK);
    kv_status s = kv_open("lsm", dir, &o, db);
    kv_options_free(&o);
    return s;
}

/* Tiny memtables: flushes and merges within a few hundred writes. */
static const char *const tiny_tiered[] = {"compaction=tiered", "write_buffer_size=4K",
                                          "block_size=512",    "manifest_max_size=1K",
                                          "min_merge_width=4", NULL};
/* Memtables that the small sessions below never fill: each of their runs is made by a reopen
 * (and is at most write_buffer_size, so they all count as similar). */
static const char *const big_tiered[] = {"compaction=tiered", "write_buffer_size=8K",
                                         "min_merge_width=4", NULL};

/* Waits until the background thread has nothing left to do (flushes, merges, deletions). */
static void settle(kv_db *db)
{
    OK(lsm_pause_background_work(db, true));
    OK(lsm_pause_background_work(db, false));
}

static void put(kv_db *db, int i, const char *tag)
{
    char k[32], v[64];
    int kl = keyname(k, i);
    int vl = snprintf(v, sizeof v, "value-%d-%s-xxxxxxxxxxxxxxxxxxxxxxxx", i, tag);
    OK(kv_put(db, k, (size_t)kl, v, (size_t)vl));
    memcpy(model[i], v, (size_t)vl + 1);
}

static void del(kv_db *db, int i)
{
    char k[32];
    int kl = keyname(k, i);
    OK(kv_delete(db, k, (size_t)kl));
    model[i][0] = 0;
}

static int live_model_keys(void)
{
    int n = 0;
    for (int i = 0; i < NKEYS; i++)
        n += model[i][0] != 0;
    return n;
}

/* Every lookup and a full scan agree with the model; kv_check passes. */
static void verify_model(kv_db *db)
{
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = keyname(k, i);
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(db, k, (size_t)kl, &v, &vl);
        if (!model[i][0]) {
            if (s != KV_NOT_FOUND)
                fail_msg("key %d: want absent, got %s", i, kv_strerror(s));
            continue;
        }
        OK(s);
        assert_int_equal(vl, strlen(model[i]));
        assert_memory_equal(v, model[i], vl);
        kv_free(v);
    }
    kv_iter *it;
    OK(kv_iter_new(db, &it));
    kv_iter_seek_first(it);
    for (int i = 0; i < NKEYS; i++) {
        if (!model[i][0])
            continue;
        assert_true(kv_iter_valid(it));
        char k[32];
        int kl = keyname(k, i);
        size_t n;
        const void *p = kv_iter_key(it, &n);
        assert_int_equal(n, (size_t)kl);
        assert_memory_equal(p, k, n);
        p = kv_iter_value(it, &n);
        assert_int_equal(n, strlen(model[i]));
        assert_memory_equal(p, model[i], n);
        kv_iter_next(it);
    }
    assert_false(kv_iter_valid(it));
    OK(kv_iter_status(it));
    kv_iter_free(it);
    OK(kv_check(db));
}

/* Only level 0 holds tables: each is one sorted run. */
static void assert_runs_only(kv_db *db)
{
    for (int l = 1; l < 7; l++) {
        char name[16];
        snprintf(name, sizeof name, "files_L%d", l);
        assert_int_equal(lt_stat(db, name), 0);
    }
}

/* Rounds of overwrites and deletes with tiny memtables: flushes and merges happen, every table
 * stays a run at level 0, and reads match the model before and after a reopen. */
static void test_merges_and_reads(void **state)
{
    (void)state;
    reset_model();
    char *dir = tu_mkdtemp("lsm-tiered");
    kv_db *db;
    OK(open_with(dir, tiny_tiered, &db));
    for (int r = 0; r < 4; r++) {
        char tag[16];
        snprintf(tag, sizeof tag, "r%d", r);
        for (int i = 0; i < NKEYS; i++)
            if ((i + r) % 3 != 0)
                put(db, i, tag);
        for (int i = r; i < NKEYS; i += 7)
            del(db, i);
        verify_model(db); /* while the background thread flushes and merges */
    }
    settle(db);
    assert_true(lt_stat(db, "flushes") >= 8);
    assert_true(lt_stat(db, "compactions") >= 2);
    assert_int_equal(lt_stat(db, "trivial_moves"), 0);
    assert_runs_only(db);
    /* merges left fewer runs than flushes made */
    assert_true(lt_stat(db, "files_L0") < lt_stat(db, "flushes"));
    assert_int_equal(lt_count_files(dir, ".sst"), (int)lt_stat(db, "files_L0"));
    verify_model(db);
    OK(kv_close(db));
    OK(open_with(dir, tiny_tiered, &db));
    assert_runs_only(db);
    verify_model(db);
    /* a full compaction leaves one run holding exactly the live keys */
    OK(lsm_compact_all(db));
    assert_int_equal(lt_stat(db, "files_L0"), 1);
    assert_runs_only(db);
    assert_int_equal(lt_stat(db, "live_keys_estimate"), (unsigned long long)live_model_keys());
    verify_model(db);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

/* Closes and reopens db: the WAL becomes one new run; waits for any merge it makes due. */
static void new_run(const char *dir, kv_db **db)
{
    OK(kv_close(*db));
    OK(open_with(dir, big_tiered, db));
    settle(*db);
}

/* A merge of the newest runs that leaves an older run out keeps its tombstones (they still
 * hide that run's values); a merge that includes the oldest run drops them. Newer runs'
 * values shadow older ones' throughout. */
static void test_tombstones_only_with_oldest(void **state)
{
    (void)state;
    reset_model();
    char *dir = tu_mkdtemp("lsm-tiered-tomb");
    kv_db *db;
    OK(open_with(dir, big_tiered, &db));
    /* the oldest run: every key, made into one run much larger than the memtable-sized ones */
    for (int i = 0; i < NKEYS; i++)
        put(db, i, "old");
    for (int i = 0; i < NKEYS; i++)
        put(db, i, "older-still-overwritten");
    for (int i = 0; i < NKEYS; i++)
        put(db, i, "old");
    OK(lsm_compact_all(db));
    assert_int_equal(lt_stat(db, "files_L0"), 1);
    assert_int_equal(lt_stat(db, "live_keys_estimate"), NKEYS);
    /* four small runs: deletes of 0..19, overwrites of 20..39, more deletes, new values */
    for (int i = 0; i < 20; i++)
        del(db, i);
    new_run(dir, &db);
    assert_int_equal(lt_stat(db, "files_L0"), 2);
    for (int i = 20; i < 40; i++)
        put(db, i, "new");
    new_run(dir, &db);
    for (int i = 40; i < 50; i++)
        del(db, i);
    new_run(dir, &db);
    assert_int_equal(lt_stat(db, "files_L0"), 4);
    assert_int_equal(lt_stat(db, "compactions"), 0);
    verify_model(db);
    for (int i = 20; i < 30; i++)
        put(db, i, "newest");
    new_run(dir, &db);
    /* the four small runs were merged into one; the oldest run was not part of it */
    assert_int_equal(lt_stat(db, "compactions"), 1);
    assert_int_equal(lt_stat(db, "files_L0"), 2);
    /* so the 30 tombstones stay (the oldest run's values for those keys are still there), and
     * of the 20 + 10 puts to keys 20..39 only the newest per key */
    assert_int_equal(lt_stat(db, "live_keys_estimate"), NKEYS + 30 + 20);
    verify_model(db);
    OK(kv_close(db));
    OK(open_with(dir, big_tiered, &db));
    verify_model(db);
    /* a merge with the oldest run: tombstones go with the values they hide */
    OK(lsm_compact_all(db));
    assert_int_equal(lt_stat(db, "files_L0"), 1);
    assert_int_equal(lt_stat(db, "live_keys_estimate"), (unsigned long long)live_model_keys());
    assert_int_equal(live_model_keys(), NKEYS - 30);
    verify_model(db);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

/* When the picked runs are all the runs there are, the automatic merge drops tombstones too. */
static void test_automatic_merge_with_oldest_drops_tombstones(void **state)
{
    (void)state;
    reset_model();
    char *dir = tu_mkdtemp("lsm-tiered-auto");
    kv_db *db;
    OK(open_with(dir, big_tiered, &db));
    for (int i = 0; i < 20; i++)
        put(db, i, "a");
    new_run(dir, &db);
    for (int i = 0; i < 10; i++)
        del(db, i);
    new_run(dir, &db);
    for (int i = 20; i < 30; i++)
        put(db, i, "b");
    new_run(dir, &db);
    assert_int_equal(lt_stat(db, "files_L0"), 3);
    verify_model(db);
    for (int i = 30; i < 40; i++)
        put(db, i, "c");
    new_run(dir, &db);
    assert_int_equal(lt_stat(db, "compactions"), 1);
    assert_int_equal(lt_stat(db, "files_L0"), 1);
    assert_int_equal(lt_stat(db, "live_keys_estimate"), 30); /* 10..39: no tombstone left */
    verify_model(db);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

/* A database keeps its strategy: the other one is refused by name, no option adopts it. */
static void test_strategy_is_stored(void **state)
{
    (void)state;
    reset_model();
    char *dir = tu_mkdtemp("lsm-tiered-strategy");
    kv_db *db;
    OK(open_with(dir, tiny_tiered, &db));
    for (int i = 0; i < NKEYS; i++)
        put(db, i, "t");
    OK(kv_close(db));
    static const char *const leveled[] = {"compaction=leveled", NULL};
    assert_int_equal(open_with(dir, leveled, &db), KV_INVALID);
    assert_non_null(strstr(kv_errmsg(), "created with compaction=tiered"));
    /* without the option: tiered, as stored (more writes stay runs at level 0) */
    static const char *const tiny_default[] = {"write_buffer_size=4K", "block_size=512", NULL};
    OK(open_with(dir, tiny_default, &db));
    for (int i = 0; i < NKEYS; i++)
        put(db, i, "u");
    settle(db);
    assert_true(lt_stat(db, "compactions") >= 1);
    assert_runs_only(db);
    verify_model(db);
    OK(kv_close(db));
    /* read-only without the option */
    kv_options o;
    kv_options_init(&o);
    o.read_only = true;
    OK(kv_open("lsm", dir, &o, &db));
    verify_model(db);
    OK(kv_close(db));
    kv_options_free(&o);
    tu_rmtree(dir);

    /* and the other way round: a leveled database refuses tiered */
    reset_model();
    OK(open_with(dir, leveled, &db));
    put(db, 1, "l");
    OK(kv_close(db));
    static const char *const tiered[] = {"compaction=tiered", NULL};
    assert_int_equal(open_with(dir, tiered, &db), KV_INVALID);
    assert_non_null(strstr(kv_errmsg(), "created with compaction=leveled"));
    OK(open_with(dir, NULL, &db));
    verify_model(db);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

static void test_bad_options(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-tiered-opts");
    kv_db *db;
    static const char *const bad1[] = {"compaction=universal", NULL};
    static const char *const bad2[] = {"compaction=tiered", "min_merge_width=1", NULL};
    static const char *const bad3[] = {"compaction=tiered", "min_merge_width=8",
                                       "max_merge_width=4", NULL};
    assert_int_equal(open_with(dir, bad1, &db), KV_INVALID);
    assert_int_equal(open_with(dir, bad2, &db), KV_INVALID);
    assert_int_equal(open_with(dir, bad3, &db), KV_INVALID);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges_and_reads),
        cmocka_unit_test(test_tombstones_only_with_oldest),
        cmocka_unit_test(test_automatic_merge_with_oldest_drops_tombstones),
        cmocka_unit_test(test_strategy_is_stored),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
