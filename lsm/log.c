/* log.c: the WAL and the manifest, one header format each (lsm_int.h) over kvlab's one record
 * log (common/reclog.h: framing, sync marks, the scanner whose damage rule tells a torn tail from
 * damage). This file adds what is the lsm's own: the header, the salt of every CRC (database id
 * and file number, so that a record of another log never replays here), the writer's record of
 * which bytes are durable and vouched for by a mark, and the rule for a header that fails its
 * check. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "lsm_int.h"

uint64_t lsm_log_salt(uint64_t db_id, uint64_t number)
{
    return db_id ^ (number * UINT64_C(0x9E3779B97F4A7C15));
}

void lsm_log_header_encode(uint8_t *out, const char *magic, const lsm_log_header *h)
{
    memcpy(out, magic, 8);
    kv_put_u32(out + 8, h->version);
    kv_put_u32(out + 12, h->flags);
    kv_put_u64(out + 16, h->number);
    kv_put_u64(out + 24, h->db_id);
    kv_put_u64(out + 32, h->prev_number);
    kv_put_u64(out + 40, h->prev_len);
    kv_put_u32(out + 48, 0);
    kv_put_u32(out + 52, kv_crc32(out, 52));
}

/* The buffer of records starts with room for a mark (filled only when one is due). */
static bool reserve_mark(lsm_log *l)
{
    if (l->buf.len)
        return true;
    if (!kv_buf_reserve(&l->buf, KV_RECLOG_MARK_SIZE))
        return false;
    l->buf.len = KV_RECLOG_MARK_SIZE;
    return true;
}

kv_status lsm_log_create(kv_fs *fs, const char *dir, const char *name, const char *magic,
                         const lsm_log_header *h, bool sync_header, lsm_log **out)
{
    lsm_log *l = calloc(1, sizeof *l);
    if (!l || !(l->path = kv_path_join(dir, name)) || !reserve_mark(l)) {
        if (l)
            kv_buf_free(&l->buf);
        free(l ? l->path : NULL);
        free(l);
        return kv_error(KV_NOMEM, "%s: out of memory", name);
    }
    atomic_init(&l->refs, 1);
    l->number = h->number;
    l->prev_number = h->prev_number;
    l->prev_len = h->prev_len;
    l->seed = kv_reclog_seed(lsm_log_salt(h->db_id, h->number));
    kv_status s = kv_fs_open(fs, l->path, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &l->f);
    if (s != KV_OK) {
        l->f = NULL;
        lsm_log_unref(l);
        return s;
    }
    uint8_t hb[LSM_LOG_HEADER];
    lsm_log_header_encode(hb, magic, h);
    s = kv_file_pwrite(l->f, hb, sizeof hb, 0);
    if (s == KV_OK) {
        atomic_store(&l->written, sizeof hb);
        if (sync_header)
            s = lsm_log_sync(l);
    }
    if (s == KV_OK)
        s = kv_fs_fsync_dir(fs, dir);
    if (s != KV_OK) {
        lsm_log_unref(l);
        return s;
    }
    *out = l;
    return KV_OK;
}

