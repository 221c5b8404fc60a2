/* Every file bitcask depends on is named and checked (MANIFEST, bitcask/bc_manifest.c), and a
 * read-only open changes nothing.
 *
 * Each damage a hostile user can do to whole files: a deleted data file (a sealed one, a merge
 * output MANIFEST names, the active file after a crash), a data file replaced by an older and
 * shorter copy, two data files swapped, a data file of another database with the same name and
 * length, bytes appended to a sealed file, a deleted or stale MANIFEST. Each must be
 * KV_CORRUPTION naming the file, from a writable and from a read-only open alike, with the
 * directory left byte for byte as it was; never an empty or rolled-back database. Hint files are
 * caches: a hint of another database, or of another file, is rejected and the data file scanned,
 * and kv_check names it. What a crash legitimately leaves (an empty file of a cut-short rotation,
 * a committed merge whose renames and deletions were cut short) opens, read-only without a
 * change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bc_format.h"
#include "bc_testutil.h"
#include "bitcask.h"
#include "faultfs.h"
#include "testutil.h"

#define VLEN  60
#define NKEYS 300

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

static void put_range(kv_db *db, int from, int to, int ver)
{
    for (int i = from; i < to; i++) {
        char k[16], v[VLEN];
        size_t kl = key_of(i, k), vl = val_of(i, ver, v);
        assert_int_equal(kv_put(db, k, kl, v, vl), KV_OK);
    }
}

static kv_status open_rw(const char *dir, kv_db **db)
{
    return bt_open(dir, KV_DURABILITY_OS, NULL, db, "file_size=4K", "merge=manual", NULL);
}

/* Asserts db holds keys 0..NKEYS-1 at version ver[i] (-1: absent). */
static void expect_all(kv_db *db, const int *ver)
{
    char k[16], v[VLEN];
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = key_of(i, k);
        if (ver[i] < 0)
            bt_expect_get(db, k, kl, NULL, 0);
        else
            bt_expect_get(db, k, kl, v, val_of(i, ver[i], v));
    }
}

