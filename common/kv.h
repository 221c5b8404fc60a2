/* kv.h: the one key-value interface of kvlab (docs/design.md section 2).
 *
 * Every engine (btree, lsm, bitcask, wal) and every production peer (leveldb, rocksdb, lmdb,
 * sqlite) is reached through these calls, chosen by name at kv_open(). Keys are 1 to 65,535
 * bytes of arbitrary bytes, ordered by memcmp then length; values are 0 to 64 MiB. An engine
 * may declare lower limits (kv_engine_limits). Sizes out of range return KV_INVALID and write
 * nothing. All calls are thread-safe on one handle. Errors carry a message: kv_errmsg() on the
 * calling thread, kv_last_error() on the handle. */
#ifndef KVLAB_KV_H
#define KVLAB_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

#define KV_MAX_KEY   ((size_t)65535)
#define KV_MAX_VALUE ((uint64_t)64 << 20)

typedef struct kv_db kv_db;
typedef struct kv_iter kv_iter;
typedef struct kv_batch kv_batch;
typedef struct kv_fs kv_fs;

/* ---- durability modes (docs/design.md section 3) ---- */

typedef enum kv_durability_kind {
    KV_DURABILITY_NONE = 0, /* acknowledged in user-space buffers */
    KV_DURABILITY_OS,       /* acknowledged after write(2) */
    KV_DURABILITY_INTERVAL, /* write(2); a background fdatasync every interval_ms */
    KV_DURABILITY_SYNC,     /* fdatasync (and directory fsync) before acknowledging */
} kv_durability_kind;

typedef struct kv_durability {
    kv_durability_kind kind;
    uint32_t interval_ms; /* only for KV_DURABILITY_INTERVAL: 1 to 3,600,000 ms */
} kv_durability;

/* Bit for each kind in kv_engine_durability_mask(). */
#define KV_DURABILITY_BIT(kind) (1u << (kind))

/* Parses "none", "os", "interval:MS" (MS a decimal 1..3600000) or "sync".
 * Errors: KV_INVALID with a message naming the bad text. */
kv_status kv_durability_parse(const char *text, kv_durability *out);

/* Writes the canonical text of d ("interval:100") into buf (cap bytes, at least 24). Returns buf.
 */
char *kv_durability_format(kv_durability d, char *buf, size_t cap);

/* ---- options ---- */

typedef struct kv_option {
    char *key;
    char *value;
} kv_option;

typedef struct kv_options {
    kv_durability durability; /* default: os */
    uint64_t cache_size;      /* bytes of block/page cache; 0 = the engine's default */
    bool create_if_missing;   /* default: true */
    bool read_only;           /* default: false. Recovery happens in memory only: nothing in the
                                 directory is written, renamed or deleted; a missing database is
                                 KV_NOT_FOUND (never created); puts, deletes and batches are
                                 KV_INVALID. Takes a shared lock, so several read-only handles
                                 (any process) may share a directory, but none shares it with a
                                 writer (KV_BUSY), as LMDB's MDB_RDONLY and SQLite's read-only
                                 opens do. */
    kv_fs *fs;                /* file system for kvlab engines; NULL = a new posix one. Not
                                 owned: the caller keeps it alive until kv_close. Peers ignore
                                 it (they do their own I/O). */
    kv_option *extra;         /* engine-specific key=value options, owned by the struct */
    size_t n_extra;
    bool allow_bugs; /* default: false. Lets the extra option bug=NAME through: it
                        switches on one of the engine's deliberate crash-safety bugs
                        (docs/lab.md), for the crash checker's lab and its mutation
                        tests only. Without it kv_open refuses bug= with KV_INVALID,
                        so no library user turns a bug on by a stray option. */
} kv_options;

/* Sets defaults: durability os, cache_size 0, create_if_missing true, read_only false, no fs,
 * no extras, allow_bugs false. */
void kv_options_init(kv_options *o);

/* Adds an engine-specific option from "key=value" text (copied). A later value for the same
 * key replaces the earlier one. Errors: KV_INVALID when there is no '=' or the key is empty. */
kv_status kv_options_set(kv_options *o, const char *key_equals_value);

/* Frees the extras (the struct itself is the caller's). */
void kv_options_free(kv_options *o);

/* The value of an extra option, or NULL when it is not set. */
const char *kv_options_get(const kv_options *o, const char *key);

