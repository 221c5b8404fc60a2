/* Tests of bitcask's sorted key index (bc_index.[ch]): seeks and full scans against a model
 * after many inserts and deletes that cross delta merges (and file merges, and a reopen);
 * iterators keeping their snapshot while later writes merge the delta; and snapshot
 * consistency of iterators created while another thread puts and deletes. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bc_testutil.h"
#include "coding.h"
#include "bitcask.h"
#include "testutil.h"

#define NKEYS 3000

static size_t key_of(int i, char *buf)
{
    return (size_t)sprintf(buf, "key%06d", i);
}

static size_t val_of(int i, int ver, char *buf)
{
    return (size_t)sprintf(buf, "val-%d-%d", i, ver);
}

/* The model: ver[i] = version of key i, or -1 when absent. */
typedef struct model {
    int ver[NKEYS];
} model;

/* Scans it from key index `from` (seek to that key; -1 = seek_first) for at most `limit`
 * records and asserts they equal the model's. */
static void check_scan(kv_iter *it, const model *m, int from, int limit)
{
    char k[32], v[32];
    int i = from < 0 ? 0 : from;
    if (from < 0) {
        kv_iter_seek_first(it);
    } else {
        /* seek to a key between key i-1 and key i when odd: exercises non-exact seeks */
        size_t kl = key_of(i, k);
        if (i % 2 && i > 0) {
            kl = key_of(i - 1, k);
            k[kl++] = '!';
        }
        kv_iter_seek(it, k, kl);
    }
    for (int n = 0; n < limit; n++) {
        while (i < NKEYS && m->ver[i] < 0)
            i++;
        if (i == NKEYS) {
            assert_false(kv_iter_valid(it));
            break;
        }
        assert_true(kv_iter_valid(it));
        size_t kl = key_of(i, k), gl, vl = val_of(i, m->ver[i], v);
        const void *got = kv_iter_key(it, &gl);
        assert_int_equal(gl, kl);
        assert_memory_equal(got, k, kl);
        got = kv_iter_value(it, &gl);
        assert_int_equal(gl, vl);
        assert_memory_equal(got, v, vl);
        kv_iter_next(it);
        i++;
    }
    assert_int_equal(kv_iter_status(it), KV_OK);
}

static void apply(kv_db *db, model *m, tu_rng *rng, int ver)
{
    int i = (int)(tu_next(rng) % NKEYS);
    char k[32], v[32];
    size_t kl = key_of(i, k);
    if (tu_next(rng) % 3 == 0) {
        assert_int_equal(kv_delete(db, k, kl), KV_OK);
        m->ver[i] = -1;
    } else {
        assert_int_equal(kv_put(db, k, kl, v, val_of(i, ver, v)), KV_OK);
        m->ver[i] = ver;
    }
}

static void test_seek_matches_model_across_delta_merges(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-ix-model");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "file_size=64K", "merge=manual", NULL), KV_OK);
    model *m = malloc(sizeof *m), *old = malloc(sizeof *old);
    assert_non_null(m);
    assert_non_null(old);
    for (int i = 0; i < NKEYS; i++)
        m->ver[i] = -1;
    tu_rng rng = {tu_seed(0x1dea)};
    kv_iter *held = NULL;
    for (int op = 1; op <= 30000; op++) {
        apply(db, m, &rng, op);
        if (op % 97 == 0) { /* a scan now and then: the index is kept and its delta merged */
            kv_iter *it;
            assert_int_equal(kv_iter_new(db, &it), KV_OK);
            check_scan(it, m, (int)(tu_next(&rng) % NKEYS), 20);
            check_scan(it, m, (int)(tu_next(&rng) % NKEYS), 1);
            kv_iter_free(it);
        }
        if (op == 5000) { /* an iterator that lives across many later writes and merges */
            assert_int_equal(kv_iter_new(db, &held), KV_OK);
            memcpy(old, m, sizeof *m);
        }
        if (op % 7000 == 0) /* a file merge moves locations: the index must follow */
            assert_int_equal(kv_bitcask_merge(db), KV_OK);
        if (op == 20000) {
            check_scan(held, old, -1, NKEYS);
            kv_iter_free(held);
            held = NULL;
        }
    }
    assert_true(bt_stat(db, "index_merges") > 3);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    check_scan(it, m, -1, NKEYS);
    for (int s = 0; s < 200; s++)
        check_scan(it, m, (int)(tu_next(&rng) % NKEYS), 5);
    kv_iter_free(it);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);

    /* After a reopen the index is rebuilt from the recovered keydir. */
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "merge=manual", NULL), KV_OK);
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    check_scan(it, m, -1, NKEYS);
    kv_iter_free(it);
    assert_int_equal(kv_close(db), KV_OK);
    free(m);
    free(old);
    tu_rmtree(dir);
    free(dir);
}

