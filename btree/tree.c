/* tree.c: B+tree search, insert with splits, delete with borrow/merge, overflow chains, page
 * allocation through the free list (DDIA ch. 3 "B-Trees"; the algorithms of Comer's "The
 * Ubiquitous B-Tree" with byte-based fill bounds as in SQLite's balance()).
 *
 * Every change goes through bt_txn_touch() so that it belongs to the open group; allocation and
 * freeing change the meta page (db->meta: hwm, free list head and count), which is logged in
 * the same group, so a crash can never leak a page or hand one out twice.
 *
 * Fill bounds: a non-root leaf or internal page keeps at least usable/4 bytes of cells and
 * slots (BT_SLOT bytes each); a cell is at most usable/4 - BT_SLOT bytes, so a split or a
 * redistribution always leaves both halves above the bound and a merge is done only when
 * everything fits in one page. */
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"
#include "lock_assert.h"

typedef struct bt_res {
    bool split, underflow;
    uint32_t right;
    uint16_t seplen;
    uint8_t sep[BT_MAX_KEY];
} bt_res;

/* ---- allocation ---- */

static kv_status page_alloc(bt_db *db, int type, int level, bt_frame **out)
{
    bt_frame *f = NULL;
    kv_status s;
    uint32_t pgno;
    if (db->meta.free_head) {
        pgno = db->meta.free_head;
        if ((s = bt_pool_get(&db->pool, pgno, &f)) != KV_OK)
            return s;
        if (pg_type(f->data) != BT_FREE) {
            pool_unpin(f);
            return kv_error(KV_CORRUPTION, "%s: page %u on the free list is not a free page",
                            db->data_path, pgno);
        }
        if ((s = bt_txn_touch(db, f, false)) != KV_OK) {
            pool_unpin(f);
            return s;
        }
        db->meta.free_head = pg_link(f->data);
        db->meta.free_count--;
    } else {
        pgno = db->meta.hwm;
        if (pgno >= UINT32_MAX - 1)
            return kv_error(KV_NOSPACE, "%s: page numbers exhausted", db->data_path);
        if ((s = bt_pool_new(&db->pool, pgno, &f)) != KV_OK)
            return s;
        if ((s = bt_txn_touch(db, f, true)) != KV_OK) {
            pool_unpin(f);
            bt_pool_drop(&db->pool, f);
            return s;
        }
        db->meta.hwm++;
    }
    if (db->bug == BT_BUG_ALLOC_OUTSIDE_LOG) {
        /* BUG (docs/lab.md): the allocation (free-list head, free count, high-water mark) is
         * written to the meta page of btree.db at once, in place. The correct code changes
         * db->meta only, which the group logs together with the pages that use the new page:
         * a power loss that takes the group back but keeps the in-place meta page leaves
         * btree.db counting a page that nothing durable ever used (a leaked page: past the end
         * of the file when it came from the high-water mark, off the free list otherwise). */
        if ((s = bt_write_meta(db, &db->meta)) != KV_OK) {
            pool_unpin(f);
            return s;
        }
    }
    bt_pg_init(f->data, db->ps, pgno, type, level);
    atomic_fetch_add_explicit(&db->allocs, 1, memory_order_relaxed);
    *out = f;
    return KV_OK;
}

/* Puts f's page on the free list (f stays pinned). */
static kv_status page_free(bt_db *db, bt_frame *f)
{
    kv_status s = bt_txn_touch(db, f, false);
    if (s != KV_OK)
        return s;
    bt_pg_init(f->data, db->ps, f->pgno, BT_FREE, 0);
    pg_set_link(f->data, db->meta.free_head);
    db->meta.free_head = f->pgno;
    db->meta.free_count++;
    atomic_fetch_add_explicit(&db->frees, 1, memory_order_relaxed);
    return KV_OK;
}

/* ---- overflow chains ---- */

