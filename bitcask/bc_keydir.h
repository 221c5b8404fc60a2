/* bc_keydir.h: the keydir, bitcask's in-memory hash table from key to the location of its newest
 * record (Bitcask paper section "keydir"; DDIA ch. 3 "Hash Indexes").
 *
 * Open addressing with linear probing over power-of-two tables of 48-byte slots; keys of up to
 * 16 bytes are stored in the slot, longer ones as malloc'd copies. Growth is incremental: when the
 * table passes 3/4 full a table twice as large becomes current and every later mutation moves
 * BC_KD_MIGRATE slots of the old table into it, so no single put pays for rehashing the whole table
 * (the way Redis' dict rehashes). While migrating, a key lives in exactly one of the two tables;
 * lookups try the current table first. Deletion in the current table uses backward shifting (no
 * tombstone slots); in the old table it leaves a "deleted" mark that migration skips.
 *
 * Not thread-safe: the engine guards it with its rwlock (lookups shared, mutations exclusive). */
#ifndef KVLAB_BC_KEYDIR_H
#define KVLAB_BC_KEYDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_KD_MIGRATE 32 /* old-table slots moved per mutation while growing */

/* Where a key's newest record is: data file id, byte offset and byte size of the record, and
 * its sequence number (the record's logical timestamp). */
typedef struct bc_loc {
    uint64_t offset;
    uint64_t seq;
    uint32_t file_id;
    uint32_t rec_size;
} bc_loc;

#define BC_KD_INLINE 16 /* keys up to this many bytes live inside their slot */

typedef struct bc_slot {
    union {
        uint8_t *ptr;                /* a malloc'd copy of a longer key */
        uint8_t bytes[BC_KD_INLINE]; /* a short key itself: no allocation, no pointer chase */
    } k;
    uint32_t hash;
    uint16_t klen; /* keys are 1..65535 bytes */
    uint8_t tomb;  /* recovery only: the newest record seen is a tombstone */
    uint8_t state; /* BC_SLOT_EMPTY, BC_SLOT_FULL, BC_SLOT_DELETED (old table only) */
    bc_loc loc;
} bc_slot;

enum { BC_SLOT_EMPTY = 0, BC_SLOT_FULL = 1, BC_SLOT_DELETED = 2 };

typedef struct bc_table {
    bc_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t used;
} bc_table;

typedef struct bc_keydir {
    bc_table cur, old;
    size_t migrate_pos;   /* next old slot to move */
    size_t count;         /* keys in both tables */
    uint64_t key_bytes;   /* bytes of all keys */
    uint64_t heap_bytes;  /* bytes of malloc'd key copies (keys longer than BC_KD_INLINE) */
    size_t tombs;         /* entries marked tomb (recovery only; 0 after bc_kd_purge_tombs) */
    uint64_t resizes;     /* growths started */
    bc_slot *spare;       /* a zeroed, already faulted-in table for the next growth, or NULL */
    size_t spare_cap;     /* its slots */
    uint64_t spares_used; /* growths that took the spare instead of allocating */
} bc_keydir;

/* Initializes an empty keydir with room for about expect keys before its first growth.
 * Returns false when out of memory. */
bool bc_kd_init(bc_keydir *kd, size_t expect);
/* Frees the tables and keys. */
void bc_kd_free(bc_keydir *kd);

/* The hash of a key (64-bit multiply-xorshift mix, low 32 bits used). */
uint32_t bc_hash(const void *key, size_t klen);

/* Finds key: true and *loc (and *tomb when non-NULL) when present. */
bool bc_kd_get(const bc_keydir *kd, const void *key, size_t klen, uint32_t h, bc_loc *loc,
               bool *tomb);

/* Inserts or replaces key's location. When the key was present *had = true and *prev, *prev_tomb
 * hold the replaced location. Returns false when out of memory (keydir unchanged). */
bool bc_kd_put(bc_keydir *kd, const void *key, size_t klen, uint32_t h, const bc_loc *loc,
               bool tomb, bool *had, bc_loc *prev, bool *prev_tomb);

/* The next table, prepared off the write path. A growth allocates a table twice as large, and
 * its first writes fault in and zero every page of it (at 1M keys 96 MB; the kernel's clear_page),
 * on the putting thread, inside the puts that happen to touch a new page. The engine
 * may instead build that table ahead of time on another thread (bc_kd_table_new, which touches no
 * keydir and needs no lock) and hand it over (bc_kd_give_spare, keydir lock held) before the growth
 * needs it. (The same move as an allocator's background thread, e.g. jemalloc's background_thread,
 * which purges memory off the application's threads: here memory is prepared instead.)
 *
 * bc_kd_spare_wanted: the capacity (slots) the next growth will allocate, when that table is
 * worth preparing (at least BC_KD_SPARE_MIN slots), the current table is past half full, no
 * growth is under way and no spare is held; else 0. */
#define BC_KD_SPARE_MIN ((size_t)1 << 18) /* slots: 12 MiB; smaller tables fault in quickly */
size_t bc_kd_spare_wanted(const bc_keydir *kd);
/* A zeroed table of cap slots with every page already faulted in (MADV_POPULATE_WRITE, or a
 * write to each page where the kernel lacks it), for bc_kd_give_spare. NULL when out of memory.
 * The caller owns it until it is given; free it with free(). */
bc_slot *bc_kd_table_new(size_t cap);
/* Hands over a table of cap slots from bc_kd_table_new (ownership passes to kd): kept for the
 * next growth when that growth will want exactly cap slots and no spare is held, else freed at
 * once (the keydir grew or shrank meanwhile). */
