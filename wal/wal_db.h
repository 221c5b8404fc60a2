/* wal_db.h: the `wal` engine's handle and the pieces its source files share (not public). */
#ifndef KVLAB_WAL_DB_H
#define KVLAB_WAL_DB_H

#include <stdatomic.h>

#include "wal_engine.h"
#include "wal_log.h"
#include "wal_map.h"

#define WAL_SNAPSHOT_NAME  "SNAPSHOT"
#define WAL_SNAPSHOT_TMP   "SNAPSHOT.tmp"
#define WAL_SNAP_MAGIC     "KVWALSNP"
#define WAL_SNAP_VERSION   2u
#define WAL_SNAP_HEADER    48u
#define WAL_SNAP_TRAILER   16u
#define WAL_SNAP_ENTRY_OVH 12u /* klen u32, vlen u32, crc u32 */

typedef struct wal_db {
    kv_db base;
    kv_fs *fs;
    char *dir;
    wal_log *log;
    wal_map map;
    uint64_t checkpoint_bytes; /* 0: no automatic checkpoints */
    pthread_mutex_t ckpt_mu;   /* one checkpoint at a time */
    _Atomic bool ckpt_busy;
    _Atomic uint64_t snap_lsn;   /* LSN covered by the file SNAPSHOT (0: none); written under
                                    ckpt_mu */
    _Atomic uint64_t snap_bytes; /* its size */
    _Atomic uint64_t checkpoints;
    _Atomic bool poisoned; /* an apply ran out of memory after the batch was logged */
} wal_db;

/* wal_snapshot.c */

/* Writes the snapshot (tree root, count keys, covering LSN lsn, taken from the log whose salt is
 * salt) durably over SNAPSHOT, streaming it through SNAPSHOT.tmp (fdatasync, rename, directory
 * fsync); *bytes gets its size in bytes. root stays the caller's. A failed fdatasync/fsync
 * poisons the log. Errors: KV_IO, KV_NOSPACE, KV_NOMEM, KV_CORRUPTION (the tree does not hold
 * count keys). */
kv_status wal_snapshot_write(wal_db *db, wal_node *root, uint64_t count, uint64_t lsn,
                             uint64_t salt, uint64_t *bytes);
/* Loads SNAPSHOT into the empty map (absent: *lsn = *salt = 0, *bytes = 0). *lsn gets the LSN it
 * covers, *bytes its size in bytes, *salt the salt of the log it was taken from (the caller
 * compares it with the log's: wal_snapshot_salt_error). Errors: KV_CORRUPTION naming
 * "DIR/SNAPSHOT" and the offset, KV_IO, KV_NOMEM. */
kv_status wal_snapshot_load(wal_db *db, uint64_t *lsn, uint64_t *bytes, uint64_t *salt);
/* Verifies SNAPSHOT (every CRC, key order, count, trailer); *lsn gets its LSN and *salt its log
 * salt (both 0 if absent). When out is not NULL prints every field with offsets. Errors as
 * wal_snapshot_load. */
kv_status wal_snapshot_verify(wal_db *db, FILE *out, uint64_t *lsn, uint64_t *salt);
/* The KV_CORRUPTION of a SNAPSHOT (in directory dir) that records salt snap_salt beside a log of
 * salt log_salt: "DIR/SNAPSHOT: offset 32: salt S differs from the log's salt L: SNAPSHOT
 * belongs to another database". Returns KV_CORRUPTION. */
kv_status wal_snapshot_salt_error(const char *dir, uint64_t snap_salt, uint64_t log_salt);

/* wal_iter.c */
kv_status wal_iter_new(kv_db *db, kv_iter **out);

/* wal_inspect.c */
kv_status wal_stats(kv_db *db, kv_stats *out);
kv_status wal_check(kv_db *db);
kv_status wal_dump(kv_db *db, FILE *out, const char *file, int64_t page);
/* The engine's picture (kv_dump_picture): the in-memory map, the snapshot with the LSN it covers
 * and the log's segments with their LSN ranges. Errors: KV_IO. */
kv_status wal_picture(kv_db *db, kv_pic *pic);
/* Prints label(n)= and the first 32 of the n bytes at p: as "text" when printable, else hex. */
void wal_print_bytes(FILE *out, const char *label, const uint8_t *p, size_t n);

#endif