static kv_status ovfl_write(bt_db *db, const uint8_t *val, size_t vlen, uint32_t *first)
{
    size_t per = db->ps - BT_HDR, off = 0;
    bt_frame *prev = NULL;
    *first = 0;
    while (off < vlen) {
        bt_frame *f;
        kv_status s = page_alloc(db, BT_OVERFLOW, 0, &f);
        if (s != KV_OK) {
            pool_unpin(prev);
            return s;
        }
        size_t n = vlen - off < per ? vlen - off : per;
        memcpy(f->data + BT_HDR, val + off, n);
        kv_put_u32(f->data + 12, (uint32_t)n);
        if (prev) {
            pg_set_link(prev->data, f->pgno);
            pool_unpin(prev);
        } else {
            *first = f->pgno;
        }
        prev = f;
        off += n;
    }
    pool_unpin(prev);
    return KV_OK;
}

static kv_status ovfl_free(bt_db *db, uint32_t pgno)
{
    for (uint64_t guard = 0; pgno; guard++) {
        bt_frame *f;
        if (guard > db->meta.hwm)
            return kv_error(KV_CORRUPTION, "%s: overflow chain loops", db->data_path);
        kv_status s = bt_pool_get(&db->pool, pgno, &f);
        if (s != KV_OK)
            return s;
        if (pg_type(f->data) != BT_OVERFLOW) {
            pool_unpin(f);
            return kv_error(KV_CORRUPTION,
                            "%s: page %u in an overflow chain is not an overflow "
                            "page",
                            db->data_path, pgno);
        }
        uint32_t next = pg_link(f->data);
        s = page_free(db, f);
        pool_unpin(f);
        if (s != KV_OK)
            return s;
        pgno = next;
    }
    return KV_OK;
}

static kv_status ovfl_read(bt_db *db, uint32_t pgno, uint8_t *dst, size_t vlen)
{
    size_t off = 0;
    while (off < vlen) {
        bt_frame *f;
        if (!pgno)
            return kv_error(KV_CORRUPTION, "%s: overflow chain ends early", db->data_path);
        kv_status s = bt_pool_get(&db->pool, pgno, &f);
        if (s != KV_OK)
            return s;
        uint32_t n = kv_get_u32(f->data + 12);
        if (pg_type(f->data) != BT_OVERFLOW || n > vlen - off || n == 0) {
            pool_unpin(f);
            return kv_error(KV_CORRUPTION, "%s: page %u: bad overflow page", db->data_path, pgno);
        }
        memcpy(dst + off, f->data + BT_HDR, n);
        off += n;
        pgno = pg_link(f->data);
        pool_unpin(f);
    }
    return KV_OK;
}

kv_status bt_tree_read_value(bt_db *db, const uint8_t *p, unsigned i, void **out, size_t *vlen)
{
    const uint8_t *c = p + pg_slot(p, i);
    size_t klen = kv_get_u16(c);
    size_t n = kv_get_u32(c + 3);
    uint8_t *v = malloc(n ? n : 1);
    if (!v)
        return kv_error(KV_NOMEM, "btree: out of memory for a value of %zu bytes", n);
    kv_status s = KV_OK;
    if (c[2])
        s = ovfl_read(db, kv_get_u32(c + 7 + klen), v, n);
    else
        memcpy(v, c + 7 + klen, n);
    if (s != KV_OK) {
        free(v);
        return s;
    }
    *out = v;
    *vlen = n;
    return KV_OK;
}

/* The common case of a lookup: every page on the path is cached and the value is inline. One
 * read lock on the pool for the whole descent (nothing can be evicted meanwhile, so no pins).
 * Returns false to fall back to the general path. */
