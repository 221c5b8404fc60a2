/* wal_segment.c: creating segments durably, flushing and syncing the active segment, and
 * poisoning the log after a failed write or fdatasync (PostgreSQL's 2018 fsync lesson: never
 * retry). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"

char *wal_seg_path(const wal_log *l, uint64_t first_lsn)
{
    char name[WAL_SEG_NAME_LEN + 1];
    wal_seg_name(name, first_lsn);
    return kv_path_join(l->dir, name);
}

kv_status wal_poison_locked(wal_log *l, kv_status s)
{
    if (!l->poisoned) {
        l->poisoned = true;
        snprintf(l->poison_msg, sizeof l->poison_msg, "%s", kv_errmsg());
    }
    return s;
}

void wal_wait_syncers(wal_log *l)
{
    while (l->syncing > 0)
        pthread_cond_wait(&l->cv, &l->mu);
}

kv_status wal_segs_push(wal_log *l, wal_seg s)
{
    if (l->nsegs == l->capsegs) {
        size_t cap = l->capsegs ? l->capsegs * 2 : 8;
        wal_seg *n = realloc(l->segs, cap * sizeof *n);
        if (!n)
            return kv_error(KV_IO, "wal: out of memory");
        l->segs = n;
        l->capsegs = cap;
    }
    l->segs[l->nsegs++] = s;
    return KV_OK;
}

kv_status wal_seg_create(wal_log *l, uint64_t first_lsn, uint64_t supersedes, wal_reader *src,
                         uint64_t src_off, uint64_t body_len, kv_file **out)
{
    char name[WAL_SEG_NAME_LEN + 1], tmpname[WAL_SEG_NAME_LEN + 8];
    wal_seg_name(name, first_lsn);
    snprintf(tmpname, sizeof tmpname, "%s.tmp", name);
    char *path = kv_path_join(l->dir, name);
    char *tmp = kv_path_join(l->dir, tmpname);
    kv_file *f = NULL;
    kv_status s = KV_OK;
    if (!path || !tmp) {
        s = kv_error(KV_IO, "wal: out of memory");
        goto out;
    }
    s = kv_fs_open(l->fs, tmp, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &f);
    if (s != KV_OK)
        goto out;
    uint8_t hdr[WAL_SEG_HEADER_SIZE];
    wal_seg_header_encode(hdr, l->salt, first_lsn, supersedes);
    s = kv_file_pwrite(f, hdr, sizeof hdr, 0);
    for (uint64_t done = 0; s == KV_OK && done < body_len;) {
        const uint8_t *p;
        size_t avail;
        uint64_t want = body_len - done;
        if (want > (1u << 20))
            want = 1u << 20;
        s = wal_reader_peek(src, src_off + done, (size_t)want, &p, &avail);
        if (s == KV_OK && avail != want)
            s = kv_error(KV_CORRUPTION, "%s: ends before offset %llu while copying", src->f->path,
                         (unsigned long long)(src_off + body_len));
        if (s == KV_OK)
            s = kv_file_pwrite(f, p, avail, WAL_SEG_HEADER_SIZE + done);
        done += avail;
    }
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    kv_file_close(f);
    f = NULL;
    if (s == KV_OK)
        s = kv_fs_rename(l->fs, tmp, path);
    if (s == KV_OK)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    if (s == KV_OK && out)
        s = kv_fs_open(l->fs, path, KV_FS_WRITE, out);
    if (s == KV_OK)
        l->created++;
out:
    free(path);
    free(tmp);
    return s;
}

kv_status wal_flush_locked(wal_log *l)
{
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
    return KV_OK;
}
