/* lsm.h: the public header of the lsm engine (a log-structured merge tree, LevelDB-style;
 * DDIA ch. 3 "SSTables and LSM-Trees"). Users reach the engine through kv.h (kv_open("lsm",
 * ...)); this header only adds hooks that tests use to make background timing deterministic. */
#ifndef KVLAB_LSM_H
#define KVLAB_LSM_H

#include <stdbool.h>

#include "kv.h"

/* Pauses the background work (pause = true) or lets it continue (false), as RocksDB's
 * DB::PauseBackgroundWork / ContinueBackgroundWork: a pause waits until the background thread
 * has no work left (the immutable memtable flushed, no compaction due, obsolete files deleted;
 * or the handle is poisoned) and from then on keeps it from starting new work (flushes,
 * compactions, deletions) until continued. While paused, a writer that fills a second memtable
 * waits for the flush until the work continues, so a paused handle holds at most one memtable
 * beside the active one (its WAL stays unflushed): the tests use this to freeze a directory in a
 * chosen state. kv_close works while paused (it stops the thread).
 * Errors: KV_INVALID when db is NULL, not an lsm handle, or read-only (no background thread). */
kv_status lsm_pause_background_work(kv_db *db, bool pause);

/* Compacts the whole database now (LevelDB's DB::CompactRange(NULL, NULL); DDIA ch. 3
 * "SSTables and LSM-Trees": merging segments). First the memtable is switched out and flushed
 * to a level-0 SSTable (nothing for an empty memtable); then, with D the deepest level holding
 * a table when the call starts (at least 1), every level L = 0 .. D-1 that holds tables is
 * merged with the overlapping tables of L+1 into new tables of L+1, one level after the other,
 * so that all data present at the start ends up in level D. Every merge rewrites its inputs
 * (no trivial moves): overwritten values are dropped when no iterator's snapshot still sees
 * them, and tombstones are dropped in the merge into level D (no deeper level can hold their
 * key). Obsolete tables and WALs are deleted before the call returns.
 * Crash safety is that of the background compaction: output tables are written, fdatasynced,
 * renamed and the directory fsynced, then one manifest edit (fdatasynced) swaps inputs for
 * outputs, and only then are inputs deleted; a crash at any point leaves either the old or the
 * new tables live, never a mix and never a lost key. Runs on the engine's background thread
 * while the caller waits; reads and writes continue meanwhile (data written during the call may
 * stay in level 0 or the memtable). Output tables are about target_file_size bytes each.
 * With size-tiered compaction (-o compaction=tiered) every run is merged into one run (one
 * table at level 0), which includes the oldest run, so tombstones are dropped.
 * Errors: KV_INVALID (db is NULL or not an lsm handle), KV_BUSY (the background work is paused
 * by lsm_pause_background_work, or kv_close began: nothing more is compacted), KV_POISONED
 * (the handle was poisoned before or by a failed write or fsync during the call; the message
 * names the first failure), KV_IO, KV_NOSPACE, KV_CORRUPTION (an input table failed its
 * checksums; the handle is then poisoned too). */
kv_status lsm_compact_all(kv_db *db);

#endif
