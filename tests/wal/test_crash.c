/* Crash tests of the `wal` engine on faultfs (docs/design.md sections 3 and 5): a workload of puts,
 * deletes, batches, syncs and checkpoints (small segments and a small checkpoint_bytes so that
 * segment rolls, automatic checkpoints, truncations and mixed-segment rewrites all happen) is
 * crashed at every operation index, in every durability mode, under the lose, random, torn and
 * torn-bytes policies, with several seeds. After each crash the directory is reopened with posix
 * and must: open, pass kv_check, equal the state after some prefix of the workload's commits (the
 * in-flight one optional: never a hole, never half a batch), include every commit acknowledged
 * before a successful kv_sync or checkpoint, include every acknowledged commit in `sync` mode, and
 * accept new writes that survive a reopen.
 *
 * The default run crashes at every operation index of a ~110-operation workload twice, under two
 * of the four policies (rotating) with a different seed each time; KVLAB_LONG=1 uses a
 * 300-operation workload and every index under every policy with 4 seeds (5 for the two torn
 * ones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "faultfs.h"
#include "testutil.h"
#include "wal_engine.h"
#include "wal_test_util.h"

#define NKEYS  24
#define MAXOPS 400

typedef enum { OP_PUT, OP_DEL, OP_BATCH, OP_CKPT, OP_SYNC } op_kind;

typedef struct op {
    op_kind kind;
    int n; /* effects */
    int key[6];
    int64_t vid[6]; /* value id, -1 = delete */
} op;

typedef struct workload {
    op ops[MAXOPS];
    int nops;
    int64_t state[MAXOPS + 1][NKEYS]; /* state after the first i ops (value id or -1) */
} workload;

static size_t vlen_of(int64_t vid)
{
    return vid % 5 == 0 ? 700 : 20 + (size_t)(vid % 50);
}

static void make_workload(workload *w, uint64_t seed, int nops)
{
    tu_rng r = {seed};
    w->nops = nops;
    for (int k = 0; k < NKEYS; k++)
        w->state[0][k] = -1;
    for (int i = 0; i < nops; i++) {
        op *o = &w->ops[i];
        memset(o, 0, sizeof *o);
        uint64_t x = tu_below(&r, 100);
        if (x < 60) {
            o->kind = OP_PUT;
            o->n = 1;
            o->key[0] = (int)tu_below(&r, NKEYS);
            o->vid[0] = (int64_t)i * 8;
        } else if (x < 72) {
            o->kind = OP_DEL;
            o->n = 1;
            o->key[0] = (int)tu_below(&r, NKEYS);
            o->vid[0] = -1;
        } else if (x < 90) {
            o->kind = OP_BATCH;
            o->n = 2 + (int)tu_below(&r, 4);
            for (int j = 0; j < o->n; j++) {
                o->key[j] = (int)tu_below(&r, NKEYS);
                o->vid[j] = tu_below(&r, 4) == 0 ? -1 : (int64_t)i * 8 + j;
            }
        } else if (x < 95) {
            o->kind = OP_CKPT;
        } else {
            o->kind = OP_SYNC;
        }
        memcpy(w->state[i + 1], w->state[i], sizeof w->state[i]);
        for (int j = 0; j < o->n; j++)
            w->state[i + 1][o->key[j]] = o->vid[j];
    }
}

static int keyname(char *buf, int k)
{
    return snprintf(buf, 16, "k%03d", k);
}

/* Runs op i; returns its status. */
static kv_status run_op(kv_db *db, const op *o)
{
    char key[16];
    uint8_t val[800];
    switch (o->kind) {
    case OP_PUT: {
        int kl = keyname(key, o->key[0]);
        size_t vl = vlen_of(o->vid[0]);
        wt_payload(val, vl, (uint64_t)o->vid[0], (uint64_t)o->key[0]);
        return kv_put(db, key, (size_t)kl, val, vl);
    }
    case OP_DEL: {
        int kl = keyname(key, o->key[0]);
        return kv_delete(db, key, (size_t)kl);
    }
    case OP_BATCH: {
        kv_batch *b = kv_batch_new();
        for (int j = 0; j < o->n; j++) {
            int kl = keyname(key, o->key[j]);
            if (o->vid[j] < 0) {
                kv_batch_delete(b, key, (size_t)kl);
            } else {
                size_t vl = vlen_of(o->vid[j]);
                wt_payload(val, vl, (uint64_t)o->vid[j], (uint64_t)o->key[j]);
                kv_batch_put(b, key, (size_t)kl, val, vl);
            }
        }
        kv_status s = kv_write(db, b);
        kv_batch_free(b);
        return s;
    }
    case OP_CKPT:
        return wal_engine_checkpoint(db);
    case OP_SYNC:
        return kv_sync(db);
    }
    return KV_INVALID;
}

