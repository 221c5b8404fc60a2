/* lsm_int.h: internals of the lsm engine (a log-structured merge tree in the line of LevelDB;
 * DDIA ch. 3 "SSTables and LSM-Trees"). See docs/lsm.md for the whole picture.
 *
 * Files in the database directory (NNNNNN = a decimal file number, all numbers unique):
 *   NNNNNN.log       write-ahead log of the memtable (lsm_log format, magic "KVLSMWAL")
 *   NNNNNN.sst       SSTable (sstable/ format) holding internal keys
 *   MANIFEST-NNNNNN  log of version edits (lsm_log format, magic "KVLSMMAN")
 *   CURRENT          names the live manifest and holds the database id; replaced atomically
 *                    (kv_fs_replace_file): magic "KVLSMCUR" (8), version u32, database id u64,
 *                    name length u32, name, crc32 of everything before it (u32)
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
#include "reclog.h"
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

/* ---- logs: the WAL and the manifest, framed by common/reclog (log.c) ----
 *
 * Header (LSM_LOG_HEADER = 56 bytes, integers little-endian):
 *   0  magic (8): "KVLSMWAL" or "KVLSMMAN"
 *   8  version u32 (LSM_LOG_VERSION)
 *   12 flags u32: LSM_LOG_PREV_DURABLE (WAL only): the previous WAL was durable to prev_len
 *      bytes when this one was created
 *   16 file number u64
 *   24 database id u64 (the one CURRENT holds)
 *   32 previous WAL's number u64 and 40 its length u64 when this WAL was started (WAL only)
 *   48 zero u32
 *   52 crc32 of bytes [0, 52) (u32)
 * Then records in common/reclog's framing (16 bytes: crc, header crc, length, type; sync marks),
 * every CRC seeded with lsm_log_salt(database id, file number): a record of another log, or of
 * another database's log of the same number, never passes. Record types: in a WAL,
 * LSM_REC_BATCH (one batch), LSM_REC_PREV_DURABLE (the previous WAL is durable to the length
 * this one's header records: prev number u64, prev length u64) and LSM_REC_NEXT_LOG (written
 * after the last batch, once the next WAL exists: its number u64); in a manifest, LSM_REC_EDIT
 * (a version edit). */

#define LSM_LOG_HEADER       56
#define LSM_LOG_VERSION      2
#define LSM_LOG_PREV_DURABLE 1u
#define LSM_WAL_MAGIC        "KVLSMWAL"
#define LSM_MAN_MAGIC        "KVLSMMAN"
#define LSM_REC_BATCH        1
#define LSM_REC_PREV_DURABLE 2
#define LSM_REC_NEXT_LOG     3
#define LSM_REC_EDIT         1

typedef struct lsm_log_header {
    uint32_t version, flags;
    uint64_t number, db_id, prev_number, prev_len;
} lsm_log_header;

/* The 64-bit salt of log `number` of database db_id (kv_reclog_seed of it seeds the CRCs). */
uint64_t lsm_log_salt(uint64_t db_id, uint64_t number);
/* Encodes h with magic into out (LSM_LOG_HEADER bytes). */
void lsm_log_header_encode(uint8_t *out, const char *magic, const lsm_log_header *h);

typedef struct lsm_log {
    _Atomic int refs;
    kv_file *f;
    char *path;
    uint64_t number;
    uint64_t prev_number, prev_len; /* the header's */
    uint32_t seed;                  /* kv_reclog_seed(lsm_log_salt(db id, number)) */
    _Atomic uint64_t written;       /* bytes written to the file (writer stores, syncer loads) */
    _Atomic uint64_t synced;        /* bytes the last successful fdatasync covered */
    uint64_t vouched;               /* bytes the marks written so far vouch for (writer only) */
    kv_buf buf;                     /* KV_RECLOG_MARK_SIZE reserved bytes, then records not yet
                                       written */
    size_t rec_start;               /* offset in buf of the record being built */
} lsm_log;

