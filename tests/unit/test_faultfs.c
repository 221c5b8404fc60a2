/* faultfs: each rule of the power-loss model on small files (common/faultfs.h). */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "faultfs.h"
#include "faultfs_policy.h"
#include "testutil.h"

/* A test's world: a temporary root holding the data directory and the scratch directory. */
typedef struct world {
    char *root;
    char dir[512];
    char scratch[512];
    kv_fs *fs;
} world;

static world *world_new(void)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->root = tu_mkdtemp("faultfs");
    snprintf(w->dir, sizeof w->dir, "%s/d", w->root);
    snprintf(w->scratch, sizeof w->scratch, "%s/scratch", w->root);
    assert_int_equal(mkdir(w->dir, 0755), 0);
    w->fs = kv_faultfs_new(w->scratch);
    assert_non_null(w->fs);
    return w;
}

static void world_free(world *w)
{
    kv_fs_destroy(w->fs);
    tu_rmtree(w->root);
    free(w->root);
    free(w);
}

/* "dir/name" in a static buffer (one at a time per slot). */
static const char *P(world *w, int slot, const char *name)
{
    static char buf[4][600];
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", w->dir, name);
    return buf[slot];
}

/* Creates a file behind faultfs's back (so it counts as durable). */
static void put_real(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* Reads a whole file with POSIX; returns its length, or -1 when it does not exist. */
static long get_real(const char *path, void *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    assert_true(n >= 0);
    return (long)n;
}

static bool exists_real(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Opens path through faultfs with flags. */
static kv_file *fopen_ff(world *w, const char *path, int flags)
{
    kv_file *f = NULL;
    assert_int_equal(kv_fs_open(w->fs, path, flags, &f), KV_OK);
    return f;
}

static void assert_content(const char *path, const char *want)
{
    char buf[8192];
    long n = get_real(path, buf, sizeof buf);
    assert_int_equal(n, (long)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
}

static void test_append_unsynced_lost(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "AAAA", 4);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_pwrite(f, "BBBB", 4, 4), KV_OK);
    assert_content(P(w, 0, "f"), "AAAABBBB"); /* carried out on disk at once */
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_content(P(w, 0, "f"), "AAAA");
    kv_file_close(f);
    world_free(w);
}

static void test_append_synced_kept(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "AAAA", 4);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_pwrite(f, "BBBB", 4, 4), KV_OK);
    assert_int_equal(kv_file_fdatasync(f), KV_OK);
    assert_int_equal(kv_file_pwrite(f, "CCCC", 4, 8), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_content(P(w, 0, "f"), "AAAABBBB");
    kv_file_close(f);
    world_free(w);
}

static void test_keep_keeps_everything(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "a"), "old", 3);
    kv_file *f = fopen_ff(w, P(w, 1, "new"), KV_FS_CREATE);
    assert_int_equal(kv_file_pwrite(f, "xyz", 3, 0), KV_OK);
    assert_int_equal(kv_fs_unlink(w->fs, P(w, 0, "a")), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_KEEP, 1), KV_OK);
    assert_content(P(w, 1, "new"), "xyz");
    assert_false(exists_real(P(w, 0, "a")));
    kv_file_close(f);
    world_free(w);
}

static void test_create_without_dirsync_vanishes(void **state)
{
    (void)state;
    world *w = world_new();
    kv_file *f = fopen_ff(w, P(w, 0, "a"), KV_FS_CREATE);
    assert_int_equal(kv_file_pwrite(f, "data", 4, 0), KV_OK);
    assert_int_equal(kv_file_fdatasync(f), KV_OK);
    kv_file_close(f);
    /* b: created, synced, and its directory fsynced: it stays */
    f = fopen_ff(w, P(w, 1, "b"), KV_FS_CREATE | KV_FS_EXCL);
    assert_int_equal(kv_file_pwrite(f, "bbbb", 4, 0), KV_OK);
    assert_int_equal(kv_file_fdatasync(f), KV_OK);
    kv_file_close(f);
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
    /* c: created after the fsync of the directory */
    f = fopen_ff(w, P(w, 2, "c"), KV_FS_CREATE);
    kv_file_close(f);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_false(exists_real(P(w, 2, "c")));
    assert_content(P(w, 1, "b"), "bbbb");
    world_free(w);
}

static void test_create_exclusive(void **state)
{
    (void)state;
    world *w = world_new();
    kv_file *f = fopen_ff(w, P(w, 0, "a"), KV_FS_CREATE | KV_FS_EXCL);
    kv_file_close(f);
    kv_file *g = NULL;
    assert_int_equal(kv_fs_open(w->fs, P(w, 0, "a"), KV_FS_CREATE | KV_FS_EXCL, &g), KV_INVALID);
    assert_int_equal(kv_fs_open(w->fs, P(w, 1, "missing"), KV_FS_READ, &g), KV_NOT_FOUND);
    world_free(w);
}

static void test_rename_undone(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "a"), "old-a", 5);
    put_real(P(w, 1, "b"), "old-b", 5);
    assert_int_equal(kv_fs_rename(w->fs, P(w, 0, "a"), P(w, 1, "b")), KV_OK);
    assert_false(exists_real(P(w, 0, "a")));
    assert_content(P(w, 1, "b"), "old-a");
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 7), KV_OK);
    assert_content(P(w, 0, "a"), "old-a");
    assert_content(P(w, 1, "b"), "old-b");
    world_free(w);
}

