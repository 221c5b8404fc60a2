/* Crash tests of the lsm engine on faultfs (common/faultfs.h): a workload of puts, deletes and
 * batches with tiny memtable, table and manifest sizes (so memtable switches, flushes,
 * compactions and manifest roll-overs all happen) is crashed at operation N for every N, in
 * every durability mode, under the lose/random/torn/torn-bytes power-loss policies. After each
 * crash the directory is reopened with posix and must satisfy docs/design.md section 3: recovery
 * succeeds, kv_check passes, no orphan .tmp survives, and the data equals the model after some
 * prefix of the operations: in `sync` every acknowledged operation (and possibly the one in
 * flight), in the other modes any prefix up to the one in flight; a batch is never seen in part.
 *
 * A test crashes recovery itself at each of its operations, and one crashes a manual
 * compaction (lsm_compact_all: memtable flush, a merge per level, manifest edits, deletion of
 * the replaced tables) at each of its operations.
 *
 * By default (to stay within the test-time budget on two busy cores) each crash point uses one
 * policy (rotating lose/random/torn/torn-bytes) and the sweep takes a seeded sample of the
 * points: one in two in sync mode, one in four in the others; KVLAB_LONG=1 runs every point in
 * every mode under every policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "faultfs.h"
#include "kv.h"
#include "lsm.h"
#include "lsm_testutil.h"
#include "testutil.h"

#define NOPS   160
#define NKEYS  40
#define MAXSUB 3
#define NPOL   4 /* power-loss policies: lose, random, torn, torn-bytes */

typedef struct op {
    int n; /* 1 = single put/delete, 3 = batch */
    int key[MAXSUB];
    int del[MAXSUB]; /* 1 = delete */
    size_t vlen[MAXSUB];
} op;

static op ops[NOPS];

static void make_ops(uint64_t seed)
{
    tu_rng r = {seed};
    for (int i = 0; i < NOPS; i++) {
        op *o = &ops[i];
        o->n = tu_below(&r, 6) == 0 ? 3 : 1;
        for (int j = 0; j < o->n; j++) {
            o->key[j] = (int)tu_below(&r, NKEYS);
            o->del[j] = tu_below(&r, 6) == 0;
            o->vlen[j] = 40 + tu_below(&r, 200);
        }
    }
}

static int keyname(char *buf, int i)
{
    return snprintf(buf, 32, "key%03d", i);
}

/* Value of sub-operation j of operation i: "i.j" then filler. */
static size_t value(char *buf, int i, int j)
{
    size_t n = ops[i].vlen[j];
    memset(buf, 'a' + (i + j) % 26, n);
    snprintf(buf, n, "%d.%d", i, j);
    return n;
}

static kv_status apply(kv_db *db, int i, kv_batch *b)
{
    const op *o = &ops[i];
    char k[32], v[300];
    if (o->n == 1) {
        int kl = keyname(k, o->key[0]);
        if (o->del[0])
            return kv_delete(db, k, (size_t)kl);
        size_t vl = value(v, i, 0);
        return kv_put(db, k, (size_t)kl, v, vl);
    }
    kv_batch_clear(b);
    for (int j = 0; j < o->n; j++) {
        int kl = keyname(k, o->key[j]);
        if (o->del[j])
            OK(kv_batch_delete(b, k, (size_t)kl));
        else {
            size_t vl = value(v, i, j);
            OK(kv_batch_put(b, k, (size_t)kl, v, vl));
        }
    }
    return kv_write(db, b);
}

/* Model: which (op, sub) wrote each key last, or -1 when absent. */
typedef struct model {
    int op[NKEYS], sub[NKEYS];
} model;

static void model_apply(model *m, int i)
{
    for (int j = 0; j < ops[i].n; j++) {
        int k = ops[i].key[j];
        m->op[k] = ops[i].del[j] ? -1 : i;
        m->sub[k] = j;
    }
}

/* What the reopened database holds: for each key its value (or absent). */
typedef struct state {
    char *val[NKEYS];
    size_t len[NKEYS];
} state;

