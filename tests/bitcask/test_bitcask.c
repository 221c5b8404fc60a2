/* bitcask engine tests: rotation and hint files, merge (with the resurrection scenario of
 * basho/bitcask issue 82 crashed at every operation), damaged hint files, an empty newest data
 * file, torn tails, bit flips, iterators pinning files across a merge, torn batches, poisoning
 * after a failed fdatasync, the keydir's incremental growth, kv_dump and kv_stats. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "bc_format.h"
#include "bc_keydir.h"
#include "bc_prefault.h"
#include "bc_testutil.h"
#include "bitcask.h"
#include "faultfs.h"
#include "testutil.h"

#define VLEN 100

static size_t key_of(int i, char *buf)
{
    return (size_t)sprintf(buf, "k%05d", i);
}

static size_t val_of(int i, int ver, char *buf)
{
    memset(buf, 'a' + (ver % 26), VLEN);
    int n = sprintf(buf, "v%05d-%d-", i, ver);
    buf[n] = '.';
    return VLEN;
}

static void put_n(kv_db *db, int from, int to, int ver)
{
    for (int i = from; i < to; i++) {
        char k[16], v[VLEN];
        size_t kl = key_of(i, k), vl = val_of(i, ver, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
    }
}

/* Asserts key i holds version ver (ver < 0: absent). */
static void expect(kv_db *db, int i, int ver)
{
    char k[16], v[VLEN];
    size_t kl = key_of(i, k);
    if (ver < 0)
        bt_expect_get(db, k, kl, NULL, 0);
    else
        bt_expect_get(db, k, kl, v, val_of(i, ver, v));
}

static void test_rotation_hints_reopen(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-rot");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 400, 1);
    for (int i = 0; i < 400; i += 4) {
        char k[16];
        assert_int_equal(kv_delete(db, k, key_of(i, k)), KV_OK);
    }
    put_n(db, 0, 100, 2);
    assert_int_equal(kv_check(db), KV_OK);
    assert_true(bt_stat(db, "data_files") > 5);
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    assert_int_equal(st.live_keys, 100 + 300 - 75);
    assert_true(bt_stat(db, "keydir_bytes_per_key") > 0);
    assert_int_equal(kv_close(db), KV_OK);

    /* a clean close leaves a hint for every data file: start-up reads no data file */
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    assert_int_equal(bt_stat(db, "startup_data_scans"), 0);
    assert_true(bt_stat(db, "startup_hint_loads") > 5);
    for (int i = 0; i < 400; i++)
        expect(db, i, i < 100 ? 2 : i % 4 == 0 ? -1 : 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);

    /* hints=ignore scans every data file and finds the same state (read with pread here) */
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual",
                             "hints=ignore", "read=pread", NULL),
                     KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_loads"), 0);
    assert_true(bt_stat(db, "startup_data_scans") > 5);
    for (int i = 0; i < 400; i++)
        expect(db, i, i < 100 ? 2 : i % 4 == 0 ? -1 : 1);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

static void test_manual_merge_reclaims_space(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-merge");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    for (int ver = 0; ver < 5; ver++)
        put_n(db, 0, 100, ver);
    for (int i = 0; i < 50; i++) {
        char k[16];
        assert_int_equal(kv_delete(db, k, key_of(i, k)), KV_OK);
    }
    uint64_t before = bt_stat(db, "data_files");
    assert_true(bt_stat(db, "dead_bytes") > 0);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    assert_int_equal(bt_stat(db, "merges"), 1);
    assert_true(bt_stat(db, "data_files") < before);
    assert_int_equal(kv_check(db), KV_OK);
    for (int i = 0; i < 100; i++)
        expect(db, i, i < 50 ? -1 : 4);
    /* writes after the merge, then a second merge over the first one's output */
    put_n(db, 0, 20, 7);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    for (int i = 0; i < 100; i++)
        expect(db, i, i < 20 ? 7 : i < 50 ? -1 : 4);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

static void test_auto_merge_runs_in_background(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-auto");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=auto",
                             "merge_fragmentation=30", NULL),
                     KV_OK);
    for (int ver = 0; ver < 20 && bt_stat(db, "merges") == 0; ver++) {
        put_n(db, 0, 50, ver);
        usleep(50000);
    }
    for (int i = 0; i < 200 && bt_stat(db, "merges") == 0; i++)
        usleep(20000);
    assert_true(bt_stat(db, "merges") >= 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* ---- the resurrection scenario (basho/bitcask issue 82) ---- */

static const char victim[] = "victim";

/* put victim; fill a file; delete victim; fill; merge. Returns the faultfs op count at the
 * start of the merge via *merge_start when non-NULL. Stops at the first error. */
static kv_status resurrect_workload(kv_db *db, kv_fs *fs, uint64_t *merge_start)
{
    kv_status s = kv_put(db, victim, sizeof victim - 1, "old", 3);
    for (int i = 0; i < 40 && s == KV_OK; i++) {
        char k[16], v[VLEN];
        s = kv_put(db, k, key_of(i, k), v, val_of(i, 1, v));
    }
    if (s == KV_OK)
        s = kv_delete(db, victim, sizeof victim - 1);
    for (int i = 40; i < 80 && s == KV_OK; i++) {
        char k[16], v[VLEN];
        s = kv_put(db, k, key_of(i, k), v, val_of(i, 1, v));
    }
    if (merge_start)
        *merge_start = kv_faultfs_ops(fs);
    if (s == KV_OK)
        s = kv_bitcask_merge(db);
    return s;
}

static void test_merge_does_not_resurrect_deleted_key(void **state)
{
    (void)state;
    /* without a crash: the tombstone and the old value both go, and stay gone */
    char *dir = tu_mkdtemp("bc-res");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_SYNC, NULL, &db, "file_size=2K", "merge=manual", NULL), KV_OK);
    assert_int_equal(resurrect_workload(db, NULL, NULL), KV_OK);
    void *v;
    size_t vl;
    assert_int_equal(kv_get(db, victim, sizeof victim - 1, &v, &vl), KV_NOT_FOUND);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_SYNC, NULL, &db, "file_size=2K", "merge=manual", NULL), KV_OK);
    assert_int_equal(kv_get(db, victim, sizeof victim - 1, &v, &vl), KV_NOT_FOUND);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);

    /* a power loss at every operation of the merge, under four policies */
    static const kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN,
                                           KV_CRASH_TORN_BYTES};
    uint64_t start = 0, end = 0;
    {
        char *d = tu_mkdtemp("bc-res-count"), *scratch = tu_mkdtemp("bc-res-ff");
        kv_fs *fs = kv_faultfs_new(scratch);
        kv_faultfs_set_real_sync(fs, false);
        assert_int_equal(
            bt_open(d, KV_DURABILITY_SYNC, fs, &db, "file_size=2K", "merge=manual", NULL), KV_OK);
        assert_int_equal(resurrect_workload(db, fs, &start), KV_OK);
        end = kv_faultfs_ops(fs);
        assert_int_equal(kv_close(db), KV_OK);
        kv_fs_destroy(fs);
        tu_rmtree(d);
        tu_rmtree(scratch);
        free(d);
        free(scratch);
    }
    assert_true(end > start + 10);
    for (size_t p = 0; p < sizeof pols / sizeof *pols; p++) {
        for (uint64_t n = start + 1; n <= end + 1; n++) {
            char *d = tu_mkdtemp("bc-res-crash"), *scratch = tu_mkdtemp("bc-res-ff");
            kv_fs *fs = kv_faultfs_new(scratch);
            kv_faultfs_set_real_sync(fs, false);
            kv_faultfs_set_crash_at(fs, n);
            assert_int_equal(
                bt_open(d, KV_DURABILITY_SYNC, fs, &db, "file_size=2K", "merge=manual", NULL),
                KV_OK);
            kv_status s = resurrect_workload(db, fs, NULL);
            assert_true(s == KV_OK || kv_faultfs_crashed(fs));
            kv_close(db);
            assert_int_equal(kv_faultfs_crash(fs, pols[p], n * 7919 + p), KV_OK);
            kv_fs_destroy(fs);
            assert_int_equal(bt_open(d, KV_DURABILITY_SYNC, NULL, &db, "merge=manual", NULL),
                             KV_OK);
            assert_int_equal(kv_check(db), KV_OK);
            assert_int_equal(kv_get(db, victim, sizeof victim - 1, &v, &vl), KV_NOT_FOUND);
            for (int i = 0; i < 80; i++)
                expect(db, i, 1); /* sync mode: every acknowledged put survives */
            /* and the next merge over whatever the crash left keeps it so */
            assert_int_equal(kv_bitcask_merge(db), KV_OK);
            assert_int_equal(kv_get(db, victim, sizeof victim - 1, &v, &vl), KV_NOT_FOUND);
            assert_int_equal(kv_close(db), KV_OK);
            tu_rmtree(d);
            tu_rmtree(scratch);
            free(d);
            free(scratch);
        }
    }
}

