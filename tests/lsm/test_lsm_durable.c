/* kv_close and kv_sync make every acknowledged commit durable in every durability mode
 * (docs/design.md section 3), also when a memtable switch left an older WAL whose memtable is not
 * yet flushed to a table. In `os` and `none` the switch does not fdatasync the old WAL (the new
 * WAL's header records its length instead), so a sync that covered only the newest WAL lost, at a
 * power loss, the older WAL's unsynced suffix and with it (recovery stops there, to keep a prefix)
 * everything after it: found by the crash checker (bench/crash/, --at 0).
 *
 * The deterministic tests hold the background thread (lsm_pause_background_work) right after a
 * memtable switch, so the immutable memtable is never flushed before kv_close / kv_sync; then a
 * power loss with policy lose (every unsynced byte lost) must keep every acknowledged commit.
 * A seeded test runs the same without the hook, where flush and compaction timing decide. */
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

#define NKEYS  97
#define MAXOPS 2000

/* The workload: operation i puts key i % NKEYS (value names i), every 7th deletes a key. */
static int last[NKEYS]; /* the operation that wrote each key last, -1 = absent */

static int keyname(char *buf, int k)
{
    return snprintf(buf, 32, "key%03d", k);
}

static size_t value(char *buf, int i, uint64_t seed)
{
    size_t n = 40 + (size_t)((i * 37 + seed * 11) % 160);
    memset(buf, 'a' + i % 26, n);
    snprintf(buf, n, "op%d", i);
    return n;
}

static int op_key(int i)
{
    return i % 7 == 6 ? (i * 3) % NKEYS : i % NKEYS;
}

static kv_status apply(kv_db *db, int i, uint64_t seed)
{
    char k[32], v[256];
    int kl = keyname(k, op_key(i));
    if (i % 7 == 6)
        return kv_delete(db, k, (size_t)kl);
    return kv_put(db, k, (size_t)kl, v, value(v, i, seed));
}

/* The model after operations [0, n). */
static void model(int n)
{
    for (int k = 0; k < NKEYS; k++)
        last[k] = -1;
    for (int i = 0; i < n; i++)
        last[op_key(i)] = i % 7 == 6 ? -1 : i;
}

/* Reopens dir with posix and checks that it holds exactly the state after operations [0, n). */
static void verify(const char *dir, int n, uint64_t seed, const char *what)
{
    model(n);
    kv_options o;
    kv_options_init(&o);
    lt_tiny_options(&o, "os");
    kv_db *db = NULL;
    kv_status s = kv_open("lsm", dir, &o, &db);
    if (s != KV_OK)
        fail_msg("%s: reopen: %s", what, kv_errmsg());
    if (kv_check(db) != KV_OK)
        fail_msg("%s: check: %s", what, kv_errmsg());
    int lost = 0;
    for (int k = 0; k < NKEYS; k++) {
        char key[32], want[256];
        int kl = keyname(key, k);
        void *v = NULL;
        size_t vl = 0;
        s = kv_get(db, key, (size_t)kl, &v, &vl);
        if (last[k] < 0) {
            lost += s != KV_NOT_FOUND;
        } else {
            size_t wl = value(want, last[k], seed);
            lost += s != KV_OK || vl != wl || memcmp(v, want, wl) != 0;
        }
        kv_free(v);
    }
    OK(kv_close(db));
    kv_options_free(&o);
    if (lost)
        fail_msg("%s: %d of %d keys differ from the state after all %d acknowledged operations",
                 what, lost, NKEYS, n);
}

static kv_db *open_faulty(const char *dir, kv_fs *fs, const char *dur)
{
    kv_options o;
    kv_options_init(&o);
    lt_tiny_options(&o, dur);
    o.fs = fs;
    kv_db *db = NULL;
    OK(kv_open("lsm", dir, &o, &db));
    kv_options_free(&o);
    return db;
}

/* Runs operations with the background thread working (flushes, compactions), then holds it and
 * writes until the memtable switches once (a second WAL appears) and a few operations more: the
 * immutable memtable and its WAL stay unflushed. Returns the number of operations done. */
