/* bc_keydir.c: the incrementally resized open-addressing keydir (see bc_keydir.h). */
#include "bc_keydir.h"

#include "bc_prefault.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static inline const uint8_t *slot_key(const bc_slot *s)
{
    return s->klen <= BC_KD_INLINE ? s->k.bytes : s->k.ptr;
}

static inline void slot_free_key(bc_slot *s)
{
    if (s->klen > BC_KD_INLINE)
        free(s->k.ptr);
}

/* Fills a new full slot with a copy of key; false when out of memory. */
static bool slot_init(bc_keydir *kd, bc_slot *s, const void *key, size_t klen, uint32_t h,
                      const bc_loc *loc, bool tomb)
{
    memset(s, 0, sizeof *s);
    s->hash = h;
    s->klen = (uint16_t)klen;
    s->tomb = tomb;
    s->state = BC_SLOT_FULL;
    s->loc = *loc;
    if (klen <= BC_KD_INLINE) {
        memcpy(s->k.bytes, key, klen);
    } else {
        if (!(s->k.ptr = malloc(klen)))
            return false;
        memcpy(s->k.ptr, key, klen);
        kd->heap_bytes += klen;
    }
    kd->key_bytes += klen;
    kd->tombs += tomb;
    return true;
}

/* Keeps kd->tombs right when slot s is about to be marked tomb (or not). */
static inline void count_tomb(bc_keydir *kd, const bc_slot *s, bool tomb)
{
    if (tomb && !s->tomb)
        kd->tombs++;
    else if (!tomb && s->tomb)
        kd->tombs--;
}

static void key_gone(bc_keydir *kd, bc_slot *s)
{
    kd->tombs -= s->tomb != 0;
    kd->key_bytes -= s->klen;
    if (s->klen > BC_KD_INLINE)
        kd->heap_bytes -= s->klen;
    slot_free_key(s);
}

uint32_t bc_hash(const void *key, size_t klen)
{
    const uint8_t *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (klen * 0xff51afd7ed558ccdull);
    while (klen >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        klen -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < klen; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* Asks the kernel to back a large table with 2 MiB pages (transparent huge pages, where the
 * system allows it on request): every keydir access is a random one, and with 4 KiB pages each
 * one would also miss the TLB, a page-table walk on top of the cache miss.
 * Only advice: the memory stays the allocator's (and counted by it); a refusal changes nothing. */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t page = 4096, huge = (uintptr_t)2 << 20;
    if (bytes < 2 * huge)
        return;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + bytes) & ~(page - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Frees the spare table unless the next growth (to twice the current capacity) can use it. */
static void drop_stale_spare(bc_keydir *kd)
{
    if (kd->spare && kd->spare_cap != kd->cur.cap * 2) {
        free(kd->spare);
        kd->spare = NULL;
        kd->spare_cap = 0;
    }
}

size_t bc_kd_spare_wanted(const bc_keydir *kd)
{
    if (kd->spare || kd->old.cap || kd->cur.cap * 2 < BC_KD_SPARE_MIN)
        return 0;
    return kd->cur.used * 2 > kd->cur.cap ? kd->cur.cap * 2 : 0;
}

bc_slot *bc_kd_table_new(size_t cap)
{
    bc_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return NULL;
    size_t bytes = cap * sizeof *slots;
    advise_huge(slots, bytes);
    if (!bc_prefault_range(
            slots,
            bytes)) { /* an older kernel: write to every page (a zero: the memory stays zeroed) */
        volatile uint8_t *p = (volatile uint8_t *)slots;
        for (size_t off = 0; off < bytes; off += 4096)
            p[off] = 0;
    }
    return slots;
}

void bc_kd_give_spare(bc_keydir *kd, bc_slot *slots, size_t cap)
{
    if (kd->spare || kd->old.cap || cap != kd->cur.cap * 2) {
        free(slots);
        return;
    }
    kd->spare = slots;
    kd->spare_cap = cap;
}

static bool table_alloc(bc_table *t, size_t cap)
{
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots)
        return false;
    advise_huge(t->slots, cap * sizeof *t->slots);
    t->cap = cap;
    t->used = 0;
    return true;
}

bool bc_kd_init(bc_keydir *kd, size_t expect)
{
    memset(kd, 0, sizeof *kd);
    size_t cap = 1024;
    while (cap * 3 / 4 < expect)
        cap *= 2;
    return table_alloc(&kd->cur, cap);
}

static void table_free_keys(bc_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].state == BC_SLOT_FULL)
            slot_free_key(&t->slots[i]);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

