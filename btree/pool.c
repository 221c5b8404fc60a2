/* pool.c: the buffer pool of the btree engine: a hash on page number over frames, replaced
 * by CLOCK (second chance), with pins and dirty tracking.
 *
 * A hit takes the pool's read lock, pins the frame with an atomic increment and sets its
 * reference bit: no system call. A miss reads the page and checks its CRC and structure with
 * no lock held, then takes the write lock and picks a victim (unpinned, not dirty, reference
 * bit clear) to hold it (bt_pool_get explains when the copy may be used). A dirty page (newer
 * than its copy in the data file) is not evicted as it is: the writer writes cold dirty pages
 * back between groups once the log is durable up to their last change (steal, flush.c), which
 * keeps at least a quarter of the budget clean, and CLOCK then evicts them like any clean page.
 * So readers never wait for an fsync to find a frame, and the pool stays within its budget
 * whatever the share of dirty pages (only the pages of one group still being built, which
 * cannot be written before its commit record, may take it past: docs/btree.md section 3). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* A bucket holds its chain's first frame and that frame's page number, so that a hit on the
 * first frame (nearly every hit: see hash_of) compares the page number without loading the
 * frame's header, a cache miss per level of a descent (the page itself is at a fixed offset
 * from the frame, bt_frame_page). */
static bt_frame *lookup(const bt_pool *p, uint32_t pgno)
{
    const bt_bucket *b = &p->buckets[hash_of(p, pgno)];
    bt_frame *f = b->f;
    if (!f || b->pgno == pgno)
        return f;
    for (f = f->hnext; f; f = f->hnext)
        if (f->pgno == pgno)
            return f;
    return NULL;
}

static void unlink_frame(bt_pool *p, bt_frame *f)
{
    bt_bucket *b = &p->buckets[hash_of(p, f->pgno)];
    bt_frame **pp = &b->f;
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    b->pgno = b->f ? b->f->pgno : 0;
    f->hnext = NULL;
    f->pgno = NO_PAGE;
}

static void push_frame(bt_bucket *b, bt_frame *f)
{
    f->hnext = b->f;
    b->f = f;
    b->pgno = f->pgno;
}

static void link_frame(bt_pool *p, bt_frame *f, uint32_t pgno)
{
    f->pgno = pgno;
    push_frame(&p->buckets[hash_of(p, pgno)], f);
}

