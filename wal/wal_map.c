/* wal_map.c: the copy-on-write AVL tree (see wal_map.h for why). Ownership rule: every node
 * pointer held by a parent, by the map or by a snapshot is one reference. A node with one
 * reference reached by the writer from the map's root is the writer's alone and is changed in
 * place; a shared node is copied first (own()), which gives its children one more reference each,
 * so that sharing is pushed down to the next level. */
#include "wal_map.h"

#include <stdlib.h>
#include <string.h>

#include "coding.h"

/* A search key with its two big-endian prefix words (see wal_node.pfx). */
typedef struct wal_key {
    uint64_t p0, p1;
    const uint8_t *key;
    size_t klen;
} wal_key;

/* Big-endian word of key bytes [0, 8) of k (klen bytes), zero-padded. */
static inline uint64_t be_word(const uint8_t *k, size_t klen)
{
    if (klen >= 8)
        return (uint64_t)k[0] << 56 | (uint64_t)k[1] << 48 | (uint64_t)k[2] << 40 |
               (uint64_t)k[3] << 32 | (uint64_t)k[4] << 24 | (uint64_t)k[5] << 16 |
               (uint64_t)k[6] << 8 | (uint64_t)k[7];
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (i < klen ? k[i] : 0);
    return v;
}

static inline wal_key mkkey(const void *key, size_t klen)
{
    const uint8_t *k = key;
    wal_key w = {be_word(k, klen), klen > 8 ? be_word(k + 8, klen - 8) : 0, k, klen};
    return w;
}

/* Compares k to node n's key in memcmp-then-length order. Unequal zero-padded prefixes decide
 * (a shorter key padded with zeros sorts first, as it should); equal ones decide by length when
 * both keys fit in the 16 prefix bytes (the longer one only adds zero bytes). */
static inline int ncmp(const wal_key *k, const wal_node *n)
{
    if (k->p0 != n->pfx[0])
        return k->p0 < n->pfx[0] ? -1 : 1;
    if (k->p1 != n->pfx[1])
        return k->p1 < n->pfx[1] ? -1 : 1;
    if (k->klen <= 16 && n->klen <= 16)
        return (k->klen > n->klen) - (k->klen < n->klen);
    return kv_key_cmp(k->key, k->klen, n->e->data, n->e->klen);
}

static inline void set_entry(wal_node *n, wal_entry *e)
{
    n->e = e;
    if (e) {
        wal_key k = mkkey(e->data, e->klen);
        n->pfx[0] = k.p0;
        n->pfx[1] = k.p1;
        n->klen = (uint16_t)e->klen;
    } else {
        n->pfx[0] = n->pfx[1] = 0;
        n->klen = 0;
    }
}

wal_entry *wal_entry_new(wal_map *m, const void *key, size_t klen, const void *value, size_t vlen)
{
    wal_entry *e = malloc(sizeof *e + klen + vlen);
    if (!e)
        return NULL;
    atomic_init(&e->ref, 1);
    e->klen = (uint32_t)klen;
    e->vlen = vlen;
    memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, value, vlen);
    atomic_fetch_add_explicit(&m->mem, sizeof *e + klen + vlen, memory_order_relaxed);
    return e;
}

void wal_entry_unref(wal_map *m, wal_entry *e)
{
    if (e && atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel) == 1) {
        atomic_fetch_sub_explicit(&m->mem, sizeof *e + e->klen + e->vlen, memory_order_relaxed);
        free(e);
    }
}

#define WAL_SLAB_NODES 1024

struct wal_slab {
    wal_slab *next;
    wal_node nodes[WAL_SLAB_NODES];
};

/* Pops a free node or carves one from a slab. Writer only (write lock held, or the map not yet
 * shared). NULL when out of memory. */
static wal_node *node_alloc(wal_map *m)
{
    wal_node *n = m->free_local;
    if (!n)
        n = atomic_exchange_explicit(&m->free_remote, NULL, memory_order_acquire);
    if (n) {
        m->free_local = n->l;
        return n;
    }
    if (!m->slabs || m->slab_used == WAL_SLAB_NODES) {
        wal_slab *sl = malloc(sizeof *sl);
        if (!sl)
            return NULL;
        sl->next = m->slabs;
        m->slabs = sl;
        m->slab_used = 0;
    }
    return &m->slabs->nodes[m->slab_used++];
}