void bc_kd_free(bc_keydir *kd)
{
    free(kd->spare);
    if (!kd->heap_bytes) { /* every key inline: no walk over the slots */
        free(kd->cur.slots);
        free(kd->old.slots);
        memset(kd, 0, sizeof *kd);
        return;
    }
    table_free_keys(&kd->cur);
    table_free_keys(&kd->old);
    memset(kd, 0, sizeof *kd);
}

static inline bool slot_is(const bc_slot *s, const void *key, size_t klen, uint32_t h)
{
    return s->state == BC_SLOT_FULL && s->hash == h && s->klen == klen &&
           !memcmp(slot_key(s), key, klen);
}

/* Index of key's slot in t, or SIZE_MAX. */
static size_t table_find(const bc_table *t, const void *key, size_t klen, uint32_t h)
{
    if (!t->cap)
        return SIZE_MAX;
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const bc_slot *s = &t->slots[i];
        if (s->state == BC_SLOT_EMPTY)
            return SIZE_MAX;
        if (slot_is(s, key, klen, h))
            return i;
    }
}

/* Places a slot whose key is known absent into the current table (never full: load <= 3/4). */
static void table_place(bc_table *t, const bc_slot *src)
{
    size_t mask = t->cap - 1;
    size_t i = src->hash & mask;
    while (t->slots[i].state != BC_SLOT_EMPTY)
        i = (i + 1) & mask;
    t->slots[i] = *src;
    t->used++;
}

/* Backward-shift deletion of slot i in a table without deleted marks. */
static void table_remove(bc_table *t, size_t i)
{
    size_t mask = t->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        bc_slot *s = &t->slots[j];
        if (s->state == BC_SLOT_EMPTY)
            break;
        size_t home = s->hash & mask;
        /* s may move to i when its home is not in (i, j] cyclically. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            t->slots[i] = *s;
            i = j;
        }
    }
    memset(&t->slots[i], 0, sizeof t->slots[i]);
    t->used--;
}

static void migrate(bc_keydir *kd, size_t n)
{
    if (!kd->old.cap)
        return;
    while (n-- && kd->migrate_pos < kd->old.cap) {
        bc_slot *s = &kd->old.slots[kd->migrate_pos++];
        if (s->state == BC_SLOT_FULL) {
            table_place(&kd->cur, s);
            s->state = BC_SLOT_DELETED; /* keeps the probe chains of unmoved keys intact */
        }
    }
    if (kd->migrate_pos >= kd->old.cap) {
        free(kd->old.slots);
        memset(&kd->old, 0, sizeof kd->old);
        kd->migrate_pos = 0;
    }
}

/* Makes room for one more key in the current table, starting a growth when needed. */
static bool ensure_room(bc_keydir *kd)
{
    if ((kd->cur.used + 1) * 4 <= kd->cur.cap * 3)
        return true;
    if (kd->old.cap) /* growing faster than migration: finish it first (rare) */
        migrate(kd, SIZE_MAX);
    bc_table nt;
    if (kd->spare && kd->spare_cap == kd->cur.cap * 2) { /* prepared off the write path */
        nt = (bc_table){.slots = kd->spare, .cap = kd->spare_cap, .used = 0};
        kd->spare = NULL;
        kd->spare_cap = 0;
        kd->spares_used++;
    } else if (!table_alloc(&nt, kd->cur.cap * 2)) {
        return false;
    }
    drop_stale_spare(kd);
    kd->old = kd->cur;
    kd->cur = nt;
    kd->migrate_pos = 0;
    kd->resizes++;
    migrate(kd, BC_KD_MIGRATE);
    return true;
}

bool bc_kd_reserve(bc_keydir *kd, size_t n, struct bc_prefault *pf)
{
    migrate(kd, SIZE_MAX);
    size_t cap = kd->cur.cap ? kd->cur.cap : 1024;
    while ((kd->cur.used + n) * 4 > cap * 3)
        cap *= 2;
    if (cap == kd->cur.cap)
        return true;
    bc_table nt;
    if (!table_alloc(&nt, cap))
        return false;
    if (pf) /* joins the helper of the table freed below, then starts one on the new table */
        (void)bc_prefault_start(pf, nt.slots, cap * sizeof *nt.slots);
    for (size_t i = 0; i < kd->cur.cap; i++)
        if (kd->cur.slots[i].state == BC_SLOT_FULL)
            table_place(&nt, &kd->cur.slots[i]);
    free(kd->cur.slots);
    kd->cur = nt;
    kd->resizes++;
    drop_stale_spare(kd);
    return true;
}

