/* wal_format.h: the on-disk format of kvlab's segmented write-ahead log (docs/design.md section 6).
 * Records are framed and read back by kvlab's one record log (common/reclog.h: length, type and
 * CRC per record, LevelDB's log format, with SQLite's WAL idea of a salt seeding every checksum,
 * so that records left over from another generation never pass as valid); the segment header,
 * the LSN in every record and the payloads are this log's own.
 *
 * A segment file is named by the LSN of its first record, zero-padded to 20 digits, so that name
 * order is age order: "00000000000000000001.wal". It starts with a 48-byte header:
 *
 *   offset size field
 *   0      8    magic "KVWALSEG"
 *   8      4    format version (2)
 *   12     4    header length in bytes (48)
 *   16     8    salt: the log's generation, chosen at random when the log is created; every
 *                record's CRC starts from kv_reclog_seed(salt)
 *   24     8    first LSN (the LSN the first record of this segment has / will have)
 *   32     8    supersedes: first LSN of the older segment this one replaces (a truncation
 *                rewrote that segment's live records here), 0 for none
 *   40     4    CRC32 of bytes 0..39
 *   44     4    reserved, zero
 *
 * then reclog records back to back (24 bytes of framing and LSN + the body):
 *
 *   0      4    crc:  CRC32 of bytes 4 .. 16+length-1, from the seed
 *   4      4    hcrc: CRC32 of bytes 8..15, from the seed
 *   8      4    length of the reclog payload (8 + body bytes; a mark: 8)
 *   12     1    type: 1 PUT, 2 DELETE, 3 COMMIT, 4 CHECKPOINT, 5 NEXT, 255 sync mark
 *   13     3    zero
 *   16     8    LSN (log sequence number): each record's is the previous one's plus one, across
 *                segments too; a sync mark has none: its 8 bytes are the durable length it names;
 *                nor has NEXT: its 8 bytes are the first LSN of the segment that follows
 *   24     ..   body (opaque to the log; COMMIT's is the u32 count of records it closes; NEXT and
 *                marks have none)
 *
 * NEXT (24 bytes) names a segment's successor, so that the newest segment cannot vanish
 * unnoticed (with it gone, the log would simply end one segment earlier, as after a power loss).
 * A roll (wal_log.c roll_locked) writes, in this order: (1) the old segment's last batches,
 * fdatasync; (2) the new segment: NAME.tmp with its header, fdatasync, rename, directory fsync;
 * (3) NEXT at the end of the old segment, naming the new one's first LSN, fdatasync. Only then
 * is anything appended to the new segment. So every segment but the newest ends with NEXT (marks
 * may follow it, in a truncation's rewrite), after its last COMMIT; a NEXT in the newest
 * segment names a successor that is missing: KV_CORRUPTION naming that file. A power loss during
 * (3) leaves the old segment with NEXT absent or torn, in its last 24 bytes only (everything
 * before them was durable before the new segment existed); the new segment then holds nothing
 * but its header, and open completes the roll (cuts the torn bytes, writes NEXT, fdatasync)
 * after fsyncing the directory that names the new segment. A power loss before (2) completes
 * leaves the old segment newest, without NEXT, as before the roll.
 *
 * All integers are little-endian. */
#ifndef KVLAB_WAL_FORMAT_H
#define KVLAB_WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reclog.h"

#define WAL_SEG_MAGIC       "KVWALSEG"
#define WAL_SEG_VERSION     2u
#define WAL_SEG_HEADER_SIZE 48u
#define WAL_REC_LSN_SIZE    8u                                   /* the LSN before the body */
#define WAL_REC_OVERHEAD    (KV_RECLOG_FRAME + WAL_REC_LSN_SIZE) /* 24 bytes before the body */
#define WAL_MARK_SIZE       KV_RECLOG_MARK_SIZE                  /* 24 bytes */
#define WAL_COMMIT_SIZE     (WAL_REC_OVERHEAD + 4u)              /* 28 bytes */
#define WAL_NEXT_SIZE       (KV_RECLOG_FRAME + 8u)               /* 24 bytes */
/* Largest body in bytes: a 64 MiB value plus a 65,535-byte key and its framing fit. */
#define WAL_MAX_PAYLOAD ((uint32_t)((64u << 20) + (1u << 17)))
/* Segment names: 20 digits + ".wal". */
#define WAL_SEG_NAME_LEN 24u

