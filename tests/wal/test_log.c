/* Unit tests of the segmented log (wal/wal_log.h): round trip across segments, torn tail cut
 * off and made durable, damage before valid records -> KV_CORRUPTION naming segment and offset,
 * point-in-time recovery, LSN gaps, truncation (whole segments and the mixed-segment rewrite, an
 * interrupted rewrite), group commit, poisoning. */
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
#include "wal_log_int.h"
#include "wal_test_util.h"

typedef struct env {
    char *dir;
    kv_fs *fs;
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    e->dir = tu_mkdtemp("wal-log");
    e->fs = kv_fs_posix();
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    tu_rmtree(e->dir);
    free(e->dir);
    kv_fs_destroy(e->fs);
    free(e);
    return 0;
}

static wal_log_options small_opts(void)
{
    wal_log_options o;
    wal_log_options_init(&o);
    o.segment_size = 4096;
    return o;
}

/* Writes batches 0..nb-1 (batch b has 1 + b % 4 records); returns commit LSNs in lsns. */
static void write_batches(env *e, wal_log_options *o, uint64_t from, uint64_t nb, uint64_t *lsns)
{
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = from; b < from + nb; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, lsns ? &lsns[b] : NULL), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
}

/* Like write_batches, but the writer dies instead of closing (a process crash: everything it
 * wrote is kept, nothing more): the log ends with the last batch, no close mark after it. With
 * sync, a wal_log_sync runs just before the crash. */
static void write_batches_killed(env *e, wal_log_options *o, uint64_t from, uint64_t nb, bool sync)
{
    char *scratch = tu_mkdtemp("wal-log-killed");
    kv_fs *ff = kv_faultfs_new(scratch);
    assert_non_null(ff);
    kv_faultfs_set_real_sync(ff, false);
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = from; b < from + nb; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, NULL), KV_OK);
    if (sync)
        assert_int_equal(wal_log_sync(l), KV_OK);
    kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
    assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_KEEP, 1), KV_OK);
    wal_log_close(l); /* fails: the process is gone */
    kv_fs_destroy(ff);
    tu_rmtree(scratch);
    free(scratch);
}

static kv_status reopen(env *e, wal_log_options *o, wt_replay *r)
{
    wal_log *l;
    kv_status s = wal_log_open(e->fs, e->dir, o, wt_collect, r, &l);
    if (s == KV_OK) {
        if (wal_log_verify(l) != KV_OK)
            fail_msg("wal_log_verify after the open: %s", kv_errmsg());
        assert_int_equal(wal_log_close(l), KV_OK);
    }
    return s;
}

static void test_round_trip(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    uint64_t lsns[200];
    write_batches(e, &o, 0, 200, lsns);
    size_t nseg;
    char **segs = wt_segments(e->dir, &nseg);
    assert_true(nseg > 5);
    assert_string_equal(segs[0], "00000000000000000001.wal");
    wt_names_free(segs, nseg);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 200);
    for (uint64_t b = 0; b < 200; b++) {
        assert_int_equal(r.b[b].commit_lsn, lsns[b]);
        wt_expect_batch(&r.b[b], b, 1 + b % 4);
    }
    wt_replay_free(&r);
    /* Appending after reopen continues the LSN sequence. */
    uint64_t more[210];
    write_batches(e, &o, 200, 10, more);
    assert_int_equal(more[200], lsns[199] + 2);
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 210);
    wt_replay_free(&r);
}

static void test_every_durability_mode(void **state)
{
    env *e = *state;
    const char *modes[] = {"none", "os", "interval:5", "sync"};
    uint64_t total = 0;
    for (int m = 0; m < 4; m++) {
        wal_log_options o = small_opts();
        assert_int_equal(kv_durability_parse(modes[m], &o.durability), KV_OK);
        write_batches(e, &o, total, 30, NULL);
        total += 30;
        wt_replay r = {0};
        assert_int_equal(reopen(e, &o, &r), KV_OK);
        assert_int_equal(r.n, total);
        for (uint64_t b = 0; b < total; b++)
            wt_expect_batch(&r.b[b], b, 1 + b % 4);
        wt_replay_free(&r);
    }
}

static char *last_segment(env *e)
{
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    char *p = wt_join(e->dir, segs[n - 1]);
    wt_names_free(segs, n);
    return p;
}

static void test_torn_tail_cut_and_durable(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    write_batches_killed(e, &o, 0, 10, false);
    char *seg = last_segment(e);
    uint64_t size = wt_file_size(seg);
    wt_truncate(seg, size - 3); /* the last record is incomplete */
    /* Open through faultfs, then lose everything not synced: the cut must survive. */
    char *scratch = tu_mkdtemp("wal-log-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    wt_replay r = {0};
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, &o, wt_collect, &r, &l), KV_OK);
    assert_int_equal(r.n, 9);
    wal_log_stats st;
    wal_log_get_stats(l, &st);
    assert_true(st.torn_bytes_cut > 0);
    uint64_t cut = size - st.torn_bytes_cut - 3;
    kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
    assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_LOSE, 1), KV_OK);
    wal_log_close(l);
    kv_fs_destroy(ff);
    assert_int_equal(wt_file_size(seg), cut);
    wt_replay_free(&r);
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 9);
    wt_replay_free(&r);
    tu_rmtree(scratch);
    free(scratch);
    free(seg);
}

/* A CRC-failing last record that no sync mark vouches for (the writer died before any sync) is
 * a torn write: cut. After a clean close (fdatasync, mark, fdatasync) the same damage is under
 * the close mark: corruption, which point-in-time recovery cuts. */
static void test_crc_failing_last_record_cut(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    write_batches_killed(e, &o, 0, 10, false);
    char *seg = last_segment(e);
    uint64_t size = wt_file_size(seg);
    wt_flip_byte(seg, size - 1, 0x40); /* the last COMMIT's count */
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 9);
    wt_replay_free(&r);
    /* The reopen cut the batch and closed cleanly; write one more, close, flip its COMMIT. */
    write_batches(e, &o, 9, 1, NULL);
    size = wt_file_size(seg);
    wt_flip_byte(seg, size - WAL_MARK_SIZE - 1, 0x40);
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "sync mark"));
    wt_replay_free(&r);
    o.recovery = WAL_RECOVER_POINT_IN_TIME;
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 9);
    wt_replay_free(&r);
    free(seg);
}