/* ---- damage ---- */

static void test_damaged_hint_falls_back_to_scan(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-hint");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 200, 1);
    assert_int_equal(kv_close(db), KV_OK);
    size_t nh = 0;
    char *hint = bt_nth_file(dir, ".hint", 1, &nh);
    assert_non_null(hint);
    long long hs = bt_size(hint);
    assert_int_equal(bt_flip(hint, (uint64_t)hs / 2, 0x10), 0);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 1);
    assert_int_equal(bt_stat(db, "startup_data_scans"), 1);
    for (int i = 0; i < 200; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK); /* the scan rewrote the hint */
    assert_int_equal(kv_close(db), KV_OK);
    /* a hint that is cut short, and one that is empty */
    assert_int_equal(truncate(hint, hs - 7), 0);
    char *hint2 = bt_nth_file(dir, ".hint", 2, NULL);
    assert_int_equal(bt_write_file(hint2, "", 0), 0);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 2);
    for (int i = 0; i < 200; i++)
        expect(db, i, 1);
    assert_int_equal(kv_close(db), KV_OK);
    free(hint);
    free(hint2);
    tu_rmtree(dir);
    free(dir);
}

/* Names a crash can leave behind, none of them part of the state: a merge output no MANIFEST
 * names (.mdata/.mhint), a hint whose data file is gone, and .tmp files of an interrupted atomic
 * replacement. Open removes every one, loads the same keys, and a second open finds nothing
 * more to remove. */
static void test_open_removes_orphans(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-orphans");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 200, 1);
    assert_int_equal(kv_close(db), KV_OK);
    size_t nd = 0, nh = 0;
    free(bt_nth_file(dir, ".data", 1, &nd));
    free(bt_nth_file(dir, ".hint", 1, &nh));
    char *hint = bt_nth_file(dir, ".hint", 1, NULL);
    static char hbytes[1 << 16];
    FILE *hf = fopen(hint, "rb");
    assert_non_null(hf);
    size_t hlen = fread(hbytes, 1, sizeof hbytes, hf);
    fclose(hf);
    assert_true(hlen > 0);
    const char *orphans[] = {"0000009990.mdata", "0000009990.mhint", "0000009991.hint",
                             "MANIFEST.tmp", "0000000001.hint.tmp"};
    for (size_t i = 0; i < sizeof orphans / sizeof *orphans; i++) {
        char *p = kv_path_join(dir, orphans[i]);
        assert_int_equal(bt_write_file(p, hbytes, hlen), 0); /* plausible contents */
        free(p);
    }
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    for (size_t i = 0; i < sizeof orphans / sizeof *orphans; i++) {
        char *p = kv_path_join(dir, orphans[i]);
        if (access(p, F_OK) == 0)
            fail_msg("%s survived the open", orphans[i]);
        free(p);
    }
    for (int i = 0; i < 200; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    size_t nd2 = 0, nh2 = 0;
    free(bt_nth_file(dir, ".data", 1, &nd2));
    free(bt_nth_file(dir, ".hint", 1, &nh2));
    assert_true(nd2 >= nd && nh2 >= nh); /* the open's own new file, nothing of the orphans */
    free(hint);
    tu_rmtree(dir);
    free(dir);
}

/* A MANIFEST whose bytes are damaged is KV_CORRUPTION naming the file: the open cannot know which
 * files the database depends on, so it refuses rather than guess, and deletes nothing (not even
 * the leftovers it would delete otherwise). */
static void test_damaged_manifest_is_corruption(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-manifest-bad");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 200, 1);
    put_n(db, 0, 100, 2);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    char *m = kv_path_join(dir, "MANIFEST");
    char *tmp = kv_path_join(dir, "MANIFEST.tmp");
    assert_int_equal(bt_write_file(tmp, "x", 1), 0); /* a leftover open would delete */
    long long ms = bt_size(m);
    assert_true(ms > 16 && ms < 4096);
    uint8_t good[4096];
    FILE *mf = fopen(m, "rb");
    assert_int_equal(fread(good, 1, (size_t)ms, mf), (size_t)ms);
    fclose(mf);
    uint64_t offs[] = {(uint64_t)ms / 2, 12, (uint64_t)ms - 1};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(bt_flip(m, offs[i], 0x20), 0);
        char *before = tu_dir_state(dir);
        assert_int_equal(
            bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL),
            KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "MANIFEST"));
        assert_non_null(strstr(kv_errmsg(), "offset"));
        assert_int_equal(bt_open_ro(dir, &db), KV_CORRUPTION);
        char *after = tu_dir_state(dir);
        assert_string_equal(before, after); /* nothing deleted, nothing written */
        free(before);
        free(after);
        assert_int_equal(bt_flip(m, offs[i], 0x20), 0);
    }
    /* cut short, and one byte appended */
    assert_int_equal(truncate(m, ms - 5), 0);
    assert_int_equal(bt_open_ro(dir, &db), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "MANIFEST"));
    assert_int_equal(bt_write_file(m, good, (size_t)ms), 0);
    assert_int_equal(truncate(m, ms + 1), 0);
    assert_int_equal(bt_open_ro(dir, &db), KV_CORRUPTION);
    assert_int_equal(bt_write_file(m, good, (size_t)ms), 0);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "merge=manual", NULL), KV_OK);
    for (int i = 0; i < 200; i++)
        expect(db, i, i < 100 ? 2 : 1);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_size(tmp), -1); /* removed by the open that succeeded */
    free(m);
    free(tmp);
    tu_rmtree(dir);
    free(dir);
}

