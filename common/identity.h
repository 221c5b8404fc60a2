/* identity.h: the file that names a database directory's engine (docs/design.md section 2).
 *
 * Every database directory holds KVLAB.ID, four lines of text written when the database is
 * created, before the engine writes anything:
 *
 *     kvlab database
 *     engine btree
 *     format 2
 *     crc 1a2b3c4d
 *
 * (the crc line is the CRC32 of the three lines above it, newlines included, in lowercase hex).
 * kv_open checks it before the engine sees the directory, so that no engine ever recovers,
 * rewrites or deletes another engine's files, whatever the caller asks. */
#ifndef KVLAB_IDENTITY_H
#define KVLAB_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>

#include "fs.h"

#define KV_ID_FILE   "KVLAB.ID"
#define KV_LOCK_FILE "KVLAB.LOCK"
#define KV_ID_MAX    40 /* bytes of an engine name in KVLAB.ID, at most */

/* What a directory holds, as far as identity goes. */
typedef enum kv_id_state {
    KV_ID_EMPTY = 0, /* no entries but KVLAB.LOCK and a leftover KVLAB.ID.tmp: a new database */
    KV_ID_PRESENT,   /* KVLAB.ID is there and well formed: see engine and format */
    KV_ID_FOREIGN,   /* other entries and no KVLAB.ID: not a kvlab database */
} kv_id_state;

/* Reads dir's identity. On KV_OK *state says which; for KV_ID_PRESENT, engine (cap bytes, at
 * least KV_ID_MAX + 1) and *format are filled. Errors: KV_CORRUPTION naming KVLAB.ID and the line
 * when the file is malformed or fails its crc, KV_IO, KV_NOMEM. Reads only. */
kv_status kv_identity_read(kv_fs *fs, const char *dir, kv_id_state *state, char *engine, size_t cap,
                           uint32_t *format);

/* Writes dir's KVLAB.ID for engine (at most KV_ID_MAX bytes of [a-z0-9_-]) and format, atomically
 * (KVLAB.ID.tmp, fdatasync, rename, directory fsync: kv_fs_replace_file). Errors: KV_INVALID (bad
 * name), KV_IO, KV_NOSPACE, KV_NOMEM. */
kv_status kv_identity_write(kv_fs *fs, const char *dir, const char *engine, uint32_t format);

#endif