static void test_uncommitted_tail_cut(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    write_batches(e, &o, 0, 5, NULL);
    char *seg = last_segment(e);
    uint64_t size = wt_file_size(seg);
    /* Cut exactly the close mark and the last COMMIT: complete PUTs without their COMMIT. */
    wt_truncate(seg, size - WAL_MARK_SIZE - WAL_COMMIT_SIZE);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 4);
    wt_replay_free(&r);
    /* Appending after the cut must not glue the orphans to the next batch. */
    write_batches(e, &o, 4, 2, NULL);
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 6);
    for (uint64_t b = 0; b < 6; b++)
        wt_expect_batch(&r.b[b], b, 1 + b % 4);
    wt_replay_free(&r);
    free(seg);
}

/* Offset of the record with LSN lsn in the segment file at path (marks stepped over). */
static uint64_t record_offset(const char *path, uint64_t lsn)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint64_t off = WAL_SEG_HEADER_SIZE;
    for (;;) {
        uint8_t h[WAL_REC_OVERHEAD];
        assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
        assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
        if (h[12] != WAL_REC_MARK && kv_get_u64(h + KV_RECLOG_FRAME) == lsn)
            break;
        off += KV_RECLOG_FRAME + kv_get_u32(h + 8);
    }
    fclose(f);
    return off;
}

/* A power loss while the last, never-acknowledged batch was being written tears that write at
 * any byte (LazyFS, faultfs's torn-bytes policy): it may keep the end of the batch, its COMMIT
 * say, after bytes that went back to zeros. Nothing acknowledged is lost, so every recovery
 * option must open the log with the synced batches, and the in-flight one whole or not at all. */
static void test_torn_bytes_in_flight_batch_opens(void **state)
{
    env *e = *state;
    int kept_commit = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        char *dir = tu_mkdtemp("wal-torn-bytes");
        char *scratch = tu_mkdtemp("wal-torn-bytes-scratch");
        kv_fs *ff = kv_faultfs_new(scratch);
        assert_non_null(ff);
        kv_faultfs_set_real_sync(ff, false);
        wal_log_options o;
        wal_log_options_init(&o);
        o.durability.kind = seed % 2 ? KV_DURABILITY_SYNC : KV_DURABILITY_OS;
        wal_log *l;
        assert_int_equal(wal_log_open(ff, dir, &o, NULL, NULL, &l), KV_OK);
        for (uint64_t b = 0; b < 6; b++)
            assert_int_equal(wt_append(l, b, 1 + b % 4, NULL), KV_OK);
        assert_int_equal(wal_log_sync(l), KV_OK);
        char *seg = last_segment(&(env){dir, NULL});
        uint64_t durable = wt_file_size(seg);
        /* The in-flight batch: its write happens, the power goes before its fdatasync. */
        kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 2);
        kv_status s = wt_append(l, 6, 3, NULL);
        if (o.durability.kind == KV_DURABILITY_SYNC)
            assert_int_equal(s, KV_IO);
        else
            kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
        uint64_t written = wt_file_size(seg);
        assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_TORN_BYTES, seed), KV_OK);
        wal_log_close(l);
        kv_fs_destroy(ff);
        /* Is the last record (the COMMIT) intact while something before it was lost? */
        uint64_t now = wt_file_size(seg);
        if (now == written) {
            FILE *f = fopen(seg, "rb");
            uint8_t *buf = malloc(written);
            assert_int_equal(fread(buf, 1, written, f), written);
            fclose(f);
            bool zero = false;
            for (uint64_t i = durable; i + 40 < written && !zero; i++)
                zero = buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 0 && buf[i + 3] == 0;
            kept_commit += zero;
            free(buf);
        }
        /* Read-only first (it must not cut), then strict and point-in-time. */
        for (int mode = 0; mode < 3; mode++) {
            o.read_only = mode == 0;
            o.recovery = mode == 2 ? WAL_RECOVER_POINT_IN_TIME : WAL_RECOVER_STRICT;
            wt_replay r = {0};
            s = reopen(&(env){dir, e->fs}, &o, &r);
            if (s != KV_OK)
                fail_msg("seed %llu, recovery %s%s: %s", (unsigned long long)seed,
                         mode == 2 ? "point_in_time" : "strict", o.read_only ? ", read-only" : "",
                         kv_errmsg());
            assert_true(r.n == 6 || r.n == 7);
            for (size_t b = 0; b < r.n; b++)
                wt_expect_batch(&r.b[b], b, 1 + b % 4);
            wt_replay_free(&r);
        }
        o.read_only = false;
        free(seg);
        tu_rmtree(dir);
        tu_rmtree(scratch);
        free(dir);
        free(scratch);
    }
    /* The sweep reached the case at hand: zeros inside the batch, its last bytes kept. */
    assert_true(kept_commit > 0);
}

/* Scans the segment file at path as the newest segment; returns its marks and records. */
static wal_scan_result scan_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint64_t n = wt_file_size(path);
    uint8_t *buf = malloc(n + 1);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    wal_scan_result res;
    assert_int_equal(wal_scan_image(path, buf, n, false, false, 0, NULL, NULL, &res), KV_OK);
    free(buf);
    return res;
}

/* In `sync` mode every group after the first starts with a sync mark naming what the previous
 * group's fdatasync made durable, inside the group's own write: one fdatasync per commit, no
 * more. A clean close adds fdatasync, mark, fdatasync. */
static void test_marks_cost_no_fdatasync(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    o.durability.kind = KV_DURABILITY_SYNC;
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    uint64_t syncs = atomic_load(&e->fs->counters.fdatasyncs);
    uint64_t writes = atomic_load(&e->fs->counters.bytes_written);
    for (uint64_t b = 0; b < 50; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, NULL), KV_OK);
    assert_int_equal(atomic_load(&e->fs->counters.fdatasyncs) - syncs, 50);
    char *seg = last_segment(e);
    wal_scan_result res = scan_file(seg);
    assert_int_equal(res.marks, 49);
    assert_int_equal(res.end,
                     WAL_SEG_HEADER_SIZE + atomic_load(&e->fs->counters.bytes_written) - writes);
    assert_int_equal(wal_log_close(l), KV_OK);
    assert_int_equal(atomic_load(&e->fs->counters.fdatasyncs) - syncs, 51);
    res = scan_file(seg);
    assert_int_equal(res.marks, 50);
    assert_int_equal(res.durable, res.end - WAL_MARK_SIZE); /* the close mark names the rest */
    /* Opening and closing without a write writes nothing. */
    uint64_t size = wt_file_size(seg);
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
    assert_int_equal(wt_file_size(seg), size);
    free(seg);
}

/* Damage to a batch that a later mark says was durable cannot be a torn write: strict recovery
 * (read-only too) refuses it naming file and offset, point-in-time cuts the log before it. */
