/* sst_int.h: internals shared by the files of the sstable module (not for other modules).
 * Block building and decoding follow LevelDB's table/block_builder.cc and table/block.cc. */
#ifndef KVLAB_SST_INT_H
#define KVLAB_SST_INT_H

#include <stdatomic.h>

#include "coding.h"
#include "sstable.h"

#define SST_MAGIC        "KVLABSST"
#define SST_FOOTER_MAGIC "KVLSSTFT"
#define SST_BLOCK_RAW    0 /* block type byte: uncompressed */

/* Where a block lives: offset of its first byte, size of its contents (without trailer). */
typedef struct sst_handle {
    uint64_t off;
    uint64_t size;
} sst_handle;

/* ---- block builder ---- */

typedef struct sst_block_builder {
    kv_buf buf;
    uint32_t *restarts;
    size_t n_restarts, cap_restarts;
    unsigned interval;
    unsigned counter; /* entries since the last restart */
    kv_buf last_key;
    uint64_t entries;
} sst_block_builder;

void sst_bb_init(sst_block_builder *b, unsigned interval);
void sst_bb_free(sst_block_builder *b);
void sst_bb_reset(sst_block_builder *b);
/* Appends an entry (key greater than the previous one). False when out of memory. */
bool sst_bb_add(sst_block_builder *b, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
/* Bytes the block would take if finished now (contents, no trailer). */
size_t sst_bb_size(const sst_block_builder *b);
/* Appends the restart array; the contents are then b->buf. False when out of memory. */
bool sst_bb_finish(sst_block_builder *b);

/* ---- decoded block (refcounted; shared between the cache and iterators) ---- */

typedef struct sst_block {
    _Atomic uint32_t refs;
    bool owned;    /* data is malloc'd (else it points into a read-only mapping) */
    uint8_t *data; /* contents (no trailer) */
    size_t size;
    uint32_t n_restarts;
    size_t restarts_off; /* offset of the restart array in data */
} sst_block;

/* Checks the trailer CRC of raw (size + SST_TRAILER_SIZE bytes read at file offset off) and
 * parses the restart array. On success takes ownership of raw (must be malloc'd) and returns a
 * block with one reference. Errors: KV_CORRUPTION naming path and offset. */
kv_status sst_block_make(const char *path, uint64_t off, uint8_t *raw, size_t size,
                         sst_block **out);
void sst_block_unref(sst_block *b);

/* Checks a trailer only (for blocks not kept as sst_block: filter). */
kv_status sst_check_trailer(const char *path, uint64_t off, const uint8_t *raw, size_t size);

/* Iterator over one block. key is rebuilt in kbuf (prefix compression). */
typedef struct sst_block_iter {
    const sst_block *b;
    const sst_keyops *ops;
    const char *path;   /* for messages */
    uint64_t file_off;  /* of the block, for messages */
    size_t cur;         /* offset of the current entry, or b->restarts_off when invalid */
    size_t next;        /* offset of the entry after it */
    uint32_t restart_i; /* restart index the current entry is in */
    kv_buf key;
    const uint8_t *val;
    size_t vlen;
    kv_status status;
} sst_block_iter;

void sst_bi_init(sst_block_iter *it, const sst_block *b, const sst_keyops *ops, const char *path,
                 uint64_t file_off);
void sst_bi_free(sst_block_iter *it);
bool sst_bi_valid(const sst_block_iter *it);
void sst_bi_seek_first(sst_block_iter *it);
void sst_bi_seek(sst_block_iter *it, const uint8_t *k, size_t klen);
void sst_bi_next(sst_block_iter *it);

/* Decodes one entry at data[off] (limit = restarts_off): lengths and pointers. False when
 * malformed. */
bool sst_decode_entry(const uint8_t *data, size_t off, size_t limit, uint32_t *shared,
                      uint32_t *non_shared, uint32_t *vlen, size_t *delta_off);

/* Block handle coding (varint64 offset, varint64 size). */
bool sst_handle_decode(const uint8_t *p, size_t n, sst_handle *h);
size_t sst_handle_encode(uint8_t *p, sst_handle h);

/* ---- Bloom filter (LevelDB's util/bloom.cc: double hashing, k = bits * ln 2) ---- */

uint32_t sst_hash(const uint8_t *data, size_t n, uint32_t seed);
static inline uint32_t sst_bloom_hash(const uint8_t *k, size_t n)
{
    return sst_hash(k, n, 0xbc9f1d34);
}
/* Builds a filter of n hashes into out (bits, then 1 byte k). False when out of memory. */
bool sst_bloom_build(const uint32_t *hashes, size_t n, unsigned bits_per_key, kv_buf *out);
/* Whether the filter (len bytes: bits then k) may hold a key of hash h. */
bool sst_bloom_may_match(const uint8_t *filter, size_t len, uint32_t h);

/* ---- cache internals ---- */

uint64_t sst_cache_new_id(sst_cache *c);
/* Returns the block with a new reference, or NULL. Counts a hit or a miss. */
sst_block *sst_cache_lookup(sst_cache *c, uint64_t id, uint64_t off);
/* Inserts b (the cache takes its own reference) unless larger than the capacity. */
void sst_cache_insert(sst_cache *c, uint64_t id, uint64_t off, sst_block *b);

/* ---- reader internals ---- */

/* Reads the data block at h (through the cache), returns it with a reference for the caller. */
kv_status sst_reader_block(sst_reader *r, sst_handle h, sst_block **out);
/* The in-memory index block of r. */
const sst_block *sst_reader_index(const sst_reader *r);

/* Properties block coding. */
bool sst_props_encode(const sst_props *p, const char *keyops_name, kv_buf *out, unsigned interval);
/* Decodes a properties block; fills *p (allocates smallest/largest) and *name (malloc'd, the
 * caller frees both). Returns KV_OK, KV_CORRUPTION when the block is malformed or KV_NOMEM when an
 * allocation failed; neither error sets a message (the caller names the file and offset). */
kv_status sst_props_decode(const sst_block *b, sst_props *p, char **name);

/* Footer coding. */
void sst_footer_encode(uint8_t out[SST_FOOTER_SIZE], sst_handle filter, sst_handle props,
                       sst_handle index, uint64_t unique_id);
kv_status sst_footer_decode(const char *path, uint64_t off, const uint8_t in[SST_FOOTER_SIZE],
                            sst_handle *filter, sst_handle *props, sst_handle *index,
                            uint64_t *unique_id);
void sst_header_encode(uint8_t out[SST_HEADER_SIZE]);
kv_status sst_header_decode(const char *path, const uint8_t in[SST_HEADER_SIZE]);

#endif
