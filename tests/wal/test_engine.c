/* Tests of the `wal` engine through kv.h: reads and writes, snapshot iterators under concurrent
 * writes, checkpoints (manual and automatic) with log truncation, recovery from snapshot plus
 * log in every durability mode, stats, check, dump, bad options, a damaged snapshot. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "faultfs.h"
#include "testutil.h"
#include "wal_engine.h"
#include "wal_test_util.h"

typedef struct env {
    char *dir;
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    e->dir = tu_mkdtemp("wal-engine");
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    tu_rmtree(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static kv_db *open_db(const char *dir, const char *dur, const char *const *extra)
{
    kv_options o;
    kv_options_init(&o);
    assert_int_equal(kv_durability_parse(dur, &o.durability), KV_OK);
    for (size_t i = 0; extra && extra[i]; i++)
        assert_int_equal(kv_options_set(&o, extra[i]), KV_OK);
    kv_db *db = NULL;
    kv_status s = kv_open("wal", dir, &o, &db);
    if (s != KV_OK)
        fprintf(stderr, "open: %s\n", kv_errmsg());
    assert_int_equal(s, KV_OK);
    kv_options_free(&o);
    return db;
}

static uint64_t stat_extra(kv_db *db, const char *name)
{
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    for (size_t i = 0; i < st.n_extra; i++)
        if (!strcmp(st.extra[i].name, name))
            return st.extra[i].value;
    fail_msg("no stat %s", name);
    return 0;
}

static void put_kv(kv_db *db, int k, int v)
{
    char key[32], val[64];
    int kl = snprintf(key, sizeof key, "key%06d", k);
    int vl = snprintf(val, sizeof val, "value-%d-%d", k, v);
    assert_int_equal(kv_put(db, key, (size_t)kl, val, (size_t)vl), KV_OK);
}

static void expect_kv(kv_db *db, int k, int v)
{
    char key[32], val[64];
    int kl = snprintf(key, sizeof key, "key%06d", k);
    int vl = snprintf(val, sizeof val, "value-%d-%d", k, v);
    void *got = NULL;
    size_t n = 0;
    kv_status s = kv_get(db, key, (size_t)kl, &got, &n);
    if (v < 0) {
        assert_int_equal(s, KV_NOT_FOUND);
        return;
    }
    assert_int_equal(s, KV_OK);
    assert_int_equal(n, (size_t)vl);
    assert_memory_equal(got, val, n);
    kv_free(got);
}

static void test_basic_and_reopen_every_mode(void **state)
{
    env *e = *state;
    const char *modes[] = {"none", "os", "interval:10", "sync"};
    int model[300];
    for (int k = 0; k < 300; k++)
        model[k] = -1;
    for (int m = 0; m < 4; m++) {
        const char *extra[] = {"segment_size=4096", "checkpoint_bytes=20000", NULL};
        kv_db *db = open_db(e->dir, modes[m], extra);
        for (int k = 0; k < 300; k++)
            expect_kv(db, k, model[k]);
        for (int i = 0; i < 400; i++) {
            int k = (i * 37 + m * 11) % 300;
            if (i % 7 == 3) {
                char key[32];
                int kl = snprintf(key, sizeof key, "key%06d", k);
                assert_int_equal(kv_delete(db, key, (size_t)kl), KV_OK);
                model[k] = -1;
            } else {
                put_kv(db, k, i + m * 1000);
                model[k] = i + m * 1000;
            }
        }
        kv_batch *b = kv_batch_new();
        for (int k = 0; k < 10; k++) {
            char key[32], val[64];
            int kl = snprintf(key, sizeof key, "key%06d", k);
            int vl = snprintf(val, sizeof val, "value-%d-%d", k, 7);
            assert_int_equal(kv_batch_put(b, key, (size_t)kl, val, (size_t)vl), KV_OK);
            model[k] = 7;
        }
        assert_int_equal(kv_write(db, b), KV_OK);
        kv_batch_free(b);
        assert_true(stat_extra(db, "checkpoints") > 0);
        assert_int_equal(kv_check(db), KV_OK);
        for (int k = 0; k < 300; k++)
            expect_kv(db, k, model[k]);
        assert_int_equal(kv_close(db), KV_OK);
    }
    kv_db *db = open_db(e->dir, "os", NULL);
    for (int k = 0; k < 300; k++)
        expect_kv(db, k, model[k]);
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    uint64_t live = 0;
    for (int k = 0; k < 300; k++)
        live += model[k] >= 0;
    assert_int_equal(st.live_keys, live);
    assert_true(st.memory_bytes > 0);
    assert_int_equal(kv_close(db), KV_OK);
}

static void test_checkpoint_truncates_log(void **state)
{
    env *e = *state;
    const char *extra[] = {"segment_size=4096", "checkpoint_bytes=0", NULL};
    kv_db *db = open_db(e->dir, "os", extra);
    for (int i = 0; i < 500; i++)
        put_kv(db, i, i);
    uint64_t segs = stat_extra(db, "segments");
    assert_true(segs > 3);
    assert_int_equal(stat_extra(db, "checkpoints"), 0);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(stat_extra(db, "checkpoints"), 1);
    assert_int_equal(stat_extra(db, "segments"), 1);
    assert_true(stat_extra(db, "segment_rewrites") >= 1);
    assert_true(stat_extra(db, "log_bytes") < 200);
    assert_int_equal(kv_check(db), KV_OK);
    for (int i = 0; i < 100; i++)
        put_kv(db, i, i + 1);
    assert_int_equal(kv_close(db), KV_OK);
    db = open_db(e->dir, "os", extra);
    for (int i = 0; i < 500; i++)
        expect_kv(db, i, i < 100 ? i + 1 : i);
    assert_int_equal(stat_extra(db, "checkpoint_lsn") > 0, 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(kv_dump(db, f, NULL, -1), KV_OK);
    fclose(f);
    assert_non_null(strstr(buf, "snapshot SNAPSHOT"));
    assert_non_null(strstr(buf, "magic=\"KVWALSEG\""));
    assert_non_null(strstr(buf, "CHECKPOINT"));
    assert_non_null(strstr(buf, "key(9)=\"key000099\""));
    free(buf);
    f = fopen("/dev/null", "w");
    assert_int_equal(kv_dump(db, f, "SNAPSHOT", -1), KV_OK);
    assert_int_equal(kv_dump(db, f, "nope.wal", -1), KV_INVALID);
    assert_int_equal(kv_dump(db, f, NULL, 3), KV_INVALID);
    fclose(f);
    assert_int_equal(kv_close(db), KV_OK);
}

typedef struct writer_arg {
    kv_db *db;
    _Atomic int stop;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    for (int i = 0; !atomic_load(&w->stop) || i < 200; i++) {
        put_kv(w->db, i % 400, 1000 + i);
        if (i % 5 == 0) {
            char key[32];
            int kl = snprintf(key, sizeof key, "key%06d", (i * 7) % 400);
            assert_int_equal(kv_delete(w->db, key, (size_t)kl), KV_OK);
        }
        if (i > 20000)
            break;
    }
    return NULL;
}

static void test_iterator_snapshot_under_writes(void **state)
{
    env *e = *state;
    const char *extra[] = {"checkpoint_bytes=30000", "segment_size=8192", NULL};
    kv_db *db = open_db(e->dir, "os", extra);
    for (int i = 0; i < 400; i += 2)
        put_kv(db, i, 0);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    writer_arg w = {db, 0};
    pthread_t th;
    pthread_create(&th, NULL, writer, &w);
    for (int round = 0; round < 5; round++) {
        int count = 0;
        for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
            size_t kl, vl;
            const char *k = kv_iter_key(it, &kl);
            const char *v = kv_iter_value(it, &vl);
            char want[32];
            int wl = snprintf(want, sizeof want, "key%06d", count * 2);
            assert_int_equal(kl, (size_t)wl);
            assert_memory_equal(k, want, kl);
            char wv[64];
            int wvl = snprintf(wv, sizeof wv, "value-%d-0", count * 2);
            assert_int_equal(vl, (size_t)wvl);
            assert_memory_equal(v, wv, vl);
            count++;
        }
        assert_int_equal(count, 200);
        kv_iter_seek(it, "key000101", 9);
        assert_true(kv_iter_valid(it));
        size_t kl;
        assert_memory_equal(kv_iter_key(it, &kl), "key000102", 9);
        assert_int_equal(kv_iter_status(it), KV_OK);
    }
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    kv_iter_free(it);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
}

static void test_large_values_and_keys(void **state)
{
    env *e = *state;
    const char *extra[] = {"segment_size=65536", NULL};
    kv_db *db = open_db(e->dir, "sync", extra);
    size_t vl = (size_t)KV_MAX_VALUE; /* the largest value with the largest key */
    uint8_t *v = malloc(vl);
    wt_payload(v, vl, 1, 2);
    size_t xl = (size_t)3 << 20;
    uint8_t *k = malloc(KV_MAX_KEY);
    memset(k, 0xab, KV_MAX_KEY);
    assert_int_equal(kv_put(db, k, KV_MAX_KEY, v, vl), KV_OK);
    assert_int_equal(kv_put(db, "e", 1, "", 0), KV_OK);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(kv_put(db, "x", 1, v, xl), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    db = open_db(e->dir, "os", extra);
    void *got;
    size_t n;
    assert_int_equal(kv_get(db, k, KV_MAX_KEY, &got, &n), KV_OK);
    assert_int_equal(n, vl);
    assert_memory_equal(got, v, vl);
    kv_free(got);
    assert_int_equal(kv_get(db, "x", 1, &got, &n), KV_OK);
    assert_int_equal(n, xl);
    assert_memory_equal(got, v, xl);
    kv_free(got);
    assert_int_equal(kv_get(db, "e", 1, &got, &n), KV_OK);
    assert_int_equal(n, 0);
    kv_free(got);
    assert_int_equal(kv_check(db), KV_OK);
    /* One byte more is refused, and nothing is written. */
    assert_int_equal(kv_put(db, "y", 1, v, vl + 1), KV_INVALID);
    assert_int_equal(kv_get(db, "y", 1, &got, &n), KV_NOT_FOUND);
    assert_int_equal(kv_close(db), KV_OK);
    free(v);
    free(k);
}

