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
#define WAL_SNAP_VERSION   1u
#define WAL_SNAP_HEADER    40u
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

/* Writes the snapshot (tree root, count keys, covering LSN lsn) durably over SNAPSHOT; *bytes
 * gets its size. A failed fdatasync/fsync poisons the log. Errors: KV_IO, KV_NOSPACE. */
kv_status wal_snapshot_write(wal_db *db, wal_node *root, uint64_t count, uint64_t lsn,
                             uint64_t *bytes);
/* Loads SNAPSHOT into the empty map (absent: *lsn = 0). Errors: KV_CORRUPTION naming the
 * offset, KV_IO. */
kv_status wal_snapshot_load(wal_db *db, uint64_t *lsn, uint64_t *bytes);
/* Verifies SNAPSHOT (every CRC, key order, count, trailer); *lsn gets its LSN (0 if absent).
 * When out is not NULL prints every field with offsets. */
kv_status wal_snapshot_verify(wal_db *db, FILE *out, uint64_t *lsn);

/* wal_iter.c */
kv_status wal_iter_new(kv_db *db, kv_iter **out);

/* wal_inspect.c */
kv_status wal_stats(kv_db *db, kv_stats *out);
kv_status wal_check(kv_db *db);
kv_status wal_dump(kv_db *db, FILE *out, const char *file, int64_t page);
/* Prints label(n)= and the first 32 of the n bytes at p: as "text" when printable, else hex. */
void wal_print_bytes(FILE *out, const char *label, const uint8_t *p, size_t n);

#endif
