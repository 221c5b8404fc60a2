/* Damage to the btree engine's files gives a clear error or an allowed loss, never a silent
 * wrong answer (docs/design.md sections 4 and 6; docs/btree.md sections 4 and 6):
 *  - the log's torn-tail rule is common/reclog's: damage that a later sync mark vouches for is
 *    KV_CORRUPTION naming btree.wal and the offset, even a flipped length field; damage in the
 *    writes after the last fdatasync (a power loss may leave anything there, a batch's own COMMIT
 *    included) is a torn tail, cut, whether the open is writable or read-only;
 *  - a missing, truncated, swapped (another database's) or older copy of btree.db or btree.wal
 *    is KV_CORRUPTION naming the file: the meta page and the log header carry the database id,
 *    the log generation and the checkpoint LSN, and the meta page how far steal write-backs took
 *    the data file past the checkpoint;
 *  - an iterator that meets a damaged page stops there and reports it.
 * Directories with a log that holds groups are copied while the handle is open (the files are
 * then as a process crash would leave them). */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bt_testlib.h"
#include "btree_int.h"
#include "reclog.h"

#define VLEN 200

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static uint8_t *slurp(const char *dir, const char *name, size_t *n)
{
    char *p = path_in(dir, name);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)len + 1);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    free(p);
    *n = (size_t)len;
    return d;
}

static void spit(const char *dir, const char *name, const uint8_t *d, size_t n)
{
    char *p = path_in(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
    free(p);
}

/* Copies file name from dir a to dir b. */
static void copy_file(const char *a, const char *b, const char *name)
{
    size_t n;
    uint8_t *d = slurp(a, name, &n);
    spit(b, name, d, n);
    free(d);
}

/* A copy of every file of database dir a in a new directory (returned, malloc'd). */
static char *copy_db(const char *a, const char *tag)
{
    char *b = tu_mkdtemp(tag);
    const char *names[] = {"KVLAB.ID", "KVLAB.LOCK", "btree.db", "btree.wal"};
    for (int i = 0; i < 4; i++)
        copy_file(a, b, names[i]);
    return b;
}

static void put_key(kv_db *db, unsigned i, unsigned ver)
{
    char k[32];
    uint8_t v[VLEN];
    bt_val(v, VLEN, i, ver);
    assert_int_equal(kv_put(db, k, bt_key(k, i), v, VLEN), KV_OK);
}

/* Opens dir (read-only or not) and expects KV_CORRUPTION whose message names `file`. */
static void expect_corrupt(const char *dir, bool ro, const char *file, const char *also)
{
    kv_db *db = NULL;
    kv_status s = ro ? bt_open_opts(dir, "os", NULL, 0, &db, "read_only", NULL)
                     : bt_open_opts(dir, "os", NULL, 0, &db, NULL);
    if (s == KV_OK) {
        kv_close(db);
        fail_msg("%s open of %s succeeded; expected KV_CORRUPTION naming %s",
                 ro ? "read-only" : "a", dir, file);
    }
    const char *m = kv_errmsg();
    if (s != KV_CORRUPTION || !strstr(m, file) || !strstr(m, "offset") ||
        (also && !strstr(m, also)))
        fail_msg("open: %s: %s (expected KV_CORRUPTION naming %s and an offset%s%s)",
                 kv_strerror(s), m, file, also ? " and " : "", also ? also : "");
}

/* Opens dir and expects keys [0, lo) at version ver and no key from lo up to hi. */
static void expect_prefix(const char *dir, bool ro, unsigned lo, unsigned hi, unsigned ver)
{
    kv_db *db = NULL;
    kv_status s = ro ? bt_open_opts(dir, "os", NULL, 0, &db, "read_only", NULL)
                     : bt_open_opts(dir, "os", NULL, 0, &db, NULL);
    if (s != KV_OK)
        fail_msg("open (%s): %s: %s", ro ? "read-only" : "writable", kv_strerror(s), kv_errmsg());
    for (unsigned i = 0; i < hi; i++) {
        char k[32];
        void *v = NULL;
        size_t n = 0;
        s = kv_get(db, k, bt_key(k, i), &v, &n);
        if (i < lo) {
            uint8_t want[VLEN];
            bt_val(want, VLEN, i, ver);
            if (s != KV_OK || n != VLEN || memcmp(v, want, VLEN))
                fail_msg("key %u: %s, expected its value (prefix of %u keys)", i, kv_strerror(s),
                         lo);
        } else if (s != KV_NOT_FOUND) {
            fail_msg("key %u: %s, expected it absent (prefix of %u keys)", i, kv_strerror(s), lo);
        }
        kv_free(v);
    }
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
}

/* The records of dir's btree.wal, in order (marks included). */
typedef struct lrec {
    uint64_t off;
    uint8_t type;
    uint32_t len;
} lrec;

typedef struct lrecs {
    lrec r[4096];
    size_t n;
} lrecs;

static kv_status collect(void *ctx, const kv_reclog_rec *r)
{
    lrecs *l = ctx;
    if (l->n < 4096)
        l->r[l->n++] = (lrec){r->off, r->type, r->len};
    return KV_OK;
}

static void log_records(const char *dir, lrecs *l)
{
    size_t n;
    uint8_t *d = slurp(dir, "btree.wal", &n);
    uint64_t g0 = kv_get_u64(d + 16), g1 = kv_get_u64(d + BT_LOG_SLOT1 + 16);
    const uint8_t *h = g1 > g0 ? d + BT_LOG_SLOT1 : d;
    uint32_t seed = bt_log_seed(kv_get_u64(h + 24), kv_get_u64(h + 16));
    kv_reclog_result res;
    l->n = 0;
    assert_int_equal(kv_reclog_scan("btree.wal", d, n, BT_LOG_HDR, seed, collect, l, &res), KV_OK);
    assert_false(res.torn);
    free(d);
}

/* Index in l of the COMMIT of group g (0-based). */
static size_t commit_of(const lrecs *l, size_t g)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->r[i].type == BT_REC_COMMIT && g-- == 0)
            return i;
    fail_msg("no group %zu", g);
    return 0;
}