static bool tree_get_cached(bt_db *db, const void *key, size_t klen, void **val, size_t *vlen,
                            kv_status *s)
{
    bt_pool *pool = &db->pool;
    pthread_rwlock_rdlock(&pool->lock);
    uint32_t pgno = db->meta.root;
    for (uint32_t level = db->meta.height;; level--) {
        bt_frame *f = bt_pool_find_locked(pool, pgno);
        if (!f)
            break;
        const uint8_t *p = bt_frame_page(f);
        if (level > 1) {
            pgno = child_at(p, bt_pg_upper_bound(p, key, klen));
            continue;
        }
        bool found;
        unsigned i = bt_pg_lower_bound(p, key, klen, &found);
        if (!found) {
            *s = KV_NOT_FOUND;
        } else {
            const uint8_t *c = p + pg_slot(p, i);
            if (c[2])
                break; /* overflow value: the general path pins the chain */
            size_t n = kv_get_u32(c + 3);
            uint8_t *v = malloc(n ? n : 1);
            if (v) {
                memcpy(v, c + 7 + kv_get_u16(c), n);
                *val = v;
                *vlen = n;
                *s = KV_OK;
            } else {
                *s = kv_error(KV_NOMEM, "btree: out of memory for a value of %zu bytes", n);
            }
        }
        pthread_rwlock_unlock(&pool->lock);
        bt_pool_count_hits(pool, db->meta.height);
        return true;
    }
    pthread_rwlock_unlock(&pool->lock);
    return false;
}

kv_status bt_tree_get(bt_db *db, const void *key, size_t klen, void **val, size_t *vlen)
{
    KV_ASSERT_RW_HELD(&db->tree);
    kv_status fast;
    if (tree_get_cached(db, key, klen, val, vlen, &fast))
        return fast;
    uint32_t pgno = db->meta.root;
    for (uint32_t level = db->meta.height;; level--) {
        bt_frame *f;
        kv_status s = bt_pool_get(&db->pool, pgno, &f);
        if (s != KV_OK)
            return s;
        const uint8_t *p = f->data;
        if (level == 1) {
            bool found;
            unsigned i = bt_pg_lower_bound(p, key, klen, &found);
            s = found ? bt_tree_read_value(db, p, i, val, vlen) : KV_NOT_FOUND;
            pool_unpin(f);
            return s;
        }
        pgno = child_at(p, bt_pg_upper_bound(p, key, klen));
        pool_unpin(f);
    }
}

/* ---- splitting and rewriting nodes ---- */

static const uint8_t *bcell_key(const bt_cell *c, bool leaf, size_t *klen)
{
    *klen = kv_get_u16(c->p);
    return c->p + (leaf ? 7 : 6);
}

/* Where to cut cells[0..n) of total bytes T (cells + slots) in two. */
static size_t choose_split(const bt_cell *cells, size_t n, size_t total, bool leaf)
{
    size_t acc = 0, k = 0;
    while (k < n && acc + cells[k].len + BT_SLOT <= total / 2) {
        acc += cells[k].len + BT_SLOT;
        k++;
    }
    if (k < 1)
        k = 1;
    size_t maxk = leaf ? n - 1 : n - 2;
    if (k > maxk)
        k = maxk;
    return k;
}

/* The shortest key s with a < s <= b (b > a): a prefix of b. */
static void shortest_sep(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, bt_res *res)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    size_t n = i + 1 <= blen ? i + 1 : blen;
    memcpy(res->sep, b, n);
    res->seplen = (uint16_t)n;
}

/* Makes f hold cells (pointing outside f) with leftmost child link; when they do not fit,
 * splits into f and a new right page and reports the separator in res. */
static kv_status node_rewrite(bt_db *db, bt_frame *f, int level, uint32_t link,
                              const bt_cell *cells, size_t n, bt_res *res)
{
    bool leaf = level == 0;
    int type = leaf ? BT_LEAF : BT_INTERNAL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += cells[i].len + BT_SLOT;
    kv_status s = bt_txn_touch(db, f, false);
    if (s != KV_OK)
        return s;
    if (total <= db->usable) {
        bt_pg_build(f->data, db->ps, f->pgno, type, level, link, cells, n);
        return KV_OK;
    }
    size_t k = choose_split(cells, n, total, leaf);
    bt_frame *r;
    if ((s = page_alloc(db, type, level, &r)) != KV_OK)
        return s;
    if (leaf) {
        size_t al, bl;
        const uint8_t *a = bcell_key(&cells[k - 1], true, &al);
        const uint8_t *b = bcell_key(&cells[k], true, &bl);
        shortest_sep(a, al, b, bl, res);
        bt_pg_build(r->data, db->ps, r->pgno, type, level, 0, cells + k, n - k);
    } else {
        size_t ul;
        const uint8_t *u = bcell_key(&cells[k], false, &ul);
        memcpy(res->sep, u, ul);
        res->seplen = (uint16_t)ul;
        bt_pg_build(r->data, db->ps, r->pgno, type, level, kv_get_u32(cells[k].p + 2),
                    cells + k + 1, n - k - 1);
    }
    bt_pg_build(f->data, db->ps, f->pgno, type, level, link, cells, k);
    res->split = true;
    res->right = r->pgno;
    pool_unpin(r);
    atomic_fetch_add_explicit(&db->splits, 1, memory_order_relaxed);
    return KV_OK;
}

