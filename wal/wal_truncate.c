/* wal_truncate.c: removing the log's obsolete prefix after a checkpoint. Wholly obsolete
 * segments are unlinked oldest-first and the directory fsynced (a crash leaves a contiguous
 * suffix: the file system keeps a prefix of a directory's pending operations); a segment holding
 * obsolete and live records is never changed in place but rewritten: the live records are copied
 * to a new file named by the first live LSN whose header names the segment it supersedes (write,
 * fdatasync, rename, directory fsync), and only then is the old file unlinked. If a crash leaves
 * both, open sees the newer one's `supersedes` field and removes the old one (wal_recover.c).
 * The copy leaves the old file's sync marks behind (they name its offsets) and ends with a mark
 * of its own: the new file is visible by its name only once durable whole, so the mark vouches
 * for every record copied. A rewritten older segment keeps its NEXT record (copied with the
 * live records): it still names the same successor. */
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"

/* Finds the offset just past the record of LSN up_to in a segment image (first: its first LSN),
 * checking that up_to is a COMMIT. Marks are stepped over. */
static kv_status find_cut(const wal_log *l, const char *path, const wal_image *im, uint64_t first,
                          uint64_t up_to, uint64_t *cut)
{
    uint64_t off = WAL_SEG_HEADER_SIZE, lsn = first;
    while (lsn <= up_to) {
        kv_reclog_rec r;
        wal_rec_view v;
        const char *why = NULL;
        if (kv_reclog_decode(im->buf, im->size, off, l->seed, &r, &why) != KV_RECLOG_OK ||
            (why = wal_rec_view_of(&r, &v)) != NULL)
            return kv_error(KV_CORRUPTION, "%s: offset %llu: %s", path, (unsigned long long)off,
                            why);
        off += KV_RECLOG_FRAME + (uint64_t)r.len;
        if (v.type == WAL_REC_MARK || v.type == WAL_REC_NEXT)
            continue;
        if (v.lsn != lsn)
            return kv_error(KV_CORRUPTION, "%s: offset %llu: LSN %llu where %llu belongs", path,
                            (unsigned long long)r.off, (unsigned long long)v.lsn,
                            (unsigned long long)lsn);
        if (lsn == up_to && v.type != WAL_REC_COMMIT)
            return kv_error(KV_INVALID,
                            "wal truncate: LSN %llu is a %s record, not the end of a batch",
                            (unsigned long long)up_to, wal_rec_type_name(v.type));
        lsn++;
    }
    *cut = off;
    return KV_OK;
}

/* The rewrite of bug=rewrite_in_place (docs/lab.md): the live records of im[cut, im->size)
 * (marks left out) are written over the segment file at path itself, then its header naming
 * first, then the file is cut, fdatasynced and renamed to first's name; *out (may be NULL) gets
 * it open for writing and *size its length. */
static kv_status rewrite_in_place(wal_log *l, const char *path, uint64_t first, const wal_image *im,
                                  uint64_t cut, kv_file **out, uint64_t *size)
{
    kv_buf b = {0};
    kv_status s = KV_OK;
    for (uint64_t off = cut; off < im->size && s == KV_OK;) {
        kv_reclog_rec r;
        const char *why = NULL;
        if (kv_reclog_decode(im->buf, im->size, off, l->seed, &r, &why) != KV_RECLOG_OK)
            s = kv_error(KV_CORRUPTION, "%s: offset %llu: %s", path, (unsigned long long)off, why);
        else if (r.type != WAL_REC_MARK &&
                 !kv_buf_append(&b, im->buf + off, KV_RECLOG_FRAME + (size_t)r.len))
            s = kv_error(KV_NOMEM, "wal: out of memory");
        off += KV_RECLOG_FRAME + (uint64_t)r.len;
    }
    uint8_t hdr[WAL_SEG_HEADER_SIZE], m[WAL_MARK_SIZE];
    uint64_t len = WAL_SEG_HEADER_SIZE + b.len;
    wal_seg_header_encode(hdr, l->salt, first, 0);
    kv_reclog_mark(m, l->seed, len);
    if (s == KV_OK && b.len && !kv_buf_append(&b, m, sizeof m))
        s = kv_error(KV_NOMEM, "wal: out of memory");
    len = WAL_SEG_HEADER_SIZE + b.len;
    char *to = wal_seg_path(l, first);
    kv_file *f = NULL;
    if (s == KV_OK && !to)
        s = kv_error(KV_NOMEM, "wal: out of memory");
    if (s == KV_OK)
        s = kv_fs_open(l->fs, path, KV_FS_WRITE, &f);
    if (s == KV_OK && b.len)
        s = kv_file_pwrite(f, b.data, b.len, WAL_SEG_HEADER_SIZE);
    if (s == KV_OK)
        s = kv_file_pwrite(f, hdr, sizeof hdr, 0);
    if (s == KV_OK)
        s = kv_file_truncate(f, len);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    kv_file_close(f);
    if (s == KV_OK)
        s = kv_fs_rename(l->fs, path, to);
    if (s == KV_OK)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    if (s == KV_OK && out)
        s = kv_fs_open(l->fs, to, KV_FS_WRITE, out);
    *size = len;
    free(to);
    kv_buf_free(&b);
    return s;
}

