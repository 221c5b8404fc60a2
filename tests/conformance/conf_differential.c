/* The conformance suite's seeded randomized differential test: 100,000 operations against
 * the sorted-array model of conf_util.c (conf.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "testutil.h"

/* ---- the randomized differential test against the model ---- */

enum { DIFF_OPS = 100000, DIFF_KEYS = 2500, DIFF_REOPEN = 25000 };

static uint64_t diff_seed;

#define DIFF_FAIL(op, ...)                                                                         \
    do {                                                                                           \
        fprintf(stderr, "differential test failed: seed=%llu (KVLAB_SEED=%llu replays) op=%d\n",   \
                (unsigned long long)diff_seed, (unsigned long long)diff_seed, (op));               \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

typedef struct dkey {
    uint8_t b[24];
    size_t n;
} dkey;

static void make_keys(tu_rng *r, dkey *keys)
{
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 'b', 'k', 0x7f, 0x80, 0xff};
    size_t maxlen = conf_limits.max_key < 24 ? conf_limits.max_key : 24;
    for (int i = 0; i < DIFF_KEYS; i++) {
        keys[i].n = 1 + (size_t)tu_below(r, tu_below(r, 4) ? 8 : maxlen);
        for (size_t j = 0; j < keys[i].n; j++)
            keys[i].b[j] =
                tu_below(r, 4) ? alphabet[tu_below(r, sizeof alphabet)] : (uint8_t)tu_next(r);
    }
}

static size_t rand_value(tu_rng *r, uint8_t *v)
{
    size_t n = tu_below(r, 10) ? (size_t)tu_below(r, 64) : (size_t)tu_below(r, 2000);
    if (tu_below(r, 20) == 0)
        n = 0;
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)tu_next(r);
    return n;
}

static void diff_compare_all(kv_db *db, const conf_model *m, int op)
{
    kv_iter *it;
    EXPECT_OK(kv_iter_new(db, &it));
    size_t i = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it), i++) {
        size_t kl, vl;
        const void *k = kv_iter_key(it, &kl);
        const void *v = kv_iter_value(it, &vl);
        if (i >= m->n)
            DIFF_FAIL(op, "full scan: more entries than the model's %zu", m->n);
        const conf_entry *e = &m->e[i];
        if (conf_cmp(k, kl, e->k, e->klen) || vl != e->vlen || (vl && memcmp(v, e->v, vl)))
            DIFF_FAIL(op, "full scan: entry %zu differs from the model", i);
    }
    EXPECT_OK(kv_iter_status(it));
    kv_iter_free(it);
    if (i != m->n)
        DIFF_FAIL(op, "full scan: %zu entries, model has %zu", i, m->n);
}

