/* toy: the crash checker's test engine (see toy_engine.h for the format and the broken
 * variants). Deliberately small: a sorted array in memory, a log and its meta file on disk. */
#include "toy_engine.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coding.h"
#include "crc.h"
#include "reclog.h"

#define TOY_MAGIC      "KVTOYLOG"
#define TOY_META_MAGIC "KVTOYMET"
#define TOY_VERSION    2u
#define TOY_HDR        24u /* bytes of the log header */
#define TOY_META_SIZE  24u /* bytes of toy.meta */
#define TOY_REC_COMMIT 1u  /* the one record type: a whole commit */
#define TOY_BUFMAX     (64u << 10)

enum {
    BROKEN_NONE = 0,
    BROKEN_NODIRSYNC,
    BROKEN_NOSYNC,
    BROKEN_SPLIT,
    BROKEN_NOCRC,
    BROKEN_LAZY,
    BROKEN_ROWRITE
};

typedef struct toy_kv {
    uint8_t *key, *val;
    size_t klen, vlen;
} toy_kv;

typedef struct toy_db {
    kv_db base;
    kv_fs *fs;
    kv_file *log; /* NULL only for a read-only open of a database whose files were never made */
    char *path;   /* DIR/toy.log */
    char *meta;   /* DIR/toy.meta */
    uint64_t end; /* where the next record goes */
    uint64_t salt;
    uint32_t seed;    /* kv_reclog_seed(salt) */
    uint64_t durable; /* bytes of the log made durable by the last successful fdatasync */
    uint64_t marked;  /* the durable length the last sync mark names */
    kv_durability_kind mode;
    int broken;
    bool poisoned;
    bool read_only;
    pthread_mutex_t mu;
    toy_kv *kv; /* sorted by key */
    size_t n, cap;
    kv_buf pending; /* mode none: records not yet written */
} toy_db;

typedef struct toy_iter {
    kv_iter base;
    toy_kv *kv; /* a deep copy: the snapshot */
    size_t n, pos;
} toy_iter;

/* ---- the in-memory sorted array ---- */

static int cmp_key(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

static size_t find(const toy_db *d, const uint8_t *k, size_t kl, bool *hit)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(d->kv[mid].key, d->kv[mid].klen, k, kl);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *hit = lo < d->n && !cmp_key(d->kv[lo].key, d->kv[lo].klen, k, kl);
    return lo;
}

static kv_status mem_apply(toy_db *d, kv_op_type t, const uint8_t *k, size_t kl, const uint8_t *v,
                           size_t vl)
{
    bool hit;
    size_t i = find(d, k, kl, &hit);
    if (t == KV_OP_DELETE) {
        if (hit) {
            free(d->kv[i].key);
            free(d->kv[i].val);
            memmove(&d->kv[i], &d->kv[i + 1], (d->n - i - 1) * sizeof *d->kv);
            d->n--;
        }
        return KV_OK;
    }
    uint8_t *nv = malloc(vl ? vl : 1);
    if (!nv)
        return kv_error(KV_NOMEM, "toy: out of memory");
    memcpy(nv, v, vl);
    if (hit) {
        free(d->kv[i].val);
        d->kv[i].val = nv;
        d->kv[i].vlen = vl;
        return KV_OK;
    }
    uint8_t *nk = malloc(kl);
    size_t cap = d->n == d->cap ? (d->cap ? d->cap * 2 : 64) : d->cap;
    toy_kv *arr = nk ? realloc(d->kv, cap * sizeof *arr) : NULL;
    if (!arr) {
        free(nk);
        free(nv);
        return kv_error(KV_NOMEM, "toy: out of memory");
    }
    d->cap = cap;
    d->kv = arr;
    memcpy(nk, k, kl);
    memmove(&d->kv[i + 1], &d->kv[i], (d->n - i) * sizeof *d->kv);
    d->kv[i] = (toy_kv){.key = nk, .klen = kl, .val = nv, .vlen = vl};
    d->n++;
    return KV_OK;
}

static void mem_free(toy_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
    free(kv);
}