static void test_bad_options(void **state)
{
    env *e = *state;
    const char *bad[] = {"segment_size=100", "recovery=maybe", "checkpoint_bytes=x", "group_max=0",
                         "nonsense=1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kv_options o;
        kv_options_init(&o);
        assert_int_equal(kv_options_set(&o, bad[i]), KV_OK);
        kv_db *db = NULL;
        assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_INVALID);
        kv_options_free(&o);
    }
}

static void test_damaged_snapshot(void **state)
{
    env *e = *state;
    kv_db *db = open_db(e->dir, "os", NULL);
    for (int i = 0; i < 50; i++)
        put_kv(db, i, i);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    char *p = wt_join(e->dir, "SNAPSHOT");
    wt_flip_byte(p, 100, 0x04);
    kv_options o;
    kv_options_init(&o);
    assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "SNAPSHOT: offset"));
    /* Without the snapshot the log no longer reaches back: refused, never a silent loss. */
    assert_int_equal(remove(p), 0);
    assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_CORRUPTION);
    fprintf(stderr, "expected refusal: %s\n", kv_errmsg());
    assert_non_null(strstr(kv_errmsg(), "SNAPSHOT"));
    free(p);
}

/* A SNAPSHOT.tmp left by a checkpoint that crashed before its rename was never part of the
 * state: open deletes it (durably) and recovers from SNAPSHOT and the log alone; the next
 * checkpoint then works as usual. */