static void test_rename_durable_after_dirsync(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "a"), "old-a", 5);
    put_real(P(w, 1, "b"), "old-b", 5);
    assert_int_equal(kv_fs_rename(w->fs, P(w, 0, "a"), P(w, 1, "b")), KV_OK);
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 7), KV_OK);
    assert_false(exists_real(P(w, 0, "a")));
    assert_content(P(w, 1, "b"), "old-a");
    /* the scratch directory is left empty */
    kv_fs *px = kv_fs_posix();
    kv_namelist l = {0};
    assert_int_equal(kv_fs_list(px, w->scratch, &l), KV_OK);
    assert_int_equal(l.count, 0);
    kv_namelist_free(&l);
    kv_fs_destroy(px);
    world_free(w);
}

/* The atomic replace of docs/design.md section 6, cut after the rename: old or new, whole. */
static void test_replace_file_old_or_new(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "CURRENT"), "old", 3);
    for (uint64_t seed = 0; seed < 8; seed++) {
        put_real(P(w, 0, "CURRENT"), "old", 3);
        kv_fs_destroy(w->fs);
        w->fs = kv_faultfs_new(w->scratch);
        assert_non_null(w->fs);
        uint64_t before = kv_faultfs_ops(w->fs);
        kv_faultfs_set_crash_at(w->fs, before + 1 + seed % 6); /* open, write, sync, rename... */
        kv_status s = kv_fs_replace_file(w->fs, w->dir, "CURRENT", "new!", 4);
        assert_true(s == KV_OK || kv_faultfs_crashed(w->fs));
        assert_int_equal(kv_faultfs_crash(w->fs, (kv_crash_policy)(seed % 4), seed), KV_OK);
        char buf[16];
        long n = get_real(P(w, 0, "CURRENT"), buf, sizeof buf);
        assert_true((n == 3 && !memcmp(buf, "old", 3)) || (n == 4 && !memcmp(buf, "new!", 4)));
        unlink(P(w, 1, "CURRENT.tmp"));
    }
    world_free(w);
}

static void test_overwrite_restored(void **state)
{
    (void)state;
    world *w = world_new();
    char old[2048], buf[4096];
    memset(old, 'x', sizeof old);
    put_real(P(w, 0, "f"), old, sizeof old);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    char y[1000];
    memset(y, 'y', sizeof y);
    assert_int_equal(kv_file_pwrite(f, y, sizeof y, 100), KV_OK);
    assert_int_equal(kv_file_pwrite(f, "zz", 2, 600), KV_OK); /* a second write, same sector */
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 3), KV_OK);
    assert_int_equal(get_real(P(w, 0, "f"), buf, sizeof buf), (long)sizeof old);
    assert_memory_equal(buf, old, sizeof old);
    kv_file_close(f);
    world_free(w);
}

static void test_overwrite_after_sync(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "0123456789", 10);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_pwrite(f, "ab", 2, 2), KV_OK);
    assert_int_equal(kv_file_fsync(f), KV_OK);
    assert_int_equal(kv_file_pwrite(f, "CD", 2, 4), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 3), KV_OK);
    assert_content(P(w, 0, "f"), "01ab456789");
    kv_file_close(f);
    world_free(w);
}

static void test_truncate_restored(void **state)
{
    (void)state;
    world *w = world_new();
    char old[1500], buf[4096];
    for (size_t i = 0; i < sizeof old; i++)
        old[i] = (char)('a' + i % 26);
    put_real(P(w, 0, "f"), old, sizeof old);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_truncate(f, 100), KV_OK);
    assert_int_equal(kv_file_pwrite(f, "new", 3, 100), KV_OK);
    assert_int_equal(kv_file_truncate(f, 3000), KV_OK);
    uint64_t size;
    assert_int_equal(kv_file_size(f, &size), KV_OK);
    assert_int_equal(size, 3000);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 3), KV_OK);
    assert_int_equal(get_real(P(w, 0, "f"), buf, sizeof buf), (long)sizeof old);
    assert_memory_equal(buf, old, sizeof old);
    kv_file_close(f);
    /* open with TRUNC is a truncate too */
    world_free(w);
}

static void test_open_trunc_restored(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "durable", 7);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_TRUNC);
    assert_int_equal(kv_file_pwrite(f, "X", 1, 0), KV_OK);
    assert_content(P(w, 0, "f"), "X");
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 3), KV_OK);
    assert_content(P(w, 0, "f"), "durable");
    kv_file_close(f);
    world_free(w);
}

/* One TORN crash of a 8-sector file overwritten and extended to 12 sectors in one write.
 * Returns the number of sectors with new content; checks each sector is old or new, whole. */
static int torn_once(uint64_t seed, long *size_out)
{
    world *w = world_new();
    char old[4096], nw[6144], buf[8192];
    memset(old, 'o', sizeof old);
    memset(nw, 'n', sizeof nw);
    put_real(P(w, 0, "f"), old, sizeof old);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_pwrite(f, nw, sizeof nw, 0), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_TORN, seed), KV_OK);
    kv_file_close(f);
    long n = get_real(P(w, 0, "f"), buf, sizeof buf);
    assert_true(n == 4096 || n == 6144);
    int fresh = 0;
    for (long s = 0; s < n / 512; s++) {
        const char *p = buf + s * 512;
        char c = p[0];
        /* below the durable size: old or new; in the extension: new or zeros */
        if (s < 8)
            assert_true(c == 'o' || c == 'n');
        else
            assert_true(c == 'n' || c == 0);
        for (int i = 1; i < 512; i++)
            assert_int_equal(p[i], c);
        fresh += c == 'n';
    }
    *size_out = n;
    world_free(w);
    return fresh;
}

