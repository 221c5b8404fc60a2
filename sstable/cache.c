/* cache.c: the block cache, an LRU of decoded blocks with a byte budget split over 16 shards
 * (each with its own mutex, hash table and LRU list), after LevelDB's util/cache.cc. The cache
 * holds one reference to each block it keeps; a lookup returns another one, so a block evicted
 * while an iterator reads it stays alive until the iterator lets it go. Usage counts only the
 * blocks the cache holds, so it never exceeds the capacity. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sst_int.h"

#define SHARDS 16 /* at most; fewer for small caches so a shard holds several blocks */

typedef struct centry {
    uint64_t id, off;
    sst_block *b;
    struct centry *hnext;               /* hash chain */
    struct centry *lru_prev, *lru_next; /* LRU list; head.lru_next is the oldest */
} centry;

typedef struct shard {
    pthread_mutex_t mu;
    centry **table;
    size_t buckets, count;
    uint64_t usage, capacity;
    centry head; /* LRU sentinel */
} shard;

struct sst_cache {
    shard shards[SHARDS];
    unsigned n_shards; /* a power of two, 1 to SHARDS */
    uint64_t capacity;
    _Atomic uint64_t next_id;
    sst_counters counters;
};

static uint64_t mix(uint64_t id, uint64_t off)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull ^ off;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

sst_cache *sst_cache_new(uint64_t capacity)
{
    sst_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->capacity = capacity;
    c->n_shards = 1;
    while (c->n_shards < SHARDS && capacity / (c->n_shards * 2) >= 256 * 1024)
        c->n_shards *= 2;
    atomic_init(&c->next_id, 1);
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->capacity = i < (int)c->n_shards ? capacity / c->n_shards : 0;
        s->buckets = 256;
        s->table = calloc(s->buckets, sizeof *s->table);
        s->head.lru_next = s->head.lru_prev = &s->head;
        if (!s->table) {
            for (int j = 0; j <= i; j++) {
                free(c->shards[j].table);
                pthread_mutex_destroy(&c->shards[j].mu);
            }
            free(c);
            return NULL;
        }
    }
    return c;
}

void sst_cache_free(sst_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        centry *e = s->head.lru_next;
        while (e != &s->head) {
            centry *n = e->lru_next;
            sst_block_unref(e->b);
            free(e);
            e = n;
        }
        free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

uint64_t sst_cache_usage(sst_cache *c)
{
    uint64_t u = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        u += c->shards[i].usage;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
    return u;
}

uint64_t sst_cache_capacity(sst_cache *c)
{
    return c->capacity;
}

sst_counters *sst_cache_counters(sst_cache *c)
{
    return &c->counters;
}

uint64_t sst_cache_new_id(sst_cache *c)
{
    return atomic_fetch_add(&c->next_id, 1);
}

static void lru_remove(centry *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_append(shard *s, centry *e)
{
    e->lru_next = &s->head;
    e->lru_prev = s->head.lru_prev;
    e->lru_prev->lru_next = e;
    s->head.lru_prev = e;
}

static centry **find(shard *s, uint64_t h, uint64_t id, uint64_t off)
{
    centry **p = &s->table[(h >> 4) & (s->buckets - 1)];
    while (*p && ((*p)->id != id || (*p)->off != off))
        p = &(*p)->hnext;
    return p;
}

sst_block *sst_cache_lookup(sst_cache *c, uint64_t id, uint64_t off)
{
    uint64_t h = mix(id, off);
    shard *s = &c->shards[h % c->n_shards];
    sst_block *b = NULL;
    pthread_mutex_lock(&s->mu);
    centry *e = *find(s, h, id, off);
    if (e) {
        lru_remove(e);
        lru_append(s, e);
        b = e->b;
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(b ? &c->counters.cache_hits : &c->counters.cache_misses, 1,
                              memory_order_relaxed);
    return b;
}

static void grow(shard *s)
{
    size_t nb = s->buckets * 2;
    centry **t = calloc(nb, sizeof *t);
    if (!t)
        return; /* keep the longer chains */
    for (size_t i = 0; i < s->buckets; i++) {
        centry *e = s->table[i];
        while (e) {
            centry *n = e->hnext;
            size_t j = (mix(e->id, e->off) >> 4) & (nb - 1);
            e->hnext = t[j];
            t[j] = e;
            e = n;
        }
    }
    free(s->table);
    s->table = t;
    s->buckets = nb;
}

static void evict(shard *s, centry *e)
{
    uint64_t h = mix(e->id, e->off);
    centry **p = find(s, h, e->id, e->off);
    *p = e->hnext;
    lru_remove(e);
    s->usage -= e->b->size;
    s->count--;
    sst_block_unref(e->b);
    free(e);
}

void sst_cache_insert(sst_cache *c, uint64_t id, uint64_t off, sst_block *b)
{
    uint64_t h = mix(id, off);
    shard *s = &c->shards[h % c->n_shards];
    if (b->size > s->capacity)
        return;
    centry *e = malloc(sizeof *e);
    if (!e)
        return;
    e->id = id;
    e->off = off;
    e->b = b;
    pthread_mutex_lock(&s->mu);
    centry **p = find(s, h, id, off);
    if (*p) { /* another thread inserted it first */
        pthread_mutex_unlock(&s->mu);
        free(e);
        return;
    }
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    while (s->usage + b->size > s->capacity && s->head.lru_next != &s->head)
        evict(s, s->head.lru_next);
    p = find(s, h, id, off);
    e->hnext = NULL;
    *p = e;
    lru_append(s, e);
    s->usage += b->size;
    s->count++;
    if (s->count > s->buckets)
        grow(s);
    pthread_mutex_unlock(&s->mu);
}
