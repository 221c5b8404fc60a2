/* wal_truncate.c: removing the log's obsolete prefix after a checkpoint. Wholly obsolete
 * segments are unlinked oldest-first and the directory fsynced (a crash leaves a contiguous
 * suffix: the file system keeps a prefix of a directory's pending operations); a segment holding
 * obsolete and live records is never changed in place but rewritten: the live records are copied
 * to a new file named by the first live LSN whose header names the segment it supersedes (write,
 * fdatasync, rename, directory fsync), and only then is the old file unlinked. If a crash leaves
 * both, open sees the newer one's `supersedes` field and removes the old one (wal_recover.c). */
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"

/* Finds the offset of the record after LSN up_to in the segment at path, checking that up_to is
 * a COMMIT. */
static kv_status find_cut(wal_log *l, const char *path, wal_reader *r, uint64_t first,
                          uint64_t up_to, uint64_t *cut)
{
    uint64_t off = WAL_SEG_HEADER_SIZE, lsn = first;
    while (lsn <= up_to) {
        const uint8_t *p;
        size_t avail;
        kv_status s = wal_reader_peek(r, off, WAL_REC_HEADER_SIZE, &p, &avail);
        if (s != KV_OK)
            return s;
        if (avail < WAL_REC_HEADER_SIZE || kv_get_u64(p + 5) != lsn)
            return kv_error(KV_CORRUPTION, "%s: offset %llu: expected the record of LSN %llu", path,
                            (unsigned long long)off, (unsigned long long)lsn);
        if (lsn == up_to && p[4] != WAL_REC_COMMIT)
            return kv_error(KV_INVALID,
                            "wal truncate: LSN %llu is a %s record, not the end of a batch",
                            (unsigned long long)up_to, wal_rec_type_name(p[4]));
        off += WAL_REC_OVERHEAD + (uint64_t)kv_get_u32(p);
        lsn++;
    }
    (void)l;
    *cut = off;
    return KV_OK;
}

kv_status wal_log_truncate(wal_log *l, uint64_t up_to)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = KV_OK;
    kv_file *src = NULL, *nf = NULL;
    char *path = NULL;
    wal_reader r = {0};
    if (l->poisoned) {
        s = kv_error(KV_POISONED, "wal %s: poisoned by an earlier failure: %s", l->dir,
                     l->poison_msg);
        goto out;
    }
    if (up_to >= l->next_lsn) {
        s = kv_error(KV_INVALID, "wal truncate: LSN %llu is above the last LSN %llu",
                     (unsigned long long)up_to, (unsigned long long)(l->next_lsn - 1));
        goto out;
    }
    if (up_to < l->segs[0].first_lsn)
        goto out;
    wal_wait_syncers(l);
    if ((s = wal_sync_locked(l)) != KV_OK)
        goto out;
    /* k: segments wholly at or below up_to (never the active one). */
    size_t k = 0;
    while (k + 1 < l->nsegs && l->segs[k].last_lsn <= up_to)
        k++;
    wal_seg *m = &l->segs[k];
    bool rewrite = m->first_lsn <= up_to && m->last_lsn >= m->first_lsn;
    bool active = k == l->nsegs - 1;
    uint64_t cut = 0;
    if (rewrite) {
        /* Validate before changing anything. */
        path = wal_seg_path(l, m->first_lsn);
        if (!path) {
            s = kv_error(KV_IO, "wal: out of memory");
            goto out;
        }
        if ((s = kv_fs_open(l->fs, path, KV_FS_READ, &src)) != KV_OK ||
            (s = wal_reader_init(&r, src)) != KV_OK ||
            (s = find_cut(l, path, &r, m->first_lsn, up_to, &cut)) != KV_OK)
            goto out;
        if (cut > m->size) {
            s = kv_error(KV_CORRUPTION, "%s: records past its size", path);
            goto out;
        }
    }
    uint64_t freed = 0;
    for (size_t i = 0; i < k; i++) {
        char *p = wal_seg_path(l, l->segs[i].first_lsn);
        s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_IO, "wal: out of memory");
        free(p);
        if (s != KV_OK) {
            wal_poison_locked(l, s);
            goto out;
        }
        freed += l->segs[i].size;
    }
    if (k) {
        if ((s = kv_fs_fsync_dir(l->fs, l->dir)) != KV_OK) {
            wal_poison_locked(l, s);
            goto out;
        }
        memmove(l->segs, l->segs + k, (l->nsegs - k) * sizeof *l->segs);
        l->nsegs -= k;
        atomic_fetch_sub(&l->bytes, freed);
        l->truncations++;
    }
    if (!rewrite)
        goto out;
    m = &l->segs[0];
    uint64_t body = m->size - cut;
    s = wal_seg_create(l, up_to + 1, m->first_lsn, &r, cut, body, active ? &nf : NULL);
    if (s == KV_OK)
        s = kv_fs_unlink(l->fs, path);
    if (s == KV_OK)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    if (s != KV_OK) {
        wal_poison_locked(l, s);
        goto out;
    }
    if (active) {
        kv_file_close(l->active);
        l->active = nf;
        nf = NULL;
        l->synced_seq = ++l->write_seq;
    }
    atomic_fetch_sub(&l->bytes, m->size - (WAL_SEG_HEADER_SIZE + body));
    m->first_lsn = up_to + 1;
    m->size = WAL_SEG_HEADER_SIZE + body;
    l->rewrites++;
    if (!k)
        l->truncations++;
out:
    wal_reader_free(&r);
    kv_file_close(src);
    kv_file_close(nf);
    free(path);
    pthread_mutex_unlock(&l->mu);
    return s;
}