bool bc_kd_get(const bc_keydir *kd, const void *key, size_t klen, uint32_t h, bc_loc *loc,
               bool *tomb)
{
    const bc_table *t = &kd->cur;
    size_t i = table_find(t, key, klen, h);
    if (i == SIZE_MAX) {
        t = &kd->old;
        i = table_find(t, key, klen, h);
        if (i == SIZE_MAX)
            return false;
    }
    *loc = t->slots[i].loc;
    if (tomb)
        *tomb = t->slots[i].tomb != 0;
    return true;
}

bool bc_kd_put(bc_keydir *kd, const void *key, size_t klen, uint32_t h, const bc_loc *loc,
               bool tomb, bool *had, bc_loc *prev, bool *prev_tomb)
{
    migrate(kd, BC_KD_MIGRATE);
    bc_table *t = &kd->cur;
    size_t i = table_find(t, key, klen, h);
    if (i == SIZE_MAX) {
        t = &kd->old;
        i = table_find(t, key, klen, h);
    }
    if (i != SIZE_MAX) {
        bc_slot *s = &t->slots[i];
        *had = true;
        *prev = s->loc;
        *prev_tomb = s->tomb != 0;
        count_tomb(kd, s, tomb);
        s->loc = *loc;
        s->tomb = tomb;
        return true;
    }
    *had = false;
    if (!ensure_room(kd))
        return false;
    bc_slot s;
    if (!slot_init(kd, &s, key, klen, h, loc, tomb))
        return false;
    table_place(&kd->cur, &s);
    kd->count++;
    return true;
}

/* Applies a newer loc to slot s (recovery). */
static bc_kd_effect apply_if_newer(bc_keydir *kd, bc_slot *s, const bc_loc *loc, bool tomb,
                                   bc_loc *prev)
{
    const bc_loc *c = &s->loc;
    bool newer = loc->seq > c->seq ||
                 (loc->seq == c->seq && loc->file_id == c->file_id && loc->offset > c->offset);
    if (!newer)
        return BC_KD_OLDER;
    bc_kd_effect e = s->tomb ? BC_KD_REPLACED_TOMB : BC_KD_REPLACED;
    *prev = s->loc;
    count_tomb(kd, s, tomb);
    s->loc = *loc;
    s->tomb = tomb;
    return e;
}

/* Recovery's fast path: with no growth under way and room for one more key in the current
 * table, one probe finds the key's slot or the empty slot where it belongs. NULL when those
 * conditions do not hold (the general path then migrates, grows and probes both tables). */
static inline bc_slot *fast_probe(bc_keydir *kd, const void *key, size_t klen, uint32_t h)
{
    if (kd->old.cap || (kd->cur.used + 1) * 4 > kd->cur.cap * 3)
        return NULL;
    size_t mask = kd->cur.cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        bc_slot *s = &kd->cur.slots[i];
        if (s->state == BC_SLOT_EMPTY || slot_is(s, key, klen, h))
            return s;
    }
}

bc_kd_effect bc_kd_put_if_newer(bc_keydir *kd, const void *key, size_t klen, uint32_t h,
                                const bc_loc *loc, bool tomb, bc_loc *prev)
{
    bc_slot *fs = fast_probe(kd, key, klen, h);
    if (fs) {
        if (fs->state != BC_SLOT_EMPTY)
            return apply_if_newer(kd, fs, loc, tomb, prev);
        if (!slot_init(kd, fs, key, klen, h, loc, tomb)) {
            memset(fs, 0, sizeof *fs);
            return BC_KD_NOMEM;
        }
        kd->cur.used++;
        kd->count++;
        return BC_KD_INSERTED;
    }
    migrate(kd, BC_KD_MIGRATE);
    bc_table *t = &kd->cur;
    size_t i = table_find(t, key, klen, h);
    if (i == SIZE_MAX) {
        t = &kd->old;
        i = table_find(t, key, klen, h);
    }
    if (i != SIZE_MAX)
        return apply_if_newer(kd, &t->slots[i], loc, tomb, prev);
    if (!ensure_room(kd))
        return BC_KD_NOMEM;
    bc_slot s;
    if (!slot_init(kd, &s, key, klen, h, loc, tomb))
        return BC_KD_NOMEM;
    table_place(&kd->cur, &s);
    kd->count++;
    return BC_KD_INSERTED;
}

