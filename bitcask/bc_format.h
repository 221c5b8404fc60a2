/* bc_format.h: the on-disk formats of the bitcask engine (Basho's Bitcask paper, "Bitcask: A
 * Log-Structured Hash Table for Fast Key/Value Data", 2010; DDIA ch. 3 "Hash Indexes").
 * All integers are little-endian. docs/bitcask.md section 2 draws each format.
 *
 * Data file "NNNNNNNNNN.data" (append-only log; the active one is the only one written):
 *   header, 40 bytes: magic "KVBCDAT1" (8) | version u32 | kind u32 (1 write, 2 merge output)
 *                     | file id u64 | salt u64 (random, chosen when the file is created)
 *                     | zero u32 | crc32 of bytes 0..35 u32
 *   records, each framed by the one record log of common/reclog.h (16 bytes: crc, header crc,
 *   length, type; both crcs seeded with kv_reclog_seed(salt), so a record of another file or
 *   another database never passes for one of this file), then the Bitcask paper's fields as the
 *   payload:
 *                     seq u64 | key size u32 | value size u32 | key | value
 *   seq is the record's logical timestamp: a sequence number that grows by one per commit (wall
 *   clocks can go backwards; the newest record of a key is the one with the highest seq).
 *   Types: 1 put, 2 tombstone (value size 0), 3 batch, 4 put inside a batch, 5 tombstone inside
 *   a batch, 255 a sync mark (reclog's: "the bytes before offset D were durable when this was
 *   written"). A batch record has key size 0 and its value is the batch's operations as
 *   complete framed records of types 4 and 5, all with the batch's seq; the outer crc covers
 *   them all, so recovery applies a batch whole or not at all, and the keydir points at the
 *   inner records so that a get still reads and checks one record.
 *
 * Hint file "NNNNNNNNNN.hint" (one per sealed data file, replaced atomically; a cache of the
 * keydir entries that data file yields, values left out):
 *   header, 56 bytes: magic "KVBCHNT1" | version u32 | zero u32 | file id u64 | data salt u64
 *                     | data size u64 (bytes of the data file it describes) | entries u64
 *                     | crc32 of all entry bytes u32 | crc32 of header bytes 0..51 u32
 *   entries, each:    crc u32 | seq u64 | offset u64 | record size u32 | key size u32
 *                     | flags u8 (1 tombstone) | key   (29-byte header; crc covers seq..key)
 *
 * Manifest "MANIFEST" (replaced atomically at every change of the set of data files: open,
 * rotation, merge, close; the commit point of each):
 *   magic "KVBCMAN1" | version u32 | file count u32 | obsolete count u32 | zero u32
 *   | manifest number u64 | merge number u64 | next file id u64 | max seq u64
 *   | files, 32 bytes each: id u64 | salt u64 | length u64 | kind u8 | state u8 (1 sealed,
 *     2 active) | zero 6
 *   | obsolete ids u64... | crc32 of everything before u32
 *   A sealed file must be exactly length bytes long. For the one active file (the one being
 *   appended to) length is its durable length: bytes that an fdatasync had covered before this
 *   MANIFEST was written (the header when the file is named; a merge's commit raises it to what
 *   the merge made durable, the records it relied on when it dropped older versions). The
 *   active file may end in a torn tail, but only past that length: valid records ending before
 *   it are KV_CORRUPTION, since no power loss tears bytes already durable. (Until this rule the
 *   active length was always the header's; such a MANIFEST reads the same, so the layout and
 *   version are unchanged.) Obsolete ids name files a committed merge replaced whose deletion
 *   may not be durable yet. */
#ifndef KVLAB_BC_FORMAT_H
#define KVLAB_BC_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coding.h"
#include "reclog.h"
#include "status.h"

#define BC_VERSION        2u
#define BC_DATA_MAGIC     "KVBCDAT1"
#define BC_HINT_MAGIC     "KVBCHNT1"
#define BC_MANIFEST_MAGIC "KVBCMAN1"
#define BC_MANIFEST_NAME  "MANIFEST"

#define BC_DATA_HDR       40u /* bytes of a data file header */
#define BC_PAYLOAD_HDR    16u /* bytes of a record's payload before the key: seq, sizes */
#define BC_REC_OVERHEAD   (KV_RECLOG_FRAME + BC_PAYLOAD_HDR) /* 32 bytes */
#define BC_HINT_HDR       56u                                /* bytes of a hint file header */
#define BC_HINT_ENT_HDR   29u                                /* bytes of a hint entry header */
#define BC_HINT_ENTS_CRC  48u /* offset of the entries crc in the hint header */
#define BC_HINT_HDR_CRC   52u /* offset of the header crc in the hint header */
#define BC_MANIFEST_FIXED 56u /* bytes of the manifest before its file entries */
#define BC_MANIFEST_ENT   32u /* bytes of one manifest file entry */