void lsm_log_ref(lsm_log *l)
{
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

void lsm_log_unref(lsm_log *l)
{
    if (!l)
        return;
    long left = (long)atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    kv_file_close(l->f);
    kv_buf_free(&l->buf);
    free(l->path);
    free(l);
}

bool lsm_log_begin(lsm_log *l)
{
    if (!reserve_mark(l))
        return false;
    return kv_reclog_begin(&l->buf, &l->rec_start);
}

void lsm_log_end(lsm_log *l, uint8_t type)
{
    kv_reclog_end(&l->buf, l->rec_start, l->seed, type);
}

/* Whether bytes are durable that no mark vouches for yet. */
static bool mark_due(const lsm_log *l, uint64_t *synced)
{
    *synced = atomic_load_explicit(&l->synced, memory_order_acquire);
    return *synced > l->vouched;
}

/* Notes a mark written at offset at naming durable length d: it vouches for [0, d), and when d
 * is its own offset (nothing unsynced before it) for itself too, so that syncing it alone makes
 * no further mark due. */
static void note_mark(lsm_log *l, uint64_t at, uint64_t d)
{
    l->vouched = d == at ? at + KV_RECLOG_MARK_SIZE : d;
}

kv_status lsm_log_flush(lsm_log *l)
{
    if (l->buf.len <= KV_RECLOG_MARK_SIZE)
        return KV_OK;
    uint64_t at = atomic_load_explicit(&l->written, memory_order_relaxed), d;
    const uint8_t *from = l->buf.data + KV_RECLOG_MARK_SIZE;
    size_t n = l->buf.len - KV_RECLOG_MARK_SIZE;
    bool mark = mark_due(l, &d);
    if (mark) { /* the first write after an fdatasync starts with a mark naming what it made
                   durable */
        kv_reclog_mark(l->buf.data, l->seed, d);
        from = l->buf.data;
        n = l->buf.len;
    }
    kv_status s = kv_file_pwrite(l->f, from, n, at);
    if (s != KV_OK)
        return s;
    if (mark)
        note_mark(l, at, d);
    atomic_store_explicit(&l->written, at + n, memory_order_release);
    l->buf.len = KV_RECLOG_MARK_SIZE;
    if (l->buf.cap > (4u << 20)) /* do not keep a huge batch's buffer */
        kv_buf_free(&l->buf);
    return KV_OK;
}

kv_status lsm_log_sync(lsm_log *l)
{
    uint64_t w = atomic_load_explicit(&l->written, memory_order_acquire);
    kv_status s = kv_file_fdatasync(l->f);
    if (s != KV_OK)
        return s;
    /* fdatasync covers every byte written before it began; a concurrent sync may have covered
     * more already */
    uint64_t cur = atomic_load_explicit(&l->synced, memory_order_relaxed);
    while (cur < w && !atomic_compare_exchange_weak_explicit(
                          &l->synced, &cur, w, memory_order_release, memory_order_relaxed))
        ;
    return KV_OK;
}

kv_status lsm_log_append_next(lsm_log *l, uint64_t next)
{
    uint8_t p[8];
    kv_put_u64(p, next);
    if (!lsm_log_begin(l) || !kv_buf_append(&l->buf, p, sizeof p))
        return kv_error(KV_NOMEM, "%s: out of memory", l->path);
    lsm_log_end(l, LSM_REC_NEXT_LOG);
    return lsm_log_flush(l);
}

kv_status lsm_log_seal(lsm_log *l)
{
    kv_status s = lsm_log_flush(l);
    if (s == KV_OK && atomic_load(&l->synced) < atomic_load(&l->written))
        s = lsm_log_sync(l);
    uint64_t d;
    if (s != KV_OK || !mark_due(l, &d))
        return s;
    uint8_t m[KV_RECLOG_MARK_SIZE];
    kv_reclog_mark(m, l->seed, d);
    uint64_t at = atomic_load_explicit(&l->written, memory_order_relaxed);
    s = kv_file_pwrite(l->f, m, sizeof m, at);
    if (s != KV_OK)
        return s;
    note_mark(l, at, d);
    atomic_store_explicit(&l->written, at + sizeof m, memory_order_release);
    return lsm_log_sync(l);
}

/* ---- reading ---- */

typedef struct read_ctx {
    kv_reclog_visit_fn visit;
    void *ctx;
    const char *path;
    bool wal;
    lsm_log_info *info;
} read_ctx;

static kv_status read_visit(void *ctx, const kv_reclog_rec *r)
{
    read_ctx *c = ctx;
    lsm_log_info *in = c->info;
    if (c->wal && r->type == LSM_REC_PREV_DURABLE)
        in->prev_durable_rec = true;
    if (c->wal && r->type == LSM_REC_NEXT_LOG) {
        if (r->len != 8 || in->next_log)
            return kv_error(KV_CORRUPTION, "%s: offset %llu: malformed or second NEXT_LOG record",
                            c->path, (unsigned long long)r->off);
        in->next_log = kv_get_u64(r->payload);
        in->next_off = r->off;
    } else if (r->type != KV_RECLOG_MARK) {
        if (in->next_log)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %llu: a record after the NEXT_LOG record (nothing is "
                            "written there)",
                            c->path, (unsigned long long)r->off);
        in->data_end = r->off + KV_RECLOG_FRAME + r->len;
    }
    return c->visit ? c->visit(c->ctx, r) : KV_OK;
}

/* Checks a header that passed its CRC against what the directory says it is. */
static kv_status check_header(const char *path, const uint8_t *d, const char *magic,
                              uint64_t number, uint64_t db_id, lsm_log_header *h)
{
    h->version = kv_get_u32(d + 8);
    h->flags = kv_get_u32(d + 12);
    h->number = kv_get_u64(d + 16);
    h->db_id = kv_get_u64(d + 24);
    h->prev_number = kv_get_u64(d + 32);
    h->prev_len = kv_get_u64(d + 40);
    if (h->version != LSM_LOG_VERSION)
        return kv_error(KV_CORRUPTION, "%s: offset 8: log format version %u, expected %u", path,
                        h->version, LSM_LOG_VERSION);
    if (h->number != number)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 16: the header names file number %llu: a log of another "
                        "name was put in its place",
                        path, (unsigned long long)h->number);
    if (h->db_id != db_id)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 24: database id %016llx, CURRENT says %016llx: a log of "
                        "another database",
                        path, (unsigned long long)h->db_id, (unsigned long long)db_id);
    bool wal = !memcmp(magic, LSM_WAL_MAGIC, 8);
    if ((h->flags & ~(wal ? LSM_LOG_PREV_DURABLE : 0u)) || kv_get_u32(d + 48) ||
        (wal && h->prev_number >= number) || (!wal && (h->prev_number || h->prev_len)) ||
        (h->prev_len && h->prev_len < LSM_LOG_HEADER))
        return kv_error(KV_CORRUPTION, "%s: offset 12: impossible header fields", path);
    return KV_OK;
}

