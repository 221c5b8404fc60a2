/* lsm.h: the public header of the lsm engine (a log-structured merge tree, LevelDB-style;
 * DDIA ch. 3 "SSTables and LSM-Trees"). Users reach the engine through kv.h (kv_open("lsm",
 * ...)); this header only adds hooks that tests use to make background timing deterministic. */
#ifndef KVLAB_LSM_H
#define KVLAB_LSM_H

#include <stdbool.h>

#include "kv.h"

/* Test hook: with hold = true, waits until the background thread has no work left (the
 * immutable memtable flushed, no compaction due, obsolete files deleted; or the handle is
 * poisoned) and from then on keeps it from starting new work (flushes, compactions, deletions)
 * until called again with hold = false. While held, a writer that
 * fills a second memtable waits for the flush forever, so a test may fill at most one (the
 * first switch makes the immutable memtable; its WAL then stays unflushed). kv_close works while
 * held (it stops the thread). Idea: LevelDB's DBImpl::TEST_* hooks.
 * Errors: KV_INVALID when db is NULL or not an lsm handle. */
kv_status lsm_test_hold_background(kv_db *db, bool hold);

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
 * Errors: KV_INVALID (db is NULL or not an lsm handle), KV_BUSY (the background thread is held
 * by lsm_test_hold_background, or kv_close began: nothing more is compacted), KV_POISONED
 * (the handle was poisoned before or by a failed write or fsync during the call; the message
 * names the first failure), KV_IO, KV_NOSPACE, KV_CORRUPTION (an input table failed its
 * checksums; the handle is then poisoned too). */
kv_status lsm_compact_all(kv_db *db);

#endif
