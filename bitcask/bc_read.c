/* bc_read.c: point reads and ordered iterators.
 *
 * A get is one keydir lookup (shared lock) and one pread of the whole record, whose crc and key
 * are checked before the value is returned (the Bitcask paper's "one disk seek" read). By
 * default (read=mmap) records of immutable files are copied from a read-only mapping of the
 * whole file instead, made on first use: no system call per get, which with the pages in the
 * page cache is most of a get's cost (docs/bitcask.md section 5); mapped reads do not show in
 * kv_stats' file_bytes_read. The active file is always read with pread. In
 * durability mode none, a record may still sit in the user-space write buffer; it is copied
 * from there under the writer mutex.
 *
 * An iterator takes a snapshot of the sorted key index (bc_index.h) under the shared lock: a
 * reference on the immutable base run and on the frozen delta, O(1) (O(sqrt n) right after a
 * write), plus a reference on every data file so a merge cannot delete them while it lives.
 * Seeking is a binary search in both runs, O(log n); stepping merges the two runs, the delta
 * winning over the base and its tombstones hiding base keys. Values are read as the iterator
 * is positioned (a damaged record ends the scan with KV_CORRUPTION instead of showing a bad
 * value). */
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"

/* Verifies the record image at buf (loc->rec_size bytes, read from file f at loc->offset): its
 * reclog framing (both crcs, seeded with the file's salt), a put's type, seq and key; on OK *val
 * points at its value inside buf (*vlen bytes). */
static kv_status rec_verify(const bc_file *f, const bc_loc *loc, const uint8_t *buf,
                            const void *key, size_t klen, const uint8_t **val, size_t *vlen)
{
    bc_rec_view v;
    if (!bc_rec_check(buf, loc->rec_size, f->seed, &v) ||
        (v.type != BC_T_PUT && v.type != BC_T_BATCH_PUT) || v.seq != loc->seq || v.klen != klen ||
        memcmp(v.key, key, klen) != 0)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %llu: the record there (%u bytes) fails its checksum or does "
                        "not hold the key the keydir expects",
                        f->f->path, (unsigned long long)loc->offset, loc->rec_size);
    *val = v.value;
    *vlen = v.vlen;
    return KV_OK;
}

kv_status bc_read_record(bc_db *db, bc_file *f, const bc_loc *loc, const void *key, size_t klen,
                         uint8_t **rec, const uint8_t **val, size_t *vlen)
{
    uint8_t *buf = malloc(loc->rec_size);
    if (!buf)
        return kv_error(KV_NOMEM, "bitcask: out of memory for a record of %u bytes", loc->rec_size);
    bool copied = false;
    uint64_t mlen = 0;
    const uint8_t *m = db->read_mmap ? bc_file_mapped(f, &mlen) : NULL;
    if (m && loc->offset + loc->rec_size <= mlen) {
        memcpy(buf, m + loc->offset, loc->rec_size);
        copied = true;
    } else if (db->dur.kind == KV_DURABILITY_NONE &&
               loc->offset + loc->rec_size > atomic_load(&f->size)) {
        pthread_mutex_lock(&db->wmu);
        if (f == db->active && loc->offset >= db->wbuf_off &&
            loc->offset + loc->rec_size <= db->wbuf_off + db->wbuf.len) {
            memcpy(buf, db->wbuf.data + (loc->offset - db->wbuf_off), loc->rec_size);
            copied = true;
        }
        pthread_mutex_unlock(&db->wmu);
    }
    if (!copied) {
        kv_status s = kv_file_read_exact(f->f, buf, loc->rec_size, loc->offset);
        if (s != KV_OK) {
            free(buf);
            return s;
        }
    }
    kv_status s = rec_verify(f, loc, buf, key, klen, val, vlen);
    if (s != KV_OK) {
        free(buf);
        return s;
    }
    *rec = buf;
    return KV_OK;
}