enum { BC_KIND_WRITE = 1, BC_KIND_MERGE = 2 };
enum { BC_HINT_TOMBSTONE = 1 };

/* Record types (the reclog type byte). */
enum {
    BC_T_PUT = 1,
    BC_T_TOMB = 2,
    BC_T_BATCH = 3,
    BC_T_BATCH_PUT = 4,
    BC_T_BATCH_TOMB = 5,
};

/* One decoded operation: a put or tombstone record (standalone or inside a batch), or a hint
 * entry (value NULL). offset and rec_size locate the record's framing in its data file. */
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

/* A new random 64-bit salt (getrandom(2); a clock-and-address mix if that fails). */
uint64_t bc_new_salt(void);

/* Writes a 40-byte data file header. */
void bc_data_hdr_encode(uint8_t out[BC_DATA_HDR], uint32_t kind, uint64_t id, uint64_t salt);
/* Checks magic, version, kind and crc of the n bytes at p: true and *kind, *id, *salt when
 * good. */
bool bc_data_hdr_decode(const uint8_t *p, size_t n, uint32_t *kind, uint64_t *id, uint64_t *salt);

/* Bytes of a framed record with klen key bytes and vlen value bytes. */
static inline uint64_t bc_rec_size(uint64_t klen, uint64_t vlen)
{
    return BC_REC_OVERHEAD + klen + vlen;
}

/* Encodes a whole record (type BC_T_PUT, BC_T_TOMB with value NULL and vlen 0, or their batch
 * forms) at out (bc_rec_size bytes), framed with seed; returns its size. */
size_t bc_rec_encode(uint8_t *out, uint32_t seed, uint8_t type, uint64_t seq, const void *key,
                     size_t klen, const void *value, size_t vlen);
/* Frames a record whose key and value bytes are already at out + BC_REC_OVERHEAD: writes the
 * payload header and seals it (the outer record of a batch, whose value is its inner records). */
void bc_rec_finish(uint8_t *out, uint32_t seed, uint8_t type, uint64_t seq, uint32_t klen,
                   uint32_t vlen);

/* A record as read back by bc_rec_check. */
typedef struct bc_rec_view {
    uint8_t type;
    uint64_t seq;
    const uint8_t *key;
    uint32_t klen;
    const uint8_t *value;
    uint32_t vlen;
} bc_rec_view;

/* Checks that the n bytes at p are exactly one whole record framed with seed (its record crc,
 * which covers the header and the header crc; the header crc itself is the scanner's) whose
 * payload is well formed for its type (not a mark); fills *out (pointers into p). Returns
 * false otherwise. For gets and iterators, which read one record by its keydir location. */
bool bc_rec_check(const uint8_t *p, size_t n, uint32_t seed, bc_rec_view *out);

/* Callback for every operation found in a data or hint file; a non-OK return stops the walk. */
typedef kv_status (*bc_rec_fn)(void *ctx, const bc_rec *r);

/* Walks the records of a data file image buf (len bytes, header included, already checked;
 * name for messages) with reclog's scanner (kv_reclog_scan; kv_reclog_scan_sealed when
 * sealed), calling fn for every operation in file order (the inner operations of a batch one by
 * one; sync marks skipped). *valid_end is where the log ends: len, or (not sealed) the start of
 * a torn tail that reclog's damage rule allows. Errors: KV_CORRUPTION naming the file and
 * offset (damage reclog finds, a payload that is malformed although its crcs match, a record
 * type it does not know), or fn's own error. *marks (may be NULL) gets the sync marks seen. */
kv_status bc_walk_data(const char *name, const uint8_t *buf, size_t len, bool sealed, uint32_t seed,
                       uint64_t *valid_end, uint64_t *marks, bc_rec_fn fn, void *ctx);

/* Hint files. */
/* Appends one entry to b, its crc left zero (the put path does not pay for it):
 * bc_hint_seal fills the crcs when the hint file is written. False when out of memory. */
bool bc_hint_add(kv_buf *b, uint64_t seq, uint64_t offset, uint32_t rec_size, bool tomb,
                 const void *key, size_t klen);
