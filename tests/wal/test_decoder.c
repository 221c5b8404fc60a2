/* Robustness of the wal decoders: random and bit-flipped bytes fed to the record codec and the
 * segment scanner, damaged segment files and snapshots opened for real. Every input must give a
 * clear status (never a crash, never a leak under ASan); a single flipped bit is always caught;
 * whatever a damaged log still replays is a prefix of what was written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coding.h"
#include "testutil.h"
#include "wal_engine.h"
#include "wal_log_int.h"
#include "wal_test_util.h"

/* Random images behind a valid header (half of them with plausible reclog framing) through the
 * segment scanner, sealed and not: a clear status, never a read outside the image (ASan), and
 * a valid prefix that lies inside it. */
static void test_random_bytes_to_segment_scanner(void **state)
{
    (void)state;
    tu_rng r = {tu_seed(77)};
    uint8_t buf[WAL_SEG_HEADER_SIZE + 512];
    for (int i = 0; i < 100000; i++) {
        size_t n = WAL_SEG_HEADER_SIZE + (size_t)tu_below(&r, 512 + 1);
        uint64_t salt = tu_next(&r);
        wal_seg_header_encode(buf, salt, 1 + tu_below(&r, 5), 0);
        for (size_t j = WAL_SEG_HEADER_SIZE; j < n; j++)
            buf[j] = (uint8_t)tu_next(&r);
        if (tu_below(&r, 2) && n >= WAL_SEG_HEADER_SIZE + WAL_REC_OVERHEAD) {
            /* A valid record first, so that the scan gets past it to the garbage. */
            uint32_t len = (uint32_t)tu_below(&r, n - WAL_SEG_HEADER_SIZE - WAL_REC_OVERHEAD + 1);
            wal_rec_encode(buf + WAL_SEG_HEADER_SIZE, wal_seed(salt),
                           (uint8_t)(1 + tu_below(&r, 4)), kv_get_u64(buf + 24),
                           buf + WAL_SEG_HEADER_SIZE + WAL_REC_OVERHEAD, len);
        }
        wal_scan_result res;
        kv_status s = wal_scan_image("seg", buf, n, tu_below(&r, 2), false, 0, NULL, NULL, &res);
        assert_true(s == KV_OK || s == KV_CORRUPTION);
        assert_true(res.end <= n && res.batch_end <= res.end);
        if (s == KV_CORRUPTION)
            assert_non_null(strstr(kv_errmsg(), "seg: offset"));
        wal_seg_header h;
        (void)wal_seg_header_decode(buf, tu_below(&r, n + 1), &h);
    }
}

/* Every single flipped bit of a record, and another generation's salt, fail reclog's decode;
 * every flipped bit of a segment header fails its decode. */
static void test_every_bit_flip_is_caught(void **state)
{
    (void)state;
    uint8_t payload[100], rec[200], bad[200];
    for (int i = 0; i < 100; i++)
        payload[i] = (uint8_t)(i * 7);
    uint32_t seed = wal_seed(0x1234);
    size_t n = wal_rec_encode(rec, seed, WAL_REC_PUT, 42, payload, 100);
    assert_int_equal(n, WAL_REC_OVERHEAD + 100);
    kv_reclog_rec kr;
    wal_rec_view v;
    assert_int_equal(kv_reclog_decode(rec, n, 0, seed, &kr, NULL), KV_RECLOG_OK);
    assert_null(wal_rec_view_of(&kr, &v));
    assert_int_equal(v.lsn, 42);
    assert_int_equal(v.len, 100);
    assert_memory_equal(v.body, payload, 100);
    /* Another generation's salt never validates. */
    assert_int_not_equal(kv_reclog_decode(rec, n, 0, wal_seed(0x1235), &kr, NULL), KV_RECLOG_OK);
    for (size_t bit = 0; bit < n * 8; bit++) {
        memcpy(bad, rec, n);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(kv_reclog_decode(bad, n, 0, seed, &kr, NULL), KV_RECLOG_OK);
    }
    uint8_t h[WAL_SEG_HEADER_SIZE], hb[WAL_SEG_HEADER_SIZE];
    wal_seg_header_encode(h, 99, 7, 0);
    wal_seg_header hd;
    assert_null(wal_seg_header_decode(h, sizeof h, &hd));
    for (size_t bit = 0; bit < sizeof h * 8; bit++) {
        memcpy(hb, h, sizeof h);
        hb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_non_null(wal_seg_header_decode(hb, sizeof hb, &hd));
    }
}

/* Writes a log of nb batches in dir; the segment files stay for damaging. */
static void write_log(const char *dir, kv_fs *fs, uint64_t nb)
{
    wal_log_options o;
    wal_log_options_init(&o);
    o.segment_size = 8192;
    wal_log *l;
    assert_int_equal(wal_log_open(fs, dir, &o, NULL, NULL, &l), KV_OK);
    for (uint64_t b = 0; b < nb; b++)
        assert_int_equal(wt_append(l, b, 1 + b % 4, NULL), KV_OK);
    assert_int_equal(wal_log_close(l), KV_OK);
}