static void test_torn_sectors_old_or_new(void **state)
{
    (void)state;
    bool all_old = false, all_new = false, mixed = false, short_size = false, long_size = false;
    for (uint64_t seed = 0; seed < 40; seed++) {
        long size;
        int fresh = torn_once(seed, &size);
        int sectors = (int)(size / 512);
        all_old |= fresh == 0;
        all_new |= fresh == sectors;
        mixed |= fresh > 0 && fresh < sectors;
        short_size |= size == 4096;
        long_size |= size == 6144;
    }
    assert_true(mixed);
    assert_true(all_old || all_new || mixed);
    assert_true(short_size);
    assert_true(long_size);
}

/* torn-bytes: one crash of a 1000-byte durable file ('o'), overwritten at 100..1599 by one
 * write ('n') and then at 1300..1399 by a second one ('m'), nothing synced. Every byte must be
 * its durable content (old, or zero past the durable size) or its current content; the size
 * must lie between 1000 and 1600. Returns the file in buf and its size. */
static long torn_bytes_once(uint64_t seed, char *buf, size_t cap)
{
    world *w = world_new();
    char old[1000], nw[1500], m[100];
    memset(old, 'o', sizeof old);
    memset(nw, 'n', sizeof nw);
    memset(m, 'm', sizeof m);
    put_real(P(w, 0, "f"), old, sizeof old);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_pwrite(f, nw, sizeof nw, 100), KV_OK);
    assert_int_equal(kv_file_pwrite(f, m, sizeof m, 1300), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_TORN_BYTES, seed), KV_OK);
    kv_file_close(f);
    long n = get_real(P(w, 0, "f"), buf, cap);
    assert_true(n >= 1000 && n <= 1600);
    for (long i = 0; i < n; i++) {
        char cur = i < 100 ? 'o' : (i >= 1300 && i < 1400) ? 'm' : 'n';
        char dur = i < 1000 ? 'o' : 0;
        if (buf[i] != cur && buf[i] != dur)
            fail_msg("seed %llu byte %ld: %d is neither durable %d nor current %d",
                     (unsigned long long)seed, i, buf[i], dur, cur);
    }
    world_free(w);
    return n;
}

/* The first offset in [from, to) where buf changes from its byte at from, or to. */
static long run_end(const char *buf, long from, long to)
{
    long i = from;
    while (i < to && buf[i] == buf[from])
        i++;
    return i;
}

static void test_torn_bytes_old_or_new(void **state)
{
    (void)state;
    char buf[4096];
    bool kept_prefix = false, lost_then_kept = false, odd_cut = false, cut_size = false;
    bool zero_then_data = false, whole_new = false, whole_old = false;
    for (uint64_t seed = 0; seed < 300; seed++) {
        long n = torn_bytes_once(seed, buf, sizeof buf);
        /* the first write's bytes inside the old file: [100, 1000) */
        long e = run_end(buf, 100, 1000);
        if (e < 1000 && e % 512 != 0)
            odd_cut = true; /* a boundary that is no sector boundary */
        if (buf[100] == 'n' && e < 1000)
            kept_prefix = true;
        if (buf[100] == 'o' && e < 1000 && buf[e] == 'n')
            lost_then_kept = true;
        long lim = n < 1300 ? n : 1300;
        if (buf[100] == 'n' && run_end(buf, 100, lim) == lim)
            whole_new = true;
        if (buf[100] == 'o' && run_end(buf, 100, 1000) == 1000 &&
            (n == 1000 || (buf[1000] == 0 && run_end(buf, 1000, lim) == lim)))
            whole_old = true;
        /* past the durable size: zeros followed by written bytes */
        for (long i = 1000; i + 1 < n; i++)
            if (buf[i] == 0 && buf[i + 1] == 'n')
                zero_then_data = true;
        cut_size |= n != 1000 && n != 1600;
    }
    assert_true(kept_prefix);
    assert_true(lost_then_kept);
    assert_true(odd_cut);
    assert_true(zero_then_data);
    assert_true(whole_new);
    assert_true(whole_old);
    assert_true(cut_size);
    /* the same seed gives the same file */
    char again[4096];
    long n1 = torn_bytes_once(77, buf, sizeof buf);
    long n2 = torn_bytes_once(77, again, sizeof again);
    assert_int_equal(n1, n2);
    assert_memory_equal(buf, again, (size_t)n1);
}

/* torn-bytes never touches what a sync made durable, and a lost extension reads as zeros. */
static void test_torn_bytes_synced_kept(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 40; seed++) {
        world *w = world_new();
        char a[700], b[900], buf[4096];
        memset(a, 'a', sizeof a);
        memset(b, 'b', sizeof b);
        kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_CREATE);
        assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
        assert_int_equal(kv_file_pwrite(f, a, sizeof a, 0), KV_OK);
        assert_int_equal(kv_file_fdatasync(f), KV_OK);
        assert_int_equal(kv_file_pwrite(f, b, sizeof b, sizeof a), KV_OK);
        assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_TORN_BYTES, seed), KV_OK);
        kv_file_close(f);
        long n = get_real(P(w, 0, "f"), buf, sizeof buf);
        assert_true(n >= 700 && n <= 1600);
        assert_memory_equal(buf, a, sizeof a);
        for (long i = 700; i < n; i++)
            assert_true(buf[i] == 'b' || buf[i] == 0);
        world_free(w);
    }
}