/* Creates dir/name with header h and fsyncs the directory; with sync_header the header is also
 * fdatasynced (before the directory), so that the first write starts with a sync mark (a WAL:
 * a damaged header is then told from one that never became durable). The file must not exist
 * (a log number is never reused). Errors: KV_IO, KV_NOSPACE, KV_NOMEM. */
kv_status lsm_log_create(kv_fs *fs, const char *dir, const char *name, const char *magic,
                         const lsm_log_header *h, bool sync_header, lsm_log **out);
void lsm_log_ref(lsm_log *l);
/* Drops a reference; the last one closes the file (without syncing). */
void lsm_log_unref(lsm_log *l);
/* Builds a record in l->buf: begin, append the payload to l->buf, end with its type. begin is
 * false when out of memory. Writer only (the group-commit leader, or the manifest's owner). */
bool lsm_log_begin(lsm_log *l);
void lsm_log_end(lsm_log *l, uint8_t type);
/* Writes the buffered records with one pwrite, starting with a sync mark when an fdatasync made
 * bytes durable that no mark vouches for yet (common/reclog.h). Writer only.
 * Errors: KV_IO, KV_NOSPACE. */
kv_status lsm_log_flush(lsm_log *l);
/* Appends and writes a NEXT_LOG record naming WAL next (the log gets no other record after
 * it). Writer only. Errors: KV_NOMEM, KV_IO, KV_NOSPACE. */
kv_status lsm_log_append_next(lsm_log *l, uint64_t next);
/* fdatasyncs the log; the bytes written before the call are then durable (any thread).
 * Errors: KV_IO (never retried: the caller poisons the handle). */
kv_status lsm_log_sync(lsm_log *l);
/* Flushes, fdatasyncs, and when that made bytes durable that no mark vouches for, writes a mark
 * and fdatasyncs again: every record of the log is then vouched for, so that damage to any of
 * them is told from a torn tail (a clean close; a manifest edit before its replaced files are
 * deleted). Writer only. Errors: KV_IO, KV_NOSPACE. */
kv_status lsm_log_seal(lsm_log *l);

/* What lsm_log_read found. */
typedef struct lsm_log_info {
    bool header_ok;        /* false: the header never became durable (a WAL whose creation was
                              cut by a power loss: it holds nothing) */
    lsm_log_header h;      /* when header_ok */
    kv_reclog_result r;    /* the record scan (r.end: where the valid prefix ends) */
    bool prev_durable_rec; /* a WAL's valid prefix holds an LSM_REC_PREV_DURABLE record */
    uint64_t data_end;     /* end of the last record in it that is no mark and no NEXT_LOG */
    uint64_t next_log;     /* the number a NEXT_LOG record names (0: none) */
    uint64_t next_off;     /* and that record's offset */
} lsm_log_info;

/* Reads the log at path (the log `number` of database db_id, magic LSM_WAL_MAGIC or
 * LSM_MAN_MAGIC), checks its header and scans its records under reclog's damage rule, calling
 * visit (may be NULL) for each valid record, marks included, in order. A header that fails its
 * check is KV_CORRUPTION, except in a WAL without any valid sync mark (nothing in it was ever
 * durable): then *info says !header_ok. With keep non-NULL, a log whose header passed hands its
 * bytes (info->r.size of them) to the caller in *keep (free them), else *keep is NULL.
 * Errors: KV_NOT_FOUND (no file), KV_CORRUPTION naming path and offset (bad header, another
 * file number or database id, damage a sync mark vouches for, a record after a NEXT_LOG),
 * KV_IO, KV_NOMEM, visit's own error. */
kv_status lsm_log_read(kv_fs *fs, const char *path, const char *magic, uint64_t number,
                       uint64_t db_id, kv_reclog_visit_fn visit, void *ctx, lsm_log_info *info,
                       void **keep);

/* ---- versions and the manifest (version.c) ---- */

