/* snap.c: snapshot iterators of the btree engine (docs/design.md section 2).
 *
 * Every committed group publishes a new epoch. An iterator remembers the epoch, root and height
 * at its creation. When a writer is about to change a page whose current version a live
 * iterator may still see (the page's version epoch <= the newest live iterator's epoch), it
 * first saves a copy of that version in the version store, tagged "valid until epoch W" (W the
 * writer's epoch) - copy-on-write of the old version, kept alive while an iterator references
 * it. An iterator reading page P takes the saved version of P with the smallest `until` above
 * its epoch, or the current page when there is none. Versions nobody can see any more are
 * dropped when an iterator is freed.
 *
 * The iterator copies the pages on its path (internal pages and the current leaf) into its own
 * buffers under the tree's read lock, one page at a time; a position is a stack of (page copy,
 * child position), valid across writers because its view never changes. */
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"
#include "lock_assert.h"

#define VS_BUCKETS 1024

kv_status bt_vs_init(bt_vstore *v)
{
    memset(v, 0, sizeof *v);
    v->nbuckets = VS_BUCKETS;
    v->buckets = calloc(v->nbuckets, sizeof *v->buckets);
    if (!v->buckets)
        return KV_IO;
    pthread_mutex_init(&v->mu, NULL);
    return KV_OK;
}

void bt_vs_free(bt_vstore *v)
{
    if (!v->buckets)
        return;
    for (size_t i = 0; i < v->nbuckets; i++) {
        bt_ver *e = v->buckets[i];
        while (e) {
            bt_ver *n = e->next;
            free(e);
            e = n;
        }
    }
    free(v->buckets);
    free(v->live);
    pthread_mutex_destroy(&v->mu);
    memset(v, 0, sizeof *v);
}

kv_status bt_vs_save(bt_vstore *v, uint32_t pgno, const uint8_t *img, uint32_t ps, uint64_t until)
{
    bt_ver *e = malloc(sizeof *e + ps);
    if (!e)
        return kv_error(KV_NOMEM, "btree: out of memory for a snapshot page version");
    e->pgno = pgno;
    e->until = until;
    memcpy(e->data, img, ps);
    pthread_mutex_lock(&v->mu);
    size_t h = pgno % v->nbuckets;
    e->next = v->buckets[h];
    v->buckets[h] = e;
    v->count++;
    pthread_mutex_unlock(&v->mu);
    return KV_OK;
}

/* The saved version of pgno seen at epoch, or NULL. Mutex held. */
static const bt_ver *vs_find(bt_vstore *v, uint32_t pgno, uint64_t epoch)
{
    KV_ASSERT_HELD(&v->mu);
    const bt_ver *best = NULL;
    for (const bt_ver *e = v->buckets[pgno % v->nbuckets]; e; e = e->next)
        if (e->pgno == pgno && e->until > epoch && (!best || e->until < best->until))
            best = e;
    return best;
}

static void vs_register(bt_vstore *v, uint64_t epoch, kv_status *s)
{
    pthread_mutex_lock(&v->mu);
    if (v->nlive == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 8;
        uint64_t *n = realloc(v->live, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&v->mu);
            *s = kv_error(KV_NOMEM, "btree: out of memory for an iterator");
            return;
        }
        v->live = n;
        v->cap = cap;
    }
    v->live[v->nlive++] = epoch;
    uint64_t ml = atomic_load(&v->max_live_plus1);
    if (epoch + 1 > ml)
        atomic_store(&v->max_live_plus1, epoch + 1);
    pthread_mutex_unlock(&v->mu);
    *s = KV_OK;
}

