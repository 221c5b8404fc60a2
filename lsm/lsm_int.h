/* lsm_int.h: internals of the lsm engine (a log-structured merge tree in the line of LevelDB;
 * DDIA ch. 3 "SSTables and LSM-Trees"). See docs/lsm.md for the whole picture.
 *
 * Files in the database directory (NNNNNN = a decimal file number, all numbers unique):
 *   NNNNNN.log       write-ahead log of the memtable (lsm_log format, magic "KVLSMWAL")
 *   NNNNNN.sst       SSTable (sstable/ format) holding internal keys
 *   MANIFEST-NNNNNN  log of version edits (lsm_log format, magic "KVLSMMAN")
 *   CURRENT          names the live manifest; replaced atomically (kv_fs_replace_file)
 *
 * Internal key = user key ++ 8-byte trailer, little-endian (sequence number << 8 | type), type
 * 1 = value, 0 = tombstone. Order: user key ascending (kv_key_cmp), then trailer descending, so
 * the newest version of a key comes first (LevelDB's InternalKeyComparator). */
#ifndef KVLAB_LSM_INT_H
#define KVLAB_LSM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "coding.h"
#include "group_commit.h"
#include "kv_engine.h"
#include "sstable.h"
#include "syncer.h"

#define LSM_LEVELS     7
#define LSM_TYPE_DEL   0
#define LSM_TYPE_VALUE 1
#define LSM_MAX_SEQ    ((UINT64_C(1) << 56) - 1)

/* ---- internal keys (ikey.c) ---- */

static inline uint64_t lsm_trailer(uint64_t seq, int type)
{
    return (seq << 8) | (uint64_t)type;
}
/* Appends user key + trailer to b. False when out of memory. */
bool lsm_ikey_append(kv_buf *b, const void *ukey, size_t ulen, uint64_t seq, int type);
static inline uint64_t lsm_ikey_trailer(const uint8_t *k, size_t klen)
{
    return kv_get_u64(k + klen - 8);
}
int lsm_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
static inline int lsm_ukey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return kv_key_cmp(a, alen, b, blen);
}
extern const sst_keyops lsm_ikey_ops;
/* Prints an internal key as "user"@seq:type. */
void lsm_ikey_print(FILE *out, const uint8_t *k, size_t klen);

/* ---- arena + skiplist memtable (memtable.c), after LevelDB's db/skiplist.h ---- */

typedef struct lsm_mem lsm_mem;
/* A new memtable with one reference, or NULL when out of memory. */
lsm_mem *lsm_mem_new(void);
void lsm_mem_ref(lsm_mem *m);
void lsm_mem_unref(lsm_mem *m);
/* Inserts (single writer; readers may run concurrently). False when out of memory. */
bool lsm_mem_add(lsm_mem *m, uint64_t seq, int type, const uint8_t *ukey, size_t ulen,
                 const uint8_t *val, size_t vlen);
/* Bytes of entries and nodes inserted (how full it is), and bytes of memory held (arena). */
size_t lsm_mem_usage(const lsm_mem *m);
size_t lsm_mem_memory(const lsm_mem *m);
uint64_t lsm_mem_entries(const lsm_mem *m);
/* Looks ukey up as of seq: 1 = found value (*val, *vlen point into the memtable), 0 = found a
 * tombstone, -1 = no entry. */
int lsm_mem_get(lsm_mem *m, const uint8_t *ukey, size_t ulen, uint64_t seq, const uint8_t **val,
                size_t *vlen);

/* ---- a generic forward iterator over internal keys (iter.c) ---- */

typedef struct lsm_it lsm_it;
typedef struct lsm_it_ops {
    void (*seek_first)(lsm_it *it);
    void (*seek)(lsm_it *it, const uint8_t *ikey, size_t klen);
    bool (*valid)(const lsm_it *it);
    void (*next)(lsm_it *it);
    const uint8_t *(*key)(const lsm_it *it, size_t *klen);
    const uint8_t *(*value)(const lsm_it *it, size_t *vlen);
    kv_status (*status)(const lsm_it *it);
    void (*free)(lsm_it *it);
} lsm_it_ops;
struct lsm_it {
    const lsm_it_ops *ops;
};

lsm_it *lsm_mem_iter(lsm_mem *m); /* holds a reference to m */