static const char *const engine_opts[] = {"segment_size=4096", "checkpoint_bytes=9000", NULL};

static kv_status open_with(const char *dir, const char *mode, kv_fs *fs, kv_db **db)
{
    kv_options o;
    kv_options_init(&o);
    assert_int_equal(kv_durability_parse(mode, &o.durability), KV_OK);
    o.fs = fs;
    for (int i = 0; engine_opts[i]; i++)
        assert_int_equal(kv_options_set(&o, engine_opts[i]), KV_OK);
    kv_status s = kv_open("wal", dir, &o, db);
    kv_options_free(&o);
    return s;
}

/* Whether db's contents equal state st. */
static bool state_equals(kv_db *db, const int64_t *st)
{
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        int kl = keyname(key, k);
        void *v = NULL;
        size_t n = 0;
        kv_status s = kv_get(db, key, (size_t)kl, &v, &n);
        bool ok;
        if (st[k] < 0) {
            ok = s == KV_NOT_FOUND;
        } else {
            uint8_t want[800];
            size_t vl = vlen_of(st[k]);
            wt_payload(want, vl, (uint64_t)st[k], (uint64_t)k);
            ok = s == KV_OK && n == vl && !memcmp(v, want, vl);
        }
        kv_free(v);
        if (!ok)
            return false;
    }
    return true;
}

typedef struct run_result {
    uint64_t ops_total; /* faultfs operations of the whole workload (no crash) */
    int checkpoints, rewrites, segments_created, truncations;
} run_result;

/* One run: crash at fs operation crash_at (0: none). Checks the recovered state. */
static void one_run(const workload *w, const char *mode, kv_crash_policy pol, uint64_t seed,
                    uint64_t crash_at, run_result *rr)
{
    char *dir = tu_mkdtemp("wal-crash");
    char *scratch = tu_mkdtemp("wal-crash-scratch");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false); /* the durable record decides, not the disk */
    kv_db *db = NULL;
    kv_faultfs_set_crash_at(fs, crash_at);
    int floor = 0, k = w->nops;
    kv_status s = open_with(dir, mode, fs, &db);
    if (s != KV_OK) {
        assert_true(crash_at > 0 && kv_faultfs_crashed(fs));
        k = -1; /* nothing ran */
    } else {
        for (int i = 0; i < w->nops; i++) {
            s = run_op(db, &w->ops[i]);
            if (kv_faultfs_crashed(fs)) {
                k = i;
                break;
            }
            if (s != KV_OK)
                fail_msg("op %d failed without a crash: %s", i, kv_errmsg());
            if (w->ops[i].kind == OP_CKPT || w->ops[i].kind == OP_SYNC)
                floor = i + 1;
        }
        if (!crash_at && rr) {
            kv_stats st;
            assert_int_equal(kv_stats_get(db, &st), KV_OK);
            for (size_t j = 0; j < st.n_extra; j++) {
                if (!strcmp(st.extra[j].name, "checkpoints"))
                    rr->checkpoints = (int)st.extra[j].value;
                if (!strcmp(st.extra[j].name, "segment_rewrites"))
                    rr->rewrites = (int)st.extra[j].value;
                if (!strcmp(st.extra[j].name, "segments_created"))
                    rr->segments_created = (int)st.extra[j].value;
                if (!strcmp(st.extra[j].name, "log_truncations"))
                    rr->truncations = (int)st.extra[j].value;
            }
            rr->ops_total = kv_faultfs_ops(fs);
        }
    }
    if (!strcmp(mode, "sync") && k >= 0)
        floor = k; /* every acknowledged commit survives */
    if (!kv_faultfs_crashed(fs))
        kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    assert_int_equal(kv_faultfs_crash(fs, pol, seed), KV_OK);
    kv_close(db); /* fails (the fs is dead) but frees the handle */
    kv_fs_destroy(fs);

    /* Recover with posix. */
    db = NULL;
    s = open_with(dir, "os", NULL, &db);
    if (s != KV_OK)
        fail_msg("mode %s policy %s seed %llu crash_at %llu: reopen failed: %s", mode,
                 kv_crash_policy_name(pol), (unsigned long long)seed, (unsigned long long)crash_at,
                 kv_errmsg());
    if (kv_check(db) != KV_OK)
        fail_msg("mode %s crash_at %llu: kv_check: %s", mode, (unsigned long long)crash_at,
                 kv_errmsg());
    int hi = k < 0 ? 0 : (k < w->nops ? k + 1 : w->nops);
    int lo = k < 0 ? 0 : floor;
    bool match = false;
    for (int p = hi; p >= lo && !match; p--)
        match = state_equals(db, w->state[p]);
    if (!match)
        fail_msg("mode %s policy %s seed %llu crash_at %llu (op %d, floor %d): the recovered state "
                 "is not the state after any allowed prefix",
                 mode, kv_crash_policy_name(pol), (unsigned long long)seed,
                 (unsigned long long)crash_at, k, floor);
    /* The recovered log accepts writes that survive a reopen (every 4th point: it costs
     * real fsyncs). */
    if (crash_at % 4 == 1) {
        assert_int_equal(kv_put(db, "after", 5, "crash", 5), KV_OK);
        assert_int_equal(kv_close(db), KV_OK);
        assert_int_equal(open_with(dir, "os", NULL, &db), KV_OK);
        void *v;
        size_t n;
        assert_int_equal(kv_get(db, "after", 5, &v, &n), KV_OK);
        kv_free(v);
        assert_int_equal(kv_check(db), KV_OK);
    }
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

