/* reclog.h: the one record log of kvlab (docs/design.md section 6).
 *
 * Every log an engine keeps (the lsm's WAL and MANIFEST, the btree's page log, the wal engine's
 * segments, bitcask's data files) is a header the engine owns, followed by records framed by this
 * module and read back by its one scanner, so that the rule that tells a torn tail from damage is
 * written once. The payloads stay each engine's own.
 *
 * A record: 16 bytes of framing, then the payload (integers little-endian). The layout follows
 * LevelDB's log format (length, type and CRC per record, db/log_format.h) with SQLite's WAL salt
 * folded into every checksum:
 *
 *   offset size field
 *   0      4    crc:  CRC32 of bytes [4, 16 + len), started from the log's seed
 *   4      4    hcrc: CRC32 of bytes [8, 16), started from the seed (the header alone)
 *   8      4    len:  payload bytes, at most KV_RECLOG_MAX_PAYLOAD
 *   12     1    type: 1..254 the engine's own kinds; 255 a sync mark; 0 is never a record
 *   13     3    zero
 *   16     len  payload
 *
 * The seed is kv_reclog_seed(salt) of a 64-bit salt that the engine keeps in the file's header (a
 * generation, a random number, a file number): a record left over from another generation of a
 * reused file fails its check and is never taken for a current one. The header's own CRC lets the
 * scanner search for valid records past damage byte by byte at a cost of O(1) per false start.
 *
 * Sync marks. A writer knows which prefix of its file is durable: the bytes its last successful
 * fdatasync covered. The first write after such a sync starts with a mark, a record of type
 * KV_RECLOG_MARK whose 8-byte payload is that durable length, and a clean close writes one after
 * its last sync (then syncs once more). A writer that acts on a record's durability (deletes the
 * files an edit replaces, truncates a log after a checkpoint) makes a mark after it durable first.
 * Marks are what tell a power loss from damage: bytes below the durable length some valid mark
 * names were on disk before that mark was written, so if they fail their check now, no crash did.
 *
 * The damage rule, the scanner's contract. Records are read in order from `start`. At the first
 * offset X where no valid record starts (the file ends inside it, a CRC fails, the type is 0, a
 * mark is malformed):
 *  - if a valid mark anywhere after X names a durable length above X, the log is damaged: the
 *    scan fails with KV_CORRUPTION naming the file, X and that mark;
 *  - otherwise bytes [X, end of file) are a torn tail: what a power loss leaves of writes never
 *    made durable (each lost, kept or torn at any byte, in any order, so it may keep a later
 *    record of the same unacknowledged batch, its COMMIT say). The log ends at X; a writer cuts
 *    it there. Records after X are never replayed: a log is always read as a prefix.
 * A batch written after an earlier one was durable starts with a mark, so this is docs/design.md's
 * "a bad record followed by a good one of a later batch is corruption", made exact.
 *
 * Pure functions over caller-owned bytes; thread-safe. */
#ifndef KVLAB_RECLOG_H
#define KVLAB_RECLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coding.h"
#include "status.h"

#define KV_RECLOG_FRAME       16u  /* bytes of framing before each payload */
#define KV_RECLOG_MARK        255u /* the type of a sync mark */
#define KV_RECLOG_MARK_SIZE   24u  /* bytes of a whole mark: framing + u64 durable length */
#define KV_RECLOG_MAX_PAYLOAD ((uint32_t)0xFFFFFF00u) /* bytes */

/* The CRC seed of a log whose header holds salt (its 8 bytes little-endian, CRC32'd). */
uint32_t kv_reclog_seed(uint64_t salt);

/* Frames a record in place: rec points at KV_RECLOG_FRAME + len bytes whose payload the caller
 * has already written at rec + KV_RECLOG_FRAME; fills the 16-byte framing for type (1..254, or
 * KV_RECLOG_MARK) and seed. len at most KV_RECLOG_MAX_PAYLOAD. */
void kv_reclog_seal(uint8_t *rec, uint32_t seed, uint8_t type, uint32_t len);