kv_status wal_log_truncate(wal_log *l, uint64_t up_to)
{
    pthread_mutex_lock(&l->mu);
    kv_status s = KV_OK;
    kv_file *src = NULL, *nf = NULL;
    char *path = NULL;
    wal_image im = {0};
    if (l->opt.read_only) {
        s = kv_error(KV_INVALID, "wal %s: the log was opened read-only", l->dir);
        goto out;
    }
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
            s = kv_error(KV_NOMEM, "wal: out of memory");
            goto out;
        }
        if ((s = kv_fs_open(l->fs, path, KV_FS_READ, &src)) != KV_OK ||
            (s = wal_image_read(src, &im)) != KV_OK)
            goto out;
        if (im.size < m->size) {
            s = kv_error(KV_CORRUPTION, "%s: %llu bytes where the log wrote %llu", path,
                         (unsigned long long)im.size, (unsigned long long)m->size);
            goto out;
        }
        im.size = m->size; /* the log's records; nothing else is copied */
        if ((s = find_cut(l, path, &im, m->first_lsn, up_to, &cut)) != KV_OK)
            goto out;
    }
    uint64_t freed = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = i;
        if (l->opt.bug == WAL_BUG_NEWEST_FIRST_TRUNCATION) {
            /* BUG (docs/lab.md): the newest obsolete segment goes first. The correct order is
             * oldest first: a power loss keeps a prefix of the directory's unlinks, and only
             * oldest-first leaves a contiguous run of segments whose NEXT records chain up. */
            j = k - 1 - i;
        }
        char *p = wal_seg_path(l, l->segs[j].first_lsn);
        s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_NOMEM, "wal: out of memory");
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
    uint64_t nsize = 0;
    if (l->opt.bug == WAL_BUG_REWRITE_IN_PLACE) {
        /* BUG (docs/lab.md): the live records overwrite the segment itself. The correct code
         * (below) copies them into a new file and unlinks the old one only once the copy is
         * durable: overwritten in place, the only copy of the live records is half old, half
         * new until the fdatasync, and a power loss in between destroys them. */
        s = rewrite_in_place(l, path, up_to + 1, &im, cut, active ? &nf : NULL, &nsize);
    } else {
        s = wal_seg_create(l, up_to + 1, m->first_lsn, im.buf, cut, m->size, active ? &nf : NULL,
                           &nsize);
        if (s == KV_OK)
            s = kv_fs_unlink(l->fs, path);
        if (s == KV_OK)
            s = kv_fs_fsync_dir(l->fs, l->dir);
    }
    if (s != KV_OK) {
        wal_poison_locked(l, s);
        goto out;
    }
    if (active) {
        kv_file_close(l->active);
        l->active = nf;
        nf = NULL;
        l->synced_seq = ++l->write_seq;
        /* Durable whole, and its own last mark (if any records were copied) vouches for them. */
        l->durable = l->marked = nsize;
    }
    atomic_fetch_sub(&l->bytes, m->size);
    atomic_fetch_add(&l->bytes, nsize);
    m->first_lsn = up_to + 1;
    m->size = nsize;
    l->rewrites++;
    if (!k)
        l->truncations++;
out:
    wal_image_free(&im);
    kv_file_close(src);
    kv_file_close(nf);
    free(path);
    pthread_mutex_unlock(&l->mu);
    return s;
}