static void test_zero_length_newest_data_file(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-empty");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 100, 1);
    assert_int_equal(kv_close(db), KV_OK);
    /* a rotation that crashed right after creating its file: zero bytes */
    char p[512];
    snprintf(p, sizeof p, "%s/%010d.data", dir, 900);
    assert_int_equal(bt_write_file(p, "", 0), 0);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    assert_int_equal(bt_size(p), -1);
    for (int i = 0; i < 100; i++)
        expect(db, i, 1);
    assert_int_equal(kv_close(db), KV_OK);
    /* the same with a torn header */
    char q[512];
    snprintf(q, sizeof q, "%s/%010d.data", dir, 901);
    assert_int_equal(bt_write_file(q, "KVBCDA", 6), 0);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    assert_int_equal(bt_size(q), -1);
    for (int i = 0; i < 100; i++)
        expect(db, i, 1);
    put_n(db, 100, 110, 1); /* new files get ids past the removed ones */
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    for (int i = 0; i < 110; i++)
        expect(db, i, 1);
    assert_int_equal(kv_close(db), KV_OK);
    /* an empty file that is not the newest is damage, not a crash: never dropped silently */
    char *oldest = bt_nth_file(dir, ".data", 0, NULL);
    assert_int_equal(truncate(oldest, 0), 0);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_CORRUPTION);
    free(oldest);
    tu_rmtree(dir);
    free(dir);
}

static void test_bit_flip_in_data_file_is_corruption(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-flip");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=8K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 300, 1);
    assert_int_equal(kv_close(db), KV_OK);
    size_t nd = 0;
    char *first = bt_nth_file(dir, ".data", 0, &nd);
    char *newest = bt_nth_file(dir, ".data", nd - 1, NULL);
    assert_true(nd >= 3);
    assert_int_equal(bt_flip(first, (uint64_t)bt_size(first) / 2, 0x04), 0);

    /* scanning finds it at open: KV_CORRUPTION naming the file and the offset */
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "hints=ignore", NULL),
                     KV_CORRUPTION);
    const char *msg = kv_errmsg();
    assert_non_null(strstr(msg, strrchr(first, '/') + 1));
    assert_non_null(strstr(msg, "offset"));
    /* with hints the open succeeds, but reads and kv_check report it */
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    assert_int_equal(kv_check(db), KV_CORRUPTION);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    size_t seen = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        seen++;
    assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
    assert_true(seen < 300);
    kv_iter_free(it);
    assert_int_equal(kv_close(db), KV_OK);

    /* the newest data file too: a flipped record followed by good ones is no torn tail */
    assert_int_equal(bt_flip(first, (uint64_t)bt_size(first) / 2, 0x04), 0); /* undo */
    assert_int_equal(bt_flip(newest, 40, 0x01), 0);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "hints=ignore", NULL),
                     KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), strrchr(newest, '/') + 1));
    free(first);
    free(newest);
    tu_rmtree(dir);
    free(dir);
}

/* A database in dir whose last session was killed: keys 0..n-1 put (version 1) in durability
 * mode (kv_sync after every sync_every puts when it is not 0), then the process "dies" (faultfs
 * crashes with KV_CRASH_KEEP: nothing written is lost, as after a SIGKILL, but nothing is closed
 * either). The active data file stays the one MANIFEST calls active, the only one that may end
 * in a torn tail. Returns its path (caller frees). */
static char *killed_db(const char *dir, kv_durability_kind mode, int n, int sync_every)
{
    char *scratch = tu_mkdtemp("bc-killed-ff");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db;
    assert_int_equal(bt_open(dir, mode, fs, &db, "merge=manual", NULL), KV_OK);
    for (int i = 0; i < n; i++) {
        put_n(db, i, i + 1, 1);
        if (sync_every && (i + 1) % sync_every == 0)
            assert_int_equal(kv_sync(db), KV_OK);
    }
    kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    kv_close(db); /* fails at once: the process is gone */
    assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_KEEP, 1), KV_OK);
    kv_fs_destroy(fs);
    tu_rmtree(scratch);
    free(scratch);
    size_t nd = 0;
    free(bt_nth_file(dir, ".data", 0, &nd));
    assert_true(nd >= 1);
    return bt_nth_file(dir, ".data", nd - 1, NULL);
}

/* Appends n bytes of b to path. */
static void append_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Keys 0..49 (version 1) in a killed session, then 40 bytes of a half-written record appended to
 * its active data file. Returns that file's path (caller frees) and its size before the junk in
 * *size. */
static char *make_torn_tail(const char *dir, long long *size)
{
    char *data = killed_db(dir, KV_DURABILITY_OS, 50, 0);
    *size = bt_size(data);
    uint8_t junk[40];
    memset(junk, 0x5a, sizeof junk);
    append_bytes(data, junk, sizeof junk);
    return data;
}