/* Copies the file src to dst. */
static void copy_file(const char *src, const char *dst)
{
    FILE *a = fopen(src, "rb");
    assert_non_null(a);
    FILE *b = fopen(dst, "wb");
    assert_non_null(b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

/* dir/name (malloc'd). */
static char *at(const char *dir, const char *name)
{
    char *p = kv_path_join(dir, name);
    assert_non_null(p);
    return p;
}

/* A database of NKEYS keys over several sealed data files of 4 KiB (two versions of the first
 * half, the second half deleted and written again), cleanly closed; *ver gets the model. */
static char *make_db(const char *tag, int *ver)
{
    char *dir = tu_mkdtemp(tag);
    kv_db *db;
    assert_int_equal(open_rw(dir, &db), KV_OK);
    put_range(db, 0, NKEYS, 1);
    put_range(db, 0, NKEYS / 2, 2);
    for (int i = 0; i < NKEYS; i++)
        ver[i] = i < NKEYS / 2 ? 2 : 1;
    assert_int_equal(kv_close(db), KV_OK);
    return dir;
}

/* Both opens of dir, writable and read-only, fail with KV_CORRUPTION naming `name`, and the
 * directory stays byte for byte as it was. */
static void expect_refused(const char *dir, const char *name)
{
    char *before = tu_dir_state(dir);
    kv_db *db = NULL;
    assert_int_equal(bt_open_ro(dir, &db), KV_CORRUPTION);
    if (!strstr(kv_errmsg(), name))
        fail_msg("read-only open: the message does not name %s: %s", name, kv_errmsg());
    assert_int_equal(open_rw(dir, &db), KV_CORRUPTION);
    if (!strstr(kv_errmsg(), name))
        fail_msg("writable open: the message does not name %s: %s", name, kv_errmsg());
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Opens dir read-only (the directory must not change) and writable: both hold the model, and
 * kv_check passes. */
static void expect_opens(const char *dir, const int *ver)
{
    char *before = tu_dir_state(dir);
    kv_db *db;
    assert_int_equal(bt_open_ro(dir, &db), KV_OK);
    expect_all(db, ver);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(open_rw(dir, &db), KV_OK);
    expect_all(db, ver);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
}

static void test_deleted_data_file(void **state)
{
    (void)state;
    int ver[NKEYS];
    char *dir = make_db("bcf-deleted", ver);
    size_t nd = 0;
    char *victim = bt_nth_file(dir, ".data", 1, &nd);
    assert_true(nd >= 4);
    assert_int_equal(unlink(victim), 0);
    expect_refused(dir, strrchr(victim, '/') + 1);
    /* its hint gone too: still refused */
    char *h = strdup(victim);
    strcpy(h + strlen(h) - 4, "hint");
    assert_int_equal(unlink(h), 0);
    expect_refused(dir, strrchr(victim, '/') + 1);
    free(h);
    free(victim);
    tu_rmtree(dir);
    free(dir);
}

static void test_deleted_merge_output(void **state)
{
    (void)state;
    int ver[NKEYS];
    char *dir = make_db("bcf-merge-out", ver);
    kv_db *db;
    assert_int_equal(open_rw(dir, &db), KV_OK);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    expect_opens(dir, ver);
    /* the first merge output (kind 2) MANIFEST names */
    size_t nd = 0;
    free(bt_nth_file(dir, ".data", 0, &nd));
    char *victim = NULL;
    for (size_t i = 0; i < nd && !victim; i++) {
        char *p = bt_nth_file(dir, ".data", i, NULL);
        FILE *f = fopen(p, "rb");
        uint8_t hdr[BC_DATA_HDR];
        assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
        fclose(f);
        if (kv_get_u32(hdr + 12) == BC_KIND_MERGE)
            victim = p;
        else
            free(p);
    }
    assert_non_null(victim);
    assert_int_equal(unlink(victim), 0);
    expect_refused(dir, strrchr(victim, '/') + 1);
    free(victim);
    tu_rmtree(dir);
    free(dir);
}

/* A sealed data file replaced by a copy taken while it was still the active file (older and
 * shorter), and the same with bytes appended to it. */
static void test_older_shorter_copy_and_appended_bytes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bcf-older");
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, NULL, &db, "merge=manual", NULL), KV_OK);
    put_range(db, 0, 100, 1);
    assert_int_equal(kv_sync(db), KV_OK);
    size_t nd = 0;
    free(bt_nth_file(dir, ".data", 0, &nd));
    char *active = bt_nth_file(dir, ".data", nd - 1, NULL);
    char *aside = tu_mkdtemp("bcf-older-aside");
    char *old = at(aside, "older"), *keep = at(aside, "current");
    copy_file(active, old);
    put_range(db, 100, NKEYS, 1);
    put_range(db, 0, 50, 2);
    assert_int_equal(kv_close(db), KV_OK);
    copy_file(active, keep);
    copy_file(old, active);
    expect_refused(dir, strrchr(active, '/') + 1);
    assert_non_null(strstr(kv_errmsg(), "shortened or older"));
    /* the right file with one byte more */
    copy_file(keep, active);
    FILE *f = fopen(active, "ab");
    fputc(0, f);
    fclose(f);
    expect_refused(dir, strrchr(active, '/') + 1);
    assert_non_null(strstr(kv_errmsg(), "extended"));
    copy_file(keep, active);
    int ver[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        ver[i] = i < 50 ? 2 : 1;
    expect_opens(dir, ver);
    tu_rmtree(aside);
    free(aside);
    free(old);
    free(keep);
    free(active);
    tu_rmtree(dir);
    free(dir);
}

/* Two data files swapped, and a data file of another database that has the same name and the
 * same length (only its salt, in its header and in every crc, differs). */
static void test_swapped_and_foreign_files(void **state)
{
    (void)state;
    int ver[NKEYS];
    char *dir = make_db("bcf-swap", ver);
    char *aside = tu_mkdtemp("bcf-swap-aside");
    char *a = bt_nth_file(dir, ".data", 1, NULL), *b = bt_nth_file(dir, ".data", 2, NULL);
    char *sa = at(aside, "a"), *sb = at(aside, "b");
    copy_file(a, sa);
    copy_file(b, sb);
    copy_file(sb, a);
    copy_file(sa, b);
    expect_refused(dir, strrchr(a, '/') + 1);
    assert_non_null(strstr(kv_errmsg(), "swapped or foreign"));
    copy_file(sa, a);
    copy_file(sb, b);
    expect_opens(dir, ver);

    /* the same workload in another directory makes files of the same names and lengths */
    int ver2[NKEYS];
    char *other = make_db("bcf-foreign", ver2);
    char *oa = bt_nth_file(other, ".data", 0, NULL), *mine = bt_nth_file(dir, ".data", 0, NULL);
    assert_int_equal(bt_size(oa), bt_size(mine));
    copy_file(mine, sa);
    copy_file(oa, mine);
    expect_refused(dir, strrchr(mine, '/') + 1);
    copy_file(sa, mine);
    /* another database's hint file: rejected, the data file scanned, the same contents */
    char *oh = bt_nth_file(other, ".hint", 0, NULL), *mh = bt_nth_file(dir, ".hint", 0, NULL);
    copy_file(oh, mh);
    kv_db *db;
    assert_int_equal(bt_open_ro(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 1);
    expect_all(db, ver);
    assert_int_equal(kv_check(db), KV_CORRUPTION); /* kv_check names the damaged hint */
    assert_non_null(strstr(kv_errmsg(), strrchr(mh, '/') + 1));
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(open_rw(dir, &db), KV_OK); /* rewrites the hint */
    assert_int_equal(bt_stat(db, "startup_hint_rejects"), 1);
    assert_int_equal(kv_close(db), KV_OK);
    expect_opens(dir, ver);
    free(sa);
    free(sb);
    free(a);
    free(b);
    free(oa);
    free(mine);
    free(oh);
    free(mh);
    tu_rmtree(aside);
    free(aside);
    tu_rmtree(other);
    free(other);
    tu_rmtree(dir);
    free(dir);
}

/* A deleted MANIFEST, and MANIFEST replaced by older copies: one from before later sessions
 * wrote more files, one from before a merge replaced files. */
static void test_deleted_and_stale_manifest(void **state)
{
    (void)state;
    int ver[NKEYS];
    char *dir = make_db("bcf-stale", ver);
    char *aside = tu_mkdtemp("bcf-stale-aside");
    char *m = at(dir, "MANIFEST"), *old1 = at(aside, "1"), *old2 = at(aside, "2");
    copy_file(m, old1);
    kv_db *db;
    assert_int_equal(open_rw(dir, &db), KV_OK);
    put_range(db, 0, 20, 3);
    assert_int_equal(kv_close(db), KV_OK);
    for (int i = 0; i < 20; i++)
        ver[i] = 3;
    copy_file(m, old2);
    assert_int_equal(open_rw(dir, &db), KV_OK);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    char *keep = at(aside, "now");
    copy_file(m, keep);

    assert_int_equal(unlink(m), 0);
    expect_refused(dir, "MANIFEST");
    copy_file(old1, m); /* names none of the files written since */
    expect_refused(dir, "MANIFEST");
    copy_file(old2, m); /* names files the merge replaced and deleted */
    expect_refused(dir, ".data");
    copy_file(keep, m);
    expect_opens(dir, ver);
    tu_rmtree(aside);
    free(aside);
    free(m);
    free(old1);
    free(old2);
    free(keep);
    tu_rmtree(dir);
    free(dir);
}

/* After a crash the active data file is the newest one, named active in MANIFEST: deleting it is
 * refused too (it holds everything since the last open). */
static void test_deleted_active_file_after_crash(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bcf-active"), *scratch = tu_mkdtemp("bcf-active-ff");
    kv_fs *fs = kv_faultfs_new(scratch);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_SYNC, fs, &db, "merge=manual", NULL), KV_OK);
    put_range(db, 0, 50, 1);
    kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    kv_close(db);
    assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_LOSE, 1), KV_OK);
    kv_fs_destroy(fs);
    size_t nd = 0;
    char *active = bt_nth_file(dir, ".data", 0, &nd);
    assert_int_equal(nd, 1);
    assert_int_equal(unlink(active), 0);
    expect_refused(dir, strrchr(active, '/') + 1);
    free(active);
    tu_rmtree(dir);
    tu_rmtree(scratch);
    free(dir);
    free(scratch);
}