void bc_kd_give_spare(bc_keydir *kd, bc_slot *slots, size_t cap);

struct bc_prefault;
/* Recovery: makes room for n more keys, so that the next n inserts neither grow the table nor
 * start a migration (a growth here is done at once, not incrementally: nobody is waiting).
 * When pf is not NULL and the table grows, the helper faulting in the table being replaced is
 * finished (joined) before that table is freed, and a helper is started on the new table before
 * the keys move into it (bc_prefault.h: the page zeroing then overlaps the rest of start-up on
 * another core). Returns false when out of memory (keydir unchanged). */
bool bc_kd_reserve(bc_keydir *kd, size_t n, struct bc_prefault *pf);

/* What bc_kd_put_if_newer did. */
typedef enum {
    BC_KD_NOMEM,         /* out of memory: keydir unchanged */
    BC_KD_OLDER,         /* the key already has a newer record: nothing changed */
    BC_KD_INSERTED,      /* the key was absent */
    BC_KD_REPLACED,      /* replaced a value's location (*prev) */
    BC_KD_REPLACED_TOMB, /* replaced a tombstone's location (*prev) */
} bc_kd_effect;

/* Recovery's insert: stores loc (with tomb) unless the key already has a newer record: one
 * with a higher seq, or the same seq later in the same file (a batch naming a key twice).
 * On BC_KD_REPLACED and BC_KD_REPLACED_TOMB *prev is the location replaced (so recovery can
 * keep each file's live bytes without a second pass over the keydir). */
bc_kd_effect bc_kd_put_if_newer(bc_keydir *kd, const void *key, size_t klen, uint32_t h,
                                const bc_loc *loc, bool tomb, bc_loc *prev);

/* Recovery's insert of a slot prepared by the caller (start-up's reader thread builds them,
 * bc_hintload.h): src has state BC_SLOT_FULL, hash, klen, tomb, loc and the key (inline, zero
 * after klen bytes; or, longer than BC_KD_INLINE bytes, k.ptr pointing at the caller's bytes,
 * copied here). Same rule and results as bc_kd_put_if_newer; a short key's new slot is one
 * 48-byte copy of src. */
bc_kd_effect bc_kd_put_slot_if_newer(bc_keydir *kd, const bc_slot *src, bc_loc *prev);

/* Hints the CPU to fetch the slots where a key of hash h starts its probe: a put calls it
 * before its write(2), so the cache miss of its keydir update overlaps the system call.
 * always_inline is needed, not decoration: GCC 12 judges a function holding only prefetches to
 * have no effect ("const") and deletes every call to it before inlining, prefetches and all
 * (seen in the object code: no prefetch instruction was left in bc_write.c or bc_startup.c). */
static inline __attribute__((always_inline)) void bc_kd_prefetch(const bc_keydir *kd, uint32_t h)
{
    if (kd->cur.cap) {
        /* the probe's first four slots (192 bytes: 4 cache lines at most): a probe for an
         * absent key at 3/4 load visits several slots (linear probing), not just one */
        const char *s = (const char *)&kd->cur.slots[h & (kd->cur.cap - 1)];
        const char *end = (const char *)(kd->cur.slots + kd->cur.cap);
        for (int i = 0; i < 4 && s + 64 * i < end; i++)
            __builtin_prefetch(s + 64 * i);
    }
    if (kd->old.cap) /* growing: a key not yet moved is looked up there too */
        __builtin_prefetch(&kd->old.slots[h & (kd->old.cap - 1)]);
}

/* Recovery's prefetch: the cache lines of the one slot where a key of hash h starts its probe
 * (a 48-byte slot spans at most two lines), for writing. Recovery knows the next entries in
 * advance and inserts into a table at most about half full, where most probes end in their
 * first slot: fetching exactly that slot, a few entries ahead, keeps many misses in flight
 * without spending the memory system's bandwidth on lines no insert reads. */
static inline __attribute__((always_inline)) void bc_kd_prefetch_home(const bc_keydir *kd,
                                                                      uint32_t h)
{
    const char *s = (const char *)&kd->cur.slots[h & (kd->cur.cap - 1)];
    __builtin_prefetch(s, 1);
    __builtin_prefetch(s + sizeof(bc_slot) - 1, 1);
}

/* Removes key; true (and *prev) when it was present. */
bool bc_kd_del(bc_keydir *kd, const void *key, size_t klen, uint32_t h, bc_loc *prev);

/* Replaces key's location with *nw only if it is still exactly *old (a merge moving a record
 * that no writer superseded meanwhile). Returns whether it replaced. */
bool bc_kd_replace_if(bc_keydir *kd, const void *key, size_t klen, uint32_t h, const bc_loc *old,
                      const bc_loc *nw);

/* Calls fn for every key (both tables, unspecified order). fn must not change the keydir. */
typedef void (*bc_kd_fn)(void *ctx, const uint8_t *key, size_t klen, const bc_loc *loc, bool tomb);
void bc_kd_foreach(const bc_keydir *kd, bc_kd_fn fn, void *ctx);

/* Removes every entry marked tomb (end of recovery). Returns false when out of memory. */
bool bc_kd_purge_tombs(bc_keydir *kd);

/* Heap bytes held: slot arrays (a spare table included) plus malloc'd key copies. */
uint64_t bc_kd_bytes(const bc_keydir *kd);

#endif