/* The cut of a torn tail is durable: open through faultfs cuts the junk off the newest data file,
 * then a power loss drops everything not synced. Without the fdatasync after the truncate the
 * cut would be undone and the junk back; the next open would cut it again, but a record appended
 * after the cut could then sit behind junk (a hole). Idea: wal.log's
 * test_torn_tail_cut_and_durable. */
static void test_torn_tail_cut_is_durable(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-torn-durable");
    char *scratch = tu_mkdtemp("bc-torn-durable-scratch");
    kv_db *db;
    long long size;
    char *data = make_torn_tail(dir, &size);
    kv_fs *ff = kv_faultfs_new(scratch);
    assert_non_null(ff);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, ff, &db, NULL), KV_OK);
    assert_int_equal(bt_size(data), size);
    kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
    assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_LOSE, 1), KV_OK);
    kv_close(db); /* fails after the crash point; frees the handle */
    kv_fs_destroy(ff);
    assert_int_equal(bt_size(data), size); /* the cut survived the power loss */
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    for (int i = 0; i < 50; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    free(data);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* Opens dir read-only and expects keys 0..n-1 at version 1 and nothing changed on disk. */
static void expect_read_only(const char *dir, int n)
{
    char *before = tu_dir_state(dir);
    kv_db *db;
    assert_int_equal(bt_open_ro(dir, &db), KV_OK);
    for (int i = 0; i < n; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_torn_tail_is_cut_at_open(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-torn");
    kv_db *db;
    long long size;
    char *data = make_torn_tail(dir, &size);
    /* read-only: the tail is ignored, and stays */
    expect_read_only(dir, 50);
    assert_int_equal(bt_size(data), size + 40);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    assert_int_equal(bt_size(data), size);
    for (int i = 0; i < 50; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);

    /* zeros where a write never reached the disk, followed by a record that did (a power loss
     * tearing one unsynced write at any byte keeps such a shape): no sync mark past the hole
     * vouches for it, so the suffix after the hole goes too (a prefix of the history) */
    tu_rmtree(dir);
    free(data);
    data = killed_db(dir, KV_DURABILITY_OS, 10, 0);
    size = bt_size(data);
    uint8_t zeros[1024] = {0};
    FILE *r = fopen(data, "rb");
    uint8_t rec[256];
    size_t rs = (size_t)bc_rec_size(6, VLEN);
    assert_int_equal(fseek(r, BC_DATA_HDR, SEEK_SET), 0);
    assert_int_equal(fread(rec, 1, rs, r), rs);
    fclose(r);
    append_bytes(data, zeros, 1024 - (size_t)(size % 512));
    append_bytes(data, rec, rs);
    expect_read_only(dir, 10);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    assert_int_equal(bt_size(data), size);
    for (int i = 0; i < 10; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

/* The edges of reclog's rule in the active file. Durability sync: every commit's write starts
 * with a sync mark naming what the fdatasync before it made durable. A flipped length field (a
 * record that now seems to run past the end) or a flipped byte anywhere in an acknowledged
 * record is then vouched for by a later mark: KV_CORRUPTION naming the file, the offset and the
 * mark, writable or read-only, and nothing is cut. In durability os no fdatasync ran, so no mark
 * vouches for anything: the same flip is a torn tail, cut at open (a suffix of unsynced writes,
 * which os may lose). */
static void test_damage_vouched_by_a_mark_is_corruption(void **state)
{
    (void)state;
    for (int field = 0; field < 2; field++) {
        char *dir = tu_mkdtemp("bc-mark");
        char *data = killed_db(dir, KV_DURABILITY_SYNC, 30, 0);
        long long size = bt_size(data);
        /* the 3rd record: header, 1st record, a mark, the 2nd record and a mark before it */
        uint64_t at = BC_DATA_HDR + 2 * bc_rec_size(6, VLEN) + 2 * KV_RECLOG_MARK_SIZE;
        at += field == 0 ? 8 + 2 : KV_RECLOG_FRAME + BC_PAYLOAD_HDR + 3; /* length; key */
        assert_int_equal(bt_flip(data, at, 0x40), 0);
        char *before = tu_dir_state(dir);
        kv_db *db;
        assert_int_equal(bt_open_ro(dir, &db), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), strrchr(data, '/') + 1));
        assert_non_null(strstr(kv_errmsg(), "sync mark"));
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_CORRUPTION);
        char *after = tu_dir_state(dir);
        assert_string_equal(before, after); /* nothing cut, nothing written */
        assert_int_equal(bt_size(data), size);
        free(before);
        free(after);
        free(data);
        tu_rmtree(dir);

        data = killed_db(dir, KV_DURABILITY_OS, 30, 0);
        uint64_t third = BC_DATA_HDR + 2 * bc_rec_size(6, VLEN); /* no marks: nothing synced */
        at = third + (field == 0 ? 8 + 2 : KV_RECLOG_FRAME + BC_PAYLOAD_HDR + 3);
        assert_int_equal(bt_flip(data, at, 0x40), 0);
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
        assert_int_equal(bt_size(data), (long long)third);
        for (int i = 0; i < 30; i++)
            expect(db, i, i < 2 ? 1 : -1);
        assert_int_equal(kv_check(db), KV_OK);
        assert_int_equal(kv_close(db), KV_OK);
        free(data);
        tu_rmtree(dir);
        free(dir);
    }
}

/* A torn-bytes power loss can keep the end of the in-flight, never acknowledged batch (zeros,
 * then its last operations intact). The batch is one record whose crc fails, and no mark past it
 * vouches for it: a torn tail. Writable and read-only opens both succeed with every acknowledged
 * commit and nothing of the batch. */
static void test_torn_batch_keeping_its_end_opens(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-torn-end");
    char *data = killed_db(dir, KV_DURABILITY_SYNC, 10, 0);
    long long size = bt_size(data);
    /* the batch a killed writer was in the middle of: appended by hand, then its first 100
     * bytes zeroed as a byte-granular tear leaves them */
    uint8_t b[4096];
    size_t n = 0;
    uint32_t seed = 0;
    {
        FILE *f = fopen(data, "rb");
        uint8_t hdr[BC_DATA_HDR];
        assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
        fclose(f);
        seed = kv_reclog_seed(kv_get_u64(hdr + 24));
    }
    n = kv_reclog_mark(b, seed, (uint64_t)size); /* what the batch's write starts with */
    size_t batch = n;
    n += BC_REC_OVERHEAD;
    for (int i = 100; i < 104; i++) {
        char k[16], v[VLEN];
        size_t kl = key_of(i, k), vl = val_of(i, 1, v);
        n += bc_rec_encode(b + n, seed, BC_T_BATCH_PUT, 11, k, kl, v, vl);
    }
    bc_rec_finish(b + batch, seed, BC_T_BATCH, 11, 0, (uint32_t)(n - batch - BC_REC_OVERHEAD));
    memset(b + KV_RECLOG_MARK_SIZE, 0, 100);
    append_bytes(data, b, n);
    expect_read_only(dir, 10);
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    for (int i = 100; i < 104; i++)
        expect(db, i, -1);
    for (int i = 0; i < 10; i++)
        expect(db, i, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_size(data), size + KV_RECLOG_MARK_SIZE); /* the mark was whole */
    free(data);
    tu_rmtree(dir);
    free(dir);
}

static void test_torn_batch_is_all_or_nothing(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-batch");
    char *scratch = tu_mkdtemp("bc-batch-ff");
    kv_fs *fs = kv_faultfs_new(scratch);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, fs, &db, NULL), KV_OK);
    put_n(db, 0, 10, 1);
    kv_batch *b = kv_batch_new();
    for (int i = 100; i < 105; i++) {
        char k[16], v[VLEN];
        assert_int_equal(kv_batch_put(b, k, key_of(i, k), v, val_of(i, 1, v)), KV_OK);
    }
    char k0[16];
    assert_int_equal(kv_batch_delete(b, k0, key_of(0, k0)), KV_OK);
    assert_int_equal(kv_write(db, b), KV_OK);
    kv_batch_free(b);
    for (int i = 100; i < 105; i++)
        expect(db, i, 1);
    expect(db, 0, -1);
    kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    kv_close(db); /* killed */
    assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_KEEP, 1), KV_OK);
    kv_fs_destroy(fs);
    size_t nd = 0;
    free(bt_nth_file(dir, ".data", 0, &nd));
    char *data = bt_nth_file(dir, ".data", nd - 1, NULL);
    /* cut the batch record in its middle (as a crash mid-write can) */
    assert_int_equal(truncate(data, bt_size(data) - 200), 0);
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, NULL), KV_OK);
    for (int i = 100; i < 105; i++)
        expect(db, i, -1);
    expect(db, 0, 1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    free(data);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

static void test_iterator_pins_files_across_merge(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-pin");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 100, 1);
    put_n(db, 0, 100, 2);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    put_n(db, 0, 100, 3); /* after the snapshot */
    size_t before = 0;
    free(bt_nth_file(dir, ".data", 0, &before));
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    size_t during = 0;
    free(bt_nth_file(dir, ".data", 0, &during));
    assert_true(during >= before); /* replaced files stay while the iterator needs them */
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it), n++) {
        size_t kl, vl;
        const void *k = kv_iter_key(it, &kl);
        const void *v = kv_iter_value(it, &vl);
        char ek[16], ev[VLEN];
        assert_int_equal(kl, key_of(n, ek));
        assert_memory_equal(k, ek, kl);
        assert_int_equal(vl, val_of(n, 2, ev));
        assert_memory_equal(v, ev, vl);
    }
    assert_int_equal(n, 100);
    assert_int_equal(kv_iter_status(it), KV_OK);
    kv_iter_free(it);
    size_t after = 0;
    free(bt_nth_file(dir, ".data", 0, &after));
    assert_true(after < during); /* released: the replaced files are gone */
    for (int i = 0; i < 100; i++)
        expect(db, i, 3);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