/* ---- records ---- */

/* Appends to out a sync mark when a sync made bytes durable since the last mark (reclog.h: the
 * first write after a sync starts with one, so that damage below it is told from a torn tail). */
static kv_status mark_if_due(toy_db *d, kv_buf *out)
{
    if (d->durable <= d->marked)
        return KV_OK;
    if (!kv_buf_reserve(out, KV_RECLOG_MARK_SIZE))
        return kv_error(KV_NOMEM, "toy: out of memory");
    out->len += kv_reclog_mark(out->data + out->len, d->seed, d->durable);
    d->marked = d->durable;
    return KV_OK;
}

/* Appends one commit record holding the n operations ops to out. Payload: u32 op count, then per
 * op u8 type, u32 key length, u32 value length, key, value. */
static kv_status encode(toy_db *d, kv_buf *out, const kv_batch_op *ops, size_t n)
{
    size_t at;
    bool ok = kv_reclog_begin(out, &at) && kv_buf_put_u32(out, (uint32_t)n);
    for (size_t i = 0; ok && i < n; i++) {
        uint8_t h[9];
        h[0] = (uint8_t)ops[i].type;
        kv_put_u32(h + 1, (uint32_t)ops[i].klen);
        kv_put_u32(h + 5, (uint32_t)ops[i].vlen);
        ok = kv_buf_append(out, h, sizeof h) && kv_buf_append(out, ops[i].key, ops[i].klen) &&
             kv_buf_append(out, ops[i].value, ops[i].vlen);
    }
    if (!ok)
        return kv_error(KV_NOMEM, "toy: out of memory");
    kv_reclog_end(out, at, d->seed, TOY_REC_COMMIT);
    return KV_OK;
}

/* Applies the ops of one record payload; false when it does not parse. */
static bool apply_payload(toy_db *d, const uint8_t *p, size_t len, kv_status *err)
{
    const uint8_t *end = p + len;
    *err = KV_OK;
    if (len < 4)
        return false;
    uint32_t n = kv_get_u32(p);
    p += 4;
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 9)
            return false;
        uint8_t t = p[0];
        uint32_t kl = kv_get_u32(p + 1), vl = kv_get_u32(p + 5);
        p += 9;
        if ((t != KV_OP_PUT && t != KV_OP_DELETE) || kl == 0 || (uint64_t)(end - p) < kl ||
            (uint64_t)(end - p) - kl < vl)
            return false;
        *err = mem_apply(d, (kv_op_type)t, p, kl, p + kl, vl);
        if (*err != KV_OK)
            return false;
        p += kl + vl;
    }
    return p == end;
}

/* ---- writing ---- */

static kv_status poison(toy_db *d, kv_status s)
{
    d->poisoned = true;
    return s;
}

static kv_status write_out(toy_db *d, const uint8_t *p, size_t n)
{
    kv_status s = kv_file_pwrite(d->log, p, n, d->end);
    if (s != KV_OK)
        return poison(d, s);
    d->end += n;
    return KV_OK;
}

static kv_status flush_pending(toy_db *d)
{
    if (!d->pending.len)
        return KV_OK;
    kv_status s = write_out(d, d->pending.data, d->pending.len);
    d->pending.len = 0;
    return s;
}

/* fdatasync of the log; on success everything written so far is durable. */
static kv_status sync_log(toy_db *d)
{
    kv_status s = kv_file_fdatasync(d->log);
    if (s != KV_OK)
        return poison(d, s);
    d->durable = d->end;
    return KV_OK;
}