/* What a crash legitimately leaves: a merge committed (MANIFEST names its outputs, the replaced
 * files are listed obsolete) whose renames and deletions were all cut short, plus the empty file
 * of a rotation that never got into MANIFEST and a .tmp of a cut-short replacement. A read-only
 * open reads the merged state in place and changes nothing; the writable open then finishes the
 * merge and removes the leftovers. */
static void test_crash_leftovers_read_only_then_settled(void **state)
{
    (void)state;
    int ver[NKEYS];
    char *dir = make_db("bcf-settle", ver);
    char *saved = tu_mkdtemp("bcf-settle-saved");
    size_t nd = 0;
    free(bt_nth_file(dir, ".data", 0, &nd));
    char **names = calloc(nd * 2, sizeof *names);
    for (size_t i = 0; i < nd; i++) { /* every data and hint file before the merge */
        names[2 * i] = bt_nth_file(dir, ".data", i, NULL);
        names[2 * i + 1] = bt_nth_file(dir, ".hint", i, NULL);
        for (int k = 0; k < 2; k++) {
            char *p = at(saved, strrchr(names[2 * i + k], '/') + 1);
            copy_file(names[2 * i + k], p);
            free(p);
        }
    }
    kv_db *db;
    assert_int_equal(open_rw(dir, &db), KV_OK);
    size_t na = 0;
    free(bt_nth_file(dir, ".data", 0, &na));
    char *active = bt_nth_file(dir, ".data", na - 1, NULL); /* this session's, empty */
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    /* MANIFEST of the commit point (close would seal the active file and forget S) */
    char *man = at(dir, "MANIFEST"), *man_saved = at(saved, "MANIFEST");
    char *act_saved = at(saved, "active");
    copy_file(man, man_saved);
    copy_file(active, act_saved);
    assert_int_equal(kv_close(db), KV_OK);
    copy_file(man_saved, man);
    copy_file(act_saved, active);
    /* back to "MANIFEST committed, nothing after it done": outputs under their merge names,
     * the replaced files back */
    size_t nm = 0;
    free(bt_nth_file(dir, ".data", 0, &nm));
    char **after_merge = calloc(nm, sizeof *after_merge);
    for (size_t i = 0; i < nm; i++)
        after_merge[i] = bt_nth_file(dir, ".data", i, NULL);
    for (size_t i = 0; i < nm; i++) {
        char *p = after_merge[i];
        FILE *f = fopen(p, "rb");
        uint8_t hdr[BC_DATA_HDR];
        assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
        fclose(f);
        if (kv_get_u32(hdr + 12) == BC_KIND_MERGE) {
            char q[1024];
            snprintf(q, sizeof q, "%.*smdata", (int)(strlen(p) - 4), p);
            assert_int_equal(rename(p, q), 0);
            snprintf(q, sizeof q, "%.*shint", (int)(strlen(p) - 4), p);
            char r[1024];
            snprintf(r, sizeof r, "%.*smhint", (int)(strlen(p) - 4), p);
            assert_int_equal(rename(q, r), 0);
        }
        free(p);
    }
    free(after_merge);
    for (size_t i = 0; i < 2 * nd; i++) {
        char *p = at(saved, strrchr(names[i], '/') + 1);
        copy_file(p, names[i]);
        free(p);
    }
    char *empty = at(dir, "0000009000.data"), *tmp = at(dir, "MANIFEST.tmp");
    uint8_t hdr[BC_DATA_HDR];
    bc_data_hdr_encode(hdr, BC_KIND_WRITE, 9000, 77);
    assert_int_equal(bt_write_file(empty, hdr, sizeof hdr), 0);
    assert_int_equal(bt_write_file(tmp, "partial", 7), 0);

    char *before = tu_dir_state(dir);
    assert_int_equal(bt_open_ro(dir, &db), KV_OK);
    expect_all(db, ver);
    assert_int_equal(kv_check(db), KV_OK);
    assert_int_equal(kv_bitcask_merge(db), KV_INVALID); /* a read-only handle never merges */
    char k[16];
    assert_int_equal(kv_delete(db, k, key_of(1, k)), KV_INVALID);
    FILE *out = tmpfile();
    assert_int_equal(kv_dump(db, out, NULL, -1), KV_OK);
    fclose(out);
    assert_int_equal(kv_close(db), KV_OK);
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);

    expect_opens(dir, ver);
    assert_int_equal(bt_size(empty), -1);
    assert_int_equal(bt_size(tmp), -1);
    for (size_t i = 0; i < 2 * nd; i++) {
        if (bt_size(names[i]) != -1)
            fail_msg("%s, replaced by the merge, survived the open", names[i]);
        free(names[i]);
    }
    size_t left = 0;
    free(bt_nth_file(dir, ".mdata", 0, &left));
    assert_int_equal(left, 0);
    free(names);
    free(empty);
    free(tmp);
    free(active);
    free(man);
    free(man_saved);
    free(act_saved);
    tu_rmtree(saved);
    free(saved);
    tu_rmtree(dir);
    free(dir);
}