static bool matches(const model *m, const state *s)
{
    for (int k = 0; k < NKEYS; k++) {
        if (m->op[k] < 0) {
            if (s->val[k])
                return false;
            continue;
        }
        if (!s->val[k])
            return false;
        char v[300];
        size_t vl = value(v, m->op[k], m->sub[k]);
        if (vl != s->len[k] || memcmp(v, s->val[k], vl))
            return false;
    }
    return true;
}

static void open_opts(kv_options *o, const char *dur, kv_fs *fs)
{
    kv_options_init(o);
    lt_tiny_options(o, dur);
#ifdef LSM_CRASH_TIERED /* lsm.crash_tiered: merges of three similar runs at a time */
    assert_int_equal(kv_options_set(o, "compaction=tiered"), KV_OK);
    assert_int_equal(kv_options_set(o, "min_merge_width=3"), KV_OK);
#endif
    o->fs = fs;
}

/* Runs the workload on a faultfs that dies at operation crash_at (0 = never). Returns the
 * number of acknowledged operations; *total gets the fs operations counted. */
static int run(const char *dir, const char *scratch, const char *dur, uint64_t crash_at,
               kv_crash_policy pol, uint64_t seed, uint64_t *total)
{
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_faultfs_set_crash_at(fs, crash_at);
    kv_options o;
    open_opts(&o, dur, fs);
    kv_db *db = NULL;
    int acked = 0;
    if (kv_open("lsm", dir, &o, &db) == KV_OK) {
        kv_batch *b = kv_batch_new();
        while (acked < NOPS && apply(db, acked, b) == KV_OK)
            acked++;
        kv_batch_free(b);
        if (!crash_at) { /* the workload reaches every path the sweep is meant to cut */
            fprintf(stderr,
                    "%s: flushes %llu, compactions %llu, trivial moves %llu, manifest "
                    "roll-overs %llu\n",
                    dur, lt_stat(db, "flushes"), lt_stat(db, "compactions"),
                    lt_stat(db, "trivial_moves"), lt_stat(db, "manifest_rollovers"));
            assert_true(lt_stat(db, "flushes") >= 3);
            assert_true(lt_stat(db, "compactions") >= 1);
            assert_true(lt_stat(db, "manifest_rollovers") >= 1);
        }
        kv_status cs = kv_close(db);
        if (!crash_at)
            OK(cs);
    } else
        assert_true(crash_at != 0);
    kv_options_free(&o);
    if (total)
        *total = kv_faultfs_ops(fs);
    if (crash_at)
        OK(kv_faultfs_crash(fs, pol, seed));
    kv_fs_destroy(fs);
    return acked;
}

static void verify(const char *dir, const char *dur, int acked, uint64_t crash_at, const char *pol)
{
    kv_options o;
    open_opts(&o, "os", NULL);
    kv_db *db = NULL;
    kv_status s = kv_open("lsm", dir, &o, &db);
    if (s != KV_OK)
        fail_msg("%s crash at %llu (%s): reopen: %s: %s", dur, (unsigned long long)crash_at, pol,
                 kv_strerror(s), kv_errmsg());
    if ((s = kv_check(db)) != KV_OK)
        fail_msg("%s crash at %llu (%s): check: %s", dur, (unsigned long long)crash_at, pol,
                 kv_errmsg());
    state st = {0};
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        int kl = keyname(key, k);
        void *v = NULL;
        size_t vl = 0;
        s = kv_get(db, key, (size_t)kl, &v, &vl);
        if (s == KV_OK) {
            st.val[k] = v;
            st.len[k] = vl;
        } else if (s != KV_NOT_FOUND)
            fail_msg("get: %s", kv_errmsg());
    }
    /* the scan agrees with the lookups */
    kv_iter *it;
    OK(kv_iter_new(db, &it));
    kv_iter_seek_first(it);
    for (int k = 0; k < NKEYS; k++) {
        if (!st.val[k])
            continue;
        assert_true(kv_iter_valid(it));
        size_t vl;
        kv_iter_value(it, &vl);
        assert_int_equal(vl, st.len[k]);
        kv_iter_next(it);
    }
    assert_false(kv_iter_valid(it));
    kv_iter_free(it);
    OK(kv_close(db));
    kv_options_free(&o);
    assert_int_equal(lt_count_files(dir, ".tmp"), 0); /* orphans removed at open */
    /* a legal prefix */
    bool sync = !strcmp(dur, "sync");
    int lo = sync ? acked : 0, hi = acked < NOPS ? acked + 1 : NOPS;
    model m;
    for (int k = 0; k < NKEYS; k++)
        m.op[k] = -1;
    bool ok = false;
    for (int p = 0; p <= hi && !ok; p++) {
        if (p > 0)
            model_apply(&m, p - 1);
        ok = p >= lo && matches(&m, &st);
    }
    if (!ok) {
        for (int k = 0; k < NKEYS; k++)
            if (st.val[k])
                fprintf(stderr, "  key %d = %.8s (%zu bytes)\n", k, st.val[k], st.len[k]);
        for (int i = 0; i < hi; i++)
            for (int j = 0; j < ops[i].n; j++)
                fprintf(stderr, "  op %d.%d: key %d %s\n", i, j, ops[i].key[j],
                        ops[i].del[j] ? "delete" : "put");
    }
    if (!ok)
        fail_msg("%s crash at op %llu (%s): the state is no prefix in [%d, %d] of the %d "
                 "acknowledged operations",
                 dur, (unsigned long long)crash_at, pol, lo, hi, acked);
    for (int k = 0; k < NKEYS; k++)
        kv_free(st.val[k]);
}

