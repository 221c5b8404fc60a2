/* pool.c: the buffer pool of the btree engine: a hash on page number over frames, replaced
 * by CLOCK (second chance), with pins and dirty tracking.
 *
 * A hit takes the pool's read lock, pins the frame with an atomic increment and sets its
 * reference bit: no system call. A miss takes the write lock, picks a victim (unpinned, not
 * dirty, reference bit clear) and reads the page, checking its CRC. Dirty pages (changed since
 * the last checkpoint) are never evicted (no-steal): the log holds their images and the
 * checkpoint writes them, so the data file never holds a page whose log record is not
 * durable. When every frame is pinned or dirty the pool grows past its budget; the engine
 * checkpoints when dirty pages pass three quarters of the budget. */
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

#define NO_PAGE UINT32_MAX

/* The bucket of pgno: its low bits. There are at least twice as many buckets as frames, and a
 * B-tree's pages are numbered densely from 1, so the pages of a cached working set rarely share
 * a bucket, and the buckets of neighbouring pages share cache lines: a lookup in a warm tree
 * touches a small hot part of the bucket array instead of a random line of it (a multiplicative
 * hash scattered them, costing a cache miss per level of every lookup). */
static size_t hash_of(const bt_pool *p, uint32_t pgno)
{
    return (size_t)pgno & (p->nbuckets - 1);
}

static bt_frame *lookup(const bt_pool *p, uint32_t pgno)
{
    for (bt_frame *f = p->buckets[hash_of(p, pgno)]; f; f = f->hnext)
        if (f->pgno == pgno)
            return f;
    return NULL;
}

static void unlink_frame(bt_pool *p, bt_frame *f)
{
    bt_frame **pp = &p->buckets[hash_of(p, f->pgno)];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    f->hnext = NULL;
    f->pgno = NO_PAGE;
}

static void link_frame(bt_pool *p, bt_frame *f, uint32_t pgno)
{
    f->pgno = pgno;
    size_t h = hash_of(p, pgno);
    f->hnext = p->buckets[h];
    p->buckets[h] = f;
}

static bool rehash(bt_pool *p, size_t nb)
{
    bt_frame **b = calloc(nb, sizeof *b);
    if (!b)
        return false;
    bt_frame **old = p->buckets;
    size_t oldn = p->nbuckets;
    p->buckets = b;
    p->nbuckets = nb;
    for (size_t i = 0; i < oldn; i++) {
        bt_frame *f = old[i];
        while (f) {
            bt_frame *next = f->hnext;
            size_t h = hash_of(p, f->pgno);
            f->hnext = b[h];
            b[h] = f;
            f = next;
        }
    }
    free(old);
    return true;
}

kv_status bt_pool_init(bt_pool *p, uint32_t ps, uint64_t bytes, kv_file *file, const char *path)
{
    memset(p, 0, sizeof *p);
    p->ps = ps;
    p->budget = (size_t)(bytes / ps);
    if (p->budget < 16)
        p->budget = 16;
    p->file = file;
    p->path = path;
    p->nbuckets = 64;
    while (p->nbuckets < 2 * p->budget && p->nbuckets < (1u << 24))
        p->nbuckets <<= 1;
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    if (!p->buckets)
        return kv_error(KV_IO, "btree: out of memory for the buffer pool");
    pthread_rwlock_init(&p->lock, NULL);
    return KV_OK;
}

void bt_pool_free(bt_pool *p)
{
    if (!p->buckets)
        return; /* never initialised */
    for (size_t i = 0; i < p->nframes; i++) {
        free(p->frames[i]->data);
        free(p->frames[i]);
    }
    free(p->frames);
    free(p->buckets);
    pthread_rwlock_destroy(&p->lock);
    memset(p, 0, sizeof *p);
}

static bt_frame *add_frame(bt_pool *p)
{
    if (p->nframes == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        bt_frame **n = realloc(p->frames, cap * sizeof *n);
        if (!n)
            return NULL;
        p->frames = n;
        p->cap = cap;
    }
    if (p->nframes + 1 > p->nbuckets / 2 && !rehash(p, p->nbuckets * 2))
        return NULL;
    bt_frame *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->data = malloc(p->ps);
    if (!f->data) {
        free(f);
        return NULL;
    }
    f->pgno = NO_PAGE;
    p->frames[p->nframes++] = f;
    return f;
}

/* A frame to (re)use: a fresh one under budget, else a CLOCK victim, else a fresh one past the
 * budget. Write lock held. */
static bt_frame *victim(bt_pool *p)
{
    if (p->nframes < p->budget)
        return add_frame(p);
    for (size_t step = 0; step < 2 * p->nframes + 1; step++) {
        bt_frame *f = p->frames[p->hand];
        p->hand = (p->hand + 1) % p->nframes;
        if (f->dirty || atomic_load_explicit(&f->pins, memory_order_acquire) != 0)
            continue;
        if (f->pgno != NO_PAGE && atomic_exchange_explicit(&f->ref, 0, memory_order_relaxed))
            continue;
        if (f->pgno != NO_PAGE) {
            unlink_frame(p, f);
            atomic_fetch_add_explicit(&p->evictions, 1, memory_order_relaxed);
        }
        return f;
    }
    return add_frame(p);
}