/* A failed fdatasync dooms what it covered at byte granularity too, even when a later write
 * shares the sector and a later sync succeeds. */
static void test_torn_bytes_doomed(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 20; seed++) {
        world *w = world_new();
        char old[512], buf[1024];
        memset(old, 'o', sizeof old);
        put_real(P(w, 0, "f"), old, sizeof old);
        kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
        assert_int_equal(kv_file_pwrite(f, "dddd", 4, 10), KV_OK);
        kv_faultfs_fail(w->fs, KV_FAULT_SYNC, 1, EIO, false);
        assert_int_equal(kv_file_fdatasync(f), KV_IO);
        assert_int_equal(kv_file_fdatasync(f), KV_OK);
        assert_int_equal(kv_file_pwrite(f, "kk", 2, 100), KV_OK);
        assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_TORN_BYTES, seed), KV_OK);
        kv_file_close(f);
        assert_int_equal(get_real(P(w, 0, "f"), buf, sizeof buf), 512);
        assert_memory_equal(buf + 10, "oooo", 4);
        assert_true((buf[100] == 'k' || buf[100] == 'o') && (buf[101] == 'k' || buf[101] == 'o'));
        world_free(w);
    }
}

/* The policy piece alone: tears lie inside the write, alternate, and depend only on the seed
 * and the write; sizes stay between durable and current. */
static void test_policy_decisions(void **state)
{
    (void)state;
    int kinds[3] = {0, 0, 0}; /* kept whole, lost whole, torn */
    for (uint64_t seed = 0; seed < 50; seed++) {
        ff_policy p;
        ff_policy_init(&p, KV_CRASH_TORN_BYTES, seed);
        for (uint64_t wid = 1; wid < 40; wid++) {
            ff_tear t, t2;
            ff_policy_write_tear(&p, wid, 1000, 300, &t);
            ff_policy_write_tear(&p, wid, 1000, 300, &t2);
            assert_int_equal(t.n, t2.n);
            assert_true(t.n >= 1 && t.n <= FF_TEAR_MAX_PIECES);
            uint64_t prev = 1000;
            for (int i = 0; i < t.n; i++) {
                assert_true(t.end[i] > prev);
                assert_int_equal(t.end[i], t2.end[i]);
                prev = t.end[i];
            }
            assert_int_equal(prev, 1300);
            kinds[t.n > 1 ? 2 : t.first_lost ? 1 : 0]++;
        }
        uint64_t sz = ff_policy_size(&p, 100, 5000);
        assert_true(sz >= 100 && sz <= 5000);
        sz = ff_policy_size(&p, 5000, 100);
        assert_true(sz >= 100 && sz <= 5000);
        assert_int_equal(ff_policy_size(&p, 7, 7), 7);
    }
    for (int i = 0; i < 3; i++)
        assert_true(kinds[i] > 300); /* about a third each of 1950 */
    ff_policy lose, keep;
    ff_policy_init(&lose, KV_CRASH_LOSE, 1);
    ff_policy_init(&keep, KV_CRASH_KEEP, 1);
    assert_int_equal(ff_policy_size(&lose, 10, 20), 10);
    assert_int_equal(ff_policy_size(&keep, 10, 20), 20);
    assert_true(ff_policy_sector_lost(&lose, 3, false));
    assert_false(ff_policy_sector_lost(&keep, 3, false));
    assert_true(ff_policy_sector_lost(&keep, 3, true)); /* doomed */
    assert_int_equal(ff_policy_names_kept(&lose, 5), 0);
    assert_int_equal(ff_policy_names_kept(&keep, 5), 5);
}

/* RANDOM: each write call is kept or lost as a whole. */
static void test_random_per_write(void **state)
{
    (void)state;
    bool kept = false, lost = false, split = false;
    for (uint64_t seed = 0; seed < 32; seed++) {
        world *w = world_new();
        char old[4096], a[1024], b[1024], buf[4096];
        memset(old, 'o', sizeof old);
        memset(a, 'a', sizeof a);
        memset(b, 'b', sizeof b);
        put_real(P(w, 0, "f"), old, sizeof old);
        kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
        assert_int_equal(kv_file_pwrite(f, a, sizeof a, 0), KV_OK);    /* sectors 0, 1 */
        assert_int_equal(kv_file_pwrite(f, b, sizeof b, 2048), KV_OK); /* sectors 4, 5 */
        assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_RANDOM, seed), KV_OK);
        kv_file_close(f);
        assert_int_equal(get_real(P(w, 0, "f"), buf, sizeof buf), 4096);
        bool ka = buf[0] == 'a', kb = buf[2048] == 'b';
        for (int i = 0; i < 1024; i++) {
            assert_int_equal(buf[i], ka ? 'a' : 'o');
            assert_int_equal(buf[2048 + i], kb ? 'b' : 'o');
        }
        assert_memory_equal(buf + 1024, old, 1024);
        kept |= ka && kb;
        lost |= !ka && !kb;
        split |= ka != kb;
        world_free(w);
    }
    assert_true(kept);
    assert_true(lost);
    assert_true(split);
}

