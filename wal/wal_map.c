/* wal_map.c: the copy-on-write B-tree (see wal_map.h for why). Ownership rule: every node
 * pointer held by a parent, by the map or by a snapshot is one reference, and so is every entry
 * pointer held by a node. A node with one reference reached by the writer from the map's root is
 * the writer's alone and is changed in place; a shared node is copied first (own()), which gives
 * its children and entries one more reference each, so that sharing is pushed down a level.
 * Insertion and deletion are CLRS's single top-down passes (split a full child before entering
 * it; give a child with the minimum number of keys one more before entering it), so every node
 * the writer changes is on its path or a sibling of it, and is owned first. */
#include "wal_map.h"

#include <assert.h>
#include <stddef.h>
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

/* Compares k to key i of node n in memcmp-then-length order. Unequal zero-padded prefixes decide
 * (a shorter key padded with zeros sorts first, as it should); equal ones decide by length when
 * both keys fit in the 16 prefix bytes (the longer one only adds zero bytes). */
static inline int kcmp(const wal_key *k, const wal_node *n, int i)
{
    if (k->p0 != n->pfx[i][0])
        return k->p0 < n->pfx[i][0] ? -1 : 1;
    if (k->p1 != n->pfx[i][1])
        return k->p1 < n->pfx[i][1] ? -1 : 1;
    if (k->klen <= 16 && n->klen[i] <= 16)
        return (k->klen > n->klen[i]) - (k->klen < n->klen[i]);
    return kv_key_cmp(k->key, k->klen, n->e[i]->data, n->e[i]->klen);
}

/* The first key index i of n with k <= key i (n->n when none); *c gets the comparison of k with
 * key i (1 when i == n->n). A linear scan: the prefixes are consecutive in memory. */
static inline int lower(const wal_key *k, const wal_node *n, int *c)
{
    int i = 0;
    for (; i < n->n; i++) {
        int r = kcmp(k, n, i);
        if (r <= 0) {
            *c = r;
            return i;
        }
    }
    *c = 1;
    return i;
}

static inline void set_slot(wal_node *n, int i, wal_entry *e)
{
    wal_key k = mkkey(e->data, e->klen);
    n->e[i] = e;
    n->pfx[i][0] = k.p0;
    n->pfx[i][1] = k.p1;
    n->klen[i] = (uint16_t)e->klen;
}

/* Copies key slot j of b to slot i of a (the entry reference moves with it). */
static inline void move_slot(wal_node *a, int i, const wal_node *b, int j)
{
    a->e[i] = b->e[j];
    a->pfx[i][0] = b->pfx[j][0];
    a->pfx[i][1] = b->pfx[j][1];
    a->klen[i] = b->klen[j];
}

/* Moves key slots [from, n->n) of n by d places (d = 1: right, d = -1: left). */
static void shift_slots(wal_node *n, int from, int d)
{
    size_t cnt = (size_t)(n->n - from);
    memmove(&n->e[from + d], &n->e[from], cnt * sizeof n->e[0]);
    memmove(&n->pfx[from + d], &n->pfx[from], cnt * sizeof n->pfx[0]);
    memmove(&n->klen[from + d], &n->klen[from], cnt * sizeof n->klen[0]);
}

/* Moves child pointers [from, n->n] of n by d places. */
static void shift_children(wal_node *n, int from, int d)
{
    memmove(&n->c[from + d], &n->c[from], (size_t)(n->n + 1 - from) * sizeof n->c[0]);
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
    if (!e)
        return;
    long left = (long)atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left == 1) {
        atomic_fetch_sub_explicit(&m->mem, sizeof *e + e->klen + e->vlen, memory_order_relaxed);
        free(e);
    }
}

/* Slab sizes: the first holds WAL_SLAB_FIRST bytes of nodes and each next one twice as much, up
 * to WAL_SLAB_MAX: a small table stays small (a test opens hundreds), a large one costs one
 * malloc per 2 MiB of nodes. (2 MiB slabs aligned and advised as transparent huge pages were
 * tried: no measurable gain for the B-tree, whose top levels stay in cache; they did help the
 * binary tree it replaced.) */