/* Parses an extra option as an unsigned integer with an optional K/M/G suffix (powers of 1024)
 * into *out; leaves *out unchanged (the default) when the key is not set.
 * Errors: KV_INVALID naming the key and the bad text, or when outside [min, max]. */
kv_status kv_options_get_u64(const kv_options *o, const char *key, uint64_t min, uint64_t max,
                             uint64_t *out);

/* The deliberate bug named by the extra option bug=NAME (docs/lab.md): 0 when the option is not
 * set, else 1 + the index of NAME in names (a NULL-terminated list of the engine's bug names,
 * static strings), into *bug. engine names the engine in messages. With names NULL it only
 * checks the opt-in (kv_open_engine does, before the engine runs) and leaves *bug alone. The
 * idea is the mutation test: a checker is trusted once it catches known-broken variants of the
 * code it checks. Errors: KV_INVALID when bug= is set but o->allow_bugs is not, or NAME is not
 * in names (the message lists them); *bug is then unchanged. */
kv_status kv_options_get_bug(const kv_options *o, const char *engine, const char *const *names,
                             int *bug);

/* ---- engines ---- */

typedef struct kv_limits {
    size_t max_key;     /* bytes, at most KV_MAX_KEY */
    uint64_t max_value; /* bytes, at most KV_MAX_VALUE */
} kv_limits;

/* Names of all registered engines, NULL-terminated, in registry order (kvlab engines first). */
const char *const *kv_engine_names(void);

/* Whether an engine of that name is built in. */
bool kv_engine_exists(const char *name);

/* The engine's declared limits. Errors: KV_INVALID for an unknown engine. */
kv_status kv_engine_limits(const char *engine, kv_limits *out);

/* Bit set of KV_DURABILITY_BIT(kind) the engine honours, 0 for an unknown engine. */
unsigned kv_engine_durability_mask(const char *engine);

/* Whether the engine can open a database read-only (kv_options.read_only); false for an unknown
 * engine. */
bool kv_engine_has_read_only(const char *engine);

/* Whether the engine has a space-reclaiming step for kv_compact (false for an unknown engine
 * and for the production peers). */
bool kv_engine_has_compact(const char *engine);

/* One line saying what the engine is (static string), or NULL for an unknown engine. */
const char *kv_engine_description(const char *engine);

/* The engine's extra option names with a one-line help each ("name: help"), NULL-terminated;
 * NULL for an unknown engine. */
const char *const *kv_engine_option_help(const char *engine);

/* ---- handles ---- */

/* Opens (creating when allowed) the database in directory dir with the named engine, takes the
 * directory lock (file KVLAB.LOCK, flock: exclusive, or shared when read_only), checks the
 * directory's identity file, recovers, and returns a handle in *db (free with kv_close).
 *
 * Identity (docs/design.md section 2): a database directory names its engine and the engine's
 * format version in KVLAB.ID, a four-line text file ("kvlab database", "engine NAME", "format N",
 * "crc HEX") written atomically (KVLAB.ID.tmp, fdatasync, rename, directory fsync) when the
 * database is created, before the engine writes anything. Opening a directory whose KVLAB.ID names
 * another engine or format, or a non-empty directory without one, is KV_INVALID and writes nothing.
 *
 * Errors: KV_INVALID (unknown engine, unknown or bad extra option, NULL args, another engine's or
 * format's directory, a non-empty directory that is no kvlab database), KV_NOTSUP (durability
 * mode the engine cannot honour, read_only for an engine that has no read-only open), KV_BUSY
 * (another handle holds the directory: any writer, or any reader when opening for writing),
 * KV_NOT_FOUND (no database there and !create_if_missing or read_only), KV_CORRUPTION (a damaged
 * KVLAB.ID, or the engine's own files), KV_IO, KV_NOMEM. */
kv_status kv_open(const char *engine, const char *dir, const kv_options *opts, kv_db **db);

/* Makes everything acknowledged durable (every mode), releases the lock, frees the handle (also
 * on error). NULL is allowed. Errors: KV_IO or KV_POISONED when the final sync failed; the
 * directory is recoverable anyway. */
kv_status kv_close(kv_db *db);

/* Whether the handle was opened read-only. */
bool kv_db_read_only(const kv_db *db);

