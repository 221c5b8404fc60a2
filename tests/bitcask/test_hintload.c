/* Start-up's hint reader thread (bitcask/bc_hintload.h): a start-up through the reader thread loads
 * exactly what the session wrote (short and long keys, overwrites, deletes, several hint files of
 * several crc pieces each); a hint damaged in a later crc piece is rejected whole and its data file
 * scanned; a hint whose crcs are right but whose entry in the middle points outside its data file
 * is rejected after its first entries went in, and the scan gives the same contents; on one CPU no
 * reader starts and the contents are the same; on a file system that cannot map, the same; with
 * many files under a descriptor limit that has no room for every hint file besides every data file,
 * the same; a data file that is damaged too makes the open fail while the reader is still busy with
 * later files (the reader is stopped and joined: no leak under ASan). */
#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bc_format.h"
#include "bc_hintload.h"
#include "bc_prefault.h"
#include "bc_testutil.h"
#include "coding.h"
#include "crc.h"
#include "fs.h"
#include "testutil.h"

enum { N = 60000 };
static int ver[N]; /* -1: deleted */
static uint64_t model_keys, model_live;

/* Odd keys short (in the keydir slot), even ones long (a pointer into the hint image). */
static size_t hl_key(int i, char *buf)
{
    if (i % 2)
        return (size_t)sprintf(buf, "h%07d", i);
    return (size_t)sprintf(buf, "a-longer-key-%07d-kept-outside-the-slot", i);
}

static size_t hl_val(int i, int v, char *buf)
{
    return (size_t)sprintf(buf, "val-%d-%d", i, v);
}

static kv_status open_db(const char *dir, kv_db **db)
{
    return bt_open(dir, KV_DURABILITY_OS, NULL, db, "file_size=1M", "merge=manual", NULL);
}

static void expect_contents(kv_db *db)
{
    bt_expect_model(db, N, ver, hl_key, hl_val, model_keys, model_live);
}

/* Writes the model: every key, then a third overwritten, a seventh deleted, some written again. */
static char *make_db(size_t *nhints)
{
    char *dir = tu_mkdtemp("bc-hintload");
    kv_db *db;
    assert_int_equal(open_db(dir, &db), KV_OK);
    char k[64], v[64];
    for (int round = 1; round <= 4; round++)
        for (int i = 0; i < N; i += round == 1 ? 1 : round == 2 ? 3 : round == 3 ? 7 : 11) {
            size_t kl = hl_key(i, k);
            if (round == 3) {
                assert_int_equal(kv_delete(db, k, kl), KV_OK);
                ver[i] = -1;
            } else {
                size_t vl = hl_val(i, round, v);
                assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
                ver[i] = round;
            }
        }
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    model_keys = st.live_keys;
    model_live = bt_stat(db, "live_bytes");
    assert_int_equal(kv_close(db), KV_OK);
    char *h = bt_nth_file(dir, ".hint", 0, nhints);
    free(h);
    assert_true(*nhints > BC_HL_AHEAD); /* the reader maps them a few at a time */
    return dir;
}

/* The reader reads every hint file when this process may use two CPUs. */
static void expect_reader(kv_db *db, size_t nhints)
{
    uint64_t want = bc_prefault_available() ? nhints : 0;
    assert_int_equal(bt_stat(db, "startup_hint_reader_files"), want);
}

static void test_reader_loads_model(void **state)
{
    (void)state;
    size_t nh;
    char *dir = make_db(&nh);
    char *h = bt_nth_file(dir, ".hint", 1, NULL);
    assert_true(bt_size(h) > (long long)(BC_HINT_HDR + BC_HL_CRC_PIECE)); /* 2+ crc pieces */
    free(h);
    kv_db *db;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(open_db(dir, &db), KV_OK);
        assert_int_equal(bt_stat(db, "startup_hint_loads"), nh);
        assert_int_equal(bt_stat(db, "startup_hint_rejects"), 0);
        assert_int_equal(bt_stat(db, "startup_data_scans"), 0);
        expect_reader(db, nh);
        expect_contents(db);
        assert_int_equal(kv_close(db), KV_OK);
    }
    tu_rmtree(dir);
    free(dir);
}