/* Encodes and writes a commit's record(s) per the durability mode, then applies it to memory. */
static kv_status commit(toy_db *d, const kv_batch_op *ops, size_t n)
{
    pthread_mutex_lock(&d->mu);
    kv_status s = KV_OK;
    if (d->poisoned) {
        s = kv_error(KV_POISONED, "toy: an earlier write or sync failed");
        goto out;
    }
    kv_buf rec = {0};
    /* In mode none the records join the user-space buffer, which a sync has just emptied when
     * a mark is due: either way the mark lands where the next bytes of the log go. */
    kv_buf *to = d->mode == KV_DURABILITY_NONE ? &d->pending : &rec;
    s = mark_if_due(d, to);
    if (d->broken == BROKEN_SPLIT) {
        /* one record and one write per operation: a crash between them splits the batch */
        for (size_t i = 0; i < n && s == KV_OK; i++) {
            s = encode(d, to, &ops[i], 1);
            if (s == KV_OK && rec.len)
                s = write_out(d, rec.data, rec.len);
            rec.len = 0;
        }
    } else if (s == KV_OK) {
        s = encode(d, to, ops, n);
        if (s == KV_OK && rec.len)
            s = write_out(d, rec.data, rec.len);
    }
    kv_buf_free(&rec);
    if (s == KV_OK && d->mode == KV_DURABILITY_NONE && d->pending.len >= TOY_BUFMAX)
        s = flush_pending(d);
    if (s == KV_OK && d->mode == KV_DURABILITY_SYNC && d->broken != BROKEN_NOSYNC)
        s = sync_log(d);
    for (size_t i = 0; i < n && s == KV_OK; i++)
        s = mem_apply(d, ops[i].type, ops[i].key, ops[i].klen, ops[i].value, ops[i].vlen);
out:
    pthread_mutex_unlock(&d->mu);
    return s;
}

static kv_status toy_put(kv_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
    kv_batch_op op = {.type = KV_OP_PUT, .key = k, .klen = kl, .value = v, .vlen = vl};
    return commit((toy_db *)db, &op, 1);
}

static kv_status toy_del(kv_db *db, const void *k, size_t kl)
{
    kv_batch_op op = {.type = KV_OP_DELETE, .key = k, .klen = kl};
    return commit((toy_db *)db, &op, 1);
}

static kv_status toy_write(kv_db *db, const kv_batch *b)
{
    size_t n = kv_batch_count(b);
    kv_batch_op *ops = malloc(n * sizeof *ops);
    if (!ops)
        return kv_error(KV_NOMEM, "toy: out of memory");
    for (size_t i = 0; i < n; i++)
        ops[i] = kv_batch_get(b, i);
    kv_status s = commit((toy_db *)db, ops, n);
    free(ops);
    return s;
}

static kv_status toy_sync(kv_db *db)
{
    toy_db *d = (toy_db *)db;
    pthread_mutex_lock(&d->mu);
    kv_status s = d->poisoned ? kv_error(KV_POISONED, "toy: an earlier write or sync failed")
                              : flush_pending(d);
    if (s == KV_OK)
        s = sync_log(d);
    pthread_mutex_unlock(&d->mu);
    return s;
}

/* ---- open / close ---- */

