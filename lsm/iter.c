/* iter.c: iterators over internal keys: one SSTable, one level >= 1 (a concatenation of its
 * sorted, non-overlapping tables, LevelDB's LevelFileNumIterator + TwoLevelIterator), and the
 * merging iterator over any children (LevelDB's table/merger.cc; the smallest key wins, ties
 * go to the earlier child, which the caller orders newest first).
 *
 * Damage stops everything: a table iterator that meets a block failing its check becomes
 * invalid with KV_CORRUPTION (file and offset, kept with its message), and the merging
 * iterator then becomes invalid too instead of going on with the other children, so that a
 * scan never serves records past the damage or skips a damaged table's keys (docs/design.md
 * section 4). */
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

void lsm_it_free(lsm_it *it)
{
    if (it)
        it->ops->free(it);
}

/* ---- one table ---- */

typedef struct table_it {
    lsm_it base;
    lsm_file *f;
    sst_iter *si;
} table_it;

static void ti_seek_first(lsm_it *it)
{
    sst_iter_seek_first(((table_it *)it)->si);
}
static void ti_seek(lsm_it *it, const uint8_t *k, size_t n)
{
    sst_iter_seek(((table_it *)it)->si, k, n);
}
static bool ti_valid(const lsm_it *it)
{
    return sst_iter_valid(((const table_it *)it)->si);
}
static void ti_next(lsm_it *it)
{
    sst_iter_next(((table_it *)it)->si);
}
static const uint8_t *ti_key(const lsm_it *it, size_t *n)
{
    return sst_iter_key(((const table_it *)it)->si, n);
}
static const uint8_t *ti_value(const lsm_it *it, size_t *n)
{
    return sst_iter_value(((const table_it *)it)->si, n);
}
static kv_status ti_status(const lsm_it *it)
{
    return sst_iter_status(((const table_it *)it)->si);
}
static void ti_free(lsm_it *it)
{
    table_it *t = (table_it *)it;
    sst_iter_free(t->si);
    lsm_file_unref(t->f);
    free(t);
}
static const lsm_it_ops table_ops = {ti_seek_first, ti_seek,  ti_valid,  ti_next,
                                     ti_key,        ti_value, ti_status, ti_free};

lsm_it *lsm_table_iter(lsm_file *f)
{
    table_it *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->si = sst_iter_new(f->reader);
    if (!t->si) {
        free(t);
        return NULL;
    }
    t->base.ops = &table_ops;
    t->f = f;
    lsm_file_ref(f);
    return &t->base;
}

/* ---- one level >= 1 ---- */

typedef struct level_it {
    lsm_it base;
    lsm_version *v;   /* owner of files (a version's level), or NULL when files is our copy */
    lsm_file **files; /* sorted, non-overlapping */
    size_t n;
    size_t idx; /* current file, or n when done */
    sst_iter *si;
    kv_status status;
    kv_iter_error err;
} level_it;

static void li_fail(level_it *l, kv_status s)
{
    l->status = s;
    kv_iter_error_set(&l->err, s);
}

static void li_open(level_it *l, size_t idx)
{
    sst_iter_free(l->si);
    l->si = NULL;
    l->idx = idx;
    if (idx >= l->n)
        return;
    l->si = sst_iter_new(l->files[idx]->reader);
    if (!l->si) {
        li_fail(l, kv_error(KV_NOMEM, "level iterator: out of memory"));
        l->idx = l->n;
    }
}

/* Moves to later files while the current one is exhausted. */
static void li_skip(level_it *l)
{
    while (l->si && !sst_iter_valid(l->si)) {
        kv_status s = sst_iter_status(l->si);
        if (s != KV_OK) {
            li_fail(l, s);
            sst_iter_free(l->si);
            l->si = NULL;
            return;
        }
        li_open(l, l->idx + 1);
        if (l->si)
            sst_iter_seek_first(l->si);
    }
}