static void test_failed_fdatasync_poisons(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-poison"), *scratch = tu_mkdtemp("bc-poison-ff");
    kv_fs *fs = kv_faultfs_new(scratch);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_SYNC, fs, &db, NULL), KV_OK);
    put_n(db, 0, 10, 1);
    kv_faultfs_fail(fs, KV_FAULT_SYNC, 1, EIO, false);
    char k[16], v[VLEN];
    assert_int_equal(kv_put(db, k, key_of(10, k), v, val_of(10, 1, v)), KV_IO);
    assert_int_equal(kv_put(db, k, key_of(11, k), v, val_of(11, 1, v)), KV_POISONED);
    assert_int_equal(kv_delete(db, k, key_of(1, k)), KV_POISONED);
    assert_int_equal(kv_sync(db), KV_POISONED);
    expect(db, 1, 1); /* reads go on */
    assert_int_not_equal(kv_close(db), KV_OK);
    kv_fs_destroy(fs);
    assert_int_equal(bt_open(dir, KV_DURABILITY_SYNC, NULL, &db, NULL), KV_OK);
    for (int i = 0; i < 10; i++)
        expect(db, i, 1);
    expect(db, 11, -1);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* Keys for the keydir test: odd ones short (stored in the slot), even ones long (malloc'd). */
static size_t kd_key(int i, char *buf)
{
    if (i % 2)
        return key_of(i, buf);
    return (size_t)sprintf(buf, "a-longer-key-%07d-stored-outside-the-slot", i);
}

static void test_keydir_incremental_growth(void **state)
{
    (void)state;
    bc_keydir kd;
    assert_true(bc_kd_init(&kd, 0));
    const int n = 100000;
    bool saw_two_tables = false;
    for (int i = 0; i < n; i++) {
        char k[64];
        size_t kl = kd_key(i, k);
        bc_loc l = {.offset = (uint64_t)i, .seq = (uint64_t)i, .file_id = 1, .rec_size = 10};
        bool had, pt;
        bc_loc prev;
        assert_true(bc_kd_put(&kd, k, kl, bc_hash(k, kl), &l, false, &had, &prev, &pt));
        assert_false(had);
        saw_two_tables |= kd.old.cap != 0;
        /* the old table is never fully rehashed in one put */
        assert_true(kd.migrate_pos == 0 || kd.migrate_pos <= kd.old.cap);
    }
    assert_true(saw_two_tables);
    assert_true(kd.resizes >= 6);
    for (int i = 0; i < n; i += 3) {
        char k[64];
        size_t kl = kd_key(i, k);
        bc_loc prev;
        assert_true(bc_kd_del(&kd, k, kl, bc_hash(k, kl), &prev));
        assert_int_equal(prev.offset, (uint64_t)i);
    }
    for (int i = 0; i < n; i++) {
        char k[64];
        size_t kl = kd_key(i, k);
        bc_loc l;
        bool found = bc_kd_get(&kd, k, kl, bc_hash(k, kl), &l, NULL);
        assert_int_equal(found, i % 3 != 0);
        if (found)
            assert_int_equal(l.offset, (uint64_t)i);
    }
    assert_int_equal(kd.count, (size_t)(n - (n + 2) / 3));
    bc_kd_free(&kd);
}

/* The keydir's next table can be prepared off the write path: bc_kd_spare_wanted asks for it
 * once the table is past half full, a table of the wrong capacity is freed at once (ASan would
 * report it otherwise), the growth takes the spare instead of allocating, a spare still held
 * is freed with the keydir, and every key survives. */
static void test_keydir_spare_table(void **state)
{
    (void)state;
    bc_keydir kd;
    assert_true(bc_kd_init(&kd, 0));
    int i = 0;
    char k[64];
    size_t want;
    bc_loc l = {.file_id = 1, .rec_size = 10}, prev;
    bool had, pt;
    for (; !(want = bc_kd_spare_wanted(&kd)); i++) {
        size_t kl = kd_key(i, k);
        l.offset = l.seq = (uint64_t)i;
        assert_true(bc_kd_put(&kd, k, kl, bc_hash(k, kl), &l, false, &had, &prev, &pt));
    }
    assert_true(want >= BC_KD_SPARE_MIN);
    assert_int_equal(want, kd.cur.cap * 2);
    assert_true(kd.cur.used * 2 > kd.cur.cap);
    bc_slot *wrong = bc_kd_table_new(want * 2);
    assert_non_null(wrong);
    bc_kd_give_spare(&kd, wrong, want * 2); /* freed: no growth wants it */
    assert_null(kd.spare);
    uint64_t before = bc_kd_bytes(&kd);
    bc_slot *t = bc_kd_table_new(want);
    assert_non_null(t);
    for (size_t j = 0; j < want; j += 4099)
        assert_int_equal(t[j].state, BC_SLOT_EMPTY);
    bc_kd_give_spare(&kd, t, want);
    assert_ptr_equal(kd.spare, t);
    assert_int_equal(bc_kd_bytes(&kd), before + want * sizeof(bc_slot));
    assert_int_equal(bc_kd_spare_wanted(&kd), 0); /* one spare at a time */
    size_t cap = kd.cur.cap;
    for (; kd.cur.cap == cap; i++) {
        size_t kl = kd_key(i, k);
        l.offset = l.seq = (uint64_t)i;
        assert_true(bc_kd_put(&kd, k, kl, bc_hash(k, kl), &l, false, &had, &prev, &pt));
    }
    assert_ptr_equal(kd.cur.slots, t);
    assert_null(kd.spare);
    assert_int_equal(kd.spares_used, 1);
    for (; !(want = bc_kd_spare_wanted(&kd)); i++) {
        size_t kl = kd_key(i, k);
        l.offset = l.seq = (uint64_t)i;
        assert_true(bc_kd_put(&kd, k, kl, bc_hash(k, kl), &l, false, &had, &prev, &pt));
    }
    bc_kd_give_spare(&kd, bc_kd_table_new(want), want); /* held, never used: freed below */
    assert_non_null(kd.spare);
    assert_int_equal(kd.count, (size_t)i);
    for (int j = 0; j < i; j++) {
        size_t kl = kd_key(j, k);
        bool found = bc_kd_get(&kd, k, kl, bc_hash(k, kl), &l, NULL);
        assert_true(found);
        assert_int_equal(l.offset, (uint64_t)j);
    }
    bc_kd_free(&kd);
}

/* The engine prepares the keydir's next table on a thread of its own once the keydir is past
 * half full: the spare appears in keydir_bytes, the growth uses it (keydir_spares_used), and
 * every key is there before and after a reopen. Waits up to 60 s for the thread (no timing is
 * asserted: a thread that never delivers fails). */
static void test_engine_prepares_next_keydir_table(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-spare");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "merge=manual", NULL), KV_OK);
    char k[64], v[VLEN];
    /* past half of a 2^17-slot table: the next growth wants 2^18 slots (BC_KD_SPARE_MIN) */
    const int half = 1 << 16, grown = 3 << 15; /* 3/4 of 2^17: the growth */
    int i = 0;
    for (; i <= half; i++) {
        size_t kl = key_of(i, k), vl = val_of(i, 1, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
    }
    uint64_t base = (uint64_t)(1 << 17) * sizeof(bc_slot),
             spare = (uint64_t)(1 << 18) * sizeof(bc_slot);
    for (int w = 0; w < 6000 && bt_stat(db, "keydir_bytes") < base + spare; w++)
        usleep(10000);
    assert_true(bt_stat(db, "keydir_bytes") >= base + spare);
    for (; i <= grown + 1; i++) {
        size_t kl = key_of(i, k), vl = val_of(i, 1, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
    }
    assert_int_equal(bt_stat(db, "keydir_spares_used"), 1);
    for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < i; j += 7)
            expect(db, j, 1);
        assert_int_equal(kv_close(db), KV_OK);
        if (!pass)
            assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "merge=manual", NULL),
                             KV_OK);
    }
    tu_rmtree(dir);
    free(dir);
}