/* A database of n keys (version 1) put one commit each in durability dur, with kv_sync after
 * the first synced_upto puts; the directory copied before the close (the log holds every group)
 * is returned. */
static char *crashed_db(const char *dur, unsigned n, unsigned synced_upto, char **closed)
{
    char *dir = tu_mkdtemp("btree-damage");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, dur, NULL, 0, &db, NULL), KV_OK);
    for (unsigned i = 0; i < n; i++) {
        put_key(db, i, 1);
        if (i + 1 == synced_upto)
            assert_int_equal(kv_sync(db), KV_OK);
    }
    char *copy = copy_db(dir, "btree-damage-copy");
    assert_int_equal(kv_close(db), KV_OK);
    if (closed)
        *closed = dir;
    else {
        tu_rmtree(dir);
        free(dir);
    }
    return copy;
}

static void flip(const char *dir, const char *name, uint64_t off, uint8_t bit)
{
    size_t n;
    uint8_t *d = slurp(dir, name, &n);
    assert_true(off < n);
    d[off] ^= bit;
    spit(dir, name, d, n);
    free(d);
}

static void done(char *dir)
{
    tu_rmtree(dir);
    free(dir);
}

/* sync mode: every group after the first starts with a mark (the previous commit's fdatasync),
 * so a bit flip in any group but the last is vouched for: KV_CORRUPTION naming btree.wal and the
 * offset, writable and read-only; the files are left as they were. */