/* The active file's entry in dir's MANIFEST: *path gets its data file (malloc'd), the return
 * value its durable length in bytes. */
static uint64_t active_entry(const char *dir, char **path)
{
    char *mp = at(dir, BC_MANIFEST_NAME);
    void *data = NULL;
    size_t len = 0;
    kv_fs *fs = kv_fs_posix();
    assert_non_null(fs);
    assert_int_equal(kv_fs_read_file(fs, mp, 1 << 20, &data, &len), KV_OK);
    kv_fs_destroy(fs);
    bc_manifest m;
    assert_int_equal(bc_manifest_decode(mp, data, len, &m), KV_OK);
    uint64_t durable = 0;
    *path = NULL;
    for (uint32_t i = 0; i < m.nfiles; i++) {
        if (m.files[i].state != BC_MAN_ACTIVE)
            continue;
        char name[32];
        snprintf(name, sizeof name, "%010llu.data", (unsigned long long)m.files[i].id);
        *path = at(dir, name);
        durable = m.files[i].length;
    }
    assert_non_null(*path);
    bc_manifest_free(&m);
    free(data);
    free(mp);
    return durable;
}

/* A killed session (nothing closed) over make_db's database (sealed files): keys 0..9 at
 * version 3 into the active file, kv_sync, a merge (which drops their older records, since the
 * keydir points at the active file), then keys 10..14 at version 4, never synced. *ver gets the
 * model, *base the model before this session, *active the active file's path (malloc'd), *durable
 * its durable length (bytes) as MANIFEST records it; returns the directory (malloc'd). */