static void test_stray_snapshot_tmp_removed(void **state)
{
    env *e = *state;
    kv_db *db = open_db(e->dir, "os", NULL);
    for (int i = 0; i < 50; i++)
        put_kv(db, i, i);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    for (int i = 0; i < 50; i += 2)
        put_kv(db, i, i + 1);
    assert_int_equal(kv_close(db), KV_OK);
    char *snap = wt_join(e->dir, "SNAPSHOT"), *tmp = wt_join(e->dir, "SNAPSHOT.tmp");
    wt_copy_file(snap, tmp);
    wt_truncate(tmp, wt_file_size(tmp) / 2); /* half written */
    db = open_db(e->dir, "os", NULL);
    assert_int_equal(access(tmp, F_OK), -1);
    for (int i = 0; i < 50; i++)
        expect_kv(db, i, i % 2 ? i : i + 1);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    free(snap);
    free(tmp);
}

/* Open refuses, with KV_CORRUPTION, a SNAPSHOT and a log that do not meet: (1) a log that starts
 * after SNAPSHOT's LSN + 1 (the first segment after the checkpoint is gone: the puts in it would
 * be lost without a word); (2) a SNAPSHOT that covers more than the log holds (a SNAPSHOT from a
 * later state beside an older log). */
static void test_snapshot_and_log_must_meet(void **state)
{
    env *e = *state;
    const char *extra[] = {"segment_size=4096", "checkpoint_bytes=0", NULL};
    kv_options o;
    kv_options_init(&o);
    kv_db *db = open_db(e->dir, "os", extra);
    for (int i = 0; i < 50; i++)
        put_kv(db, i, i);
    assert_int_equal(kv_close(db), KV_OK);
    /* An older copy of the database: only its log. */
    char *old_dir = tu_mkdtemp("wal-engine-old");
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    for (size_t i = 0; i < n; i++) {
        char *a = wt_join(e->dir, segs[i]), *b = wt_join(old_dir, segs[i]);
        wt_copy_file(a, b);
        free(a);
        free(b);
    }
    wt_names_free(segs, n);
    char *id = wt_join(e->dir, "KVLAB.ID"), *old_id = wt_join(old_dir, "KVLAB.ID");
    wt_copy_file(id, old_id);
    free(id);
    free(old_id);
    db = open_db(e->dir, "os", extra);
    for (int i = 0; i < 50; i++)
        put_kv(db, i, i + 1);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    for (int i = 0; i < 300; i++)
        put_kv(db, i, i + 2);
    assert_int_equal(kv_close(db), KV_OK);

    /* (2) the later SNAPSHOT beside the older log. */
    char *snap = wt_join(e->dir, "SNAPSHOT"), *old_snap = wt_join(old_dir, "SNAPSHOT");
    wt_copy_file(snap, old_snap);
    assert_int_equal(kv_open("wal", old_dir, &o, &db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "SNAPSHOT covers LSN"));

    /* (1) the first segment after the checkpoint removed. */
    segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    char *first = wt_join(e->dir, segs[0]);
    assert_int_equal(remove(first), 0);
    assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "records are missing"));
    wt_names_free(segs, n);
    free(first);
    free(snap);
    free(old_snap);
    tu_rmtree(old_dir);
    free(old_dir);
    kv_options_free(&o);
}

