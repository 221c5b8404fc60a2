/* toy: the crash checker's test engine (see toy_engine.h for the format and the broken
 * variants). Deliberately small: a sorted array in memory, one log file on disk. */
#include "toy_engine.h"

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "crc.h"

#define TOY_MAGIC  "KVTOYLOG"
#define TOY_HDR    16u
#define TOY_BUFMAX (64u << 10)

enum { BROKEN_NONE = 0, BROKEN_NODIRSYNC, BROKEN_NOSYNC, BROKEN_SPLIT, BROKEN_NOCRC, BROKEN_LAZY };

typedef struct toy_kv {
    uint8_t *key, *val;
    size_t klen, vlen;
} toy_kv;

typedef struct toy_db {
    kv_db base;
    kv_fs *fs;
    kv_file *log;
    char *path;
    uint64_t end; /* where the next record goes */
    kv_durability_kind mode;
    int broken;
    bool poisoned;
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
        return kv_error(KV_IO, "toy: out of memory");
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
        return kv_error(KV_IO, "toy: out of memory");
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

static kv_status buf_room(kv_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return KV_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *n = realloc(b->data, cap);
    if (!n)
        return kv_error(KV_IO, "toy: out of memory");
    b->data = n;
    b->cap = cap;
    return KV_OK;
}

/* Appends one record holding the n operations ops to out. */
static kv_status encode(kv_buf *out, const kv_batch_op *ops, size_t n)
{
    size_t need = 12;
    for (size_t i = 0; i < n; i++)
        need += 9 + ops[i].klen + ops[i].vlen;
    if (buf_room(out, need) != KV_OK)
        return KV_IO;
    uint8_t *r = out->data + out->len;
    uint8_t *p = r + 8;
    kv_put_u32(p, (uint32_t)n);
    p += 4;
    for (size_t i = 0; i < n; i++) {
        *p++ = (uint8_t)ops[i].type;
        kv_put_u32(p, (uint32_t)ops[i].klen);
        kv_put_u32(p + 4, (uint32_t)ops[i].vlen);
        p += 8;
        memcpy(p, ops[i].key, ops[i].klen);
        p += ops[i].klen;
        if (ops[i].vlen)
            memcpy(p, ops[i].value, ops[i].vlen);
        p += ops[i].vlen;
    }
    kv_put_u32(r + 4, (uint32_t)(need - 8));
    kv_put_u32(r, kv_crc32(r + 4, need - 4));
    out->len += need;
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
    if (d->broken == BROKEN_SPLIT) {
        for (size_t i = 0; i < n && s == KV_OK; i++) {
            rec.len = 0;
            s = encode(&rec, &ops[i], 1);
            if (s == KV_OK && d->mode != KV_DURABILITY_NONE)
                s = write_out(d, rec.data, rec.len);
            else if (s == KV_OK && (s = buf_room(&d->pending, rec.len)) == KV_OK) {
                memcpy(d->pending.data + d->pending.len, rec.data, rec.len);
                d->pending.len += rec.len;
            }
        }
    } else {
        s = encode(&rec, ops, n);
        if (s == KV_OK && d->mode != KV_DURABILITY_NONE)
            s = write_out(d, rec.data, rec.len);
        else if (s == KV_OK && (s = buf_room(&d->pending, rec.len)) == KV_OK) {
            memcpy(d->pending.data + d->pending.len, rec.data, rec.len);
            d->pending.len += rec.len;
        }
    }
    free(rec.data);
    if (s == KV_OK && d->mode == KV_DURABILITY_NONE && d->pending.len >= TOY_BUFMAX)
        s = flush_pending(d);
    if (s == KV_OK && d->mode == KV_DURABILITY_SYNC && d->broken != BROKEN_NOSYNC) {
        s = kv_file_fdatasync(d->log);
        if (s != KV_OK)
            poison(d, s);
    }
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
        return kv_error(KV_IO, "toy: out of memory");
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
    if (s == KV_OK && (s = kv_file_fdatasync(d->log)) != KV_OK)
        poison(d, s);
    pthread_mutex_unlock(&d->mu);
    return s;
}

/* ---- open / close ---- */

static void toy_free(toy_db *d)
{
    kv_file_close(d->log);
    mem_free(d->kv, d->n);
    free(d->pending.data);
    free(d->path);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static kv_status create_log(toy_db *d, const char *dir)
{
    uint8_t hdr[TOY_HDR];
    memcpy(hdr, TOY_MAGIC, 8);
    kv_put_u32(hdr + 8, 1);
    kv_put_u32(hdr + 12, 0x70790001u);
    kv_status s = kv_file_truncate(d->log, 0);
    if (s == KV_OK)
        s = kv_file_pwrite(d->log, hdr, sizeof hdr, 0);
    if (s == KV_OK)
        s = kv_file_fdatasync(d->log);
    if (s == KV_OK && d->broken != BROKEN_NODIRSYNC)
        s = kv_fs_fsync_dir(d->fs, dir);
    d->end = TOY_HDR;
    return s;
}

static kv_status replay(toy_db *d, const char *dir)
{
    uint64_t size = 0;
    kv_status s = kv_file_size(d->log, &size);
    if (s != KV_OK)
        return s;
    uint8_t *all = malloc(size ? size : 1);
    if (!all)
        return kv_error(KV_IO, "toy: out of memory");
    if (size && (s = kv_file_read_exact(d->log, all, size, 0)) != KV_OK) {
        free(all);
        return s;
    }
    static const uint8_t zero[TOY_HDR];
    if (size < TOY_HDR || !memcmp(all, zero, TOY_HDR)) {
        /* The log's creation was not durable yet: nothing was ever acknowledged. */
        free(all);
        return create_log(d, dir);
    }
    if (memcmp(all, TOY_MAGIC, 8) || kv_get_u32(all + 8) != 1) {
        free(all);
        return kv_error(KV_CORRUPTION, "%s: bad magic or version at offset 0", d->path);
    }
    uint64_t off = TOY_HDR;
    while (size - off >= 8) {
        uint32_t crc = kv_get_u32(all + off), len = kv_get_u32(all + off + 4);
        if (len > size - off - 8)
            break; /* torn tail */
        if (d->broken != BROKEN_NOCRC && kv_crc32(all + off + 4, (size_t)len + 4) != crc)
            break; /* torn tail */
        kv_status e;
        if (!apply_payload(d, all + off + 8, len, &e)) {
            if (e != KV_OK) {
                free(all);
                return e;
            }
            break;
        }
        off += 8 + (uint64_t)len;
    }
    free(all);
    d->end = off;
    if (off < size) { /* cut the torn tail for good before appending after it */
        s = kv_file_truncate(d->log, off);
        if (s == KV_OK)
            s = kv_file_fdatasync(d->log);
    }
    return s;
}

static kv_status toy_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    toy_db *d = calloc(1, sizeof *d);
    if (!d)
        return kv_error(KV_IO, "toy: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    d->fs = fs;
    d->mode = opts->durability.kind;
    const char *b = kv_options_get(opts, "broken");
    if (b) {
        static const char *const names[] = {"", "nodirsync", "nosync", "split", "nocrc", "lazy"};
        d->broken = -1;
        for (int i = 1; i < 6; i++)
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
    if (!d->path) {
        toy_free(d);
        return kv_error(KV_IO, "toy: out of memory");
    }
    bool exists = false;
    kv_status s = kv_fs_exists(fs, d->path, &exists);
    if (s == KV_OK)
        s = kv_fs_open(fs, d->path, exists ? KV_FS_WRITE : KV_FS_CREATE, &d->log);
    if (s == KV_OK)
        s = exists ? replay(d, dir) : create_log(d, dir);
    if (s != KV_OK) {
        toy_free(d);
        return s;
    }
    *out = &d->base;
    return KV_OK;
}

static kv_status toy_close(kv_db *db)
{
    toy_db *d = (toy_db *)db;
    kv_status s = KV_OK;
    if (!d->poisoned) {
        s = flush_pending(d);
        if (s == KV_OK)
            s = kv_file_fdatasync(d->log);
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
            s = kv_error(KV_IO, "toy: out of memory");
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
        return kv_error(KV_IO, "toy: out of memory");
    t->base.ops = &toy_iter_ops;
    pthread_mutex_lock(&d->mu);
    t->kv = calloc(d->n ? d->n : 1, sizeof *t->kv);
    kv_status s = t->kv ? KV_OK : KV_IO;
    for (size_t i = 0; s == KV_OK && i < d->n; i++) {
        toy_kv *c = &t->kv[i];
        c->key = malloc(d->kv[i].klen);
        c->val = malloc(d->kv[i].vlen ? d->kv[i].vlen : 1);
        t->n = i + 1;
        if (!c->key || !c->val) {
            s = KV_IO;
            break;
        }
        memcpy(c->key, d->kv[i].key, c->klen = d->kv[i].klen);
        memcpy(c->val, d->kv[i].val, c->vlen = d->kv[i].vlen);
    }
    pthread_mutex_unlock(&d->mu);
    if (s != KV_OK) {
        it_free(&t->base);
        return kv_error(KV_IO, "toy: out of memory");
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
    fprintf(out, "%s: header 16 bytes, %zu live keys, end offset %llu\n", d->path, d->n,
            (unsigned long long)d->end);
    return KV_OK;
}

static const char *const toy_options[] = {
    "broken: nodirsync|nosync|split|nocrc|lazy, a deliberate bug for the crash checker's tests",
    NULL};

const kv_engine toy_engine = {
    .name = "toy",
    .description = "append-only log test engine of the crash checker (not registered)",
    .option_help = toy_options,
    .limits = {.max_key = KV_MAX_KEY, .max_value = 1u << 20},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 1,
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