/* The engine name of an open handle (static string). */
const char *kv_db_engine(const kv_db *db);

/* Copies the handle's last error message (set by any call on it that failed with something
 * other than KV_NOT_FOUND) into buf (cap bytes, NUL-terminated). Returns buf. */
char *kv_last_error(kv_db *db, char *buf, size_t cap);

/* Stores value (vlen bytes) under key (klen bytes). Errors: KV_INVALID (sizes out of the
 * engine's limits, nothing written), KV_POISONED, KV_IO, KV_NOSPACE. */
kv_status kv_put(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen);

/* Looks key up. On KV_OK *value is a malloc'd copy of *vlen bytes (non-NULL even when empty) that
 * the caller frees with kv_free. Errors: KV_NOT_FOUND, KV_INVALID, KV_CORRUPTION, KV_IO. */
kv_status kv_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen);

/* Like kv_get but copies at most cap bytes into the caller's buf; *vlen is the full length (a
 * value longer than cap is cut: the caller compares *vlen with cap). */
kv_status kv_get_into(kv_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);

/* Frees a value returned by kv_get. NULL is allowed. */
void kv_free(void *p);

/* Removes key; KV_OK whether it existed or not (a tombstone, as LevelDB does). Errors as
 * kv_put. */
kv_status kv_delete(kv_db *db, const void *key, size_t klen);

/* Applies every operation of b atomically: after any crash all of them or none are visible,
 * and readers never see half. An empty batch is KV_OK. Errors as kv_put; on KV_INVALID no
 * operation is applied. */
kv_status kv_write(kv_db *db, const kv_batch *b);

/* Makes everything acknowledged so far durable (all modes). Errors: KV_IO, KV_POISONED. */
kv_status kv_sync(kv_db *db);

/* ---- batches (common/batch.c) ---- */

typedef enum kv_op_type { KV_OP_PUT = 1, KV_OP_DELETE = 2 } kv_op_type;

typedef struct kv_batch_op {
    kv_op_type type;
    const uint8_t *key; /* points into the batch; valid until the batch changes */
    size_t klen;
    const uint8_t *value; /* NULL for deletes */
    size_t vlen;
} kv_batch_op;

/* A new empty batch, or NULL when out of memory. Free with kv_batch_free. */
kv_batch *kv_batch_new(void);
void kv_batch_free(kv_batch *b);
void kv_batch_clear(kv_batch *b);
/* Copy key and value into the batch. Errors: KV_INVALID (klen 0 or above KV_MAX_KEY, vlen
 * above KV_MAX_VALUE, NULL with non-zero length); the batch is unchanged on error. */
kv_status kv_batch_put(kv_batch *b, const void *key, size_t klen, const void *value, size_t vlen);
kv_status kv_batch_delete(kv_batch *b, const void *key, size_t klen);
/* Number of operations and the i-th (0-based, in insertion order; later ones win). */
size_t kv_batch_count(const kv_batch *b);
kv_batch_op kv_batch_get(const kv_batch *b, size_t i);
/* Sum of key and value bytes of all operations. */
uint64_t kv_batch_bytes(const kv_batch *b);

/* ---- iterators: an ordered range scan over a consistent snapshot ---- */

/* Creates an iterator over the state at this moment (later writes are not seen). It starts
 * unpositioned (not valid): call a seek first. Free with kv_iter_free before kv_close.
 * Errors: KV_IO, KV_CORRUPTION. */
kv_status kv_iter_new(kv_db *db, kv_iter **out);
/* Positions at the first key. */
void kv_iter_seek_first(kv_iter *it);
/* Positions at the first key >= key. */
void kv_iter_seek(kv_iter *it, const void *key, size_t klen);
/* Whether the iterator is at an entry. */
bool kv_iter_valid(const kv_iter *it);
/* Moves to the next key in order. Only when valid. */
void kv_iter_next(kv_iter *it);
/* The current key and value; valid until the next move or free. Only when valid. */
const void *kv_iter_key(const kv_iter *it, size_t *klen);
const void *kv_iter_value(const kv_iter *it, size_t *vlen);
/* KV_OK, or the error that made the iterator stop early; its message (naming file and offset for
 * damage) is then in kv_errmsg() and in the handle's kv_last_error(). An iterator that meets
 * damage stops there: it never skips records (docs/design.md section 4). */
