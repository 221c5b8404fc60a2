/* wal_scan.c: reading a segment record by record, and telling a torn tail (what a power loss
 * leaves after an unsynced append) from damage in the middle of the log. */
#include <string.h>

#include "wal_log_int.h"

#define SECTOR 512u

kv_status wal_scan_segment(wal_reader *r, const char *path, bool want_salt, uint64_t salt,
                           wal_visit_fn visit, void *ctx, wal_scan_result *res)
{
    memset(res, 0, sizeof *res);
    res->file_size = r->size;
    const uint8_t *p;
    size_t avail;
    kv_status s = wal_reader_peek(r, 0, WAL_SEG_HEADER_SIZE, &p, &avail);
    if (s != KV_OK)
        return s;
    const char *why = wal_seg_header_decode(p, avail, &res->hdr);
    if (why)
        return kv_error(KV_CORRUPTION, "%s: offset 0: %s", path, why);
    if (want_salt && res->hdr.salt != salt)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 16: salt %016llx differs from the log's %016llx (a segment of "
                        "another log generation)",
                        path, (unsigned long long)res->hdr.salt, (unsigned long long)salt);
    uint64_t first = res->hdr.first_lsn;
    uint64_t off = WAL_SEG_HEADER_SIZE;
    uint64_t since_commit = 0;
    res->end = res->commit_end = off;
    res->last_lsn = res->commit_lsn = first - 1;
    for (;;) {
        if (off >= r->size)
            break;
        s = wal_reader_peek(r, off, WAL_REC_HEADER_SIZE, &p, &avail);
        if (s != KV_OK)
            return s;
        wal_rec_view v;
        wal_dec d = wal_rec_decode(p, avail, res->hdr.salt, &v, &why);
        if (d == WAL_DEC_SHORT && v.total > avail) {
            s = wal_reader_peek(r, off, (size_t)v.total, &p, &avail);
            if (s != KV_OK)
                return s;
            d = wal_rec_decode(p, avail, res->hdr.salt, &v, &why);
        }
        if (d == WAL_DEC_OK && v.lsn != res->last_lsn + 1) {
            d = WAL_DEC_BAD;
            why = "LSN out of sequence";
        }
        if (d == WAL_DEC_OK && v.type == WAL_REC_COMMIT &&
            (v.len != 4 || kv_get_u32(v.payload) != since_commit || since_commit == 0)) {
            d = WAL_DEC_BAD;
            why = "COMMIT does not match the records before it";
        }
        if (d != WAL_DEC_OK) {
            res->damage = d == WAL_DEC_SHORT ? WAL_DAMAGE_SHORT : WAL_DAMAGE_BAD;
            res->why = why;
            res->bad_off = off;
            res->bad_total = v.total;
            break;
        }
        if (visit && (s = visit(ctx, off, &v)) != KV_OK)
            return s;
        off += v.total;
        res->records++;
        res->end = off;
        res->last_lsn = v.lsn;
        if (v.type == WAL_REC_COMMIT) {
            res->commit_end = off;
            res->commit_lsn = v.lsn;
            since_commit = 0;
        } else {
            since_commit++;
        }
    }
    return KV_OK;
}

kv_status wal_damage_is_torn(wal_reader *r, const wal_scan_result *res, bool *torn)
{
    *torn = false;
    uint64_t start = res->bad_off;
    uint64_t stop = r->size;
    if (res->bad_total && res->bad_total <= WAL_REC_OVERHEAD + (uint64_t)WAL_MAX_PAYLOAD &&
        start + res->bad_total < stop)
        stop = start + res->bad_total;
    if (stop - start < WAL_REC_OVERHEAD && start + WAL_REC_OVERHEAD <= r->size)
        stop = start + WAL_REC_OVERHEAD;
    /* Every sector overlapping [start, stop): zero from max(sector start, start) to its end? */
    for (uint64_t sec = start / SECTOR * SECTOR; sec < stop; sec += SECTOR) {
        uint64_t a = sec > start ? sec : start;
        uint64_t b = sec + SECTOR < r->size ? sec + SECTOR : r->size;
        if (a >= b)
            break;
        const uint8_t *p;
        size_t avail;
        kv_status s = wal_reader_peek(r, a, (size_t)(b - a), &p, &avail);
        if (s != KV_OK)
            return s;
        bool zero = avail == b - a;
        for (size_t i = 0; zero && i < avail; i++)
            zero = p[i] == 0;
        if (zero) {
            *torn = true;
            return KV_OK;
        }
    }
    return KV_OK;
}

kv_status wal_valid_record_after(wal_reader *r, const wal_scan_result *res, uint64_t salt,
                                 bool *found)
{
    *found = false;
    uint64_t max_lsn_step = (r->size - res->bad_off) / WAL_REC_OVERHEAD + 1;
    for (uint64_t off = res->bad_off + 1; off + WAL_REC_OVERHEAD <= r->size; off++) {
        const uint8_t *p;
        size_t avail;
        kv_status s = wal_reader_peek(r, off, WAL_REC_HEADER_SIZE, &p, &avail);
        if (s != KV_OK)
            return s;
        if (avail < WAL_REC_HEADER_SIZE)
            break;
        uint32_t len = kv_get_u32(p);
        uint8_t type = p[4];
        uint64_t lsn = kv_get_u64(p + 5);
        if (len > WAL_MAX_PAYLOAD || type < WAL_REC_PUT || type > WAL_REC_CHECKPOINT ||
            lsn <= res->last_lsn || lsn - res->last_lsn > max_lsn_step ||
            off + WAL_REC_OVERHEAD + len > r->size)
            continue;
        s = wal_reader_peek(r, off, WAL_REC_OVERHEAD + (size_t)len, &p, &avail);
        if (s != KV_OK)
            return s;
        wal_rec_view v;
        if (wal_rec_decode(p, avail, salt, &v, NULL) == WAL_DEC_OK) {
            *found = true;
            return KV_OK;
        }
    }
    return KV_OK;
}