/* Writes a whole record (framing, then len bytes copied from payload) at out, which has room for
 * KV_RECLOG_FRAME + len bytes. Returns the bytes written. */
size_t kv_reclog_encode(uint8_t *out, uint32_t seed, uint8_t type, const void *payload,
                        uint32_t len);

/* Appends the framing space of a record to b and returns its offset in b in *at; the caller then
 * appends the payload and calls kv_reclog_end. Returns false when out of memory (b unchanged). */
bool kv_reclog_begin(kv_buf *b, size_t *at);

/* Seals the record begun at offset at of b: its payload is every byte appended since. */
void kv_reclog_end(kv_buf *b, size_t at, uint32_t seed, uint8_t type);

/* Writes a sync mark naming durable (bytes of the file known durable, at most the offset where
 * the mark itself will be written) at out (KV_RECLOG_MARK_SIZE bytes). Returns its size. */
size_t kv_reclog_mark(uint8_t *out, uint32_t seed, uint64_t durable);

/* One record as read back; payload points into the scanned bytes. */
typedef struct kv_reclog_rec {
    uint64_t off; /* byte offset of the record's framing in the file */
    uint8_t type;
    uint32_t len; /* payload bytes */
    const uint8_t *payload;
} kv_reclog_rec;

typedef enum kv_reclog_dec {
    KV_RECLOG_OK = 0, /* a whole, valid record */
    KV_RECLOG_SHORT,  /* the bytes end inside the record */
    KV_RECLOG_BAD,    /* a CRC fails, the type is 0, reserved bytes are set, a mark is malformed */
} kv_reclog_dec;

/* Decodes the record at byte offset off of data (size bytes; the record must lie wholly inside).
 * Never reads outside [data, data + size). *why gets a static reason unless KV_RECLOG_OK ("record
 * runs past the end of the file", "header crc mismatch", ...). For kvlab dump and the scanner. */
kv_reclog_dec kv_reclog_decode(const uint8_t *data, uint64_t size, uint64_t off, uint32_t seed,
                               kv_reclog_rec *out, const char **why);

/* Called for each valid record in order (marks included, type KV_RECLOG_MARK, so that dumps can
 * show them; a replay skips them). A status other than KV_OK stops the scan and is returned as
 * it is: an engine that finds a record it cannot accept (an LSN out of order) reports its own
 * KV_CORRUPTION naming the file and r->off. */
typedef kv_status (*kv_reclog_visit_fn)(void *ctx, const kv_reclog_rec *r);

typedef struct kv_reclog_result {
    uint64_t end;     /* byte offset just past the last valid record: where the log ends */
    uint64_t size;    /* bytes scanned (the file's size) */
    uint64_t records; /* records visited, marks not counted */
    uint64_t marks;   /* marks visited */
    uint64_t durable; /* the largest durable length a visited mark named (0 if none) */
    bool torn;        /* end < size: bytes [end, size) are a torn tail, to be cut */
    const char *why;  /* when torn: what was wrong at end (static text) */
} kv_reclog_result;

/* Scans data (size bytes: the whole file) from byte offset start (just past the engine's header)
 * under the damage rule above, calling visit (may be NULL) for each valid record. path names the
 * file in messages. Returns KV_OK with *res filled (torn or not), KV_CORRUPTION
 * ("PATH: offset X: header crc mismatch, but the mark at offset M says the log was durable to D")
 * with *res describing the valid prefix, or visit's own error. */
kv_status kv_reclog_scan(const char *path, const uint8_t *data, uint64_t size, uint64_t start,
                         uint32_t seed, kv_reclog_visit_fn visit, void *ctx, kv_reclog_result *res);

/* Like kv_reclog_scan for a file that was made durable whole before anything after it was
 * written (an older segment, a sealed data file): any damage, a torn-looking tail included, is
 * KV_CORRUPTION naming path and the offset. */
kv_status kv_reclog_scan_sealed(const char *path, const uint8_t *data, uint64_t size,
                                uint64_t start, uint32_t seed, kv_reclog_visit_fn visit, void *ctx,
                                kv_reclog_result *res);

#endif
