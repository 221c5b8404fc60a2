/* Tests of the lsm engine beyond the conformance suite: flushes, compactions and manifest
 * roll-overs against a model (tiny sizes), iterators that stay consistent while compaction
 * runs, a failed fsync poisoning the handle, check and dump. Damaged files: test_lsm_damage.c. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "faultfs.h"
#include "kv.h"
#include "lsm_testutil.h"
#include "testutil.h"

#define NKEYS 600

/* A model: value of key i (or absent), values as "v<op>" padded to vlen bytes. */
typedef struct model {
    char *val[NKEYS];
    size_t len[NKEYS];
} model;

static void model_free(model *m)
{
    for (int i = 0; i < NKEYS; i++)
        free(m->val[i]);
}

static int keyname(char *buf, int i)
{
    return snprintf(buf, 32, "k%05d", i);
}

/* A faultfs that skips the real fdatasync/fsync calls (the disk here takes milliseconds per
 * sync; nothing in these tests crashes, so skipping them changes no outcome). */
static kv_fs *fast_fs(const char *dir)
{
    size_t n = strlen(dir) + 16;
    char *scratch = malloc(n);
    snprintf(scratch, n, "%s.scratch", dir);
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    free(scratch);
    return fs;
}

static void rm_dirs(char *dir)
{
    size_t n = strlen(dir) + 16;
    char *scratch = malloc(n);
    snprintf(scratch, n, "%s.scratch", dir);
    tu_rmtree(scratch);
    tu_rmtree(dir);
    free(scratch);
    free(dir);
}

static kv_db *open_tiny(const char *dir, const char *dur, kv_fs *fs)
{
    kv_options o;
    kv_options_init(&o);
    lt_tiny_options(&o, dur);
    o.fs = fs;
    kv_db *db = NULL;
    kv_status s = kv_open("lsm", dir, &o, &db);
    if (s != KV_OK)
        fail_msg("open: %s", kv_errmsg());
    kv_options_free(&o);
    return db;
}

static void compare(kv_db *db, const model *m)
{
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = keyname(k, i);
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(db, k, (size_t)kl, &v, &vl);
        if (!m->val[i]) {
            if (s != KV_NOT_FOUND)
                fail_msg("key %d: %s, expected not found", i, kv_strerror(s));
            continue;
        }
        if (s != KV_OK)
            fail_msg("key %d: %s (%s)", i, kv_strerror(s), kv_errmsg());
        if (vl != m->len[i])
            fail_msg("key %d: %zu bytes, model %zu (%.12s vs %.12s)", i, vl, m->len[i], (char *)v,
                     m->val[i]);
        assert_memory_equal(v, m->val[i], vl);
        kv_free(v);
    }
    /* the scan sees exactly the model's keys in order */
    kv_iter *it;
    OK(kv_iter_new(db, &it));
    kv_iter_seek_first(it);
    for (int i = 0; i < NKEYS; i++) {
        if (!m->val[i])
            continue;
        assert_true(kv_iter_valid(it));
        char k[32];
        int kl = keyname(k, i);
        size_t gl, vl;
        const void *g = kv_iter_key(it, &gl);
        assert_int_equal(gl, (size_t)kl);
        assert_memory_equal(g, k, gl);
        const void *v = kv_iter_value(it, &vl);
        assert_int_equal(vl, m->len[i]);
        assert_memory_equal(v, m->val[i], vl);
        kv_iter_next(it);
    }
    assert_false(kv_iter_valid(it));
    OK(kv_iter_status(it));
    kv_iter_free(it);
}