typedef struct lsm_file lsm_file;
typedef struct lsm_version lsm_version;
lsm_it *lsm_table_iter(lsm_file *f);               /* holds a reference to f */
lsm_it *lsm_level_iter(lsm_version *v, int level); /* holds a reference to v */
/* Over files sorted by key and not overlapping (a level's run); refs each file. */
lsm_it *lsm_files_iter(lsm_file **files, size_t n);
lsm_it *lsm_merge_iter(lsm_it **children, size_t n); /* owns the children */
void lsm_it_free(lsm_it *it);

/* ---- logs: the WAL and the manifest share one record format (log.c) ----
 *
 * Header (40 bytes): magic (8), version u32, file number u64 (the generation: records of
 * another file never replay here), previous log's number u64 and its final length u64 (WAL
 * only, else 0: recovery stops at a WAL whose predecessor came back shorter, so a lost suffix
 * of one log never leaves a hole before the next), crc32 of the 36 bytes before it (u32).
 * Record: crc32 u32 over (file number u64, length u32, payload), length u32, payload. */

#define LSM_LOG_HEADER 40
#define LSM_REC_HEADER 8
#define LSM_WAL_MAGIC  "KVLSMWAL"
#define LSM_MAN_MAGIC  "KVLSMMAN"

typedef struct lsm_log {
    _Atomic int refs;
    kv_file *f;
    char *path;
    uint64_t number;
    uint32_t seed;    /* crc32 of the file number, where every record's crc starts */
    uint64_t written; /* bytes written to the file */
    kv_buf buf;       /* encoded records not yet written */
    size_t rec_start; /* offset in buf of the record being built */
} lsm_log;

/* Creates dir/name with a header and fsyncs the directory. Errors: KV_IO, KV_NOSPACE. */
kv_status lsm_log_create(kv_fs *fs, const char *dir, const char *name, const char *magic,
                         uint64_t number, uint64_t prev_number, uint64_t prev_len, lsm_log **out);
void lsm_log_ref(lsm_log *l);
/* Drops a reference; the last one closes the file (without syncing). */
void lsm_log_unref(lsm_log *l);
/* Builds a record in l->buf: begin, append payload bytes to l->buf, end. */
bool lsm_log_begin(lsm_log *l);
void lsm_log_end(lsm_log *l);
/* Writes the buffered records (one pwrite). */
kv_status lsm_log_flush(lsm_log *l);
kv_status lsm_log_sync(lsm_log *l);

/* Replays the log at path: calls fn for every whole record in order. A torn tail (the record
 * runs past the end, or a bad record whose piece of some 512-byte sector is all zero: what a power
 * loss leaves) ends the replay and sets *torn; a bad record followed by a good one is
 * KV_CORRUPTION naming file and offset. A file shorter than its header, or with an all-zero
 * header, is an empty torn log. *end = offset after the last good record. */
typedef kv_status (*lsm_log_fn)(void *ctx, const uint8_t *p, size_t n, uint64_t off);
kv_status lsm_log_replay(kv_fs *fs, const char *path, const char *magic, uint64_t number,
                         lsm_log_fn fn, void *ctx, bool *torn, uint64_t *end);
/* Reads a log's header: *prev_number and *prev_len (0 when the header is missing or zero).
 * Errors: KV_CORRUPTION (bad magic, crc or number), KV_IO. */
kv_status lsm_log_prev(kv_fs *fs, const char *path, const char *magic, uint64_t number,
                       uint64_t *prev_number, uint64_t *prev_len);

/* ---- versions and the manifest (version.c) ---- */

struct lsm_file {
    _Atomic int refs;
    uint64_t number;
    uint64_t size;               /* bytes */
    uint8_t *smallest, *largest; /* internal keys */
    size_t smallest_len, largest_len;
    uint64_t entries;
    sst_reader *reader;
};

void lsm_file_ref(lsm_file *f);
void lsm_file_unref(lsm_file *f);

struct lsm_version {
    _Atomic int refs;
    struct lsm_db *db;
    lsm_file **files[LSM_LEVELS];
    size_t n[LSM_LEVELS];
    struct lsm_version *prev, *next; /* list of live versions */
};

/* A version edit (LevelDB's VersionEdit): what changes from one version to the next. */
typedef struct lsm_edit_file {
    int level;
    uint64_t number, size;
    uint8_t *smallest, *largest;
    size_t smallest_len, largest_len;
    uint64_t entries;
    lsm_file *file; /* opened file (runtime only), or NULL */
} lsm_edit_file;