/* A checkpoint never removes the last segment (a rewrite is durable before its original goes),
 * so a SNAPSHOT without any segment beside it is damage: refused, read-only too, never a
 * database rolled back to the snapshot. */
static void test_snapshot_without_segments_is_corruption(void **state)
{
    env *e = *state;
    kv_db *db = open_db(e->dir, "os", NULL);
    for (int i = 0; i < 50; i++)
        put_kv(db, i, i);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    for (int i = 0; i < 10; i++)
        put_kv(db, i, i + 1);
    assert_int_equal(kv_close(db), KV_OK);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    for (size_t i = 0; i < n; i++) {
        char *p = wt_join(e->dir, segs[i]);
        assert_int_equal(remove(p), 0);
        free(p);
    }
    wt_names_free(segs, n);
    kv_options o;
    kv_options_init(&o);
    for (int ro = 0; ro < 2; ro++) {
        o.read_only = ro;
        assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "segments are missing"));
    }
    kv_options_free(&o);
    segs = wt_segments(e->dir, &n);
    assert_int_equal(n, 0); /* and nothing was created */
    wt_names_free(segs, n);
}

/* Copies every regular file of directory from into directory to. */
static void copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char *a = wt_join(from, de->d_name), *b = wt_join(to, de->d_name);
        struct stat st;
        if (stat(a, &st) == 0 && S_ISREG(st.st_mode))
            wt_copy_file(a, b);
        free(a);
        free(b);
    }
    closedir(d);
}