#define WAL_SLAB_FIRST ((size_t)64 << 10)
#define WAL_SLAB_MAX   ((size_t)2 << 20)

struct wal_slab {
    wal_slab *next;
    size_t cap; /* nodes in this slab */
    wal_node nodes[];
};

/* Pops a free node or carves one from a slab. Writer only (write lock held, or the map not yet
 * shared). NULL when out of memory. */
static wal_node *node_alloc(wal_map *m)
{
    wal_node *n = m->free_local;
    if (!n)
        n = atomic_exchange_explicit(&m->free_remote, NULL, memory_order_acquire);
    if (n) {
        m->free_local = n->c[0];
        return n;
    }
    if (!m->slabs || m->slab_used == m->slabs->cap) {
        size_t bytes = WAL_SLAB_FIRST;
        if (m->slabs) {
            size_t last = offsetof(wal_slab, nodes) + m->slabs->cap * sizeof(wal_node);
            bytes = last >= WAL_SLAB_MAX / 2 ? WAL_SLAB_MAX : 2 * last;
        }
        wal_slab *sl = malloc(bytes);
        if (!sl)
            return NULL;
        sl->cap = (bytes - offsetof(wal_slab, nodes)) / sizeof(wal_node);
        sl->next = m->slabs;
        m->slabs = sl;
        m->slab_used = 0;
    }
    return &m->slabs->nodes[m->slab_used++];
}

static wal_node *node_new(wal_map *m, bool leaf)
{
    wal_node *n = node_alloc(m);
    if (!n)
        return NULL;
    atomic_init(&n->ref, 1);
    n->n = 0;
    n->leaf = leaf;
    n->c[0] = NULL;
    atomic_fetch_add_explicit(&m->mem, sizeof *n, memory_order_relaxed);
    return n;
}

/* Returns n's memory to the pool (not its children or entries); any thread (a snapshot's last
 * release runs on the reader's). */
static void node_free(wal_map *m, wal_node *n)
{
    atomic_fetch_sub_explicit(&m->mem, sizeof *n, memory_order_relaxed);
    wal_node *head = atomic_load_explicit(&m->free_remote, memory_order_relaxed);
    do
        n->c[0] = head;
    while (!atomic_compare_exchange_weak_explicit(&m->free_remote, &head, n, memory_order_release,
                                                  memory_order_relaxed));
}

/* Drops a reference to n; at zero drops its entries and children (recursion depth: the tree's
 * height, at most 22). */
static void node_unref(wal_map *m, wal_node *n)
{
    if (!n)
        return;
    long left = (long)atomic_fetch_sub_explicit(&n->ref, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    for (int i = 0; i < n->n; i++)
        wal_entry_unref(m, n->e[i]);
    if (!n->leaf)
        for (int i = 0; i <= n->n; i++)
            node_unref(m, n->c[i]);
    node_free(m, n);
}

/* Makes the owned reference t exclusive: t itself when nobody else holds it, else a copy
 * (NULL when out of memory; t is then unchanged and still owned). */
static wal_node *own(wal_map *m, wal_node *t)
{
    if (atomic_load_explicit(&t->ref, memory_order_acquire) == 1)
        return t;
    wal_node *c = node_new(m, t->leaf);
    if (!c)
        return NULL;
    c->n = t->n;
    for (int i = 0; i < t->n; i++) {
        move_slot(c, i, t, i);
        atomic_fetch_add_explicit(&t->e[i]->ref, 1, memory_order_relaxed);
    }
    if (!t->leaf)
        for (int i = 0; i <= t->n; i++) {
            c->c[i] = t->c[i];
            atomic_fetch_add_explicit(&t->c[i]->ref, 1, memory_order_relaxed);
        }
    node_unref(m, t);
    return c;
}

/* Splits the full, owned child y = x->c[i] of the owned, non-full x: its upper WAL_BT_T - 1 keys
 * go to a new right sibling and its middle key up into x at i. False when out of memory
 * (nothing changed). */
static bool split_child(wal_map *m, wal_node *x, int i)
{
    wal_node *y = x->c[i];
    wal_node *z = node_new(m, y->leaf);
    if (!z)
        return false;
    z->n = WAL_BT_T - 1;
    for (int j = 0; j < WAL_BT_T - 1; j++)
        move_slot(z, j, y, j + WAL_BT_T);
    if (!y->leaf)
        for (int j = 0; j < WAL_BT_T; j++)
            z->c[j] = y->c[j + WAL_BT_T];
    y->n = WAL_BT_T - 1;
    shift_children(x, i + 1, 1);
    shift_slots(x, i, 1);
    move_slot(x, i, y, WAL_BT_T - 1);
    x->c[i + 1] = z;
    x->n++;
    return true;
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
        int c;
        int i = lower(&k, t, &c);
        if (c == 0)
            return t->e[i];
        t = t->leaf ? NULL : t->c[i];
    }
    return NULL;
}