static void li_seek_first(lsm_it *it)
{
    level_it *l = (level_it *)it;
    if (l->status != KV_OK)
        return;
    li_open(l, 0);
    if (l->si)
        sst_iter_seek_first(l->si);
    li_skip(l);
}
static void li_seek(lsm_it *it, const uint8_t *k, size_t n)
{
    level_it *l = (level_it *)it;
    if (l->status != KV_OK)
        return;
    size_t lo = 0, hi = l->n; /* first file whose largest key >= k */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        lsm_file *f = l->files[mid];
        if (lsm_ikey_cmp(f->largest, f->largest_len, k, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    li_open(l, lo);
    if (l->si)
        sst_iter_seek(l->si, k, n);
    li_skip(l);
}
static bool li_valid(const lsm_it *it)
{
    const level_it *l = (const level_it *)it;
    return l->status == KV_OK && l->si && sst_iter_valid(l->si);
}
static void li_next(lsm_it *it)
{
    level_it *l = (level_it *)it;
    sst_iter_next(l->si);
    li_skip(l);
}
static const uint8_t *li_key(const lsm_it *it, size_t *n)
{
    return sst_iter_key(((const level_it *)it)->si, n);
}
static const uint8_t *li_value(const lsm_it *it, size_t *n)
{
    return sst_iter_value(((const level_it *)it)->si, n);
}
static kv_status li_status(const lsm_it *it)
{
    const level_it *l = (const level_it *)it;
    return l->status == KV_OK ? KV_OK : kv_iter_error_get(&l->err);
}
static void li_free(lsm_it *it)
{
    level_it *l = (level_it *)it;
    sst_iter_free(l->si);
    if (l->v)
        lsm_version_unref(l->v);
    else {
        for (size_t i = 0; i < l->n; i++)
            lsm_file_unref(l->files[i]);
        free(l->files);
    }
    free(l);
}
static const lsm_it_ops level_ops = {li_seek_first, li_seek,  li_valid,  li_next,
                                     li_key,        li_value, li_status, li_free};

lsm_it *lsm_level_iter(lsm_version *v, int level)
{
    level_it *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base.ops = &level_ops;
    l->v = v;
    l->files = v->files[level];
    l->n = v->n[level];
    l->idx = l->n;
    lsm_version_ref(v);
    return &l->base;
}

lsm_it *lsm_files_iter(lsm_file **files, size_t n)
{
    level_it *l = calloc(1, sizeof *l);
    lsm_file **copy = malloc((n ? n : 1) * sizeof *copy);
    if (!l || !copy) {
        free(l);
        free(copy);
        return NULL;
    }
    memcpy(copy, files, n * sizeof *copy);
    for (size_t i = 0; i < n; i++)
        lsm_file_ref(copy[i]);
    l->base.ops = &level_ops;
    l->files = copy;
    l->n = n;
    l->idx = n;
    return &l->base;
}

/* ---- merging ---- */

typedef struct merge_it {
    lsm_it base;
    lsm_it **c;
    size_t n;
    lsm_it *cur;   /* child with the smallest key, or NULL */
    lsm_it *error; /* the first child found stopped by an error, or NULL */
} merge_it;

static void mg_pick(merge_it *m)
{
    m->cur = NULL;
    if (m->error)
        return;
    const uint8_t *best = NULL;
    size_t blen = 0;
    for (size_t i = 0; i < m->n; i++) {
        lsm_it *c = m->c[i];
        if (!c->ops->valid(c)) {
            if (c->ops->status(c) != KV_OK) { /* damage: the merged order ends here */
                m->error = c;
                m->cur = NULL;
                return;
            }
            continue;
        }
        size_t kl;
        const uint8_t *k = c->ops->key(c, &kl);
        if (!best || lsm_ikey_cmp(k, kl, best, blen) < 0) {
            best = k;
            blen = kl;
            m->cur = c;
        }
    }
}
static void mg_seek_first(lsm_it *it)
{
    merge_it *m = (merge_it *)it;
    if (m->error)
        return;
    for (size_t i = 0; i < m->n; i++)
        m->c[i]->ops->seek_first(m->c[i]);
    mg_pick(m);
}
static void mg_seek(lsm_it *it, const uint8_t *k, size_t n)
{
    merge_it *m = (merge_it *)it;
    if (m->error)
        return;
    for (size_t i = 0; i < m->n; i++)
        m->c[i]->ops->seek(m->c[i], k, n);
    mg_pick(m);
}
static bool mg_valid(const lsm_it *it)
{
    return ((const merge_it *)it)->cur != NULL;
}
static void mg_next(lsm_it *it)
{
    merge_it *m = (merge_it *)it;
    m->cur->ops->next(m->cur);
    mg_pick(m);
}
static const uint8_t *mg_key(const lsm_it *it, size_t *n)
{
    lsm_it *c = ((const merge_it *)it)->cur;
    return c->ops->key(c, n);
}
static const uint8_t *mg_value(const lsm_it *it, size_t *n)
{
    lsm_it *c = ((const merge_it *)it)->cur;
    return c->ops->value(c, n);
}
static kv_status mg_status(const lsm_it *it)
{
    const merge_it *m = (const merge_it *)it;
    if (m->error)
        return m->error->ops->status(m->error);
    for (size_t i = 0; i < m->n; i++) {
        kv_status s = m->c[i]->ops->status(m->c[i]);
        if (s != KV_OK)
            return s;
    }
    return KV_OK;
}
static void mg_free(lsm_it *it)
{
    merge_it *m = (merge_it *)it;
    for (size_t i = 0; i < m->n; i++)
        lsm_it_free(m->c[i]);
    free(m->c);
    free(m);
}
static const lsm_it_ops merge_ops = {mg_seek_first, mg_seek,  mg_valid,  mg_next,
                                     mg_key,        mg_value, mg_status, mg_free};

lsm_it *lsm_merge_iter(lsm_it **children, size_t n)
{
    merge_it *m = calloc(1, sizeof *m);
    lsm_it **c = malloc((n ? n : 1) * sizeof *c);
    if (!m || !c) {
        free(m);
        free(c);
        for (size_t i = 0; i < n; i++)
            lsm_it_free(children[i]);
        return NULL;
    }
    memcpy(c, children, n * sizeof *c);
    m->base.ops = &merge_ops;
    m->c = c;
    m->n = n;
    return &m->base;
}
