/* memtable.c: the memtable, a skiplist of internal keys in an arena (LevelDB's db/skiplist.h
 * and db/memtable.cc). One writer inserts (the group-commit leader) while any number of readers
 * search without locks: a node is fully built before it is published with a release store, and
 * readers follow links with acquire loads. Nodes are never removed; the arena is freed with the
 * memtable when its last reference goes. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

#define MAX_HEIGHT  12
#define ARENA_BLOCK (64 * 1024)

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) uint8_t data[];
} arena_block;

typedef struct node {
    const uint8_t *key; /* internal key, followed by the value */
    uint32_t klen, vlen;
    _Atomic(struct node *) next[]; /* height entries */
} node;

struct lsm_mem {
    _Atomic int refs;
    arena_block *blocks;  /* head is the block being filled */
    _Atomic size_t usage; /* bytes of arena blocks (memory held) */
    _Atomic size_t used;  /* bytes handed out by the arena (how full the memtable is) */
    _Atomic uint64_t entries;
    _Atomic int height;
    uint64_t rnd;
    node *head;
};

static void *arena_alloc(lsm_mem *m, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    /* one writer: a load and a store, no locked read-modify-write */
    atomic_store_explicit(&m->used, atomic_load_explicit(&m->used, memory_order_relaxed) + n,
                          memory_order_relaxed);
    arena_block *b = m->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        atomic_fetch_add_explicit(&m->usage, sizeof *nb + cap, memory_order_relaxed);
        if (b && cap != ARENA_BLOCK) { /* a big one: keep filling the current block */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        m->blocks = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static node *new_node(lsm_mem *m, int height, size_t datalen)
{
    node *x = arena_alloc(m, sizeof(node) + (size_t)height * sizeof(_Atomic(node *)));
    if (!x)
        return NULL;
    uint8_t *d = datalen ? arena_alloc(m, datalen) : NULL;
    if (datalen && !d)
        return NULL;
    x->key = d;
    for (int i = 0; i < height; i++)
        atomic_init(&x->next[i], NULL);
    return x;
}

lsm_mem *lsm_mem_new(void)
{
    lsm_mem *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    atomic_init(&m->height, 1);
    m->rnd = 0x2545f4914f6cdd1dull;
    m->head = new_node(m, MAX_HEIGHT, 0);
    if (!m->head) {
        free(m);
        return NULL;
    }
    return m;
}

void lsm_mem_ref(lsm_mem *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void lsm_mem_unref(lsm_mem *m)
{
    if (!m)
        return;
    long left = (long)atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    arena_block *b = m->blocks;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    free(m);
}

size_t lsm_mem_usage(const lsm_mem *m)
{
    return atomic_load_explicit(&m->used, memory_order_relaxed);
}

size_t lsm_mem_memory(const lsm_mem *m)
{
    return atomic_load_explicit(&m->usage, memory_order_relaxed);
}

uint64_t lsm_mem_entries(const lsm_mem *m)
{
    return atomic_load_explicit(&m->entries, memory_order_relaxed);
}

static int random_height(lsm_mem *m)
{
    int h = 1;
    while (h < MAX_HEIGHT) {
        m->rnd ^= m->rnd << 13;
        m->rnd ^= m->rnd >> 7;
        m->rnd ^= m->rnd << 17;
        if (m->rnd % 4)
            break;
        h++;
    }
    return h;
}

static inline node *nxt(node *x, int i)
{
    return atomic_load_explicit(&x->next[i], memory_order_acquire);
}

/* First node >= key; fills prev[] when non-NULL. */
static node *find_ge(lsm_mem *m, const uint8_t *k, size_t klen, node **prev)
{
    node *x = m->head;
    int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        node *n = nxt(x, level);
        if (n && lsm_ikey_cmp(n->key, n->klen, k, klen) < 0) {
            x = n;
            continue;
        }
        if (prev)
            prev[level] = x;
        if (level == 0)
            return n;
        level--;
    }
}

bool lsm_mem_add(lsm_mem *m, uint64_t seq, int type, const uint8_t *ukey, size_t ulen,
                 const uint8_t *val, size_t vlen)
{
    size_t klen = ulen + 8;
    int h = random_height(m);
    node *x = new_node(m, h, klen + vlen);
    if (!x)
        return false;
    uint8_t *d = (uint8_t *)x->key;
    memcpy(d, ukey, ulen);
    kv_put_u64(d + ulen, lsm_trailer(seq, type));
    if (vlen)
        memcpy(d + klen, val, vlen);
    x->klen = (uint32_t)klen;
    x->vlen = (uint32_t)vlen;
    node *prev[MAX_HEIGHT];
    find_ge(m, d, klen, prev);
    int cur = atomic_load_explicit(&m->height, memory_order_relaxed);
    if (h > cur) {
        for (int i = cur; i < h; i++)
            prev[i] = m->head;
        atomic_store_explicit(&m->height, h, memory_order_relaxed);
    }
    for (int i = 0; i < h; i++) {
        atomic_store_explicit(&x->next[i], nxt(prev[i], i), memory_order_relaxed);
        atomic_store_explicit(&prev[i]->next[i], x, memory_order_release);
    }
    atomic_store_explicit(&m->entries, atomic_load_explicit(&m->entries, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return true;
}

int lsm_mem_get(lsm_mem *m, const uint8_t *ukey, size_t ulen, uint64_t seq, const uint8_t **val,
                size_t *vlen)
{
    uint8_t stack[256];
    kv_buf heap = {0};
    const uint8_t *k;
    size_t klen = ulen + 8;
    if (klen <= sizeof stack) {
        memcpy(stack, ukey, ulen);
        kv_put_u64(stack + ulen, lsm_trailer(seq, LSM_TYPE_VALUE));
        k = stack;
    } else {
        if (!lsm_ikey_append(&heap, ukey, ulen, seq, LSM_TYPE_VALUE))
            return -1;
        k = heap.data;
    }
    node *n = find_ge(m, k, klen, NULL);
    kv_buf_free(&heap);
    if (!n || lsm_ukey_cmp(n->key, n->klen - 8, ukey, ulen) != 0)
        return -1;
    uint64_t t = lsm_ikey_trailer(n->key, n->klen);
    if ((t & 0xff) == LSM_TYPE_DEL)
        return 0;
    *val = n->key + n->klen;
    *vlen = n->vlen;
    return 1;
}

/* ---- iterator ---- */

typedef struct mem_it {
    lsm_it base;
    lsm_mem *m;
    node *cur;
} mem_it;

static void mi_seek_first(lsm_it *it)
{
    mem_it *i = (mem_it *)it;
    i->cur = nxt(i->m->head, 0);
}
static void mi_seek(lsm_it *it, const uint8_t *k, size_t klen)
{
    mem_it *i = (mem_it *)it;
    i->cur = find_ge(i->m, k, klen, NULL);
}
static bool mi_valid(const lsm_it *it)
{
    return ((const mem_it *)it)->cur != NULL;
}
static void mi_next(lsm_it *it)
{
    mem_it *i = (mem_it *)it;
    i->cur = nxt(i->cur, 0);
}
static const uint8_t *mi_key(const lsm_it *it, size_t *klen)
{
    const node *n = ((const mem_it *)it)->cur;
    *klen = n->klen;
    return n->key;
}
static const uint8_t *mi_value(const lsm_it *it, size_t *vlen)
{
    const node *n = ((const mem_it *)it)->cur;
    *vlen = n->vlen;
    return n->key + n->klen;
}
static kv_status mi_status(const lsm_it *it)
{
    (void)it;
    return KV_OK;
}
static void mi_free(lsm_it *it)
{
    mem_it *i = (mem_it *)it;
    lsm_mem_unref(i->m);
    free(i);
}

static const lsm_it_ops mem_it_ops = {mi_seek_first, mi_seek,  mi_valid,  mi_next,
                                      mi_key,        mi_value, mi_status, mi_free};

lsm_it *lsm_mem_iter(lsm_mem *m)
{
    mem_it *i = calloc(1, sizeof *i);
    if (!i)
        return NULL;
    i->base.ops = &mem_it_ops;
    i->m = m;
    lsm_mem_ref(m);
    return &i->base;
}