/* Computes the crc of every entry in ents (len bytes of entries made by bc_hint_add). */
void bc_hint_seal(uint8_t *ents, size_t len);
/* Writes the header for the entry bytes ents (count entries) describing data_size bytes of
 * data file id with salt into out (BC_HINT_HDR bytes). */
void bc_hint_hdr_encode(uint8_t out[BC_HINT_HDR], uint64_t id, uint64_t salt, uint64_t data_size,
                        uint64_t count, const uint8_t *ents, size_t ents_len);
/* Verifies a whole hint file image and walks its entries. expect_id, expect_salt and
 * expect_size: the data file it must describe (its id, the salt of its header, its length). The
 * header crc, the crc of all entry bytes, id, salt and size are checked before the first entry
 * is passed to fn; then every entry's fields (key size, flags, an offset past the data header,
 * in file order, a record size that fits its key and the data file); strict also checks every
 * entry's own crc (kv_check; at start-up the whole-file crc already covers those bytes).
 * KV_CORRUPTION (message naming file and offset) on any mismatch; the caller then scans the
 * data file instead. fn may be NULL. */
kv_status bc_walk_hint(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                       uint64_t expect_salt, uint64_t expect_size, bool strict, bc_rec_fn fn,
                       void *ctx);
/* bc_walk_hint, given entries_crc, the crc32 of the entry bytes buf[BC_HINT_HDR, len) that the
 * caller computed itself (start-up's reader computes it in pieces on two threads and joins
 * them, bc_hintload.h). Every check is the same: the header's entries crc must equal
 * entries_crc before the first entry is passed to fn. */
kv_status bc_walk_hint_crc(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                           uint64_t expect_salt, uint64_t expect_size, bool strict,
                           uint32_t entries_crc, bc_rec_fn fn, void *ctx);
/* The entry count a hint file's header claims (0 when it is no hint file). */
uint64_t bc_hint_count(const uint8_t *buf, size_t len);

/* The manifest. */
enum { BC_MAN_SEALED = 1, BC_MAN_ACTIVE = 2 };

typedef struct bc_man_file {
    uint64_t id;
    uint64_t salt;
    uint64_t length; /* sealed: the file's exact size in bytes; active: its durable length in
                        bytes (its valid records must reach at least this far) */
    uint32_t kind;   /* BC_KIND_WRITE or BC_KIND_MERGE */
    uint32_t state;  /* BC_MAN_SEALED or BC_MAN_ACTIVE */
} bc_man_file;

typedef struct bc_manifest {
    uint64_t number;    /* manifests written before this one: grows by one per rewrite */
    uint64_t merge_no;  /* merges committed */
    uint64_t next_id;   /* every file id handed out so far is below it */
    uint64_t max_seq;   /* no record ever had a higher seq when this was written */
    bc_man_file *files; /* sorted by id */
    uint32_t nfiles, capfiles;
    uint64_t *obsolete; /* replaced by a committed merge, maybe still on disk */
    uint32_t nobsolete, capobsolete;
} bc_manifest;

/* Encodes m into a malloc'd buffer (*out, *len). False when out of memory. */
bool bc_manifest_encode(const bc_manifest *m, uint8_t **out, size_t *len);
/* Decodes and verifies (magic, version, counts against the length, crc, then every field: kinds,
 * states, at most one active file and of kind write, ids in order and below next id, sealed
 * lengths at least a header, obsolete ids named nowhere else); on OK m's arrays are malloc'd
 * (bc_manifest_free). KV_CORRUPTION naming the file and offset; KV_NOMEM. */
kv_status bc_manifest_decode(const char *name, const uint8_t *p, size_t len, bc_manifest *m);
void bc_manifest_free(bc_manifest *m);
/* The entry of file id, or NULL. */
bc_man_file *bc_manifest_find(const bc_manifest *m, uint64_t id);
/* Adds or replaces the entry of f->id (kept sorted). False when out of memory (m unchanged). */
bool bc_manifest_set(bc_manifest *m, const bc_man_file *f);
/* Removes the entry of id, if any. */
void bc_manifest_remove(bc_manifest *m, uint64_t id);
/* Appends id to the obsolete list. False when out of memory (m unchanged). */
bool bc_manifest_add_obsolete(bc_manifest *m, uint64_t id);
/* Copies src into *dst (arrays malloc'd). False when out of memory (*dst zeroed). */
bool bc_manifest_copy(bc_manifest *dst, const bc_manifest *src);

#endif