static void sweep(const char *dur)
{
    bool lng = getenv("KVLAB_LONG") && *getenv("KVLAB_LONG") == '1';
    uint64_t seed = tu_seed(42);
    make_ops(seed);
    char *dir = tu_mkdtemp("lsm-crash");
    char *scratch = tu_mkdtemp("lsm-crash-scratch");
    uint64_t total = 0;
    assert_int_equal(run(dir, scratch, dur, 0, KV_CRASH_LOSE, 0, &total), NOPS);
    verify(dir, dur, NOPS, 0, "none");
    unsigned stride = lng ? 1 : !strcmp(dur, "sync") ? 2 : 4;
    kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN, KV_CRASH_TORN_BYTES};
    unsigned runs = 0;
    tu_rng pick = {seed ^ 0x5eed};
    for (uint64_t n = 1; n <= total; n++) {
        /* a seeded sample of the points (not a fixed stride: that would always miss, say, the
         * fdatasync after each write) */
        if (stride > 1 && tu_below(&pick, stride) != 0)
            continue;
        for (int p = 0; p < NPOL; p++) {
            if (!lng && p != (int)(n % NPOL))
                continue;
            tu_rmtree(dir);
            tu_rmtree(scratch);
            int acked = run(dir, scratch, dur, n, pols[p], seed + n, NULL);
            verify(dir, dur, acked, n, kv_crash_policy_name(pols[p]));
            runs++;
        }
    }
    fprintf(stderr, "%s: %llu operations, %u crash runs\n", dur, (unsigned long long)total, runs);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* A crash during recovery itself (replaying the WALs into L0 tables, writing the new manifest,
 * switching CURRENT, deleting old files) loses nothing: the workload was closed cleanly, so
 * every operation must be there after the crashed recovery and a second one. */
static void test_crash_during_recovery(void **state)
{
    (void)state;
    uint64_t seed = tu_seed(43);
    make_ops(seed);
    char *dir = tu_mkdtemp("lsm-crashrec");
    char *scratch = tu_mkdtemp("lsm-crashrec-scratch");
    kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN, KV_CRASH_TORN_BYTES};
    bool lng = getenv("KVLAB_LONG") && *getenv("KVLAB_LONG") == '1';
    uint64_t total = 0;
    for (uint64_t n = 0; n == 0 || n <= total; n++) { /* n = 0: count a whole recovery */
        for (int p = 0; p < (n ? NPOL : 1); p++) {
            if (n && !lng && p != (int)(n % NPOL)) /* one policy per point unless KVLAB_LONG */
                continue;
            tu_rmtree(dir);
            tu_rmtree(scratch);
            assert_int_equal(run(dir, scratch, "os", 0, KV_CRASH_LOSE, 0, NULL), NOPS);
            kv_fs *fs = kv_faultfs_new(scratch);
            assert_non_null(fs);
            kv_faultfs_set_real_sync(fs, false);
            uint64_t before = kv_faultfs_ops(fs);
            kv_faultfs_set_crash_at(fs, n ? before + n : 0);
            kv_options o;
            open_opts(&o, "os", fs);
            kv_db *db = NULL;
            kv_status s = kv_open("lsm", dir, &o, &db);
            if (!n) {
                OK(s);
                total = kv_faultfs_ops(fs) - before;
            }
            if (s == KV_OK)
                kv_close(db);
            kv_options_free(&o);
            if (n)
                OK(kv_faultfs_crash(fs, pols[p], seed + n));
            kv_fs_destroy(fs);
            verify(dir, "sync", NOPS, n, n ? kv_crash_policy_name(pols[p]) : "none");
        }
    }
    fprintf(stderr, "recovery: %llu operations, each crashed\n", (unsigned long long)total);
    assert_true(total > 5);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* A crash at any operation of lsm_compact_all (and of the close after it) loses nothing: the
 * first NOPS - 20 operations were closed cleanly, the last 20 are acknowledged in sync mode on
 * the handle that compacts (so the memtable flush is part of the cut too), and after the crash
 * every operation must be there, in tables of the old shape or the new one, never a mix that
 * loses or resurrects a key. */
