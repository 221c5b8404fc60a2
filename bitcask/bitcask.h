/* bitcask.h: the public extras of the bitcask engine (kv_engine_bitcask).
 *
 * The engine is reached through kv.h like every other (kv_open("bitcask", ...)). Its extra
 * options are listed by kv_engine_option_help("bitcask"): file_size, buffer_size, merge
 * (auto|manual), merge_fragmentation, merge_dead_bytes, merge_min_files, hints (use|ignore).
 * Formats and the merge protocol: bitcask/bc_format.h and docs/bitcask.md. */
#ifndef KVLAB_BITCASK_H
#define KVLAB_BITCASK_H

#include "kv_engine.h"

extern const kv_engine kv_engine_bitcask;

/* Merges now (Basho's Bitcask paper, "Merge"): rewrites the live records of every immutable
 * data file (all but the active one) into new data and hint files, commits by replacing
 * MANIFEST (the set of data files) atomically, then deletes the replaced files once no reader or
 * iterator holds them. Tombstones are dropped, which is safe because every file that could hold an
 * older value of the key is part of the merge. Runs in the calling thread; reads and writes
 * continue meanwhile. With option merge=manual this is the only way a merge happens (tests use it);
 * with merge=auto a background thread also calls it when the thresholds are met. Errors: KV_INVALID
 * (not a bitcask handle, or one opened read-only), KV_NOMEM, KV_POISONED, KV_IO, KV_NOSPACE (the
 * handle is poisoned when an fsync failed), KV_CORRUPTION (a replaced file failed its checksums:
 * nothing was committed), KV_BUSY (kv_close began meanwhile: nothing was committed). KV_OK also
 * when there was nothing to merge. Sizes: output files are rotated at the file_size option (bytes);
 * each replaced file is read whole into memory, one at a time. */
kv_status kv_bitcask_merge(kv_db *db);

#endif
