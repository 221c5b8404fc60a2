/* bitcask crash sweep: a seeded workload of puts, deletes and batches over a few keys, with
 * 1 KiB data files (a rotation every few commits), kv_sync every 20 commits and a merge every 30
 * (merge=manual), is crashed by faultfs at EVERY operation it makes (creates, writes,
 * fdatasyncs, renames, unlinks, directory fsyncs), in every durability mode: with a first seed
 * every operation under one power-loss policy (lose, random, torn or torn-bytes, rotating with
 * the mode) and every third under the others (keep, a process crash, included); with a second
 * seed every third under all five. After each
 * crash the directory is reopened (on a fresh faultfs without real fsyncs, for speed) and must hold
 * exactly the state after some prefix p of the commits (docs/design.md section 3): never a hole,
 * never half a batch, never a value not written, never a deleted key back; with lo <= p <= acked +
 * 1, where lo = acked in sync mode (nothing acknowledged lost) and otherwise the commits
 * acknowledged before the last successful kv_sync. kv_check must pass too. KVLAB_LONG=1: 300
 * commits, every operation under every policy, three seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bc_testutil.h"
#include "bitcask.h"
#include "faultfs.h"
#include "testutil.h"

#define NKEYS  12
#define MAXOPS 400

typedef struct wop {
    int kind; /* 0 put a, 1 delete a, 2 batch: put a, put b, delete c */
    int a, b, c;
} wop;

static wop ops[MAXOPS];

/* A scratch directory on tmpfs (/dev/shm) when there is one: thousands of create/unlink rounds
 * cost far less there than on a journalled disk; else under $KVLAB_TEST_TMP. */
static char *crash_mkdtemp(const char *tag)
{
    if (access("/dev/shm", W_OK) == 0) {
        char *p = malloc(64 + strlen(tag));
        sprintf(p, "/dev/shm/kvlab-%s-XXXXXX", tag);
        if (mkdtemp(p))
            return p;
        free(p);
    }
    return tu_mkdtemp(tag);
}
static int model[MAXOPS + 1][NKEYS]; /* version (commit index + 1) per key after p commits */
static int nops;

static size_t value_of(int op, int key, char *buf)
{
    size_t len = 40 + (size_t)((op * 53 + key * 17) % 300);
    memset(buf, 'a' + (op + key) % 26, len);
    int n = sprintf(buf, "o%d k%d ", op, key);
    buf[n] = '.';
    return len;
}

static size_t key_name(int k, char *buf)
{
    return (size_t)sprintf(buf, "key%02d", k);
}

static void make_workload(uint64_t seed, int n)
{
    tu_rng r = {seed};
    nops = n;
    memset(model[0], 0, sizeof model[0]);
    for (int i = 0; i < n; i++) {
        wop *o = &ops[i];
        int x = (int)tu_below(&r, 10);
        o->kind = x < 6 ? 0 : x < 8 ? 1 : 2;
        o->a = (int)tu_below(&r, NKEYS);
        o->b = (int)tu_below(&r, NKEYS);
        o->c = (int)tu_below(&r, NKEYS);
        memcpy(model[i + 1], model[i], sizeof model[i]);
        if (o->kind == 0) {
            model[i + 1][o->a] = i + 1;
        } else if (o->kind == 1) {
            model[i + 1][o->a] = 0;
        } else {
            model[i + 1][o->a] = i + 1;
            model[i + 1][o->b] = i + 1;
            model[i + 1][o->c] = 0; /* later operations of a batch win */
        }
    }
}

static kv_status do_op(kv_db *db, int i)
{
    const wop *o = &ops[i];
    char k[16], v[400];
    if (o->kind == 0)
        return kv_put(db, k, key_name(o->a, k), v, value_of(i, o->a, v));
    if (o->kind == 1)
        return kv_delete(db, k, key_name(o->a, k));
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, k, key_name(o->a, k), v, value_of(i, o->a, v));
    kv_batch_put(b, k, key_name(o->b, k), v, value_of(i, o->b, v));
    kv_batch_delete(b, k, key_name(o->c, k));
    kv_status s = kv_write(db, b);
    kv_batch_free(b);
    return s;
}

/* Reads the recovered state into st; false (with a message) when a value is not one that was
 * written for its key or the iterator disagrees with kv_get. */
static bool read_state(kv_db *db, int *st, char *why, size_t cap)
{
    for (int k = 0; k < NKEYS; k++) {
        char key[16], want[400];
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(db, key, key_name(k, key), &v, &vl);
        st[k] = 0;
        if (s == KV_NOT_FOUND)
            continue;
        if (s != KV_OK) {
            snprintf(why, cap, "get key%02d: %s (%s)", k, kv_strerror(s), kv_errmsg());
            return false;
        }
        /* the value is not NUL-terminated: parse a terminated copy of its head */
        char head[64];
        size_t hl = vl < sizeof head - 1 ? vl : sizeof head - 1;
        memcpy(head, v, hl);
        head[hl] = '\0';
        int op = -1, kk = -1;
        if (sscanf(head, "o%d k%d ", &op, &kk) != 2 || kk != k || op < 0 || op >= nops ||
            value_of(op, k, want) != vl || memcmp(want, v, vl) != 0) {
            snprintf(why, cap, "key%02d holds a value never written for it", k);
            kv_free(v);
            return false;
        }
        st[k] = op + 1;
        kv_free(v);
    }
    kv_iter *it;
    if (kv_iter_new(db, &it) != KV_OK) {
        snprintf(why, cap, "iterator: %s", kv_errmsg());
        return false;
    }
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    bool ok = kv_iter_status(it) == KV_OK;
    kv_iter_free(it);
    int want = 0;
    for (int k = 0; k < NKEYS; k++)
        want += st[k] != 0;
    if (!ok || n != want) {
        snprintf(why, cap, "iterator sees %d keys, kv_get %d", n, want);
        return false;
    }
    return true;
}

