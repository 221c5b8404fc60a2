/* Conformance tests of concurrency: atomic batches against a snapshot reader, an iterator
 * keeping its snapshot while another thread writes, and four threads at once (conf.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "testutil.h"

/* ---- batches ---- */

enum { BATCH_KEYS = 16, BATCH_ROUNDS = 300 };

typedef struct batch_ctx {
    kv_db *db;
    atomic_bool done;
    atomic_int errors;
    char err[256];
} batch_ctx;

static void *batch_writer(void *arg)
{
    batch_ctx *c = arg;
    kv_batch *b = kv_batch_new();
    for (int g = 1; g <= BATCH_ROUNDS; g++) {
        kv_batch_clear(b);
        char v[16];
        int vl = snprintf(v, sizeof v, "g%06d", g);
        for (int i = 0; i < BATCH_KEYS; i++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "batch%02d", i);
            kv_batch_put(b, k, (size_t)kl, v, (size_t)vl);
        }
        /* the marker key exists exactly in odd generations */
        if (g % 2)
            kv_batch_put(b, "batchmark", 9, v, (size_t)vl);
        else
            kv_batch_delete(b, "batchmark", 9);
        kv_status s = kv_write(c->db, b);
        if (s != KV_OK && !atomic_fetch_add(&c->errors, 1))
            snprintf(c->err, sizeof c->err, "kv_write: %s: %s", kv_strerror(s), kv_errmsg());
    }
    kv_batch_free(b);
    atomic_store(&c->done, true);
    return NULL;
}

/* One snapshot of the batch keys: all equal generation, marker present iff odd. */
static void check_batch_snapshot(kv_db *db, int *last_gen)
{
    kv_iter *it;
    EXPECT_OK(kv_iter_new(db, &it));
    kv_iter_seek(it, "batch", 5);
    char first[16] = "";
    int count = 0;
    bool marker = false;
    char markv[16] = "";
    for (; kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        const char *v = kv_iter_value(it, &vl);
        if (kl < 5 || memcmp(k, "batch", 5))
            break;
        assert_true(vl < sizeof first);
        if (kl == 9 && !memcmp(k, "batchmark", 9)) {
            marker = true;
            memcpy(markv, v, vl);
            markv[vl] = 0;
            continue;
        }
        char cur[16];
        memcpy(cur, v, vl);
        cur[vl] = 0;
        if (!count)
            strcpy(first, cur);
        else if (strcmp(first, cur))
            fail_msg("half a batch visible: %s next to %s", first, cur);
        count++;
    }
    EXPECT_OK(kv_iter_status(it));
    kv_iter_free(it);
    assert_int_equal(count, BATCH_KEYS);
    int g = atoi(first + 1);
    assert_true(g >= *last_gen); /* snapshots never go back in time */
    *last_gen = g;
    if (marker != (g % 2 == 1) || (marker && strcmp(markv, first)))
        fail_msg("marker key out of step with generation %d", g);
}

void test_batches(void **state)
{
    (void)state;
    char *dir = conf_dir("batch");
    kv_db *db = conf_open(dir, "os");
    kv_batch *b = kv_batch_new();
    EXPECT_OK(kv_write(db, b)); /* an empty batch */
    /* later operations on the same key win */
    EXPECT_OK(kv_batch_put(b, "a", 1, "1", 1));
    EXPECT_OK(kv_batch_delete(b, "a", 1));
    EXPECT_OK(kv_batch_delete(b, "b", 1));
    EXPECT_OK(kv_batch_put(b, "b", 1, "2", 1));
    EXPECT_OK(kv_batch_put(b, "c", 1, "3", 1));
    EXPECT_OK(kv_batch_put(b, "c", 1, "4", 1));
    EXPECT_OK(kv_write(db, b));
    conf_expect_missing(db, "a", 1);
    conf_expect(db, "b", 1, "2", 1);
    conf_expect(db, "c", 1, "4", 1);
    kv_batch_free(b);

    /* generation 0 everywhere, then a writer of whole-generation batches against a reader of
     * snapshots */
    b = kv_batch_new();
    for (int i = 0; i < BATCH_KEYS; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "batch%02d", i);
        EXPECT_OK(kv_batch_put(b, k, (size_t)kl, "g000000", 7));
    }
    EXPECT_OK(kv_write(db, b));
    kv_batch_free(b);
    batch_ctx c = {.db = db};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, batch_writer, &c), 0);
    int last = 0, snapshots = 0;
    while (!atomic_load(&c.done) || snapshots < 10) {
        check_batch_snapshot(db, &last);
        snapshots++;
    }
    pthread_join(th, NULL);
    if (atomic_load(&c.errors))
        fail_msg("%s", c.err);
    check_batch_snapshot(db, &last);
    assert_int_equal(last, BATCH_ROUNDS);
    EXPECT_OK(kv_close(db));
    db = conf_open(dir, "os");
    last = BATCH_ROUNDS;
    check_batch_snapshot(db, &last);
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