static void toy_free(toy_db *d)
{
    kv_file_close(d->log);
    mem_free(d->kv, d->n);
    kv_buf_free(&d->pending);
    free(d->path);
    free(d->meta);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static uint64_t new_salt(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    z ^= (uint64_t)getpid() << 40;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; /* splitmix64's finaliser */
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* toy.meta: "KVTOYMET", u32 version, u32 CRC32 of bytes [0, 8) and [16, 24), u64 the log's salt.
 * It names the one log the database depends on, so that a missing, replaced or re-created
 * toy.log is corruption rather than an empty database (docs/design.md section 6). */
static void meta_encode(uint8_t m[TOY_META_SIZE], uint64_t salt)
{
    memcpy(m, TOY_META_MAGIC, 8);
    kv_put_u32(m + 8, TOY_VERSION);
    kv_put_u64(m + 16, salt);
    kv_put_u32(m + 12, kv_crc32_extend(kv_crc32(m, 8), m + 16, 8));
}

/* Creates the log (header, fdatasync, directory fsync), then toy.meta naming it (replaced
 * atomically, so toy.meta never names a log whose creation is not durable). */
static kv_status create_files(toy_db *d, const char *dir)
{
    uint8_t hdr[TOY_HDR] = {0};
    d->salt = new_salt();
    d->seed = kv_reclog_seed(d->salt);
    memcpy(hdr, TOY_MAGIC, 8);
    kv_put_u32(hdr + 8, TOY_VERSION);
    kv_put_u64(hdr + 16, d->salt);
    kv_status s = kv_fs_open(d->fs, d->path, KV_FS_CREATE, &d->log);
    if (s == KV_OK)
        s = kv_file_truncate(d->log, 0);
    if (s == KV_OK)
        s = kv_file_pwrite(d->log, hdr, sizeof hdr, 0);
    if (s == KV_OK)
        s = kv_file_fdatasync(d->log);
    if (s == KV_OK && d->broken != BROKEN_NODIRSYNC)
        s = kv_fs_fsync_dir(d->fs, dir);
    /* toy.meta replaced atomically: written to toy.meta.tmp, fdatasynced, renamed over,
     * directory fsynced (as kv_fs_replace_file, but broken=nodirsync must skip the fsync) */
    uint8_t m[TOY_META_SIZE];
    meta_encode(m, d->salt);
    char *tmp = kv_path_join(dir, "toy.meta.tmp");
    kv_file *f = NULL;
    if (s == KV_OK && !tmp)
        s = kv_error(KV_NOMEM, "toy: out of memory");
    if (s == KV_OK)
        s = kv_fs_open(d->fs, tmp, KV_FS_CREATE | KV_FS_TRUNC, &f);
    if (s == KV_OK)
        s = kv_file_pwrite(f, m, sizeof m, 0);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    if (f) {
        kv_status c = kv_file_close(f);
        s = s == KV_OK ? c : s;
    }
    if (s == KV_OK)
        s = kv_fs_rename(d->fs, tmp, d->meta);
    if (s == KV_OK && d->broken != BROKEN_NODIRSYNC)
        s = kv_fs_fsync_dir(d->fs, dir);
    free(tmp);
    d->end = d->durable = d->marked = TOY_HDR;
    return s;
}

/* Reads toy.meta into *salt. KV_NOT_FOUND when it does not exist; KV_CORRUPTION naming it. */
static kv_status read_meta(toy_db *d, uint64_t *salt)
{
    void *data = NULL;
    size_t len = 0;
    kv_status s = kv_fs_read_file(d->fs, d->meta, 4096, &data, &len);
    if (s == KV_INVALID)
        return kv_error(KV_CORRUPTION, "%s: offset %u: %zu bytes, a meta file has %u", d->meta,
                        TOY_META_SIZE, len, TOY_META_SIZE);
    if (s != KV_OK)
        return s;
    uint8_t m[TOY_META_SIZE];
    const uint8_t *p = data;
    if (len != TOY_META_SIZE)
        s = kv_error(KV_CORRUPTION, "%s: offset %zu: %zu bytes, a meta file has %u", d->meta,
                     len < TOY_META_SIZE ? len : (size_t)TOY_META_SIZE, len, TOY_META_SIZE);
    else if (memcmp(p, TOY_META_MAGIC, 8) || kv_get_u32(p + 8) != TOY_VERSION)
        s = kv_error(KV_CORRUPTION, "%s: offset 0: bad magic or version", d->meta);
    else if (meta_encode(m, kv_get_u64(p + 16)), memcmp(m, p, TOY_META_SIZE))
        s = kv_error(KV_CORRUPTION, "%s: offset 12: crc mismatch", d->meta);
    else
        *salt = kv_get_u64(p + 16);
    free(data);
    return s;
}

static kv_status visit_record(void *ctx, const kv_reclog_rec *r)
{
    toy_db *d = ctx;
    kv_status e = KV_OK;
    if (r->type == KV_RECLOG_MARK)
        return KV_OK;
    if (r->type != TOY_REC_COMMIT || !apply_payload(d, r->payload, r->len, &e))
        return e != KV_OK ? e
                          : kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": bad commit record",
                                     d->path, r->off);
    return KV_OK;
}

/* broken=nocrc: walks the records by their length fields alone, never checking a CRC, and stops
 * where a record would run past the end or does not parse. */
static uint64_t replay_nocrc(toy_db *d, const uint8_t *all, uint64_t size)
{
    uint64_t off = TOY_HDR;
    while (size - off >= KV_RECLOG_FRAME) {
        const uint8_t *r = all + off;
        uint32_t len = kv_get_u32(r + 8);
        kv_status e;
        if (len > size - off - KV_RECLOG_FRAME ||
            (r[12] == TOY_REC_COMMIT && !apply_payload(d, r + KV_RECLOG_FRAME, len, &e)))
            break;
        off += KV_RECLOG_FRAME + (uint64_t)len;
    }
    return off;
}

/* Replays the whole log under the record log's damage rule (reclog.h): damage is corruption, a
 * torn tail is cut (in memory only when read-only). */
static kv_status replay(toy_db *d, uint64_t want_salt)
{
    uint64_t size = 0;
    kv_status s = kv_file_size(d->log, &size);
    if (s != KV_OK)
        return s;
    uint8_t *all = malloc(size ? size : 1);
    if (!all)
        return kv_error(KV_NOMEM, "toy: out of memory");
    if (size && (s = kv_file_read_exact(d->log, all, size, 0)) != KV_OK)
        goto out;
    if (size < TOY_HDR) {
        s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": file ends inside its %u-byte header",
                     d->path, size, TOY_HDR);
        goto out;
    }
    if (memcmp(all, TOY_MAGIC, 8) || kv_get_u32(all + 8) != TOY_VERSION) {
        s = kv_error(KV_CORRUPTION, "%s: offset 0: bad magic or version", d->path);
        goto out;
    }
    d->salt = kv_get_u64(all + 16);
    d->seed = kv_reclog_seed(d->salt);
    if (d->salt != want_salt) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset 16: salt %016" PRIx64
                     ", but %s names the log with salt %016" PRIx64
                     " (a log from another database or an older creation)",
                     d->path, d->salt, d->meta, want_salt);
        goto out;
    }
    uint64_t end;
    if (d->broken == BROKEN_NOCRC) {
        end = replay_nocrc(d, all, size);
    } else {
        kv_reclog_result res;
        s = kv_reclog_scan(d->path, all, size, TOY_HDR, d->seed, visit_record, d, &res);
        if (s != KV_OK)
            goto out;
        end = res.end;
        d->marked = res.durable;
    }
    d->end = d->durable = end;
    if (end < size && (!d->read_only || d->broken == BROKEN_ROWRITE)) {
        /* cut the torn tail for good before appending after it */
        s = kv_file_truncate(d->log, end);
        if (s == KV_OK)
            s = kv_file_fdatasync(d->log);
    }
