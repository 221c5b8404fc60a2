/* wal_segment.c: creating segments durably, flushing and syncing the active segment, and
 * poisoning the log after a failed write or fdatasync (PostgreSQL's 2018 fsync lesson: never
 * retry). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"
#include "lock_assert.h"

char *wal_seg_path(const wal_log *l, uint64_t first_lsn)
{
    char name[WAL_SEG_NAME_LEN + 1];
    wal_seg_name(name, first_lsn);
    return kv_path_join(l->dir, name);
}

kv_status wal_poison_locked(wal_log *l, kv_status s)
{
    KV_ASSERT_HELD(&l->mu);
    if (!l->poisoned) {
        l->poisoned = true;
        snprintf(l->poison_msg, sizeof l->poison_msg, "%s", kv_errmsg());
    }
    return s;
}

void wal_wait_syncers(wal_log *l)
{
    KV_ASSERT_HELD(&l->mu);
    while (l->syncing > 0)
        pthread_cond_wait(&l->cv, &l->mu);
}

kv_status wal_segs_push(wal_log *l, wal_seg s)
{
    if (l->nsegs == l->capsegs) {
        size_t cap = l->capsegs ? l->capsegs * 2 : 8;
        wal_seg *n = realloc(l->segs, cap * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "wal: out of memory");
        l->segs = n;
        l->capsegs = cap;
    }
    l->segs[l->nsegs++] = s;
    return KV_OK;
}

/* Copies the records of src[from, to) except marks into f after the header, through a 1 MiB
 * staging buffer; then, when it copied any, appends a mark naming the bytes before it. *size gets
 * the file's length. */
static kv_status copy_records(wal_log *l, kv_file *f, const char *path, const uint8_t *src,
                              uint64_t from, uint64_t to, uint64_t *size)
{
    enum { STAGE = 1 << 20 };
    kv_buf b = {0};
    uint64_t at = WAL_SEG_HEADER_SIZE;
    kv_status s = KV_OK;
    for (uint64_t off = from; off < to && s == KV_OK;) {
        kv_reclog_rec r;
        const char *why = NULL;
        if (kv_reclog_decode(src, to, off, l->seed, &r, &why) != KV_RECLOG_OK) {
            s = kv_error(KV_CORRUPTION, "%s: offset %llu: %s while copying its live records", path,
                         (unsigned long long)off, why);
            break;
        }
        uint64_t n = KV_RECLOG_FRAME + (uint64_t)r.len;
        if (r.type != WAL_REC_MARK && !kv_buf_append(&b, src + off, (size_t)n))
            s = kv_error(KV_NOMEM, "wal: out of memory copying %s", path);
        off += n;
        if (s == KV_OK && (b.len >= STAGE || off >= to) && b.len) {
            s = kv_file_pwrite(f, b.data, b.len, at);
            at += b.len;
            b.len = 0;
        }
    }
    if (s == KV_OK && at > WAL_SEG_HEADER_SIZE) {
        uint8_t m[WAL_MARK_SIZE];
        kv_reclog_mark(m, l->seed, at);
        s = kv_file_pwrite(f, m, sizeof m, at);
        at += sizeof m;
    }
    kv_buf_free(&b);
    *size = at;
    return s;
}

kv_status wal_seg_create(wal_log *l, uint64_t first_lsn, uint64_t supersedes, const uint8_t *src,
                         uint64_t from, uint64_t to, kv_file **out, uint64_t *size)
{
    char name[WAL_SEG_NAME_LEN + 1], tmpname[WAL_SEG_NAME_LEN + 8];
    wal_seg_name(name, first_lsn);
    snprintf(tmpname, sizeof tmpname, "%s.tmp", name);
    char *path = kv_path_join(l->dir, name);
    char *tmp = kv_path_join(l->dir, tmpname);
    kv_file *f = NULL;
    kv_status s = KV_OK;
    uint64_t len = WAL_SEG_HEADER_SIZE;
    if (!path || !tmp) {
        s = kv_error(KV_NOMEM, "wal: out of memory");
        goto out;
    }
    s = kv_fs_open(l->fs, tmp, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &f);
    if (s != KV_OK)
        goto out;
    uint8_t hdr[WAL_SEG_HEADER_SIZE];
    wal_seg_header_encode(hdr, l->salt, first_lsn, supersedes);
    s = kv_file_pwrite(f, hdr, sizeof hdr, 0);
    if (s == KV_OK && src)
        s = copy_records(l, f, path, src, from, to, &len);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    kv_file_close(f);
    f = NULL;
    if (s == KV_OK)
        s = kv_fs_rename(l->fs, tmp, path);
    if (s == KV_OK && l->opt.bug == WAL_BUG_NO_DIR_FSYNC) {
        /* BUG (docs/lab.md): no directory fsync after the rename. The correct code fsyncs the
         * directory: a new name is durable only then, and the caller goes on as if the segment
         * existed (a roll writes the NEXT record naming it, a truncation unlinks the segment it
         * replaces), so a power loss can leave a log whose segment is gone. */
    } else if (s == KV_OK)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    if (s == KV_OK && out)
        s = kv_fs_open(l->fs, path, KV_FS_WRITE, out);
    if (s == KV_OK) {
        l->created++;
        if (size)
            *size = len;
    }
out:
    free(path);
    free(tmp);
    return s;
}

kv_status wal_flush_locked(wal_log *l)
{
    KV_ASSERT_HELD(&l->mu);
    if (l->nbuf.len == 0)
        return KV_OK;
    wal_seg *a = &l->segs[l->nsegs - 1];
    kv_status s = kv_file_pwrite(l->active, l->nbuf.data, l->nbuf.len, a->size);
    if (s != KV_OK)
        return wal_poison_locked(l, s);
    a->size += l->nbuf.len;
    l->nbuf.len = 0;
    l->write_seq++;
    return KV_OK;
}

kv_status wal_sync_locked(wal_log *l)
{
    KV_ASSERT_HELD(&l->mu);
    kv_status s = wal_flush_locked(l);
    if (s != KV_OK)
        return s;
    if (l->synced_seq == l->write_seq)
        return KV_OK;
    uint64_t seq = l->write_seq;
    s = kv_file_fdatasync(l->active);
    if (s != KV_OK)
        return wal_poison_locked(l, s);
    l->synced_seq = seq;
    l->durable = l->segs[l->nsegs - 1].size;
    return KV_OK;
}