static void test_unlink_undone(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "data", 4);
    put_real(P(w, 1, "g"), "gone", 4);
    assert_int_equal(kv_fs_unlink(w->fs, P(w, 1, "g")), KV_OK);
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
    assert_int_equal(kv_fs_unlink(w->fs, P(w, 0, "f")), KV_OK);
    bool ex = true;
    assert_int_equal(kv_fs_exists(w->fs, P(w, 0, "f"), &ex), KV_OK);
    assert_false(ex);
    assert_int_equal(kv_fs_unlink(w->fs, P(w, 0, "f")), KV_NOT_FOUND);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_content(P(w, 0, "f"), "data");
    assert_false(exists_real(P(w, 1, "g")));
    world_free(w);
}

/* An unlinked file whose last writes were not synced comes back with its durable content. */
static void test_unlink_undone_with_data(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "durable", 7);
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
    assert_int_equal(kv_file_pwrite(f, "DURABLE+more", 12, 0), KV_OK);
    kv_file_close(f);
    assert_int_equal(kv_fs_rename(w->fs, P(w, 0, "f"), P(w, 1, "g")), KV_OK);
    assert_int_equal(kv_fs_unlink(w->fs, P(w, 1, "g")), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_content(P(w, 0, "f"), "durable");
    assert_false(exists_real(P(w, 1, "g")));
    world_free(w);
}

/* rmdir is a name operation of the parent: undone at a crash (the directory and, through the
 * undone unlink, its file come back) unless the parent was fsynced since. */
static void test_rmdir_undone(void **state)
{
    (void)state;
    for (int synced = 0; synced < 2; synced++) {
        world *w = world_new();
        assert_int_equal(mkdir(P(w, 0, "sub"), 0755), 0);
        put_real(P(w, 1, "sub/f"), "data", 4);
        assert_int_equal(kv_fs_unlink(w->fs, P(w, 1, "sub/f")), KV_OK);
        assert_int_equal(kv_faultfs_rmdir(w->fs, P(w, 0, "sub")), KV_OK);
        assert_false(exists_real(P(w, 0, "sub")));
        if (synced) {
            assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
            assert_int_equal(kv_faultfs_ops(w->fs), 3);
        }
        kv_status cs = kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1);
        if (cs != KV_OK)
            fprintf(stderr, "crash: %s\n", kv_errmsg());
        assert_int_equal(cs, KV_OK);
        if (synced) {
            assert_false(exists_real(P(w, 0, "sub")));
        } else {
            assert_true(exists_real(P(w, 0, "sub")));
            assert_content(P(w, 1, "sub/f"), "data");
        }
        world_free(w);
    }
}

static void test_mkdir_undone(void **state)
{
    (void)state;
    world *w = world_new();
    assert_int_equal(kv_fs_mkdir(w->fs, P(w, 0, "sub")), KV_OK);
    assert_int_equal(kv_fs_mkdir(w->fs, P(w, 0, "sub")), KV_OK); /* exists: fine */
    kv_file *f = fopen_ff(w, P(w, 1, "sub/x"), KV_FS_CREATE);
    kv_file_close(f);
    assert_int_equal(kv_fs_fsync_dir(w->fs, P(w, 0, "sub")), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_false(exists_real(P(w, 0, "sub")));
    world_free(w);
}

/* RANDOM names: per directory a prefix of the pending operations survives. */
static void test_names_prefix(void **state)
{
    (void)state;
    int seen[5] = {0};
    for (uint64_t seed = 0; seed < 40; seed++) {
        world *w = world_new();
        static const char *names[4] = {"n0", "n1", "n2", "n3"};
        for (int i = 0; i < 4; i++)
            kv_file_close(fopen_ff(w, P(w, 0, names[i]), KV_FS_CREATE));
        assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_RANDOM, seed), KV_OK);
        int k = 0;
        while (k < 4 && exists_real(P(w, 0, names[k])))
            k++;
        for (int i = k; i < 4; i++)
            assert_false(exists_real(P(w, 0, names[i])));
        seen[k]++;
        world_free(w);
    }
    int outcomes = 0;
    for (int k = 0; k <= 4; k++)
        outcomes += seen[k] > 0;
    assert_true(outcomes >= 3);
}

/* A rename between directories made durable by the fsync of either directory survives, and
 * with it the earlier operations of the other directory (the journal commits in order). */
