/* read.c: point lookups and iterators (LevelDB's DBImpl::Get and db_iter.cc). A lookup takes a
 * snapshot (memtable, immutable memtable, current version, last sequence number) under the
 * mutex, then searches without it: memtable, immutable memtable, L0 tables newest first (each
 * behind its Bloom filter), then one table per deeper level found by binary search. The first
 * entry of the key at or below the snapshot decides: a value, or a tombstone (not found). */
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

typedef struct getctx {
    const uint8_t *ukey;
    size_t ulen;
    int found; /* -1 none, 0 tombstone, 1 value */
    uint8_t *val;
    size_t vlen;
    bool oom;
} getctx;

static void get_cb(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    getctx *g = ctx;
    if (klen < 8 || lsm_ukey_cmp(k, klen - 8, g->ukey, g->ulen) != 0)
        return;
    if ((lsm_ikey_trailer(k, klen) & 0xff) == LSM_TYPE_DEL) {
        g->found = 0;
        return;
    }
    g->found = 1;
    g->val = malloc(vlen ? vlen : 1);
    if (!g->val) {
        g->oom = true;
        return;
    }
    memcpy(g->val, v, vlen);
    g->vlen = vlen;
}

static kv_status table_get(lsm_file *f, const uint8_t *ikey, size_t klen, getctx *g)
{
    kv_status s = sst_reader_get(f->reader, ikey, klen, g->ukey, g->ulen, get_cb, g);
    if (s == KV_NOT_FOUND)
        return KV_OK;
    if (s == KV_OK && g->oom)
        return kv_error(KV_NOMEM, "lsm: out of memory");
    return s;
}

static bool in_range(const lsm_file *f, const uint8_t *u, size_t n)
{
    return lsm_ukey_cmp(f->smallest, f->smallest_len - 8, u, n) <= 0 &&
           lsm_ukey_cmp(f->largest, f->largest_len - 8, u, n) >= 0;
}

static kv_status version_get(lsm_version *v, const uint8_t *ikey, size_t klen, getctx *g)
{
    kv_status s;
    for (size_t i = 0; i < v->n[0]; i++) {
        lsm_file *f = v->files[0][i];
        if (!in_range(f, g->ukey, g->ulen))
            continue;
        if ((s = table_get(f, ikey, klen, g)) != KV_OK || g->found >= 0)
            return s;
    }
    for (int l = 1; l < LSM_LEVELS; l++) {
        size_t i = lsm_version_find_file(v, l, ikey, klen);
        if (i >= v->n[l])
            continue;
        lsm_file *f = v->files[l][i];
        if (lsm_ukey_cmp(f->smallest, f->smallest_len - 8, g->ukey, g->ulen) > 0)
            continue;
        if ((s = table_get(f, ikey, klen, g)) != KV_OK || g->found >= 0)
            return s;
    }
    return KV_OK;
}

kv_status lsm_get(kv_db *kdb, const void *key, size_t klen, void **val, size_t *vlen)
{
    lsm_db *db = (lsm_db *)kdb;
    pthread_mutex_lock(&db->mu);
    lsm_mem *mem = db->mem, *imm = db->imm;
    lsm_version *v = db->current;
    lsm_mem_ref(mem);
    if (imm)
        lsm_mem_ref(imm);
    lsm_version_ref(v);
    uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_acquire);
    pthread_mutex_unlock(&db->mu);

    getctx g = {key, klen, -1, NULL, 0, false};
    const uint8_t *mv;
    size_t mvl;
    kv_status s = KV_OK;
    int r = lsm_mem_get(mem, key, klen, seq, &mv, &mvl);
    if (r < 0 && imm)
        r = lsm_mem_get(imm, key, klen, seq, &mv, &mvl);
    if (r == 1) {
        g.val = malloc(mvl ? mvl : 1);
        if (g.val) {
            memcpy(g.val, mv, mvl);
            g.vlen = mvl;
            g.found = 1;
        } else
            s = kv_error(KV_NOMEM, "lsm: out of memory");
    } else if (r == 0)
        g.found = 0;
    else {
        kv_buf ik = {0};
        if (!lsm_ikey_append(&ik, key, klen, seq, LSM_TYPE_VALUE))
            s = kv_error(KV_NOMEM, "lsm: out of memory");
        else
            s = version_get(v, ik.data, ik.len, &g);
        kv_buf_free(&ik);
    }
    lsm_mem_unref(mem);
    lsm_mem_unref(imm);
    lsm_version_unref(v);
    if (s != KV_OK) {
        free(g.val);
        return s;
    }
    if (g.found != 1)
        return KV_NOT_FOUND;
    *val = g.val;
    *vlen = g.vlen;
    return KV_OK;
}