static bool rehash(bt_pool *p, size_t nb)
{
    bt_bucket *b = calloc(nb, sizeof *b);
    if (!b)
        return false;
    bt_bucket *old = p->buckets;
    size_t oldn = p->nbuckets;
    p->buckets = b;
    p->nbuckets = nb;
    for (size_t i = 0; i < oldn; i++) {
        bt_frame *f = old[i].f;
        while (f) {
            bt_frame *next = f->hnext;
            push_frame(&b[hash_of(p, f->pgno)], f);
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
    p->nbuckets = 64; /* doubled as frames are added (add_frame): memory follows use */
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    if (!p->buckets)
        return kv_error(KV_NOMEM, "btree: out of memory for the buffer pool");
    pthread_rwlock_init(&p->lock, NULL);
    return KV_OK;
}

void bt_pool_free(bt_pool *p)
{
    if (!p->buckets)
        return; /* never initialised */
    for (size_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i]); /* frames live in slabs */
    free(p->slabs);
    free(p->frames);
    free(p->buckets);
    pthread_rwlock_destroy(&p->lock);
    memset(p, 0, sizeof *p);
}

/* Frames are carved out of slabs of up to SLAB_BYTES, aligned to 2 MiB and advised for
 * transparent huge pages: a descent touches a random frame per level, and with 4 KiB pages
 * each of those was also a TLB miss (a page walk) on top of the cache misses. A frame is its
 * header (BT_FRAME_HDR bytes) followed by its page, at a fixed offset (see bt_frame_page). */
#define SLAB_ALIGN ((size_t)2 << 20)
#define SLAB_BYTES ((size_t)8 << 20)

static bt_frame *slab_frame(bt_pool *p)
{
    size_t fsz = BT_FRAME_HDR + p->ps;
    if (p->slab_left == 0) {
        size_t want = p->budget > p->nframes ? p->budget - p->nframes : 16;
        size_t n = SLAB_BYTES / fsz;
        if (want < n)
            n = want < 16 ? 16 : want;
        size_t bytes = n * fsz;
        size_t align = bytes >= SLAB_ALIGN ? SLAB_ALIGN : 64;
        bytes = (bytes + align - 1) & ~(align - 1); /* aligned_alloc: a multiple of align */
        if (p->nslabs == p->slabcap) {
            size_t cap = p->slabcap ? 2 * p->slabcap : 16;
            void **ns = realloc(p->slabs, cap * sizeof *ns);
            if (!ns)
                return NULL;
            p->slabs = ns;
            p->slabcap = cap;
        }
        uint8_t *slab = aligned_alloc(align, bytes);
        if (!slab)
            return NULL;
#ifdef MADV_HUGEPAGE
        if (align == SLAB_ALIGN)
            (void)madvise(slab, bytes, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
        p->slabs[p->nslabs++] = slab;
        p->slab_next = slab;
        p->slab_left = bytes / fsz;
    }
    bt_frame *f = (bt_frame *)p->slab_next;
    p->slab_next += fsz;
    p->slab_left--;
    return f;
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
    bt_frame *f = slab_frame(p);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    f->data = bt_frame_page(f);
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

/* Reads page pgno into buf and checks it: CRC, then (but for page 0) its structure. */
static kv_status load_page(bt_pool *p, uint32_t pgno, uint8_t *buf)
{
    uint64_t off = (uint64_t)pgno * p->ps;
    kv_status s = kv_file_read_exact(p->file, buf, p->ps, off);
    if (s == KV_OK && !bt_pg_crc_ok(buf, p->ps, pgno))
        s = kv_error(KV_CORRUPTION, "%s: page %u at offset %llu: crc mismatch", p->path, pgno,
                     (unsigned long long)off);
    const char *why = s == KV_OK && pgno ? bt_pg_sane(buf, p->ps, pgno) : NULL;
    if (why)
        s = kv_error(KV_CORRUPTION, "%s: page %u at offset %llu: %s", p->path, pgno,
                     (unsigned long long)off, why);
    return s;
}

/* Puts frame f (a victim or a fresh frame, write lock held) in the pool as a clean copy of
 * page pgno with `pins` pins. */
static void install(bt_pool *p, bt_frame *f, uint32_t pgno, int pins, uint8_t ref)
{
    f->dirty = false;
    f->lsn = 0;
    f->txn_mark = 0;
    f->mod_epoch = 0;
    atomic_store(&f->ref, ref);
    atomic_store(&f->pins, pins);
    link_frame(p, f, pgno);
}

void bt_pool_disk_write_begin(bt_pool *p)
{
    atomic_fetch_add(&p->disk_seq, 1); /* odd while the writes run */
}

void bt_pool_disk_write_end(bt_pool *p)
{
    atomic_fetch_add(&p->disk_seq, 1); /* even again */
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

    /* A miss reads and checks the page with no lock held, so that readers missing different
     * pages do not queue behind one another's pread and CRC; the frame is taken afterwards
     * under the write lock. The copy is only used when no write-back or checkpoint wrote to the
     * data file meanwhile (disk_seq unchanged and even): a page that is absent from the pool is
     * then exactly what the disk holds, since every newer version of a page stays in the pool,
     * dirty, until it is written back (and is evicted only afterwards, clean). Otherwise the
     * page is read again under the lock. */
    uint64_t seq = atomic_load(&p->disk_seq);
    uint8_t *buf = (seq & 1) ? NULL : malloc(p->ps);
    kv_status rs = buf ? load_page(p, pgno, buf) : KV_OK;

    pthread_rwlock_wrlock(&p->lock);
    f = lookup(p, pgno);
    if (f) {
        atomic_fetch_add_explicit(&f->pins, 1, memory_order_acquire);
        pthread_rwlock_unlock(&p->lock);
        free(buf);
        *out = f;
        return KV_OK;
    }
    bool fresh = buf && atomic_load(&p->disk_seq) == seq;
    if (fresh && rs != KV_OK) {
        pthread_rwlock_unlock(&p->lock);
        free(buf);
        return rs;
    }
    atomic_fetch_add_explicit(&p->misses, 1, memory_order_relaxed);
    f = victim(p);
    if (!f) {
        pthread_rwlock_unlock(&p->lock);
        free(buf);
        return kv_error(KV_NOMEM, "btree: out of memory for a page frame");
    }
    kv_status s = KV_OK;
    if (fresh)
        memcpy(f->data, buf, p->ps);
    else
        s = load_page(p, pgno, f->data);
    free(buf);
    if (s != KV_OK) {
        pthread_rwlock_unlock(&p->lock);
        return s;
    }
    install(p, f, pgno, 1, 1);
    pthread_rwlock_unlock(&p->lock);
    *out = f;
    return KV_OK;
}

size_t bt_pool_reserve(bt_pool *p, bt_frame **out, size_t n)
{
    size_t k = 0;
    pthread_rwlock_wrlock(&p->lock);
    while (k < n && p->nframes < p->budget) {
        bt_frame *f = add_frame(p);
        if (!f)
            break;
        atomic_store(&f->pins, 1); /* victim() passes it by until bt_pool_adopt */
        out[k++] = f;
    }
    pthread_rwlock_unlock(&p->lock);
    return k;
}

size_t bt_pool_adopt(bt_pool *p, uint32_t first, bt_frame *const *frames, const bool *ok, size_t n,
                     uint64_t seq)
{
    size_t adopted = 0;
    pthread_rwlock_wrlock(&p->lock);
    bool stale = atomic_load(&p->disk_seq) != seq || (seq & 1);
    for (size_t i = 0; i < n; i++) {
        bt_frame *f = frames[i];
        if (!stale && ok[i] && !lookup(p, first + (uint32_t)i)) {
            install(p, f, first + (uint32_t)i, 0, 0); /* not referenced yet: CLOCK's first pick */
            adopted++;
        } else {
            atomic_store(&f->pins, 0); /* in no chain: victim() hands it out first */
        }
    }
    pthread_rwlock_unlock(&p->lock);
    atomic_fetch_add_explicit(&p->warmed, adopted, memory_order_relaxed);
    return stale ? SIZE_MAX : adopted;
}

kv_status bt_pool_new(bt_pool *p, uint32_t pgno, bt_frame **out)
{
    pthread_rwlock_wrlock(&p->lock);
    bt_frame *f = lookup(p, pgno);
    if (!f) {
        f = victim(p);
        if (!f) {
            pthread_rwlock_unlock(&p->lock);
            return kv_error(KV_NOMEM, "btree: out of memory for a page frame");
        }
        f->dirty = false;
        f->lsn = 0;
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
    /* The reference bit only matters once the pool is nearly full (below its budget, victim()
     * takes a fresh frame and never runs the CLOCK; the write-back's CLOCK starts near it), and
     * reading it is a cache miss on the frame's header per level of a descent. */
    if (f && p->nframes >= p->ref_from && !atomic_load_explicit(&f->ref, memory_order_relaxed))
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