static void test_flip_vouched_by_mark(void **state)
{
    (void)state;
    char *dir = crashed_db("sync", 60, 0, NULL);
    lrecs l;
    log_records(dir, &l);
    size_t marks = 0;
    for (size_t i = 0; i < l.n; i++)
        marks += l.r[i].type == KV_RECLOG_MARK;
    assert_true(marks >= 58);
    size_t c = commit_of(&l, 30);
    /* a page record of group 30: its payload */
    uint64_t off = l.r[c - 1].off + KV_RECLOG_FRAME + 40;
    flip(dir, "btree.wal", off, 0x10);
    char *before = tu_dir_state(dir);
    expect_corrupt(dir, true, "btree.wal", "sync mark");
    expect_corrupt(dir, false, "btree.wal", "sync mark");
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
    done(dir);
}

/* A flipped length field: the record seems to run far, even past the end of the file; a valid
 * mark after it still proves damage. Without a mark after it (os mode, no sync since) it is a
 * torn tail. */
static void test_flipped_length_field(void **state)
{
    (void)state;
    char *dir = crashed_db("sync", 40, 0, NULL);
    lrecs l;
    log_records(dir, &l);
    size_t c = commit_of(&l, 10);
    flip(dir, "btree.wal", l.r[c].off + 10, 0x40); /* the length's third byte */
    expect_corrupt(dir, false, "btree.wal", "sync mark");
    done(dir);

    dir = crashed_db("os", 40, 0, NULL);
    log_records(dir, &l);
    c = commit_of(&l, 10);
    flip(dir, "btree.wal", l.r[c].off + 10, 0x40);
    expect_prefix(dir, true, 10, 40, 1);
    expect_prefix(dir, false, 10, 40, 1);
    done(dir);
}

/* os mode with a kv_sync after 30 puts: the group after the sync starts with a mark naming the
 * durable length. A flip before it is corruption; a flip after it is a torn tail: the open keeps
 * the groups before the damage, a prefix. */
static void test_flip_before_and_after_the_last_sync(void **state)
{
    (void)state;
    char *dir = crashed_db("os", 60, 30, NULL);
    lrecs l;
    log_records(dir, &l);
    size_t c = commit_of(&l, 20);
    flip(dir, "btree.wal", l.r[c].off + KV_RECLOG_FRAME, 0x01); /* the LSN */
    expect_corrupt(dir, false, "btree.wal", NULL);
    done(dir);

    dir = crashed_db("os", 60, 30, NULL);
    log_records(dir, &l);
    c = commit_of(&l, 45);
    flip(dir, "btree.wal", l.r[c - 1].off + 30, 0x80);
    expect_prefix(dir, true, 45, 60, 1);
    expect_prefix(dir, false, 45, 60, 1);
    done(dir);
}

/* A power loss that tore the in-flight group at any byte and kept its COMMIT (a write torn as
 * LazyFS tears it: zeros, then the end of the write): no mark vouches for it, so it is a torn
 * tail, cut, in a writable and a read-only open; nothing before it is lost. */
static void test_torn_group_keeps_its_commit(void **state)
{
    (void)state;
    char *dir = crashed_db("os", 30, 0, NULL);
    lrecs l;
    log_records(dir, &l);
    size_t c = commit_of(&l, 29), first = commit_of(&l, 28) + 1;
    size_t n;
    uint8_t *d = slurp(dir, "btree.wal", &n);
    uint64_t from = l.r[first].off + 5, to = l.r[c].off; /* up to, not into, the COMMIT */
    memset(d + from, 0, to - from);
    spit(dir, "btree.wal", d, n);
    free(d);
    char *ro = copy_db(dir, "btree-damage-ro");
    char *before = tu_dir_state(ro);
    expect_prefix(ro, true, 29, 30, 1);
    char *after = tu_dir_state(ro);
    assert_string_equal(before, after);
    free(before);
    free(after);
    expect_prefix(dir, false, 29, 30, 1);
    done(dir);
    done(ro);
}