/* Out-of-memory handling: every allocation failure leaves a valid tree (with possibly some
 * nodes copied or split in advance, which changes no key) and reports false; the caller treats
 * it as a failed apply of an already-logged batch (it poisons the engine). */
bool wal_map_put(wal_map *m, wal_entry *e)
{
    wal_key k = mkkey(e->data, e->klen);
    if (!m->root) {
        wal_node *r = node_new(m, true);
        if (!r)
            return false;
        set_slot(r, 0, e);
        r->n = 1;
        m->root = r;
        m->count = 1;
        return true;
    }
    wal_node *x = own(m, m->root);
    if (!x)
        return false;
    m->root = x;
    if (x->n == WAL_BT_MAX) {
        wal_node *s = node_new(m, false);
        if (!s)
            return false;
        s->c[0] = x;
        if (!split_child(m, s, 0)) {
            node_free(m, s);
            return false;
        }
        m->root = x = s;
    }
    for (;;) {
        int c;
        int i = lower(&k, x, &c);
        if (c == 0) {
            wal_entry_unref(m, x->e[i]);
            set_slot(x, i, e);
            return true;
        }
        if (x->leaf) {
            shift_slots(x, i, 1);
            set_slot(x, i, e);
            x->n++;
            m->count++;
            return true;
        }
        wal_node *ch = own(m, x->c[i]);
        if (!ch)
            return false;
        x->c[i] = ch;
        if (ch->n == WAL_BT_MAX) {
            if (!split_child(m, x, i))
                return false;
            c = kcmp(&k, x, i);
            if (c == 0) {
                wal_entry_unref(m, x->e[i]);
                set_slot(x, i, e);
                return true;
            }
            ch = x->c[c < 0 ? i : i + 1];
        }
        x = ch;
    }
}

/* Merges key i of the owned x and its owned children c[i], c[i + 1] (both with WAL_BT_T - 1
 * keys) into c[i]; x loses key i and child i + 1 (whose node is freed). */
static void merge(wal_map *m, wal_node *x, int i)
{
    wal_node *y = x->c[i], *z = x->c[i + 1];
    move_slot(y, y->n, x, i);
    for (int j = 0; j < z->n; j++)
        move_slot(y, y->n + 1 + j, z, j);
    if (!y->leaf)
        for (int j = 0; j <= z->n; j++)
            y->c[y->n + 1 + j] = z->c[j];
    y->n = (uint8_t)(y->n + 1 + z->n);
    shift_slots(x, i + 1, -1);
    shift_children(x, i + 2, -1);
    x->n--;
    node_free(m, z);
}

/* The largest (last) or smallest (first) entry of the subtree t. */
static wal_entry *edge_entry(wal_node *t, bool last)
{
    while (!t->leaf)
        t = t->c[last ? t->n : 0];
    return t->e[last ? t->n - 1 : 0];
}

/* Deletes key k from the subtree of the owned x (the root, or a node with at least WAL_BT_T
 * keys), top-down. False when out of memory. */