typedef struct lsm_edit {
    bool has_log_number, has_next_file, has_last_seq, has_comparator;
    uint64_t log_number, next_file, last_seq;
    char comparator[64];
    lsm_edit_file *adds;
    size_t n_adds, cap_adds;
    struct {
        int level;
        uint64_t number;
    } * dels;
    size_t n_dels, cap_dels;
} lsm_edit;

void lsm_edit_init(lsm_edit *e);
void lsm_edit_free(lsm_edit *e);
/* Adds a file (copies the keys; takes a reference to file when non-NULL). */
bool lsm_edit_add(lsm_edit *e, int level, uint64_t number, uint64_t size, const uint8_t *sm,
                  size_t sml, const uint8_t *lg, size_t lgl, uint64_t entries, lsm_file *file);
bool lsm_edit_del(lsm_edit *e, int level, uint64_t number);
bool lsm_edit_encode(const lsm_edit *e, kv_buf *out);
/* Decodes a manifest record. Errors: KV_CORRUPTION (message names path and offset). */
kv_status lsm_edit_decode(const uint8_t *p, size_t n, lsm_edit *e, const char *path, uint64_t off);
/* Prints an edit field by field (dump). */
void lsm_edit_print(FILE *out, const lsm_edit *e);

/* A new version = base + edit (files of the edit must be opened: e->adds[i].file set).
 * NULL when out of memory. refs = 0. */
lsm_version *lsm_version_apply(struct lsm_db *db, const lsm_version *base, const lsm_edit *e);
void lsm_version_ref(lsm_version *v);
void lsm_version_unref(lsm_version *v);
/* The same with db->mu held by the caller. */
void lsm_version_unref_locked(lsm_version *v);
uint64_t lsm_version_level_bytes(const lsm_version *v, int level);
/* Whether some file in levels > level may hold ukey. */
bool lsm_version_key_in_deeper(const lsm_version *v, int level, const uint8_t *ukey, size_t ulen);
/* Index of the first file at level >= 1 whose largest key >= ikey (binary search). */
size_t lsm_version_find_file(const lsm_version *v, int level, const uint8_t *ikey, size_t klen);

/* ---- the database ---- */

typedef struct lsm_opts {
    uint64_t write_buffer_size;                /* bytes of memtable before it is flushed */
    uint64_t target_file_size;                 /* bytes of a compaction output table */
    uint64_t l0_trigger, l0_slowdown, l0_stop; /* L0 file counts */
    uint64_t level_base_bytes;                 /* bytes of level 1; each deeper level 10x */
    uint64_t manifest_max_size;                /* bytes of manifest before it rolls over */
    uint64_t cache_size;                       /* bytes of block cache */
    bool mmap_reads; /* read tables through a mapping (sst_reader_open_ex) */
    sst_writer_opts sst;
} lsm_opts;

typedef struct lsm_db {
    kv_db base;
    kv_fs *fs;
    char *dir;
    lsm_opts o;
    kv_durability dur;

    pthread_mutex_t mu;
    pthread_mutex_t manifest_mu; /* held while an edit is written and installed (before mu) */
    pthread_cond_t bg_cv;        /* wakes the background thread */
    pthread_cond_t done_cv;      /* signalled when background work finishes */

    lsm_mem *mem, *imm;
    lsm_log *log;          /* WAL of mem */
    lsm_log *imm_log;      /* WAL of imm (NULL when there is no imm): still needed by recovery
                              until imm's table and manifest edit are durable */
    bool imm_log_synced;   /* imm_log is fdatasynced up to its end (it gets no more writes) */
    uint64_t imm_next_log; /* number of the log started when imm was made */
    lsm_version *current;
    lsm_version versions; /* sentinel of the live version list */
    uint64_t next_file;
    _Atomic uint64_t last_seq;
    uint64_t log_number; /* logs below this number are obsolete (per the manifest) */

    lsm_log *manifest;
    uint64_t manifest_number;
    uint64_t manifest_size;

    /* snapshots of live iterators: a multiset of sequence numbers */
    uint64_t *snaps;
    size_t n_snaps, cap_snaps;

    pthread_t bg;
    bool bg_started, stop;
    bool test_hold; /* lsm_test_hold_background asked the thread to stop once idle */
    bool test_held; /* ... and it is: it starts no work until test_hold is cleared */
    bool obsolete_pending;
    kv_buf compact_ptr[LSM_LEVELS];

    /* lsm_compact_all: requests are numbered; the background thread serves every request up to
     * manual_requested at once and then sets manual_done to that number and manual_status. */
    uint64_t manual_requested, manual_done;
    kv_status manual_status;

    _Atomic bool poisoned;
    kv_status bg_error;
    char bg_msg[512];

    sst_cache *cache;
    kv_group_commit *gc;
    kv_syncer *syncer;

    _Atomic uint64_t flushes, compactions, trivial_moves, comp_read, comp_written, stall_us,
        manifest_rolls;
} lsm_db;