/* btree.db or btree.wal deleted: KV_CORRUPTION naming the missing file, never an empty
 * database. A btree.wal alone that is exactly as created is a creation that stopped half-way. */
static void test_missing_files(void **state)
{
    (void)state;
    char *closed;
    char *dir = crashed_db("os", 20, 0, &closed);
    char *p = path_in(dir, "btree.db");
    unlink(p);
    free(p);
    char *before = tu_dir_state(dir);
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "btree.db: missing"));
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "read_only", NULL), KV_CORRUPTION);
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after); /* no empty database was made */
    free(before);
    free(after);
    done(dir);

    p = path_in(closed, "btree.wal"); /* even after a clean close */
    unlink(p);
    free(p);
    assert_int_equal(bt_open_opts(closed, "os", NULL, 0, &db, NULL), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "btree.wal: missing"));
    done(closed);

    /* the creation's first step only: the log as created, no data file */
    dir = tu_mkdtemp("btree-damage-new");
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    assert_int_equal(kv_close(db), KV_OK);
    uint8_t *w;
    size_t n;
    /* a fresh log of generation 1: a new database's, closed with nothing in it */
    char *fresh = tu_mkdtemp("btree-damage-fresh");
    copy_file(dir, fresh, "KVLAB.ID");
    copy_file(dir, fresh, "KVLAB.LOCK");
    kv_fs *fs = kv_fs_posix();
    assert_int_equal(bt_wal_create(fs, fresh, 4096, 42), KV_OK);
    kv_fs_destroy(fs);
    w = slurp(fresh, "btree.wal", &n);
    assert_int_equal(n, BT_LOG_HDR);
    free(w);
    assert_int_equal(bt_open_opts(fresh, "os", NULL, 0, &db, "read_only", NULL), KV_NOT_FOUND);
    assert_int_equal(bt_open_opts(fresh, "os", NULL, 0, &db, NULL), KV_OK);
    put_key(db, 1, 1);
    assert_int_equal(kv_close(db), KV_OK);
    expect_prefix(fresh, true, 0, 0, 1);
    done(fresh);
    done(dir);
}