typedef struct sweep_stats {
    uint64_t points, crashes_in_merge;
} sweep_stats;

/* One crash at operation n. Returns false when the workload finished before operation n. */
static bool crash_once(kv_durability_kind mode, kv_crash_policy pol, uint64_t seed, uint64_t n,
                       sweep_stats *ss)
{
    char *dir = crash_mkdtemp("bc-crash"), *scratch = crash_mkdtemp("bc-crash-ff");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_faultfs_set_crash_at(fs, n);
    kv_db *db = NULL;
    int acked = 0, floor = 0;
    bool in_merge = false;
    kv_status s =
        bt_open(dir, mode, fs, &db, "file_size=1K", "merge=manual", "buffer_size=300", NULL);
    if (s == KV_OK) {
        for (int i = 0; i < nops; i++) {
            if ((s = do_op(db, i)) != KV_OK)
                break;
            acked = i + 1;
            if (acked % 20 == 0) {
                if ((s = kv_sync(db)) != KV_OK)
                    break;
                floor = acked;
            }
            if (acked % 30 == 0) {
                in_merge = true;
                if ((s = kv_bitcask_merge(db)) != KV_OK)
                    break;
                in_merge = false;
            }
        }
        if (s == KV_OK) {
            s = kv_close(db);
            if (s == KV_OK)
                floor = acked;
        } else {
            kv_close(db);
        }
    }
    bool crashed = kv_faultfs_crashed(fs);
    if (s != KV_OK && !crashed)
        fail_msg("operation failed without a crash: %s (%s)", kv_strerror(s), kv_errmsg());
    if (crashed && in_merge)
        ss->crashes_in_merge++;
    assert_int_equal(kv_faultfs_crash(fs, pol, seed * 1000003ull + n), KV_OK);
    kv_fs_destroy(fs);

    /* Recovery runs on a fresh faultfs without real fsyncs: the same files and calls as posix
     * (existing files count as durable), minus the disk flushes that would make thousands of
     * recoveries slow. Every other point recovers with the core start-up alone
     * (startup=plain), the others with its accelerations. */
    fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    s = bt_open(dir, KV_DURABILITY_OS, fs, &db, "merge=manual",
                n % 2 ? "startup=plain" : "startup=fast", NULL);
    if (s != KV_OK)
        fail_msg("crash at op %llu (%s, seed %llu): recovery failed: %s", (unsigned long long)n,
                 kv_crash_policy_name(pol), (unsigned long long)seed, kv_errmsg());
    if (kv_check(db) != KV_OK)
        fail_msg("crash at op %llu: kv_check: %s", (unsigned long long)n, kv_errmsg());
    int st[NKEYS];
    char why[256];
    if (!read_state(db, st, why, sizeof why))
        fail_msg("crash at op %llu (%s, seed %llu): %s", (unsigned long long)n,
                 kv_crash_policy_name(pol), (unsigned long long)seed, why);
    int lo = mode == KV_DURABILITY_SYNC ? acked : floor;
    int hi = acked + 1 <= nops ? acked + 1 : nops;
    bool legal = false;
    for (int p = lo; p <= hi && !legal; p++)
        legal = !memcmp(model[p], st, sizeof st);
    if (!legal)
        fail_msg("crash at op %llu (mode %d, %s, seed %llu): state is no prefix in [%d, %d] "
                 "(acked %d)",
                 (unsigned long long)n, (int)mode, kv_crash_policy_name(pol),
                 (unsigned long long)seed, lo, hi, acked);
    assert_int_equal(kv_close(db), KV_OK);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
    ss->points++;
    return crashed;
}

static void sweep(kv_durability_kind mode)
{
    bool longrun = getenv("KVLAB_LONG") && *getenv("KVLAB_LONG") == '1';
    uint64_t base = tu_seed(42);
    static const kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN,
                                           KV_CRASH_TORN_BYTES, KV_CRASH_KEEP};
    enum { NPOL = sizeof pols / sizeof *pols };
    int seeds = longrun ? 3 : 2;
    for (int si = 0; si < seeds; si++) {
        uint64_t seed = base + (uint64_t)si;
        make_workload(seed, longrun ? 300 : 80);
        for (size_t p = 0; p < NPOL; p++) {
            sweep_stats ss = {0};
            /* first seed: every operation for one policy (which one depends on the mode; keep
             * never, as it loses nothing to choose from), every third operation for the
             * others; second seed: every third for all */
            uint64_t step =
                longrun || (si == 0 && (size_t)((seed + (uint64_t)mode) % (NPOL - 1)) == p) ? 1 : 3;
            for (uint64_t n = 1 + p % step; crash_once(mode, pols[p], seed, n, &ss); n += step)
                ;
            fprintf(stderr, "mode %d policy %s seed %llu: %llu crash points, %llu inside merges\n",
                    (int)mode, kv_crash_policy_name(pols[p]), (unsigned long long)seed,
                    (unsigned long long)ss.points, (unsigned long long)ss.crashes_in_merge);
            assert_true(ss.crashes_in_merge > 0);
        }
    }
}

static void test_crash_none(void **state)
{
    (void)state;
    sweep(KV_DURABILITY_NONE);
}

static void test_crash_os(void **state)
{
    (void)state;
    sweep(KV_DURABILITY_OS);
}

static void test_crash_interval(void **state)
{
    (void)state;
    sweep(KV_DURABILITY_INTERVAL);
}

static void test_crash_sync(void **state)
{
    (void)state;
    sweep(KV_DURABILITY_SYNC);
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