/* ---- the user iterator ---- */

typedef struct lsm_iter {
    kv_iter base;
    lsm_db *db;
    lsm_it *m;
    lsm_version *v; /* pinned: its tables are not deleted while the iterator lives */
    uint64_t seq;
    kv_buf key, val, tmp;
    bool valid;
    kv_status status;
    kv_iter_error err; /* the error that stopped the iterator, with its message */
} lsm_iter;

/* Stops the iterator with s (this thread's current message is kept for it_status). */
static void it_fail(lsm_iter *it, kv_status s)
{
    it->status = s;
    it->valid = false;
    kv_iter_error_set(&it->err, s);
}

/* Moves m to the next visible entry; skips entries newer than the snapshot, older versions of
 * the key in it->key when skipping, and tombstoned keys. */
static void find_next(lsm_iter *it, bool skipping)
{
    lsm_it *m = it->m;
    it->valid = false;
    while (m->ops->valid(m)) {
        size_t kl;
        const uint8_t *k = m->ops->key(m, &kl);
        uint64_t t = lsm_ikey_trailer(k, kl);
        const uint8_t *u = k;
        size_t ul = kl - 8;
        if ((t >> 8) > it->seq) {
            m->ops->next(m);
            continue;
        }
        if (skipping && lsm_ukey_cmp(u, ul, it->key.data, it->key.len) <= 0) {
            m->ops->next(m);
            continue;
        }
        if ((t & 0xff) == LSM_TYPE_DEL) {
            it->key.len = 0;
            kv_buf_append(&it->key, u, ul);
            skipping = true;
            m->ops->next(m);
            continue;
        }
        size_t vl;
        const uint8_t *v = m->ops->value(m, &vl);
        it->key.len = 0;
        it->val.len = 0;
        if (!kv_buf_append(&it->key, u, ul) || !kv_buf_reserve(&it->val, vl + 1) ||
            !kv_buf_append(&it->val, v, vl)) {
            it_fail(it, kv_error(KV_NOMEM, "lsm iterator: out of memory"));
            return;
        }
        it->valid = true;
        return;
    }
    kv_status s = m->ops->status(m); /* damage stops the scan here: nothing past it is served */
    if (s != KV_OK)
        it_fail(it, s);
}

static void it_seek_first(kv_iter *ki)
{
    lsm_iter *it = (lsm_iter *)ki;
    if (it->status != KV_OK)
        return;
    it->m->ops->seek_first(it->m);
    find_next(it, false);
}

static void it_seek(kv_iter *ki, const void *key, size_t klen)
{
    lsm_iter *it = (lsm_iter *)ki;
    if (it->status != KV_OK)
        return;
    it->tmp.len = 0;
    if (!lsm_ikey_append(&it->tmp, key, klen, it->seq, LSM_TYPE_VALUE)) {
        it_fail(it, kv_error(KV_NOMEM, "lsm iterator: out of memory"));
        return;
    }
    it->m->ops->seek(it->m, it->tmp.data, it->tmp.len);
    find_next(it, false);
}

static bool it_valid(const kv_iter *ki)
{
    const lsm_iter *it = (const lsm_iter *)ki;
    return it->valid && it->status == KV_OK;
}

