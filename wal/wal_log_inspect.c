/* wal_log_inspect.c: verifying the log on disk (kv_check) and printing it field by field for a
 * student (kv_dump). Both scan every segment again exactly as open does (wal_scan_image: the
 * newest under reclog's torn-tail rule, the others sealed). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "wal_log_int.h"

/* Opens and reads segment g's file. A missing file is KV_CORRUPTION naming it. */
static kv_status read_seg(wal_log *l, const char *path, wal_image *im)
{
    kv_file *f = NULL;
    kv_status s = kv_fs_open(l->fs, path, KV_FS_READ, &f);
    if (s == KV_NOT_FOUND)
        return kv_error(KV_CORRUPTION, "%s: missing: the log holds it", path);
    if (s == KV_OK)
        s = wal_image_read(f, im);
    kv_file_close(f);
    return s;
}

/* The part of a scanned newest segment that open replays: up to the last COMMIT when a torn or
 * uncommitted tail follows it. */
static uint64_t replayed_end(const wal_scan_result *res)
{
    return (res->torn || res->batch_end < res->end) ? res->batch_end : res->end;
}

static kv_status verify_seg(wal_log *l, size_t i)
{
    const wal_seg *g = &l->segs[i];
    bool newest = i + 1 == l->nsegs;
    char *path = wal_seg_path(l, g->first_lsn);
    wal_image im = {0};
    wal_scan_result res;
    kv_status s = path ? read_seg(l, path, &im) : kv_error(KV_NOMEM, "wal: out of memory");
    if (s == KV_OK)
        s = wal_scan_image(path, im.buf, im.size, !newest, true, l->salt, NULL, NULL, &res);
    if (s == KV_OK && res.hdr.first_lsn != g->first_lsn)
        s = kv_error(KV_CORRUPTION, "%s: offset 24: first LSN %" PRIu64 " differs from the name",
                     path, res.hdr.first_lsn);
    /* A read-only open leaves an interrupted roll as it found it (a writable one completes it). */
    bool rolled = !newest && l->rolled == g->first_lsn && wal_scan_roll_interrupted(s, &res);
    if (rolled && s != KV_OK) {
        s = KV_OK;
        kv_errclear();
    }
    if (s == KV_OK && !newest && !rolled && !res.next_off)
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %" PRIu64 ": no NEXT record names the segment after it", path,
                     res.end);
    if (s == KV_OK && newest && res.next_off && res.next_off < g->size) {
        char succ[WAL_SEG_NAME_LEN + 1];
        wal_seg_name(succ, res.successor);
        s = kv_error(KV_CORRUPTION,
                     "%s/%s: missing: %s names it as the next segment (offset %" PRIu64 ": NEXT)",
                     l->dir, succ, path, res.next_off);
    }
    /* A writable log cut its torn tail at open and writes whole groups since; only a read-only
     * log's newest segment may still hold bytes that open did not replay. */
    bool tail_ok = newest && l->opt.read_only;
    uint64_t end = tail_ok ? replayed_end(&res) : res.end;
    uint64_t last = tail_ok && end == res.batch_end ? res.commit_lsn : res.last_lsn;
    if (s == KV_OK && !tail_ok && res.torn)
        s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": %s", path, res.end, res.why);
    if (s == KV_OK && !tail_ok && res.batch_end != res.end)
        s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": segment ends inside a batch", path,
                     res.batch_end);
    if (s == KV_OK && (last != g->last_lsn || end != g->size))
        s = kv_error(KV_CORRUPTION,
                     "%s: holds LSNs up to %" PRIu64 " in %" PRIu64
                     " bytes, the log expects %" PRIu64 " in %" PRIu64 " bytes",
                     path, last, end, g->last_lsn, g->size);
    if (s == KV_OK && i + 1 < l->nsegs && l->segs[i + 1].first_lsn != g->last_lsn + 1)
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %" PRIu64 ": chain broken: last LSN %" PRIu64
                     ", next segment starts at %" PRIu64,
                     path, res.end, g->last_lsn, l->segs[i + 1].first_lsn);
    wal_image_free(&im);
    free(path);
    return s;
}

kv_status wal_log_verify(wal_log *l)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = l->poisoned ? KV_OK : wal_flush_locked(l);
    for (size_t i = 0; i < l->nsegs && s == KV_OK; i++)
        s = verify_seg(l, i);
    if (s == KV_OK && l->nsegs && l->next_lsn != l->segs[l->nsegs - 1].last_lsn + 1)
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

static kv_status dump_visit(void *ctx, const wal_rec_view *v)
{
    dump_ctx *d = ctx;
    if (v->type == WAL_REC_MARK) {
        fprintf(d->out,
                "  @%-10" PRIu64 " mark:   crc=%08x (@+0) hcrc=%08x (@+4) length=8 (@+8) type=%u "
                "%-10s (@+12) durable=%" PRIu64 " (@+16)\n"
                "      bytes before offset %" PRIu64 " were durable when this mark was written\n",
                v->off, v->crc, v->hcrc, v->type, wal_rec_type_name(v->type), v->durable,
                v->durable);
        return KV_OK;
    }
    if (v->type == WAL_REC_NEXT) {
        fprintf(d->out,
                "  @%-10" PRIu64 " next:   crc=%08x (@+0) hcrc=%08x (@+4) length=8 (@+8) type=%u "
                "%-10s (@+12) successor=%" PRIu64 " (@+16)\n"
                "      the log goes on in the segment whose first LSN is %" PRIu64 "\n",
                v->off, v->crc, v->hcrc, v->type, wal_rec_type_name(v->type), v->successor,
                v->successor);
        return KV_OK;
    }
    fprintf(d->out,
            "  @%-10" PRIu64 " record: crc=%08x (@+0) hcrc=%08x (@+4) length=%u (@+8) type=%u "
            "%-10s (@+12) lsn=%" PRIu64 " (@+16)\n      body (@+%u): ",
            v->off, v->crc, v->hcrc, v->len + WAL_REC_LSN_SIZE, v->type, wal_rec_type_name(v->type),
            v->lsn, WAL_REC_OVERHEAD);
    if (v->type == WAL_REC_COMMIT && v->len == 4)
        fprintf(d->out, "commit of %u records", kv_get_u32(v->body));
    else if (d->pp)
        d->pp(d->out, v->type, v->body, v->len);
    else
        hex_preview(d->out, v->body, v->len);
    fprintf(d->out, "\n");
    return KV_OK;
}