/* A fresh copy of dir to damage. */
static char *clone_db(const char *dir)
{
    char *c = tu_mkdtemp("wal-engine-clone");
    copy_dir(dir, c);
    return c;
}

/* Opening dir, writable and read-only, is KV_CORRUPTION whose message names `name` (and
 * `also`, when given), and changes nothing in the directory. */
static void expect_refused(const char *dir, const char *name, const char *also)
{
    char *before = tu_dir_state(dir);
    kv_options o;
    kv_options_init(&o);
    for (int ro = 0; ro < 2; ro++) {
        o.read_only = ro;
        kv_db *db = NULL;
        kv_status s = kv_open("wal", dir, &o, &db);
        if (s != KV_CORRUPTION)
            fail_msg("open %s (%s): status %d, want KV_CORRUPTION naming %s", dir,
                     ro ? "read-only" : "writable", (int)s, name);
        if (!strstr(kv_errmsg(), name) || (also && !strstr(kv_errmsg(), also)))
            fail_msg("message \"%s\" does not name %s %s", kv_errmsg(), name, also ? also : "");
        char *after = tu_dir_state(dir);
        assert_string_equal(before, after);
        free(after);
    }
    kv_options_free(&o);
    free(before);
}

static void put_range(const char *dir, int n, int v, bool checkpoint_first)
{
    const char *extra[] = {"segment_size=4096", "checkpoint_bytes=0", NULL};
    kv_db *db = open_db(dir, "os", extra);
    if (checkpoint_first)
        assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    for (int i = 0; i < n; i++)
        put_kv(db, i, v);
    assert_int_equal(kv_close(db), KV_OK);
}

/* A SNAPSHOT records the salt of the log it was taken from: another database's SNAPSHOT copied
 * over this one's is KV_CORRUPTION naming SNAPSHOT, offset 32 and both salts, writable and
 * read-only, whether its LSN lies below this log's CHECKPOINT (replay would otherwise meet that
 * first) or above the end of this log, and the refused open changes nothing. kv_check says the
 * same of a handle opened before the swap. */
static void test_foreign_snapshot_refused(void **state)
{
    env *e = *state;
    const char *extra[] = {"checkpoint_bytes=0", NULL};
    kv_db *db = open_db(e->dir, "os", extra);
    for (int i = 0; i < 100; i++)
        put_kv(db, i, i);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    for (int i = 0; i < 20; i++)
        put_kv(db, i, i + 1);
    assert_int_equal(kv_close(db), KV_OK);
    /* Two other databases of the same keys: one with a smaller checkpoint LSN, one larger. */
    char *small = tu_mkdtemp("wal-engine-other"), *large = tu_mkdtemp("wal-engine-other");
    db = open_db(small, "os", extra);
    for (int i = 0; i < 30; i++)
        put_kv(db, i, 7);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    db = open_db(large, "os", extra);
    for (int i = 0; i < 400; i++)
        put_kv(db, i % 100, 9);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    const char *others[] = {small, large};
    for (int k = 0; k < 2; k++) {
        char *c = clone_db(e->dir);
        char *from = wt_join(others[k], "SNAPSHOT"), *to = wt_join(c, "SNAPSHOT");
        wt_copy_file(from, to);
        expect_refused(c, "SNAPSHOT: offset 32", "belongs to another database");
        /* Both salts are named. */
        kv_options o;
        kv_options_init(&o);
        kv_db *x = NULL;
        assert_int_equal(kv_open("wal", c, &o, &x), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "salt"));
        assert_non_null(strstr(kv_errmsg(), "the log's salt"));
        kv_options_free(&o);
        free(from);
        free(to);
        tu_rmtree(c);
        free(c);
    }
    /* The same SNAPSHOT swapped under an open handle: kv_check refuses it. */
    db = open_db(e->dir, "os", extra);
    assert_int_equal(kv_check(db), KV_OK);
    char *from = wt_join(large, "SNAPSHOT"), *to = wt_join(e->dir, "SNAPSHOT");
    wt_copy_file(from, to);
    assert_int_equal(kv_check(db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "belongs to another database"));
    kv_close(db);
    free(from);
    free(to);
    tu_rmtree(small);
    tu_rmtree(large);
    free(small);
    free(large);
}