/* Copies page p into scratch and lists its cells into cells[at..]; returns the count. */
static size_t list_cells(const uint8_t *copy, bt_cell *cells)
{
    unsigned n = pg_n(copy);
    for (unsigned i = 0; i < n; i++) {
        cells[i].p = copy + pg_slot(copy, i);
        cells[i].len = (uint32_t)bt_cell_size(copy, i);
    }
    return n;
}

/* Inserts cell (len bytes, outside f) at index idx of f, splitting when it does not fit. */
static kv_status node_insert(bt_db *db, bt_frame *f, unsigned idx, const uint8_t *cell, size_t len,
                             bt_res *res)
{
    kv_status s = bt_txn_touch(db, f, false);
    if (s != KV_OK)
        return s;
    if (bt_pg_free(f->data) >= len + BT_SLOT) {
        bt_pg_insert_cell(f->data, idx, cell, len);
        return KV_OK;
    }
    uint8_t *copy = db->sc[0];
    memcpy(copy, f->data, db->ps);
    bt_cell *cl = db->cl[0];
    size_t n = list_cells(copy, cl);
    memmove(cl + idx + 1, cl + idx, (n - idx) * sizeof *cl);
    cl[idx].p = cell;
    cl[idx].len = (uint32_t)len;
    return node_rewrite(db, f, pg_level(copy), pg_link(copy), cl, n + 1, res);
}

/* ---- leaf changes ---- */

static kv_status leaf_modify(bt_db *db, bt_frame *f, const bt_op *op, bt_res *res)
{
    uint8_t *p = f->data;
    bool found;
    unsigned i = bt_pg_lower_bound(p, op->key, op->klen, &found);
    kv_status s;
    uint32_t old_ovfl = 0;
    if (found) {
        const uint8_t *c = p + pg_slot(p, i);
        if (c[2])
            old_ovfl = kv_get_u32(c + 7 + kv_get_u16(c));
    }
    if (op->type == KV_OP_DELETE) {
        if (!found)
            return KV_OK;
        if (old_ovfl && (s = ovfl_free(db, old_ovfl)) != KV_OK)
            return s;
        if ((s = bt_txn_touch(db, f, false)) != KV_OK)
            return s;
        bt_pg_remove_cell(p, i, db->ps);
        db->meta.key_count--;
        return KV_OK;
    }
    if (old_ovfl && (s = ovfl_free(db, old_ovfl)) != KV_OK)
        return s; /* freed first, so that the new chain can reuse its pages */
    uint8_t *cell = db->sc[3];
    bool inl = 7 + op->klen + op->vlen <= db->max_cell;
    size_t clen = 7 + op->klen + (inl ? op->vlen : 4);
    kv_put_u16(cell, (uint16_t)op->klen);
    cell[2] = inl ? 0 : 1;
    kv_put_u32(cell + 3, (uint32_t)op->vlen);
    memcpy(cell + 7, op->key, op->klen);
    if (inl) {
        if (op->vlen)
            memcpy(cell + 7 + op->klen, op->val, op->vlen);
    } else {
        uint32_t first;
        if ((s = ovfl_write(db, op->val, op->vlen, &first)) != KV_OK)
            return s;
        kv_put_u32(cell + 7 + op->klen, first);
    }
    if ((s = bt_txn_touch(db, f, false)) != KV_OK)
        return s;
    if (found) {
        if (bt_cell_size(p, i) == clen) {
            memcpy(p + pg_slot(p, i), cell, clen);
            return KV_OK;
        }
        bt_pg_remove_cell(p, i, db->ps);
    } else {
        db->meta.key_count++;
    }
    return node_insert(db, f, i, cell, clen, res);
}