typedef enum wal_rec_type {
    WAL_REC_PUT = 1,
    WAL_REC_DELETE = 2,
    WAL_REC_COMMIT = 3,
    WAL_REC_CHECKPOINT = 4,
    WAL_REC_NEXT = 5, /* names the next segment (its first LSN): no LSN, never replayed */
    WAL_REC_MARK = KV_RECLOG_MARK, /* a sync mark (reclog.h): no LSN, never replayed */
} wal_rec_type;

/* A decoded segment header. */
typedef struct wal_seg_header {
    uint32_t version;
    uint32_t header_len;
    uint64_t salt;
    uint64_t first_lsn;
    uint64_t supersedes;
    uint32_t crc;
} wal_seg_header;

/* One valid record of a segment as the scanner gives it back; body points into the scanned
 * bytes. For a mark, lsn is 0, body is NULL and durable holds the length it names. For NEXT,
 * lsn is 0, the body is empty (len 0, body just past the record's 24 bytes) and successor holds
 * the first LSN of the segment it names. */
typedef struct wal_rec_view {
    uint64_t off; /* byte offset of the record in its segment */
    uint8_t type;
    uint64_t lsn;
    const uint8_t *body;
    uint32_t len;       /* body bytes */
    uint64_t durable;   /* a mark: the durable length it names */
    uint64_t successor; /* NEXT: the first LSN of the next segment */
    uint32_t crc;       /* as stored: framing bytes 0..3 */
    uint32_t hcrc;      /* framing bytes 4..7 */
} wal_rec_view;

/* The name of the type ("PUT", ..., "MARK"), or "?" for an unknown byte. Static string. */
const char *wal_rec_type_name(uint8_t type);

/* Writes the 48-byte header for (salt, first_lsn, supersedes) into out (WAL_SEG_HEADER_SIZE
 * bytes). */
void wal_seg_header_encode(uint8_t *out, uint64_t salt, uint64_t first_lsn, uint64_t supersedes);

/* Decodes a header from p (n bytes). Returns NULL when valid, else a static reason ("bad
 * magic", "bad header crc", "unsupported version", "short header"); *h is filled as far as
 * read. */
const char *wal_seg_header_decode(const uint8_t *p, size_t n, wal_seg_header *h);

/* Formats the segment file name of first_lsn into out (at least WAL_SEG_NAME_LEN + 1 bytes). */
void wal_seg_name(char *out, uint64_t first_lsn);

/* Parses "NNNNNNNNNNNNNNNNNNNN.wal" (exactly 20 digits); false for any other name. */
bool wal_seg_name_parse(const char *name, uint64_t *first_lsn);

/* Writes the NEXT record naming successor (the next segment's first LSN) for a log of this seed
 * into out (WAL_NEXT_SIZE bytes). Returns WAL_NEXT_SIZE. */
size_t wal_next_encode(uint8_t *out, uint32_t seed, uint64_t successor);

/* The CRC seed of every record of a log with this salt: kv_reclog_seed(salt). */
uint32_t wal_seed(uint64_t salt);

/* Encodes a whole record (body given as one piece) into out, which has room for
 * WAL_REC_OVERHEAD + len bytes (len at most WAL_MAX_PAYLOAD). Returns the bytes written. */
size_t wal_rec_encode(uint8_t *out, uint32_t seed, uint8_t type, uint64_t lsn, const void *body,
                      uint32_t len);

/* Turns a valid reclog record r into a view of the log's record: NULL when it is one, else a
 * static reason ("unknown record type", "record too short for its LSN", "NEXT record of the
 * wrong length"). A mark becomes a view of type WAL_REC_MARK. */
const char *wal_rec_view_of(const kv_reclog_rec *r, wal_rec_view *out);

#endif