static void test_damage_vouched_by_mark_is_corruption(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    o.durability.kind = KV_DURABILITY_SYNC;
    write_batches_killed(e, &o, 0, 12, false);
    char *seg = last_segment(e);
    uint64_t off = record_offset(seg, 8); /* in batch 2 (batches: LSNs 1-2, 3-5, 6-9, ...) */
    wt_flip_byte(seg, off + WAL_REC_OVERHEAD - 1, 0x10); /* its LSN */
    char want[64];
    snprintf(want, sizeof want, "offset %llu:", (unsigned long long)off);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), want));
    assert_non_null(strstr(kv_errmsg(), "sync mark"));
    wt_replay_free(&r);
    o.read_only = true;
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, wt_collect, &r, &l), KV_CORRUPTION);
    wt_replay_free(&r);
    o.read_only = false;
    o.recovery = WAL_RECOVER_POINT_IN_TIME;
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 2);
    wt_expect_batch(&r.b[1], 1, 2);
    wt_replay_free(&r);
    free(seg);
}

/* Damage after the last mark is what a power loss may leave of writes never made durable: a
 * torn tail, cut under every recovery option. Here batches 0-5 were synced, 6-9 only written
 * (`os`), and the writer died; batch 7 is damaged: 0-6 come back. */
static void test_damage_after_last_mark_is_torn(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    char *scratch = tu_mkdtemp("wal-log-killed");
    kv_fs *ff = kv_faultfs_new(scratch);
    kv_faultfs_set_real_sync(ff, false);
    wal_log *l;
    uint64_t lsns[10];
    assert_int_equal(wal_log_open(ff, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 10; b++) {
        assert_int_equal(wt_append(l, b, 1 + b % 4, &lsns[b]), KV_OK);
        if (b == 5)
            assert_int_equal(wal_log_sync(l), KV_OK);
    }
    kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
    assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_KEEP, 1), KV_OK);
    wal_log_close(l);
    kv_fs_destroy(ff);
    tu_rmtree(scratch);
    free(scratch);
    char *seg = last_segment(e);
    assert_int_equal(scan_file(seg).marks, 1); /* at the head of batch 6 */
    wt_flip_byte(seg, record_offset(seg, lsns[6] + 1) + WAL_REC_OVERHEAD, 0x01);
    for (int mode = 0; mode < 2; mode++) {
        o.recovery = mode ? WAL_RECOVER_POINT_IN_TIME : WAL_RECOVER_STRICT;
        wt_replay r = {0};
        assert_int_equal(reopen(e, &o, &r), KV_OK);
        assert_int_equal(r.n, 7);
        for (size_t b = 0; b < r.n; b++)
            wt_expect_batch(&r.b[b], b, 1 + b % 4);
        wt_replay_free(&r);
    }
    free(seg);
}

/* A read-only open recovers in memory: the torn tail stays on disk, a stray .tmp and a superseded
 * original stay too, nothing is written; it replays what a writable open then replays, refuses
 * appends and truncations, and its verify and dump work on the files as they are. */
static void test_read_only_open_changes_nothing(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    uint64_t lsns[60];
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 60; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, &lsns[b]), KV_OK);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    char *old = wt_join(e->dir, segs[0]), *keep = wt_join(e->dir, "saved");
    wt_copy_file(old, keep);
    uint64_t f1;
    assert_true(wal_seg_name_parse(segs[1], &f1));
    uint64_t cut = 0;
    for (int b = 0; b < 60; b++)
        if (lsns[b] < f1 - 1)
            cut = lsns[b];
    assert_int_equal(wal_log_truncate(l, cut), KV_OK); /* rewrites segment 0 */
    assert_int_equal(wal_log_close(l), KV_OK);
    assert_int_equal(rename(keep, old), 0); /* the original back beside its rewrite */
    char *seg = last_segment(e);
    wt_truncate(seg, wt_file_size(seg) - WAL_MARK_SIZE - 5); /* a torn last batch */
    char *tmp = wt_join(e->dir, "00000000000000099999.wal.tmp");
    wt_copy_file(seg, tmp);
    char *before = tu_dir_state(e->dir);
    o.read_only = true;
    wt_replay ro = {0};
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, wt_collect, &ro, &l), KV_OK);
    assert_int_equal(wal_log_verify(l), KV_OK);
    FILE *dev = fopen("/dev/null", "w");
    bool found;
    assert_int_equal(wal_log_dump(l, dev, NULL, NULL, &found), KV_OK);
    fclose(dev);
    assert_int_equal(wt_append(l, 99, 1, NULL), KV_INVALID);
    assert_int_equal(wal_log_truncate(l, lsns[59 - 1]), KV_INVALID);
    assert_int_equal(wal_log_sync(l), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
    char *after = tu_dir_state(e->dir);
    assert_string_equal(before, after);
    /* The writable open replays the same, and then does the cleanup. */
    o.read_only = false;
    wt_replay rw = {0};
    assert_int_equal(reopen(e, &o, &rw), KV_OK);
    assert_int_equal(ro.n, rw.n);
    for (size_t i = 0; i < ro.n; i++) {
        assert_int_equal(ro.b[i].commit_lsn, rw.b[i].commit_lsn);
        assert_int_equal(ro.b[i].n, rw.b[i].n);
    }
    assert_int_equal(ro.b[ro.n - 1].commit_lsn, lsns[58]); /* the torn batch 59 is not there */
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(access(old, F_OK), -1);
    wt_replay_free(&ro);
    wt_replay_free(&rw);
    free(before);
    free(after);
    free(tmp);
    free(seg);
    free(old);
    free(keep);
    wt_names_free(segs, n);
}

/* A truncation rewrites the live records of a segment without the old file's marks (they name
 * its offsets) and ends the new file with a mark of its own, so that damage to a copied record
 * is corruption, not a torn tail. */
static void test_rewrite_ends_with_mark(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    o.durability.kind = KV_DURABILITY_SYNC;
    uint64_t lsns[20];
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 20; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, &lsns[b]), KV_OK);
    assert_int_equal(wal_log_truncate(l, lsns[9]), KV_OK);
    char *seg = last_segment(e);
    wal_scan_result res = scan_file(seg);
    assert_int_equal(res.marks, 1);
    assert_int_equal(res.durable, res.end - WAL_MARK_SIZE);
    assert_int_equal(res.hdr.first_lsn, lsns[9] + 1);
    /* Appends go on after the rewrite's mark; a killed writer leaves them unvouched. */
    assert_int_equal(wt_append(l, 20, 1, NULL), KV_OK);
    assert_int_equal(wal_log_sync(l), KV_OK);
    wal_log_poison(l, "test: the process dies here");
    assert_int_equal(wal_log_close(l), KV_POISONED); /* no close mark */
    wt_flip_byte(seg, record_offset(seg, lsns[12]) + WAL_REC_OVERHEAD - 2, 0x04);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "sync mark"));
    wt_replay_free(&r);
    free(seg);
}

