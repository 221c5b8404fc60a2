/* wal_log_inspect.c: verifying the log on disk (kv_check) and printing it field by field for a
 * student (kv_dump). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"

kv_status wal_log_verify(wal_log *l)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = l->poisoned ? KV_OK : wal_flush_locked(l);
    for (size_t i = 0; i < l->nsegs && s == KV_OK; i++) {
        const wal_seg *g = &l->segs[i];
        char *path = wal_seg_path(l, g->first_lsn);
        kv_file *f = NULL;
        wal_reader r = {0};
        wal_scan_result res;
        if (!path)
            s = kv_error(KV_IO, "wal: out of memory");
        if (s == KV_OK)
            s = kv_fs_open(l->fs, path, KV_FS_READ, &f);
        if (s == KV_OK)
            s = wal_reader_init(&r, f);
        if (s == KV_OK)
            s = wal_scan_segment(&r, path, true, l->salt, NULL, NULL, &res);
        if (s == KV_OK && res.hdr.first_lsn != g->first_lsn)
            s = kv_error(KV_CORRUPTION, "%s: offset 24: first LSN %" PRIu64 " differs from name",
                         path, res.hdr.first_lsn);
        if (s == KV_OK && res.damage != WAL_DAMAGE_NONE)
            s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": %s", path, res.bad_off, res.why);
        if (s == KV_OK && res.commit_end != res.end)
            s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": segment ends inside a batch", path,
                         res.commit_end);
        if (s == KV_OK && (res.last_lsn != g->last_lsn || res.end != g->size))
            s = kv_error(KV_CORRUPTION,
                         "%s: holds LSNs up to %" PRIu64 " in %" PRIu64
                         " bytes, the log expects %" PRIu64 " in %" PRIu64 " bytes",
                         path, res.last_lsn, res.end, g->last_lsn, g->size);
        if (s == KV_OK && i + 1 < l->nsegs && l->segs[i + 1].first_lsn != g->last_lsn + 1)
            s = kv_error(KV_CORRUPTION,
                         "%s: offset %" PRIu64 ": chain broken: last LSN %" PRIu64
                         ", next segment starts at %" PRIu64,
                         path, res.end, g->last_lsn, l->segs[i + 1].first_lsn);
        wal_reader_free(&r);
        kv_file_close(f);
        free(path);
    }
    if (s == KV_OK && l->next_lsn != l->segs[l->nsegs - 1].last_lsn + 1)
        s = kv_error(KV_CORRUPTION, "wal %s: next LSN %" PRIu64 " does not follow the last", l->dir,
                     l->next_lsn);
    pthread_mutex_unlock(&l->mu);
    return s;
}

typedef struct dump_ctx {
    FILE *out;
    wal_payload_printer pp;
} dump_ctx;

static void hex_preview(FILE *out, const uint8_t *p, uint32_t len)
{
    uint32_t n = len < 48 ? len : 48;
    fprintf(out, "payload=");
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "%02x", p[i]);
    if (n < len)
        fprintf(out, "...");
}

static kv_status dump_visit(void *ctx, uint64_t off, const wal_rec_view *v)
{
    dump_ctx *d = ctx;
    fprintf(d->out,
            "  @%-10" PRIu64 " record: length=%u (@+0) type=%u %-10s (@+4) lsn=%" PRIu64
            " (@+5) crc=%08x (@+%u)\n      ",
            off, v->len, v->type, wal_rec_type_name(v->type), v->lsn, v->crc,
            WAL_REC_HEADER_SIZE + v->len);
    if (v->type == WAL_REC_COMMIT)
        fprintf(d->out, "commit of %u records", kv_get_u32(v->payload));
    else if (d->pp)
        d->pp(d->out, v->type, v->payload, v->len);
    else
        hex_preview(d->out, v->payload, v->len);
    fprintf(d->out, "\n");
    return KV_OK;
}

kv_status wal_log_dump(wal_log *l, FILE *out, const char *file, wal_payload_printer pp, bool *found)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = l->poisoned ? KV_OK : wal_flush_locked(l);
    *found = false;
    dump_ctx d = {out, pp};
    for (size_t i = 0; i < l->nsegs && s == KV_OK; i++) {
        char name[WAL_SEG_NAME_LEN + 1];
        wal_seg_name(name, l->segs[i].first_lsn);
        if (file && strcmp(file, name) != 0)
            continue;
        *found = true;
        char *path = kv_path_join(l->dir, name);
        kv_file *f = NULL;
        wal_reader r = {0};
        wal_scan_result res;
        s = path ? kv_fs_open(l->fs, path, KV_FS_READ, &f) : kv_error(KV_IO, "out of memory");
        if (s == KV_OK)
            s = wal_reader_init(&r, f);
        if (s == KV_OK) {
            const uint8_t *p;
            size_t avail;
            wal_seg_header h;
            s = wal_reader_peek(&r, 0, WAL_SEG_HEADER_SIZE, &p, &avail);
            const char *why = s == KV_OK ? wal_seg_header_decode(p, avail, &h) : NULL;
            fprintf(out,
                    "segment %s (%" PRIu64 " bytes)\n"
                    "  @0  magic=\"%.8s\"\n  @8  version=%u\n  @12 header_length=%u\n"
                    "  @16 salt=%016" PRIx64 "\n  @24 first_lsn=%" PRIu64
                    "\n  @32 supersedes=%" PRIu64 "\n  @40 crc=%08x%s\n",
                    name, r.size, avail >= 8 ? (const char *)p : "", h.version, h.header_len,
                    h.salt, h.first_lsn, h.supersedes, h.crc, why ? " (BAD)" : "");
        }
        if (s == KV_OK)
            s = wal_scan_segment(&r, path, false, 0, dump_visit, &d, &res);
        if (s == KV_OK) {
            if (res.damage != WAL_DAMAGE_NONE)
                fprintf(out, "  @%-10" PRIu64 " DAMAGE: %s\n", res.bad_off, res.why);
            fprintf(out,
                    "  end: %" PRIu64 " records, LSNs %" PRIu64 "..%" PRIu64 ", %" PRIu64
                    " bytes\n",
                    res.records, res.hdr.first_lsn, res.last_lsn, res.end);
        }
        wal_reader_free(&r);
        kv_file_close(f);
        free(path);
    }
    pthread_mutex_unlock(&l->mu);
    return s;
}