kv_status bc_get(kv_db *kdb, const void *key, size_t klen, void **value, size_t *vlen)
{
    bc_db *db = (bc_db *)kdb;
    uint32_t h = bc_hash(key, klen);
    bc_loc loc;
    pthread_rwlock_rdlock(&db->lock);
    if (!bc_kd_get(&db->kd, key, klen, h, &loc, NULL)) {
        pthread_rwlock_unlock(&db->lock);
        return KV_NOT_FOUND;
    }
    bc_file *f = bc_files_find(db, loc.file_id);
    pthread_rwlock_unlock(&db->lock);
    if (!f)
        return kv_error(KV_CORRUPTION,
                        "%s/%010u.data: the keydir points at this file, but it is "
                        "gone",
                        db->dir, loc.file_id);
    uint8_t *rec;
    const uint8_t *v;
    size_t vl;
    kv_status s = bc_read_record(db, f, &loc, key, klen, &rec, &v, &vl);
    bc_file_unref(f);
    if (s != KV_OK)
        return s;
    memmove(rec, v, vl);
    *value = rec;
    *vlen = vl;
    return KV_OK;
}

/* ---- iterators ---- */

typedef struct bc_iter {
    kv_iter base;
    bc_db *db;
    bc_ix_run *b, *d;     /* referenced snapshot: base run and frozen delta */
    size_t i, j;          /* next entry of b and of d */
    const bc_ix_ent *cur; /* current entry (NULL: past the end) */
    bool cur_delta;
    bc_file **files; /* referenced, sorted by id */
    size_t nfiles;
    uint8_t *rec; /* record of the loaded value */
    const uint8_t *val;
    size_t vlen;
    kv_iter_error err; /* the first damage met: the iterator stops there */
} bc_iter;

static void it_unload(bc_iter *it)
{
    free(it->rec);
    it->rec = NULL;
    it->val = NULL;
    it->vlen = 0;
}

static void it_load(bc_iter *it);

/* Sets cur to the smallest visible key at (i, j): an equal key in the delta replaces the base's,
 * and a delta tombstone hides it. */
static void it_settle(bc_iter *it)
{
    for (;;) {
        const bc_ix_ent *x = it->i < it->b->n ? &it->b->ents[it->i] : NULL;
        const bc_ix_ent *y = it->j < it->d->n ? &it->d->ents[it->j] : NULL;
        if (!x && !y) {
            it->cur = NULL;
            return;
        }
        if (x && y) {
            int c = bc_ix_cmp(x, y);
            if (c == 0) {
                it->i++;
                continue;
            }
            if (c < 0)
                y = NULL;
            else
                x = NULL;
        }
        if (x) {
            it->cur = x;
            it->cur_delta = false;
            return;
        }
        if (y->tomb) {
            it->j++;
            continue;
        }
        it->cur = y;
        it->cur_delta = true;
        return;
    }
}

static void it_seek_first(kv_iter *base)
{
    bc_iter *it = (bc_iter *)base;
    it->i = it->j = 0;
    it_settle(it);
    it_load(it);
}

static void it_seek(kv_iter *base, const void *key, size_t klen)
{
    bc_iter *it = (bc_iter *)base;
    it->i = bc_ix_lower_bound(it->b, key, klen);
    it->j = bc_ix_lower_bound(it->d, key, klen);
    it_settle(it);
    it_load(it);
}

static bool it_valid(const kv_iter *base)
{
    const bc_iter *it = (const bc_iter *)base;
    return it->err.status == KV_OK && it->cur;
}

static void it_next(kv_iter *base)
{
    bc_iter *it = (bc_iter *)base;
    if (it->cur) {
        if (it->cur_delta)
            it->j++;
        else
            it->i++;
        it_settle(it);
    }
    it_load(it);
}

static const void *it_key(const kv_iter *base, size_t *klen)
{
    const bc_iter *it = (const bc_iter *)base;
    *klen = it->cur->klen;
    return it->cur->key;
}

