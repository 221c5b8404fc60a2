/* wal_engine.h: the `wal` engine (DDIA ch. 3's log in its purest form): an in-memory ordered
 * table (wal_map.h) made durable by the segmented write-ahead log (wal_log.h), with periodic
 * checkpoints (a snapshot file plus log truncation) so that recovery does not replay forever.
 * Reached through kv.h as engine "wal". */
#ifndef KVLAB_WAL_ENGINE_H
#define KVLAB_WAL_ENGINE_H

#include "kv_engine.h"

extern const kv_engine kv_engine_wal;

/* Writes a checkpoint now: the state at the last applied LSN L goes to the file SNAPSHOT by
 * atomic replacement (SNAPSHOT.tmp, fdatasync, rename, directory fsync), a CHECKPOINT record
 * naming L is appended, and the log is truncated up to L. db must be a `wal` handle. Automatic
 * checkpoints do the same when the log passes the checkpoint_bytes option.
 * Errors: KV_INVALID (not a wal handle), KV_POISONED, KV_IO, KV_NOSPACE (a failed fsync poisons
 * the handle). */
kv_status wal_engine_checkpoint(kv_db *db);

#endif