kv_status kv_iter_status(const kv_iter *it);
void kv_iter_free(kv_iter *it);

/* ---- statistics (docs/design.md section 7) ---- */

#define KV_STATS_EXTRA_MAX 32

typedef struct kv_stat_counter {
    char name[40]; /* for example "compactions", "cache_hits", "splits" */
    uint64_t value;
} kv_stat_counter;

typedef struct kv_stats {
    uint64_t user_bytes_written; /* key + value bytes of puts, keys of deletes, since open */
    uint64_t file_bytes_written; /* bytes written to files, since open */
    uint64_t file_bytes_read;    /* bytes read from files, since open */
    uint64_t fsyncs;             /* fsync calls (files and directories), since open */
    uint64_t fdatasyncs;         /* fdatasync calls, since open */
    uint64_t commits;            /* acknowledged puts, deletes and batches, since open */
    uint64_t files;              /* files in the directory now */
    uint64_t disk_bytes;         /* bytes of those files now */
    uint64_t live_keys;          /* keys present now (UINT64_MAX when unknown) */
    uint64_t memory_bytes;       /* heap bytes the engine holds now (best estimate) */
    kv_stat_counter extra[KV_STATS_EXTRA_MAX];
    size_t n_extra;
} kv_stats;

/* Fills *out. Fields an engine cannot know are UINT64_MAX. Errors: KV_IO. */
kv_status kv_stats_get(kv_db *db, kv_stats *out);

/* Adds an engine-specific counter to s (ignored past KV_STATS_EXTRA_MAX). */
void kv_stats_add(kv_stats *s, const char *name, uint64_t value);

/* ---- inspection ---- */

/* Verifies every on-disk and in-memory invariant the engine has. KV_OK when all hold; otherwise
 * KV_CORRUPTION with the first violation as the message (kv_errmsg / kv_last_error). */
kv_status kv_check(kv_db *db);

/* Prints the on-disk structures field by field with offsets to out, for a student to read.
 * file: only that file name of the directory (NULL for all); page: only that page or block
 * number where the engine has pages (-1 for all). Errors: KV_INVALID (no such file or page),
 * KV_IO, KV_CORRUPTION (printed up to the damage). */
kv_status kv_dump(kv_db *db, FILE *out, const char *file, int64_t page);

/* The forms of kv_dump_picture. */
typedef enum kv_dump_format {
    KV_DUMP_TEXT, /* kv_dump's field-by-field listing (not a picture) */
    KV_DUMP_DOT,  /* Graphviz DOT: `kvlab dump --format dot | dot -Tsvg > db.svg` */
    KV_DUMP_TREE, /* an indented text tree, like tree(1) */
} kv_dump_format;

/* Prints a picture of the database's structure to out: the B-tree's pages with their levels,
 * key ranges and fill and the free list (btree); the memtables, log, levels and tables (lsm);
 * the data and hint files with live and dead bytes and the keydir pointing into them (bitcask);
 * the log segments with their LSN ranges and the snapshot (wal). Large structures are cut to a
 * few nodes per level with "... N more" (common/dump.h); keys are quoted with non-printable
 * bytes as \xNN. The output depends only on the database's contents (no paths, times or
 * random ids), so pictures can be compared. Errors: KV_INVALID (format is not KV_DUMP_DOT or
 * KV_DUMP_TREE, or no output stream), KV_NOTSUP (the engine draws no pictures), KV_IO,
 * KV_CORRUPTION, KV_NOMEM. */
kv_status kv_dump_picture(kv_db *db, FILE *out, kv_dump_format format);

/* Runs the engine's space-reclaiming step now and returns when it is done (DDIA ch. 3: the
 * compaction and merging of log segments and SSTables, the checkpoint that lets a log be
 * truncated): bitcask merges its immutable data files (the Bitcask paper's merge), wal writes a
 * checkpoint and truncates its log, lsm compacts every level into the deepest one (LevelDB's
 * CompactRange over all keys), btree checkpoints (dirty pages in place, log reset). Nothing it
 * drops was visible. Errors: KV_NOTSUP (the engine has no such step: the production peers
 * compact on their own), KV_INVALID (a read-only handle), the engine's write errors
 * (KV_IO, KV_NOSPACE, KV_NOMEM, KV_POISONED). */
kv_status kv_compact(kv_db *db);

#endif