/* Every segment but the newest was made durable whole before the next began: even its last
 * record failing its CRC is corruption, never a torn tail. */
static void test_older_segment_is_sealed(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    write_batches_killed(e, &o, 0, 60, false);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    char *p = wt_join(e->dir, segs[n - 2]);
    wt_truncate(p, wt_file_size(p) - 1); /* cut inside its last COMMIT */
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), segs[n - 2]));
    assert_non_null(strstr(kv_errmsg(), "made durable whole"));
    wt_replay_free(&r);
    free(p);
    wt_names_free(segs, n);
}

/* Opening dir's log, strict writable and read-only, is KV_CORRUPTION whose message names `name`
 * and `also`. */
static void expect_log_refused(env *e, const char *name, const char *also)
{
    for (int ro = 0; ro < 2; ro++) {
        wal_log_options o = small_opts();
        o.read_only = ro;
        wt_replay r = {0};
        assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
        if (!strstr(kv_errmsg(), name) || !strstr(kv_errmsg(), also))
            fail_msg("\"%s\" does not name %s and %s", kv_errmsg(), name, also);
        wt_replay_free(&r);
    }
}

/* Every segment but the newest ends with a NEXT record naming its successor, so the newest
 * segment deleted (after a clean close, or after a sync with the writer killed) is
 * KV_CORRUPTION naming the deleted file, never a log that silently ends one segment earlier.
 * Point-in-time opens with the batches before it and cuts the NEXT, after which the strict open
 * works again. */
static void test_deleted_newest_segment_is_corruption(void **state)
{
    env *e = *state;
    for (int killed = 0; killed < 2; killed++) {
        wal_log_options o = small_opts();
        if (killed)
            write_batches_killed(e, &o, 0, 60, true);
        else
            write_batches(e, &o, 0, 60, NULL);
        size_t n;
        char **segs = wt_segments(e->dir, &n);
        assert_true(n >= 3);
        char *p = wt_join(e->dir, segs[n - 1]);
        assert_int_equal(remove(p), 0);
        expect_log_refused(e, segs[n - 1], "missing");
        expect_log_refused(e, segs[n - 2], "NEXT");
        /* Point-in-time: the batches of the other segments, and the log goes on. */
        wal_log_options o2 = small_opts();
        o2.recovery = WAL_RECOVER_POINT_IN_TIME;
        wt_replay r = {0};
        assert_int_equal(reopen(e, &o2, &r), KV_OK);
        assert_true(r.n > 0 && r.n < 60);
        for (size_t b = 0; b < r.n; b++)
            wt_expect_batch(&r.b[b], b, 1 + b % 4);
        size_t kept = r.n;
        wt_replay_free(&r);
        o2.recovery = WAL_RECOVER_STRICT;
        assert_int_equal(reopen(e, &o2, &r), KV_OK);
        assert_int_equal(r.n, kept);
        wt_replay_free(&r);
        free(p);
        wt_names_free(segs, n);
        tu_rmtree(e->dir);
        assert_int_equal(mkdir(e->dir, 0700), 0);
    }
}

/* A roll writes NEXT into the old segment only once the new segment is durable; a power loss in
 * between leaves the old segment without NEXT, or with a torn one, beside a new segment holding
 * only its header. Open accepts that (read-only: changing nothing), a writable open completes
 * the roll, and from then on the newest segment cannot vanish unnoticed. The same torn bytes
 * beside a newest segment that holds records are damage of a sealed segment. */
static void test_interrupted_roll_completed_at_open(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    write_batches(e, &o, 0, 60, NULL);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    char *old = wt_join(e->dir, segs[n - 2]), *newest = wt_join(e->dir, segs[n - 1]);
    uint64_t old_size = wt_file_size(old);
    char *keep = tu_mkdtemp("wal-log-keep"), *keep_new = wt_join(keep, "newest");
    wt_copy_file(newest, keep_new);
    /* Replay of the complete log: how many batches the older segments hold. */
    wt_replay all = {0};
    assert_int_equal(reopen(e, &o, &all), KV_OK);
    assert_int_equal(all.n, 60);
    for (int variant = 0; variant < 3; variant++) {
        /* 0: NEXT absent; 1: NEXT torn (cut after 10 of its bytes); 2: its bytes zeroed */
        wt_copy_file(keep_new, newest);
        wt_truncate(newest, WAL_SEG_HEADER_SIZE);
        if (variant == 0)
            wt_truncate(old, old_size - WAL_NEXT_SIZE);
        else if (variant == 1)
            wt_truncate(old, old_size - WAL_NEXT_SIZE + 10);
        else
            for (uint64_t b = old_size - WAL_NEXT_SIZE; b < old_size; b++)
                wt_flip_byte(old, b, 0xff);
        /* Read-only: opens, changes nothing. */
        char *before = tu_dir_state(e->dir);
        wal_log_options ro = small_opts();
        ro.read_only = true;
        wt_replay r = {0};
        assert_int_equal(reopen(e, &ro, &r), KV_OK);
        char *after = tu_dir_state(e->dir);
        assert_string_equal(before, after);
        free(before);
        free(after);
        size_t in_old = r.n;
        assert_true(in_old > 0 && in_old < 60);
        wt_replay_free(&r);
        /* Writable: opens with the same batches and completes the roll. */
        assert_int_equal(reopen(e, &o, &r), KV_OK);
        assert_int_equal(r.n, in_old);
        wt_replay_free(&r);
        assert_int_equal(wt_file_size(old), old_size);
        /* Now the deletion of the (empty) newest segment is told. */
        char *save = wt_join(keep, "empty");
        wt_copy_file(newest, save);
        assert_int_equal(remove(newest), 0);
        expect_log_refused(e, segs[n - 1], "missing");
        wt_copy_file(save, newest);
        free(save);
        /* The same bytes torn while the newest segment holds records: damage. */
        wt_copy_file(keep_new, newest);
        wt_truncate(old, old_size - WAL_NEXT_SIZE + 10);
        expect_log_refused(e, segs[n - 2], "made durable whole");
        wt_truncate(old, old_size - WAL_NEXT_SIZE);
        expect_log_refused(e, segs[n - 2], segs[n - 2]);
        /* back to the complete log for the next variant */
        wt_truncate(newest, WAL_SEG_HEADER_SIZE);
        assert_int_equal(reopen(e, &o, &r), KV_OK); /* completes the roll again */
        wt_replay_free(&r);
        assert_int_equal(wt_file_size(old), old_size);
    }
    wt_replay_free(&all);
    tu_rmtree(keep);
    free(keep);
    free(keep_new);
    free(old);
    free(newest);
    wt_names_free(segs, n);
}

