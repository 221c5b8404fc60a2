/* btree_int.h: internal structures of the btree engine (docs/btree.md).
 *
 * A paged B+tree (DDIA ch. 3, "B-Trees") in one data file of fixed-size pages (btree.db) with a
 * physical write-ahead log (btree.wal) of page images grouped per atomic change and closed by a
 * commit record, as SQLite's WAL commit frames and InnoDB's mini-transactions do.
 *
 * Concurrency: one writer at a time (wmu), a reader-writer lock on the tree (readers share it,
 * the writer takes it exclusively while it changes pages and write(2)s the log group; every
 * fdatasync happens with the tree lock released). Iterators see a snapshot through saved page
 * versions (snap.c). Nothing in this header is public API. */
#ifndef KVLAB_BTREE_INT_H
#define KVLAB_BTREE_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "coding.h"
#include "crc.h"
#include "group_commit.h"
#include "kv_engine.h"
#include "syncer.h"

#define BT_DATA_FILE  "btree.db"
#define BT_LOG_FILE   "btree.wal"
#define BT_META_MAGIC "KVLBTREE" /* 8 bytes at offset 0 of page 0 */
#define BT_LOG_MAGIC  "KVLBWAL1" /* 8 bytes at offset 0 of each of the log's two header slots */
/* 2: slots carry a 4-byte key window (docs/btree.md section 2); 3: the meta page and the log
 * header name the database and its checkpoint, the log is framed by common/reclog. */
#define BT_VERSION 3

#define BT_HDR       24   /* bytes of the header of every page but page 0 */
#define BT_SLOT      6    /* bytes of a slot: u16 cell offset, then the key's 4-byte window */
#define BT_WIN       4    /* bytes of a slot's key window */
#define BT_META_CRC  88   /* offset of the meta page's CRC; fields are bytes [0, 88) */
#define BT_META_LEN  96   /* bytes of page 0 that hold fields and CRC (the rest is zero) */
#define BT_LOG_SLOT  64   /* bytes of one log header slot */
#define BT_LOG_SLOT1 512  /* offset of the second header slot (its own 512-byte sector) */
#define BT_LOG_HDR   1024 /* bytes before the first log record: the two header slots */
#define BT_MAX_KEY   1000 /* declared key limit: a quarter of a 4 KiB page minus headers */
#define BT_MIN_PS    4096
#define BT_MAX_PS    65536
#define BT_NONE_BUF  (1u << 20) /* bytes of log buffered in user space in `none` mode */

/* Page types (byte 4 of a page). */
enum { BT_LEAF = 1, BT_INTERNAL = 2, BT_OVERFLOW = 3, BT_FREE = 4 };
/* Log record types (the reclog type byte): a full page image (payload u32 page number, then the
 * page: ps bytes, or BT_META_LEN for page 0), a commit (u64 LSN of the group, u32 number of page
 * and delta records in it), a delta (u32 page number, then byte ranges of a page that has a full
 * image earlier in the same log generation: u32 offset, u32 length, bytes). */
enum { BT_REC_PAGE = 1, BT_REC_COMMIT = 2, BT_REC_DELTA = 3 };

/* ---- page header accessors (see docs/btree.md "Page formats") ----
 * 0 u32 crc (of bytes 4..page_size)   4 u8 type   5 u8 level (0 = leaf)   6 u16 nslots
 * 8 u32 pgno   12 u32 content start (cells fill [content, page_size)); overflow: data bytes
 * 16 u32 link: internal = leftmost child, overflow = next page, free = next free page
 * 20 u16 prefix length: every key of the page starts with the same prefix bytes (0 on
 * overflow and free pages)   22 u16 reserved (0)
 * 24.. slot array, BT_SLOT (6) bytes per slot, in key order: u16 cell offset, then the key's
 * window: its BT_WIN (4) bytes after the prefix, zero-padded past the key's end. The binary
 * search compares windows in the slot array and loads a cell only when the windows are equal
 * (the "poor man's normalized keys" of Graefe's "Modern B-Tree Techniques", 2011, with the
 * prefix truncation of Bayer and Unterauer, "Prefix B-Trees", 1977). */
