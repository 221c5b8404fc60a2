/* wal_scan.c: reading a segment whole and walking its records with kvlab's one record scanner
 * (common/reclog.h), which alone decides what is a torn tail and what is damage; on top of it
 * the log's own checks: every record's type, the LSN sequence and the COMMIT counts. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"

kv_status wal_image_read(kv_file *f, wal_image *im)
{
    memset(im, 0, sizeof *im);
    kv_status s = kv_file_size(f, &im->size);
    if (s != KV_OK)
        return s;
    if (im->size > SIZE_MAX / 2)
        return kv_error(KV_CORRUPTION, "%s: offset 0: a segment of %" PRIu64 " bytes", f->path,
                        im->size);
    im->buf = malloc(im->size ? (size_t)im->size : 1);
    if (!im->buf)
        return kv_error(KV_NOMEM, "%s: out of memory for a %" PRIu64 "-byte segment", f->path,
                        im->size);
    size_t got = 0;
    if (im->size)
        s = kv_file_pread(f, im->buf, (size_t)im->size, 0, &got);
    if (s == KV_OK && got != im->size)
        s = kv_error(KV_IO, "pread(%s): %zu of %" PRIu64 " bytes (the file shrank)", f->path, got,
                     im->size);
    if (s != KV_OK)
        wal_image_free(im);
    return s;
}

void wal_image_free(wal_image *im)
{
    free(im->buf);
    im->buf = NULL;
    im->size = 0;
}

typedef struct scan_ctx {
    const char *path;
    wal_scan_result *res;
    uint64_t since_commit; /* records since the last COMMIT */
    wal_visit_fn visit;
    void *ctx;
    bool refused; /* check_record or visit stopped the scan */
} scan_ctx;

static kv_status bad(const scan_ctx *c, uint64_t off, const char *what, uint64_t lsn)
{
    return kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": LSN %" PRIu64 ": %s", c->path, off, lsn,
                    what);
}

static kv_status check_one(scan_ctx *c, const kv_reclog_rec *r);

/* The log's checks of one valid record, then the caller's visit. */
static kv_status check_record(void *ctx, const kv_reclog_rec *r)
{
    scan_ctx *c = ctx;
    kv_status s = check_one(c, r);
    if (s != KV_OK)
        c->refused = true;
    return s;
}

static kv_status check_one(scan_ctx *c, const kv_reclog_rec *r)
{
    wal_scan_result *res = c->res;
    wal_rec_view v;
    const char *why = wal_rec_view_of(r, &v);
    if (why)
        return kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": %s (type %u, %u bytes)", c->path,
                        r->off, why, r->type, r->len);
    uint64_t next = r->off + KV_RECLOG_FRAME + r->len;
    if (v.type == WAL_REC_MARK) {
        res->marks++;
        if (v.durable > res->durable)
            res->durable = v.durable;
    } else if (res->next_off) {
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64
                        ": a %s record after the NEXT record at offset %" PRIu64
                        " (a segment ends with NEXT)",
                        c->path, r->off, wal_rec_type_name(v.type), res->next_off);
    } else if (v.type == WAL_REC_NEXT) {
        if (c->since_commit != 0 || v.successor != res->last_lsn + 1)
            return kv_error(
                KV_CORRUPTION,
                "%s: offset %" PRIu64 ": NEXT names the segment starting at LSN %" PRIu64
                ", but %s (last LSN %" PRIu64 ")",
                c->path, r->off, v.successor,
                c->since_commit ? "a batch is open" : "that is not the LSN after this one's",
                res->last_lsn);
    } else {
        if (v.lsn != res->last_lsn + 1) {
            char what[96];
            snprintf(what, sizeof what, "out of sequence (expected LSN %" PRIu64 ")",
                     res->last_lsn + 1);
            return bad(c, r->off, what, v.lsn);
        }
        if (v.type == WAL_REC_COMMIT &&
            (v.len != 4 || c->since_commit == 0 || kv_get_u32(v.body) != c->since_commit))
            return bad(c, r->off, "COMMIT does not match the records before it", v.lsn);
    }
    if (c->visit) {
        kv_status s = c->visit(c->ctx, &v);
        if (s != KV_OK)
            return s;
    }
    res->end = next;
    if (v.type == WAL_REC_NEXT) {
        res->next_off = r->off;
        res->successor = v.successor;
    }
    if (v.type == WAL_REC_MARK || v.type == WAL_REC_NEXT) {
        if (c->since_commit == 0)
            res->batch_end = next; /* a mark (or NEXT) between batches belongs to the committed
                                      log */
        return KV_OK;
    }
    res->records++;
    res->last_lsn = v.lsn;
    if (v.type == WAL_REC_COMMIT) {
        res->batch_end = next;
        res->commit_lsn = v.lsn;
        c->since_commit = 0;
    } else {
        c->since_commit++;
    }
    return KV_OK;
}

kv_status wal_scan_image(const char *path, const uint8_t *data, uint64_t size, bool sealed,
                         bool want_salt, uint64_t salt, wal_visit_fn visit, void *ctx,
                         wal_scan_result *res)
{
    memset(res, 0, sizeof *res);
    res->file_size = size;
    const char *why = wal_seg_header_decode(data, size, &res->hdr);
    if (why)
        return kv_error(KV_CORRUPTION, "%s: offset 0: %s", path, why);
    if (want_salt && res->hdr.salt != salt)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 16: salt %016" PRIx64 " differs from the log's %016" PRIx64
                        " (a segment of another log generation)",
                        path, res->hdr.salt, salt);
    res->header_ok = true;
    res->end = res->batch_end = WAL_SEG_HEADER_SIZE;
    res->last_lsn = res->commit_lsn = res->hdr.first_lsn - 1;
    scan_ctx c = {path, res, 0, visit, ctx, false};
    uint32_t seed = wal_seed(res->hdr.salt);
    kv_reclog_result rr;
    kv_status s =
        sealed ? kv_reclog_scan_sealed(path, data, size, WAL_SEG_HEADER_SIZE, seed, check_record,
                                       &c, &rr)
               : kv_reclog_scan(path, data, size, WAL_SEG_HEADER_SIZE, seed, check_record, &c, &rr);
    if (s == KV_OK) {
        res->torn = rr.torn;
        res->why = rr.why;
    }
    res->framing_damage = s == KV_CORRUPTION && !c.refused;
    return s;
}

bool wal_scan_roll_interrupted(kv_status s, const wal_scan_result *res)
{
    if (!res->header_ok || res->next_off || res->batch_end != res->end ||
        res->file_size - res->end > WAL_NEXT_SIZE)
        return false;
    return s == KV_OK || (s == KV_CORRUPTION && res->framing_damage);
}