/* An older copy of either file, from before a checkpoint, and a file of another database. */
static void test_stale_and_foreign_files(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-damage-stale");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    assert_int_equal(kv_close(db), KV_OK); /* empty: no checkpoint, generation 1 */
    char *fork = copy_db(dir, "btree-damage-fork");
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    for (unsigned i = 0; i < 30; i++)
        put_key(db, i, 1);
    char *first = copy_db(dir, "btree-damage-first"); /* generation 1, LSN 1 to 30 */
    assert_int_equal(kv_close(db), KV_OK);            /* a checkpoint */
    char *old = copy_db(dir, "btree-damage-old");
    /* the fork: 10 puts and a checkpoint (generation 2 after LSN 10) */
    assert_int_equal(bt_open_opts(fork, "os", NULL, 0, &db, NULL), KV_OK);
    for (unsigned i = 0; i < 10; i++)
        put_key(db, i, 3);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    for (unsigned i = 0; i < 30; i++)
        put_key(db, i, 2);
    assert_int_equal(kv_sync(db), KV_OK);
    char *mid = copy_db(dir, "btree-damage-mid"); /* generation after the first checkpoint */
    assert_int_equal(kv_close(db), KV_OK);
    size_t n;
    uint8_t *d;

    char *t = copy_db(dir, "btree-damage-t");
    copy_file(old, t, "btree.db");
    expect_corrupt(t, false, "btree.db", "started log generation 2, but btree.wal is generation 3");
    expect_corrupt(t, true, "btree.db", "older copy");
    done(t);

    t = copy_db(dir, "btree-damage-t");
    copy_file(old, t, "btree.wal");
    expect_corrupt(t, false, "btree.wal", "older copy");
    done(t);

    /* the log of two generations before (copied while the first session ran) */
    t = copy_db(dir, "btree-damage-t");
    copy_file(first, t, "btree.wal");
    expect_corrupt(t, false, "btree.wal", "generation 1, but the checkpoint");
    expect_corrupt(t, true, "btree.wal", "older copy");
    done(t);

    /* a fork: the same database copied when it was empty, filled differently; its log of the
     * generation before runs past this data file's checkpoint */
    t = copy_db(fork, "btree-damage-t");
    copy_file(first, t, "btree.wal");
    expect_corrupt(t, false, "btree.db", "different histories");
    done(t);

    /* the log of the generation before, complete up to the data file's checkpoint: exactly
     * what a crash between the checkpoint's data fdatasync and its log reset leaves, so it is
     * accepted (its groups hold what the data file holds); one group short of it is not */
    t = copy_db(dir, "btree-damage-t");
    copy_file(mid, t, "btree.wal");
    expect_prefix(t, true, 30, 30, 2);
    expect_prefix(t, false, 30, 30, 2);
    done(t);
    t = copy_db(dir, "btree-damage-t");
    copy_file(mid, t, "btree.wal");
    lrecs l;
    log_records(t, &l);
    size_t c = commit_of(&l, 28); /* LSN 59 */
    d = slurp(t, "btree.wal", &n);
    spit(t, "btree.wal", d, l.r[c].off + KV_RECLOG_FRAME + l.r[c].len);
    free(d);
    expect_corrupt(t, false, "btree.wal", "older copy");
    done(t);

    char *other = tu_mkdtemp("btree-damage-other");
    assert_int_equal(bt_open_opts(other, "os", NULL, 0, &db, NULL), KV_OK);
    put_key(db, 1, 1);
    assert_int_equal(kv_close(db), KV_OK);
    t = copy_db(dir, "btree-damage-t");
    copy_file(other, t, "btree.wal");
    expect_corrupt(t, false, "btree.wal", "different databases");
    done(t);

    t = copy_db(dir, "btree-damage-t");
    d = slurp(t, "btree.db", &n);
    spit(t, "btree.db", d, n - 4096);
    free(d);
    expect_corrupt(t, false, "btree.db", "truncated");
    done(t);

    done(other);
    done(fork);
    done(first);
    done(mid);
    done(old);
    done(dir);
}

/* Steal: with a small pool, pages are written back before any checkpoint, after the log was made
 * durable up to them. An older copy of the log of the same generation then lacks groups the data
 * file depends on: the meta page's data_lsn says how far, and the open refuses the log. */
static void test_stale_log_after_write_back(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-damage-steal");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 64 << 10, &db, "checkpoint_bytes=1G", NULL),
                     KV_OK);
    for (unsigned i = 0; i < 100; i++)
        put_key(db, i * 7919 % 1000, 1);
    assert_int_equal(kv_sync(db), KV_OK);
    char *early = copy_db(dir, "btree-damage-early");
    uint64_t wb = bt_stat(db, "pages_written_back");
    for (unsigned i = 100; i < 1000; i++)
        put_key(db, i * 7919 % 1000, 1);
    assert_int_equal(kv_sync(db), KV_OK);
    assert_true(bt_stat(db, "pages_written_back") > wb);
    assert_int_equal(bt_stat(db, "checkpoints"), 0);
    char *late = copy_db(dir, "btree-damage-late");
    assert_int_equal(kv_close(db), KV_OK);

    copy_file(early, late, "btree.wal");
    expect_corrupt(late, false, "btree.wal", "older copy or lost durable bytes");
    expect_corrupt(late, true, "btree.wal", "older copy or lost durable bytes");
    done(late);
    done(early);
    done(dir);
}

/* The log header: a reset writes the new generation into the other slot, so damage to the
 * older slot changes nothing, and damage to the current one is corruption (the older slot's
 * generation no longer matches the meta page). */