/* Rewrites the record at off of the segment at path with fix applied to its bytes, then
 * re-seals its reclog CRCs with the log's seed: a record that passes every check of the framing
 * but not the log's own. */
static void reseal_record(const char *path, uint64_t off, void (*fix)(uint8_t *rec))
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t hdr[WAL_SEG_HEADER_SIZE], rec[4096];
    assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    assert_int_equal(fread(rec, 1, KV_RECLOG_FRAME, f), KV_RECLOG_FRAME);
    uint32_t len = kv_get_u32(rec + 8);
    assert_true(len + KV_RECLOG_FRAME <= sizeof rec);
    assert_int_equal(fread(rec + KV_RECLOG_FRAME, 1, len, f), len);
    fix(rec);
    kv_reclog_seal(rec, wal_seed(kv_get_u64(hdr + 16)), rec[12], len);
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    assert_int_equal(fwrite(rec, 1, KV_RECLOG_FRAME + len, f), KV_RECLOG_FRAME + len);
    fclose(f);
}

static void bump_lsn(uint8_t *rec)
{
    kv_put_u64(rec + KV_RECLOG_FRAME, kv_get_u64(rec + KV_RECLOG_FRAME) + 1);
}

static void bump_count(uint8_t *rec)
{
    kv_put_u32(rec + WAL_REC_OVERHEAD, kv_get_u32(rec + WAL_REC_OVERHEAD) + 1);
}

/* The log's own checks behind reclog's CRCs: a record whose CRCs are right but whose LSN breaks
 * the sequence, or a COMMIT that counts the wrong number of records, is corruption naming its
 * offset (a crash cannot make a valid record of this log's salt hold the wrong LSN). */
static void test_valid_record_wrong_lsn_or_count(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    uint64_t lsns[10];
    for (int which = 0; which < 2; which++) {
        write_batches(e, &o, 0, 10, lsns);
        char *seg = last_segment(e);
        uint64_t off = record_offset(seg, which ? lsns[4] : lsns[4] - 1);
        reseal_record(seg, off, which ? bump_count : bump_lsn);
        char want[64];
        snprintf(want, sizeof want, "offset %llu:", (unsigned long long)off);
        wt_replay r = {0};
        assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), want));
        assert_non_null(strstr(kv_errmsg(), which ? "COMMIT does not match" : "out of sequence"));
        wt_replay_free(&r);
        o.recovery = WAL_RECOVER_POINT_IN_TIME;
        assert_int_equal(reopen(e, &o, &r), KV_OK);
        assert_int_equal(r.n, 4);
        wt_replay_free(&r);
        o.recovery = WAL_RECOVER_STRICT;
        free(seg);
        tu_rmtree(e->dir);
        free(e->dir);
        e->dir = tu_mkdtemp("wal-log");
    }
}

static void test_bad_record_before_good_is_corruption(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    uint64_t lsns[20];
    write_batches(e, &o, 0, 20, lsns);
    char *seg = last_segment(e);
    uint64_t off = record_offset(seg, lsns[4] + 1); /* first record of batch 5 */
    wt_flip_byte(seg, off + WAL_REC_OVERHEAD, 0x01);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    char want[64];
    snprintf(want, sizeof want, "offset %llu:", (unsigned long long)off);
    assert_non_null(strstr(kv_errmsg(), "00000000000000000001.wal"));
    assert_non_null(strstr(kv_errmsg(), want));
    wt_replay_free(&r);
    /* Point-in-time recovery keeps batches 0..4 and cuts the rest durably. */
    o.recovery = WAL_RECOVER_POINT_IN_TIME;
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 5);
    wt_replay_free(&r);
    o.recovery = WAL_RECOVER_STRICT;
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 5);
    wt_replay_free(&r);
    free(seg);
}

static void test_bad_length_before_good_is_corruption(void **state)
{
    env *e = *state;
    wal_log_options o;
    wal_log_options_init(&o);
    uint64_t lsns[20];
    write_batches(e, &o, 0, 20, lsns);
    char *seg = last_segment(e);
    /* A flipped bit makes a record's length reach past the end of the file: it looks cut short,
     * but the close mark after it says the log was durable past it: damage, not a torn tail. */
    uint64_t off = record_offset(seg, lsns[2] + 1);
    wt_flip_byte(seg, off + 9, 0x20); /* length += 8 KiB */
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    char want[64];
    snprintf(want, sizeof want, "offset %llu:", (unsigned long long)off);
    assert_non_null(strstr(kv_errmsg(), want));
    wt_replay_free(&r);
    free(seg);
}

static void test_bad_record_in_older_segment(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    uint64_t lsns[100];
    write_batches(e, &o, 0, 100, lsns);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    char *p = wt_join(e->dir, segs[1]);
    uint64_t size = wt_file_size(p);
    /* Even the last record of a non-newest segment is damage in the middle. */
    wt_flip_byte(p, size - 2, 0x10);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), segs[1]));
    wt_replay_free(&r);
    o.recovery = WAL_RECOVER_POINT_IN_TIME;
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    size_t n2;
    char **segs2 = wt_segments(e->dir, &n2);
    assert_int_equal(n2, 2);
    wt_names_free(segs2, n2);
    assert_true(r.n > 0 && r.n < 100);
    for (size_t b = 0; b < r.n; b++)
        wt_expect_batch(&r.b[b], b, 1 + b % 4);
    wt_replay_free(&r);
    free(p);
    wt_names_free(segs, n);
}

static void test_lsn_gap_between_segments(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    write_batches(e, &o, 0, 100, NULL);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    char *p = wt_join(e->dir, segs[1]);
    assert_int_equal(remove(p), 0);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "gap"));
    assert_non_null(strstr(kv_errmsg(), segs[0]));
    assert_non_null(strstr(kv_errmsg(), segs[1])); /* the missing one, named */
    assert_non_null(strstr(kv_errmsg(), "missing"));
    wt_replay_free(&r);
    free(p);
    wt_names_free(segs, n);
}

static void test_header_damage(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    write_batches(e, &o, 0, 50, NULL);
    char *seg = last_segment(e);
    wt_flip_byte(seg, 3, 0x20); /* magic */
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "offset 0"));
    wt_replay_free(&r);
    free(seg);
}