static char *merged_then_killed(const char *tag, int *ver, int *base, char **active,
                                uint64_t *durable)
{
    char *dir = make_db(tag, ver), *scratch = tu_mkdtemp("bcf-durable-ff");
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_faultfs_set_real_sync(fs, false);
    kv_db *db;
    assert_int_equal(bt_open(dir, KV_DURABILITY_OS, fs, &db, "file_size=4K", "merge=manual", NULL),
                     KV_OK);
    memcpy(base, ver, NKEYS * sizeof *ver);
    put_range(db, 0, 10, 3);
    assert_int_equal(kv_sync(db), KV_OK);
    char *before_merge = NULL;
    assert_int_equal(active_entry(dir, &before_merge), BC_DATA_HDR);
    assert_int_equal(kv_bitcask_merge(db), KV_OK);
    *durable = active_entry(dir, active);
    assert_string_equal(*active, before_merge);
    /* the merge made the whole file durable (the new records, then a mark) and said so */
    assert_int_equal(bt_size(*active), (long long)*durable);
    assert_true(*durable >= BC_DATA_HDR + 10 * bc_rec_size(6, VLEN) + KV_RECLOG_MARK_SIZE);
    put_range(db, 10, 15, 4);
    kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
    kv_close(db); /* fails at once: the process is gone */
    assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_KEEP, 1), KV_OK);
    kv_fs_destroy(fs);
    assert_true(bt_size(*active) > (long long)*durable);
    for (int i = 0; i < 15; i++)
        ver[i] = i < 10 ? 3 : 4;
    free(before_merge);
    tu_rmtree(scratch);
    free(scratch);
    return dir;
}