/* The offset of the first valid sync mark at or after the header's end, or 0 when none. */
static uint64_t any_mark(const uint8_t *d, uint64_t size, uint32_t seed)
{
    for (uint64_t off = LSM_LOG_HEADER;
         size >= KV_RECLOG_MARK_SIZE && off <= size - KV_RECLOG_MARK_SIZE; off++) {
        kv_reclog_rec r;
        if (d[off + 12] == KV_RECLOG_MARK &&
            kv_reclog_decode(d, size, off, seed, &r, NULL) == KV_RECLOG_OK)
            return off;
    }
    return 0;
}

kv_status lsm_log_read(kv_fs *fs, const char *path, const char *magic, uint64_t number,
                       uint64_t db_id, kv_reclog_visit_fn visit, void *ctx, lsm_log_info *info,
                       void **keep)
{
    memset(info, 0, sizeof *info);
    if (keep)
        *keep = NULL;
    void *data = NULL;
    size_t size = 0;
    kv_status s = kv_fs_read_file(fs, path, (uint64_t)1 << 40, &data, &size);
    if (s != KV_OK)
        return s;
    const uint8_t *d = data;
    bool wal = !memcmp(magic, LSM_WAL_MAGIC, 8);
    uint32_t seed = kv_reclog_seed(lsm_log_salt(db_id, number));
    read_ctx rc = {visit, ctx, path, wal, info};
    if (size >= LSM_LOG_HEADER && !memcmp(d, magic, 8) && kv_get_u32(d + 52) == kv_crc32(d, 52)) {
        info->header_ok = true;
        s = check_header(path, d, magic, number, db_id, &info->h);
        if (s == KV_OK)
            s = kv_reclog_scan(path, d, size, LSM_LOG_HEADER, seed, read_visit, &rc, &info->r);
        if (keep && s == KV_OK)
            *keep = data;
        else
            free(data);
        return s;
    }
    /* The header fails its check. A manifest's header is durable before CURRENT names it, and a
     * WAL's before its first write (which starts with a sync mark), so with any valid mark
     * behind it the header was durable and is damaged now. A WAL without one never became
     * durable (its creation was cut by a power loss): it holds nothing. */
    const char *what = size < LSM_LOG_HEADER ? "file ends inside the log header"
                       : memcmp(d, magic, 8) ? "bad magic"
                                             : "log header crc mismatch";
    uint64_t mark = wal ? any_mark(d, size, seed) : 0;
    free(data);
    if (wal && !mark) {
        info->r = (kv_reclog_result){.end = 0, .size = size, .torn = size > 0, .why = what};
        return KV_OK;
    }
    if (wal)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 0: %s, but the sync mark at offset %llu shows the log was "
                        "durable",
                        path, what, (unsigned long long)mark);
    return kv_error(KV_CORRUPTION, "%s: offset 0: %s", path, what);
}