/* Every file the wal depends on is named and checked: a segment or SNAPSHOT that is missing,
 * swapped with another, replaced by an older copy of itself or cut short is KV_CORRUPTION naming
 * the file, writable or read-only, and the refused open changes nothing; never an empty or
 * rolled-back database. (The one case open cannot tell from a power loss, an older copy or a cut
 * of the newest segment at a batch boundary, is docs/wal.md's.) */
static void test_missing_swapped_stale_truncated_files(void **state)
{
    env *e = *state;
    /* v1: a log of several segments, no SNAPSHOT (copied as old1). */
    put_range(e->dir, 120, 1, false);
    char *old1 = clone_db(e->dir);
    /* v2: the log goes on; old1's newest segment is now an older copy of a sealed one. */
    put_range(e->dir, 120, 2, false);
    char *v2 = clone_db(e->dir);
    /* v3: a checkpoint, SNAPSHOT at L1, more puts (copied as v3). */
    put_range(e->dir, 120, 3, true);
    char *v3 = clone_db(e->dir);
    /* v4: a second checkpoint, SNAPSHOT at L2 > L1, more puts. */
    put_range(e->dir, 120, 4, true);

    size_t n1, n2, n4;
    char **s1 = wt_segments(old1, &n1), **s2 = wt_segments(v2, &n2),
         **s4 = wt_segments(e->dir, &n4);
    assert_true(n1 >= 3 && n2 > n1 && n4 >= 3);
    assert_string_equal(s1[0], s2[0]);

    /* A missing segment: the oldest without a SNAPSHOT, one in the middle, the first after a
     * checkpoint, every one. */
    char *c = clone_db(v2), *p = wt_join(c, s2[0]);
    assert_int_equal(remove(p), 0);
    expect_refused(c, s2[0], "no SNAPSHOT");
    free(p);
    tu_rmtree(c);
    free(c);
    c = clone_db(v2);
    p = wt_join(c, s2[2]);
    assert_int_equal(remove(p), 0);
    expect_refused(c, s2[1], "gap");
    free(p);
    tu_rmtree(c);
    free(c);
    c = clone_db(e->dir);
    p = wt_join(c, s4[0]);
    assert_int_equal(remove(p), 0);
    expect_refused(c, s4[0], "SNAPSHOT");
    free(p);
    tu_rmtree(c);
    free(c);
    c = clone_db(e->dir);
    for (size_t i = 0; i < n4; i++) {
        p = wt_join(c, s4[i]);
        assert_int_equal(remove(p), 0);
        free(p);
    }
    expect_refused(c, "segments are missing", "SNAPSHOT");
    tu_rmtree(c);
    free(c);

    /* Two segments swapped: each header names its own first LSN. */
    c = clone_db(v2);
    char *a = wt_join(c, s2[1]), *b = wt_join(c, s2[2]), *t = wt_join(c, "swap");
    assert_int_equal(rename(a, t), 0);
    assert_int_equal(rename(b, a), 0);
    assert_int_equal(rename(t, b), 0);
    expect_refused(c, s2[1], "differs from the name");
    free(a);
    free(b);
    free(t);
    tu_rmtree(c);
    free(c);

    /* A stale segment: old1's newest, shorter copy of what is now a sealed segment. */
    c = clone_db(v2);
    a = wt_join(old1, s1[n1 - 1]);
    b = wt_join(c, s1[n1 - 1]);
    assert_true(wt_file_size(a) < wt_file_size(b));
    wt_copy_file(a, b);
    expect_refused(c, s1[n1 - 1], "gap");
    free(a);
    free(b);
    tu_rmtree(c);
    free(c);

    /* A sealed segment cut short, by one byte or by half. */
    for (int half = 0; half < 2; half++) {
        c = clone_db(v2);
        p = wt_join(c, s2[1]);
        uint64_t size = wt_file_size(p);
        wt_truncate(p, half ? size / 2 : size - 1);
        expect_refused(c, s2[1], "offset");
        free(p);
        tu_rmtree(c);
        free(c);
    }

    /* SNAPSHOT missing, an older copy of it, cut short, or from a later state than the log. */
    c = clone_db(e->dir);
    p = wt_join(c, "SNAPSHOT");
    assert_int_equal(remove(p), 0);
    expect_refused(c, "SNAPSHOT is missing", s4[0]);
    free(p);
    tu_rmtree(c);
    free(c);
    c = clone_db(e->dir);
    a = wt_join(v3, "SNAPSHOT");
    p = wt_join(c, "SNAPSHOT");
    wt_copy_file(a, p);
    expect_refused(c, "SNAPSHOT is", "older copy");
    free(a);
    free(p);
    tu_rmtree(c);
    free(c);
    c = clone_db(e->dir);
    p = wt_join(c, "SNAPSHOT");
    wt_truncate(p, wt_file_size(p) / 2);
    expect_refused(c, "SNAPSHOT: offset", NULL);
    free(p);
    tu_rmtree(c);
    free(c);
    c = clone_db(v2); /* a log that ends before L1 */
    a = wt_join(e->dir, "SNAPSHOT");
    p = wt_join(c, "SNAPSHOT");
    wt_copy_file(a, p);
    expect_refused(c, "SNAPSHOT", "newer than the log");
    free(a);
    free(p);
    tu_rmtree(c);
    free(c);

    /* The undamaged database opens with every put of v4. */
    kv_db *db = open_db(e->dir, "os", NULL);
    for (int i = 0; i < 120; i++)
        expect_kv(db, i, 4);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    wt_names_free(s1, n1);
    wt_names_free(s2, n2);
    wt_names_free(s4, n4);
    tu_rmtree(old1);
    tu_rmtree(v2);
    tu_rmtree(v3);
    free(old1);
    free(v2);
    free(v3);
}