static void test_crash_during_compact_all(void **state)
{
    (void)state;
    uint64_t seed = tu_seed(44);
    make_ops(seed);
    char *dir = tu_mkdtemp("lsm-crashcomp");
    char *scratch = tu_mkdtemp("lsm-crashcomp-scratch");
    kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN, KV_CRASH_TORN_BYTES};
    bool lng = getenv("KVLAB_LONG") && *getenv("KVLAB_LONG") == '1';
    const int first = NOPS - 20;
    uint64_t total = 0;
    unsigned runs = 0;
    for (uint64_t n = 0; n == 0 || n <= total; n++) { /* n = 0: count the whole compaction */
        for (int p = 0; p < (n ? NPOL : 1); p++) {
            if (n && !lng && p != (int)(n % NPOL)) /* one policy per point unless KVLAB_LONG */
                continue;
            tu_rmtree(dir);
            tu_rmtree(scratch);
            kv_fs *fs = kv_faultfs_new(scratch);
            assert_non_null(fs);
            kv_faultfs_set_real_sync(fs, false);
            kv_options o;
            open_opts(&o, "sync", fs);
            kv_db *db = NULL;
            OK(kv_open("lsm", dir, &o, &db));
            kv_batch *b = kv_batch_new();
            for (int i = 0; i < first; i++)
                OK(apply(db, i, b));
            OK(kv_close(db));
            OK(kv_open("lsm", dir, &o, &db));
            for (int i = first; i < NOPS; i++)
                OK(apply(db, i, b));
            kv_batch_free(b);
            uint64_t before = kv_faultfs_ops(fs);
            kv_faultfs_set_crash_at(fs, n ? before + n : 0);
            kv_status s = lsm_compact_all(db);
            if (!n) {
                OK(s);
                assert_true(lt_stat(db, "compactions") >= 1);
            }
            kv_status cs = kv_close(db);
            if (!n) {
                OK(cs);
                total = kv_faultfs_ops(fs) - before;
            }
            kv_options_free(&o);
            if (n)
                OK(kv_faultfs_crash(fs, pols[p], seed + n));
            kv_fs_destroy(fs);
            verify(dir, "sync", NOPS, n, n ? kv_crash_policy_name(pols[p]) : "none");
            runs++;
        }
    }
    fprintf(stderr, "compact_all: %llu operations, each crashed (%u runs)\n",
            (unsigned long long)total, runs);
    assert_true(total > 5);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

static void test_crash_sync(void **state)
{
    (void)state;
    sweep("sync");
}

static void test_crash_os(void **state)
{
    (void)state;
    sweep("os");
}

static void test_crash_interval(void **state)
{
    (void)state;
    sweep("interval:2");
}

static void test_crash_none(void **state)
{
    (void)state;
    sweep("none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_sync),
        cmocka_unit_test(test_crash_os),
        cmocka_unit_test(test_crash_interval),
        cmocka_unit_test(test_crash_none),
        cmocka_unit_test(test_crash_during_recovery),
        cmocka_unit_test(test_crash_during_compact_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