/* Zeros bytes [from, to) of path. */
static void zero_range(const char *path, uint64_t from, uint64_t to)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)from, SEEK_SET), 0);
    for (uint64_t i = from; i < to; i++)
        assert_int_equal(fputc(0, f), 0);
    fclose(f);
}

/* A merge dropped the older versions of keys whose newest records sit in the active file, and
 * MANIFEST's commit recorded the active file's durable length past them. Damage below that
 * length that takes the merge's sync mark along (a cut inside the last synced record, the tail
 * zeroed from there) looks like a torn tail to the scanner, but cutting it would lose those keys
 * altogether: it is KV_CORRUPTION naming the active file and an offset, from a writable and a
 * read-only open, and nothing is changed. A cut past the durable length, in bytes never synced,
 * is still a torn tail: a prefix of the history opens. */
static void test_damage_below_durable_length_is_corruption(void **state)
{
    (void)state;
    uint64_t rec = bc_rec_size(6, VLEN);
    for (int how = 0; how < 3; how++) {
        int ver[NKEYS], base[NKEYS];
        char *active = NULL;
        uint64_t durable = 0;
        char *dir = merged_then_killed("bcf-durable", ver, base, &active, &durable);
        long long size = bt_size(active);
        /* inside the last version 3 record, before the merge's mark (the last durable bytes) */
        uint64_t x = durable - KV_RECLOG_MARK_SIZE - rec / 2;
        if (how == 0) {
            assert_int_equal(truncate(active, (off_t)x), 0);
        } else if (how == 1) {
            zero_range(active, x, (uint64_t)size);
        } else {
            /* past the durable length: its mark, keys 10 and 11, and half of key 12 */
            uint64_t cut = durable + KV_RECLOG_MARK_SIZE + 2 * rec;
            assert_int_equal(truncate(active, (off_t)(cut + rec / 2)), 0);
            for (int i = 12; i < 15; i++)
                ver[i] = base[i];
            expect_opens(dir, ver);
            assert_int_equal(bt_size(active), (long long)cut);
        }
        if (how < 2) {
            expect_refused(dir, strrchr(active, '/') + 1);
            assert_non_null(strstr(kv_errmsg(), "offset"));
            assert_non_null(strstr(kv_errmsg(), "durable"));
        }
        free(active);
        tu_rmtree(dir);
        free(dir);
    }
}

/* A read-only open of a database whose hint file is missing scans the data file in memory and
 * writes no hint; the writable open after it writes the hint. */
static void test_read_only_writes_no_hint(void **state)
{
    (void)state;
    int ver[NKEYS];
    char *dir = make_db("bcf-ro-hint", ver);
    char *h = bt_nth_file(dir, ".hint", 1, NULL);
    assert_int_equal(unlink(h), 0);
    kv_db *db;
    char *before = tu_dir_state(dir);
    assert_int_equal(bt_open_ro(dir, &db), KV_OK);
    assert_int_equal(bt_stat(db, "startup_data_scans"), 1);
    expect_all(db, ver);
    assert_int_equal(kv_close(db), KV_OK);
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    assert_int_equal(bt_size(h), -1);
    assert_int_equal(open_rw(dir, &db), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    assert_true(bt_size(h) > 0);
    free(before);
    free(after);
    free(h);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deleted_data_file),
        cmocka_unit_test(test_deleted_merge_output),
        cmocka_unit_test(test_older_shorter_copy_and_appended_bytes),
        cmocka_unit_test(test_swapped_and_foreign_files),
        cmocka_unit_test(test_deleted_and_stale_manifest),
        cmocka_unit_test(test_deleted_active_file_after_crash),
        cmocka_unit_test(test_crash_leftovers_read_only_then_settled),
        cmocka_unit_test(test_read_only_writes_no_hint),
        cmocka_unit_test(test_damage_below_durable_length_is_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