static void test_truncate(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    uint64_t lsns[120];
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 120; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, &lsns[b]), KV_OK);
    wal_log_stats st;
    wal_log_get_stats(l, &st);
    uint64_t segs_before = st.segments;
    /* A non-commit LSN is refused and nothing changes. */
    assert_int_equal(wal_log_truncate(l, lsns[60] - 1), KV_INVALID);
    assert_int_equal(wal_log_truncate(l, lsns[119] + 1), KV_INVALID);
    assert_int_equal(wal_log_truncate(l, lsns[60]), KV_OK);
    wal_log_get_stats(l, &st);
    assert_true(st.segments < segs_before);
    assert_int_equal(st.first_lsn, lsns[60] + 1);
    assert_int_equal(st.rewrites, 1);
    assert_int_equal(wal_log_verify(l), KV_OK);
    char name[32];
    wal_seg_name(name, lsns[60] + 1);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_string_equal(segs[0], name);
    wt_names_free(segs, n);
    /* Truncating everything rewrites the active segment empty; appends continue. */
    assert_int_equal(wal_log_truncate(l, lsns[119]), KV_OK);
    wal_log_get_stats(l, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.first_lsn, lsns[119] + 1);
    assert_int_equal(wt_append(l, 120, 2, NULL), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 1);
    wt_expect_batch(&r.b[0], 120, 2);
    wt_replay_free(&r);
}

static void test_interrupted_rewrite(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    uint64_t lsns[60];
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 60; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, &lsns[b]), KV_OK);
    /* Pick a batch end in the middle of a non-newest segment (one with records after it). */
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    assert_true(n >= 3);
    uint64_t cut = 0;
    size_t seg = 0;
    for (size_t i = 1; i + 1 < n && !cut; i++) {
        uint64_t fa, fb;
        assert_true(wal_seg_name_parse(segs[i], &fa));
        assert_true(wal_seg_name_parse(segs[i + 1], &fb));
        for (int b = 0; b < 60; b++)
            if (lsns[b] >= fa && lsns[b] < fb - 1) {
                cut = lsns[b];
                seg = i;
            }
    }
    assert_true(cut > 0);
    char *old = wt_join(e->dir, segs[seg]);
    char *keep = wt_join(e->dir, "saved");
    wt_copy_file(old, keep);
    assert_int_equal(wal_log_truncate(l, cut), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
    /* As if the crash came between the rename of the new file and the unlink of the old. */
    assert_int_equal(rename(keep, old), 0);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    uint64_t b0 = 0;
    while (lsns[b0] <= cut)
        b0++;
    assert_int_equal(r.n, 60 - b0);
    for (size_t i = 0; i < r.n; i++)
        wt_expect_batch(&r.b[i], b0 + i, 1 + (b0 + i) % 4);
    wt_replay_free(&r);
    size_t n2;
    char **segs2 = wt_segments(e->dir, &n2);
    assert_int_equal(n2, n - seg); /* the superseded original is gone */
    wt_names_free(segs2, n2);
    wt_names_free(segs, n);
    free(old);
    free(keep);
}

/* One run of test_crash_between_unlinks: a fresh log of 120 batches on faultfs, a truncation up
 * to the last commit of the third segment (three whole segments obsolete), a power loss with
 * policy pol at operation crash_at of that truncation (0: no crash), then a posix reopen.
 * Returns how many of the three obsolete segments are gone, after checking that the reopened log
 * is a contiguous suffix holding every batch after the cut. */
static size_t truncate_crash_once(uint64_t crash_at, kv_crash_policy pol, bool *crashed)
{
    char *dir = tu_mkdtemp("wal-trunc-crash");
    char *scratch = tu_mkdtemp("wal-trunc-scratch");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    wal_log_options o = small_opts();
    uint64_t lsns[120];
    wal_log *l;
    assert_int_equal(wal_log_open(fs, dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 120; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, &lsns[b]), KV_OK);
    assert_int_equal(wal_log_sync(l), KV_OK);
    size_t n;
    char **segs = wt_segments(dir, &n);
    assert_true(n >= 5);
    uint64_t f3;
    assert_true(wal_seg_name_parse(segs[3], &f3));
    uint64_t cut = f3 - 1; /* the last record of segment 2: a COMMIT (batches never span) */
    size_t b0 = 0;
    while (b0 < 120 && lsns[b0] <= cut)
        b0++;
    assert_true(b0 > 0 && lsns[b0 - 1] == cut);
    if (crash_at)
        kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + crash_at);
    kv_status s = wal_log_truncate(l, cut);
    *crashed = kv_faultfs_crashed(fs);
    assert_int_equal(s, *crashed ? KV_IO : KV_OK);
    if (!*crashed)
        kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    assert_int_equal(kv_faultfs_crash(fs, pol, 1), KV_OK);
    wal_log_close(l); /* fails (the fs is dead) but frees the handle */
    kv_fs_destroy(fs);

    /* The survivors must be a contiguous suffix (open refuses an LSN gap) that still holds
     * every batch after the cut, in order. */
    kv_fs *px = kv_fs_posix();
    wt_replay r = {0};
    assert_int_equal(wal_log_open(px, dir, &o, wt_collect, &r, &l), KV_OK);
    assert_int_equal(wal_log_verify(l), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
    assert_true(r.n >= 120 - b0);
    uint64_t first = 120 - r.n;
    for (size_t i = 0; i < r.n; i++)
        wt_expect_batch(&r.b[i], first + i, 1 + (first + i) % 4);
    wt_replay_free(&r);
    size_t n2;
    char **segs2 = wt_segments(dir, &n2);
    size_t gone = 0;
    while (gone < 3 && gone < n2 && strcmp(segs2[0], segs[gone]) != 0)
        gone++;
    assert_true(gone < n2 && !strcmp(segs2[0], segs[gone]));
    assert_int_equal(n2, n - gone); /* nothing else disappeared */
    wt_names_free(segs2, n2);
    wt_names_free(segs, n);
    kv_fs_destroy(px);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
    return gone;
}

/* A truncation unlinks wholly obsolete segments oldest-first and fsyncs the directory once. A
 * process crash between two of those unlinks (everything done so far is kept) must leave a
 * contiguous suffix: the oldest segment gone, the next ones present. Unlinking newest-first
 * would leave a hole that open reports as an LSN gap. Each operation index of the truncation is
 * tried (KEEP, then LOSE: the unlinks were never made durable, so all three come back); at least
 * one crash must fall between two unlinks. */