/* db.c */
extern const kv_engine kv_engine_lsm;
kv_status lsm_make_table_name(uint64_t number, char *buf, size_t cap);
/* Opens table number (already durable) into a new lsm_file with one reference. */
kv_status lsm_open_file(lsm_db *db, uint64_t number, lsm_file **out);
/* Poisons the handle with status s and the current message (first error wins). */
void lsm_poison(lsm_db *db, kv_status s);
void lsm_poison_locked(lsm_db *db, kv_status s); /* mu held */
kv_status lsm_poisoned_status(lsm_db *db);
kv_status lsm_poisoned_status_locked(lsm_db *db); /* mu held */
/* Reads CURRENT and replays the manifest it names into *acc (the sum of its edits: every live
 * table as an add). Caller frees acc with lsm_edit_free. Errors: KV_CORRUPTION, KV_IO. */
kv_status lsm_load_manifest(lsm_db *db, uint64_t *number, lsm_edit *acc);
uint64_t lsm_smallest_snapshot(lsm_db *db); /* mu held */

/* manifest.c: appends the edit to the manifest (rolling over when large) and makes it
 * durable, then installs the new version. mu held on entry and exit (released during I/O;
 * only the background thread and open call this). */
kv_status lsm_log_and_apply(lsm_db *db, lsm_edit *e);
kv_status lsm_write_snapshot_manifest(lsm_db *db, lsm_version *v, const lsm_edit *extra);
void lsm_install_version(lsm_db *db, lsm_version *v);

/* write.c */
kv_status lsm_put(kv_db *kdb, const void *key, size_t klen, const void *val, size_t vlen);
kv_status lsm_del(kv_db *kdb, const void *key, size_t klen);
kv_status lsm_write(kv_db *kdb, const kv_batch *b);
kv_status lsm_sync(kv_db *kdb);
kv_status lsm_group_write(void *ctx, void *const *items, size_t n, bool sync);
kv_status lsm_interval_sync(void *ctx);
/* Makes every acknowledged commit durable (kv_sync's second half, and kv_close): writes out
 * the current WAL's buffer, fdatasyncs the immutable memtable's WAL if that was not yet done
 * (os/none modes skip it at the switch), then fdatasyncs the current WAL. Only the group
 * commit leader or close (no writers left) may call it: it writes db->log. mu not held.
 * Errors: KV_IO from write or fdatasync (the caller poisons the handle). */
kv_status lsm_sync_wals(lsm_db *db, lsm_log *log);
/* Switches the memtable out (through the group-commit queue, so that no writer is in the
 * middle of the WAL) after waiting for the flush of an earlier immutable memtable; nothing when
 * the memtable is empty. The background thread then flushes it. mu not held.
 * Errors: those of a write (KV_POISONED, KV_IO, KV_NOSPACE). */
kv_status lsm_switch_for_compaction(lsm_db *db);

/* read.c */
kv_status lsm_get(kv_db *kdb, const void *key, size_t klen, void **val, size_t *vlen);
kv_status lsm_iter_new(kv_db *kdb, kv_iter **out);

/* compact.c */
void *lsm_bg_main(void *arg);
/* Writes every entry of m into table `number` and adds it to e at level 0 (nothing for an
 * empty memtable); used by flush and recovery. Does not touch db->mu. */
kv_status lsm_write_level0(lsm_db *db, lsm_mem *m, lsm_edit *e, uint64_t number);
void lsm_delete_obsolete(lsm_db *db); /* mu held */
/* Serves the pending lsm_compact_all requests (background thread, mu held, released during
 * I/O): see lsm.h. Sets manual_done and manual_status and wakes the callers. */
void lsm_run_manual(lsm_db *db);

/* inspect.c */
kv_status lsm_stats(kv_db *kdb, kv_stats *out);
kv_status lsm_check(kv_db *kdb);
kv_status lsm_dump(kv_db *kdb, FILE *out, const char *file, int64_t page);

/* Parses a file name: 1 = log, 2 = table, 3 = manifest, 4 = CURRENT, 5 = a .tmp file, 0 = not
 * ours. *number gets the file number. */
int lsm_parse_name(const char *name, uint64_t *number);

#endif