/* Forgets one live iterator of that epoch and drops versions no live iterator can see. */
static void vs_unregister(bt_vstore *v, uint64_t epoch)
{
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < v->nlive; i++) {
        if (v->live[i] == epoch) {
            v->live[i] = v->live[--v->nlive];
            break;
        }
    }
    uint64_t min = UINT64_MAX, max = 0;
    for (size_t i = 0; i < v->nlive; i++) {
        if (v->live[i] < min)
            min = v->live[i];
        if (v->live[i] > max)
            max = v->live[i];
    }
    atomic_store(&v->max_live_plus1, v->nlive ? max + 1 : 0);
    /* A version valid until U is seen by epochs < U: keep it only if some live epoch < U. */
    for (size_t b = 0; v->count && b < v->nbuckets; b++) {
        bt_ver **pp = &v->buckets[b];
        while (*pp) {
            bt_ver *e = *pp;
            if (!v->nlive || e->until <= min) {
                *pp = e->next;
                free(e);
                v->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&v->mu);
}

/* ---- the iterator ---- */

typedef struct bt_iter {
    kv_iter base;
    bt_db *db;
    uint64_t epoch;
    uint32_t root, height;
    uint8_t **pages; /* pages[level]: copy of the page on the path at that level */
    unsigned *pos;   /* pos[level]: child position (internal) or slot (leaf) */
    bool valid;
    kv_iter_error err; /* the first damage met: the iterator stops there (kv_engine.h) */
    uint8_t *val;      /* overflow value buffer */
    size_t vcap, vlen;
    bool val_loaded;
} bt_iter;

/* Copies the version of pgno that the iterator's snapshot sees into dst. */
static kv_status snap_read(bt_iter *it, uint32_t pgno, uint8_t *dst)
{
    bt_db *db = it->db;
    kv_status s = KV_OK;
    pthread_rwlock_rdlock(&db->tree);
    pthread_mutex_lock(&db->vs.mu);
    const bt_ver *v = db->vs.count ? vs_find(&db->vs, pgno, it->epoch) : NULL;
    if (v)
        memcpy(dst, v->data, db->ps);
    pthread_mutex_unlock(&db->vs.mu);
    if (!v) {
        bt_frame *f;
        s = bt_pool_get(&db->pool, pgno, &f);
        if (s == KV_OK) {
            memcpy(dst, f->data, db->ps);
            pool_unpin(f);
        }
    }
    pthread_rwlock_unlock(&db->tree);
    return s;
}

/* Stops the iterator at damage (or a failed read): status() reports s with its message, and
 * no record past it is ever returned. */
static void fail(bt_iter *it, kv_status s)
{
    kv_iter_error_set(&it->err, s);
    it->valid = false;
}

/* snap_read of a page the descent expects at tree level `level`: it must be an internal page of
 * that level, or a leaf at level 0. A damaged internal page may point anywhere (an overflow or
 * free page, a page of another level): that is corruption, not a page to walk. */
static kv_status snap_read_level(bt_iter *it, uint32_t pgno, uint8_t *dst, unsigned level)
{
    kv_status s = snap_read(it, pgno, dst);
    if (s != KV_OK)
        return s;
    int want = level ? BT_INTERNAL : BT_LEAF;
    if (pg_type(dst) != want || pg_level(dst) != level)
        return kv_error(KV_CORRUPTION,
                        "%s: page %u at offset %llu: type %u level %u where the tree expects %s "
                        "level %u",
                        it->db->data_path, pgno, (unsigned long long)pgno * it->db->ps,
                        (unsigned)pg_type(dst), (unsigned)pg_level(dst),
                        level ? "an internal page of" : "a leaf at", level);
    return KV_OK;
}

/* Descends from pages[level] (already loaded, positioned) to the leaf along the leftmost path
 * below position pos[level]. */
static bool descend_leftmost(bt_iter *it, unsigned level)
{
    while (level > 0) {
        uint32_t child = child_at(it->pages[level], it->pos[level]);
        kv_status s = snap_read_level(it, child, it->pages[level - 1], level - 1);
        if (s != KV_OK) {
            fail(it, s);
            return false;
        }
        level--;
        it->pos[level] = 0;
    }
    return true;
}

/* Moves to the first entry at or after the current leaf position, crossing leaves. */
static void settle(bt_iter *it)
{
    it->val_loaded = false;
    while (it->pos[0] >= pg_n(it->pages[0])) {
        unsigned level = 1;
        while (level < it->height && it->pos[level] >= pg_n(it->pages[level]))
            level++;
        if (level >= it->height) {
            it->valid = false;
            return;
        }
        it->pos[level]++;
        if (!descend_leftmost(it, level))
            return;
    }
    it->valid = true;
}

static void it_seek(kv_iter *kit, const void *key, size_t klen)
{
    bt_iter *it = (bt_iter *)kit;
    if (it->err.status != KV_OK)
        return;
    unsigned top = it->height - 1;
    kv_status s = snap_read_level(it, it->root, it->pages[top], top);
    if (s != KV_OK) {
        fail(it, s);
        return;
    }
    for (unsigned level = top; level > 0; level--) {
        it->pos[level] = bt_pg_upper_bound(it->pages[level], key, klen);
        s = snap_read_level(it, child_at(it->pages[level], it->pos[level]), it->pages[level - 1],
                            level - 1);
        if (s != KV_OK) {
            fail(it, s);
            return;
        }
    }
    bool found;
    it->pos[0] = bt_pg_lower_bound(it->pages[0], key, klen, &found);
    settle(it);
}

static void it_seek_first(kv_iter *kit)
{
    it_seek(kit, "", 0);
}

static bool it_valid(const kv_iter *kit)
{
    return ((const bt_iter *)kit)->valid;
}

static void it_next(kv_iter *kit)
{
    bt_iter *it = (bt_iter *)kit;
    if (!it->valid)
        return;
    it->pos[0]++;
    settle(it);
}

static const void *it_key(const kv_iter *kit, size_t *klen)
{
    const bt_iter *it = (const bt_iter *)kit;
    return cell_key(it->pages[0], it->pos[0], klen);
}

static const void *it_value(const kv_iter *kit, size_t *vlen)
{
    bt_iter *it = (bt_iter *)kit; /* the value buffer is filled lazily */
    const uint8_t *c = it->pages[0] + pg_slot(it->pages[0], it->pos[0]);
    size_t klen = kv_get_u16(c), n = kv_get_u32(c + 3);
    *vlen = n;
    if (!c[2])
        return c + 7 + klen;
    if (it->val_loaded)
        return it->val;
    if (n > it->vcap) {
        uint8_t *b = realloc(it->val, n);
        if (!b) {
            fail(it, kv_error(KV_NOMEM, "btree: out of memory for a value"));
            *vlen = 0;
            return "";
        }
        it->val = b;
        it->vcap = n;
    }
    uint8_t *page = malloc(it->db->ps);
    uint32_t pgno = kv_get_u32(c + 7 + klen);
    size_t off = 0;
    kv_status s = page ? KV_OK : kv_error(KV_NOMEM, "btree: out of memory");
    while (s == KV_OK && off < n) {
        if (!pgno || (s = snap_read(it, pgno, page)) != KV_OK) {
            if (s == KV_OK)
                s = kv_error(KV_CORRUPTION,
                             "%s: leaf cell of %zu-byte key: overflow chain ends "
                             "early",
                             it->db->data_path, klen);
            break;
        }
        uint32_t len = kv_get_u32(page + 12);
        if (pg_type(page) != BT_OVERFLOW || len == 0 || len > n - off) {
            s = kv_error(KV_CORRUPTION, "%s: page %u at offset %llu: bad overflow page",
                         it->db->data_path, pgno, (unsigned long long)pgno * it->db->ps);
            break;
        }
        memcpy(it->val + off, page + BT_HDR, len);
        off += len;
        pgno = pg_link(page);
    }
    free(page);
    if (s != KV_OK) {
        fail(it, s);
        *vlen = 0;
        return "";
    }
    it->val_loaded = true;
    return it->val;
}

static kv_status it_status(const kv_iter *kit)
{
    return kv_iter_error_get(&((const bt_iter *)kit)->err);
}

static void it_free(kv_iter *kit)
{
    bt_iter *it = (bt_iter *)kit;
    vs_unregister(&it->db->vs, it->epoch);
    for (uint32_t i = 0; it->pages && i < it->height; i++)
        free(it->pages[i]);
    free(it->pages);
    free(it->pos);
    free(it->val);
    free(it);
}

static const kv_iter_ops iter_ops = {
    it_seek_first, it_seek, it_valid, it_next, it_key, it_value, it_status, it_free,
};

kv_status bt_iter_new(kv_db *kdb, kv_iter **out)
{
    bt_db *db = (bt_db *)kdb;
    bt_iter *it = calloc(1, sizeof *it);
    if (!it)
        return kv_error(KV_NOMEM, "btree: out of memory for an iterator");
    it->base.ops = &iter_ops;
    it->db = db;
    kv_status s;
    pthread_rwlock_rdlock(&db->tree);
    it->epoch = atomic_load(&db->epoch);
    it->root = db->meta.root;
    it->height = db->meta.height;
    vs_register(&db->vs, it->epoch, &s);
    pthread_rwlock_unlock(&db->tree);
    if (s != KV_OK) {
        free(it);
        return s;
    }
    it->pages = calloc(it->height, sizeof *it->pages);
    it->pos = calloc(it->height, sizeof *it->pos);
    bool ok = it->pages && it->pos;
    for (uint32_t i = 0; ok && i < it->height; i++)
        ok = (it->pages[i] = malloc(db->ps)) != NULL;
    if (!ok) {
        it_free(&it->base);
        return kv_error(KV_NOMEM, "btree: out of memory for an iterator");
    }
    *out = &it->base;
    return KV_OK;
}