static bool del_from(wal_map *m, wal_node *x, const wal_key *key)
{
    wal_key k = *key;
    for (;;) {
        int c;
        int i = lower(&k, x, &c);
        if (x->leaf) {
            if (c == 0) {
                wal_entry_unref(m, x->e[i]);
                shift_slots(x, i + 1, -1);
                x->n--;
            }
            return true;
        }
        wal_node *y = own(m, x->c[i]);
        if (!y)
            return false;
        x->c[i] = y;
        if (c == 0) {
            /* The key is in inner node x: replace it by its predecessor (or successor) and delete
             * that one from the child, or merge the two children around it and go down. */
            wal_node *z = own(m, x->c[i + 1]);
            if (!z)
                return false;
            x->c[i + 1] = z;
            if (y->n >= WAL_BT_T || z->n >= WAL_BT_T) {
                bool pred = y->n >= WAL_BT_T;
                wal_entry *p = edge_entry(pred ? y : z, pred);
                atomic_fetch_add_explicit(&p->ref, 1, memory_order_relaxed);
                wal_entry_unref(m, x->e[i]);
                set_slot(x, i, p);
                k = mkkey(p->data, p->klen);
                x = pred ? y : z;
                continue;
            }
            merge(m, x, i);
            x = y;
            continue;
        }
        if (y->n == WAL_BT_T - 1) {
            /* Give y one more key before entering it: from a sibling with more than the minimum
             * through x, or by merging with a sibling. */
            if (i > 0 && x->c[i - 1]->n >= WAL_BT_T) {
                wal_node *l = own(m, x->c[i - 1]);
                if (!l)
                    return false;
                x->c[i - 1] = l;
                shift_slots(y, 0, 1);
                if (!y->leaf)
                    shift_children(y, 0, 1);
                move_slot(y, 0, x, i - 1);
                if (!y->leaf)
                    y->c[0] = l->c[l->n];
                y->n++;
                move_slot(x, i - 1, l, l->n - 1);
                l->n--;
            } else if (i < x->n && x->c[i + 1]->n >= WAL_BT_T) {
                wal_node *r = own(m, x->c[i + 1]);
                if (!r)
                    return false;
                x->c[i + 1] = r;
                move_slot(y, y->n, x, i);
                if (!y->leaf)
                    y->c[y->n + 1] = r->c[0];
                y->n++;
                move_slot(x, i, r, 0);
                shift_slots(r, 1, -1);
                if (!r->leaf)
                    shift_children(r, 1, -1);
                r->n--;
            } else if (i < x->n) {
                wal_node *r = own(m, x->c[i + 1]);
                if (!r)
                    return false;
                x->c[i + 1] = r;
                merge(m, x, i);
            } else {
                wal_node *l = own(m, x->c[i - 1]);
                if (!l)
                    return false;
                x->c[i - 1] = l;
                merge(m, x, i - 1);
                y = l;
            }
        }
        x = y;
    }
}