/* Runs n random operations (puts, deletes, batches) against db and m. */
static void workload(kv_db *db, model *m, tu_rng *r, int n, int base)
{
    kv_batch *b = kv_batch_new();
    char v[300];
    for (int op = 0; op < n; op++) {
        int kind = (int)tu_below(r, 10);
        int cnt = kind == 9 ? 3 : 1;
        kv_batch_clear(b);
        for (int j = 0; j < cnt; j++) {
            int key = (int)tu_below(r, NKEYS);
            char k[32];
            int kl = keyname(k, key);
            bool del = kind >= 7 && kind < 9;
            size_t vl = 20 + tu_below(r, 200);
            memset(v, 'a' + (op + j) % 26, vl);
            snprintf(v, vl, "v%d.%d", base + op, j);
            if (cnt == 1 && del)
                OK(kv_delete(db, k, (size_t)kl));
            else if (cnt == 1)
                OK(kv_put(db, k, (size_t)kl, v, vl));
            else
                OK(kv_batch_put(b, k, (size_t)kl, v, vl));
            free(m->val[key]);
            m->val[key] = NULL;
            if (!del) {
                m->val[key] = malloc(vl);
                memcpy(m->val[key], v, vl);
                m->len[key] = vl;
            }
        }
        if (cnt > 1)
            OK(kv_write(db, b));
    }
    kv_batch_free(b);
}

static void test_flush_compact_reopen(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-fc");
    tu_rng r = {tu_seed(11)};
    model m = {0};
    kv_fs *fs = fast_fs(dir);
    kv_db *db = open_tiny(dir, "os", fs);
    workload(db, &m, &r, 3000, 0);
    compare(db, &m);
    OK(kv_check(db));
    assert_true(lt_stat(db, "flushes") > 0);
    assert_true(lt_stat(db, "compactions") + lt_stat(db, "trivial_moves") > 0);
    assert_true(lt_stat(db, "manifest_rollovers") > 0);
    assert_true(lt_stat(db, "compaction_bytes_written") > 0);
    unsigned long long deeper = 0;
    for (int l = 1; l < 7; l++) {
        char n[16];
        snprintf(n, sizeof n, "files_L%d", l);
        deeper += lt_stat(db, n);
    }
    assert_true(deeper > 0);
    OK(kv_close(db));
    assert_int_equal(lt_count_files(dir, ".tmp"), 0);
    assert_int_equal(lt_count_files(dir, "CURRENT"), 1);
    db = open_tiny(dir, "sync", fs);
    compare(db, &m);
    OK(kv_check(db));
    workload(db, &m, &r, 1000, 4000);
    compare(db, &m);
    OK(kv_close(db));
    db = open_tiny(dir, "none", fs);
    compare(db, &m);
    OK(kv_check(db));
    OK(kv_close(db));
    db = open_tiny(dir, "interval:5", NULL); /* and on the real posix fs */
    compare(db, &m);
    OK(kv_check(db));
    workload(db, &m, &r, 200, 5000);
    OK(kv_close(db));
    kv_fs_destroy(fs);
    model_free(&m);
    rm_dirs(dir);
}

/* ---- an iterator stays on its snapshot while compaction rewrites the tables ---- */

typedef struct writer_arg {
    kv_db *db;
    int ops;
} writer_arg;

static void *overwriter(void *p)
{
    writer_arg *a = p;
    char v[200];
    memset(v, 'n', sizeof v);
    for (int i = 0; i < a->ops; i++) {
        char k[32];
        int kl = keyname(k, i % NKEYS);
        kv_status s = (i % 5 == 4) ? kv_delete(a->db, k, (size_t)kl)
                                   : kv_put(a->db, k, (size_t)kl, v, sizeof v);
        if (s != KV_OK) {
            fprintf(stderr, "overwriter: %s: %s\n", kv_strerror(s), kv_errmsg());
            return (void *)1;
        }
    }
    return NULL;
}