/* Start-up loads entries in batches of up to 4,096, each slot prefetched a few entries before
 * its insert (bc_recover.c), and keeps each file's live bytes as it goes instead of summing
 * them afterwards. A first file of 12,000 records (batches end inside a file), then many small
 * files; short and long keys, overwrites within and across files, deletes, keys deleted then
 * written again, and batches naming a key twice: after a reopen from hint files and after one
 * that scans every data file, every key, the live key count and the live bytes equal those of
 * the session that wrote them. */
static void test_batched_load_matches_model(void **state)
{
    (void)state;
    enum { N = 12000 };
    static int ver[N]; /* -1: deleted */
    char *dir = tu_mkdtemp("bc-sorted");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=4M", "merge=manual", NULL), KV_OK);
    char k[64], v[VLEN];
    for (int i = 0; i < N; i++) {
        size_t kl = kd_key(i, k), vl = val_of(i, 1, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
        ver[i] = 1;
    }
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=128K", "merge=manual", NULL), KV_OK);
    for (int i = 0; i < N; i += 3) {
        size_t kl = kd_key(i, k), vl = val_of(i, 2, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
        ver[i] = 2;
    }
    for (int i = 0; i < N; i += 7) {
        size_t kl = kd_key(i, k);
        assert_int_equal(kv_delete(db, k, kl), KV_OK);
        ver[i] = -1;
    }
    kv_batch *b = kv_batch_new();
    assert_non_null(b);
    for (int i = 0; i < 600; i++) { /* the later of two puts of one key in a batch wins */
        kv_batch_clear(b);
        size_t kl = kd_key(i * 17 % N, k), vl = val_of(i * 17 % N, 3, v);
        assert_int_equal(kv_batch_put(b, k, kl, v, vl), KV_OK);
        vl = val_of(i * 17 % N, 4, v);
        assert_int_equal(kv_batch_put(b, k, kl, v, vl), KV_OK);
        kl = kd_key((i * 17 + 5) % N, k);
        assert_int_equal(kv_batch_delete(b, k, kl), KV_OK);
        assert_int_equal(kv_write(db, b), KV_OK);
        ver[i * 17 % N] = 4;
        ver[(i * 17 + 5) % N] = -1;
    }
    kv_batch_free(b);
    for (int i = 0; i < N; i += 49) {
        size_t kl = kd_key(i, k), vl = val_of(i, 5, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
        ver[i] = 5;
    }
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    uint64_t keys = st.live_keys, live = bt_stat(db, "live_bytes");
    assert_true(bt_stat(db, "data_files") > 5);
    assert_int_equal(kv_close(db), KV_OK);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=128K", "merge=manual",
                                 pass ? "hints=ignore" : "hints=use", NULL),
                         KV_OK);
        assert_int_equal(bt_stat(db, pass ? "startup_hint_loads" : "startup_data_scans"), 0);
        bt_expect_model(db, N, ver, kd_key, val_of, keys, live);
        assert_int_equal(kv_close(db), KV_OK);
    }
    tu_rmtree(dir);
    free(dir);
}