/* A write-only phase drops the index (no scans since its last merge); the next iterator
 * rebuilds it and still sees every change. */
static void test_index_dropped_and_rebuilt(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-ix-drop");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "merge=manual", NULL), KV_OK);
    model *m = malloc(sizeof *m);
    assert_non_null(m);
    for (int i = 0; i < NKEYS; i++)
        m->ver[i] = -1;
    tu_rng rng = {tu_seed(0xd20b)};
    for (int op = 1; op <= 2000; op++)
        apply(db, m, &rng, op);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    check_scan(it, m, -1, NKEYS);
    kv_iter_free(it);
    assert_int_equal(bt_stat(db, "index_builds"), 1);
    for (int op = 2001; op <= 8000; op++) /* far more than one delta: dropped */
        apply(db, m, &rng, op);
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    assert_int_equal(bt_stat(db, "index_builds"), 2);
    check_scan(it, m, -1, NKEYS);
    kv_iter_free(it);
    assert_int_equal(kv_close(db), KV_OK);
    free(m);
    tu_rmtree(dir);
    free(dir);
}

/* ---- snapshot consistency while another thread writes ---- */

#define CKEYS  400
#define ROUNDS 150

/* Round r (1..ROUNDS) writes keys 0..CKEYS-1 in order: delete when (r + i) % 3 == 0, else put
 * version r. Round 0 is the empty start. Any snapshot must be: keys < i0 as after round r,
 * keys >= i0 as after round r - 1. */
static int round_state(int r, int i)
{
    return r == 0 || (r + i) % 3 == 0 ? -1 : r;
}

typedef struct cwriter {
    kv_db *db;
    _Atomic int done;
    _Atomic int scans; /* scans finished by the reader: the writer stays close behind them */
} cwriter;

static void *cwriter_main(void *p)
{
    cwriter *w = p;
    for (int r = 1; r <= ROUNDS; r++)
        for (int i = 0; i < CKEYS; i++) {
            /* about two scans per round, so snapshots meet the delta in every state */
            while (i % (CKEYS / 2) == 0 && atomic_load(&w->scans) < 2 * r - 2)
                sched_yield();
            char k[32], v[32];
            size_t kl = key_of(i, k);
            kv_status s = round_state(r, i) < 0 ? kv_delete(w->db, k, kl)
                                                : kv_put(w->db, k, kl, v, val_of(i, r, v));
            if (s != KV_OK)
                abort();
        }
    atomic_store(&w->done, 1);
    return NULL;
}

/* Whether st is round r's prefix followed by round r-1's suffix. */
static bool is_prefix_state(const int *st, int r)
{
    if (r < 1 || r > ROUNDS)
        return false;
    int i = 0;
    while (i < CKEYS && st[i] == round_state(r, i))
        i++;
    for (; i < CKEYS; i++)
        if (st[i] != round_state(r - 1, i))
            return false;
    return true;
}

/* Reads the whole snapshot of it into st (checking every value) and returns the highest
 * version seen. */
static int read_snapshot(kv_iter *it, int *st)
{
    for (int i = 0; i < CKEYS; i++)
        st[i] = -1;
    int maxv = 0, prev = -1;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        const char *v = kv_iter_value(it, &vl);
        char kb[32], vb[32];
        assert_true(kl < sizeof kb && vl < sizeof vb);
        memcpy(kb, k, kl);
        kb[kl] = 0;
        memcpy(vb, v, vl);
        vb[vl] = 0;
        int i, vi, ver;
        assert_int_equal(sscanf(kb, "key%d", &i), 1);
        assert_int_equal(sscanf(vb, "val-%d-%d", &vi, &ver), 2);
        assert_int_equal(vi, i);
        assert_true(i > prev && i < CKEYS); /* ascending, no duplicates */
        prev = i;
        st[i] = ver;
        if (ver > maxv)
            maxv = ver;
    }
    assert_int_equal(kv_iter_status(it), KV_OK);
    return maxv;
}

