/* wal_iter.c: ordered iterators over a snapshot of the copy-on-write tree. Creating one takes a
 * reference to the current root (O(1)); writers copy the nodes it shares before changing them,
 * so the iterator sees the state of its creation whatever happens later, without locks. */
#include <stdlib.h>

#include "wal_db.h"

typedef struct wal_iter {
    kv_iter base;
    wal_db *db;
    wal_node *root;
    wal_cursor cur;
} wal_iter;

static void it_seek_first(kv_iter *ki)
{
    wal_iter *it = (wal_iter *)ki;
    wal_cursor_first(&it->cur, it->root);
}

static void it_seek(kv_iter *ki, const void *key, size_t klen)
{
    wal_iter *it = (wal_iter *)ki;
    wal_cursor_seek(&it->cur, it->root, key, klen);
}

static bool it_valid(const kv_iter *ki)
{
    return wal_cursor_entry(&((const wal_iter *)ki)->cur) != NULL;
}

static void it_next(kv_iter *ki)
{
    wal_cursor_next(&((wal_iter *)ki)->cur);
}

static const void *it_key(const kv_iter *ki, size_t *klen)
{
    const wal_entry *e = wal_cursor_entry(&((const wal_iter *)ki)->cur);
    *klen = e->klen;
    return e->data;
}

static const void *it_value(const kv_iter *ki, size_t *vlen)
{
    const wal_entry *e = wal_cursor_entry(&((const wal_iter *)ki)->cur);
    *vlen = (size_t)e->vlen;
    return e->data + e->klen;
}

static kv_status it_status(const kv_iter *ki)
{
    (void)ki;
    return KV_OK;
}

static void it_free(kv_iter *ki)
{
    wal_iter *it = (wal_iter *)ki;
    wal_map_release(&it->db->map, it->root);
    free(it);
}

static const kv_iter_ops ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                it_key,        it_value, it_status, it_free};

kv_status wal_iter_new(kv_db *kdb, kv_iter **out)
{
    wal_db *db = (wal_db *)kdb;
    wal_iter *it = calloc(1, sizeof *it);
    if (!it)
        return kv_error(KV_NOMEM, "wal iterator: out of memory");
    it->base.ops = &ops;
    it->db = db;
    it->root = wal_map_snapshot(&db->map, NULL, NULL);
    *out = &it->base;
    return KV_OK;
}