/* Whether start-up helpers run here: the kernel has MADV_POPULATE_WRITE (Linux 5.14) and this
 * process may use two CPUs or more (bc_prefault_available). */
static bool have_populate_write(void)
{
    if (!bc_prefault_available())
        return false;
#ifdef MADV_POPULATE_WRITE
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    bool ok = madvise(p, 4096, MADV_POPULATE_WRITE) == 0;
    munmap(p, 4096);
    return ok;
#else
    return false;
#endif
}

/* The start-up helper (bc_prefault.h) only faults pages in: what the owning thread writes into
 * the region before and while the helper runs is all there after bc_prefault_finish, the rest
 * still reads zero. Left to run (bc_prefault_wait) it faults in the whole region (less its
 * unaligned ends) and counts it; a region below BC_PREFAULT_MIN starts no thread; finishing
 * twice is harmless. */
static void test_prefault_keeps_contents(void **state)
{
    (void)state;
    const size_t len = (size_t)24 << 20, step = 4096 * 3 + 8;
    bool can = have_populate_write();
    for (int wait = 0; wait < 2; wait++) {
        uint8_t *p = calloc(1, len);
        assert_non_null(p);
        bc_prefault pf = {0};
        p[12345] = 7; /* before the start */
        assert_int_equal(bc_prefault_start(&pf, p, len), can);
        for (size_t off = 0; off < len; off += step) /* while it runs */
            p[off] = (uint8_t)(off >> 12 | 1);
        if (wait)
            bc_prefault_wait(&pf);
        else
            bc_prefault_finish(&pf);
        bc_prefault_finish(&pf);
        for (size_t off = 0; off < len; off++) {
            uint8_t want = off % step == 0 ? (uint8_t)(off >> 12 | 1) : 0;
            if (off == 12345)
                want = 7;
            if (p[off] != want)
                fail_msg("byte %zu is %u, want %u", off, p[off], want);
        }
        assert_true(pf.bytes <= len && pf.tables <= 1);
        if (wait && can) {
            assert_int_equal(pf.tables, 1);
            assert_true(pf.bytes + 8192 >= len);
        }
        free(p);
    }
    uint8_t small_buf[64];
    bc_prefault small = {0};
    assert_false(bc_prefault_start(&small, small_buf, sizeof small_buf));
    bc_prefault_finish(&small);
    assert_int_equal(small.tables, 0);
}

/* The keys and values of test_startup_prefaults_keydir. */
static size_t pf_key(int i, char *buf)
{
    return (size_t)sprintf(buf, "pf%07d", i);
}

static size_t pf_val(int i, int ver, char *buf)
{
    return (size_t)sprintf(buf, "v%d.%d", i, ver);
}

/* Start-up faults each keydir table it allocates in on a prefault thread while it loads
 * (bc_recover.c, bc_prefault.h): 100,000 keys (a table of 6 MiB or more) in several files, with
 * overwrites and deletes. From hint files (the table sized once from their headers) and by
 * scanning every data file (the table grown as it loads), the stats count at least one table
 * faulted in (where the kernel can), and every key, the live key count and the live bytes equal
 * the model's. */
static void test_startup_prefaults_keydir(void **state)
{
    (void)state;
    enum { N = 100000 };
    static int ver[N]; /* -1: deleted */
    char *dir = tu_mkdtemp("bc-prefault");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "file_size=1M", "merge=manual", NULL), KV_OK);
    char k[32], v[32];
    for (int round = 1; round <= 3; round++)
        for (int i = 0; i < N; i += round) {
            size_t kl = pf_key(i, k), vl = pf_val(i, round, v);
            if (round == 3 && i % 2) {
                assert_int_equal(kv_delete(db, k, kl), KV_OK);
                ver[i] = -1;
            } else {
                assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
                ver[i] = round;
            }
        }
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    uint64_t keys = st.live_keys, live = bt_stat(db, "live_bytes");
    assert_int_equal(kv_close(db), KV_OK);
    bool can = have_populate_write();
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "merge=manual",
                                 pass ? "hints=ignore" : "hints=use", NULL),
                         KV_OK);
        assert_true(bt_stat(db, pass ? "startup_data_scans" : "startup_hint_loads") > 3);
        uint64_t tables = bt_stat(db, "startup_prefault_tables");
        uint64_t bytes = bt_stat(db, "startup_prefault_bytes");
        assert_true(tables != UINT64_MAX && bytes != UINT64_MAX);
        if (can) {
            assert_true(tables >= 1);
            assert_true(bytes >= BC_PREFAULT_MIN - 8192);
        } else {
            assert_int_equal(tables, 0);
        }
        assert_true(bytes <= bt_stat(db, "keydir_bytes") * 4); /* every growth's table at most */
        bt_expect_model(db, N, ver, pf_key, pf_val, keys, live);
        assert_int_equal(kv_close(db), KV_OK);
    }
    /* startup=plain: the core start-up alone (no reader thread, no prefault thread, no
     * staging) finds the same keys, live key count and live bytes, from hints and by scans */
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "merge=manual", "startup=plain",
                                 pass ? "hints=ignore" : "hints=use", NULL),
                         KV_OK);
        assert_true(bt_stat(db, pass ? "startup_data_scans" : "startup_hint_loads") > 3);
        assert_int_equal(bt_stat(db, "startup_prefault_tables"), 0);
        assert_int_equal(bt_stat(db, "startup_hint_reader_files"), 0);
        bt_expect_model(db, N, ver, pf_key, pf_val, keys, live);
        assert_int_equal(kv_close(db), KV_OK);
    }
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "startup=slow", NULL), KV_INVALID);
    tu_rmtree(dir);
    free(dir);
}