/* The engine's read-only open: a torn log tail and a SNAPSHOT.tmp stay where they are, reads
 * see the recovered state, a checkpoint is refused; the writable open then cleans up. */
static void test_read_only_engine(void **state)
{
    env *e = *state;
    kv_db *db = open_db(e->dir, "os", NULL);
    for (int i = 0; i < 30; i++)
        put_kv(db, i, i);
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    for (int i = 0; i < 30; i += 3)
        put_kv(db, i, i + 100);
    assert_int_equal(kv_close(db), KV_OK);
    char *snap = wt_join(e->dir, "SNAPSHOT"), *tmp = wt_join(e->dir, "SNAPSHOT.tmp");
    wt_copy_file(snap, tmp);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    char *seg = wt_join(e->dir, segs[n - 1]);
    wt_truncate(seg, wt_file_size(seg) - WAL_MARK_SIZE - 3); /* the last put torn */
    char *before = tu_dir_state(e->dir);
    kv_options o;
    kv_options_init(&o);
    o.read_only = true;
    assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_OK);
    for (int i = 0; i < 30; i++)
        expect_kv(db, i, i % 3 ? i : i == 27 ? 27 : i + 100);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(wal_engine_checkpoint(db), KV_INVALID);
    assert_int_equal(kv_put(db, "x", 1, "y", 1), KV_INVALID);
    assert_int_equal(kv_close(db), KV_OK);
    char *after = tu_dir_state(e->dir);
    assert_string_equal(before, after);
    kv_options_free(&o);
    db = open_db(e->dir, "os", NULL);
    expect_kv(db, 27, 27);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(kv_close(db), KV_OK);
    free(before);
    free(after);
    free(seg);
    wt_names_free(segs, n);
    free(snap);
    free(tmp);
}