static int fill_with_unflushed_memtable(kv_db *db, const char *dir, uint64_t seed)
{
    int i = 0;
    for (; i < 300; i++)
        OK(apply(db, i, seed));
    assert_true(lt_stat(db, "flushes") >= 3);
    OK(lsm_pause_background_work(db, true));
    /* the thread was idle: no imm, obsolete WALs deleted */
    assert_int_equal(lt_count_files(dir, ".log"), 1);
    unsigned long long flushes = lt_stat(db, "flushes");
    while (lt_count_files(dir, ".log") < 2) {
        assert_true(i < MAXOPS);
        OK(apply(db, i++, seed));
    }
    for (int j = 0; j < 5; j++) /* a few in the new WAL (4 KiB memtable: far from full) */
        OK(apply(db, i++, seed));
    assert_int_equal(lt_count_files(dir, ".log"), 2);
    assert_int_equal(lt_stat(db, "flushes"), flushes); /* the old memtable is not flushed */
    return i;
}

/* kv_close, then a power loss that loses every unsynced byte: nothing acknowledged is lost. */
static void close_then_power_loss(const char *dur, uint64_t seed)
{
    char *dir = tu_mkdtemp("lsm-durable");
    char *scratch = tu_mkdtemp("lsm-durable-scratch");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db = open_faulty(dir, fs, dur);
    int n = fill_with_unflushed_memtable(db, dir, seed);
    OK(kv_close(db));
    OK(kv_faultfs_crash(fs, KV_CRASH_LOSE, seed));
    kv_fs_destroy(fs);
    char what[64];
    snprintf(what, sizeof what, "%s, seed %llu, kv_close", dur, (unsigned long long)seed);
    verify(dir, n, seed, what);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* kv_sync, then the process dies at its next file-system operation (nothing later reaches the
 * disk, kv_close included) and the power is lost: every commit before kv_sync survives. */
static void sync_then_power_loss(const char *dur, uint64_t seed)
{
    char *dir = tu_mkdtemp("lsm-durable");
    char *scratch = tu_mkdtemp("lsm-durable-scratch");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db = open_faulty(dir, fs, dur);
    int n = fill_with_unflushed_memtable(db, dir, seed);
    OK(kv_sync(db));
    kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    (void)kv_close(db); /* fails at its first operation: the process is dead */
    OK(kv_faultfs_crash(fs, KV_CRASH_LOSE, seed));
    kv_fs_destroy(fs);
    char what[64];
    snprintf(what, sizeof what, "%s, seed %llu, kv_sync", dur, (unsigned long long)seed);
    verify(dir, n, seed, what);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

static void test_close_with_unflushed_memtable(void **state)
{
    (void)state;
    const char *durs[] = {"os", "none", "interval:1000", "sync"};
    for (size_t d = 0; d < 4; d++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            close_then_power_loss(durs[d], seed);
}

static void test_sync_with_unflushed_memtable(void **state)
{
    (void)state;
    const char *durs[] = {"os", "none", "interval:1000", "sync"};
    for (size_t d = 0; d < 4; d++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            sync_then_power_loss(durs[d], seed);
}

/* Without the hook: flush and compaction run when they run (the crash checker's case, --at 0),
 * over several seeds; a kv_sync in the middle must also hold what came before it. */
static void test_close_seeds(void **state)
{
    (void)state;
    uint64_t base = tu_seed(7);
    const char *durs[] = {"os", "none"};
    for (size_t d = 0; d < 2; d++)
        for (uint64_t seed = base; seed < base + 6; seed++) {
            char *dir = tu_mkdtemp("lsm-durable");
            char *scratch = tu_mkdtemp("lsm-durable-scratch");
            kv_fs *fs = kv_faultfs_new(scratch);
            assert_non_null(fs);
            kv_faultfs_set_real_sync(fs, false);
            kv_db *db = open_faulty(dir, fs, durs[d]);
            int n = 300 + (int)(seed % 50);
            for (int i = 0; i < n; i++)
                OK(apply(db, i, seed));
            assert_true(lt_stat(db, "compactions") + lt_stat(db, "trivial_moves") >= 1);
            OK(kv_close(db));
            OK(kv_faultfs_crash(fs, KV_CRASH_LOSE, seed));
            kv_fs_destroy(fs);
            char what[64];
            snprintf(what, sizeof what, "%s, seed %llu, kv_close (no hook)", durs[d],
                     (unsigned long long)seed);
            verify(dir, n, seed, what);
            tu_rmtree(dir);
            tu_rmtree(scratch);
            free(dir);
            free(scratch);
        }
}

static void test_hook_rejects_other_handles(void **state)
{
    (void)state;
    assert_int_equal(lsm_pause_background_work(NULL, true), KV_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_with_unflushed_memtable),
        cmocka_unit_test(test_sync_with_unflushed_memtable),
        cmocka_unit_test(test_close_seeds),
        cmocka_unit_test(test_hook_rejects_other_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