static void test_cross_dir_rename(void **state)
{
    (void)state;
    world *w = world_new();
    assert_int_equal(kv_fs_mkdir(w->fs, P(w, 0, "s")), KV_OK);
    assert_int_equal(kv_fs_mkdir(w->fs, P(w, 0, "t")), KV_OK);
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
    kv_file_close(fopen_ff(w, P(w, 0, "s/z"), KV_FS_CREATE));
    kv_file_close(fopen_ff(w, P(w, 0, "s/x"), KV_FS_CREATE));
    assert_int_equal(kv_fs_rename(w->fs, P(w, 0, "s/x"), P(w, 1, "t/y")), KV_OK);
    assert_int_equal(kv_fs_fsync_dir(w->fs, P(w, 2, "t")), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_true(exists_real(P(w, 1, "t/y")));
    assert_false(exists_real(P(w, 0, "s/x")));
    assert_true(exists_real(P(w, 0, "s/z")));
    world_free(w);
}

static void test_crash_at(void **state)
{
    (void)state;
    world *w = world_new();
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_CREATE);    /* op 1 */
    assert_int_equal(kv_file_pwrite(f, "one", 3, 0), KV_OK); /* op 2 */
    char buf[8];
    size_t got;
    assert_int_equal(kv_file_pread(f, buf, 3, 0, &got), KV_OK); /* not counted */
    bool ex;
    assert_int_equal(kv_fs_exists(w->fs, w->dir, &ex), KV_OK); /* not counted */
    assert_int_equal(kv_faultfs_ops(w->fs), 2);
    kv_faultfs_set_crash_at(w->fs, 4);
    assert_int_equal(kv_file_fdatasync(f), KV_OK); /* op 3 */
    assert_false(kv_faultfs_crashed(w->fs));
    assert_int_equal(kv_file_pwrite(f, "two", 3, 3), KV_IO); /* op 4: not done */
    assert_string_equal(kv_errmsg(), "faultfs: crashed at operation 4");
    assert_true(kv_faultfs_crashed(w->fs));
    assert_int_equal(kv_file_pread(f, buf, 3, 0, &got), KV_IO);
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_IO);
    assert_int_equal(kv_fs_exists(w->fs, w->dir, &ex), KV_IO);
    assert_string_equal(kv_errmsg(), "faultfs: crashed at operation 4");
    assert_content(P(w, 0, "f"), "one");
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_KEEP, 1), KV_OK);
    assert_content(P(w, 0, "f"), "one");
    assert_int_equal(kv_file_close(f), KV_OK);
    world_free(w);
}

/* Crash at every operation of a small workload: every run ends in a legal state. */
static void test_crash_at_every_op(void **state)
{
    (void)state;
    uint64_t total = 0;
    for (uint64_t n = 1;; n++) {
        world *w = world_new();
        kv_faultfs_set_crash_at(w->fs, n);
        kv_status s = kv_fs_replace_file(w->fs, w->dir, "M", "v1", 2);
        if (s == KV_OK)
            s = kv_fs_replace_file(w->fs, w->dir, "M", "v2", 2);
        if (s == KV_OK) {
            assert_false(kv_faultfs_crashed(w->fs));
            total = kv_faultfs_ops(w->fs);
            world_free(w);
            break;
        }
        assert_true(kv_faultfs_crashed(w->fs));
        assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, n), KV_OK);
        char buf[8];
        long len = get_real(P(w, 0, "M"), buf, sizeof buf);
        assert_true(len == -1 || (len == 2 && (!memcmp(buf, "v1", 2) || !memcmp(buf, "v2", 2))));
        world_free(w);
        assert_true(n < 100);
    }
    assert_int_equal(total, 10); /* per replace: open, pwrite, fdatasync, rename, fsync_dir */
}

static void test_eio_on_fdatasync(void **state)
{
    (void)state;
    for (int pol = KV_CRASH_LOSE; pol <= KV_CRASH_TORN; pol++) {
        if (pol == KV_CRASH_KEEP)
            continue;
        world *w = world_new();
        put_real(P(w, 0, "f"), "AAAA", 4);
        kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_WRITE);
        assert_int_equal(kv_file_pwrite(f, "BBBB", 4, 4), KV_OK);
        kv_faultfs_fail(w->fs, KV_FAULT_SYNC, 1, EIO, false);
        assert_int_equal(kv_file_fdatasync(f), KV_IO);
        assert_non_null(strstr(kv_errmsg(), "fdatasync("));
        /* a retry "succeeds", but the bytes were dropped for good */
        assert_int_equal(kv_file_fdatasync(f), KV_OK);
        assert_int_equal(kv_faultfs_crash(w->fs, (kv_crash_policy)pol, 5), KV_OK);
        char buf[16];
        long n = get_real(P(w, 0, "f"), buf, sizeof buf);
        assert_int_equal(n, 8);
        assert_memory_equal(buf, "AAAA\0\0\0\0", 8);
        kv_file_close(f);
        world_free(w);
    }
}

static void test_enospc_on_pwrite(void **state)
{
    (void)state;
    world *w = world_new();
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_CREATE);
    char data[1000];
    memset(data, 'd', sizeof data);
    kv_faultfs_fail(w->fs, KV_FAULT_WRITE, 2, ENOSPC, false);
    assert_int_equal(kv_file_pwrite(f, data, 10, 0), KV_OK);
    assert_int_equal(kv_file_pwrite(f, data, sizeof data, 10), KV_NOSPACE);
    uint64_t size;
    assert_int_equal(kv_file_size(f, &size), KV_OK);
    assert_true(size > 10 && size < 1010);                   /* a prefix was written */
    assert_int_equal(kv_file_pwrite(f, data, 10, 0), KV_OK); /* not sticky */
    kv_faultfs_fail(w->fs, KV_FAULT_WRITE, 1, ENOSPC, true);
    assert_int_equal(kv_file_pwrite(f, data, 10, 0), KV_NOSPACE);
    assert_int_equal(kv_file_pwrite(f, data, 10, 0), KV_NOSPACE);
    kv_faultfs_clear_faults(w->fs);
    assert_int_equal(kv_file_pwrite(f, data, 10, 0), KV_OK);
    kv_file_close(f);
    world_free(w);
}

