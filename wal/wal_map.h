/* wal_map.h: the in-memory ordered table of the `wal` engine: a persistent (copy-on-write)
 * B-tree with reference-counted nodes (CLRS ch. 18 with minimum degree WAL_BT_T: 7 to 15 keys a
 * node, every node but the root at least half full, all leaves at one depth).
 *
 * Why this structure: iterators and checkpoints need a consistent snapshot while other threads
 * write. A persistent tree makes a snapshot O(1) (take a reference to the root); a writer copies
 * only the nodes on its path that a snapshot still shares (path copying, as in Okasaki's
 * functional trees and the copy-on-write B-trees of LMDB and btrfs) and changes nodes nobody
 * else references in place, so with no snapshot open an insert allocates its entry and a node
 * only when it splits one (about one random insert in ten). Why a B-tree rather than a binary
 * (AVL) tree: the table lives in memory, where the cost of a random insert
 * or lookup is its cache misses. An AVL tree of n keys visits ~1.44 log2 n nodes scattered over
 * the heap, one dependent miss each (~18 at 200k keys, most below the caches' reach); a B-tree
 * node keeps up to 15 keys' 16-byte prefixes in 4 consecutive cache lines, and the tree is only
 * ~log8 n deep, so a search takes ~5 dependent misses, and inserts and lookups get markedly
 * cheaper (results/default/NOTES.md). The price: ~52 bytes of node per key after random inserts and
 * ~75 after sorted ones (a split leaves two half-full nodes behind), against 48 for the AVL tree,
 * and a copy of a shared node costs 528 bytes instead of 48 while a snapshot is open. A skiplist
 * with sequence numbers (LevelDB's memtable) would give lock-free reads too, but keeps every
 * overwritten version until the whole table is dropped, which a log-only engine never does.
 *
 * Concurrency: one writer at a time (the caller serializes writers: the log applies batches in
 * LSN order, one group at a time). Readers of the current tree (get) take a read lock that the
 * writer holds only while it changes the tree in memory, never during I/O, so readers never wait
 * for an fsync and never see a node half changed. A snapshot is read without any lock: the
 * writer changes a node in place only when it reached it from the map's root through nodes that
 * all have a reference count of 1 (itself included), which no snapshot can reach. */
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

/* Minimum degree of the B-tree: a node holds WAL_BT_T - 1 to 2 WAL_BT_T - 1 keys (the root 1 to
 * 2 WAL_BT_T - 1) and an inner node one child more than keys. */
#define WAL_BT_T   8
#define WAL_BT_MAX (2 * WAL_BT_T - 1)

typedef struct wal_node {
    _Atomic uint32_t ref;               /* parents (or root holders) referencing this node */
    uint8_t n;                          /* keys in use */
    uint8_t leaf;                       /* 1: no children */
    uint16_t klen[WAL_BT_MAX];          /* each key's length in bytes (1 to 65,535) */
    uint64_t pfx[WAL_BT_MAX][2];        /* each key's first 16 bytes as two big-endian words,
                                           zero-padded: keys of up to 16 bytes compare here entirely,
                                           longer keys nearly always, without touching the entry */
    wal_entry *e[WAL_BT_MAX];           /* the entries, in key order */
    struct wal_node *c[WAL_BT_MAX + 1]; /* inner node: c[i] holds the keys below key i */
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

/* In-order cursor over a snapshot root: the path from the root, each level's node and the index
 * of the key that comes next there (a B-tree of minimum degree 8 holding 2^64 keys is at most 22
 * levels deep). */
typedef struct wal_cursor {
    struct {
        wal_node *n;
        int i;
    } st[24];
    int depth;
} wal_cursor;
void wal_cursor_first(wal_cursor *c, wal_node *root);
void wal_cursor_seek(wal_cursor *c, wal_node *root, const void *key, size_t klen);
static inline wal_entry *wal_cursor_entry(const wal_cursor *c)
{
    return c->depth ? c->st[c->depth - 1].n->e[c->st[c->depth - 1].i] : NULL;
}
void wal_cursor_next(wal_cursor *c);

/* Verifies the current tree: strict key order, node fill (WAL_BT_T - 1 to WAL_BT_MAX keys, the
 * root at least 1), all leaves at one depth, key prefixes, reference counts, the key count. Errors:
 * KV_CORRUPTION with the first violation. */
kv_status wal_map_check(wal_map *m);

#endif
