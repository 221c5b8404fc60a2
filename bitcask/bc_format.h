/* bc_format.h: the on-disk formats of the bitcask engine (Basho's Bitcask paper, "Bitcask: A
 * Log-Structured Hash Table for Fast Key/Value Data", 2010; DDIA ch. 3 "Hash Indexes").
 * All integers are little-endian; every record and every hint entry carries a CRC32 (zlib).
 *
 * Data file "NNNNNNNNNN.data" (append-only log; the active one is the only one written):
 *   header, 32 bytes: magic "KVBCDAT1" (8) | version u32 | kind u32 (1 write, 2 merge output)
 *                     | file id u64 (the generation) | crc32 of bytes 0..23 u32 | zero u32
 *   records, each:    crc u32 | seq u64 | key size u32 | value size u32 | flags u8 | key | value
 *                     (21-byte header; crc covers seq..value). seq is the record's logical
 *                     timestamp: a sequence number that grows by one per commit (wall clocks
 *                     can go backwards; the newest record of a key is the one with the highest
 *                     seq). flags: 1 = tombstone, 2 = batch, 4 = inside a batch. A batch record
 *                     has key size 0 and its value is the batch's operations as complete inner
 *                     records (flag 4, each with its own crc, all with the batch's seq); the
 *                     outer crc covers them all, so recovery applies a batch whole or not at
 *                     all. Flag 4 keeps the inner records of a torn batch from passing for
 *                     valid records after a damaged one.
 *
 * Hint file "NNNNNNNNNN.hint" (one per immutable data file, written tmp+fdatasync+rename):
 *   header, 48 bytes: magic "KVBCHNT1" | version u32 | zero u32 | file id u64
 *                     | data size u64 (bytes of the data file it describes) | entries u64
 *                     | crc32 of all entry bytes u32 | crc32 of header bytes 0..43 u32
 *   entries, each:    crc u32 | seq u64 | offset u64 | record size u32 | key size u32
 *                     | flags u8 | key   (29-byte header; crc covers seq..key)
 *
 * Merge manifest "MERGE" (installed by atomic replacement: the commit point of a merge):
 *   magic "KVBCMRG1" | version u32 | count of replaced ids u32 | count of produced ids u32
 *   | zero u32 | merge number u64 | next file id u64 | max seq u64 | replaced ids u64...
 *   | produced ids u64... | crc32 of everything before u32 */
#ifndef KVLAB_BC_FORMAT_H
#define KVLAB_BC_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coding.h"
#include "status.h"

#define BC_VERSION        1u
#define BC_DATA_MAGIC     "KVBCDAT1"
#define BC_HINT_MAGIC     "KVBCHNT1"
#define BC_MANIFEST_MAGIC "KVBCMRG1"
#define BC_MANIFEST_NAME  "MERGE"

#define BC_DATA_HDR       32u /* bytes of a data file header */
#define BC_REC_HDR        21u /* bytes of a record header */
#define BC_HINT_HDR       48u /* bytes of a hint file header */
#define BC_HINT_ENT_HDR   29u /* bytes of a hint entry header */
#define BC_MANIFEST_FIXED 48u

enum { BC_KIND_WRITE = 1, BC_KIND_MERGE = 2 };
enum { BC_FLAG_TOMBSTONE = 1, BC_FLAG_BATCH = 2, BC_FLAG_INNER = 4 };

/* One decoded operation: a put or tombstone record (standalone or inside a batch), or a hint
 * entry (value NULL). offset and rec_size locate the record in its data file. */
typedef struct bc_rec {
    uint64_t seq;
    uint64_t offset;
    uint32_t rec_size;
    bool tomb;
    const uint8_t *key;
    uint32_t klen;
    const uint8_t *value; /* NULL for hint entries */
    uint32_t vlen;
} bc_rec;

/* Writes a 32-byte data file header. */
void bc_data_hdr_encode(uint8_t out[BC_DATA_HDR], uint32_t kind, uint64_t id);
/* Checks magic, version, crc: true and *kind, *id when good. n is the bytes available. */
bool bc_data_hdr_decode(const uint8_t *p, size_t n, uint32_t *kind, uint64_t *id);

/* Bytes of a record with klen key bytes and vlen value bytes. */
static inline uint64_t bc_rec_size(uint64_t klen, uint64_t vlen)
{
    return BC_REC_HDR + klen + vlen;
}

/* Encodes a record (put, or tombstone with value NULL and vlen 0) at out (bc_rec_size bytes);
 * returns its size. */
