/* Damaged lsm directories (docs/design.md sections 4 and 6): every kind of damage a hostile user
 * found, and the edges of the torn-tail rule, give KV_CORRUPTION naming the file and offset, or
 * (only for what a power loss can leave) a clean open holding a prefix of the history. Never a
 * silent wrong answer, never a directory changed by an open that failed or was read-only.
 *
 * Directories are built by the engine itself and copied while a handle is open (the state a
 * crash would leave, the background thread held so that an older WAL stays unflushed), then
 * damaged byte by byte. The log layouts are in lsm/lsm_int.h and common/reclog.h. */
#include <dirent.h>
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

#include "crc.h"
#include "faultfs.h"
#include "kv.h"
#include "lsm.h"
#include "lsm_int.h"
#include "lsm_testutil.h"
#include "reclog.h"
#include "testutil.h"

/* ---- files ---- */

static char *pathf(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *pathf(const char *dir, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static long fsize(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void xor_byte(const char *path, long off, uint8_t mask)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    assert_true(off >= 0 && (size_t)off < n);
    b[off] ^= mask;
    spit(path, b, n);
    free(b);
}

static void put_u32_at(const char *path, long off, uint32_t v)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    assert_true(off >= 0 && (size_t)off + 4 <= n);
    kv_put_u32(b + off, v);
    spit(path, b, n);
    free(b);
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *b = slurp(from, &n);
    spit(to, b, n);
    free(b);
}

/* Copies every regular file of src into dst (fresh). */
static void copy_dir(const char *src, const char *dst)
{
    tu_rmtree(dst);
    assert_int_equal(mkdir(dst, 0755), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *a = pathf(src, "%s", e->d_name), *b = pathf(dst, "%s", e->d_name);
        struct stat st;
        if (stat(a, &st) == 0 && S_ISREG(st.st_mode))
            copy_file(a, b);
        free(a);
        free(b);
    }
    closedir(d);
}

/* The names of dir's files ending in suffix, ascending (a NULL-terminated malloc'd array). */
static char **list(const char *dir, const char *suffix, int *count)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **v = calloc(256, sizeof *v);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d)) && n < 255) {
        size_t l = strlen(e->d_name);
        if (l >= sl && !strcmp(e->d_name + l - sl, suffix) && e->d_name[0] != '.')
            v[n++] = strdup(e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* ascending (zero-padded numbers) */
        for (int j = i + 1; j < n; j++)
            if (strcmp(v[j], v[i]) < 0) {
                char *t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    *count = n;
    return v;
}

static void free_list(char **v)
{
    for (int i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* ---- the database ---- */

static int keyname(char *buf, int i)
{
    return snprintf(buf, 32, "k%05d", i);
}

static size_t valueof(char *buf, int i)
{
    size_t n = 40 + (size_t)(i * 7) % 50;
    memset(buf, 'a' + i % 26, n);
    snprintf(buf, n, "v%d", i);
    return n;
}

/* Options: tiny memtables and tables when tiny, no background compaction in the way. */
static kv_options opts_of(const char *dur, bool tiny, bool read_only)
{
    kv_options o;
    kv_options_init(&o);
    assert_int_equal(kv_durability_parse(dur, &o.durability), KV_OK);
    if (tiny) {
        const char *t[] = {"write_buffer_size=4K",    "target_file_size=4K",
                           "block_size=512",          "l0_compaction_trigger=100",
                           "l0_slowdown_trigger=200", "l0_stop_trigger=300",
                           "manifest_max_size=1M"};
        for (size_t i = 0; i < sizeof t / sizeof *t; i++)
            OK(kv_options_set(&o, t[i]));
    }
    o.read_only = read_only;
    return o;
}

/* Writable handles use a faultfs that skips the real fdatasync/fsync calls (the disk here takes
 * milliseconds per sync; nothing crashes through it, so no outcome changes). */
static kv_fs *fast;

static kv_db *open_db(const char *dir, const char *dur, bool tiny)
{
    kv_options o = opts_of(dur, tiny, false);
    o.fs = fast;
    kv_db *db = NULL;
    kv_status s = kv_open("lsm", dir, &o, &db);
    if (s != KV_OK)
        fail_msg("open %s: %s", dir, kv_errmsg());
    kv_options_free(&o);
    return db;
}

static void put_range(kv_db *db, int from, int to)
{
    for (int i = from; i < to; i++) {
        char k[32], v[128];
        int kl = keyname(k, i);
        OK(kv_put(db, k, (size_t)kl, v, valueof(v, i)));
    }
}

/* Opens dir (read-only or not) expecting status want; with KV_CORRUPTION the message must name
 * file (a substring) and, when offset >= 0, "offset <offset>". A failed or read-only open must
 * leave every file as it was. */
static void expect_open(const char *dir, bool read_only, kv_status want, const char *file,
                        long offset)
{
    char *before = tu_dir_state(dir);
    kv_options o = opts_of("os", true, read_only);
    kv_db *db = NULL;
    kv_status s = kv_open("lsm", dir, &o, &db);
    kv_options_free(&o);
    if (s != want)
        fail_msg("open (%s) of %s: %s (%s), expected %s", read_only ? "read-only" : "writable", dir,
                 kv_strerror(s), kv_errmsg(), kv_strerror(want));
    if (s == KV_CORRUPTION) {
        const char *m = kv_errmsg();
        if (file && !strstr(m, file))
            fail_msg("message '%s' does not name %s", m, file);
        char at[48];
        snprintf(at, sizeof at, "offset %ld", offset);
        if (offset >= 0 && !strstr(m, at))
            fail_msg("message '%s' does not name %s", m, at);
    }
    if (s == KV_OK)
        OK(kv_close(db));
    if (s != KV_OK || read_only) {
        char *after = tu_dir_state(dir);
        if (strcmp(before, after))
            fail_msg("the open changed %s:\n%s---\n%s", dir, before, after);
        free(after);
    }
    free(before);
}

/* Opens dir read-only and counts which of keys [0, n) hold their value; any other value (or a
 * value for a key never written) fails. Returns the count and the highest key present. */
static int count_keys(const char *dir, int n, int *highest)
{
    kv_options o = opts_of("os", true, true);
    kv_db *db = NULL;
    if (kv_open("lsm", dir, &o, &db) != KV_OK)
        fail_msg("open %s: %s", dir, kv_errmsg());
    kv_options_free(&o);
    OK(kv_check(db));
    int found = 0;
    *highest = -1;
    for (int i = 0; i < n; i++) {
        char k[32], want[128];
        int kl = keyname(k, i);
        size_t wl = valueof(want, i);
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(db, k, (size_t)kl, &v, &vl);
        if (s == KV_OK) {
            if (vl != wl || memcmp(v, want, wl))
                fail_msg("key %d: a value never written", i);
            found++;
            *highest = i;
        } else if (s != KV_NOT_FOUND)
            fail_msg("key %d: %s", i, kv_errmsg());
        kv_free(v);
    }
    OK(kv_close(db));
    return found;
}

/* Every key of [0, n) is there. */
static void expect_all(const char *dir, int n)
{
    int hi;
    assert_int_equal(count_keys(dir, n, &hi), n);
}

/* The keys present are exactly [0, k) for some k (a prefix), k >= at_least. */
static void expect_prefix(const char *dir, int n, int at_least)
{
    int hi;
    int c = count_keys(dir, n, &hi);
    if (c != hi + 1 || c < at_least)
        fail_msg("%s: %d keys, the highest %d: not a prefix of at least %d", dir, c, hi, at_least);
}

/* ---- reading the logs (lsm_int.h, common/reclog.h) ---- */

static uint64_t db_id_of(const char *dir)
{
    char *p = pathf(dir, "CURRENT");
    size_t n;
    uint8_t *b = slurp(p, &n);
    assert_true(n >= 28);
    uint64_t id = kv_get_u64(b + 12);
    free(b);
    free(p);
    return id;
}

typedef struct recinfo {
    long off;
    uint32_t len;
    uint8_t type;
} recinfo;

/* The records of the log at path (number num): offsets, lengths and types of the valid prefix. */
static int records(const char *dir, const char *name, recinfo *out, int cap)
{
    char *p = pathf(dir, "%s", name);
    size_t n;
    uint8_t *b = slurp(p, &n);
    uint64_t num = strtoull(name[0] == 'M' ? name + 9 : name, NULL, 10);
    uint32_t seed = kv_reclog_seed(lsm_log_salt(db_id_of(dir), num));
    int k = 0;
    uint64_t off = LSM_LOG_HEADER;
    kv_reclog_rec r;
    while (k < cap && kv_reclog_decode(b, n, off, seed, &r, NULL) == KV_RECLOG_OK) {
        out[k++] = (recinfo){(long)off, r.len, r.type};
        off += KV_RECLOG_FRAME + r.len;
    }
    free(b);
    free(p);
    return k;
}

/* The last record of the given type. */
static recinfo last_of(const char *dir, const char *name, uint8_t type)
{
    recinfo r[4096];
    int n = records(dir, name, r, 4096);
    for (int i = n - 1; i >= 0; i--)
        if (r[i].type == type)
            return r[i];
    fail_msg("%s: no record of type %u", name, type);
    return r[0];
}

/* ---- states ---- */

/* A closed database of n keys in one WAL (default sizes): kv_sync after key n/2 in `os`. */
static char *closed_one_wal(const char *tag, const char *dur, int n)
{
    char *dir = tu_mkdtemp(tag);
    kv_db *db = open_db(dir, dur, false);
    put_range(db, 0, n / 2);
    OK(kv_sync(db));
    put_range(db, n / 2, n);
    OK(kv_close(db));
    return dir;
}

/* The state a crash leaves with two WALs: the older one's memtable not yet flushed. Writes
 * keys [0, *n) in mode dur with tiny memtables, holds the background thread, writes on until a
 * second WAL appears and a few keys more (with kv_sync after the switch when sync_after), then
 * copies the directory while the handle is open. Returns the copy. */
static char *two_wals(const char *tag, const char *dur, bool sync_after, int *n)
{
    char *live = tu_mkdtemp(tag);
    kv_db *db = open_db(live, dur, true);
    int i = 0;
    put_range(db, 0, 200);
    i = 200;
    OK(lsm_pause_background_work(db, true));
    int logs;
    free_list(list(live, ".log", &logs));
    assert_int_equal(logs, 1);
    while (logs < 2) {
        put_range(db, i, i + 1);
        i++;
        free_list(list(live, ".log", &logs));
        assert_true(i < 2000);
    }
    put_range(db, i, i + 5);
    i += 5;
    if (sync_after)
        OK(kv_sync(db));
    char *copy = tu_mkdtemp(tag);
    copy_dir(live, copy);
    OK(lsm_pause_background_work(db, false));
    OK(kv_close(db));
    tu_rmtree(live);
    free(live);
    *n = i;
    return copy;
}

/* ---- the tests ---- */

/* The last manifest record, damaged: it is sealed by a sync mark, so this is corruption, never a
 * torn tail to cut (which rolled back the version and had the open delete the table it named). */
static void test_manifest_last_record_damaged(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-dmg-man");
    kv_db *db = open_db(dir, "os", true);
    put_range(db, 0, 300);
    OK(lsm_pause_background_work(db, true)); /* flushes done, their edits written */
    OK(lsm_pause_background_work(db, false));
    OK(kv_close(db));
    int nm;
    char **m = list(dir, "", &nm);
    char *man = NULL;
    for (int i = 0; i < nm; i++)
        if (!strncmp(m[i], "MANIFEST-", 9))
            man = strdup(m[i]);
    free_list(m);
    assert_non_null(man);
    recinfo last = last_of(dir, man, LSM_REC_EDIT);
    recinfo all[64];
    int nrec = records(dir, man, all, 64);
    assert_true(nrec >= 2);
    assert_int_equal(all[nrec - 1].type, KV_RECLOG_MARK); /* sealed */
    char *mp = pathf(dir, "%s", man);
    char *save = tu_mkdtemp("lsm-dmg-man-save");
    copy_dir(dir, save);
    /* a byte of its payload; its length field; its type */
    long where[3] = {last.off + KV_RECLOG_FRAME + (long)last.len / 2, last.off + 8, last.off + 12};
    for (int w = 0; w < 3; w++) {
        copy_dir(save, dir);
        xor_byte(mp, where[w], 0x10);
        expect_open(dir, true, KV_CORRUPTION, man, last.off);
        expect_open(dir, false, KV_CORRUPTION, man, last.off);
    }
    /* bytes after the seal: a torn tail of a write that never happened durably; nothing lost */
    copy_dir(save, dir);
    append_bytes(mp, "garbage", 7);
    expect_open(dir, true, KV_OK, NULL, -1);
    expect_all(dir, 300);
    /* an edit appended after the seal that deletes a table the version does not hold */
    copy_dir(save, dir);
    long at = fsize(mp);
    lsm_edit e;
    lsm_edit_init(&e);
    assert_true(lsm_edit_del(&e, 0, 999999));
    kv_buf b = {0};
    size_t rec;
    assert_true(kv_reclog_begin(&b, &rec) && lsm_edit_encode(&e, &b));
    kv_reclog_end(&b, rec, kv_reclog_seed(lsm_log_salt(db_id_of(dir), strtoull(man + 9, NULL, 10))),
                  LSM_REC_EDIT);
    append_bytes(mp, b.data, b.len);
    kv_buf_free(&b);
    lsm_edit_free(&e);
    expect_open(dir, true, KV_CORRUPTION, man, at);
    tu_rmtree(dir);
    free(dir);
    free(mp);
    free(man);

    /* the state a crash leaves while the database is open: the last edit is a flush's, sealed by
     * its own mark before the flushed WAL was deleted */
    char *live = tu_mkdtemp("lsm-dmg-man-live");
    db = open_db(live, "os", true);
    put_range(db, 0, 300);
    OK(lsm_pause_background_work(db, true));
    dir = tu_mkdtemp("lsm-dmg-man-crash");
    copy_dir(live, dir);
    OK(lsm_pause_background_work(db, false));
    OK(kv_close(db));
    m = list(dir, "", &nm);
    man = NULL;
    for (int i = 0; i < nm; i++)
        if (!strncmp(m[i], "MANIFEST-", 9))
            man = strdup(m[i]);
    free_list(m);
    assert_non_null(man);
    last = last_of(dir, man, LSM_REC_EDIT);
    mp = pathf(dir, "%s", man);
    xor_byte(mp, last.off + KV_RECLOG_FRAME + (long)last.len / 2, 0x10);
    expect_open(dir, true, KV_CORRUPTION, man, last.off);
    expect_open(dir, false, KV_CORRUPTION, man, last.off);
    tu_rmtree(live);
    free(live);
    tu_rmtree(save);
    free(save);
    free(mp);
    free(man);
    tu_rmtree(dir);
    free(dir);
}

/* A flipped length field in a WAL record: with a sync mark after it (a kv_sync, a clean
 * close), corruption at that record's offset, not a torn tail that drops the rest. */
static void test_wal_length_field(void **state)
{
    (void)state;
    char *dir = closed_one_wal("lsm-dmg-len", "os", 40);
    char **logs;
    int nl;
    logs = list(dir, ".log", &nl);
    assert_int_equal(nl, 1);
    char *lp = pathf(dir, "%s", logs[0]);
    recinfo r[256];
    int n = records(dir, logs[0], r, 256);
    assert_true(n >= 42); /* header mark, 40 batches, a mark after the kv_sync, the close mark */
    char *save = tu_mkdtemp("lsm-dmg-len-save");
    copy_dir(dir, save);
    int first = -1, lastb = -1;
    for (int i = 0; i < n; i++)
        if (r[i].type == LSM_REC_BATCH) {
            if (first < 0)
                first = i;
            lastb = i;
        }
    const int which[2] = {first, lastb};
    const uint32_t lens[3] = {1, 0x7fffffffu, 200000};
    for (int w = 0; w < 2; w++)
        for (int l = 0; l < 3; l++) {
            copy_dir(save, dir);
            put_u32_at(lp, r[which[w]].off + 8, r[which[w]].len + lens[l]);
            expect_open(dir, true, KV_CORRUPTION, logs[0], r[which[w]].off);
            expect_open(dir, false, KV_CORRUPTION, logs[0], r[which[w]].off);
        }
    /* a flipped bit in a batch's payload, vouched for by the close mark */
    copy_dir(save, dir);
    xor_byte(lp, r[lastb].off + KV_RECLOG_FRAME + 3, 0x01);
    expect_open(dir, false, KV_CORRUPTION, logs[0], r[lastb].off);
    /* the close mark itself damaged: the manifest's LOG_SEALED edit (written once that mark
     * was durable) says the log was whole to its end, so no power loss explains it */
    copy_dir(save, dir);
    xor_byte(lp, r[n - 1].off + 20, 0x01);
    expect_open(dir, true, KV_CORRUPTION, logs[0], r[n - 1].off);
    expect_open(dir, false, KV_CORRUPTION, logs[0], r[n - 1].off);
    tu_rmtree(save);
    free(save);
    free(lp);
    free_list(logs);
    tu_rmtree(dir);
    free(dir);
}

/* The state a crash leaves after n keys and a kv_sync in `os` mode: one WAL, not sealed. */
static char *crashed_one_wal(const char *tag, int n)
{
    char *live = tu_mkdtemp(tag);
    kv_db *db = open_db(live, "os", false);
    put_range(db, 0, n);
    OK(kv_sync(db));
    char *dir = tu_mkdtemp(tag);
    copy_dir(live, dir);
    OK(kv_close(db));
    tu_rmtree(live);
    free(live);
    return dir;
}

/* A WAL of another database put in place of one of the same number, and a WAL whose record
 * passes its CRC but repeats a sequence number: KV_CORRUPTION naming the log and the offset,
 * never a log read as empty or a batch applied twice. */
static void test_wal_identity(void **state)
{
    (void)state;
    char *a = crashed_one_wal("lsm-dmg-wida", 20), *b = crashed_one_wal("lsm-dmg-widb", 20);
    int na, nb;
    char **la = list(a, ".log", &na), **lb = list(b, ".log", &nb);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_string_equal(la[0], lb[0]); /* the same workload: the same log number */
    char *pa = pathf(a, "%s", la[0]), *pb = pathf(b, "%s", lb[0]);
    char *save = tu_mkdtemp("lsm-dmg-wid-save");
    copy_dir(a, save);
    copy_file(pb, pa);
    expect_open(a, true, KV_CORRUPTION, la[0], 24);
    expect_open(a, false, KV_CORRUPTION, la[0], 24);
    /* the second batch gets the first one's sequence number, its framing sealed again */
    copy_dir(save, a);
    recinfo r[64];
    int n = records(a, la[0], r, 64);
    int first = -1, second = -1;
    for (int i = 0; i < n && second < 0; i++)
        if (r[i].type == LSM_REC_BATCH) {
            if (first < 0)
                first = i;
            else
                second = i;
        }
    assert_true(second > 0);
    size_t sz;
    uint8_t *bytes = slurp(pa, &sz);
    memcpy(bytes + r[second].off + KV_RECLOG_FRAME, bytes + r[first].off + KV_RECLOG_FRAME, 8);
    kv_reclog_seal(bytes + r[second].off,
                   kv_reclog_seed(lsm_log_salt(db_id_of(a), strtoull(la[0], NULL, 10))),
                   LSM_REC_BATCH, r[second].len);
    spit(pa, bytes, sz);
    free(bytes);
    expect_open(a, true, KV_CORRUPTION, la[0], r[second].off);
    expect_open(a, false, KV_CORRUPTION, la[0], r[second].off);
    tu_rmtree(save);
    free(save);
    free(pa);
    free(pb);
    free_list(la);
    free_list(lb);
    tu_rmtree(a);
    tu_rmtree(b);
    free(a);
    free(b);
}

/* An older WAL that a later, synced WAL depends on is checked as a chain: damage or a cut at its
 * end is corruption, not a reason to drop the newer WAL; bytes after its end lose nothing; a
 * deleted older or newer WAL is missing. Without any sync since the switch (`os`), a cut older
 * WAL is what a power loss leaves: the newer one is dropped and a prefix survives. */
static void test_wal_chain(void **state)
{
    (void)state;
    struct {
        const char *dur;
        bool sync_after, evidence; /* evidence: the newer WAL says the older one is durable */
    } cases[] = {{"sync", false, true},
                 {"interval:1000", false, true},
                 {"os", true, true},
                 {"os", false, false}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int n;
        char *dir = two_wals("lsm-dmg-chain", cases[c].dur, cases[c].sync_after, &n);
        int nl;
        char **logs = list(dir, ".log", &nl);
        assert_int_equal(nl, 2);
        char *older = pathf(dir, "%s", logs[0]), *newer = pathf(dir, "%s", logs[1]);
        size_t hn;
        uint8_t *h = slurp(newer, &hn);
        long plen = (long)kv_get_u64(h + 40);
        assert_int_equal(kv_get_u64(h + 32), strtoull(logs[0], NULL, 10));
        free(h);
        recinfo next = last_of(dir, logs[0], LSM_REC_NEXT_LOG);
        recinfo lastb = last_of(dir, logs[0], LSM_REC_BATCH);
        assert_true(next.off >= plen);
        char *save = tu_mkdtemp("lsm-dmg-chain-save");
        copy_dir(dir, save);
        expect_all(dir, n);

        /* damage in the older WAL's last batch, and a cut into it */
        xor_byte(older, lastb.off + KV_RECLOG_FRAME + 2, 0x04);
        if (cases[c].evidence)
            expect_open(dir, false, KV_CORRUPTION, logs[0], lastb.off);
        else
            expect_prefix(dir, n, 1);
        copy_dir(save, dir);
        assert_int_equal(truncate(older, plen - 1), 0);
        if (cases[c].evidence) {
            expect_open(dir, true, KV_CORRUPTION, logs[0], lastb.off);
            expect_open(dir, false, KV_CORRUPTION, logs[0], lastb.off);
        } else
            expect_prefix(dir, n, 1);
        /* cut after its batches (the NEXT_LOG record lost), or a byte appended: nothing lost */
        copy_dir(save, dir);
        assert_int_equal(truncate(older, plen), 0);
        expect_all(dir, n);
        copy_dir(save, dir);
        append_bytes(older, "x", 1);
        expect_all(dir, n);
        /* deleted WALs: the older one (the manifest's log number), the newer one (named by the
         * older one's NEXT_LOG record) */
        copy_dir(save, dir);
        assert_int_equal(unlink(older), 0);
        expect_open(dir, true, KV_CORRUPTION, logs[0], -1);
        expect_open(dir, false, KV_CORRUPTION, logs[0], -1);
        copy_dir(save, dir);
        assert_int_equal(unlink(newer), 0);
        expect_open(dir, false, KV_CORRUPTION, logs[1], next.off);
        /* the newer WAL's header damaged: the NEXT_LOG record shows it was durable; without
         * that record, the sync mark after the header does (the header is fdatasynced when the
         * log is created, and the first write after it starts with a mark) */
        copy_dir(save, dir);
        xor_byte(newer, 20, 0x01);
        expect_open(dir, false, KV_CORRUPTION, logs[1], 0);
        copy_dir(save, dir);
        assert_int_equal(truncate(older, plen), 0);
        xor_byte(newer, 20, 0x01);
        expect_open(dir, true, KV_CORRUPTION, logs[1], 0);
        /* a gap: the newer WAL follows a log that is not there (its header names another
         * predecessor, its CRC made good), the older one's NEXT_LOG record lost */
        copy_dir(save, dir);
        assert_int_equal(truncate(older, plen), 0);
        h = slurp(newer, &hn);
        kv_put_u64(h + 32, kv_get_u64(h + 32) + 1);
        kv_put_u32(h + 52, kv_crc32(h, 52));
        spit(newer, h, hn);
        free(h);
        expect_open(dir, true, KV_CORRUPTION, logs[1], 32);
        /* a newer WAL whose creation a power loss cut (header never durable) while the older
         * one never got its NEXT_LOG record: an empty log, nothing of it was acknowledged */
        copy_dir(save, dir);
        assert_int_equal(truncate(older, plen), 0);
        assert_int_equal(truncate(newer, 30), 0);
        int hi;
        int got = count_keys(dir, n, &hi);
        assert_true(got == hi + 1 && got < n && got > 0);
        tu_rmtree(save);
        free(save);
        free(older);
        free(newer);
        free_list(logs);
        tu_rmtree(dir);
        free(dir);
    }
}

/* The newest WAL, the only one, deleted: the manifest's log number names it. */
static void test_newest_wal_deleted(void **state)
{
    (void)state;
    char *dir = closed_one_wal("lsm-dmg-newest", "sync", 20);
    int nl;
    char **logs = list(dir, ".log", &nl);
    assert_int_equal(nl, 1);
    char *p = pathf(dir, "%s", logs[0]);
    assert_int_equal(unlink(p), 0);
    expect_open(dir, true, KV_CORRUPTION, logs[0], -1);
    expect_open(dir, false, KV_CORRUPTION, logs[0], -1);
    free(p);
    free_list(logs);
    tu_rmtree(dir);
    free(dir);
}

/* A clean close seals the WAL and records its length in the manifest: that WAL cut short later
 * (a truncation, an older copy) is damage, not a torn tail; bytes appended after it lose
 * nothing. Without the close (a crash), the same cut is a torn tail: a prefix survives. */
static void test_sealed_wal_cut(void **state)
{
    (void)state;
    char *dir = closed_one_wal("lsm-dmg-seal", "os", 40);
    int nl;
    char **logs = list(dir, ".log", &nl);
    assert_int_equal(nl, 1);
    char *lp = pathf(dir, "%s", logs[0]);
    long size = fsize(lp);
    char *save = tu_mkdtemp("lsm-dmg-seal-save");
    copy_dir(dir, save);
    const long cuts[3] = {size / 2, size - 1, LSM_LOG_HEADER};
    for (int c = 0; c < 3; c++) {
        copy_dir(save, dir);
        assert_int_equal(truncate(lp, cuts[c]), 0);
        expect_open(dir, true, KV_CORRUPTION, logs[0], -1);
        expect_open(dir, false, KV_CORRUPTION, logs[0], -1);
    }
    copy_dir(save, dir);
    append_bytes(lp, "tail", 4);
    expect_all(dir, 40);
    free(lp);
    free_list(logs);
    tu_rmtree(save);
    free(save);
    tu_rmtree(dir);
    free(dir);

    /* a crash: the WAL not sealed, the manifest says nothing of it */
    char *live = tu_mkdtemp("lsm-dmg-seal-live");
    kv_db *db = open_db(live, "os", false);
    put_range(db, 0, 40);
    dir = tu_mkdtemp("lsm-dmg-seal-crash");
    copy_dir(live, dir);
    OK(kv_close(db));
    logs = list(dir, ".log", &nl);
    lp = pathf(dir, "%s", logs[0]);
    assert_int_equal(truncate(lp, fsize(lp) / 2), 0);
    expect_open(dir, true, KV_OK, NULL, -1);
    expect_prefix(dir, 40, 1);
    free(lp);
    free_list(logs);
    tu_rmtree(dir);
    tu_rmtree(live);
    free(dir);
    free(live);
}

/* A table replaced by another table of the same number (another database's), two tables
 * swapped, a table cut or grown, a table missing: each is KV_CORRUPTION naming the table, at
 * open and (for a file replaced under an open handle) in kv_check. */
static void test_table_identity(void **state)
{
    (void)state;
    char *a = tu_mkdtemp("lsm-dmg-ta"), *b = tu_mkdtemp("lsm-dmg-tb");
    for (int w = 0; w < 2; w++) { /* the same workload twice: the same table numbers */
        kv_db *db = open_db(w ? b : a, "os", true);
        put_range(db, 0, 400);
        OK(lsm_pause_background_work(db, true));
        OK(lsm_pause_background_work(db, false));
        OK(kv_close(db));
    }
    int na, nb;
    char **ta = list(a, ".sst", &na), **tb = list(b, ".sst", &nb);
    assert_true(na >= 2 && nb >= 1);
    /* the first flush of each holds the same entries: the same size, another unique id */
    char *first_a = pathf(a, "%s", ta[0]), *first_b = pathf(b, "%s", tb[0]);
    assert_int_equal(fsize(first_a), fsize(first_b));
    free(first_a);
    free(first_b);
    char *save = tu_mkdtemp("lsm-dmg-tsave");
    copy_dir(a, save);
    char *t0 = pathf(a, "%s", ta[0]), *t1 = pathf(a, "%s", ta[1]), *o0 = pathf(b, "%s", tb[0]);
    /* another database's table of the same number */
    copy_file(o0, t0);
    expect_open(a, true, KV_CORRUPTION, ta[0], -1);
    expect_open(a, false, KV_CORRUPTION, ta[0], -1);
    /* two tables swapped */
    copy_dir(save, a);
    char *tmp = pathf(a, "swap");
    assert_int_equal(rename(t0, tmp), 0);
    assert_int_equal(rename(t1, t0), 0);
    assert_int_equal(rename(tmp, t1), 0);
    expect_open(a, false, KV_CORRUPTION, ".sst", -1);
    /* cut, grown, missing */
    copy_dir(save, a);
    assert_int_equal(truncate(t1, fsize(t1) - 1), 0);
    expect_open(a, false, KV_CORRUPTION, ta[1], -1);
    copy_dir(save, a);
    append_bytes(t1, "\0", 1);
    expect_open(a, false, KV_CORRUPTION, ta[1], -1);
    copy_dir(save, a);
    assert_int_equal(unlink(t1), 0);
    expect_open(a, true, KV_CORRUPTION, ta[1], -1);
    /* grown before its footer: the footer (absolute handles) and its id still pass */
    copy_dir(save, a);
    size_t tn;
    uint8_t *tb1 = slurp(t1, &tn), *grown = calloc(1, tn + 16);
    memcpy(grown, tb1, tn - SST_FOOTER_SIZE);
    memcpy(grown + tn + 16 - SST_FOOTER_SIZE, tb1 + tn - SST_FOOTER_SIZE, SST_FOOTER_SIZE);
    spit(t1, grown, tn + 16);
    free(tb1);
    free(grown);
    expect_open(a, true, KV_CORRUPTION, ta[1], -1);
    /* replaced under an open handle: kv_check reads the footer of the file now there */
    copy_dir(save, a);
    kv_options o = opts_of("os", true, true);
    kv_db *db = NULL;
    OK(kv_open("lsm", a, &o, &db));
    kv_options_free(&o);
    OK(kv_check(db));
    char *repl = pathf(a, "repl");
    copy_file(o0, repl);
    assert_int_equal(rename(repl, t0), 0);
    assert_int_equal(kv_check(db), KV_CORRUPTION);
    char buf[1024];
    assert_non_null(strstr(kv_last_error(db, buf, sizeof buf), ta[0]));
    OK(kv_close(db));
    free(repl);
    free(tmp);
    free(t0);
    free(t1);
    free(o0);
    free_list(ta);
    free_list(tb);
    tu_rmtree(save);
    free(save);
    tu_rmtree(a);
    tu_rmtree(b);
    free(a);
    free(b);
}

/* A stale manifest (an older copy, a prefix of it) names a log number whose WAL was deleted
 * after a later flush, or tables since compacted away: refused, never an older database. */
static void test_stale_manifest(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("lsm-dmg-stale");
    kv_db *db = open_db(dir, "os", true);
    put_range(db, 0, 100);
    OK(lsm_pause_background_work(db, true));
    int nm;
    char **m = list(dir, "", &nm);
    char *man = NULL;
    for (int i = 0; i < nm; i++)
        if (!strncmp(m[i], "MANIFEST-", 9))
            man = pathf(dir, "%s", m[i]);
    free_list(m);
    char *old = tu_mkdtemp("lsm-dmg-stale-old");
    char *oldman = pathf(old, "m");
    copy_file(man, oldman);
    OK(lsm_pause_background_work(db, false));
    put_range(db, 100, 300); /* more flushes: the WALs the old copy names are deleted */
    OK(lsm_pause_background_work(db, true));
    OK(lsm_pause_background_work(db, false));
    OK(kv_close(db));
    copy_file(oldman, man);
    expect_open(dir, true, KV_CORRUPTION, ".log: missing", -1);
    expect_open(dir, false, KV_CORRUPTION, ".log: missing", -1);
    free(oldman);
    tu_rmtree(old);
    free(old);
    free(man);
    tu_rmtree(dir);
    free(dir);
}

/* CURRENT missing, damaged, or naming a manifest that is not there. */
static void test_current(void **state)
{
    (void)state;
    char *dir = closed_one_wal("lsm-dmg-cur", "os", 10);
    char *save = tu_mkdtemp("lsm-dmg-cur-save");
    copy_dir(dir, save);
    char *cur = pathf(dir, "CURRENT");
    assert_int_equal(unlink(cur), 0);
    expect_open(dir, true, KV_CORRUPTION, "CURRENT", -1);
    expect_open(dir, false, KV_CORRUPTION, "CURRENT", -1);
    copy_dir(save, dir);
    xor_byte(cur, 14, 0x01);
    expect_open(dir, false, KV_CORRUPTION, "CURRENT", 0);
    copy_dir(save, dir);
    int nm;
    char **m = list(dir, "", &nm);
    for (int i = 0; i < nm; i++)
        if (!strncmp(m[i], "MANIFEST-", 9)) {
            char *p = pathf(dir, "%s", m[i]);
            assert_int_equal(unlink(p), 0);
            expect_open(dir, false, KV_CORRUPTION, m[i], -1);
            free(p);
        }
    free_list(m);
    free(cur);
    tu_rmtree(save);
    free(save);
    tu_rmtree(dir);
    free(dir);
}

/* A scan that meets a damaged block stops there with KV_CORRUPTION naming the table and the
 * block's offset, and serves no record past the damage; a get of a key in that block fails the
 * same way. Both read paths (mmap and pread through the cache). */
static void test_scan_stops_at_damage(void **state)
{
    (void)state;
    for (int mm = 0; mm < 2; mm++) {
        char *dir = tu_mkdtemp("lsm-dmg-scan");
        kv_db *db = open_db(dir, "os", true);
        put_range(db, 0, 600);
        OK(lsm_compact_all(db)); /* every key in level-1 tables */
        put_range(db, 600, 610); /* and later keys in the memtable: none may follow the damage */
        OK(kv_close(db));
        int nt;
        char **t = list(dir, ".sst", &nt);
        assert_true(nt >= 3);
        char *victim = pathf(dir, "%s", t[nt / 2]);
        /* the table's first data block starts at 16: damage its third entry */
        xor_byte(victim, 16 + 150, 0x40);
        kv_options o = opts_of("os", true, true);
        OK(kv_options_set(&o, mm ? "mmap_reads=1" : "mmap_reads=0"));
        OK(kv_open("lsm", dir, &o, &db));
        kv_options_free(&o);
        kv_iter *it;
        OK(kv_iter_new(db, &it));
        int seen = 0, last = -1;
        for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
            size_t kl;
            const char *k = kv_iter_key(it, &kl);
            int i = atoi(k + 1);
            assert_true(i == last + 1); /* in order, nothing skipped */
            last = i;
            seen++;
        }
        assert_int_equal(kv_iter_status(it), KV_CORRUPTION);
        char buf[1024];
        const char *msg = kv_last_error(db, buf, sizeof buf);
        if (!strstr(msg, t[nt / 2]) || !strstr(msg, "offset 16"))
            fail_msg("scan error '%s' does not name %s and offset 16", msg, t[nt / 2]);
        assert_true(seen > 0 && seen < 600);
        kv_iter_free(it);
        /* the keys of the damaged block fail to read; the others read */
        char k[32];
        void *v;
        size_t vl;
        int kl = keyname(k, seen + 3);
        assert_int_equal(kv_get(db, k, (size_t)kl, &v, &vl), KV_CORRUPTION);
        kl = keyname(k, 0);
        OK(kv_get(db, k, (size_t)kl, &v, &vl));
        kv_free(v);
        assert_int_equal(kv_check(db), KV_CORRUPTION);
        OK(kv_close(db));
        free(victim);
        free_list(t);
        tu_rmtree(dir);
        free(dir);
    }
}

/* A read-only open recovers in memory only: orphan tables and .tmp files stay, the manifest and
 * the WALs are not rolled, nothing is flushed or compacted, and every file is unchanged; what it
 * reads is what a writable open then recovers. */
static void test_read_only(void **state)
{
    (void)state;
    int n;
    char *dir = two_wals("lsm-dmg-ro", "os", false, &n);
    int nt;
    char **t = list(dir, ".sst", &nt);
    assert_true(nt >= 1);
    char *src = pathf(dir, "%s", t[0]), *orphan = pathf(dir, "999999.sst"),
         *tmp = pathf(dir, "000777.sst.tmp");
    copy_file(src, orphan);
    spit(tmp, "half", 4);
    expect_open(dir, true, KV_OK, NULL, -1);
    expect_all(dir, n); /* read-only, with the directory compared inside expect_open too */
    kv_options o = opts_of("os", true, true);
    kv_db *db = NULL;
    char *before = tu_dir_state(dir);
    OK(kv_open("lsm", dir, &o, &db));
    kv_options_free(&o);
    assert_int_equal(kv_put(db, "x", 1, "y", 1), KV_INVALID);
    assert_int_equal(lsm_compact_all(db), KV_INVALID);
    assert_int_equal(lsm_pause_background_work(db, true), KV_INVALID);
    FILE *f = tmpfile();
    if (kv_dump(db, f, NULL, -1) != KV_OK)
        fail_msg("dump: %s", kv_errmsg());
    fclose(f);
    OK(kv_close(db));
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* a writable open recovers the same and removes the orphans */
    db = open_db(dir, "os", true);
    OK(kv_close(db));
    assert_int_equal(access(orphan, F_OK), -1);
    assert_int_equal(access(tmp, F_OK), -1);
    expect_all(dir, n);
    free(src);
    free(orphan);
    free(tmp);
    free_list(t);
    tu_rmtree(dir);
    free(dir);
}

/* A power loss that tears the last, unsynced batch at any byte, keeping its end (the tail of its
 * record) but not its middle, opens with the synced prefix, read-only and writable alike. */
static void test_torn_in_flight_batch(void **state)
{
    (void)state;
    char *live = tu_mkdtemp("lsm-dmg-torn");
    kv_db *db = open_db(live, "os", false);
    put_range(db, 0, 30);
    OK(kv_sync(db));
    kv_batch *b = kv_batch_new();
    for (int i = 30; i < 60; i++) {
        char k[32], v[128];
        int kl = keyname(k, i);
        OK(kv_batch_put(b, k, (size_t)kl, v, valueof(v, i)));
    }
    OK(kv_write(db, b));
    kv_batch_free(b);
    char *dir = tu_mkdtemp("lsm-dmg-torn-copy");
    copy_dir(live, dir);
    OK(kv_close(db));
    int nl;
    char **logs = list(dir, ".log", &nl);
    assert_int_equal(nl, 1);
    recinfo last = last_of(dir, logs[0], LSM_REC_BATCH);
    char *lp = pathf(dir, "%s", logs[0]);
    size_t sz;
    uint8_t *orig = slurp(lp, &sz), *bytes = malloc(sz);
    assert_int_equal((size_t)last.off + KV_RECLOG_FRAME + last.len, sz); /* the batch is last */
    /* lost middles of several widths, the head and the tail kept */
    for (long cut = 1; cut < (long)last.len; cut += 97) {
        memcpy(bytes, orig, sz);
        memset(bytes + last.off + KV_RECLOG_FRAME + cut, 0, (size_t)(last.len - cut) / 2 + 1);
        spit(lp, bytes, sz);
        expect_open(dir, true, KV_OK, NULL, -1);
        int hi;
        assert_int_equal(count_keys(dir, 60, &hi), 30);
    }
    free(orig);
    /* and through faultfs: the same workload cut by torn-bytes power losses, several seeds */
    for (uint64_t seed = 1; seed <= 8; seed++) {
        char *d2 = tu_mkdtemp("lsm-dmg-torn-ff"), *scratch = tu_mkdtemp("lsm-dmg-torn-scr");
        kv_fs *fs = kv_faultfs_new(scratch);
        assert_non_null(fs);
        kv_faultfs_set_real_sync(fs, false);
        kv_options o = opts_of("os", false, false);
        o.fs = fs;
        OK(kv_open("lsm", d2, &o, &db));
        put_range(db, 0, 30);
        OK(kv_sync(db));
        b = kv_batch_new();
        for (int i = 30; i < 60; i++) {
            char k[32], v[128];
            int kl = keyname(k, i);
            OK(kv_batch_put(b, k, (size_t)kl, v, valueof(v, i)));
        }
        OK(kv_write(db, b));
        kv_batch_free(b);
        kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
        (void)kv_close(db);
        OK(kv_faultfs_crash(fs, KV_CRASH_TORN_BYTES, seed));
        kv_fs_destroy(fs);
        kv_options_free(&o);
        expect_open(d2, true, KV_OK, NULL, -1);
        int hi;
        int got = count_keys(d2, 60, &hi);
        assert_true(got == 30 || got == 60);
        tu_rmtree(d2);
        tu_rmtree(scratch);
        free(d2);
        free(scratch);
    }
    free(bytes);
    free(lp);
    free_list(logs);
    tu_rmtree(dir);
    tu_rmtree(live);
    free(dir);
    free(live);
}

int main(void)
{
    char *scratch = tu_mkdtemp("lsm-dmg-fast");
    fast = kv_faultfs_new(scratch);
    if (!fast)
        return 1;
    kv_faultfs_set_real_sync(fast, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_last_record_damaged),
        cmocka_unit_test(test_wal_length_field),
        cmocka_unit_test(test_wal_identity),
        cmocka_unit_test(test_wal_chain),
        cmocka_unit_test(test_newest_wal_deleted),
        cmocka_unit_test(test_sealed_wal_cut),
        cmocka_unit_test(test_table_identity),
        cmocka_unit_test(test_stale_manifest),
        cmocka_unit_test(test_current),
        cmocka_unit_test(test_scan_stops_at_damage),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_torn_in_flight_batch),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    kv_fs_destroy(fast);
    tu_rmtree(scratch);
    free(scratch);
    return r;
}