static void test_iter_during_compaction(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-iter");
    kv_fs *fs = fast_fs(dir);
    kv_db *db = open_tiny(dir, "os", fs);
    char v[100];
    for (int i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = keyname(k, i);
        memset(v, 'o', sizeof v);
        snprintf(v, sizeof v, "old%d", i);
        OK(kv_put(db, k, (size_t)kl, v, sizeof v));
    }
    kv_iter *it;
    OK(kv_iter_new(db, &it));
    unsigned long long before = lt_stat(db, "compactions") + lt_stat(db, "flushes");
    pthread_t t;
    writer_arg a = {db, 3000};
    assert_int_equal(pthread_create(&t, NULL, overwriter, &a), 0);
    int n = 0;
    kv_iter_seek_first(it);
    for (int i = 0; i < NKEYS; i++) {
        assert_true(kv_iter_valid(it));
        char k[32];
        int kl = keyname(k, i);
        size_t gl, vl;
        const void *g = kv_iter_key(it, &gl);
        assert_int_equal(gl, (size_t)kl);
        assert_memory_equal(g, k, gl);
        const char *gv = kv_iter_value(it, &vl);
        assert_int_equal(vl, sizeof v);
        memset(v, 'o', sizeof v);
        snprintf(v, sizeof v, "old%d", i);
        assert_memory_equal(gv, v, vl);
        kv_iter_next(it);
        n++;
        if (i % 50 == 0)
            usleep(1000); /* let the writer and compaction move on */
    }
    assert_false(kv_iter_valid(it));
    OK(kv_iter_status(it));
    void *ret;
    pthread_join(t, &ret);
    assert_null(ret);
    /* after the writer, the same iterator still reads the old snapshot from the start */
    kv_iter_seek(it, "k00010", 6);
    assert_true(kv_iter_valid(it));
    size_t vl;
    const char *gv = kv_iter_value(it, &vl);
    assert_memory_equal(gv, "old10", 5);
    kv_iter_free(it);
    assert_true(lt_stat(db, "compactions") + lt_stat(db, "flushes") > before);
    OK(kv_check(db));
    /* and a new iterator sees the new state: every fifth write was a delete */
    OK(kv_iter_new(db, &it));
    int live = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        live++;
    OK(kv_iter_status(it));
    kv_iter_free(it);
    assert_int_equal(live, NKEYS - NKEYS / 5);
    OK(kv_close(db));
    kv_fs_destroy(fs);
    rm_dirs(dir);
}

/* ---- files ---- */

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void write_some(const char *dir, int n)
{
    kv_options o;
    kv_options_init(&o); /* default sizes: everything stays in the WAL */
    kv_db *db;
    OK(kv_open("lsm", dir, &o, &db));
    for (int i = 0; i < n; i++) {
        char k[32];
        int kl = keyname(k, i);
        OK(kv_put(db, k, (size_t)kl, "value", 5));
    }
    OK(kv_close(db));
}

/* ---- kv_check compares the manifest with the files ---- */

static void test_check_finds_missing_table(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-check");
    write_some(dir, 100);
    kv_options o;
    kv_options_init(&o); /* default sizes: the reopened WAL becomes the only table */
    kv_db *db;
    OK(kv_open("lsm", dir, &o, &db));
    OK(kv_check(db));
    char *sst = lt_find_file(dir, ".sst");
    assert_non_null(sst);
    size_t n = strlen(sst) + 8;
    char *moved = malloc(n);
    snprintf(moved, n, "%s.away", sst);
    assert_int_equal(rename(sst, moved), 0);
    assert_int_equal(kv_check(db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "missing"));
    assert_int_equal(rename(moved, sst), 0);
    OK(kv_check(db));
    /* a table cut short no longer matches the manifest's size */
    long size = file_size(sst);
    assert_int_equal(truncate(sst, size - 1), 0);
    assert_int_equal(kv_check(db), KV_CORRUPTION);
    OK(kv_close(db));
    /* and the damaged table is reported at open, naming the file */
    assert_int_equal(kv_open("lsm", dir, &o, &db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), strrchr(sst, '/') + 1));
    free(moved);
    free(sst);
    tu_rmtree(dir);
    free(dir);
}

/* ---- a failed fdatasync poisons the handle ---- */

