/* bc_index.c: the sorted key index beside the keydir (see bc_index.h). */
#include "bc_index.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"

#define IX_MIN_LIMIT 256

static bc_ix_run *run_new(size_t n, size_t key_bytes)
{
    bc_ix_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ents = malloc((n ? n : 1) * sizeof *r->ents);
    r->keys = malloc(key_bytes ? key_bytes : 1);
    if (!r->ents || !r->keys) {
        free(r->ents);
        free(r->keys);
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    return r;
}

void bc_ix_run_unref(bc_ix_run *r)
{
    if (!r)
        return;
    long left = (long)atomic_fetch_sub(&r->refs, 1);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    free(r->ents);
    free(r->keys);
    free(r);
}

static bc_ix_run *run_ref(bc_ix_run *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

static size_t isqrt(size_t n)
{
    size_t r = 0;
    while ((r + 1) * (r + 1) <= n)
        r++;
    return r;
}

static void set_limit(bc_index *ix, size_t live)
{
    size_t s = isqrt(live);
    ix->limit = s < IX_MIN_LIMIT ? IX_MIN_LIMIT : s;
}

bool bc_ix_init(bc_index *ix)
{
    memset(ix, 0, sizeof *ix);
    ix->limit = IX_MIN_LIMIT;
    return pthread_mutex_init(&ix->mu, NULL) == 0;
}

static void delta_clear(bc_index *ix)
{
    ix->npool = 0;
    ix->dkeys_len = 0;
    bc_ix_run_unref(ix->frozen);
    ix->frozen = NULL;
}

/* Forgets everything: the next snapshot rebuilds from the keydir. */
static void ix_drop(bc_index *ix)
{
    delta_clear(ix);
    bc_ix_run_unref(ix->base);
    ix->base = NULL;
    free(ix->pool);
    free(ix->order);
    free(ix->dkeys);
    ix->pool = NULL;
    ix->order = NULL;
    ix->dkeys = NULL;
    ix->cappool = ix->dkeys_cap = 0;
    if (ix->built)
        ix->drops++;
    ix->built = false;
}

void bc_ix_free(bc_index *ix)
{
    ix_drop(ix);
    pthread_mutex_destroy(&ix->mu);
}

uint64_t bc_ix_prefix(const void *key, size_t klen)
{
    const uint8_t *p = key;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (i < klen ? p[i] : 0);
    return v;
}

size_t bc_ix_lower_bound(const bc_ix_run *r, const void *key, size_t klen)
{
    bc_ix_ent k = {.pfx = bc_ix_prefix(key, klen), .key = key, .klen = (uint32_t)klen};
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bc_ix_cmp(&r->ents[mid], &k) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Position in order[] of the first delta entry >= key; *found when equal. */
static size_t delta_find(const bc_index *ix, const void *key, size_t klen, bool *found)
{
    size_t lo = 0, hi = ix->npool;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const bc_ix_dent *d = &ix->pool[ix->order[mid]];
        int c = kv_key_cmp(ix->dkeys + d->koff, d->klen, key, klen);
        if (c < 0) {
            lo = mid + 1;
        } else {
            if (c == 0) {
                *found = true;
                return mid;
            }
            hi = mid;
        }
    }
    return lo;
}

/* Freezes the delta into a sorted run (keys copied). NULL when out of memory. */
static bc_ix_run *delta_freeze(const bc_index *ix)
{
    bc_ix_run *r = run_new(ix->npool, ix->dkeys_len);
    if (!r)
        return NULL;
    if (ix->dkeys_len)
        memcpy(r->keys, ix->dkeys, ix->dkeys_len);
    r->key_bytes = ix->dkeys_len;
    for (size_t i = 0; i < ix->npool; i++) {
        const bc_ix_dent *d = &ix->pool[ix->order[i]];
        r->ents[i] = (bc_ix_ent){.pfx = bc_ix_prefix(r->keys + d->koff, d->klen),
                                 .key = r->keys + d->koff,
                                 .klen = d->klen,
                                 .loc = d->loc,
                                 .tomb = d->tomb};
    }
    r->n = ix->npool;
    return r;
}

/* Merges the delta into a new base: one linear pass over both sorted runs. */
static bool ix_merge(bc_index *ix)
{
    bc_ix_run *b = ix->base;
    bc_ix_run *nb = run_new(b->n + ix->npool, b->key_bytes + ix->dkeys_len);
    if (!nb)
        return false;
    size_t i = 0, j = 0, n = 0, kb = 0;
    while (i < b->n || j < ix->npool) {
        const bc_ix_ent *x = i < b->n ? &b->ents[i] : NULL;
        const bc_ix_dent *d = j < ix->npool ? &ix->pool[ix->order[j]] : NULL;
        const uint8_t *key;
        uint32_t klen;
        bc_loc loc;
        uint64_t pfx = 0;
        int c = !x ? 1 : !d ? -1 : kv_key_cmp(x->key, x->klen, ix->dkeys + d->koff, d->klen);
        if (c < 0) {
            key = x->key;
            klen = x->klen;
            loc = x->loc;
            pfx = x->pfx;
            i++;
        } else {
            if (c == 0)
                i++; /* the delta supersedes the base */
            j++;
            if (d->tomb)
                continue;
            key = ix->dkeys + d->koff;
            klen = d->klen;
            loc = d->loc;
            pfx = bc_ix_prefix(key, klen);
        }
        memcpy(nb->keys + kb, key, klen);
        nb->ents[n++] = (bc_ix_ent){.pfx = pfx, .key = nb->keys + kb, .klen = klen, .loc = loc};
        kb += klen;
    }
    nb->n = n;
    nb->key_bytes = kb;
    bc_ix_run_unref(ix->base);
    ix->base = nb;
    delta_clear(ix);
    ix->merges++;
    ix->snaps = 0;
    return true;
}

void bc_ix_note(bc_index *ix, const void *key, size_t klen, const bc_loc *loc, bool tomb,
                size_t live)
{
    if (!ix->built)
        return;
    bool found;
    size_t pos = delta_find(ix, key, klen, &found);
    if (found) {
        bc_ix_dent *d = &ix->pool[ix->order[pos]];
        d->loc = *loc;
        d->tomb = tomb;
    } else {
        if (ix->npool >= ix->limit) {
            /* Nobody scanned since the last merge: stop paying for the index. */
            if (!ix->snaps || !ix_merge(ix)) {
                ix_drop(ix);
                return;
            }
            set_limit(ix, live);
            pos = delta_find(ix, key, klen, &found);
        }
        if (ix->npool == ix->cappool) {
            size_t cap = ix->cappool ? ix->cappool * 2 : 64;
            bc_ix_dent *p = realloc(ix->pool, cap * sizeof *p);
            if (p)
                ix->pool = p;
            uint32_t *o = p ? realloc(ix->order, cap * sizeof *o) : NULL;
            if (!o) {
                ix_drop(ix);
                return;
            }
            ix->order = o;
            ix->cappool = cap;
        }
        if (ix->dkeys_len + klen > ix->dkeys_cap) {
            size_t cap = ix->dkeys_cap ? ix->dkeys_cap : 4096;
            while (cap < ix->dkeys_len + klen)
                cap *= 2;
            uint8_t *k = realloc(ix->dkeys, cap);
            if (!k) {
                ix_drop(ix);
                return;
            }
            ix->dkeys = k;
            ix->dkeys_cap = cap;
        }
        memcpy(ix->dkeys + ix->dkeys_len, key, klen);
        ix->pool[ix->npool] =
            (bc_ix_dent){.koff = ix->dkeys_len, .loc = *loc, .klen = (uint32_t)klen, .tomb = tomb};
        ix->dkeys_len += klen;
        memmove(ix->order + pos + 1, ix->order + pos, (ix->npool - pos) * sizeof *ix->order);
        ix->order[pos] = (uint32_t)ix->npool;
        ix->npool++;
    }
    bc_ix_run_unref(ix->frozen);
    ix->frozen = NULL;
}

typedef struct build_ctx {
    bc_ix_run *r;
    size_t kb;
} build_ctx;

static void build_one(void *ctx, const uint8_t *key, size_t klen, const bc_loc *loc, bool tomb)
{
    build_ctx *b = ctx;
    if (tomb)
        return;
    memcpy(b->r->keys + b->kb, key, klen);
    b->r->ents[b->r->n++] = (bc_ix_ent){.pfx = bc_ix_prefix(key, klen),
                                        .key = b->r->keys + b->kb,
                                        .klen = (uint32_t)klen,
                                        .loc = *loc};
    b->kb += klen;
}

static int ent_qcmp(const void *a, const void *b)
{
    return bc_ix_cmp(a, b);
}

static bool ix_build(bc_index *ix, const bc_keydir *kd)
{
    build_ctx b = {.r = run_new(kd->count, (size_t)kd->key_bytes)};
    if (!b.r)
        return false;
    bc_kd_foreach(kd, build_one, &b);
    b.r->key_bytes = b.kb;
    qsort(b.r->ents, b.r->n, sizeof *b.r->ents, ent_qcmp);
    ix->base = b.r;
    ix->built = true;
    ix->builds++;
    ix->snaps = 0;
    set_limit(ix, kd->count);
    return true;
}

bool bc_ix_snapshot(bc_index *ix, const bc_keydir *kd, bc_ix_run **base, bc_ix_run **delta)
{
    bool ok = true;
    pthread_mutex_lock(&ix->mu);
    if (!ix->built && !ix_build(ix, kd))
        ok = false;
    if (ok && !ix->frozen && !(ix->frozen = delta_freeze(ix)))
        ok = false;
    if (ok) {
        *base = run_ref(ix->base);
        *delta = run_ref(ix->frozen);
        ix->snaps++;
    }
    pthread_mutex_unlock(&ix->mu);
    return ok;
}

uint64_t bc_ix_bytes(const bc_index *ix)
{
    uint64_t n = 0;
    if (ix->base)
        n += ix->base->n * sizeof(bc_ix_ent) + ix->base->key_bytes;
    if (ix->frozen)
        n += ix->frozen->n * sizeof(bc_ix_ent) + ix->frozen->key_bytes;
    n += ix->cappool * (sizeof(bc_ix_dent) + sizeof(uint32_t)) + ix->dkeys_cap;
    return n;
}

bool bc_ix_verify(bc_index *ix, const bc_keydir *kd)
{
    pthread_mutex_lock(&ix->mu);
    bool ok = true;
    if (ix->built) {
        bc_ix_run *d = ix->frozen ? run_ref(ix->frozen) : delta_freeze(ix);
        const bc_ix_run *b = ix->base;
        size_t i = 0, j = 0, n = 0;
        const bc_ix_ent *prev = NULL;
        ok = d != NULL;
        while (ok && (i < b->n || (d && j < d->n))) {
            const bc_ix_ent *x = i < b->n ? &b->ents[i] : NULL;
            const bc_ix_ent *y = j < d->n ? &d->ents[j] : NULL;
            int c = !x ? 1 : !y ? -1 : bc_ix_cmp(x, y);
            const bc_ix_ent *e;
            if (c < 0) {
                e = x;
                i++;
            } else {
                i += c == 0;
                j++;
                if (y->tomb)
                    continue;
                e = y;
            }
            bc_loc loc;
            bool tomb;
            ok = e->pfx == bc_ix_prefix(e->key, e->klen) && (!prev || bc_ix_cmp(prev, e) < 0) &&
                 bc_kd_get(kd, e->key, e->klen, bc_hash(e->key, e->klen), &loc, &tomb) && !tomb &&
                 loc.file_id == e->loc.file_id && loc.offset == e->loc.offset &&
                 loc.seq == e->loc.seq && loc.rec_size == e->loc.rec_size;
            prev = e;
            n++;
        }
        ok = ok && n == kd->count;
        bc_ix_run_unref(d);
    }
    pthread_mutex_unlock(&ix->mu);
    return ok;
}