bc_kd_effect bc_kd_put_slot_if_newer(bc_keydir *kd, const bc_slot *src, bc_loc *prev)
{
    bc_slot *fs =
        src->klen <= BC_KD_INLINE ? fast_probe(kd, src->k.bytes, src->klen, src->hash) : NULL;
    if (fs) {
        if (fs->state != BC_SLOT_EMPTY)
            return apply_if_newer(kd, fs, &src->loc, src->tomb != 0, prev);
        *fs = *src; /* a short key: the slot is whole, as slot_init would make it */
        kd->cur.used++;
        kd->count++;
        kd->key_bytes += src->klen;
        kd->tombs += src->tomb != 0;
        return BC_KD_INSERTED;
    }
    const uint8_t *key = src->klen <= BC_KD_INLINE ? src->k.bytes : src->k.ptr;
    return bc_kd_put_if_newer(kd, key, src->klen, src->hash, &src->loc, src->tomb != 0, prev);
}

bool bc_kd_del(bc_keydir *kd, const void *key, size_t klen, uint32_t h, bc_loc *prev)
{
    migrate(kd, BC_KD_MIGRATE);
    size_t i = table_find(&kd->cur, key, klen, h);
    if (i != SIZE_MAX) {
        *prev = kd->cur.slots[i].loc;
        key_gone(kd, &kd->cur.slots[i]);
        table_remove(&kd->cur, i);
    } else {
        i = table_find(&kd->old, key, klen, h);
        if (i == SIZE_MAX)
            return false;
        *prev = kd->old.slots[i].loc;
        key_gone(kd, &kd->old.slots[i]);
        kd->old.slots[i].state = BC_SLOT_DELETED;
    }
    kd->count--;
    return true;
}

bool bc_kd_replace_if(bc_keydir *kd, const void *key, size_t klen, uint32_t h, const bc_loc *old,
                      const bc_loc *nw)
{
    bc_table *t = &kd->cur;
    size_t i = table_find(t, key, klen, h);
    if (i == SIZE_MAX) {
        t = &kd->old;
        i = table_find(t, key, klen, h);
        if (i == SIZE_MAX)
            return false;
    }
    bc_loc *l = &t->slots[i].loc;
    if (t->slots[i].tomb || l->file_id != old->file_id || l->offset != old->offset)
        return false;
    *l = *nw;
    return true;
}

static void table_foreach(const bc_table *t, bc_kd_fn fn, void *ctx)
{
    for (size_t i = 0; i < t->cap; i++) {
        const bc_slot *s = &t->slots[i];
        if (s->state == BC_SLOT_FULL)
            fn(ctx, slot_key(s), s->klen, &s->loc, s->tomb != 0);
    }
}

void bc_kd_foreach(const bc_keydir *kd, bc_kd_fn fn, void *ctx)
{
    table_foreach(&kd->cur, fn, ctx);
    table_foreach(&kd->old, fn, ctx);
}

bool bc_kd_purge_tombs(bc_keydir *kd)
{
    migrate(kd, SIZE_MAX);
    size_t live = kd->count - kd->tombs; /* counted as they come: no walk over the slots */
    size_t cap = 1024;
    while (cap * 3 / 4 < live + 1)
        cap *= 2;
    if (cap < kd->cur.cap / 2)
        cap = kd->cur.cap / 2; /* keep room: the table was this full before */
    if (!kd->tombs && cap >= kd->cur.cap)
        return true; /* no tombstone and no shrink: no rehash of every key */
    bc_table nt;
    if (!table_alloc(&nt, cap))
        return false;
    for (size_t i = 0; i < kd->cur.cap; i++) {
        bc_slot *s = &kd->cur.slots[i];
        if (s->state != BC_SLOT_FULL)
            continue;
        if (s->tomb) {
            key_gone(kd, s);
            kd->count--;
        } else {
            table_place(&nt, s);
        }
    }
    free(kd->cur.slots);
    kd->cur = nt;
    drop_stale_spare(kd);
    return true;
}

uint64_t bc_kd_bytes(const bc_keydir *kd)
{
    return (uint64_t)(kd->cur.cap + kd->old.cap + kd->spare_cap) * sizeof(bc_slot) + kd->heap_bytes;
}