static wal_node *node_new(wal_map *m, wal_node *l, wal_entry *e, wal_node *r)
{
    wal_node *n = node_alloc(m);
    if (!n)
        return NULL;
    atomic_init(&n->ref, 1);
    n->l = l;
    n->r = r;
    set_entry(n, e);
    int hl = l ? l->height : 0, hr = r ? r->height : 0;
    n->height = (uint16_t)(1 + (hl > hr ? hl : hr));
    atomic_fetch_add_explicit(&m->mem, sizeof *n, memory_order_relaxed);
    return n;
}

/* Returns n to the pool; any thread (a snapshot's last release runs on the reader's). */
static void node_free(wal_map *m, wal_node *n)
{
    atomic_fetch_sub_explicit(&m->mem, sizeof *n, memory_order_relaxed);
    wal_node *head = atomic_load_explicit(&m->free_remote, memory_order_relaxed);
    do
        n->l = head;
    while (!atomic_compare_exchange_weak_explicit(&m->free_remote, &head, n, memory_order_release,
                                                  memory_order_relaxed));
}

static void node_unref(wal_map *m, wal_node *n)
{
    while (n && atomic_fetch_sub_explicit(&n->ref, 1, memory_order_acq_rel) == 1) {
        node_unref(m, n->l);
        wal_entry *e = n->e;
        wal_node *r = n->r;
        node_free(m, n);
        wal_entry_unref(m, e);
        n = r; /* tail iteration on the right child */
    }
}

static inline int h(const wal_node *n)
{
    return n ? n->height : 0;
}

static inline void upd(wal_node *n)
{
    int a = h(n->l), b = h(n->r);
    n->height = (uint16_t)(1 + (a > b ? a : b));
}

/* Makes the owned reference t exclusive: t itself when nobody else holds it, else a copy
 * (NULL when out of memory; t is then unchanged and still owned). */
static wal_node *own(wal_map *m, wal_node *t)
{
    if (atomic_load_explicit(&t->ref, memory_order_acquire) == 1)
        return t;
    wal_node *c = node_new(m, t->l, t->e, t->r);
    if (!c)
        return NULL;
    if (t->l)
        atomic_fetch_add_explicit(&t->l->ref, 1, memory_order_relaxed);
    if (t->r)
        atomic_fetch_add_explicit(&t->r->ref, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->e->ref, 1, memory_order_relaxed);
    node_unref(m, t);
    return c;
}

/* Rotations take an exclusive t; they may need to copy a child. On out of memory they return
 * t unchanged (still balanced enough to be a valid search tree). */
static wal_node *rot_right(wal_map *m, wal_node *t)
{
    wal_node *l = own(m, t->l);
    if (!l)
        return t;
    t->l = l->r;
    l->r = t;
    upd(t);
    upd(l);
    return l;
}

static wal_node *rot_left(wal_map *m, wal_node *t)
{
    wal_node *r = own(m, t->r);
    if (!r)
        return t;
    t->r = r->l;
    r->l = t;
    upd(t);
    upd(r);
    return r;
}

static wal_node *rebalance(wal_map *m, wal_node *t)
{
    upd(t);
    int bf = h(t->l) - h(t->r);
    if (bf > 1) {
        if (h(t->l->l) < h(t->l->r)) {
            wal_node *l = own(m, t->l);
            if (l)
                t->l = rot_left(m, l);
        }
        return rot_right(m, t);
    }
    if (bf < -1) {
        if (h(t->r->r) < h(t->r->l)) {
            wal_node *r = own(m, t->r);
            if (r)
                t->r = rot_right(m, r);
        }
        return rot_left(m, t);
    }
    return t;
}

/* Out-of-memory handling: before changing anything, put/del reserve the nodes they might need by
 * checking allocation up front would complicate the code; instead every allocation failure
 * leaves a valid tree (possibly with one copied path) and reports false, and the caller treats
 * it as a failed apply of an already-logged batch (it poisons the engine). */
static wal_node *ins(wal_map *m, wal_node *t, wal_entry *e, const wal_key *k, bool *added,
                     bool *oom)
{
    if (!t) {
        wal_node *n = node_new(m, NULL, e, NULL);
        if (!n)
            *oom = true;
        else
            *added = true;
        return n;
    }
    wal_node *x = own(m, t);
    if (!x) {
        *oom = true;
        return t;
    }
    int c = ncmp(k, x);
    if (c == 0) {
        wal_entry_unref(m, x->e);
        set_entry(x, e);
        return x;
    }
    /* When the changed child keeps its height, x keeps its height and balance: return without
     * touching the other child (a cache miss per level saved on the way back up). */
    if (c < 0) {
        int old = h(x->l);
        x->l = ins(m, x->l, e, k, added, oom);
        if (h(x->l) == old)
            return x;
    } else {
        int old = h(x->r);
        x->r = ins(m, x->r, e, k, added, oom);
        if (h(x->r) == old)
            return x;
    }
    return rebalance(m, x);
}

