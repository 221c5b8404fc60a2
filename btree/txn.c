/* txn.c: the open group of the btree engine: every page one atomic change (a put, a delete, a
 * batch, or the commits of one group-commit round) touches, with its before-image.
 *
 * The before-images give in-memory atomicity: if anything fails half-way (a read error, out of
 * space) the pages and the meta page are put back, so readers never see half a change. At the
 * end the touched pages are what wal.c logs as page images, closed by one commit record (as an
 * InnoDB mini-transaction). When an iterator lives whose snapshot sees the page's current
 * version, that version is saved in the version store first (snap.c). */
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

void bt_txn_begin(bt_db *db)
{
    bt_txn *t = &db->txn;
    t->n = 0;
    t->id++;
    t->meta_before = db->meta;
    t->epoch = atomic_load(&db->epoch) + 1;
}

static void give_back(bt_txn *t, uint8_t *buf)
{
    if (!buf)
        return;
    if (t->nspare == t->capspare) {
        size_t cap = t->capspare ? 2 * t->capspare : 64;
        uint8_t **n = realloc(t->spare, cap * sizeof *n);
        if (!n) {
            free(buf);
            return;
        }
        t->spare = n;
        t->capspare = cap;
    }
    if (t->nspare < 256)
        t->spare[t->nspare++] = buf;
    else
        free(buf);
}

kv_status bt_txn_touch(bt_db *db, bt_frame *f, bool is_new)
{
    bt_txn *t = &db->txn;
    if (f->txn_mark == t->id)
        return KV_OK;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        bt_touch *n = realloc(t->t, cap * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "btree: out of memory for the group's page list");
        t->t = n;
        t->cap = cap;
    }
    uint8_t *before = NULL;
    if (!is_new) {
        if (t->nspare) {
            before = t->spare[--t->nspare];
        } else if (!(before = malloc(db->ps))) {
            return kv_error(KV_NOMEM, "btree: out of memory for a before-image");
        }
        memcpy(before, f->data, db->ps);
        uint64_t ml = atomic_load(&db->vs.max_live_plus1);
        if (ml && ml - 1 >= f->mod_epoch) {
            kv_status s = bt_vs_save(&db->vs, f->pgno, f->data, db->ps, t->epoch);
            if (s != KV_OK) {
                give_back(t, before);
                return s;
            }
        }
    }
    bt_touch *e = &t->t[t->n++];
    e->f = f;
    e->before = before;
    e->was_dirty = f->dirty;
    e->imaged = !is_new && bt_imaged(db, f->pgno);
    e->old_epoch = f->mod_epoch;
    f->txn_mark = t->id;
    f->mod_epoch = t->epoch;
    if (!f->dirty)
        bt_pool_set_dirty(&db->pool, f, true);
    return KV_OK;
}

void bt_txn_rollback(bt_db *db)
{
    bt_txn *t = &db->txn;
    for (size_t i = t->n; i-- > 0;) {
        bt_touch *e = &t->t[i];
        e->f->mod_epoch = e->old_epoch;
        e->f->txn_mark = 0;
        if (!e->before) {
            bt_pool_drop(&db->pool, e->f);
            continue;
        }
        memcpy(e->f->data, e->before, db->ps);
        if (!e->was_dirty)
            bt_pool_set_dirty(&db->pool, e->f, false);
        give_back(t, e->before);
    }
    t->n = 0;
    db->meta = t->meta_before;
}

void bt_txn_end(bt_db *db)
{
    bt_txn *t = &db->txn;
    for (size_t i = 0; i < t->n; i++)
        give_back(t, t->t[i].before);
    t->n = 0;
}

void bt_txn_free(bt_txn *t)
{
    for (size_t i = 0; i < t->nspare; i++)
        free(t->spare[i]);
    for (size_t i = 0; i < t->n; i++)
        free(t->t[i].before);
    free(t->spare);
    free(t->t);
    memset(t, 0, sizeof *t);
}