out:
    free(all);
    return s;
}

/* How many bytes the log holds, 0 when it is missing. */
static kv_status log_size(toy_db *d, bool *exists, uint64_t *size)
{
    *size = 0;
    kv_status s = kv_fs_exists(d->fs, d->path, exists);
    if (s != KV_OK || !*exists)
        return s;
    kv_file *f = NULL;
    if ((s = kv_fs_open(d->fs, d->path, KV_FS_READ, &f)) == KV_OK)
        s = kv_file_size(f, size);
    kv_file_close(f);
    return s;
}

static kv_status open_files(toy_db *d, const char *dir)
{
    uint64_t salt = 0, size = 0;
    bool log_exists = false;
    kv_status s = read_meta(d, &salt);
    if (s != KV_OK && s != KV_NOT_FOUND)
        return s;
    bool meta_exists = s == KV_OK;
    if ((s = log_size(d, &log_exists, &size)) != KV_OK)
        return s;
    if (meta_exists && !log_exists)
        return kv_error(KV_CORRUPTION,
                        "%s: missing, but %s (offset 16) names a log with salt %016" PRIx64,
                        d->path, d->meta, salt);
    if (!meta_exists && size > TOY_HDR)
        return kv_error(KV_CORRUPTION,
                        "%s: missing, but %s holds records from offset %u: not a new database",
                        d->meta, d->path, TOY_HDR);
    if (!meta_exists) {
        /* A new database, or a creation that a crash interrupted before toy.meta: nothing was
         * ever acknowledged in it. A read-only open sees it empty and writes nothing. */
        if (d->read_only)
            return KV_OK;
        return create_files(d, dir);
    }
    bool writes = !d->read_only || d->broken == BROKEN_ROWRITE;
    s = kv_fs_open(d->fs, d->path, writes ? KV_FS_WRITE : KV_FS_READ, &d->log);
    if (s == KV_OK)
        s = replay(d, salt);
    return s;
}

