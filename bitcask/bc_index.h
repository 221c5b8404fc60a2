/* bc_index.h: the sorted key index kept beside the hash keydir, so that an iterator costs
 * O(log n) to create and to seek instead of a sort of the whole keydir (DDIA ch. 3 notes that a
 * hash index makes range queries inefficient; this is the remedy, shaped like a two-level LSM
 * tree held in memory: O'Neil et al., "The Log-Structured Merge-Tree", 1996).
 *
 * Two sorted runs:
 *   base  - an immutable, reference-counted sorted array of every live key with its location
 *           (48-byte entries, key bytes in the run's own arena);
 *   delta - the changes since the base was built: a small sorted set of (key, location) and
 *           tombstones, overwritten in place when a key changes again.
 * When the delta passes `limit` entries (max(256, sqrt(n))) it is merged into a fresh base in
 * one linear pass, O(n). An iterator takes a reference on the base and on a frozen copy of the
 * delta (one copy shared by every iterator created before the next write): an O(1) snapshot
 * (O(limit) after a write), then merges the two runs on the fly.
 *
 * The index is built lazily: nothing is kept until the first iterator, which builds the base
 * from the keydir (one O(n log n) sort). When the delta fills up and no iterator was created
 * since the last merge, the index is dropped instead of merged (write-only phases pay nothing;
 * the next iterator rebuilds it). Running out of memory also drops it: never a partial state.
 *
 * Locking (the engine's): mutations happen under db->lock held exclusively (the writer that
 * applies to the keydir); bc_ix_snapshot runs under db->lock shared plus the index's own mutex,
 * so snapshots exclude writers but not each other's reads. Not thread-safe by itself. */
#ifndef KVLAB_BC_INDEX_H
#define KVLAB_BC_INDEX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bc_keydir.h"
#include "coding.h"

/* One entry of a run: a key (klen bytes at key, owned by the run) and its location. */
typedef struct bc_ix_ent {
    uint64_t pfx; /* the key's first 8 bytes, big-endian, zero-padded: most compares end here */
    const uint8_t *key;
    bc_loc loc;
    uint32_t klen;
    uint32_t tomb; /* delta runs only: 1 = the key was deleted */
} bc_ix_ent;

/* An immutable sorted run shared by reference (the base, or a frozen delta). */
typedef struct bc_ix_run {
    _Atomic long refs;
    size_t n;
    bc_ix_ent *ents;
    uint8_t *keys; /* arena of the entries' key bytes */
    size_t key_bytes;
} bc_ix_run;

/* A delta entry: key at offset koff of the delta's key arena. */
typedef struct bc_ix_dent {
    uint64_t koff;
    bc_loc loc;
    uint32_t klen;
    uint32_t tomb;
} bc_ix_dent;

typedef struct bc_index {
    pthread_mutex_t mu; /* serializes snapshots (they run under the shared db->lock) */
    bool built;
    bc_ix_run *base;
    bc_ix_dent *pool; /* delta entries in arrival order */
    uint32_t *order;  /* indices into pool, sorted by key */
    size_t npool, cappool;
    uint8_t *dkeys; /* delta key arena */
    size_t dkeys_len, dkeys_cap;
    bc_ix_run *frozen; /* the delta as a shared run, NULL when a write changed it since */
    size_t limit;      /* merge (or drop) when the delta has this many entries */
    uint64_t snaps;    /* snapshots taken since the last merge */
    uint64_t merges, builds, drops;
} bc_index;

/* Initializes an empty, unbuilt index. False when the mutex cannot be created. */
bool bc_ix_init(bc_index *ix);
/* Frees everything the index holds (runs still referenced by iterators stay alive). */
void bc_ix_free(bc_index *ix);

/* Records that key now has location loc (tomb = false) or was deleted (tomb = true). Called for
 * every keydir change, db->lock held exclusively; `live` is the keydir's key count (sizes the
 * merge limit). A no-op while the index is unbuilt. Never fails: out of memory drops the index. */
void bc_ix_note(bc_index *ix, const void *key, size_t klen, const bc_loc *loc, bool tomb,
                size_t live);

/* Takes a consistent snapshot: *base and *delta are referenced runs (release with
 * bc_ix_run_unref). Builds the index from kd first when it is unbuilt (O(n log n)). Caller holds
 * db->lock shared (or exclusively). Returns false when out of memory (nothing referenced). */
bool bc_ix_snapshot(bc_index *ix, const bc_keydir *kd, bc_ix_run **base, bc_ix_run **delta);

void bc_ix_run_unref(bc_ix_run *r);

/* The order prefix of a key: its first 8 bytes as a big-endian integer, zero-padded. When two
 * keys' prefixes differ they order as their prefixes do. */
uint64_t bc_ix_prefix(const void *key, size_t klen);

/* Compares two entries in key order (kv_key_cmp), using their prefixes first. */
static inline int bc_ix_cmp(const bc_ix_ent *a, const bc_ix_ent *b)
{
    if (a->pfx != b->pfx)
        return a->pfx < b->pfx ? -1 : 1;
    return kv_key_cmp(a->key, a->klen, b->key, b->klen);
}

/* Index of the first entry of r whose key is >= key (r->n when none). O(log n). */
size_t bc_ix_lower_bound(const bc_ix_run *r, const void *key, size_t klen);

/* kv_check's invariant: when built, the index's visible keys (base merged with delta) are
 * strictly ascending, are exactly the keydir's keys, with the keydir's locations. Caller holds
 * db->lock shared. Returns true when they agree (or the index is unbuilt); O(n). */
bool bc_ix_verify(bc_index *ix, const bc_keydir *kd);

/* Heap bytes held by the index (base run, delta, frozen delta). */
uint64_t bc_ix_bytes(const bc_index *ix);

#endif