/* The newest segment deleted is KV_CORRUPTION naming it, writable and read-only, whether the
 * database was closed cleanly or the engine was killed after a kv_sync (faultfs: a process
 * crash, which keeps every write made); never a database rolled back to the end of the segment
 * before it (keys back, values stale), which is what open made of it while nothing recorded
 * that a newer segment existed. With a checkpoint behind the log too. */
static void test_deleted_newest_segment_refused(void **state)
{
    (void)state;
    const char *extra[] = {"segment_size=4096", "checkpoint_bytes=0", NULL};
    for (int killed = 0; killed < 2; killed++) {
        for (int ckpt = 0; ckpt < 2; ckpt++) {
            char *dir = tu_mkdtemp("wal-engine-deleted");
            char *scratch = tu_mkdtemp("wal-engine-scratch");
            kv_fs *ff = kv_faultfs_new(scratch);
            kv_faultfs_set_real_sync(ff, false);
            kv_options o;
            kv_options_init(&o);
            o.fs = ff;
            for (size_t i = 0; extra[i]; i++)
                assert_int_equal(kv_options_set(&o, extra[i]), KV_OK);
            kv_db *db;
            assert_int_equal(kv_open("wal", dir, &o, &db), KV_OK);
            for (int i = 0; i < 120; i++)
                put_kv(db, i, 1);
            if (ckpt)
                assert_int_equal(wal_engine_checkpoint(db), KV_OK);
            for (int i = 0; i < 120; i++)
                put_kv(db, i, 2);
            for (int i = 0; i < 40; i += 2) {
                char key[32];
                int kl = snprintf(key, sizeof key, "key%06d", i);
                assert_int_equal(kv_delete(db, key, (size_t)kl), KV_OK);
            }
            if (killed) {
                assert_int_equal(kv_sync(db), KV_OK);
                kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
                assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_KEEP, 1), KV_OK);
                kv_close(db); /* fails: the process is gone */
            } else {
                assert_int_equal(kv_close(db), KV_OK);
            }
            kv_fs_destroy(ff);
            kv_options_free(&o);
            size_t n;
            char **segs = wt_segments(dir, &n);
            assert_true(n >= 3);
            char *p = wt_join(dir, segs[n - 1]);
            assert_int_equal(remove(p), 0);
            expect_refused(dir, segs[n - 1], "missing");
            free(p);
            wt_names_free(segs, n);
            tu_rmtree(scratch);
            free(scratch);
            tu_rmtree(dir);
            free(dir);
        }
    }
}

static void test_failed_fsync_in_checkpoint_poisons(void **state)
{
    env *e = *state;
    char *scratch = tu_mkdtemp("wal-engine-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    kv_options o;
    kv_options_init(&o);
    o.fs = ff;
    kv_db *db;
    assert_int_equal(kv_open("wal", e->dir, &o, &db), KV_OK);
    for (int i = 0; i < 20; i++)
        put_kv(db, i, i);
    /* The checkpoint's first fdatasync (of the log) fails: never retried, the handle is
     * poisoned, reads still work, reopening recovers everything acknowledged before. */
    kv_faultfs_fail(ff, KV_FAULT_SYNC, 1, 5 /* EIO */, false);
    assert_int_equal(wal_engine_checkpoint(db), KV_IO);
    char key[] = "zz";
    assert_int_equal(kv_put(db, key, 2, "v", 1), KV_POISONED);
    assert_int_equal(kv_sync(db), KV_POISONED);
    expect_kv(db, 3, 3);
    assert_int_equal(kv_close(db), KV_POISONED);
    kv_fs_destroy(ff);
    db = open_db(e->dir, "os", NULL);
    for (int i = 0; i < 20; i++)
        expect_kv(db, i, i);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(scratch);
    free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_and_reopen_every_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_truncates_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterator_snapshot_under_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_values_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stray_snapshot_tmp_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_log_must_meet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_without_segments_is_corruption, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_swapped_stale_truncated_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_snapshot_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_newest_segment_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_in_checkpoint_poisons, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