bool wal_map_del(wal_map *m, const void *key, size_t klen)
{
    if (!find(m->root, key, klen))
        return true;
    wal_node *r = own(m, m->root);
    if (!r)
        return false;
    m->root = r;
    wal_key k = mkkey(key, klen);
    bool ok = del_from(m, r, &k);
    if (r->n == 0) { /* the root lost its last key: the tree shrinks by a level (or empties) */
        m->root = r->leaf ? NULL : r->c[0];
        node_free(m, r);
    }
    if (ok)
        m->count--;
    return ok;
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

bool wal_map_build(wal_map *m, wal_entry **sorted, size_t n, uint64_t applied_lsn)
{
    pthread_rwlock_wrlock(&m->lock);
    node_unref(m, m->root); /* the map is empty (open loads SNAPSHOT first): a no-op */
    m->root = NULL;
    m->count = 0;
    bool ok = true;
    /* Each entry gets one more reference for the tree, so that a failure can drop the tree built
     * so far and leave the caller's references as they were. */
    for (size_t i = 0; i < n && ok; i++) {
        atomic_fetch_add_explicit(&sorted[i]->ref, 1, memory_order_relaxed);
        ok = wal_map_put(m, sorted[i]);
        if (!ok)
            wal_entry_unref(m, sorted[i]);
    }
    if (!ok) {
        node_unref(m, m->root);
        m->root = NULL;
        m->count = 0;
    } else {
        for (size_t i = 0; i < n; i++)
            wal_entry_unref(m, sorted[i]); /* the caller's reference: the tree holds its own */
        m->applied_lsn = applied_lsn;
    }
    pthread_rwlock_unlock(&m->lock);
    return ok;
}

static void push_left(wal_cursor *c, wal_node *n)
{
    while (n && c->depth < (int)(sizeof c->st / sizeof c->st[0])) {
        c->st[c->depth].n = n;
        c->st[c->depth].i = 0;
        c->depth++;
        n = n->leaf ? NULL : n->c[0];
    }
}

/* Pops the levels whose keys are all visited. */
static void settle(wal_cursor *c)
{
    while (c->depth && c->st[c->depth - 1].i >= c->st[c->depth - 1].n->n)
        c->depth--;
}

void wal_cursor_first(wal_cursor *c, wal_node *root)
{
    c->depth = 0;
    push_left(c, root);
    settle(c);
}

void wal_cursor_seek(wal_cursor *c, wal_node *root, const void *key, size_t klen)
{
    c->depth = 0;
    wal_node *n = root;
    wal_key k = mkkey(key, klen);
    while (n && c->depth < (int)(sizeof c->st / sizeof c->st[0])) {
        int r;
        int i = lower(&k, n, &r);
        c->st[c->depth].n = n;
        c->st[c->depth].i = i;
        c->depth++;
        n = r == 0 || n->leaf ? NULL : n->c[i];
    }
    settle(c);
}

void wal_cursor_next(wal_cursor *c)
{
    if (!c->depth)
        return;
    wal_node *n = c->st[c->depth - 1].n;
    int i = ++c->st[c->depth - 1].i;
    if (!n->leaf)
        push_left(c, n->c[i]);
    settle(c);
}

typedef struct check_state {
    const wal_entry *prev;
    uint64_t count;
    int leaf_depth; /* depth of the first leaf met, -1 before */
    const char *err;
} check_state;

static void check_rec(wal_node *n, int depth, bool root, check_state *st)
{
    if (st->err)
        return;
    if (!n || atomic_load(&n->ref) < 1) {
        st->err = "missing node or node with no reference";
        return;
    }
    if (n->n > WAL_BT_MAX || n->n < (root ? 1 : WAL_BT_T - 1)) {
        st->err = "node fill out of bounds";
        return;
    }
    if (depth >= 24) {
        st->err = "tree deeper than 24 levels";
        return;
    }
    if (n->leaf) {
        if (st->leaf_depth < 0)
            st->leaf_depth = depth;
        else if (st->leaf_depth != depth) {
            st->err = "leaves at different depths";
            return;
        }
    }
    for (int i = 0; i <= n->n && !st->err; i++) {
        if (!n->leaf)
            check_rec(n->c[i], depth + 1, false, st);
        if (i == n->n || st->err)
            break;
        const wal_entry *e = n->e[i];
        if (!e || atomic_load(&e->ref) < 1) {
            st->err = "missing entry or entry with no reference";
            return;
        }
        wal_key k = mkkey(e->data, e->klen);
        if (n->pfx[i][0] != k.p0 || n->pfx[i][1] != k.p1 || n->klen[i] != e->klen) {
            st->err = "node key prefix differs from its key";
            return;
        }
        if (st->prev && kv_key_cmp(st->prev->data, st->prev->klen, e->data, e->klen) >= 0) {
            st->err = "keys out of order";
            return;
        }
        st->prev = e;
        st->count++;
    }
}

kv_status wal_map_check(wal_map *m)
{
    pthread_rwlock_rdlock(&m->lock);
    check_state st = {NULL, 0, -1, NULL};
    if (m->root)
        check_rec(m->root, 0, true, &st);
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