/* ---- an iterator keeps its snapshot while another thread writes ---- */

enum { SNAP_KEYS = 300 };

typedef struct snap_ctx {
    kv_db *db;
    atomic_int started;
    atomic_int errors;
    char err[256];
} snap_ctx;

static void *snap_writer(void *arg)
{
    snap_ctx *c = arg;
    atomic_store(&c->started, 1);
    for (int i = 0; i < SNAP_KEYS; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "snap%04d", i);
        kv_status s =
            i % 2 ? kv_delete(c->db, k, (size_t)kl) : kv_put(c->db, k, (size_t)kl, "new", 3);
        if (s == KV_OK) {
            kl = snprintf(k, sizeof k, "snap%04d+", i); /* new keys between the old ones */
            s = kv_put(c->db, k, (size_t)kl, "ins", 3);
        }
        if (s != KV_OK && !atomic_fetch_add(&c->errors, 1))
            snprintf(c->err, sizeof c->err, "writer: %s: %s", kv_strerror(s), kv_errmsg());
    }
    return NULL;
}

static void expect_snapshot_old(kv_iter *it)
{
    int i = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it), i++) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        const char *v = kv_iter_value(it, &vl);
        char want[16];
        int wl = snprintf(want, sizeof want, "snap%04d", i);
        if (kl != (size_t)wl || memcmp(k, want, kl) || vl != 3 || memcmp(v, "old", 3))
            fail_msg("iterator snapshot changed at entry %d", i);
    }
    EXPECT_OK(kv_iter_status(it));
    assert_int_equal(i, SNAP_KEYS);
}

void test_iter_snapshot(void **state)
{
    (void)state;
    char *dir = conf_dir("snapshot");
    kv_db *db = conf_open(dir, "os");
    for (int i = 0; i < SNAP_KEYS; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "snap%04d", i);
        EXPECT_OK(kv_put(db, k, (size_t)kl, "old", 3));
    }
    kv_iter *it;
    EXPECT_OK(kv_iter_new(db, &it));
    /* half a scan before the writer starts, the rest while and after it runs */
    kv_iter_seek(it, "snap0150", 8);
    assert_true(kv_iter_valid(it));
    snap_ctx c = {.db = db};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, snap_writer, &c), 0);
    while (!atomic_load(&c.started))
        ;
    expect_snapshot_old(it);
    pthread_join(th, NULL);
    if (atomic_load(&c.errors))
        fail_msg("%s", c.err);
    expect_snapshot_old(it); /* still the old state after all the writes */
    kv_iter_free(it);
    /* a new iterator sees the new state */
    EXPECT_OK(kv_iter_new(db, &it));
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    kv_iter_free(it);
    assert_int_equal(n, SNAP_KEYS / 2 + SNAP_KEYS);
    conf_expect(db, "snap0000", 8, "new", 3);
    conf_expect_missing(db, "snap0001", 8);
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}

/* ---- four threads at once ---- */

enum { THREADS = 4, THREAD_OPS = 1500, SHARED = 16 };

typedef struct thr_ctx {
    kv_db *db;
    int id;
    int errors;
    char err[256];
} thr_ctx;

static void thr_fail(thr_ctx *c, const char *what, kv_status s)
{
    if (!c->errors++)
        snprintf(c->err, sizeof c->err, "thread %d: %s: %s: %s", c->id, what, kv_strerror(s),
                 kv_errmsg());
}

/* A shared value: "t<id>:<n>:<sum>" where sum checks the rest. */
static int shared_value(char *buf, size_t cap, int id, int n)
{
    return snprintf(buf, cap, "t%d:%d:%d", id, n, (id * 7919 + n * 31) % 1000);
}