static void test_crash_between_unlinks(void **state)
{
    (void)state;
    bool crashed = true, between = false;
    for (uint64_t at = 1; crashed; at++) {
        size_t gone = truncate_crash_once(at, KV_CRASH_KEEP, &crashed);
        if (crashed && gone > 0 && gone < 3)
            between = true;
        if (crashed)
            assert_int_equal(truncate_crash_once(at, KV_CRASH_LOSE, &crashed), 0);
        assert_true(at < 64);
    }
    assert_true(between);
    assert_int_equal(truncate_crash_once(0, KV_CRASH_LOSE, &crashed), 3); /* made durable */
}

/* A leftover "<segment>.wal.tmp" (a segment creation or rewrite that crashed before its rename)
 * holds nothing live: open removes it durably and replays the segments as if it were not
 * there. */
static void test_stray_tmp_removed(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    write_batches(e, &o, 0, 30, NULL);
    size_t n;
    char **segs = wt_segments(e->dir, &n);
    char name[64];
    uint64_t last;
    assert_true(wal_seg_name_parse(segs[n - 1], &last));
    wal_seg_name(name, last + 1000);
    strcat(name, ".tmp");
    char *tmp = wt_join(e->dir, name);
    char *src = wt_join(e->dir, segs[n - 1]);
    wt_copy_file(src, tmp); /* looks like a segment, is not one */
    free(src);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 30);
    for (size_t i = 0; i < r.n; i++)
        wt_expect_batch(&r.b[i], i, 1 + i % 4);
    wt_replay_free(&r);
    assert_int_equal(access(tmp, F_OK), -1);
    size_t n2;
    char **segs2 = wt_segments(e->dir, &n2);
    assert_int_equal(n2, n);
    wt_names_free(segs2, n2);
    wt_names_free(segs, n);
    free(tmp);
}

typedef struct thr {
    wal_log *l;
    int id;
} thr;

static void *committer(void *arg)
{
    thr *t = arg;
    for (int i = 0; i < 40; i++)
        if (wt_append(t->l, (uint64_t)(t->id * 1000 + i), 1 + i % 3, NULL) != KV_OK)
            return (void *)1;
    return NULL;
}

static void test_group_commit_sync(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    o.durability.kind = KV_DURABILITY_SYNC;
    wal_log *l;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    pthread_t th[4];
    thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (thr){l, i};
        pthread_create(&th[i], NULL, committer, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    wal_log_stats st;
    wal_log_get_stats(l, &st);
    assert_int_equal(st.items, 160);
    assert_true(st.groups >= 1 && st.groups <= 160);
    assert_int_equal(wal_log_close(l), KV_OK);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 160);
    /* Each thread's batches come back in its own order. */
    int next[4] = {0};
    for (size_t i = 0; i < r.n; i++) {
        int found = -1;
        for (int k = 0; k < 4 && found < 0; k++) {
            if (next[k] >= 40)
                continue;
            uint64_t b = (uint64_t)(k * 1000 + next[k]);
            size_t want = wt_len(b, 0);
            if (r.b[i].n == (size_t)(1 + next[k] % 3) && r.b[i].lens[0] == want) {
                uint8_t buf[4096];
                wt_payload(buf, want, b, 0);
                if (!memcmp(buf, r.b[i].payloads[0], want))
                    found = k;
            }
        }
        assert_true(found >= 0);
        wt_expect_batch(&r.b[i], (uint64_t)(found * 1000 + next[found]), 1 + next[found] % 3);
        next[found]++;
    }
    wt_replay_free(&r);
}

/* `sync` mode with concurrent committers: apply runs once per batch, never two at once, in LSN
 * order, before its append returns; and every acknowledged batch survives a power loss that
 * drops everything not fdatasynced (the fdatasync is shared and runs after the queue moved on). */
typedef struct order_state {
    pthread_mutex_t mu;
    uint64_t last_lsn;
    int applying;
    int bad;
} order_state;

typedef struct order_item {
    order_state *os;
    uint64_t lsn;
    int applied;
} order_item;

static void order_apply(void *ctx, uint64_t commit_lsn)
{
    order_item *it = ctx;
    order_state *os = it->os;
    pthread_mutex_lock(&os->mu);
    if (os->applying++ || commit_lsn <= os->last_lsn)
        os->bad++;
    os->last_lsn = commit_lsn;
    pthread_mutex_unlock(&os->mu);
    it->lsn = commit_lsn;
    it->applied++;
    pthread_mutex_lock(&os->mu);
    os->applying--;
    pthread_mutex_unlock(&os->mu);
}

typedef struct order_thr {
    wal_log *l;
    order_state *os;
    int id;
    int bad;
} order_thr;

static void *order_committer(void *arg)
{
    order_thr *t = arg;
    for (int i = 0; i < 40; i++) {
        uint64_t b = (uint64_t)(t->id * 1000 + i);
        size_t len = wt_len(b, 0);
        uint8_t buf[4096];
        wt_payload(buf, len, b, 0);
        wal_slice sl = {buf, len};
        wal_record rec = {WAL_REC_PUT, &sl, 1};
        order_item it = {t->os, 0, 0};
        uint64_t lsn = 0;
        if (wal_log_append_batch(t->l, &rec, 1, order_apply, &it, &lsn) != KV_OK ||
            it.applied != 1 || it.lsn != lsn)
            t->bad++;
    }
    return NULL;
}

static void test_group_commit_sync_apply_order_and_durability(void **state)
{
    env *e = *state;
    char *scratch = tu_mkdtemp("wal-log-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    kv_faultfs_set_real_sync(ff, false);
    wal_log_options o = small_opts();
    o.durability.kind = KV_DURABILITY_SYNC;
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, &o, NULL, NULL, &l), KV_OK);
    order_state os = {.last_lsn = 0};
    pthread_mutex_init(&os.mu, NULL);
    pthread_t th[6];
    order_thr t[6];
    for (int i = 0; i < 6; i++) {
        t[i] = (order_thr){l, &os, i, 0};
        pthread_create(&th[i], NULL, order_committer, &t[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].bad, 0);
    }
    assert_int_equal(os.bad, 0);
    pthread_mutex_destroy(&os.mu);
    /* Power loss now: only what an fdatasync covered survives; all 240 were acknowledged. */
    kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
    assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_LOSE, 1), KV_OK);
    wal_log_close(l);
    kv_fs_destroy(ff);
    wt_replay r = {0};
    kv_status rs = reopen(e, &o, &r);
    if (rs != KV_OK)
        fprintf(stderr, "reopen: %s\n", kv_errmsg());
    assert_int_equal(rs, KV_OK);
    assert_int_equal(r.n, 240);
    wt_replay_free(&r);
    tu_rmtree(scratch);
    free(scratch);
}