static void it_next(kv_iter *ki)
{
    lsm_iter *it = (lsm_iter *)ki;
    if (!it->valid)
        return;
    it->m->ops->next(it->m);
    find_next(it, true);
}

static const void *it_key(const kv_iter *ki, size_t *klen)
{
    const lsm_iter *it = (const lsm_iter *)ki;
    *klen = it->key.len;
    return it->key.data;
}

static const void *it_value(const kv_iter *ki, size_t *vlen)
{
    const lsm_iter *it = (const lsm_iter *)ki;
    *vlen = it->val.len;
    return it->val.data ? it->val.data : (const void *)"";
}

static kv_status it_status(const kv_iter *ki)
{
    const lsm_iter *it = (const lsm_iter *)ki;
    return it->status == KV_OK ? KV_OK : kv_iter_error_get(&it->err);
}

static void it_free(kv_iter *ki)
{
    lsm_iter *it = (lsm_iter *)ki;
    lsm_db *db = it->db;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->n_snaps; i++)
        if (db->snaps[i] == it->seq) {
            db->snaps[i] = db->snaps[--db->n_snaps];
            break;
        }
    pthread_mutex_unlock(&db->mu);
    lsm_it_free(it->m); /* may release a version: takes mu itself */
    lsm_version_unref(it->v);
    kv_buf_free(&it->key);
    kv_buf_free(&it->val);
    kv_buf_free(&it->tmp);
    free(it);
}

static const kv_iter_ops lsm_iter_ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                         it_key,        it_value, it_status, it_free};

kv_status lsm_iter_new(kv_db *kdb, kv_iter **out)
{
    lsm_db *db = (lsm_db *)kdb;
    lsm_iter *it = calloc(1, sizeof *it);
    if (!it)
        return kv_error(KV_NOMEM, "lsm: out of memory");
    it->base.ops = &lsm_iter_ops;
    it->db = db;
    pthread_mutex_lock(&db->mu);
    lsm_version *v = db->current;
    size_t cap = 2 + v->n[0] + LSM_LEVELS, n = 0;
    lsm_it **c = calloc(cap, sizeof *c);
    bool ok = c != NULL;
    if (ok && db->n_snaps == db->cap_snaps) {
        size_t nc = db->cap_snaps ? db->cap_snaps * 2 : 8;
        uint64_t *ns = realloc(db->snaps, nc * sizeof *ns);
        if (ns) {
            db->snaps = ns;
            db->cap_snaps = nc;
        } else
            ok = false;
    }
    if (ok) {
        it->seq = atomic_load_explicit(&db->last_seq, memory_order_acquire);
        db->snaps[db->n_snaps++] = it->seq;
        ok = (c[n++] = lsm_mem_iter(db->mem)) != NULL;
        if (ok && db->imm)
            ok = (c[n++] = lsm_mem_iter(db->imm)) != NULL;
        for (size_t i = 0; ok && i < v->n[0]; i++)
            ok = (c[n++] = lsm_table_iter(v->files[0][i])) != NULL;
        for (int l = 1; ok && l < LSM_LEVELS; l++)
            if (v->n[l])
                ok = (c[n++] = lsm_level_iter(v, l)) != NULL;
    }
    if (ok) {
        it->v = v;
        lsm_version_ref(v);
    }
    pthread_mutex_unlock(&db->mu);
    if (ok && !(it->m = lsm_merge_iter(c, n)))
        lsm_version_unref(it->v);
    if (!ok)
        for (size_t i = 0; i < n; i++)
            lsm_it_free(c[i]);
    free(c);
    if (!it->m) {
        if (it->seq || ok) {
            pthread_mutex_lock(&db->mu);
            for (size_t i = 0; i < db->n_snaps; i++)
                if (db->snaps[i] == it->seq) {
                    db->snaps[i] = db->snaps[--db->n_snaps];
                    break;
                }
            pthread_mutex_unlock(&db->mu);
        }
        free(it);
        return kv_error(KV_NOMEM, "lsm: out of memory creating an iterator");
    }
    *out = &it->base;
    return KV_OK;
}