static kv_status toy_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    toy_db *d = calloc(1, sizeof *d);
    if (!d)
        return kv_error(KV_NOMEM, "toy: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    d->fs = fs;
    d->mode = opts->durability.kind;
    d->read_only = opts->read_only;
    const char *b = kv_options_get(opts, "broken");
    if (b) {
        static const char *const names[] = {"",      "nodirsync", "nosync", "split",
                                            "nocrc", "lazy",      "rowrite"};
        d->broken = -1;
        for (int i = 1; i < 7; i++)
            if (!strcmp(b, names[i]))
                d->broken = i;
        if (d->broken < 0) {
            toy_free(d);
            return kv_error(KV_INVALID, "toy: bad broken=%s", b);
        }
        if (d->broken == BROKEN_LAZY && d->mode == KV_DURABILITY_OS)
            d->mode = KV_DURABILITY_NONE; /* acknowledges from its user-space buffer */
    }
    d->path = kv_path_join(dir, "toy.log");
    d->meta = kv_path_join(dir, "toy.meta");
    if (!d->path || !d->meta) {
        toy_free(d);
        return kv_error(KV_NOMEM, "toy: out of memory");
    }
    kv_status s = open_files(d, dir);
    if (s != KV_OK) {
        toy_free(d);
        return s;
    }
    *out = &d->base;
    return KV_OK;
}

/* A clean close makes everything durable and ends the log with a sync mark naming it all. */
static kv_status toy_close(kv_db *db)
{
    toy_db *d = (toy_db *)db;
    kv_status s = KV_OK;
    if (d->read_only || !d->log) {
        /* nothing was written */
    } else if (!d->poisoned) {
        s = flush_pending(d);
        if (s == KV_OK)
            s = sync_log(d);
        if (s == KV_OK && d->durable > d->marked) {
            uint8_t m[KV_RECLOG_MARK_SIZE];
            kv_reclog_mark(m, d->seed, d->durable);
            d->marked = d->durable;
            s = write_out(d, m, sizeof m);
            if (s == KV_OK)
                s = sync_log(d);
        }
    } else {
        s = kv_error(KV_POISONED, "toy: closed a poisoned handle");
    }
    toy_free(d);
    return s;
}

/* ---- reads ---- */

static kv_status toy_get(kv_db *db, const void *k, size_t kl, void **v, size_t *vl)
{
    toy_db *d = (toy_db *)db;
    pthread_mutex_lock(&d->mu);
    bool hit;
    size_t i = find(d, k, kl, &hit);
    kv_status s = KV_NOT_FOUND;
    if (hit) {
        *v = malloc(d->kv[i].vlen ? d->kv[i].vlen : 1);
        if (*v) {
            memcpy(*v, d->kv[i].val, d->kv[i].vlen);
            *vl = d->kv[i].vlen;
            s = KV_OK;
        } else {
            s = kv_error(KV_NOMEM, "toy: out of memory");
        }
    }
    pthread_mutex_unlock(&d->mu);
    return s;
}

static void it_seek_first(kv_iter *it)
{
    ((toy_iter *)it)->pos = 0;
}

static void it_seek(kv_iter *it, const void *k, size_t kl)
{
    toy_iter *t = (toy_iter *)it;
    t->pos = 0;
    while (t->pos < t->n && cmp_key(t->kv[t->pos].key, t->kv[t->pos].klen, k, kl) < 0)
        t->pos++;
}

static bool it_valid(const kv_iter *it)
{
    const toy_iter *t = (const toy_iter *)it;
    return t->pos < t->n;
}