static void test_snapshot_consistent_under_concurrent_writes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-ix-conc");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "merge=manual", NULL), KV_OK);
    cwriter w = {.db = db};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cwriter_main, &w), 0);
    int st[CKEYS], st2[CKEYS];
    kv_iter *held = NULL;
    int scans = 0;
    tu_rng rng = {tu_seed(0xc0c)};
    while (!atomic_load(&w.done) || scans < 20) {
        kv_iter *it;
        assert_int_equal(kv_iter_new(db, &it), KV_OK);
        int v = read_snapshot(it, st);
        /* a snapshot whose newest round so far only deleted shows round v+1's prefix */
        assert_true(v == 0 || is_prefix_state(st, v) || is_prefix_state(st, v + 1));
        if (scans % 10 == 5) { /* the same iterator again later: the very same snapshot */
            if (held) {
                read_snapshot(held, st2);
                int again[CKEYS];
                read_snapshot(held, again);
                assert_memory_equal(st2, again, sizeof again);
                kv_iter_free(held);
            }
            held = it;
        } else {
            /* seeks inside the snapshot agree with its full scan */
            for (int s = 0; s < 5; s++) {
                int i = (int)(tu_next(&rng) % CKEYS);
                char k[32];
                kv_iter_seek(it, k, key_of(i, k));
                while (i < CKEYS && st[i] < 0)
                    i++;
                if (i == CKEYS) {
                    assert_false(kv_iter_valid(it));
                    continue;
                }
                assert_true(kv_iter_valid(it));
                size_t kl, gl;
                char k2[32];
                kl = key_of(i, k2);
                const void *g = kv_iter_key(it, &gl);
                assert_int_equal(gl, kl);
                assert_memory_equal(g, k2, kl);
            }
            kv_iter_free(it);
        }
        scans++;
        atomic_store(&w.scans, scans);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(bt_stat(db, "index_merges") > 0);
    if (held)
        kv_iter_free(held);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    assert_int_equal(read_snapshot(it, st), ROUNDS);
    for (int i = 0; i < CKEYS; i++)
        assert_int_equal(st[i], round_state(ROUNDS, i));
    kv_iter_free(it);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* Binary keys of 1 to 12 bytes over {0x00, 0x01, 0xff}: keys that are prefixes of each other,
 * zero bytes where the index's 8-byte order prefix pads with zeros, long shared prefixes. */
#define BKEYS 600
typedef struct bkey {
    uint8_t k[12];
    size_t len;
    bool live;
} bkey;

static int bkey_cmp(const void *a, const void *b)
{
    const bkey *x = a, *y = b;
    return kv_key_cmp(x->k, x->len, y->k, y->len);
}

static void test_binary_keys_order(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-ix-bin");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "merge=manual", NULL), KV_OK);
    static const uint8_t alpha[3] = {0x00, 0x01, 0xff};
    tu_rng rng = {tu_seed(0xb1)};
    bkey *keys = calloc(BKEYS, sizeof *keys);
    assert_non_null(keys);
    size_t n = 0;
    while (n < BKEYS) { /* distinct keys */
        bkey k = {.len = 1 + tu_next(&rng) % 12};
        for (size_t i = 0; i < k.len; i++)
            k.k[i] = alpha[tu_next(&rng) % 3];
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = !bkey_cmp(&keys[j], &k);
        if (!dup)
            keys[n++] = k;
    }
    qsort(keys, BKEYS, sizeof *keys, bkey_cmp);
    for (int op = 0; op < 6000; op++) {
        bkey *k = &keys[tu_next(&rng) % BKEYS];
        if (tu_next(&rng) % 3 == 0) {
            assert_int_equal(kv_delete(db, k->k, k->len), KV_OK);
            k->live = false;
        } else {
            assert_int_equal(kv_put(db, k->k, k->len, "v", 1), KV_OK);
            k->live = true;
        }
        if (op % 50 == 0) {
            kv_iter *it;
            assert_int_equal(kv_iter_new(db, &it), KV_OK);
            size_t from = tu_next(&rng) % BKEYS;
            kv_iter_seek(it, keys[from].k, keys[from].len);
            for (size_t i = from; i < BKEYS; i++) {
                if (!keys[i].live)
                    continue;
                assert_true(kv_iter_valid(it));
                size_t kl;
                const void *g = kv_iter_key(it, &kl);
                assert_int_equal(kl, keys[i].len);
                assert_memory_equal(g, keys[i].k, kl);
                kv_iter_next(it);
            }
            assert_false(kv_iter_valid(it));
            assert_int_equal(kv_iter_status(it), KV_OK);
            kv_iter_free(it);
        }
    }
    assert_true(bt_stat(db, "index_merges") > 0);
    assert_int_equal(kv_close(db), KV_OK);
    free(keys);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seek_matches_model_across_delta_merges),
        cmocka_unit_test(test_index_dropped_and_rebuilt),
        cmocka_unit_test(test_binary_keys_order),
        cmocka_unit_test(test_snapshot_consistent_under_concurrent_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