static void test_failed_sync_poisons(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-poison");
    char *scratch = tu_mkdtemp("lsm-poison-scratch");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db = open_tiny(dir, "sync", fs);
    OK(kv_put(db, "a", 1, "1", 1));
    kv_faultfs_fail(fs, KV_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(kv_put(db, "b", 1, "2", 1), KV_IO);
    assert_int_equal(kv_put(db, "c", 1, "3", 1), KV_POISONED);
    assert_int_equal(kv_delete(db, "a", 1), KV_POISONED);
    assert_int_equal(kv_sync(db), KV_POISONED);
    void *v;
    size_t vl;
    OK(kv_get(db, "a", 1, &v, &vl)); /* reads still work */
    kv_free(v);
    assert_int_equal(kv_close(db), KV_POISONED);
    kv_fs_destroy(fs);
    /* reopening rebuilds from the log: "a" is there, "c" never was */
    kv_options o;
    kv_options_init(&o);
    OK(kv_open("lsm", dir, &o, &db));
    OK(kv_get(db, "a", 1, &v, &vl));
    kv_free(v);
    assert_int_equal(kv_get(db, "c", 1, &v, &vl), KV_NOT_FOUND);
    OK(kv_check(db));
    OK(kv_close(db));
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* ---- dump and options ---- */

static char *dump_to_string(kv_db *db, const char *file, int64_t page, kv_status want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(kv_dump(db, out, file, page), want);
    fclose(out);
    return buf;
}

static void test_dump_and_options(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-dump");
    tu_rng r = {tu_seed(5)};
    model m = {0};
    kv_fs *fs = fast_fs(dir);
    kv_db *db = open_tiny(dir, "os", fs);
    workload(db, &m, &r, 500, 0);
    /* reopen (the log becomes a table named by the new manifest) with triggers so high that
     * no compaction or manifest roll-over changes the files while we dump; one logged put */
    OK(kv_close(db));
    kv_options q;
    kv_options_init(&q);
    q.fs = fs;
    const char *quiet[] = {"l0_compaction_trigger=1000", "l0_slowdown_trigger=1000",
                           "l0_stop_trigger=1000", "level_base_bytes=1G"};
    for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++)
        OK(kv_options_set(&q, quiet[i]));
    OK(kv_open("lsm", dir, &q, &db));
    kv_options_free(&q);
    OK(kv_put(db, "k99999", 6, "x", 1));
    OK(kv_sync(db));
    char *s = dump_to_string(db, NULL, -1, KV_OK);
    const char *want[] = {"CURRENT",
                          "MANIFEST-",
                          "add_file level=",
                          "comparator = kvlab.lsm",
                          "batch: first_sequence=",
                          "footer:",
                          "restart[0]",
                          "filter block"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(s, want[i]))
            fail_msg("dump lacks '%s'", want[i]);
    free(s);
    s = dump_to_string(db, "CURRENT", -1, KV_OK);
    assert_non_null(strstr(s, "name=\"MANIFEST-"));
    free(s);
    char *sst = lt_find_file(dir, ".sst");
    assert_non_null(sst);
    const char *base = strrchr(sst, '/') + 1;
    s = dump_to_string(db, base, 0, KV_OK);
    assert_non_null(strstr(s, "data block 0"));
    free(s);
    free(dump_to_string(db, base, 100000, KV_INVALID));
    free(dump_to_string(db, "nosuchfile", -1, KV_INVALID));
    free(dump_to_string(db, "CURRENT", 0, KV_INVALID));
    free(dump_to_string(db, NULL, 0, KV_INVALID));
    free(sst);
    OK(kv_close(db));
    /* bad options are refused */
    kv_options o;
    kv_options_init(&o);
    OK(kv_options_set(&o, "l0_compaction_trigger=9"));
    OK(kv_options_set(&o, "l0_stop_trigger=3"));
    assert_int_equal(kv_open("lsm", dir, &o, &db), KV_INVALID);
    kv_options_free(&o);
    kv_options_init(&o);
    OK(kv_options_set(&o, "write_buffer_size=abc"));
    assert_int_equal(kv_open("lsm", dir, &o, &db), KV_INVALID);
    kv_options_free(&o);
    kv_fs_destroy(fs);
    model_free(&m);
    rm_dirs(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_compact_reopen),
        cmocka_unit_test(test_iter_during_compaction),
        cmocka_unit_test(test_check_finds_missing_table),
        cmocka_unit_test(test_failed_sync_poisons),
        cmocka_unit_test(test_dump_and_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