static void test_failed_fdatasync_poisons(void **state)
{
    env *e = *state;
    char *scratch = tu_mkdtemp("wal-log-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    wal_log_options o = small_opts();
    o.durability.kind = KV_DURABILITY_SYNC;
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, &o, NULL, NULL, &l), KV_OK);
    assert_int_equal(wt_append(l, 0, 2, NULL), KV_OK);
    kv_faultfs_fail(ff, KV_FAULT_SYNC, 1, 5 /* EIO */, false);
    assert_int_equal(wt_append(l, 1, 2, NULL), KV_IO);
    assert_int_equal(wt_append(l, 2, 2, NULL), KV_POISONED);
    assert_int_equal(wal_log_sync(l), KV_POISONED);
    assert_int_equal(wal_log_truncate(l, 1), KV_POISONED);
    wal_log_stats st;
    wal_log_get_stats(l, &st);
    assert_true(st.poisoned);
    assert_int_equal(wal_log_close(l), KV_POISONED);
    kv_fs_destroy(ff);
    /* Reopen rebuilds from the log: batch 0 is there, batch 1 may be. */
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_true(r.n == 1 || r.n == 2);
    wt_expect_batch(&r.b[0], 0, 2);
    wt_replay_free(&r);
    tu_rmtree(scratch);
    free(scratch);
}

static void test_interval_syncer_failure_poisons(void **state)
{
    env *e = *state;
    char *scratch = tu_mkdtemp("wal-log-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    wal_log_options o = small_opts();
    assert_int_equal(kv_durability_parse("interval:1", &o.durability), KV_OK);
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, &o, NULL, NULL, &l), KV_OK);
    kv_faultfs_fail(ff, KV_FAULT_SYNC, 1, 5 /* EIO */, false);
    kv_status s = KV_OK;
    /* The background fdatasync fails once; the log must end up refusing writes. */
    for (int i = 0; i < 5000 && s == KV_OK; i++) {
        s = wt_append(l, (uint64_t)i, 1, NULL);
        if (s == KV_OK)
            usleep(1000);
    }
    /* The failing fdatasync is the syncer's, or a segment roll's when that comes first (then
     * this append saw KV_IO): either way every later write is refused. */
    assert_true(s == KV_POISONED || s == KV_IO);
    assert_int_equal(wt_append(l, 9999, 1, NULL), KV_POISONED);
    assert_int_equal(wal_log_close(l), KV_POISONED);
    kv_fs_destroy(ff);
    tu_rmtree(scratch);
    free(scratch);
}

static void test_none_mode_buffers_until_sync(void **state)
{
    env *e = *state;
    char *scratch = tu_mkdtemp("wal-log-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    wal_log_options o;
    wal_log_options_init(&o);
    o.durability.kind = KV_DURABILITY_NONE;
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 10; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, NULL), KV_OK);
    char *seg = last_segment(e);
    assert_int_equal(wt_file_size(seg), WAL_SEG_HEADER_SIZE); /* still in user space */
    assert_int_equal(wal_log_sync(l), KV_OK);
    assert_true(wt_file_size(seg) > WAL_SEG_HEADER_SIZE);
    assert_int_equal(wt_append(l, 10, 1, NULL), KV_OK); /* buffered, then lost */
    kv_faultfs_set_crash_at(ff, kv_faultfs_ops(ff) + 1);
    assert_int_equal(kv_faultfs_crash(ff, KV_CRASH_LOSE, 3), KV_OK);
    wal_log_close(l);
    kv_fs_destroy(ff);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 10);
    wt_replay_free(&r);
    free(seg);
    tu_rmtree(scratch);
    free(scratch);
}

static void test_enospc_write_poisons_and_recovers(void **state)
{
    env *e = *state;
    char *scratch = tu_mkdtemp("wal-log-scratch");
    kv_fs *ff = kv_faultfs_new(scratch);
    wal_log_options o;
    wal_log_options_init(&o);
    wal_log *l;
    assert_int_equal(wal_log_open(ff, e->dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < 5; b++)
        assert_int_equal(wt_append(l, b, 3, NULL), KV_OK);
    /* A full disk writes about half of the group, then fails. */
    kv_faultfs_fail(ff, KV_FAULT_WRITE, 1, 28 /* ENOSPC */, false);
    assert_int_equal(wt_append(l, 5, 3, NULL), KV_NOSPACE);
    assert_int_equal(wt_append(l, 6, 3, NULL), KV_POISONED);
    assert_int_equal(wal_log_close(l), KV_POISONED);
    kv_fs_destroy(ff);
    /* The half-written batch is a torn tail: cut, the five before it are whole. */
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 5);
    for (uint64_t b = 0; b < 5; b++)
        wt_expect_batch(&r.b[b], b, 3);
    wt_replay_free(&r);
    tu_rmtree(scratch);
    free(scratch);
}

static void test_invalid_arguments(void **state)
{
    env *e = *state;
    wal_log_options o = small_opts();
    wal_log *l;
    o.segment_size = 100;
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_INVALID);
    o = small_opts();
    assert_int_equal(wal_log_open(e->fs, e->dir, &o, NULL, NULL, &l), KV_OK);
    wal_record rec = {WAL_REC_COMMIT, NULL, 0};
    assert_int_equal(wal_log_append_batch(l, &rec, 1, NULL, NULL, NULL), KV_INVALID);
    assert_int_equal(wal_log_append_batch(l, &rec, 0, NULL, NULL, NULL), KV_INVALID);
    /* A record larger than a segment still goes in whole. */
    size_t big = 20000;
    uint8_t *p = calloc(1, big);
    wal_slice sl = {p, big};
    wal_record r2 = {WAL_REC_PUT, &sl, 1};
    assert_int_equal(wal_log_append_batch(l, &r2, 1, NULL, NULL, NULL), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
    free(p);
    wt_replay r = {0};
    assert_int_equal(reopen(e, &o, &r), KV_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.b[0].lens[0], big);
    wt_replay_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_durability_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut_and_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crc_failing_last_record_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_bytes_in_flight_batch_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marks_cost_no_fdatasync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_vouched_by_mark_is_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_after_last_mark_is_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_open_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_ends_with_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_segment_is_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_newest_segment_is_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_roll_completed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_record_wrong_lsn_or_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_record_before_good_is_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_length_before_good_is_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_record_in_older_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lsn_gap_between_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_rewrite, setup, teardown),
        cmocka_unit_test(test_crash_between_unlinks),
        cmocka_unit_test_setup_teardown(test_stray_tmp_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_sync_apply_order_and_durability, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_fdatasync_poisons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_syncer_failure_poisons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none_mode_buffers_until_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enospc_write_poisons_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