static void test_damaged_later_piece_is_rejected(void **state)
{
    (void)state;
    size_t nh;
    char *dir = make_db(&nh);
    char *h = bt_nth_file(dir, ".hint", 1, NULL);
    long long hs = bt_size(h);
    /* a key byte of the last entry: in the last crc piece, not the first */
    assert_true(hs - 3 > (long long)(BC_HINT_HDR + BC_HL_CRC_PIECE));
    assert_int_equal(bt_flip(h, (uint64_t)hs - 3, 0x04), 0);
    kv_db *db;
    assert_int_equal(open_db(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 1);
    assert_int_equal(bt_stat(db, "startup_data_scans"), 1);
    assert_int_equal(bt_stat(db, "startup_hint_loads"), nh - 1);
    expect_reader(db, nh);
    expect_contents(db);
    assert_int_equal(kv_close(db), KV_OK);
    /* the scan rewrote that hint: the next start-up trusts it again */
    assert_int_equal(open_db(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 0);
    expect_contents(db);
    assert_int_equal(kv_close(db), KV_OK);
    free(h);
    tu_rmtree(dir);
    free(dir);
}

/* Rewrites the hint file at path so that the entry starting past two thirds of it points past
 * the end of its data file, with every crc (entry, entries, header) right again. */
static void break_entry_keep_crcs(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    long long n = bt_size(path);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    uint64_t data_size = kv_get_u64(b + 32);
    size_t off = BC_HINT_HDR, target = (size_t)n * 2 / 3;
    while (off < target) /* the first entry starting at or after target */
        off += BC_HINT_ENT_HDR + kv_get_u32(b + off + 24);
    assert_true(off < (size_t)n);
    uint32_t kl = kv_get_u32(b + off + 24);
    kv_put_u64(b + off + 12, data_size); /* the record's offset: the end of the data file */
    kv_put_u32(b + off, kv_crc32(b + off + 4, BC_HINT_ENT_HDR - 4 + kl));
    kv_put_u32(b + BC_HINT_ENTS_CRC, kv_crc32(b + BC_HINT_HDR, (size_t)n - BC_HINT_HDR));
    kv_put_u32(b + BC_HINT_HDR_CRC, kv_crc32(b, BC_HINT_HDR_CRC));
    assert_int_equal(bt_write_file(path, b, (size_t)n), 0);
    free(b);
}

static void test_bad_entry_after_good_crcs_scans(void **state)
{
    (void)state;
    size_t nh;
    char *dir = make_db(&nh);
    char *h = bt_nth_file(dir, ".hint", 2, NULL);
    break_entry_keep_crcs(h);
    kv_db *db;
    assert_int_equal(open_db(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 1);
    assert_int_equal(bt_stat(db, "startup_data_scans"), 1);
    expect_reader(db, nh);
    expect_contents(db);
    assert_int_equal(kv_close(db), KV_OK);
    free(h);
    tu_rmtree(dir);
    free(dir);
}

/* Pinned to one CPU no reader starts (bc_prefault_available): the same contents, read by the
 * opening thread, also with a damaged hint. */
static void test_one_cpu_loads_inline(void **state)
{
    (void)state;
    size_t nh;
    char *dir = make_db(&nh);
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &old)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    kv_db *db;
    assert_int_equal(open_db(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_reader_files"), 0);
    assert_int_equal(bt_stat(db, "startup_hint_loads"), nh);
    expect_contents(db);
    assert_int_equal(kv_close(db), KV_OK);
    char *h = bt_nth_file(dir, ".hint", 1, NULL);
    assert_int_equal(bt_flip(h, (uint64_t)bt_size(h) - 3, 0x04), 0);
    assert_int_equal(open_db(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_reader_files"), 0);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 1);
    expect_contents(db);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
    free(h);
    tu_rmtree(dir);
    free(dir);
}

static kv_status no_map(kv_file *f, uint64_t len, const void **addr)
{
    (void)f;
    (void)len;
    (void)addr;
    return kv_error(KV_NOTSUP, "this test's fs cannot map");
}

/* On a file system that cannot map, the reader reads each hint file into memory when its turn
 * comes: the same contents, and a damaged hint is still rejected. */
static void test_reader_without_mmap(void **state)
{
    (void)state;
    size_t nh;
    char *dir = make_db(&nh);
    kv_fs *fs = kv_fs_posix();
    assert_non_null(fs);
    static kv_fs_vtable vt;
    vt = *fs->vt;
    vt.map = no_map;
    fs->vt = &vt;
    kv_db *db;
    for (int round = 0; round < 2; round++) {
        if (round) {
            char *h = bt_nth_file(dir, ".hint", 1, NULL);
            assert_int_equal(bt_flip(h, (uint64_t)bt_size(h) - 3, 0x04), 0);
            free(h);
        }
        assert_int_equal(bt_open(dir, KV_DURABILITY_OS, fs, &db, "file_size=1M", "merge=manual",
                                 "read=pread", NULL),
                         KV_OK);
        assert_int_equal(bt_stat(db, "startup_hint_rejects"), round);
        assert_int_equal(bt_stat(db, "startup_hint_loads"), nh - round);
        expect_reader(db, nh);
        expect_contents(db);
        assert_int_equal(kv_close(db), KV_OK);
    }
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory itself */
}

/* Many small files under a descriptor limit that leaves room for every data file but not for
 * every hint file besides: the reader maps a few hint files at a time (BC_HL_AHEAD), so the
 * start-up works and loads everything. */
static void test_many_files_few_descriptors(void **state)
{
    (void)state;
    enum { KEYS = 3000 };
    char *dir = tu_mkdtemp("bc-hintfds");
    kv_db *db;
    assert_int_equal(
        bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "file_size=4K", "merge=manual", NULL), KV_OK);
    char k[64], v[64];
    for (int i = 0; i < KEYS; i++) {
        size_t kl = hl_key(i, k), vl = hl_val(i, 1, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
    }
    assert_int_equal(kv_close(db), KV_OK);
    size_t nd = 0;
    free(bt_nth_file(dir, ".data", 0, &nd));
    assert_true(nd > 40);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)open_fds() + nd + 16; /* data files, lock, directory, active file */
    assert_true(low.rlim_cur < old.rlim_cur);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    kv_status s = bt_open(dir, KV_DURABILITY_NONE, NULL, &db, "file_size=4K", "merge=manual", NULL);
    if (s == KV_OK) {
        assert_int_equal(bt_stat(db, "startup_hint_loads"), nd);
        for (int i = 0; i < KEYS; i++) {
            size_t kl = hl_key(i, k);
            bt_expect_get(db, k, kl, v, hl_val(i, 1, v));
        }
        assert_int_equal(kv_close(db), KV_OK);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(s, KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* The first file's hint and its data are both damaged: the scan finds the damage while the
 * reader still has later files to read; the open fails with KV_CORRUPTION and the reader is
 * stopped and joined (ASan: nothing leaks). Repeated, so the reader is caught at different
 * points. */
static void test_error_stops_reader(void **state)
{
    (void)state;
    size_t nh;
    char *dir = make_db(&nh);
    char *h = bt_nth_file(dir, ".hint", 0, NULL);
    char *d = bt_nth_file(dir, ".data", 0, NULL);
    assert_int_equal(bt_flip(h, (uint64_t)bt_size(h) / 2, 0x01), 0);
    assert_int_equal(bt_flip(d, (uint64_t)bt_size(d) / 2, 0x01), 0);
    for (int i = 0; i < 5; i++) {
        kv_db *db = NULL;
        assert_int_equal(open_db(dir, &db), KV_CORRUPTION);
        assert_null(db);
    }
    free(h);
    free(d);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_loads_model),
        cmocka_unit_test(test_damaged_later_piece_is_rejected),
        cmocka_unit_test(test_bad_entry_after_good_crcs_scans),
        cmocka_unit_test(test_one_cpu_loads_inline),
        cmocka_unit_test(test_reader_without_mmap),
        cmocka_unit_test(test_many_files_few_descriptors),
        cmocka_unit_test(test_error_stops_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
