/* peer_util.h: small helpers shared by the production-peer adapters (leveldb.c, rocksdb.c,
 * lmdb.c, sqlite.c): mapping a peer's error text to a kv_status, making files durable through
 * the kv_fs given to open, process I/O counters, and the poisoned-handle flag (docs/design.md
 * sections 3, 4 and 7). The peers do their own file I/O; these helpers only add what kvlab's
 * contract needs on top. */
#ifndef KVLAB_PEER_UTIL_H
#define KVLAB_PEER_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kv_engine.h"

/* Maps a LevelDB/RocksDB Status::ToString() text ("Corruption: ...", "IO error: ...",
 * "Invalid argument: ...") to a kv_status and records "<what>: <msg>" with kv_error().
 * Corruption -> KV_CORRUPTION, "No space left"/"space" errors -> KV_NOSPACE, a held LOCK file ->
 * KV_BUSY, "does not exist" -> KV_NOT_FOUND, "Invalid argument" -> KV_INVALID, "Not
 * implemented"/"Not supported" -> KV_NOTSUP, anything else -> KV_IO. msg is not freed. */
kv_status peer_status_text(const char *what, const char *msg);

/* fdatasyncs the file at path through fs (so kvlab's fdatasync counter sees it). A file that
 * vanished meanwhile (the peer deleted an obsolete log) is KV_OK when missing_ok.
 * Errors: KV_IO, KV_NOT_FOUND (when !missing_ok). */
kv_status peer_fdatasync_path(kv_fs *fs, const char *path, bool missing_ok);

/* fdatasyncs every file of dir whose name ends with suffix, in ascending order of the decimal
 * number that starts the name (LevelDB's "000123.log"), then fsyncs dir when a file numbered
 * above *dir_synced (the highest number whose name is known durable; start at 0) appeared, and
 * raises *dir_synced. Files deleted while this runs are skipped. The caller serializes calls
 * with the same dir_synced. Errors: KV_IO. */
kv_status peer_sync_numbered(kv_fs *fs, const char *dir, const char *suffix, uint64_t *dir_synced);

/* Bytes passed to read/write system calls by this whole process so far (/proc/self/io rchar,
 * wchar); both 0 when the file cannot be read. */
typedef struct peer_io {
    uint64_t rchar, wchar;
} peer_io;
peer_io peer_io_now(void);

/* Fills the I/O fields of s that kvlab cannot count for a peer: file_bytes_written/read become
 * the process's wchar/rchar growth since base (an approximation: exact only when the handle is
 * the process's only I/O), fsyncs and fdatasyncs UINT64_MAX (the peer's own syncs are
 * invisible); the fdatasyncs kvlab issued itself go to the extra "kvlab_fdatasyncs". */
void peer_fill_io(kv_stats *s, peer_io base);

/* The poisoned-handle flag (docs/design.md section 4): once set by a failed write or sync, every
 * later write returns KV_POISONED until the handle is reopened. */
typedef struct peer_poison {
    atomic_bool set;
} peer_poison;

/* Sets the flag when s is KV_IO (a failed write or sync) and returns s unchanged. */
kv_status peer_poison_on(peer_poison *p, kv_status s);

/* KV_OK, or KV_POISONED with a message naming the engine when the flag is set. */
kv_status peer_poison_check(peer_poison *p, const char *engine);

/* A malloc'd copy of n bytes (n may be 0: a 1-byte block is returned), or NULL. */
void *peer_dup(const void *p, size_t n);

/* memcmp-then-length order of kvlab keys: <0, 0, >0. */
int peer_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

#endif