static wal_node *del_min(wal_map *m, wal_node *t, wal_entry **out, bool *oom)
{
    wal_node *x = own(m, t);
    if (!x) {
        *oom = true;
        return t;
    }
    if (!x->l) {
        *out = x->e;
        wal_node *r = x->r;
        node_free(m, x);
        return r;
    }
    x->l = del_min(m, x->l, out, oom);
    return rebalance(m, x);
}

static wal_node *del(wal_map *m, wal_node *t, const wal_key *k, bool *oom)
{
    if (!t)
        return NULL;
    wal_node *x = own(m, t);
    if (!x) {
        *oom = true;
        return t;
    }
    int c = ncmp(k, x);
    if (c < 0)
        x->l = del(m, x->l, k, oom);
    else if (c > 0)
        x->r = del(m, x->r, k, oom);
    else if (!x->l || !x->r) {
        wal_node *child = x->l ? x->l : x->r;
        wal_entry_unref(m, x->e);
        node_free(m, x);
        return child;
    } else {
        wal_entry *me = NULL;
        wal_node *nr = del_min(m, x->r, &me, oom);
        if (!me)
            return x;
        x->r = nr;
        wal_entry_unref(m, x->e);
        set_entry(x, me);
    }
    return rebalance(m, x);
}

void wal_map_init(wal_map *m)
{
    memset(m, 0, sizeof *m);
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&m->lock, &a);
    pthread_rwlockattr_destroy(&a);
}

void wal_map_destroy(wal_map *m)
{
    node_unref(m, m->root);
    m->root = NULL;
    while (m->slabs) {
        wal_slab *next = m->slabs->next;
        free(m->slabs);
        m->slabs = next;
    }
    m->free_local = NULL;
    atomic_store(&m->free_remote, NULL);
    pthread_rwlock_destroy(&m->lock);
}

void wal_map_begin(wal_map *m)
{
    pthread_rwlock_wrlock(&m->lock);
}

void wal_map_end(wal_map *m, uint64_t applied_lsn)
{
    m->applied_lsn = applied_lsn;
    pthread_rwlock_unlock(&m->lock);
}

static wal_entry *find(wal_node *t, const void *key, size_t klen)
{
    wal_key k = mkkey(key, klen);
    while (t) {
        int c = ncmp(&k, t);
        if (c == 0)
            return t->e;
        t = c < 0 ? t->l : t->r;
    }
    return NULL;
}

bool wal_map_put(wal_map *m, wal_entry *e)
{
    bool added = false, oom = false;
    if (!m->root) {
        m->root = node_new(m, NULL, e, NULL);
        if (!m->root)
            return false;
        m->count = 1;
        return true;
    }
    wal_key k = mkkey(e->data, e->klen);
    m->root = ins(m, m->root, e, &k, &added, &oom);
    if (added)
        m->count++;
    return !oom;
}

bool wal_map_del(wal_map *m, const void *key, size_t klen)
{
    if (!find(m->root, key, klen))
        return true;
    bool oom = false;
    wal_key k = mkkey(key, klen);
    m->root = del(m, m->root, &k, &oom);
    if (!oom)
        m->count--;
    return !oom;
}

bool wal_map_get(wal_map *m, const void *key, size_t klen, wal_entry **out)
{
    pthread_rwlock_rdlock(&m->lock);
    wal_entry *e = find(m->root, key, klen);
    if (e)
        atomic_fetch_add_explicit(&e->ref, 1, memory_order_relaxed);
    pthread_rwlock_unlock(&m->lock);
    *out = e;
    return e != NULL;
}

wal_node *wal_map_snapshot(wal_map *m, uint64_t *count, uint64_t *applied_lsn)
{
    pthread_rwlock_rdlock(&m->lock);
    wal_node *r = m->root;
    if (r)
        atomic_fetch_add_explicit(&r->ref, 1, memory_order_relaxed);
    if (count)
        *count = m->count;
    if (applied_lsn)
        *applied_lsn = m->applied_lsn;
    pthread_rwlock_unlock(&m->lock);
    return r;
}