static void it_next(kv_iter *it)
{
    ((toy_iter *)it)->pos++;
}

static const void *it_key(const kv_iter *it, size_t *kl)
{
    const toy_iter *t = (const toy_iter *)it;
    *kl = t->kv[t->pos].klen;
    return t->kv[t->pos].key;
}

static const void *it_value(const kv_iter *it, size_t *vl)
{
    const toy_iter *t = (const toy_iter *)it;
    *vl = t->kv[t->pos].vlen;
    return t->kv[t->pos].val;
}

static kv_status it_status(const kv_iter *it)
{
    (void)it;
    return KV_OK;
}

static void it_free(kv_iter *it)
{
    toy_iter *t = (toy_iter *)it;
    mem_free(t->kv, t->n);
    free(t);
}

static const kv_iter_ops toy_iter_ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                         it_key,        it_value, it_status, it_free};

static kv_status toy_iter_new(kv_db *db, kv_iter **out)
{
    toy_db *d = (toy_db *)db;
    toy_iter *t = calloc(1, sizeof *t);
    if (!t)
        return kv_error(KV_NOMEM, "toy: out of memory");
    t->base.ops = &toy_iter_ops;
    pthread_mutex_lock(&d->mu);
    t->kv = calloc(d->n ? d->n : 1, sizeof *t->kv);
    kv_status s = t->kv ? KV_OK : KV_NOMEM;
    for (size_t i = 0; s == KV_OK && i < d->n; i++) {
        toy_kv *c = &t->kv[i];
        c->key = malloc(d->kv[i].klen);
        c->val = malloc(d->kv[i].vlen ? d->kv[i].vlen : 1);
        t->n = i + 1;
        if (!c->key || !c->val) {
            s = KV_NOMEM;
            break;
        }
        memcpy(c->key, d->kv[i].key, c->klen = d->kv[i].klen);
        memcpy(c->val, d->kv[i].val, c->vlen = d->kv[i].vlen);
    }
    pthread_mutex_unlock(&d->mu);
    if (s != KV_OK) {
        it_free(&t->base);
        return kv_error(KV_NOMEM, "toy: out of memory");
    }
    *out = &t->base;
    return KV_OK;
}

static kv_status toy_stats(kv_db *db, kv_stats *out)
{
    toy_db *d = (toy_db *)db;
    pthread_mutex_lock(&d->mu);
    out->live_keys = d->n;
    pthread_mutex_unlock(&d->mu);
    return KV_OK;
}

static kv_status toy_check(kv_db *db)
{
    toy_db *d = (toy_db *)db;
    kv_status s = KV_OK;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 1; i < d->n && s == KV_OK; i++)
        if (cmp_key(d->kv[i - 1].key, d->kv[i - 1].klen, d->kv[i].key, d->kv[i].klen) >= 0)
            s = kv_error(KV_CORRUPTION, "toy: memory keys out of order at %zu", i);
    pthread_mutex_unlock(&d->mu);
    return s;
}

static kv_status toy_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    toy_db *d = (toy_db *)db;
    (void)file;
    (void)page;
    fprintf(out,
            "%s: header %u bytes, salt %016" PRIx64 ", %zu live keys, end offset %" PRIu64 "\n",
            d->path, TOY_HDR, d->salt, d->n, d->end);
    return KV_OK;
}

static const char *const toy_options[] = {
    "broken: nodirsync|nosync|split|nocrc|lazy|rowrite, a deliberate bug for the crash checker's "
    "tests",
    NULL};

const kv_engine toy_engine = {
    .name = "toy",
    .description = "append-only log test engine of the crash checker (not registered)",
    .option_help = toy_options,
    .limits = {.max_key = KV_MAX_KEY, .max_value = 1u << 20},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = TOY_VERSION,
    .read_only = true,
    .open = toy_open,
    .close = toy_close,
    .put = toy_put,
    .get = toy_get,
    .del = toy_del,
    .write = toy_write,
    .iter_new = toy_iter_new,
    .sync = toy_sync,
    .stats = toy_stats,
    .check = toy_check,
    .dump = toy_dump,
};