void bt_pool_count_hits(bt_pool *p, uint64_t n)
{
    static _Atomic unsigned next_shard;
    static _Thread_local unsigned shard = UINT32_MAX;
    if (shard == UINT32_MAX)
        shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % 16;
    atomic_fetch_add_explicit(&p->hits[shard].n, n, memory_order_relaxed);
}

uint64_t bt_pool_hits(bt_pool *p)
{
    uint64_t n = 0;
    for (int i = 0; i < 16; i++)
        n += atomic_load_explicit(&p->hits[i].n, memory_order_relaxed);
    return n;
}

kv_status bt_pool_get(bt_pool *p, uint32_t pgno, bt_frame **out)
{
    pthread_rwlock_rdlock(&p->lock);
    bt_frame *f = lookup(p, pgno);
    if (f) {
        atomic_fetch_add_explicit(&f->pins, 1, memory_order_acquire);
        if (!atomic_load_explicit(&f->ref, memory_order_relaxed))
            atomic_store_explicit(&f->ref, 1, memory_order_relaxed);
        pthread_rwlock_unlock(&p->lock);
        bt_pool_count_hits(p, 1);
        *out = f;
        return KV_OK;
    }
    pthread_rwlock_unlock(&p->lock);

    pthread_rwlock_wrlock(&p->lock);
    f = lookup(p, pgno);
    if (f) {
        atomic_fetch_add_explicit(&f->pins, 1, memory_order_acquire);
        pthread_rwlock_unlock(&p->lock);
        *out = f;
        return KV_OK;
    }
    atomic_fetch_add_explicit(&p->misses, 1, memory_order_relaxed);
    f = victim(p);
    if (!f) {
        pthread_rwlock_unlock(&p->lock);
        return kv_error(KV_IO, "btree: out of memory for a page frame");
    }
    uint64_t off = (uint64_t)pgno * p->ps;
    kv_status s = kv_file_read_exact(p->file, f->data, p->ps, off);
    if (s == KV_OK && !bt_pg_crc_ok(f->data, p->ps, pgno))
        s = kv_error(KV_CORRUPTION, "%s: page %u at offset %llu: crc mismatch", p->path, pgno,
                     (unsigned long long)off);
    const char *why = s == KV_OK && pgno ? bt_pg_sane(f->data, p->ps, pgno) : NULL;
    if (why)
        s = kv_error(KV_CORRUPTION, "%s: page %u at offset %llu: %s", p->path, pgno,
                     (unsigned long long)off, why);
    if (s != KV_OK) {
        pthread_rwlock_unlock(&p->lock);
        return s;
    }
    f->dirty = false;
    f->txn_mark = 0;
    f->mod_epoch = 0;
    atomic_store(&f->ref, 1);
    atomic_store(&f->pins, 1);
    link_frame(p, f, pgno);
    pthread_rwlock_unlock(&p->lock);
    *out = f;
    return KV_OK;
}

kv_status bt_pool_new(bt_pool *p, uint32_t pgno, bt_frame **out)
{
    pthread_rwlock_wrlock(&p->lock);
    bt_frame *f = lookup(p, pgno);
    if (!f) {
        f = victim(p);
        if (!f) {
            pthread_rwlock_unlock(&p->lock);
            return kv_error(KV_IO, "btree: out of memory for a page frame");
        }
        f->dirty = false;
        f->txn_mark = 0;
        f->mod_epoch = 0;
        atomic_store(&f->pins, 0);
        link_frame(p, f, pgno);
    }
    memset(f->data, 0, p->ps);
    atomic_store(&f->ref, 1);
    atomic_fetch_add(&f->pins, 1);
    pthread_rwlock_unlock(&p->lock);
    *out = f;
    return KV_OK;
}

void bt_pool_set_dirty(bt_pool *p, bt_frame *f, bool dirty)
{
    pthread_rwlock_wrlock(&p->lock);
    if (f->dirty != dirty) {
        f->dirty = dirty;
        if (dirty)
            p->ndirty++;
        else
            p->ndirty--;
    }
    pthread_rwlock_unlock(&p->lock);
}

void bt_pool_drop(bt_pool *p, bt_frame *f)
{
    pthread_rwlock_wrlock(&p->lock);
    if (f->dirty) {
        f->dirty = false;
        p->ndirty--;
    }
    if (f->pgno != NO_PAGE)
        unlink_frame(p, f);
    pthread_rwlock_unlock(&p->lock);
}

bt_frame *bt_pool_find_locked(bt_pool *p, uint32_t pgno)
{
    bt_frame *f = lookup(p, pgno);
    if (f && !atomic_load_explicit(&f->ref, memory_order_relaxed))
        atomic_store_explicit(&f->ref, 1, memory_order_relaxed);
    return f;
}

bt_frame *bt_pool_peek(bt_pool *p, uint32_t pgno)
{
    pthread_rwlock_rdlock(&p->lock);
    bt_frame *f = lookup(p, pgno);
    pthread_rwlock_unlock(&p->lock);
    return f;
}
