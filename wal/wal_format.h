/* wal_format.h: the on-disk format of kvlab's segmented write-ahead log (DESIGN.md section 6),
 * and a pure, bounds-checked codec for it. The layout follows LevelDB's log format (length,
 * type, CRC per record) with SQLite's WAL idea of a salt mixed into every checksum, so that
 * records left over from an older generation never pass as valid.
 *
 * A segment file is named by the LSN of its first record, zero-padded to 20 digits, so that name
 * order is age order: "00000000000000000001.wal". It starts with a 48-byte header:
 *
 *   offset size field
 *   0      8    magic "KVWALSEG"
 *   8      4    format version (1)
 *   12     4    header length in bytes (40)
 *   16     8    salt: the log's generation, chosen at random when the log is created
 *   24     8    first LSN (the LSN the first record of this segment has / will have)
 *   32     8    supersedes: first LSN of the older segment this one replaces (a truncation
 *                rewrote that segment's live records here), 0 for none
 *   40     4    CRC32 of bytes 0..39
 *   44     4    reserved, zero
 *
 * then records, back to back (17 bytes of framing + payload):
 *
 *   0      4    payload length in bytes (at most WAL_MAX_PAYLOAD)
 *   4      1    type: 1 PUT, 2 DELETE, 3 COMMIT, 4 CHECKPOINT
 *   5      8    LSN (log sequence number): each record's is the previous one's plus one
 *   13     len  payload (opaque to the log; COMMIT's is the u32 count of records it closes)
 *   13+len 4    CRC32 over the 8 salt bytes (LE) then bytes 0..13+len-1 of the record
 *
 * All integers are little-endian. */
#ifndef KVLAB_WAL_FORMAT_H
#define KVLAB_WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_SEG_MAGIC       "KVWALSEG"
#define WAL_SEG_VERSION     1u
#define WAL_SEG_HEADER_SIZE 48u
#define WAL_REC_HEADER_SIZE 13u /* length + type + LSN */
#define WAL_REC_OVERHEAD    17u /* header + CRC */
/* Largest payload in bytes: a 64 MiB value plus a 65,535-byte key and its framing fit. */
#define WAL_MAX_PAYLOAD ((uint32_t)((64u << 20) + (1u << 17)))
/* Segment names: 20 digits + ".wal". */
#define WAL_SEG_NAME_LEN 24u

typedef enum wal_rec_type {
    WAL_REC_PUT = 1,
    WAL_REC_DELETE = 2,
    WAL_REC_COMMIT = 3,
    WAL_REC_CHECKPOINT = 4,
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

/* A decoded record; payload points into the decoder's input. */
typedef struct wal_rec_view {
    uint8_t type;
    uint64_t lsn;
    const uint8_t *payload;
    uint32_t len;   /* payload bytes */
    uint64_t total; /* bytes of the whole record: WAL_REC_OVERHEAD + len */
    uint32_t crc;   /* as stored */
} wal_rec_view;

typedef enum wal_dec {
    WAL_DEC_OK = 0, /* a whole, valid record */
    WAL_DEC_SHORT,  /* the input ends inside the record (out->total says how long it claims to be
                       when at least the 13-byte header was there, else 0) */
    WAL_DEC_BAD,    /* impossible length or type, or the CRC does not match */
} wal_dec;

/* The name of the type ("PUT", ...), or "?" for an unknown byte. Static string. */
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

/* The CRC32 a record carries: over the salt (8 bytes LE) and the record's first
 * WAL_REC_HEADER_SIZE + len bytes. */
uint32_t wal_rec_crc(uint64_t salt, const uint8_t *rec, uint32_t len);

/* The CRC32 of the salt's 8 bytes (LE) alone: the state every record's CRC starts from, so a
 * writer computes it once per log instead of once per record. */
uint32_t wal_salt_crc(uint64_t salt);

/* wal_rec_crc(salt, rec, len) given salt_crc = wal_salt_crc(salt). */
uint32_t wal_rec_crc_from(uint32_t salt_crc, const uint8_t *rec, uint32_t len);

/* Writes the 13-byte record header at out (the caller appends the payload and then the CRC from
 * wal_rec_crc, or uses wal_rec_encode). */
void wal_rec_header_encode(uint8_t *out, uint32_t len, uint8_t type, uint64_t lsn);

/* Encodes a whole record (payload given as one piece) into out, which has room for
 * WAL_REC_OVERHEAD + len bytes. Returns the bytes written. */
size_t wal_rec_encode(uint8_t *out, uint64_t salt, uint8_t type, uint64_t lsn, const void *payload,
                      uint32_t len);

/* Decodes the record at p (avail bytes available from p). Never reads past p + avail.
 * *why receives a static reason for WAL_DEC_BAD / WAL_DEC_SHORT. */
wal_dec wal_rec_decode(const uint8_t *p, size_t avail, uint64_t salt, wal_rec_view *out,
                       const char **why);

#endif