void test_differential(void **state)
{
    (void)state;
    diff_seed = tu_seed(20261122);
    tu_rng r = {diff_seed};
    dkey *keys = malloc(DIFF_KEYS * sizeof *keys);
    uint8_t *val = malloc(2048);
    assert_non_null(keys);
    assert_non_null(val);
    make_keys(&r, keys);
    conf_model m = {0};
    char *dir = conf_dir("differential");
    kv_db *db = conf_open(dir, "os");
    kv_batch *b = kv_batch_new();
    for (int op = 0; op < DIFF_OPS; op++) {
        const dkey *k = &keys[tu_below(&r, DIFF_KEYS)];
        unsigned kind = (unsigned)tu_below(&r, 100);
        kv_status s;
        if (kind < 35) { /* put */
            size_t vl = rand_value(&r, val);
            if ((s = kv_put(db, k->b, k->n, val, vl)) != KV_OK)
                DIFF_FAIL(op, "put: %s: %s", kv_strerror(s), kv_errmsg());
            model_put(&m, k->b, k->n, val, vl);
        } else if (kind < 50) { /* delete */
            if ((s = kv_delete(db, k->b, k->n)) != KV_OK)
                DIFF_FAIL(op, "delete: %s: %s", kv_strerror(s), kv_errmsg());
            model_del(&m, k->b, k->n);
        } else if (kind < 75) { /* get */
            void *v = NULL;
            size_t vl = 0;
            s = kv_get(db, k->b, k->n, &v, &vl);
            const conf_entry *e = model_get(&m, k->b, k->n);
            if (e && s != KV_OK)
                DIFF_FAIL(op, "get: %s, model has the key: %s", kv_strerror(s), kv_errmsg());
            if (!e && s != KV_NOT_FOUND)
                DIFF_FAIL(op, "get: %s, model lacks the key", kv_strerror(s));
            if (e && (vl != e->vlen || (vl && memcmp(v, e->v, vl))))
                DIFF_FAIL(op, "get: value of %zu bytes differs from the model's %zu", vl, e->vlen);
            kv_free(v);
        } else if (kind < 87) { /* batch: the model applies its operations in order */
            kv_batch_clear(b);
            int nops = 1 + (int)tu_below(&r, 8);
            for (int i = 0; i < nops; i++) {
                const dkey *bk = &keys[tu_below(&r, DIFF_KEYS)];
                if (tu_below(&r, 3)) {
                    size_t vl = rand_value(&r, val);
                    EXPECT_OK(kv_batch_put(b, bk->b, bk->n, val, vl));
                } else {
                    EXPECT_OK(kv_batch_delete(b, bk->b, bk->n));
                }
            }
            if ((s = kv_write(db, b)) != KV_OK)
                DIFF_FAIL(op, "batch: %s: %s", kv_strerror(s), kv_errmsg());
            for (size_t i = 0; i < kv_batch_count(b); i++) {
                kv_batch_op o = kv_batch_get(b, i);
                if (o.type == KV_OP_PUT)
                    model_put(&m, o.key, o.klen, o.value, o.vlen);
                else
                    model_del(&m, o.key, o.klen);
            }
        } else if (kind < 99) { /* a short scan from a random key */
            kv_iter *it;
            if ((s = kv_iter_new(db, &it)) != KV_OK)
                DIFF_FAIL(op, "iter: %s: %s", kv_strerror(s), kv_errmsg());
            size_t at = model_lower(&m, k->b, k->n);
            int len = 1 + (int)tu_below(&r, 10);
            kv_iter_seek(it, k->b, k->n);
            for (int i = 0; i < len; i++, at++) {
                if (at >= m.n) {
                    if (kv_iter_valid(it))
                        DIFF_FAIL(op, "scan: entry %d past the model's end", i);
                    break;
                }
                if (!kv_iter_valid(it))
                    DIFF_FAIL(op, "scan: ended at entry %d, model has more", i);
                size_t kl, vl;
                const void *ik = kv_iter_key(it, &kl);
                const void *iv = kv_iter_value(it, &vl);
                const conf_entry *e = &m.e[at];
                if (conf_cmp(ik, kl, e->k, e->klen) || vl != e->vlen ||
                    (vl && memcmp(iv, e->v, vl)))
                    DIFF_FAIL(op, "scan: entry %d differs from the model", i);
                kv_iter_next(it);
            }
            if ((s = kv_iter_status(it)) != KV_OK)
                DIFF_FAIL(op, "scan status: %s: %s", kv_strerror(s), kv_errmsg());
            kv_iter_free(it);
        } else { /* an occasional sync */
            if ((s = kv_sync(db)) != KV_OK)
                DIFF_FAIL(op, "sync: %s: %s", kv_strerror(s), kv_errmsg());
        }
        if ((op + 1) % DIFF_REOPEN == 0) {
            diff_compare_all(db, &m, op);
            EXPECT_OK(kv_close(db));
            db = conf_open(dir, "os");
            diff_compare_all(db, &m, op);
        }
    }
    diff_compare_all(db, &m, DIFF_OPS);
    EXPECT_OK(kv_check(db));
    kv_stats st;
    EXPECT_OK(kv_stats_get(db, &st));
    if (st.live_keys != UINT64_MAX)
        assert_int_equal(st.live_keys, m.n);
    EXPECT_OK(kv_close(db));
    kv_batch_free(b);
    model_free(&m);
    free(keys);
    free(val);
    conf_dir_done(dir);
}