/* ---- rebalancing after an underflow of child position c of parent pf ---- */

static kv_status rebalance(bt_db *db, bt_frame *pf, unsigned c, bt_res *res)
{
    uint8_t *pp = pf->data;
    unsigned n = pg_n(pp);
    if (n == 0)
        return KV_OK;
    unsigned li = c < n ? c : c - 1, ri = li + 1;
    bt_frame *lf = NULL, *rf = NULL;
    kv_status s = bt_pool_get(&db->pool, child_at(pp, li), &lf);
    if (s == KV_OK)
        s = bt_pool_get(&db->pool, child_at(pp, ri), &rf);
    if (s != KV_OK) {
        pool_unpin(lf);
        return s;
    }
    uint8_t *lc = db->sc[0], *rc = db->sc[1], *sepcell = db->sc[3];
    memcpy(lc, lf->data, db->ps);
    memcpy(rc, rf->data, db->ps);
    int level = pg_level(lc);
    bool leaf = level == 0;
    if (pg_type(lc) != pg_type(rc) || pg_level(rc) != level) {
        s = kv_error(KV_CORRUPTION, "%s: siblings %u and %u differ in type", db->data_path,
                     lf->pgno, rf->pgno);
        goto out;
    }
    bt_cell *a = db->cl[0];
    size_t na = list_cells(lc, a);
    if (!leaf) {
        size_t sl;
        const uint8_t *sk = cell_key(pp, ri - 1, &sl);
        kv_put_u16(sepcell, (uint16_t)sl);
        kv_put_u32(sepcell + 2, pg_link(rc));
        memcpy(sepcell + 6, sk, sl);
        a[na].p = sepcell;
        a[na].len = (uint32_t)(6 + sl);
        na++;
    }
    na += list_cells(rc, a + na);
    size_t total = 0;
    for (size_t i = 0; i < na; i++)
        total += a[i].len + BT_SLOT;
    if (total <= db->usable) {
        /* Merge right into left; the parent loses the separator of right. */
        if ((s = bt_txn_touch(db, lf, false)) != KV_OK || (s = page_free(db, rf)) != KV_OK ||
            (s = bt_txn_touch(db, pf, false)) != KV_OK)
            goto out;
        bt_pg_build(lf->data, db->ps, lf->pgno, pg_type(lc), level, pg_link(lc), a, na);
        bt_pg_remove_cell(pp, ri - 1, db->ps);
        atomic_fetch_add_explicit(&db->merges, 1, memory_order_relaxed);
        goto out;
    }
    /* Redistribute; the parent's separator of right changes. */
    size_t k = choose_split(a, na, total, leaf);
    bt_res sep;
    if ((s = bt_txn_touch(db, lf, false)) != KV_OK || (s = bt_txn_touch(db, rf, false)) != KV_OK)
        goto out;
    if (leaf) {
        size_t al, bl;
        const uint8_t *ak = bcell_key(&a[k - 1], true, &al);
        const uint8_t *bk = bcell_key(&a[k], true, &bl);
        shortest_sep(ak, al, bk, bl, &sep);
        bt_pg_build(lf->data, db->ps, lf->pgno, BT_LEAF, 0, 0, a, k);
        bt_pg_build(rf->data, db->ps, rf->pgno, BT_LEAF, 0, 0, a + k, na - k);
    } else {
        size_t ul;
        const uint8_t *u = bcell_key(&a[k], false, &ul);
        memcpy(sep.sep, u, ul);
        sep.seplen = (uint16_t)ul;
        bt_pg_build(lf->data, db->ps, lf->pgno, BT_INTERNAL, level, pg_link(lc), a, k);
        bt_pg_build(rf->data, db->ps, rf->pgno, BT_INTERNAL, level, kv_get_u32(a[k].p + 2),
                    a + k + 1, na - k - 1);
    }
    atomic_fetch_add_explicit(&db->borrows, 1, memory_order_relaxed);
    /* Rewrite the parent with the new separator (it may now split). */
    uint8_t *pc = db->sc[2], *ncell = db->sc[3] + db->ps / 2;
    memcpy(pc, pp, db->ps);
    bt_cell *b = db->cl[1];
    size_t nb = list_cells(pc, b);
    kv_put_u16(ncell, sep.seplen);
    kv_put_u32(ncell + 2, rf->pgno);
    memcpy(ncell + 6, sep.sep, sep.seplen);
    b[ri - 1].p = ncell;
    b[ri - 1].len = 6u + sep.seplen;
    s = node_rewrite(db, pf, pg_level(pc), pg_link(pc), b, nb, res);
out:
    pool_unpin(lf);
    pool_unpin(rf);
    return s;
}