static bc_file *it_file(bc_iter *it, uint64_t id)
{
    size_t lo = 0, hi = it->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (it->files[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < it->nfiles && it->files[lo]->id == id ? it->files[lo] : NULL;
}

/* Loads the value at the current position (positioning reads it, so that a record failing
 * its checksum ends the iteration with KV_CORRUPTION before any caller sees it). */
static void it_load(bc_iter *it)
{
    it_unload(it);
    if (it->err.status != KV_OK || !it->cur)
        return;
    const bc_ix_ent *e = it->cur;
    bc_file *f = it_file(it, e->loc.file_id);
    uint64_t mlen = 0;
    const uint8_t *m = f && it->db->read_mmap ? bc_file_mapped(f, &mlen) : NULL;
    kv_status s;
    if (m && e->loc.offset + e->loc.rec_size <= mlen) {
        /* verified in place: the mapping lives as long as the iterator's file reference */
        s = rec_verify(f, &e->loc, m + e->loc.offset, e->key, e->klen, &it->val, &it->vlen);
    } else {
        s = f ? bc_read_record(it->db, f, &e->loc, e->key, e->klen, &it->rec, &it->val, &it->vlen)
              : kv_error(KV_CORRUPTION,
                         "%s/%010u.data: the iterator's snapshot points at this file, "
                         "but it holds no reference to it",
                         it->db->dir, e->loc.file_id);
    }
    if (s != KV_OK) {
        kv_iter_error_set(&it->err, s);
        return;
    }
    /* Overlap the cache miss of the next record with the caller's work on this one. */
    const bc_ix_ent *nx = NULL;
    if (it->cur_delta ? it->j + 1 < it->d->n : it->i + 1 < it->b->n)
        nx = it->cur_delta ? &it->d->ents[it->j + 1] : &it->b->ents[it->i + 1];
    bc_file *nf = nx ? it_file(it, nx->loc.file_id) : NULL;
    const uint8_t *nm = nf && it->db->read_mmap ? bc_file_mapped(nf, &mlen) : NULL;
    if (nm && nx->loc.offset < mlen)
        __builtin_prefetch(nm + nx->loc.offset);
}

static const void *it_value(const kv_iter *base, size_t *vlen)
{
    const bc_iter *it = (const bc_iter *)base;
    *vlen = it->vlen;
    return it->val;
}

static kv_status it_status(const kv_iter *base)
{
    return kv_iter_error_get(&((const bc_iter *)base)->err);
}

static void it_free(kv_iter *base)
{
    bc_iter *it = (bc_iter *)base;
    it_unload(it);
    for (size_t i = 0; i < it->nfiles; i++)
        bc_file_unref(it->files[i]);
    free(it->files);
    bc_ix_run_unref(it->b);
    bc_ix_run_unref(it->d);
    free(it);
}

static const kv_iter_ops bc_iter_ops = {
    .seek_first = it_seek_first,
    .seek = it_seek,
    .valid = it_valid,
    .next = it_next,
    .key = it_key,
    .value = it_value,
    .status = it_status,
    .free = it_free,
};

kv_status bc_iter_new(kv_db *kdb, kv_iter **out)
{
    bc_db *db = (bc_db *)kdb;
    bc_iter *it = calloc(1, sizeof *it);
    if (!it)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    it->base.ops = &bc_iter_ops;
    it->db = db;
    bool ok = false;
    pthread_rwlock_rdlock(&db->lock);
    it->files = malloc((db->nfiles ? db->nfiles : 1) * sizeof *it->files);
    if (it->files && bc_ix_snapshot(&db->ix, &db->kd, &it->b, &it->d)) {
        ok = true;
        for (size_t i = 0; i < db->nfiles; i++) {
            bc_file_ref(db->files[i]);
            it->files[it->nfiles++] = db->files[i];
        }
    }
    pthread_rwlock_unlock(&db->lock);
    if (!ok) {
        it_free(&it->base);
        return kv_error(KV_NOMEM, "bitcask: out of memory for an iterator snapshot");
    }
    it->i = it->b->n;
    it->j = it->d->n;
    *out = &it->base;
    return KV_OK;
}