static void test_header_slots(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-damage-hdr");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    for (unsigned i = 0; i < 10; i++)
        put_key(db, i, 1);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    put_key(db, 10, 1);
    assert_int_equal(kv_close(db), KV_OK); /* generation 3: slot 1 current, slot 0 older */
    size_t n;
    uint8_t *d = slurp(dir, "btree.wal", &n);
    assert_int_equal(kv_get_u64(d + BT_LOG_SLOT1 + 16), 3);
    assert_int_equal(kv_get_u64(d + 16), 2);
    free(d);
    char *t = copy_db(dir, "btree-damage-t");
    flip(t, "btree.wal", 20, 0x01);
    expect_prefix(t, false, 11, 12, 1);
    done(t);
    t = copy_db(dir, "btree-damage-t");
    flip(t, "btree.wal", BT_LOG_SLOT1 + 40, 0x01);
    expect_corrupt(t, false, "btree.wal", NULL);
    done(t);
    done(dir);
}

/* A meta page that fails its check: rebuilt from the log when the log holds groups (a
 * checkpoint's torn write of page 0), corruption naming btree.db otherwise. */
static void test_meta_page_damage(void **state)
{
    (void)state;
    char *closed;
    char *dir = crashed_db("os", 20, 0, &closed);
    flip(dir, "btree.db", 30, 0x04);
    expect_prefix(dir, true, 20, 21, 1);
    expect_prefix(dir, false, 20, 21, 1);
    flip(closed, "btree.db", 30, 0x04);
    expect_corrupt(closed, false, "btree.db", "crc");
    done(closed);
    done(dir);
}

/* An iterator that meets a damaged leaf stops there: status KV_CORRUPTION naming btree.db, the
 * page and its offset, and no key from that leaf on is returned. */
static void test_iterator_stops_at_damage(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-damage-iter");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    for (unsigned i = 0; i < 400; i++)
        put_key(db, i, 1);
    assert_true(bt_stat(db, "height") >= 2);
    assert_int_equal(kv_close(db), KV_OK);
    /* damage the leaf that holds key 200: find it by its key bytes */
    size_t n;
    uint8_t *d = slurp(dir, "btree.db", &n);
    char k[32];
    size_t kl = bt_key(k, 200);
    uint32_t leaf = 0;
    for (uint32_t p = 1; p < n / 4096 && !leaf; p++)
        for (size_t j = 0; d[p * 4096 + 4] == BT_LEAF && j + kl <= 4096 && !leaf; j++)
            if (!memcmp(d + p * 4096 + j, k, kl))
                leaf = p;
    assert_true(leaf > 0);
    d[(size_t)leaf * 4096 + 2000] ^= 0x20;
    spit(dir, "btree.db", d, n);
    free(d);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "read_only", "warm=0", NULL), KV_OK);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    unsigned seen = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        size_t l;
        const char *key = kv_iter_key(it, &l);
        assert_true(l == kl && memcmp(key, k, kl) < 0); /* nothing from the damaged leaf on */
        seen++;
    }
    assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
    const char *m = kv_errmsg();
    char want[64];
    snprintf(want, sizeof want, "page %u at offset %u", leaf, leaf * 4096);
    if (!strstr(m, "btree.db") || !strstr(m, want))
        fail_msg("iterator status message: %s (expected btree.db and \"%s\")", m, want);
    assert_true(seen > 0 && seen < 200);
    kv_iter_free(it);
    assert_int_equal(kv_close(db), KV_OK);
    done(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flip_vouched_by_mark),
        cmocka_unit_test(test_flipped_length_field),
        cmocka_unit_test(test_flip_before_and_after_the_last_sync),
        cmocka_unit_test(test_torn_group_keeps_its_commit),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_stale_and_foreign_files),
        cmocka_unit_test(test_stale_log_after_write_back),
        cmocka_unit_test(test_header_slots),
        cmocka_unit_test(test_meta_page_damage),
        cmocka_unit_test(test_iterator_stops_at_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
