/* wal_map.h: the in-memory ordered table of the `wal` engine: a persistent (copy-on-write) AVL
 * tree with reference-counted nodes.
 *
 * Why this structure: iterators and checkpoints need a consistent snapshot while other threads
 * write. A persistent tree makes a snapshot O(1) (take a reference to the root); a writer copies
 * only the nodes on its path that a snapshot still shares (path copying, as in Okasaki's
 * functional trees and the copy-on-write B-trees of LMDB and btrfs) and changes nodes nobody
 * else references in place, so with no snapshot open an insert allocates one node and one
 * entry: O(log n) time, no malloc storm. A skiplist with sequence numbers (LevelDB's memtable)
 * would give lock-free reads too, but keeps every overwritten version until the whole table is
 * dropped, which a log-only engine never does.
 *
 * Concurrency: one writer at a time (the caller serializes writers: the log applies batches in
 * LSN order, one group at a time). Readers (get, snapshot) take a read lock that the writer holds
 * only while it changes the tree in memory, never during I/O, so readers never wait for an
 * fsync. A snapshot is read without any lock. */
#ifndef KVLAB_WAL_MAP_H
#define KVLAB_WAL_MAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* An immutable key/value pair, shared by the node copies that hold it. */
typedef struct wal_entry {
    _Atomic uint32_t ref;
    uint32_t klen;  /* bytes, 1 to 65,535 */
    uint64_t vlen;  /* bytes, 0 to 64 MiB */
    uint8_t data[]; /* key then value */
} wal_entry;

typedef struct wal_node {
    _Atomic uint32_t ref; /* parents (or root holders) referencing this node */
    uint16_t height;      /* 1 for a leaf (an AVL tree of 2^64 keys is < 94 high) */
    uint16_t klen;        /* the entry's key length in bytes (1 to 65,535) */
    uint64_t pfx[2];      /* the key's first 16 bytes as two big-endian words, zero-padded: keys
                             of up to 16 bytes compare here entirely, longer keys nearly always,
                             without touching the entry (one cache miss less a level) */
    wal_entry *e;
    struct wal_node *l, *r;
} wal_node;

/* A slab of nodes (the node pool: nodes are carved from slabs, kept on free lists when freed and
 * returned to the heap only by wal_map_destroy, like a memtable arena). */
typedef struct wal_slab wal_slab;

typedef struct wal_map {
    pthread_rwlock_t lock;
    wal_node *free_local;            /* writer's free nodes (linked by ->l) */
    _Atomic(wal_node *) free_remote; /* freed by any thread (a lock-free push-only stack,
                                        taken whole by the writer: no ABA) */
    wal_slab *slabs;                 /* every slab, newest first */
    size_t slab_used;                /* nodes carved from the newest slab */
    wal_node *root;                  /* one reference owned by the map */
    uint64_t count;                  /* keys in the current tree */
    uint64_t applied_lsn;            /* LSN of the last batch applied (set by wal_map_end) */
    _Atomic uint64_t mem;            /* heap bytes of live nodes and entries (snapshots included) */
} wal_map;

/* A new entry holding copies of key (klen bytes) and value (vlen bytes), reference count 1, or
 * NULL when out of memory. The map takes the reference at wal_map_put. */
wal_entry *wal_entry_new(wal_map *m, const void *key, size_t klen, const void *value, size_t vlen);
/* Drops a reference to e (frees at zero). NULL allowed. */
void wal_entry_unref(wal_map *m, wal_entry *e);

void wal_map_init(wal_map *m);
/* Frees the current tree and the node pool: every snapshot must have been released. */
void wal_map_destroy(wal_map *m);

/* Writer side: begin takes the write lock, end stores applied_lsn and releases it. Between
 * them put/del change the current tree; readers see all or nothing of it. */
void wal_map_begin(wal_map *m);
void wal_map_end(wal_map *m, uint64_t applied_lsn);
/* Inserts or replaces (takes e's reference). Returns false when out of memory (the map is
 * unchanged and e is still the caller's). */
bool wal_map_put(wal_map *m, wal_entry *e);
/* Removes key if present. Returns false when out of memory (unchanged). */
bool wal_map_del(wal_map *m, const void *key, size_t klen);

/* Reader side. Looks key up; on success *out is a referenced entry (wal_entry_unref it). */
bool wal_map_get(wal_map *m, const void *key, size_t klen, wal_entry **out);
/* A referenced snapshot root (may be NULL for an empty map), its key count and applied LSN.
 * Release with wal_map_release. */
wal_node *wal_map_snapshot(wal_map *m, uint64_t *count, uint64_t *applied_lsn);
void wal_map_release(wal_map *m, wal_node *root);

/* Builds the tree from entries sorted by key (n of them, references taken), replacing an empty
 * map. Returns false when out of memory (entries still the caller's). */
bool wal_map_build(wal_map *m, wal_entry **sorted, size_t n, uint64_t applied_lsn);

/* In-order cursor over a snapshot root (a stack of at most 96 nodes: AVL height <= 1.44 log2 n). */
typedef struct wal_cursor {
    wal_node *stack[96];
    int depth;
} wal_cursor;
void wal_cursor_first(wal_cursor *c, wal_node *root);
void wal_cursor_seek(wal_cursor *c, wal_node *root, const void *key, size_t klen);
static inline wal_entry *wal_cursor_entry(const wal_cursor *c)
{
    return c->depth ? c->stack[c->depth - 1]->e : NULL;
}
void wal_cursor_next(wal_cursor *c);

/* Verifies the current tree: strict key order, AVL heights and balance, reference counts, the key
 * count. Errors: KV_CORRUPTION with the first violation. */
kv_status wal_map_check(wal_map *m);

#endif