static void test_fault_any_op_and_read(void **state)
{
    (void)state;
    world *w = world_new();
    put_real(P(w, 0, "f"), "abc", 3);
    kv_faultfs_fail(w->fs, KV_FAULT_ANY_OP, 2, EIO, false);
    assert_int_equal(kv_fs_mkdir(w->fs, P(w, 1, "d1")), KV_OK);
    assert_int_equal(kv_fs_mkdir(w->fs, P(w, 1, "d2")), KV_IO);
    assert_false(exists_real(P(w, 1, "d2")));
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_READ);
    char buf[4];
    size_t got = 9;
    kv_faultfs_fail(w->fs, KV_FAULT_READ, 1, EIO, false);
    assert_int_equal(kv_file_pread(f, buf, 3, 0, &got), KV_IO);
    assert_int_equal(got, 0);
    assert_int_equal(kv_file_pread(f, buf, 3, 0, &got), KV_OK);
    assert_int_equal(got, 3);
    kv_file_close(f);
    world_free(w);
}

static uint64_t fnv(const void *p, long n)
{
    uint64_t h = 1469598103934665603ull;
    for (long i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
    return h ^ (uint64_t)n;
}

/* A fixed workload then a crash; returns a hash of the resulting directory. */
static uint64_t run_workload(kv_crash_policy pol, uint64_t seed)
{
    world *w = world_new();
    char old[3000], buf[8192];
    memset(old, 'o', sizeof old);
    put_real(P(w, 0, "base"), old, sizeof old);
    kv_file *f = fopen_ff(w, P(w, 0, "base"), KV_FS_WRITE);
    for (int i = 0; i < 12; i++) {
        char chunk[300];
        memset(chunk, 'a' + i, sizeof chunk);
        assert_int_equal(kv_file_pwrite(f, chunk, sizeof chunk, (uint64_t)i * 310), KV_OK);
    }
    kv_file_close(f);
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        kv_file_close(fopen_ff(w, P(w, 1, name), KV_FS_CREATE));
    }
    assert_int_equal(kv_faultfs_crash(w->fs, pol, seed), KV_OK);
    long n = get_real(P(w, 0, "base"), buf, sizeof buf);
    uint64_t h = fnv(buf, n);
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        h = h * 31 + exists_real(P(w, 1, name));
    }
    world_free(w);
    return h;
}

static void test_determinism(void **state)
{
    (void)state;
    for (int pol = KV_CRASH_RANDOM; pol <= KV_CRASH_TORN_BYTES; pol++) {
        uint64_t a = run_workload((kv_crash_policy)pol, 42);
        assert_int_equal(run_workload((kv_crash_policy)pol, 42), a);
        bool differs = false;
        for (uint64_t seed = 1; seed < 6 && !differs; seed++)
            differs = run_workload((kv_crash_policy)pol, seed) != a;
        assert_true(differs);
    }
}

static void test_mark_all_durable(void **state)
{
    (void)state;
    world *w = world_new();
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_CREATE);
    assert_int_equal(kv_file_pwrite(f, "setup", 5, 0), KV_OK);
    kv_faultfs_mark_all_durable(w->fs);
    assert_int_equal(kv_file_pwrite(f, "X", 1, 5), KV_OK);
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_LOSE, 1), KV_OK);
    assert_content(P(w, 0, "f"), "setup");
    kv_file_close(f);
    world_free(w);
}

static void test_lock_list_map(void **state)
{
    (void)state;
    world *w = world_new();
    kv_file *l1 = NULL, *l2 = NULL;
    assert_int_equal(kv_fs_lock(w->fs, P(w, 0, "LOCK"), &l1), KV_OK);
    assert_int_equal(kv_fs_lock(w->fs, P(w, 0, "LOCK"), &l2), KV_BUSY);
    put_real(P(w, 1, "b"), "bbb", 3);
    put_real(P(w, 1, "a"), "aaa", 3);
    kv_namelist l = {0};
    assert_int_equal(kv_fs_list(w->fs, w->dir, &l), KV_OK);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.names[0], "LOCK");
    assert_string_equal(l.names[1], "a");
    assert_string_equal(l.names[2], "b");
    kv_namelist_free(&l);
    assert_int_equal(kv_fs_list(w->fs, P(w, 1, "nope"), &l), KV_NOT_FOUND);
    kv_file *f = fopen_ff(w, P(w, 1, "a"), KV_FS_READ);
    const void *addr = NULL;
    assert_int_equal(kv_file_map(f, 3, &addr), KV_OK);
    assert_memory_equal(addr, "aaa", 3);
    assert_int_equal(kv_file_unmap(f, addr, 3), KV_OK);
    kv_file_close(f);
    /* the power loss releases the dead process's lock */
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_KEEP, 1), KV_OK);
    kv_fs *px = kv_fs_posix();
    assert_int_equal(kv_fs_lock(px, P(w, 0, "LOCK"), &l2), KV_OK);
    kv_file_close(l2);
    kv_fs_destroy(px);
    kv_file_close(l1);
    world_free(w);
}

/* Descriptors open in this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* faultfs keeps a descriptor per inode with unsynced data, and lets it go once the data is
 * synced or the file is gone for good. */