static void test_damaged_segments(void **state)
{
    (void)state;
    tu_rng r = {tu_seed(4242)};
    kv_fs *fs = kv_fs_posix();
    char *master = tu_mkdtemp("wal-dec-master");
    write_log(master, fs, 80);
    size_t nseg;
    char **segs = wt_segments(master, &nseg);
    assert_true(nseg >= 2);
    for (int iter = 0; iter < 300; iter++) {
        char *dir = tu_mkdtemp("wal-dec");
        for (size_t i = 0; i < nseg; i++) {
            char *a = wt_join(master, segs[i]), *b = wt_join(dir, segs[i]);
            wt_copy_file(a, b);
            free(a);
            free(b);
        }
        size_t victim = (size_t)tu_below(&r, nseg);
        char *p = wt_join(dir, segs[victim]);
        uint64_t size = wt_file_size(p);
        int how = (int)tu_below(&r, 4);
        if (how == 0) {
            wt_truncate(p, tu_below(&r, size + 1));
        } else if (how == 3) {
            /* Overwrite a run with random bytes. */
            uint64_t at = tu_below(&r, size);
            for (int j = 0; j < 64 && at + (uint64_t)j < size; j++)
                wt_flip_byte(p, at + (uint64_t)j, (uint8_t)(1 + tu_below(&r, 255)));
        } else {
            for (int j = 0; j <= how; j++)
                wt_flip_byte(p, tu_below(&r, size), (uint8_t)(1u << tu_below(&r, 8)));
        }
        for (int mode = 0; mode < 2; mode++) {
            wal_log_options o;
            wal_log_options_init(&o);
            o.segment_size = 8192;
            o.recovery = mode ? WAL_RECOVER_POINT_IN_TIME : WAL_RECOVER_STRICT;
            wt_replay rep = {0};
            wal_log *l = NULL;
            kv_status s = wal_log_open(fs, dir, &o, wt_collect, &rep, &l);
            assert_true(s == KV_OK || s == KV_CORRUPTION);
            if (s == KV_CORRUPTION)
                assert_true(strlen(kv_errmsg()) > 0);
            for (size_t b = 0; b < rep.n; b++)
                wt_expect_batch(&rep.b[b], b, 1 + b % 4);
            if (s == KV_OK) {
                assert_int_equal(wal_log_verify(l), KV_OK);
                assert_int_equal(wal_log_close(l), KV_OK);
            }
            wt_replay_free(&rep);
        }
        free(p);
        tu_rmtree(dir);
        free(dir);
    }
    wt_names_free(segs, nseg);
    tu_rmtree(master);
    free(master);
    kv_fs_destroy(fs);
}

static void test_random_segment_files(void **state)
{
    (void)state;
    tu_rng r = {tu_seed(99)};
    kv_fs *fs = kv_fs_posix();
    for (int iter = 0; iter < 200; iter++) {
        char *dir = tu_mkdtemp("wal-dec-rand");
        char *p = wt_join(dir, "00000000000000000001.wal");
        size_t n = (size_t)tu_below(&r, 3000);
        uint8_t *buf = malloc(n + WAL_SEG_HEADER_SIZE);
        for (size_t j = 0; j < n + WAL_SEG_HEADER_SIZE; j++)
            buf[j] = (uint8_t)tu_next(&r);
        size_t len = n;
        if (iter % 2) { /* a valid header followed by garbage */
            wal_seg_header_encode(buf, tu_next(&r), 1, 0);
            len = n + WAL_SEG_HEADER_SIZE;
        }
        FILE *f = fopen(p, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        wt_replay rep = {0};
        wal_log *l = NULL;
        kv_status s = wal_log_open(fs, dir, NULL, wt_collect, &rep, &l);
        assert_true(s == KV_OK || s == KV_CORRUPTION);
        if (iter % 2 == 0)
            assert_int_equal(s, KV_CORRUPTION); /* no valid header */
        if (s == KV_OK)
            assert_int_equal(wal_log_close(l), KV_OK);
        wt_replay_free(&rep);
        free(buf);
        free(p);
        tu_rmtree(dir);
        free(dir);
    }
    kv_fs_destroy(fs);
}

static void test_damaged_snapshot_bytes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("wal-dec-snap");
    kv_db *db;
    assert_int_equal(kv_open("wal", dir, NULL, &db), KV_OK);
    for (int i = 0; i < 20; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%02d", i);
        assert_int_equal(kv_put(db, k, 3, "valuevalue", (size_t)(i % 10)), KV_OK);
    }
    assert_int_equal(wal_engine_checkpoint(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    char *p = wt_join(dir, "SNAPSHOT"), *keep = wt_join(dir, "keep");
    wt_copy_file(p, keep);
    uint64_t size = wt_file_size(p);
    /* Every byte of the snapshot is covered: any single flip fails the open, clearly. */
    for (uint64_t off = 0; off < size; off++) {
        wt_copy_file(keep, p);
        wt_flip_byte(p, off, 0x08);
        assert_int_equal(kv_open("wal", dir, NULL, &db), KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), "SNAPSHOT"));
    }
    wt_copy_file(keep, p);
    wt_truncate(p, size - 1);
    assert_int_equal(kv_open("wal", dir, NULL, &db), KV_CORRUPTION);
    free(p);
    free(keep);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes_to_segment_scanner),
        cmocka_unit_test(test_every_bit_flip_is_caught),
        cmocka_unit_test(test_damaged_segments),
        cmocka_unit_test(test_random_segment_files),
        cmocka_unit_test(test_damaged_snapshot_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
