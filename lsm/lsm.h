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

#endif