static void test_descriptors_released(void **state)
{
    (void)state;
    world *w = world_new();
    int base = count_fds();
    kv_file *f = fopen_ff(w, P(w, 0, "f"), KV_FS_CREATE);
    assert_int_equal(kv_file_pwrite(f, "x", 1, 0), KV_OK);
    kv_file_close(f);
    assert_true(count_fds() > base); /* our own descriptor of the unsynced inode */
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
    assert_int_equal(kv_fs_unlink(w->fs, P(w, 0, "f")), KV_OK);
    assert_int_equal(kv_fs_fsync_dir(w->fs, w->dir), KV_OK);
    assert_int_equal(count_fds(), base);
    f = fopen_ff(w, P(w, 0, "g"), KV_FS_CREATE);
    assert_int_equal(kv_file_pwrite(f, "x", 1, 0), KV_OK);
    assert_int_equal(kv_file_fdatasync(f), KV_OK);
    kv_file_close(f);
    assert_int_equal(count_fds(), base);
    world_free(w);
}

typedef struct writer_arg {
    world *w;
    int id;
} writer_arg;

/* Appends 40 records to its own file, syncing every 8th, until the fs dies. */
static void *writer_main(void *arg)
{
    writer_arg *a = arg;
    char name[16], rec[64];
    snprintf(name, sizeof name, "w%d", a->id);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", a->w->dir, name);
    kv_file *f = NULL;
    if (kv_fs_open(a->w->fs, path, KV_FS_CREATE, &f) != KV_OK)
        return NULL;
    for (int i = 0; i < 40; i++) {
        memset(rec, 'a' + a->id, sizeof rec);
        if (kv_file_pwrite(f, rec, sizeof rec, (uint64_t)i * sizeof rec) != KV_OK)
            break;
        if (i % 8 == 7 && kv_file_fdatasync(f) != KV_OK)
            break;
    }
    kv_file_close(f);
    return NULL;
}

/* Threads write while the crash point hits: no call hangs, the crash applies cleanly, and every
 * surviving file holds only whole-sector states of its writer's bytes or zeros. */
static void test_threads_then_crash(void **state)
{
    (void)state;
    world *w = world_new();
    kv_faultfs_set_crash_at(w->fs, 60);
    pthread_t th[4];
    writer_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (writer_arg){w, t};
        assert_int_equal(pthread_create(&th[t], NULL, writer_main, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    assert_true(kv_faultfs_crashed(w->fs));
    assert_int_equal(kv_faultfs_crash(w->fs, KV_CRASH_TORN, 9), KV_OK);
    for (int t = 0; t < 4; t++) {
        char name[16], buf[4096];
        snprintf(name, sizeof name, "w%d", t);
        long n = get_real(P(w, 0, name), buf, sizeof buf);
        for (long i = 0; i < n; i++)
            assert_true(buf[i] == 'a' + t || buf[i] == 0);
    }
    world_free(w);
}

static void test_policy_names(void **state)
{
    (void)state;
    static const char *names[] = {"lose", "keep", "random", "torn", "torn-bytes"};
    for (int i = 0; i < 5; i++) {
        kv_crash_policy p;
        assert_int_equal(kv_crash_policy_parse(names[i], &p), KV_OK);
        assert_int_equal(p, i);
        assert_string_equal(kv_crash_policy_name(p), names[i]);
    }
    kv_crash_policy p;
    assert_int_equal(kv_crash_policy_parse("sometimes", &p), KV_INVALID);
    assert_non_null(strstr(kv_errmsg(), "sometimes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_unsynced_lost),
        cmocka_unit_test(test_append_synced_kept),
        cmocka_unit_test(test_keep_keeps_everything),
        cmocka_unit_test(test_create_without_dirsync_vanishes),
        cmocka_unit_test(test_create_exclusive),
        cmocka_unit_test(test_rename_undone),
        cmocka_unit_test(test_rename_durable_after_dirsync),
        cmocka_unit_test(test_replace_file_old_or_new),
        cmocka_unit_test(test_overwrite_restored),
        cmocka_unit_test(test_overwrite_after_sync),
        cmocka_unit_test(test_truncate_restored),
        cmocka_unit_test(test_open_trunc_restored),
        cmocka_unit_test(test_torn_sectors_old_or_new),
        cmocka_unit_test(test_random_per_write),
        cmocka_unit_test(test_torn_bytes_old_or_new),
        cmocka_unit_test(test_torn_bytes_synced_kept),
        cmocka_unit_test(test_torn_bytes_doomed),
        cmocka_unit_test(test_policy_decisions),
        cmocka_unit_test(test_unlink_undone),
        cmocka_unit_test(test_unlink_undone_with_data),
        cmocka_unit_test(test_mkdir_undone),
        cmocka_unit_test(test_rmdir_undone),
        cmocka_unit_test(test_names_prefix),
        cmocka_unit_test(test_cross_dir_rename),
        cmocka_unit_test(test_crash_at),
        cmocka_unit_test(test_crash_at_every_op),
        cmocka_unit_test(test_eio_on_fdatasync),
        cmocka_unit_test(test_enospc_on_pwrite),
        cmocka_unit_test(test_fault_any_op_and_read),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_mark_all_durable),
        cmocka_unit_test(test_lock_list_map),
        cmocka_unit_test(test_descriptors_released),
        cmocka_unit_test(test_threads_then_crash),
        cmocka_unit_test(test_policy_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
