/* Tests of lsm_compact_all (lsm.h): after it every key written before the call sits in one
 * level, overwritten versions and tombstones are gone, every read still answers as the model
 * says (before and after a reopen), obsolete tables and WALs are deleted, and the call's errors
 * (not an lsm handle, a held background thread) are the documented ones. Also the file-number
 * allocation a crashed flush or compaction relies on: an orphan table (written and renamed, but
 * named by no manifest edit) is deleted at open, and its number is never handed out again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "kv.h"
#include "lsm.h"
#include "lsm_testutil.h"
#include "testutil.h"

#define NKEYS  300
#define ROUNDS 3

static char model[NKEYS][64]; /* "" = absent */

static int keyname(char *buf, int i)
{
    return snprintf(buf, 32, "key%05d", i);
}

static void open_tiny(const char *dir, kv_db **db)
{
    kv_options o;
    kv_options_init(&o);
    lt_tiny_options(&o, "os");
    OK(kv_open("lsm", dir, &o, db));
    kv_options_free(&o);
}

/* ROUNDS rounds of puts of every key, then deletes of one key in three: several flushes,
 * level-0 tables and (with the tiny sizes) deeper levels, plus shadowed versions and
 * tombstones for the compaction to drop. */
static void workload(kv_db *db)
{
    char k[32], v[64];
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < NKEYS; i++) {
            int kl = keyname(k, i);
            int vl = snprintf(v, sizeof v, "value-%d-round-%d-xxxxxxxxxxxxxxxx", i, r);
            OK(kv_put(db, k, (size_t)kl, v, (size_t)vl));
            memcpy(model[i], v, (size_t)vl + 1);
        }
    for (int i = 0; i < NKEYS; i += 3) {
        int kl = keyname(k, i);
        OK(kv_delete(db, k, (size_t)kl));
        model[i][0] = 0;
    }
}

static void verify_model(kv_db *db)
{
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = keyname(k, i);
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(db, k, (size_t)kl, &v, &vl);
        if (!model[i][0]) {
            assert_int_equal(s, KV_NOT_FOUND);
            continue;
        }
        OK(s);
        assert_int_equal(vl, strlen(model[i]));
        assert_memory_equal(v, model[i], vl);
        kv_free(v);
    }
    OK(kv_check(db));
}

/* The level that holds every table, asserting there is exactly one such level. */
static int only_level(kv_db *db)
{
    int level = -1;
    for (int l = 0; l < 7; l++) {
        char name[16];
        snprintf(name, sizeof name, "files_L%d", l);
        if (lt_stat(db, name) == 0)
            continue;
        assert_int_equal(level, -1); /* a second level with tables */
        level = l;
    }
    return level;
}

static int live_model_keys(void)
{
    int n = 0;
    for (int i = 0; i < NKEYS; i++)
        n += model[i][0] != 0;
    return n;
}

static void test_compact_all(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-compact");
    kv_db *db;
    open_tiny(dir, &db);
    workload(db);
    /* the workload spread data over several tables and shadowed versions */
    assert_true(lt_stat(db, "flushes") >= 3);
    assert_true(lt_stat(db, "live_keys_estimate") > (unsigned long long)live_model_keys());
    OK(lsm_compact_all(db));
    int level = only_level(db);
    assert_true(level >= 1);
    /* one entry per live key: shadowed versions and tombstones were dropped, and the
     * memtable was flushed (it is empty) */
    assert_int_equal(lt_stat(db, "live_keys_estimate"), live_model_keys());
    char name[24];
    snprintf(name, sizeof name, "files_L%d", level);
    /* obsolete tables were deleted: the directory holds exactly the tables of that level */
    assert_int_equal(lt_count_files(dir, ".sst"), (int)lt_stat(db, name));
    assert_int_equal(lt_count_files(dir, ".log"), 1); /* the current WAL only */
    verify_model(db);
    /* a second call has nothing to do but leaves everything as it is */
    OK(lsm_compact_all(db));
    assert_int_equal(only_level(db), level);
    assert_int_equal(lt_stat(db, "live_keys_estimate"), live_model_keys());
    OK(kv_close(db));
    open_tiny(dir, &db);
    assert_int_equal(only_level(db), level);
    verify_model(db);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

/* Writes that arrive after a compaction are kept, and a compaction of a database whose tables
 * all sit in level 0 moves them into level 1. */
static void test_compact_then_write(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-compact2");
    kv_db *db;
    kv_options o;
    kv_options_init(&o);
    OK(kv_options_set(&o, "write_buffer_size=4K"));
    OK(kv_options_set(&o, "l0_compaction_trigger=100"));
    OK(kv_options_set(&o, "l0_slowdown_trigger=100"));
    OK(kv_options_set(&o, "l0_stop_trigger=100"));
    OK(kv_open("lsm", dir, &o, &db));
    kv_options_free(&o);
    memset(model, 0, sizeof model);
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = keyname(k, i);
        snprintf(model[i], sizeof model[i], "v%d-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", i);
        OK(kv_put(db, k, (size_t)kl, model[i], strlen(model[i])));
    }
    OK(kv_delete(db, "key00007", 8));
    model[7][0] = 0;
    assert_true(lt_stat(db, "files_L0") >= 2);
    OK(lsm_compact_all(db));
    assert_int_equal(only_level(db), 1);
    assert_int_equal(lt_stat(db, "live_keys_estimate"), NKEYS - 1);
    OK(kv_put(db, "key00007", 8, "back", 4));
    strcpy(model[7], "back");
    verify_model(db);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

static void test_compact_errors(void **state)
{
    (void)state;
    assert_int_equal(lsm_compact_all(NULL), KV_INVALID);
    char *dir = tu_mkdtemp("lsm-compact3");
    kv_db *db;
    open_tiny(dir, &db);
    OK(kv_put(db, "a", 1, "1", 1));
    OK(lsm_pause_background_work(db, true));
    assert_int_equal(lsm_compact_all(db), KV_BUSY);
    OK(lsm_pause_background_work(db, false));
    OK(lsm_compact_all(db)); /* an empty database but for one memtable entry */
    assert_int_equal(only_level(db), 1);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

/* The highest table number in dir (0 when there is none). */
static unsigned long highest_table(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    unsigned long hi = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".sst")) {
            unsigned long v = strtoul(e->d_name, NULL, 10);
            hi = v > hi ? v : hi;
        }
    }
    closedir(d);
    return hi;
}

static void test_orphan_table_deleted_number_not_reused(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-orphan");
    kv_db *db;
    open_tiny(dir, &db);
    OK(kv_put(db, "a", 1, "1", 1));
    OK(kv_close(db));
    /* what a crash after the rename of a compaction output, before its manifest edit, leaves */
    char path[4096];
    snprintf(path, sizeof path, "%s/000900.sst", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("an orphan output table", f);
    fclose(f);
    open_tiny(dir, &db);
    OK(kv_check(db));
    FILE *g = fopen(path, "r"); /* deleted at open: no manifest names it */
    assert_null(g);
    OK(kv_put(db, "b", 1, "2", 1));
    OK(lsm_compact_all(db));
    /* new files are numbered past the orphan: a number seen on disk is never reused */
    assert_true(highest_table(dir) > 900);
    void *v = NULL;
    size_t vl = 0;
    OK(kv_get(db, "a", 1, &v, &vl));
    kv_free(v);
    OK(kv_close(db));
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_all),
        cmocka_unit_test(test_compact_then_write),
        cmocka_unit_test(test_compact_errors),
        cmocka_unit_test(test_orphan_table_deleted_number_not_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