static inline uint8_t pg_type(const uint8_t *p)
{
    return p[4];
}
static inline uint8_t pg_level(const uint8_t *p)
{
    return p[5];
}
static inline uint16_t pg_n(const uint8_t *p)
{
    return kv_get_u16(p + 6);
}
static inline uint32_t pg_pgno(const uint8_t *p)
{
    return kv_get_u32(p + 8);
}
static inline uint32_t pg_content(const uint8_t *p)
{
    return kv_get_u32(p + 12);
}
static inline uint32_t pg_link(const uint8_t *p)
{
    return kv_get_u32(p + 16);
}
static inline void pg_set_link(uint8_t *p, uint32_t v)
{
    kv_put_u32(p + 16, v);
}
static inline uint32_t pg_prefix(const uint8_t *p)
{
    return kv_get_u16(p + 20);
}
static inline uint32_t pg_slot(const uint8_t *p, unsigned i)
{
    return kv_get_u16(p + BT_HDR + BT_SLOT * i);
}
/* The window of slot i as a big-endian number (compares like the bytes). */
static inline uint32_t pg_win(const uint8_t *p, unsigned i)
{
    const uint8_t *w = p + BT_HDR + BT_SLOT * i + 2;
    return (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 | (uint32_t)w[2] << 8 | w[3];
}
/* The window of a key of klen bytes for a page whose prefix is pfx bytes long: its bytes
 * [pfx, pfx + 4), zero-padded, as a big-endian number. For keys a and b that both start with
 * the page's prefix, win(a) < win(b) implies a < b (kv_key_cmp order), and a < b implies
 * win(a) <= win(b). */
static inline uint32_t bt_key_win(const uint8_t *key, size_t klen, size_t pfx)
{
    uint32_t w = 0;
    for (size_t i = 0; i < BT_WIN; i++)
        w = w << 8 | (pfx + i < klen ? key[pfx + i] : 0);
    return w;
}
/* Leaf cell: u16 klen | u8 flags (1 = value in overflow pages) | u32 vlen | key | value or
 * u32 first overflow page. Internal cell: u16 klen | u32 child | key. */
static inline const uint8_t *cell_key(const uint8_t *p, unsigned i, size_t *klen)
{
    const uint8_t *c = p + pg_slot(p, i);
    *klen = kv_get_u16(c);
    return c + (pg_type(p) == BT_LEAF ? 7 : 6);
}
static inline uint32_t cell_child(const uint8_t *p, unsigned i)
{
    return kv_get_u32(p + pg_slot(p, i) + 2);
}
/* The child at position c (0 = leftmost link, c = cell c-1's child). */
static inline uint32_t child_at(const uint8_t *p, unsigned c)
{
    return c == 0 ? pg_link(p) : cell_child(p, c - 1);
}
/* Bytes of the cell at slot i of a leaf or internal page (header, key, inline value or the
 * 4-byte overflow page number). */
size_t bt_cell_size(const uint8_t *p, unsigned i);

/* A cell to place in a page: len bytes at p. */
typedef struct bt_cell {
    const uint8_t *p;
    uint32_t len;
} bt_cell;

/* Page helpers (page.c): the slotted page of SQLite's b-tree pages; ps is the page size in
 * bytes everywhere. */
/* Zeroes a page of ps bytes and writes the header of page pgno (type BT_*, level 0 = leaf). */
void bt_pg_init(uint8_t *p, uint32_t ps, uint32_t pgno, int type, int level);
/* Free bytes between the slot array and the cells. */
size_t bt_pg_free(const uint8_t *p);
/* Bytes used by cells and slots (BT_SLOT each; compared with the fill bound, a quarter of
 * ps - 24). */
size_t bt_pg_used(const uint8_t *p, uint32_t ps);
/* First slot whose key is >= key (leaf); sets *found when equal. */
unsigned bt_pg_lower_bound(const uint8_t *p, const void *key, size_t klen, bool *found);
/* Number of keys <= key (internal: the child position to descend to). */
unsigned bt_pg_upper_bound(const uint8_t *p, const void *key, size_t klen);
/* Inserts a cell of len bytes as slot idx; the caller checked bt_pg_free(p) >= len + BT_SLOT.
 * Shortens the page's prefix (rewriting every window) when the new key does not start with it. */
void bt_pg_insert_cell(uint8_t *p, unsigned idx, const uint8_t *cell, size_t len);
/* Removes slot idx and closes the hole (the page stays compact). */
void bt_pg_remove_cell(uint8_t *p, unsigned idx, uint32_t ps);
/* Rebuilds p from cells (in key order; they must not point into p), with the longest prefix
 * common to their keys. */
void bt_pg_build(uint8_t *p, uint32_t ps, uint32_t pgno, int type, int level, uint32_t link,
                 const bt_cell *cells, size_t n);
/* Fills the CRC field of page pgno (page 0: the meta layout). */
void bt_pg_seal(uint8_t *p, uint32_t ps, uint32_t pgno);
/* Whether page pgno's CRC field matches its bytes. */
bool bt_pg_crc_ok(const uint8_t *p, uint32_t ps, uint32_t pgno);
/* Structural check of a page read from disk (slots, cells, and the prefix and windows the
 * searches rely on); NULL when fine, else a static reason. */
const char *bt_pg_sane(const uint8_t *p, uint32_t ps, uint32_t pgno);
/* The prefix and window part of bt_pg_sane, for a leaf or internal page whose slots and cells
 * were already checked: the prefix is no longer than any key, every key starts with the same
 * prefix bytes, every window matches its key. NULL when fine, else a static reason. */
const char *bt_pg_prefix_check(const uint8_t *p);

/* ---- meta page (page 0) ----
 * 0 magic[8]  8 u32 version  12 u32 page_size  16 u32 root  20 u32 height (1 = root is a
 * leaf)  24 u32 hwm (pages [0, hwm) exist)  28 u32 free_head  32 u64 key_count
 * 40 u64 free_count  48 u64 last_lsn (group that wrote this image)  56 u64 checkpoint_lsn
 * 64 u64 db_id (random at creation, also in the log header)  72 u64 log_gen (the log generation
 * that follows the checkpoint)  80 u64 data_lsn (btree.db may hold changes up to this LSN: the
 * checkpoint's, or a later steal write-back's; the log must reach it)
 * 88 u32 crc of bytes [0, 88) and [92, page_size)  92.. zero. */
typedef struct bt_meta {
    uint32_t page_size, root, height, hwm, free_head;
    uint64_t key_count, free_count, last_lsn, checkpoint_lsn;
    uint64_t db_id, log_gen, data_lsn;
} bt_meta;

/* Writes m as page 0 (ps bytes, sealed with its CRC). */
void bt_meta_encode(const bt_meta *m, uint8_t *p, uint32_t ps);
/* "Extend a CRC32 over ps - 92 zero bytes" as an affine map over GF(2) (zlib's crc32 is
 * affine in its running value): base = the map of 0, col[b] = the map of bit b xor base. It
 * lets the meta page's CRC (over [0, 88) and the zero bytes [92, ps)) be computed from its 88
 * bytes of fields at every commit, instead of over a whole zeroed page. */
typedef struct bt_zext {
    uint32_t base, col[32];
} bt_zext;
/* Fills z for pages of ps bytes (4096..65536). */
void bt_zext_init(bt_zext *z, uint32_t ps);
/* Writes the BT_META_LEN (96) bytes of page 0's fields and CRC for m into p: the same bytes
 * as the first 96 of bt_meta_encode (the rest of page 0 is zero). z: from bt_zext_init with
 * m->page_size. */
void bt_meta_encode_head(const bt_meta *m, uint8_t *p, const bt_zext *z);
/* Decodes and validates page 0. Errors: KV_CORRUPTION naming path. */
kv_status bt_meta_decode(const uint8_t *p, uint32_t ps, const char *path, bt_meta *m);

/* ---- buffer pool (pool.c): CLOCK over frames, hash on page number ---- */
typedef struct bt_frame {
    uint32_t pgno; /* UINT32_MAX when empty */
    _Atomic int pins;
    _Atomic uint8_t ref;
    bool dirty;         /* newer than the data file's copy: evicted only once written back */
    uint64_t lsn;       /* the LSN of the group that last changed it (the WAL rule's page LSN) */
    uint64_t txn_mark;  /* the group that last touched it */
    uint64_t mod_epoch; /* epoch of the group that produced this version (0 = unknown/old) */
    struct bt_frame *hnext;
    uint8_t *data;
} bt_frame;

/* Bytes of a frame's header, a multiple of a cache line; the frame's page follows it. */
#define BT_FRAME_HDR ((sizeof(bt_frame) + 63) & ~(size_t)63)
/* The page of frame f: at a fixed offset, so a lookup can load the page without first
 * loading a pointer from the frame (one dependent cache miss less per level). */
static inline uint8_t *bt_frame_page(const bt_frame *f)
{
    return (uint8_t *)f + BT_FRAME_HDR;
}

/* A hash bucket of the pool: the first frame of its chain (NULL when empty) and that frame's
 * page number (pool.c, lookup). */
typedef struct bt_bucket {
    bt_frame *f;
    uint32_t pgno;
} bt_bucket;

typedef struct bt_pool {
    pthread_rwlock_t lock;
    uint32_t ps;
    size_t budget; /* frames */
    bt_frame **frames;
    size_t nframes, cap;
    void **slabs; /* the allocations frames are carved from (pool.c) */
    size_t nslabs, slabcap, slab_left;
    uint8_t *slab_next;
    bt_bucket *buckets;
    size_t nbuckets; /* power of two */
    size_t hand;
    size_t ndirty;
    size_t clean_hand; /* the write-back's own CLOCK hand (flush.c) */
    size_t ref_from;   /* frames from which hits set reference bits (write-back or eviction) */
    kv_file *file;
    const char *path;
    _Atomic uint64_t misses, evictions;
    _Atomic uint64_t writebacks, writeback_batches; /* steal: pages and batches (flush.c) */
    /* Counts the write-backs' and checkpoints' writes to the data file: odd while one writes
     * pages, even
     * otherwise. A page read from disk with no lock held is put in the pool only if this did
     * not change meanwhile (see bt_pool_get). */
    _Atomic uint64_t disk_seq;
    _Atomic uint64_t warmed; /* pages put in the pool by the warmer (warm.c) */
    /* Hits are counted in 16 cache-line-sized shards picked per thread, so that many readers do
     * not all increment one shared counter. */
    struct {
        _Atomic uint64_t n;
        char pad[56];
    } hits[16];
} bt_pool;

/* Counts n cache hits. */
void bt_pool_count_hits(bt_pool *p, uint64_t n);
/* Cache hits so far. */
uint64_t bt_pool_hits(bt_pool *p);

/* Sets up a pool of `bytes` bytes (at least 16 frames of ps bytes) over the data file (not
 * owned; path names it in messages). Errors: KV_NOMEM when out of memory. */
kv_status bt_pool_init(bt_pool *p, uint32_t ps, uint64_t bytes, kv_file *file, const char *path);
/* Frees every frame (none may be pinned). */
void bt_pool_free(bt_pool *p);
/* Returns page pgno pinned (read and CRC-checked on a miss); unpin with pool_unpin. Errors:
 * KV_NOMEM (read failed, out of memory), KV_CORRUPTION (short file, CRC or structure mismatch,
 * naming the file, page and offset). */
kv_status bt_pool_get(bt_pool *p, uint32_t pgno, bt_frame **out);
/* Call before (begin) and after (end) writing pages to the data file while the pool is in
 * use (the checkpoint): a page read concurrently is then not trusted as the disk's copy. */
void bt_pool_disk_write_begin(bt_pool *p);
void bt_pool_disk_write_end(bt_pool *p);
/* The warmer's frames (warm.c): up to n fresh frames, never evicting and never passing the
 * budget, each pinned and in no hash chain, so that the warmer can fill them with no lock held
 * (the copy, and the page faults of fresh memory, no longer stall readers). Returns how many
 * (0: the pool is full or out of memory). Hand every one back with bt_pool_adopt. */
size_t bt_pool_reserve(bt_pool *p, bt_frame **out, size_t n);
/* The warmer's insert: frames[i] (from bt_pool_reserve) holds page first + i, read from disk
 * when disk_seq was `seq`, and ok[i] says it passed its checks (CRC and structure). Under the
 * write lock, puts each good page that is not cached yet in the pool (unreferenced: CLOCK's
 * first pick) and frees the other frames for reuse. Returns the number of pages put in, or
 * SIZE_MAX when a write-back or checkpoint wrote to the data file since `seq` (the copies may
 * be stale: every frame is freed). */
size_t bt_pool_adopt(bt_pool *p, uint32_t first, bt_frame *const *frames, const bool *ok, size_t n,
                     uint64_t seq);
/* Returns a pinned zeroed frame for a page that is not on disk yet (pgno >= old hwm). */
kv_status bt_pool_new(bt_pool *p, uint32_t pgno, bt_frame **out);
/* Releases a pin of bt_pool_get/bt_pool_new (NULL allowed). */
static inline void pool_unpin(bt_frame *f)
{
    if (!f)
        return;
    long left = (long)atomic_fetch_sub_explicit(&f->pins, 1, memory_order_release);
    assert(left > 0); /* the caller held a pin */
    (void)left;
}
/* Marks f dirty (newer than the data file: not evictable until written back) or clean. */
void bt_pool_set_dirty(bt_pool *p, bt_frame *f, bool dirty);
/* Removes f from the pool (rollback of a page that never existed). */
void bt_pool_drop(bt_pool *p, bt_frame *f);
/* With the pool's read lock held by the caller (so nothing can be evicted): the cached frame
 * of pgno with its reference bit set, or NULL. No pin is needed while the lock is held. */
bt_frame *bt_pool_find_locked(bt_pool *p, uint32_t pgno);
/* The cached frame of pgno or NULL (no pin, caller excludes writers and evictors). */
bt_frame *bt_pool_peek(bt_pool *p, uint32_t pgno);

/* ---- snapshots (snap.c): saved page versions for iterators ---- */
typedef struct bt_ver {
    uint32_t pgno;
    uint64_t until; /* visible to snapshots with epoch < until */
    struct bt_ver *next;
    uint8_t data[];
} bt_ver;

typedef struct bt_vstore {
    pthread_mutex_t mu;
    bt_ver **buckets;
    size_t nbuckets;
    size_t count;
    uint64_t *live; /* epochs of live iterators */
    size_t nlive, cap;
    _Atomic uint64_t max_live_plus1; /* 0 when no iterator lives */
} bt_vstore;

/* ---- the open group (txn.c): pages touched by the current atomic change ---- */
typedef struct bt_touch {
    bt_frame *f;
    uint8_t *before; /* NULL for a page created in this group */
    bool was_dirty;
    bool imaged; /* the log's generation already holds a full image of the page (a delta will do) */
    uint64_t old_epoch;
} bt_touch;

typedef struct bt_txn {
    bt_touch *t;
    size_t n, cap;
    uint8_t **spare; /* reusable before-image buffers */
    size_t nspare, capspare;
    bt_meta meta_before;
    uint64_t id;
    uint64_t epoch; /* the epoch this group will publish */
} bt_txn;

/* The deliberate crash bugs for the lab (docs/lab.md), option bug=NAME (kv_open refuses it
 * without kv_options.allow_bugs). BT_BUG_NONE is the engine as designed; each other value
 * switches on one marked deviation. The names, in this order, are bt_bug_names (engine.c). */
typedef enum bt_bug {
    BT_BUG_NONE = 0,
    BT_BUG_ALLOC_OUTSIDE_LOG,    /* tree.c: an allocation writes the meta page in place */
    BT_BUG_TRUNCATE_BEFORE_SYNC, /* flush.c: the checkpoint resets the log, then fdatasyncs */
    BT_BUG_META_OUTSIDE_LOG,     /* engine.c: every commit writes the meta page in place */
    BT_BUG_NO_DATA_FSYNC,        /* flush.c: the checkpoint never fdatasyncs btree.db */
} bt_bug;

typedef struct bt_db {
    kv_db base;
    kv_fs *fs;
    char *dir, *data_path, *log_path;
    kv_file *data, *log;
    uint32_t ps;
    size_t usable, max_cell, fill_min;
    bt_zext zext; /* meta-page CRC helper for ps */
    kv_durability dur;
    bool read_only; /* opened read-only: recovery in memory, nothing written (kv.h) */
    uint64_t checkpoint_bytes;
    uint64_t cache_bytes;
    bt_bug bug;                   /* BT_BUG_NONE but in the lab */
    size_t dirty_high, dirty_low; /* frames: write-back starts above high, stops at low */

    pthread_rwlock_t tree;
    pthread_mutex_t wmu;
    bt_meta meta;
    bool meta_dirty;
    bt_meta disk_meta; /* page 0 as last written to btree.db (writer mutex) */
    bt_pool pool;
    bt_txn txn;

    /* log */
    uint64_t log_gen, log_end, next_lsn, ckpt_lsn;
    uint32_t log_seed;    /* reclog seed of the current generation (bt_log_seed) */
    uint64_t durable_lsn; /* every group up to this LSN is fdatasync'd in the log (writer mutex) */
    /* Sync marks (common/reclog.h). written: bytes of the log handed to write(2); synced: bytes
     * an fdatasync of the current generation covered; marked: the durable length the last mark
     * named. The interval syncer updates synced from its own thread, so log_gen changes and
     * synced updates happen under sync_mu: a sync that began in an older generation never
     * vouches for bytes of the new one. */
    pthread_mutex_t sync_mu;
    _Atomic uint64_t written, synced;
    uint64_t marked;
    /* One bit per page: the current log generation holds a full image of it (set when a group
     * logs one, cleared at the log reset). A page written back and changed again then logs a
     * delta on that image, as it did while it stayed dirty in the pool. */
    uint64_t *imaged;
    size_t imaged_words;
    kv_buf rec;     /* the group being built */
    kv_buf pending; /* `none` mode: bytes not yet written, starting at file offset pend_off */
    uint64_t pend_off;
    kv_group_commit *gc;
    kv_syncer *syncer;
    _Atomic bool poisoned;

    _Atomic uint64_t epoch;
    bt_vstore vs;

    /* scratch for splits and merges */
    uint8_t *sc[4];
    bt_cell *cl[2];
    size_t clcap;

    /* the warmer (warm.c) */
    int warm_opt;      /* option warm: 0 off, 1 in the background, 2 at open (default) */
    bool warm_running; /* a thread was started and not joined yet */
    pthread_t warmer;
    struct warm_range {
        struct bt_db *db;
        uint32_t first, end; /* pages [first, end) */
    } warm_all;              /* the background warmer's share: the whole file */
    _Atomic bool warm_stop;
    uint32_t warm_end; /* pages [1, warm_end) are loaded */

    /* the background writer (bgw.c) */
    int bgw_opt;        /* option bgwriter: 0 off, 1 a thread (default), 2 inline on the writer */
    unsigned bgw_start; /* option bgwriter_start: percent of checkpoint_bytes */
    pthread_mutex_t flush_mu; /* held while a batch, a write-back or a checkpoint writes pages */
    pthread_mutex_t bgw_mu;   /* guards bgw_req and bgw_seen, with bgw_cv */
    pthread_cond_t bgw_cv;
    uint64_t bgw_req, bgw_seen;
    _Atomic bool bgw_stop;
    bool bgw_running; /* a thread was started and not joined yet */
    pthread_t bgw;
    uint64_t bgw_step;                  /* log bytes between two rounds */
    uint64_t bgw_poke_gen, bgw_poke_at; /* writer mutex: the log's size at the last round */
    uint64_t bgw_gen;                   /* writer mutex: the generation of the current sweep */
    size_t bgw_swept, bgw_hand;         /* writer mutex: frames visited by it, next frame */
    size_t bgw_cap;                     /* pages of a batch */
    uint8_t *bgw_buf;                   /* bgw_cap pages: the batch's copies */
    struct bgw_ent *bgw_ents;
    _Atomic uint64_t bgw_pages, bgw_batches, bgw_syncs;

    _Atomic uint64_t splits, merges, borrows, checkpoints, groups, allocs, frees, records;
    /* bytes of committed log groups redone by the open (written by the opening thread before
     * the handle is shared) */
    uint64_t replayed_bytes;
} bt_db;

/* warm.c (InnoDB's buffer-pool load at start-up) */
/* When the data file (hwm pages) fits in the pool's budget, loads it: at_open, before
 * returning, on one thread per core (up to 4); otherwise on a background thread. Each reads it in
 * 1 MiB chunks, copies each page into a reserved frame, checks its CRC and structure and puts
 * the good ones in the pool (bt_pool_reserve, bt_pool_adopt). Called at the end of open; no error
 * (without the thread pages are simply read when first used). */
void bt_warm_start(bt_db *db, bool at_open);
/* Stops the warmer (if running) and joins it. Before close frees the pool. */
void bt_warm_stop(bt_db *db);
/* Waits for the warmer to finish its pass (tests). */
void bt_warm_wait(bt_db *db);

/* txn.c */
/* Opens a group: remembers the meta page, picks the epoch the group will publish. */
void bt_txn_begin(bt_db *db);
/* Records f as changed by this group (before-image, dirty, snapshot version). */
/* is_new: the page did not exist before (no before-image). Errors: KV_NOMEM (out of memory). */
kv_status bt_txn_touch(bt_db *db, bt_frame *f, bool is_new);
/* Puts every touched page and the meta page back as they were at bt_txn_begin. */
void bt_txn_rollback(bt_db *db);
/* Closes a group that was logged (the before-images go back to the spare list). */
void bt_txn_end(bt_db *db);
/* Frees the group's memory. */
void bt_txn_free(bt_txn *t);

/* tree.c */
typedef struct bt_op {
    int type; /* KV_OP_PUT or KV_OP_DELETE */
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} bt_op;
/* Applies one put or delete inside the open group (tree lock held exclusively): splits,
 * borrows, merges, root growth and shrinkage, overflow chains, free list. Errors: KV_IO,
 * KV_CORRUPTION, KV_NOSPACE (page numbers exhausted); the caller rolls the group back. */
kv_status bt_tree_apply(bt_db *db, const bt_op *op);
/* Reads the value of the leaf cell at slot i of p (malloc'd copy in *out). */
kv_status bt_tree_read_value(bt_db *db, const uint8_t *p, unsigned i, void **out, size_t *vlen);
/* Looks key up (tree lock held shared); *val is a malloc'd copy of *vlen bytes. Errors:
 * KV_NOT_FOUND, KV_IO, KV_CORRUPTION. */
kv_status bt_tree_get(bt_db *db, const void *key, size_t klen, void **val, size_t *vlen);

/* wal.c (format: docs/btree.md section 4; SQLite's WAL frames, InnoDB's mini-transactions; the
 * framing and the torn-tail rule are common/reclog's) */
/* The log's header, one of its two slots. */
typedef struct bt_loghdr {
    uint32_t ps;
    uint64_t gen;      /* the generation: +1 at every reset; lives in slot gen % 2 */
    uint64_t db_id;    /* the database's identity, also in the meta page */
    uint64_t ckpt_lsn; /* the checkpoint this generation follows: its first group is +1 */
    uint64_t off;      /* the slot's offset in the file (0 or BT_LOG_SLOT1) */
} bt_loghdr;
/* The reclog seed of the records of generation gen of database db_id: the salt mixes both, so a
 * record of another generation or another database never passes its check. */
uint32_t bt_log_seed(uint64_t db_id, uint64_t gen);
/* Reads both header slots of the log (path names it in messages) and picks the valid one of the
 * highest generation. Errors: KV_CORRUPTION naming path and offset (short file, no valid slot,
 * slots of two databases), KV_IO. */
kv_status bt_wal_read_header(kv_file *log, const char *path, bt_loghdr *h);
/* Logs the open group: a full image (first change since the checkpoint) or a delta of every
 * touched page, the meta page, a COMMIT; one write(2) (`none`: into the user-space buffer),
 * preceded by a sync mark when an fdatasync made more of the log durable since the last mark.
 * Errors: KV_IO, KV_NOSPACE, KV_NOMEM (the caller poisons the handle). */
kv_status bt_wal_commit_group(bt_db *db);
/* Writes the `none` mode buffer to the log. Errors: KV_IO, KV_NOSPACE. */
kv_status bt_wal_flush_pending(bt_db *db);
/* Notes that an fdatasync of the log succeeded that began when `len` bytes of generation gen had
 * been written: the next group starts with a mark naming them (ignored if gen is over). */
void bt_wal_synced(bt_db *db, uint64_t gen, uint64_t len);
/* fdatasync of the log by the writer (writer mutex held, `none` buffer flushed), noted for the
 * marks. Errors: KV_IO. */
kv_status bt_wal_sync(bt_db *db);
/* Starts a new log generation following the checkpoint at ckpt_lsn: the header of generation
 * + 1 written into the other slot and fdatasync'd, then the old records cut. Only after the data
 * file is durable and its meta page names that generation. Errors: KV_IO, KV_NOSPACE. */
kv_status bt_wal_reset(bt_db *db, uint64_t ckpt_lsn);
/* Creates dir/btree.wal holding only the header of generation 1 of database db_id (atomic
 * replace). Errors: KV_IO, KV_NOSPACE, KV_NOMEM. */
kv_status bt_wal_create(kv_fs *fs, const char *dir, uint32_t ps, uint64_t db_id);
/* Recovery at open. disk is btree.db's meta page as read (NULL when it failed its checks;
 * disk_err then holds the message). Checks that the two files belong together (same database,
 * generations and LSNs of one history: an older copy of either is KV_CORRUPTION naming it),
 * replays every complete group of the log, and sets db->meta and the log state. Writable: the
 * rebuilt pages go to the data file, which is fdatasync'd, and the log is reset (or its torn
 * tail cut). Read-only: the rebuilt pages stay in the pool as dirty frames, nothing is written.
 * Errors: KV_CORRUPTION (file and offset), KV_IO, KV_NOMEM. */
kv_status bt_wal_recover(bt_db *db, const bt_meta *disk, const char *disk_err);
/* kv_check's part: the log header and btree.db's meta page on disk still belong together with
 * the handle's state. Errors: KV_CORRUPTION, KV_IO. */
kv_status bt_wal_check_files(bt_db *db);
/* Prints the log's header slots, then every record (framing, marks, groups) with offsets, and
 * how the scan ended (dump). Errors: KV_IO, KV_NOMEM, KV_CORRUPTION (no valid header). */
kv_status bt_wal_dump(bt_db *db, FILE *out);

/* snap.c */
/* Sets up an empty version store. Errors: KV_NOMEM (out of memory). */
kv_status bt_vs_init(bt_vstore *v);
/* Frees every saved version. */
void bt_vs_free(bt_vstore *v);
/* Saves the current image of a page before the group of epoch `until` changes it. */
/* Errors: KV_NOMEM (out of memory). */
kv_status bt_vs_save(bt_vstore *v, uint32_t pgno, const uint8_t *img, uint32_t ps, uint64_t until);
/* The engine's iter_new: a snapshot iterator (free with kv_iter_free). Errors: KV_IO. */
kv_status bt_iter_new(kv_db *kdb, kv_iter **out);

/* flush.c: writing dirty pages back to the data file (steal write-back and checkpoint) */
/* Checkpoint (writer mutex held): fdatasync log, write dirty pages and the meta page, fdatasync
 * data, reset the log (DDIA ch. 3; SQLite's WAL checkpoint). Errors: KV_IO, KV_NOSPACE,
 * KV_POISONED (the handle is then poisoned). */
kv_status bt_checkpoint(bt_db *db);
/* Steal write-back (writer mutex held, tree lock not held): when more than db->dirty_high
 * frames are dirty, picks cold dirty frames (the write-back's CLOCK hand: a referenced frame
 * gets a second chance) until db->dirty_low would remain, makes the log durable up to the
 * newest of their LSNs (the WAL rule: one fdatasync for the batch, after flushing the `none`
 * buffer), writes them sorted by page number (adjacent pages in one pwrite) and marks them
 * clean: CLOCK may then evict them. No fdatasync of the data file (the next checkpoint's covers
 * them). After ARIES's steal policy and InnoDB's flush list. Errors: KV_IO, KV_NOSPACE,
 * KV_POISONED (the handle is then poisoned). */
kv_status bt_writeback(bt_db *db);
/* Writes meta page m (sealed, whole page) to the data file and remembers it as db->disk_meta.
 * Errors: KV_IO, KV_NOSPACE, KV_NOMEM. */
kv_status bt_write_meta(bt_db *db, const bt_meta *m);
/* After pages up to LSN lsn were written in place outside a checkpoint (flush_mu held): raises
 * the data file's meta page's data_lsn to lsn when it is lower, keeping the rest of page 0 as
 * the last checkpoint wrote it. At open the log must reach data_lsn, or the data file is ahead
 * of a lost or older log (wal.c). Errors: those of bt_write_meta. */
kv_status bt_raise_data_lsn(bt_db *db, uint64_t lsn);
/* Whether the log's current generation holds a full image of page pgno. */
static inline bool bt_imaged(const bt_db *db, uint32_t pgno)
{
    return (size_t)(pgno / 64) < db->imaged_words && (db->imaged[pgno / 64] >> (pgno % 64) & 1);
}
/* Makes room in the image bitmap for pages [0, npages) (before a group is logged, so that
 * marking its pages cannot fail). Errors: KV_NOMEM (out of memory). */
kv_status bt_imaged_reserve(bt_db *db, uint32_t npages);
/* Records that the log's current generation holds a full image of pgno (< the reserved count). */
static inline void bt_imaged_mark(bt_db *db, uint32_t pgno)
{
    db->imaged[pgno / 64] |= (uint64_t)1 << (pgno % 64);
}
/* Forgets every image (the log was reset). */
void bt_imaged_clear(bt_db *db);

/* bgw.c: the background writer (PostgreSQL's checkpointer and bgwriter, InnoDB's page
 * cleaner): log fdatasyncs as the log grows and a copy-on-write-back of dirty pages, paced over
 * the last part of the log's growth towards checkpoint_bytes, under the WAL rule. */
/* Allocates the batch buffer (BATCH_BYTES, at least 16 pages; freed by bt_bgw_stop) and, for
 * bgwriter=1, starts the thread. Nothing for bgwriter=0 or a read-only handle. Call at the end
 * of open, after recovery. Errors: KV_NOMEM (out of memory, or no thread could be created). */
kv_status bt_bgw_start(bt_db *db);
/* Writer mutex held, after a group was logged: every checkpoint_bytes / 256 bytes of log, wakes
 * the thread (bgwriter=1) or does its round here (bgwriter=2: the same work at the same points
 * of the operation sequence, for crash tests that replay I/O). I/O errors poison the handle. */
void bt_bgw_poke(bt_db *db);
/* Stops and joins the thread (writer mutex not held) and frees the buffers. Before a close's
 * checkpoint. */
void bt_bgw_stop(bt_db *db);

/* engine.c */
/* Poisons the handle when s is an I/O error; returns s. */
kv_status bt_poison(bt_db *db, kv_status s);
/* Reads page pgno (ps bytes) from the data file into buf, unchecked. Errors: KV_IO,
 * KV_CORRUPTION (short file). */
kv_status bt_read_page_disk(bt_db *db, uint32_t pgno, uint8_t *buf);

/* check.c */
/* The engine's kv_check: KV_OK or KV_CORRUPTION with the first violation. */
kv_status bt_check(kv_db *kdb);
/* The engine's kv_dump (file "btree.db" or "btree.wal" or NULL; page -1 for all). Errors:
 * KV_INVALID (no such file or page), KV_IO, KV_CORRUPTION. */
kv_status bt_dump(kv_db *kdb, FILE *out, const char *file, int64_t page);
/* The engine's picture (kv_dump_picture): the data file with the tree of pages (type, level,
 * key range, fill) and the free list, and the log. Errors: KV_IO, KV_CORRUPTION, KV_POISONED. */
kv_status bt_picture(kv_db *kdb, kv_pic *pic);

#endif