struct lsm_file {
    _Atomic int refs;
    uint64_t number;
    uint64_t size;               /* bytes */
    uint64_t unique_id;          /* written in the table's footer and in the manifest */
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
    uint64_t number, size, unique_id;
    uint8_t *smallest, *largest;
    size_t smallest_len, largest_len;
    uint64_t entries;
    lsm_file *file; /* opened file (runtime only), or NULL */
} lsm_edit_file;

typedef struct lsm_edit {
    bool has_log_number, has_next_file, has_last_seq, has_comparator, has_sealed, has_compaction;
    uint64_t log_number, next_file, last_seq;
    int compaction; /* LSM_COMPACTION_*: the strategy the database was created with (written
                       in each manifest's first record by a tiered database only) */
    uint64_t sealed_log, sealed_len; /* a clean close sealed this WAL at this length */
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
bool lsm_edit_add(lsm_edit *e, int level, uint64_t number, uint64_t size, uint64_t unique_id,
                  const uint8_t *sm, size_t sml, const uint8_t *lg, size_t lgl, uint64_t entries,
                  lsm_file *file);
/* Adds the table f at level (its number, size, id, keys and entries). */
bool lsm_edit_add_file(lsm_edit *e, int level, lsm_file *f);
bool lsm_edit_del(lsm_edit *e, int level, uint64_t number);
bool lsm_edit_encode(const lsm_edit *e, kv_buf *out);
/* Decodes a manifest record. Errors: KV_CORRUPTION (message names path and offset). */
kv_status lsm_edit_decode(const uint8_t *p, size_t n, lsm_edit *e, const char *path, uint64_t off);
/* Prints an edit field by field (dump). */
void lsm_edit_print(FILE *out, const lsm_edit *e);
/* Prints the shape of db's current version (dump): the strategy, then per level its tables, or
 * for a tiered database its sorted runs newest first with their sizes (bytes) and entries. */
void lsm_version_print(struct lsm_db *db, FILE *out);

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

/* The deliberate crash bugs for the lab (docs/lab.md), option bug=NAME (kv_open refuses it
 * without kv_options.allow_bugs). LSM_BUG_NONE is the engine as designed; each other value
 * switches on one marked deviation. The names, in this order, are bug_names in db.c. */
typedef enum lsm_bug {
    LSM_BUG_NONE = 0,
    LSM_BUG_WAL_NO_FSYNC,      /* write.c: kv_sync writes the WAL but does not fdatasync it */
    LSM_BUG_TABLE_NO_FSYNC,    /* db.c: SSTables renamed into place without an fdatasync */
    LSM_BUG_LOG_DELETED_EARLY, /* compact.c: a flush deletes its WAL before writing the table */
    LSM_BUG_NO_DIR_FSYNC,      /* db.c: a flushed SSTable's rename without a directory fsync */
} lsm_bug;

/* Compaction strategies (DDIA ch. 3 "Performance optimizations": size-tiered and leveled). */
#define LSM_COMPACTION_LEVELED 0 /* LevelDB: L0, then levels of non-overlapping tables */
#define LSM_COMPACTION_TIERED  1 /* size-tiered: every table at L0 is one sorted run (compact.c) */

typedef struct lsm_opts {
    int compaction;        /* LSM_COMPACTION_* */
    bool compaction_given; /* -o compaction= was set (else a stored strategy is adopted) */
    uint64_t min_merge_width, max_merge_width; /* tiered: runs merged at once */
    uint64_t write_buffer_size;                /* bytes of memtable before it is flushed */
    uint64_t target_file_size;                 /* bytes of a compaction output table */
    uint64_t l0_trigger, l0_slowdown, l0_stop; /* L0 file counts */
    uint64_t level_base_bytes;                 /* bytes of level 1; each deeper level 10x */
    uint64_t manifest_max_size;                /* bytes of manifest before it rolls over */
    uint64_t cache_size;                       /* bytes of block cache */
    bool mmap_reads; /* read tables through a mapping (sst_reader_open_ex) */
    sst_writer_opts sst;
    lsm_bug bug; /* LSM_BUG_NONE but in the lab */
} lsm_opts;

#define LSM_CURRENT_MAGIC   "KVLSMCUR"
#define LSM_CURRENT_VERSION 2

typedef struct lsm_db {
    kv_db base;
    kv_fs *fs;
    char *dir;
    lsm_opts o;
    kv_durability dur;
    bool read_only; /* recovered in memory only: no file is written, renamed or deleted */
    uint64_t db_id; /* random, chosen at creation, kept in CURRENT and every log header */

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
    uint64_t log_number;             /* logs below this number are obsolete (per the manifest) */
    uint64_t sealed_log, sealed_len; /* the manifest's LOG_SEALED edit, when the last close was
                                        clean (0: none): that WAL's length then */

    lsm_log *manifest;
    uint64_t manifest_number;
    uint64_t manifest_size;

    /* snapshots of live iterators: a multiset of sequence numbers */
    uint64_t *snaps;
    size_t n_snaps, cap_snaps;

    pthread_t bg;
    bool bg_started, stop;
    bool bg_pause;  /* lsm_pause_background_work asked the thread to stop once idle */
    bool bg_paused; /* ... and it is: it starts no work until bg_pause is cleared */
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
    /* bytes of the WALs replayed into memtables by the open (headers included; written by the
     * opening thread before the handle is shared) */
    uint64_t replayed_bytes;
} lsm_db;

/* db.c */
extern const kv_engine kv_engine_lsm;
kv_status lsm_make_table_name(uint64_t number, char *buf, size_t cap);
/* Opens table number (already durable) into a new lsm_file with one reference, checking that it
 * is the table the caller recorded: size bytes and the unique id in its footer. Errors:
 * KV_CORRUPTION naming the file (missing, another size or id, damaged), KV_IO, KV_NOMEM. */
kv_status lsm_open_file(lsm_db *db, uint64_t number, uint64_t size, uint64_t unique_id,
                        lsm_file **out);
/* A new table's unique id: 64 random bits (getrandom), never 0. */
uint64_t lsm_new_unique_id(void);
/* Writes the table that w holds (sst_writer_finish), with the unique id w was made with, and
 * opens it (lsm_open_file) into *out. Frees w. Errors: those of both. */
kv_status lsm_finish_table(lsm_db *db, sst_writer *w, uint64_t number, lsm_file **out);
/* Poisons the handle with status s and the current message (first error wins). */
void lsm_poison(lsm_db *db, kv_status s);
void lsm_poison_locked(lsm_db *db, kv_status s); /* mu held */
kv_status lsm_poisoned_status(lsm_db *db);
kv_status lsm_poisoned_status_locked(lsm_db *db); /* mu held */
uint64_t lsm_smallest_snapshot(lsm_db *db);       /* mu held */

/* recover.c */
/* Reads CURRENT: the live manifest's number and the database id. Errors: KV_CORRUPTION naming
 * CURRENT (missing, bad magic, version, crc or name), KV_IO, KV_NOMEM. */
kv_status lsm_read_current(lsm_db *db, uint64_t *number, uint64_t *db_id);
/* Reads CURRENT and replays the manifest it names into *acc (the sum of its edits: every live
 * table as an add; tables not opened). Caller frees acc with lsm_edit_free. Errors:
 * KV_CORRUPTION naming file and offset (also: a missing manifest, one without its first
 * record, an edit deleting a table the version lacks), KV_IO, KV_NOMEM. */
kv_status lsm_load_manifest(lsm_db *db, uint64_t *number, uint64_t *db_id, lsm_edit *acc);

/* The WALs at or above a log number, read and checked as a chain (recover.c's header comment):
 * numbers[0..n) ascending, their paths, bytes and scans; the first `replay` of them are the
 * ones to replay (each up to infos[i].r.end), the rest were never durable. */
typedef struct lsm_wal_chain {
    size_t n, replay;
    uint64_t *numbers;
    char **paths;
    void **data;
    lsm_log_info *infos;
} lsm_wal_chain;
/* Reads the chain of db->dir's WALs (listed in names) from log_number on, with db->db_id.
 * Errors: KV_CORRUPTION naming file and offset (a missing first log or predecessor, a damaged
 * log, a predecessor shorter than a later log says was durable), KV_IO, KV_NOMEM. Free *c
 * with lsm_wal_chain_free in every case. */
kv_status lsm_wal_chain_read(lsm_db *db, const kv_namelist *names, uint64_t log_number,
                             lsm_wal_chain *c);
void lsm_wal_chain_free(lsm_wal_chain *c);
/* Recovers the database (mu held; see recover.c). Errors: KV_CORRUPTION naming file and
 * offset, KV_IO, KV_NOSPACE, KV_NOMEM. */
kv_status lsm_recover(lsm_db *db);

/* manifest.c: appends the edit to the manifest (rolling over when large) and makes it
 * durable, then installs the new version. mu held on entry and exit (released during I/O;
 * only the background thread and open call this). */
kv_status lsm_log_and_apply(lsm_db *db, lsm_edit *e);
kv_status lsm_write_snapshot_manifest(lsm_db *db, lsm_version *v, const lsm_edit *extra);
/* Checks the strategy a loaded manifest records (acc: its edits summed; manifest: its name, for
 * messages) against db->o: a database without the record is leveled. When -o compaction was not
 * given the stored strategy is adopted (db->o.compaction set). Errors: KV_INVALID naming the
 * stored strategy when the option asks for the other one (no conversion: a leveled database's
 * deeper levels are no runs, and a tiered one's overlapping runs break leveled's invariants),
 * KV_CORRUPTION when a tiered database's manifest names a table outside level 0. */
kv_status lsm_check_compaction(lsm_db *db, const lsm_edit *acc, const char *manifest);
/* kv_close's last step, once the current WAL is sealed: appends to the manifest an edit naming
 * that WAL and its final length (LOG_SEALED) and seals the manifest, so that a WAL a clean
 * close left whole and later found cut short is damage, not a torn tail. No other thread may
 * run. Errors: KV_NOMEM, KV_IO, KV_NOSPACE. */
kv_status lsm_seal_in_manifest(lsm_db *db);
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
/* The name of an LSM_COMPACTION_* strategy ("leveled", "tiered"). */
const char *lsm_compaction_name(int compaction);
/* Size-tiered compaction (Cassandra's STCS buckets, over adjacent runs as in RocksDB's universal
 * compaction): the number of runs, newest first, of the newest group of similar size in v, the
 * group the next merge takes once it holds min_merge_width runs (writers slow down and stop on
 * this count as leveled ones do on L0's). 0 for an empty v. mu held, or v pinned. */
size_t lsm_tiered_window(const lsm_db *db, const lsm_version *v);

/* inspect.c */
kv_status lsm_stats(kv_db *kdb, kv_stats *out);
kv_status lsm_check(kv_db *kdb);
kv_status lsm_dump(kv_db *kdb, FILE *out, const char *file, int64_t page);
/* The engine's picture (kv_dump_picture): memtables and their WALs, the manifest, each level
 * with its tables (entries, size, user-key range). Errors: KV_NOMEM. */
kv_status lsm_picture(kv_db *kdb, kv_pic *pic);

/* The kinds of file in an lsm directory (LevelDB's FileType). */
typedef enum lsm_file_type {
    LSM_FILE_OTHER = 0, /* not ours: left alone */
    LSM_FILE_LOG,       /* NNNNNN.log: a WAL */
    LSM_FILE_TABLE,     /* NNNNNN.sst: an SSTable */
    LSM_FILE_MANIFEST,  /* MANIFEST-NNNNNN */
    LSM_FILE_CURRENT,   /* CURRENT: names the live manifest */
    LSM_FILE_TEMP,      /* NAME.tmp: a file being written, never live */
} lsm_file_type;

/* Parses a file name into its kind; *number gets the file number of a log, table or manifest. */
lsm_file_type lsm_parse_name(const char *name, uint64_t *number);

#endif