/* ---- the recursive descent ---- */

static kv_status modify(bt_db *db, uint32_t pgno, unsigned level, const bt_op *op, bt_res *res)
{
    res->split = res->underflow = false;
    bt_frame *f;
    kv_status s = bt_pool_get(&db->pool, pgno, &f);
    if (s != KV_OK)
        return s;
    uint8_t *p = f->data;
    if (pg_level(p) != level || pg_type(p) != (level ? BT_INTERNAL : BT_LEAF)) {
        pool_unpin(f);
        return kv_error(KV_CORRUPTION, "%s: page %u: expected a %s at level %u", db->data_path,
                        pgno, level ? "internal page" : "leaf", level);
    }
    if (level == 0) {
        s = leaf_modify(db, f, op, res);
    } else {
        unsigned c = bt_pg_upper_bound(p, op->key, op->klen);
        bt_res cr;
        s = modify(db, child_at(p, c), level - 1, op, &cr);
        if (s == KV_OK && cr.split) {
            uint8_t *cell = db->sc[3] + db->ps / 2;
            kv_put_u16(cell, cr.seplen);
            kv_put_u32(cell + 2, cr.right);
            memcpy(cell + 6, cr.sep, cr.seplen);
            s = node_insert(db, f, c, cell, 6u + cr.seplen, res);
        } else if (s == KV_OK && cr.underflow) {
            s = rebalance(db, f, c, res);
        }
    }
    if (s == KV_OK && !res->split && pgno != db->meta.root &&
        bt_pg_used(f->data, db->ps) < db->fill_min)
        res->underflow = true;
    pool_unpin(f);
    return s;
}

kv_status bt_tree_apply(bt_db *db, const bt_op *op)
{
    KV_ASSERT_RW_HELD(&db->tree);
    bt_res r;
    uint32_t root = db->meta.root;
    kv_status s = modify(db, root, db->meta.height - 1, op, &r);
    if (s != KV_OK)
        return s;
    bt_frame *f;
    if (r.split) {
        if ((s = page_alloc(db, BT_INTERNAL, (int)db->meta.height, &f)) != KV_OK)
            return s;
        pg_set_link(f->data, root);
        uint8_t *cell = db->sc[3];
        kv_put_u16(cell, r.seplen);
        kv_put_u32(cell + 2, r.right);
        memcpy(cell + 6, r.sep, r.seplen);
        bt_pg_insert_cell(f->data, 0, cell, 6u + r.seplen);
        db->meta.root = f->pgno;
        db->meta.height++;
        pool_unpin(f);
        return KV_OK;
    }
    if (db->meta.height > 1) {
        if ((s = bt_pool_get(&db->pool, root, &f)) != KV_OK)
            return s;
        if (pg_n(f->data) == 0) {
            uint32_t child = pg_link(f->data);
            s = page_free(db, f);
            if (s == KV_OK) {
                db->meta.root = child;
                db->meta.height--;
            }
        }
        pool_unpin(f);
    }
    return s;
}