size_t bc_rec_encode(uint8_t *out, uint64_t seq, uint8_t flags, const void *key, size_t klen,
                     const void *value, size_t vlen);
/* Fills in the header of a record whose key and value bytes are already at out+21 and computes
 * its crc (used for the outer record of a batch). */
void bc_rec_finish(uint8_t *out, uint64_t seq, uint8_t flags, uint32_t klen, uint32_t vlen);

/* Result of parsing one record at p with avail bytes. */
typedef enum { BC_PARSE_OK, BC_PARSE_SHORT, BC_PARSE_BAD } bc_parse;
/* Parses and verifies one record (crc, flags). On OK: *flags, *seq, key/value pointers into p,
 * *size total bytes. SHORT: the record would extend past avail. BAD: crc or field check failed. */
bc_parse bc_rec_parse(const uint8_t *p, size_t avail, uint8_t *flags, uint64_t *seq,
                      const uint8_t **key, uint32_t *klen, const uint8_t **value, uint32_t *vlen,
                      size_t *size);

/* Callback for every operation found in a data or hint file; a non-OK return stops the walk. */
typedef kv_status (*bc_rec_fn)(void *ctx, const bc_rec *r);

/* Walks the records of a whole data file image buf (len bytes, header included; name for
 * messages). Calls fn for every operation in file order (inner operations of a batch
 * individually). A bad or incomplete record at offset X: when allow_torn (the newest written
 * file) and it looks like a crash (nothing valid follows, or the damage is a zeroed 512-byte
 * sector tail as a power loss leaves), the walk stops and *valid_end = X; otherwise
 * KV_CORRUPTION naming the file and offset. On a clean walk *valid_end = len. */
kv_status bc_walk_data(const char *name, const uint8_t *buf, size_t len, bool allow_torn,
                       uint64_t *valid_end, bc_rec_fn fn, void *ctx);

/* Hint files. */
/* Appends one entry to b, its crc left zero (the put path does not pay for it):
 * bc_hint_seal fills the crcs when the hint file is written. False when out of memory. */
bool bc_hint_add(kv_buf *b, uint64_t seq, uint64_t offset, uint32_t rec_size, bool tomb,
                 const void *key, size_t klen);
/* Writes the header for entries bytes ents (count entries) describing data_size bytes of file
 * id into out (BC_HINT_HDR bytes). */
/* Computes the crc of every entry in ents (len bytes of entries made by bc_hint_add). */
void bc_hint_seal(uint8_t *ents, size_t len);
void bc_hint_hdr_encode(uint8_t out[BC_HINT_HDR], uint64_t id, uint64_t data_size, uint64_t count,
                        const uint8_t *ents, size_t ents_len);
/* Verifies a whole hint file image and walks its entries. expect_id and expect_size: the data
 * file it must describe. The header crc and the crc of all entry bytes are checked before the
 * first entry is passed to fn; strict also checks every entry's own crc (kv_check; at start-up
 * the whole-file crc already covers those bytes). KV_CORRUPTION (message naming file and
 * offset) on any mismatch; the caller then scans the data file instead. fn may be NULL. */
kv_status bc_walk_hint(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                       uint64_t expect_size, bool strict, bc_rec_fn fn, void *ctx);
/* bc_walk_hint, given entries_crc, the crc32 of the entry bytes buf[BC_HINT_HDR, len) that the
 * caller computed itself (start-up's reader computes it in pieces on two threads and joins
 * them, bc_hintload.h). Every check is the same: the header's entries crc must equal
 * entries_crc before the first entry is passed to fn. */
kv_status bc_walk_hint_crc(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                           uint64_t expect_size, bool strict, uint32_t entries_crc, bc_rec_fn fn,
                           void *ctx);
/* The entry count a hint file's header claims (0 when it is no hint file). */
uint64_t bc_hint_count(const uint8_t *buf, size_t len);

/* The merge manifest. */
typedef struct bc_manifest {
    uint64_t merge_no;
    uint64_t next_id;
    uint64_t max_seq;
    uint64_t *replaced;
    uint32_t n_replaced;
    uint64_t *produced;
    uint32_t n_produced;
} bc_manifest;

/* Encodes m into a malloc'd buffer (*out, *len). False when out of memory. */
bool bc_manifest_encode(const bc_manifest *m, uint8_t **out, size_t *len);
/* Decodes and verifies; on OK m's arrays are malloc'd (bc_manifest_free). KV_CORRUPTION. */
kv_status bc_manifest_decode(const char *name, const uint8_t *p, size_t len, bc_manifest *m);
void bc_manifest_free(bc_manifest *m);

#endif
