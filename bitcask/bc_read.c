/* bc_read.c: point reads and ordered iterators.
 *
 * A get is one keydir lookup (shared lock) and one pread of the whole record, whose crc and key
 * are checked before the value is returned (the Bitcask paper's "one disk seek" read). By
 * default (read=mmap) records of immutable files are copied from a read-only mapping of the
 * whole file instead, made on first use: no system call per get, 2 to 3 times the gets per
 * second of pread in a measurement by hand (1M keys, warm page cache); mapped reads do not
 * show in kv_stats' file_bytes_read. The active file is always read with pread. In
 * durability mode none, a record may still sit in the user-space write buffer; it is copied
 * from there under the writer mutex.
 *
 * An iterator copies every (key, location) pair of the keydir under the shared lock, takes a
 * reference on every data file so a merge cannot delete them while it lives, and sorts the
 * copy: O(n) memory and O(n log n) time per iterator creation, n = live keys. Values are read
 * one pread each, as the iterator is positioned (a damaged record ends the scan with
 * KV_CORRUPTION instead of showing a bad value). */
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"

kv_status bc_read_record(bc_db *db, bc_file *f, const bc_loc *loc, const void *key, size_t klen,
                         uint8_t **rec, const uint8_t **val, size_t *vlen)
{
    uint8_t *buf = malloc(loc->rec_size);
    if (!buf)
        return kv_error(KV_IO, "bitcask: out of memory for a record of %u bytes", loc->rec_size);
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
    uint8_t fl;
    uint64_t seq;
    const uint8_t *k, *v;
    uint32_t kl, vl;
    size_t sz;
    if (bc_rec_parse(buf, loc->rec_size, &fl, &seq, &k, &kl, &v, &vl, &sz) != BC_PARSE_OK ||
        sz != loc->rec_size || (fl & (BC_FLAG_BATCH | BC_FLAG_TOMBSTONE)) || seq != loc->seq ||
        kl != klen || memcmp(k, key, klen) != 0) {
        free(buf);
        return kv_error(KV_CORRUPTION,
                        "%s: record at offset %llu (%u bytes) fails its checksum or does not "
                        "hold the key the keydir expects",
                        f->f->path, (unsigned long long)loc->offset, loc->rec_size);
    }
    *rec = buf;
    *val = v;
    *vlen = vl;
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
        return kv_error(KV_CORRUPTION, "bitcask: keydir points at missing data file %u",
                        loc.file_id);
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

typedef struct bc_snap {
    const uint8_t *key;
    size_t klen;
    bc_loc loc;
} bc_snap;

typedef struct bc_iter {
    kv_iter base;
    bc_db *db;
    bc_snap *ents;
    size_t n, cap, pos;
    uint8_t *keys; /* arena of key bytes */
    size_t keys_len, keys_cap;
    bc_file **files; /* referenced, sorted by id */
    size_t nfiles;
    uint8_t *rec; /* record of the loaded value */
    const uint8_t *val;
    size_t vlen;
    size_t loaded; /* pos of the loaded value, or SIZE_MAX */
    kv_status status;
    bool oom;
} bc_iter;

static void snap_add(void *ctx, const uint8_t *key, size_t klen, const bc_loc *loc, bool tomb)
{
    bc_iter *it = ctx;
    if (tomb || it->oom)
        return;
    if (it->n == it->cap || it->keys_len + klen > it->keys_cap) {
        it->oom = true;
        return;
    }
    memcpy(it->keys + it->keys_len, key, klen);
    /* key holds the arena offset until the arena is complete */
    it->ents[it->n++] =
        (bc_snap){.key = (const uint8_t *)(uintptr_t)it->keys_len, .klen = klen, .loc = *loc};
    it->keys_len += klen;
}

static int snap_cmp(const void *a, const void *b)
{
    const bc_snap *x = a, *y = b;
    return kv_key_cmp(x->key, x->klen, y->key, y->klen);
}

static void it_unload(bc_iter *it)
{
    free(it->rec);
    it->rec = NULL;
    it->loaded = SIZE_MAX;
}

static void it_load(bc_iter *it);

static void it_seek_first(kv_iter *base)
{
    bc_iter *it = (bc_iter *)base;
    it->pos = 0;
    it_load(it);
}

static void it_seek(kv_iter *base, const void *key, size_t klen)
{
    bc_iter *it = (bc_iter *)base;
    size_t lo = 0, hi = it->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_key_cmp(it->ents[mid].key, it->ents[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    it->pos = lo;
    it_load(it);
}

static bool it_valid(const kv_iter *base)
{
    const bc_iter *it = (const bc_iter *)base;
    return it->status == KV_OK && it->pos < it->n;
}

static void it_next(kv_iter *base)
{
    bc_iter *it = (bc_iter *)base;
    if (it->pos < it->n)
        it->pos++;
    it_load(it);
}

static const void *it_key(const kv_iter *base, size_t *klen)
{
    const bc_iter *it = (const bc_iter *)base;
    *klen = it->ents[it->pos].klen;
    return it->ents[it->pos].key;
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
    if (it->status != KV_OK || it->pos >= it->n)
        return;
    const bc_snap *e = &it->ents[it->pos];
    bc_file *f = it_file(it, e->loc.file_id);
    kv_status s =
        f ? bc_read_record(it->db, f, &e->loc, e->key, e->klen, &it->rec, &it->val, &it->vlen)
          : kv_error(KV_CORRUPTION, "bitcask: iterator lost data file %u", e->loc.file_id);
    if (s != KV_OK)
        it->status = s;
    else
        it->loaded = it->pos;
}

static const void *it_value(const kv_iter *base, size_t *vlen)
{
    const bc_iter *it = (const bc_iter *)base;
    *vlen = it->vlen;
    return it->val;
}

static kv_status it_status(const kv_iter *base)
{
    return ((const bc_iter *)base)->status;
}

static void it_free(kv_iter *base)
{
    bc_iter *it = (bc_iter *)base;
    it_unload(it);
    for (size_t i = 0; i < it->nfiles; i++)
        bc_file_unref(it->files[i]);
    free(it->files);
    free(it->ents);
    free(it->keys);
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
        return kv_error(KV_IO, "bitcask: out of memory");
    it->base.ops = &bc_iter_ops;
    it->db = db;
    it->loaded = SIZE_MAX;
    pthread_rwlock_rdlock(&db->lock);
    it->cap = db->kd.count;
    it->keys_cap = (size_t)db->kd.key_bytes;
    it->ents = malloc((it->cap ? it->cap : 1) * sizeof *it->ents);
    it->keys = malloc(it->keys_cap ? it->keys_cap : 1);
    it->files = malloc((db->nfiles ? db->nfiles : 1) * sizeof *it->files);
    if (it->ents && it->keys && it->files) {
        bc_kd_foreach(&db->kd, snap_add, it);
        for (size_t i = 0; i < db->nfiles; i++) {
            bc_file_ref(db->files[i]);
            it->files[it->nfiles++] = db->files[i];
        }
    } else {
        it->oom = true;
    }
    pthread_rwlock_unlock(&db->lock);
    if (it->oom) {
        it_free(&it->base);
        return kv_error(KV_IO, "bitcask: out of memory for an iterator snapshot");
    }
    for (size_t i = 0; i < it->n; i++)
        it->ents[i].key = it->keys + (uintptr_t)it->ents[i].key;
    qsort(it->ents, it->n, sizeof *it->ents, snap_cmp);
    it->pos = it->n;
    *out = &it->base;
    return KV_OK;
}