static void test_dump_prints_every_file(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-dump");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=1K", "merge=manual", NULL), KV_OK);
    put_n(db, 0, 20, 1);
    char k[16];
    assert_int_equal(kv_delete(db, k, key_of(3, k)), KV_OK);
    kv_batch *b = kv_batch_new();
    assert_int_equal(kv_batch_put(b, "bk", 2, "bv", 2), KV_OK);
    assert_int_equal(kv_write(db, b), KV_OK);
    kv_batch_free(b);
    put_n(db, 20, 30, 1);
    assert_int_equal(kv_sync(db), KV_OK);
    put_n(db, 30, 31, 1); /* starts with a sync mark */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(kv_dump(db, out, NULL, -1), KV_OK);
    fclose(out);
    assert_non_null(strstr(buf, "(tombstone)"));
    assert_non_null(strstr(buf, "(batch)"));
    assert_non_null(strstr(buf, "(put in a batch)"));
    assert_non_null(strstr(buf, "hint file"));
    assert_non_null(strstr(buf, "@0: magic \"KVBCDAT1\""));
    assert_non_null(strstr(buf, "@24: salt "));
    assert_non_null(strstr(buf, "(sync mark)"));
    assert_non_null(strstr(buf, "durable to offset"));
    free(buf);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    out = open_memstream(&buf, &len);
    assert_int_equal(kv_dump(db, out, "MANIFEST", -1), KV_OK);
    fclose(out);
    assert_non_null(strstr(buf, "bitcask manifest"));
    assert_non_null(strstr(buf, "obsolete file"));
    assert_non_null(strstr(buf, "(active: may end in a torn tail past its durable length)"));
    assert_non_null(strstr(buf, " durable length "));
    free(buf);
    out = open_memstream(&buf, &len);
    assert_int_equal(kv_dump(db, out, "nonexistent", -1), KV_INVALID);
    fclose(out);
    free(buf);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

static void test_none_mode_reads_its_buffer(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-none");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "buffer_size=64K", NULL), KV_OK);
    put_n(db, 0, 100, 1); /* all in the user-space buffer */
    for (int i = 0; i < 100; i++)
        expect(db, i, 1);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 100);
    kv_iter_free(it);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_open(dir, KV_DURABILITY_NONE, NULL, &db, NULL), KV_OK);
    for (int i = 0; i < 100; i++)
        expect(db, i, 1);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* ---- merges while writers run ---- */

typedef struct writer_arg {
    kv_db *db;
    int base;     /* keys base .. base+99 */
    int ver[100]; /* final version per key, -1 deleted */
    kv_status err;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *w = p;
    tu_rng r = {(uint64_t)w->base + 1};
    for (int i = 0; i < 100; i++)
        w->ver[i] = -1;
    for (int n = 0; n < 3000 && w->err == KV_OK; n++) {
        int i = (int)tu_below(&r, 100);
        char k[16], v[VLEN];
        size_t kl = key_of(w->base + i, k);
        if (tu_below(&r, 5) == 0) {
            w->err = kv_delete(w->db, k, kl);
            w->ver[i] = -1;
        } else {
            w->err = kv_put(w->db, k, kl, v, val_of(w->base + i, n, v));
            w->ver[i] = n;
        }
    }
    return NULL;
}

static void test_merge_concurrent_with_writers(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bc-conc");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_OS, NULL, &db, "file_size=8K", "merge=manual", NULL), KV_OK);
    writer_arg w[2] = {{.db = db, .base = 0}, {.db = db, .base = 1000}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    int merges = 0;
    for (int round = 0; round < 40; round++) {
        assert_int_equal(kv_bitcask_merge(db), KV_OK);
        merges++;
        kv_iter *it;
        assert_int_equal(kv_iter_new(db, &it), KV_OK);
        for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
            ;
        assert_int_equal(kv_iter_status(it), KV_OK);
        kv_iter_free(it);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < 2; j++) {
            assert_int_equal(w[j].err, KV_OK);
            for (int i = 0; i < 100; i++)
                expect(db, w[j].base + i, w[j].ver[i]);
        }
        assert_int_equal(kv_check(db), KV_OK);
        assert_int_equal(kv_close(db), KV_OK);
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "merge=manual", NULL), KV_OK);
    }
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_hints_reopen),
        cmocka_unit_test(test_manual_merge_reclaims_space),
        cmocka_unit_test(test_auto_merge_runs_in_background),
        cmocka_unit_test(test_merge_does_not_resurrect_deleted_key),
        cmocka_unit_test(test_damaged_hint_falls_back_to_scan),
        cmocka_unit_test(test_open_removes_orphans),
        cmocka_unit_test(test_damaged_manifest_is_corruption),
        cmocka_unit_test(test_zero_length_newest_data_file),
        cmocka_unit_test(test_bit_flip_in_data_file_is_corruption),
        cmocka_unit_test(test_torn_tail_is_cut_at_open),
        cmocka_unit_test(test_torn_tail_cut_is_durable),
        cmocka_unit_test(test_torn_batch_is_all_or_nothing),
        cmocka_unit_test(test_damage_vouched_by_a_mark_is_corruption),
        cmocka_unit_test(test_torn_batch_keeping_its_end_opens),
        cmocka_unit_test(test_iterator_pins_files_across_merge),
        cmocka_unit_test(test_failed_fdatasync_poisons),
        cmocka_unit_test(test_keydir_incremental_growth),
        cmocka_unit_test(test_keydir_spare_table),
        cmocka_unit_test(test_engine_prepares_next_keydir_table),
        cmocka_unit_test(test_batched_load_matches_model),
        cmocka_unit_test(test_prefault_keeps_contents),
        cmocka_unit_test(test_startup_prefaults_keydir),
        cmocka_unit_test(test_dump_prints_every_file),
        cmocka_unit_test(test_none_mode_reads_its_buffer),
        cmocka_unit_test(test_merge_concurrent_with_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