void wal_map_release(wal_map *m, wal_node *root)
{
    node_unref(m, root);
}

/* Links the preallocated nodes pool[lo..hi) over sorted[lo..hi) into a balanced subtree. */
static wal_node *build(wal_node **pool, wal_entry **v, size_t lo, size_t hi)
{
    if (lo >= hi)
        return NULL;
    size_t mid = lo + (hi - lo) / 2;
    wal_node *n = pool[mid];
    n->l = build(pool, v, lo, mid);
    n->r = build(pool, v, mid + 1, hi);
    set_entry(n, v[mid]);
    upd(n);
    return n;
}

bool wal_map_build(wal_map *m, wal_entry **sorted, size_t n, uint64_t applied_lsn)
{
    wal_node **pool = n ? malloc(n * sizeof *pool) : NULL;
    if (n && !pool)
        return false;
    pthread_rwlock_wrlock(&m->lock); /* the pool is the writer's */
    for (size_t i = 0; i < n; i++) {
        pool[i] = node_new(m, NULL, NULL, NULL);
        if (!pool[i]) {
            for (size_t j = 0; j < i; j++)
                node_free(m, pool[j]);
            pthread_rwlock_unlock(&m->lock);
            free(pool);
            return false;
        }
    }
    wal_node *root = build(pool, sorted, 0, n);
    free(pool);
    node_unref(m, m->root);
    m->root = root;
    m->count = n;
    m->applied_lsn = applied_lsn;
    pthread_rwlock_unlock(&m->lock);
    return true;
}

static void push_left(wal_cursor *c, wal_node *n)
{
    while (n && c->depth < (int)(sizeof c->stack / sizeof *c->stack)) {
        c->stack[c->depth++] = n;
        n = n->l;
    }
}

void wal_cursor_first(wal_cursor *c, wal_node *root)
{
    c->depth = 0;
    push_left(c, root);
}

void wal_cursor_seek(wal_cursor *c, wal_node *root, const void *key, size_t klen)
{
    c->depth = 0;
    wal_node *n = root;
    wal_key k = mkkey(key, klen);
    while (n) {
        if (ncmp(&k, n) <= 0) {
            c->stack[c->depth++] = n;
            n = n->l;
        } else {
            n = n->r;
        }
    }
}

void wal_cursor_next(wal_cursor *c)
{
    if (!c->depth)
        return;
    wal_node *n = c->stack[--c->depth];
    push_left(c, n->r);
}

typedef struct check_state {
    const wal_entry *prev;
    uint64_t count;
    const char *err;
} check_state;

static int check_rec(wal_node *n, check_state *st)
{
    if (!n || st->err)
        return 0;
    if (atomic_load(&n->ref) < 1 || !n->e || atomic_load(&n->e->ref) < 1) {
        st->err = "node or entry with no reference";
        return 0;
    }
    wal_key k = mkkey(n->e->data, n->e->klen);
    if (n->pfx[0] != k.p0 || n->pfx[1] != k.p1 || n->klen != n->e->klen) {
        st->err = "node key prefix differs from its key";
        return 0;
    }
    int hl = check_rec(n->l, st);
    if (st->err)
        return 0;
    if (st->prev && kv_key_cmp(st->prev->data, st->prev->klen, n->e->data, n->e->klen) >= 0) {
        st->err = "keys out of order";
        return 0;
    }
    st->prev = n->e;
    st->count++;
    int hr = check_rec(n->r, st);
    if (st->err)
        return 0;
    int hh = 1 + (hl > hr ? hl : hr);
    if (n->height != hh)
        st->err = "stored height differs from the real height";
    else if (hl - hr > 1 || hr - hl > 1)
        st->err = "AVL balance violated";
    return hh;
}

kv_status wal_map_check(wal_map *m)
{
    pthread_rwlock_rdlock(&m->lock);
    check_state st = {0};
    check_rec(m->root, &st);
    uint64_t count = m->count;
    pthread_rwlock_unlock(&m->lock);
    if (st.err)
        return kv_error(KV_CORRUPTION, "wal memtable: %s (after %llu keys in order)", st.err,
                        (unsigned long long)st.count);
    if (st.count != count)
        return kv_error(KV_CORRUPTION, "wal memtable: %llu keys found, %llu counted",
                        (unsigned long long)st.count, (unsigned long long)count);
    return KV_OK;
}