static void *thr_main(void *arg)
{
    thr_ctx *c = arg;
    tu_rng r = {(uint64_t)c->id * 1000 + 1};
    for (int i = 0; i < THREAD_OPS; i++) {
        char k[32], v[32];
        int kl = snprintf(k, sizeof k, "own-%d-%05d", c->id, i);
        int vl = snprintf(v, sizeof v, "v%d-%d", c->id, i);
        kv_status s = kv_put(c->db, k, (size_t)kl, v, (size_t)vl);
        if (s != KV_OK)
            thr_fail(c, "put", s);
        void *got = NULL;
        size_t gl = 0;
        s = kv_get(c->db, k, (size_t)kl, &got, &gl); /* read your own write */
        if (s != KV_OK || gl != (size_t)vl || memcmp(got, v, gl))
            thr_fail(c, "get own key", s);
        kv_free(got);
        if (i % 3 == 2) {
            kl = snprintf(k, sizeof k, "own-%d-%05d", c->id, i - 1);
            if ((s = kv_delete(c->db, k, (size_t)kl)) != KV_OK)
                thr_fail(c, "delete", s);
        }
        int sk = (int)tu_below(&r, SHARED);
        kl = snprintf(k, sizeof k, "shared-%02d", sk);
        if (tu_below(&r, 2)) {
            vl = shared_value(v, sizeof v, c->id, i);
            if ((s = kv_put(c->db, k, (size_t)kl, v, (size_t)vl)) != KV_OK)
                thr_fail(c, "put shared", s);
        } else {
            s = kv_get(c->db, k, (size_t)kl, &got, &gl);
            if (s == KV_OK) {
                int id, n, sum;
                char tmp[32];
                if (gl >= sizeof tmp)
                    thr_fail(c, "shared value too long", KV_CORRUPTION);
                else {
                    memcpy(tmp, got, gl);
                    tmp[gl] = 0;
                    char want[32];
                    if (sscanf(tmp, "t%d:%d:%d", &id, &n, &sum) != 3 ||
                        (shared_value(want, sizeof want, id, n), strcmp(want, tmp)))
                        thr_fail(c, "torn shared value", KV_CORRUPTION);
                }
                kv_free(got);
            } else if (s != KV_NOT_FOUND) {
                thr_fail(c, "get shared", s);
            }
        }
        if (i % 100 == 0) { /* a short scan of its own keys */
            kv_iter *it;
            if ((s = kv_iter_new(c->db, &it)) != KV_OK) {
                thr_fail(c, "iter", s);
                continue;
            }
            kl = snprintf(k, sizeof k, "own-%d-", c->id);
            int seen = 0;
            for (kv_iter_seek(it, k, (size_t)kl); kv_iter_valid(it) && seen < 20;
                 kv_iter_next(it), seen++) {
                size_t il;
                const char *ik = kv_iter_key(it, &il);
                if (il < (size_t)kl || memcmp(ik, k, (size_t)kl))
                    break;
            }
            kv_iter_free(it);
        }
    }
    return NULL;
}

void test_threads(void **state)
{
    (void)state;
    char *dir = conf_dir("threads");
    kv_db *db = conf_open(dir, "os");
    thr_ctx c[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        c[t] = (thr_ctx){.db = db, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, thr_main, &c[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++)
        if (c[t].errors)
            fail_msg("%s (%d errors)", c[t].err, c[t].errors);
    for (int pass = 0; pass < 2; pass++) {
        for (int t = 0; t < THREADS; t++) {
            for (int i = 0; i < THREAD_OPS; i++) {
                char k[32], v[32];
                int kl = snprintf(k, sizeof k, "own-%d-%05d", t, i);
                int vl = snprintf(v, sizeof v, "v%d-%d", t, i);
                if (i % 3 == 1 && i + 1 < THREAD_OPS)
                    conf_expect_missing(db, k, (size_t)kl);
                else
                    conf_expect(db, k, (size_t)kl, v, (size_t)vl);
            }
        }
        size_t own = 0;
        for (int i = 0; i < THREAD_OPS; i++)
            own += !(i % 3 == 1 && i + 1 < THREAD_OPS);
        size_t total = conf_count(db);
        assert_true(total >= own * THREADS && total <= own * THREADS + SHARED);
        if (!pass) {
            EXPECT_OK(kv_close(db));
            db = conf_open(dir, "os");
        }
    }
    EXPECT_OK(kv_check(db));
    EXPECT_OK(kv_close(db));
    conf_dir_done(dir);
}