static void sweep(const char *mode)
{
    bool lng = getenv("KVLAB_LONG") && *getenv("KVLAB_LONG") == '1';
    uint64_t base = tu_seed(20261122);
    int nops = lng ? 300 : 110;
    workload *w = malloc(sizeof *w);
    make_workload(w, base, nops);
    run_result rr = {0};
    one_run(w, mode, KV_CRASH_LOSE, 1, 0, &rr);
    /* The workload must reach every path: rolls, automatic and manual checkpoints, truncation
     * with whole-segment deletion and mixed-segment rewrites. */
    assert_true(rr.checkpoints >= 3);
    assert_true(rr.rewrites >= 3);
    assert_true(rr.segments_created >= 5);
    assert_true(rr.truncations >= 3);
    const kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN,
                                    KV_CRASH_TORN_BYTES};
    const int npols = (int)(sizeof pols / sizeof *pols);
    /* interval:MS adds background fdatasyncs: op counts vary a little; go a bit past. */
    uint64_t last = rr.ops_total + (!strncmp(mode, "interval", 8) ? 20 : 0);
    uint64_t points = 0;
    if (lng) {
        /* Every crash point under every policy, 4 seeds (5 for the torn ones). */
        for (int p = 0; p < npols; p++) {
            int ns = 4 + (pols[p] == KV_CRASH_TORN || pols[p] == KV_CRASH_TORN_BYTES ? 1 : 0);
            for (int sd = 0; sd < ns; sd++) {
                for (uint64_t at = 1; at <= last; at++) {
                    one_run(w, mode, pols[p], base + (uint64_t)sd * 7919 + (uint64_t)p + at, at,
                            NULL);
                    points++;
                }
            }
        }
    } else {
        /* Every crash point twice, under two different policies (rotating through lose,
         * random, torn and torn-bytes) with a different seed each time. */
        for (uint64_t pass = 0; pass < 2; pass++) {
            for (uint64_t at = 1; at <= last; at++) {
                one_run(w, mode, pols[(at + 2 * pass) % (uint64_t)npols], base + at * 31 + pass, at,
                        NULL);
                points++;
            }
        }
    }
    fprintf(stderr,
            "wal crash %s: %llu crash points over %llu fs operations, %d checkpoints, "
            "%d rewrites\n",
            mode, (unsigned long long)points, (unsigned long long)rr.ops_total, rr.checkpoints,
            rr.rewrites);
    free(w);
}

static void test_crash_none(void **state)
{
    (void)state;
    sweep("none");
}

static void test_crash_os(void **state)
{
    (void)state;
    sweep("os");
}

static void test_crash_interval(void **state)
{
    (void)state;
    sweep("interval:1");
}

static void test_crash_sync(void **state)
{
    (void)state;
    sweep("sync");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_none),
        cmocka_unit_test(test_crash_os),
        cmocka_unit_test(test_crash_interval),
        cmocka_unit_test(test_crash_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