/* Prints one segment: header, records, marks and how it ends. Returns KV_CORRUPTION (after
 * printing it) when it is damaged, else the I/O status. */
static kv_status dump_seg(wal_log *l, FILE *out, const char *name, bool newest,
                          wal_payload_printer pp)
{
    char *path = kv_path_join(l->dir, name);
    wal_image im = {0};
    kv_status s = path ? read_seg(l, path, &im) : kv_error(KV_NOMEM, "wal: out of memory");
    if (s != KV_OK) {
        free(path);
        return s;
    }
    wal_seg_header h;
    const char *why = wal_seg_header_decode(im.buf, im.size, &h);
    fprintf(out,
            "segment %s (%" PRIu64 " bytes)\n"
            "  @0  magic=\"%.8s\"\n  @8  version=%u\n  @12 header_length=%u\n"
            "  @16 salt=%016" PRIx64 "\n  @24 first_lsn=%" PRIu64 "\n  @32 supersedes=%" PRIu64
            "\n  @40 crc=%08x%s\n",
            name, im.size, im.size >= 8 ? (const char *)im.buf : "", h.version, h.header_len,
            h.salt, h.first_lsn, h.supersedes, h.crc, why ? " (BAD)" : "");
    dump_ctx d = {out, pp};
    wal_scan_result res;
    s = wal_scan_image(path, im.buf, im.size, !newest, false, 0, dump_visit, &d, &res);
    if (s == KV_CORRUPTION) {
        fprintf(out, "  @%-10" PRIu64 " DAMAGE: %s\n", res.header_ok ? res.end : 0, kv_errmsg());
    } else if (s == KV_OK) {
        if (res.batch_end < res.end)
            fprintf(out,
                    "  @%-10" PRIu64 " uncommitted: LSNs %" PRIu64 "..%" PRIu64
                    " have no COMMIT: not replayed; a writable open cuts them\n",
                    res.batch_end, res.commit_lsn + 1, res.last_lsn);
        if (res.torn)
            fprintf(out,
                    "  @%-10" PRIu64 " torn tail: %" PRIu64
                    " bytes (%s), no sync mark vouches for them: not replayed; a writable open "
                    "cuts them\n",
                    res.end, res.file_size - res.end, res.why);
        fprintf(out,
                "  end: %" PRIu64 " records, %" PRIu64 " marks, LSNs %" PRIu64 "..%" PRIu64
                ", %" PRIu64 " bytes\n",
                res.records, res.marks, res.hdr.first_lsn, res.last_lsn, res.end);
    }
    wal_image_free(&im);
    free(path);
    return s;
}

kv_status wal_log_dump(wal_log *l, FILE *out, const char *file, wal_payload_printer pp, bool *found)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = l->poisoned ? KV_OK : wal_flush_locked(l);
    kv_status first_err = KV_OK;
    char msg[1024] = "";
    *found = false;
    for (size_t i = 0; i < l->nsegs && s == KV_OK; i++) {
        char name[WAL_SEG_NAME_LEN + 1];
        wal_seg_name(name, l->segs[i].first_lsn);
        if (file && strcmp(file, name) != 0)
            continue;
        *found = true;
        kv_status t = dump_seg(l, out, name, i + 1 == l->nsegs, pp);
        if (t == KV_CORRUPTION && first_err == KV_OK) {
            first_err = t;
            snprintf(msg, sizeof msg, "%s", kv_errmsg());
        } else if (t != KV_CORRUPTION) {
            s = t;
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (s == KV_OK && first_err != KV_OK)
        s = kv_error(first_err, "%s", msg);
    return s;
}

kv_status wal_log_picture(wal_log *l, kv_pic *pic, int parent, uint64_t covered)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = l->poisoned ? KV_OK : wal_flush_locked(l);
    for (size_t i = 0; i < l->nsegs && s == KV_OK; i++) {
        const wal_seg *g = &l->segs[i];
        char name[WAL_SEG_NAME_LEN + 1];
        wal_seg_name(name, g->first_lsn);
        int node = kv_pic_node(pic, parent, KV_PIC_FILE, "%s", name);
        if (g->last_lsn >= g->first_lsn)
            kv_pic_line(pic, node, "LSNs %" PRIu64 "..%" PRIu64, g->first_lsn, g->last_lsn);
        else
            kv_pic_line(pic, node, "no records yet (next LSN %" PRIu64 ")", g->first_lsn);
        kv_pic_line(pic, node, "%s", kv_pic_bytes(pic, g->size));
        if (i + 1 == l->nsegs)
            kv_pic_line(pic, node, "newest: appended to");
        else if (g->last_lsn <= covered)
            kv_pic_line(pic, node, "covered by the snapshot");
    }
    pthread_mutex_unlock(&l->mu);
    return s;
}
