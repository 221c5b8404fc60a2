/* sstable.h: the SSTable (sorted string table) of kvlab, after LevelDB's table format
 * (doc/table_format.md) and DDIA ch. 3 ("SSTables and LSM-trees").
 *
 * An SSTable is an immutable file of key/value entries sorted by a comparator. The module is
 * generic over opaque keys: the caller gives an sst_keyops (a comparator, a name stored in the
 * file, and how many leading bytes of a key the Bloom filter hashes). The lsm engine stores
 * internal keys (user key + 8-byte sequence number/type trailer) and filters on the user key.
 *
 * File layout (all integers little-endian; every block ends with a 1-byte type and a CRC32 of
 * the block contents and that type):
 *
 *   offset 0   header: magic "KVLABSST" (8), version u32, crc32 of those 12 bytes (u32)
 *   16         data blocks (about block_size bytes each; prefix-compressed keys, restarts)
 *              filter block (Bloom bits, then 1 byte k)
 *              properties block (name -> value entries)
 *              index block (last key of each data block -> varint64 offset, varint64 size)
 *   end - 60   footer: filter, properties, index handles (u64 offset + u32 size each),
 *              unique id u64, version u32, magic "KVLSSTFT" (8), crc32 of the 56 bytes before
 *              it (u32)
 *
 * The unique id is the writer's choice (sst_writer_opts.unique_id): a caller that names its
 * tables elsewhere (the lsm manifest) records it there too and compares the two when it opens
 * the table, so that a table replaced by another one of the same name is refused (RocksDB 7
 * checks SST unique ids against its manifest the same way).
 *
 * A data block: entries "varint32 shared, varint32 non_shared, varint32 value_len,
 * key[shared..], value", then restart offsets (u32 each) and their count (u32). At each restart
 * point the shared length is 0, so a reader binary-searches the restarts, then scans.
 *
 * Thread safety: a reader may be used from many threads at once; an iterator and a writer by
 * one thread at a time. The cache is thread-safe. */
#ifndef KVLAB_SSTABLE_H
#define KVLAB_SSTABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dump.h"
#include "fs.h"
#include "status.h"

#define SST_HEADER_SIZE  16
#define SST_FOOTER_SIZE  60
#define SST_TRAILER_SIZE 5 /* 1-byte block type + CRC32 */
#define SST_VERSION      2

/* How keys are ordered, filtered and printed. */
typedef struct sst_keyops {
    const char *name; /* stored in the properties; a reader refuses a table of another name */
    /* <0, 0, >0 like memcmp. */
    int (*cmp)(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
    /* Bytes of a key (klen bytes) that the Bloom filter hashes; NULL = the whole key. */
    size_t (*filter_len)(size_t klen);
    /* Prints a key for a dump; NULL = escaped bytes. */
    void (*format)(FILE *out, const uint8_t *k, size_t klen);
} sst_keyops;

/* Keys compared as kvlab user keys: memcmp, then length (kv_key_cmp). */
extern const sst_keyops sst_bytewise;

/* ---- block cache: an LRU of decoded blocks with a byte budget (sharded, thread-safe) ---- */

typedef struct sst_cache sst_cache;

/* Counters shared by every reader that uses one cache (relaxed atomics). */
typedef struct sst_counters {
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t cache_misses;
    _Atomic uint64_t bloom_checks; /* lookups that consulted a filter */
    _Atomic uint64_t bloom_useful; /* of those, lookups the filter answered "absent" */
} sst_counters;

/* A new cache holding at most capacity bytes of blocks (block contents bytes; 0 disables
 * caching but keeps the counters). Returns NULL when out of memory. Free with sst_cache_free
 * after every reader using it is closed. Idea: LevelDB's ShardedLRUCache. */
sst_cache *sst_cache_new(uint64_t capacity);
void sst_cache_free(sst_cache *c);
/* Bytes of blocks held now (always <= capacity). */
uint64_t sst_cache_usage(sst_cache *c);
uint64_t sst_cache_capacity(sst_cache *c);
sst_counters *sst_cache_counters(sst_cache *c);

/* ---- writer ---- */

typedef struct sst_writer_opts {
    size_t block_size;           /* bytes of a data block before it is cut; default 4096 */
    unsigned restart_interval;   /* entries between restart points; default 16 */
    unsigned bloom_bits_per_key; /* 0 = no filter; default 10 (about 1% false positives) */
    bool sync_dir;      /* fsync the directory after the rename (default true); a caller writing
                           several tables may say false and fsync the directory once itself
                           before anything refers to them */
    uint64_t unique_id; /* written in the footer (default 0: none); see the layout above */
    bool sync_data;     /* fdatasync NAME.tmp before the rename (default true); false only for
                           the crash lab's deliberate bug lsm bug=table_no_fsync (docs/lab.md) */
} sst_writer_opts;

/* Sets the defaults above. */
void sst_writer_opts_init(sst_writer_opts *o);

typedef struct sst_writer sst_writer;

/* Summary of a finished table. smallest/largest are malloc'd (caller frees both). */
typedef struct sst_props {
    uint64_t entries;
    uint64_t data_blocks;
    uint64_t data_size;  /* bytes of data blocks with trailers */
    uint64_t index_size; /* bytes of the index block with trailer */
    uint64_t filter_size;
    uint64_t raw_key_bytes;
    uint64_t raw_value_bytes;
    uint64_t file_size; /* bytes of the whole file */
    uint64_t unique_id; /* the footer's unique id */
    uint32_t block_size;
    uint32_t bloom_bits_per_key;
    uint8_t *smallest;
    size_t smallest_len;
    uint8_t *largest;
    size_t largest_len;
} sst_props;

void sst_props_free(sst_props *p);

/* Starts writing table dir/name (through "dir/name.tmp"). ops and opts must outlive the writer
 * (opts may be NULL for defaults). *out is owned by the caller until sst_writer_finish or
 * sst_writer_abandon. Errors: KV_IO, KV_NOSPACE, KV_INVALID (bad options). */
kv_status sst_writer_new(kv_fs *fs, const char *dir, const char *name, const sst_keyops *ops,
                         const sst_writer_opts *opts, sst_writer **out);

/* Adds an entry; keys must be strictly increasing under ops->cmp (else KV_INVALID).
 * Key and value are copied. Errors: KV_INVALID, KV_IO, KV_NOSPACE. */
kv_status sst_writer_add(sst_writer *w, const void *key, size_t klen, const void *value,
                         size_t vlen);

/* Entries added so far, and the estimated file size in bytes if finished now. */
uint64_t sst_writer_entries(const sst_writer *w);
uint64_t sst_writer_estimated_size(const sst_writer *w);

/* Writes the filter, properties, index and footer, fdatasyncs NAME.tmp, renames it to NAME and
 * fsyncs the directory (so the table is durable under its name before anything refers to it;
 * unless opts->sync_dir is false: then the caller must fsync the directory).
 * Fills *props when non-NULL (caller frees with sst_props_free). Frees w in all cases; on error
 * the .tmp is removed. At least one entry is required (else KV_INVALID). Errors: KV_IO,
 * KV_NOSPACE, KV_INVALID. */
kv_status sst_writer_finish(sst_writer *w, sst_props *props);

/* Stops writing: closes and removes NAME.tmp, frees w. NULL allowed. */
void sst_writer_abandon(sst_writer *w);

/* ---- reader ---- */

typedef struct sst_reader sst_reader;

/* Opens the table at path: reads and checks the header, footer, index, filter and properties
 * (kept in memory). cache may be NULL (no caching, no counters). *out is the caller's; close
 * with sst_reader_close. Errors: KV_NOT_FOUND, KV_IO, KV_CORRUPTION (naming file and offset),
 * KV_INVALID (the table was written with another keyops name). */
kv_status sst_reader_open(kv_fs *fs, const char *path, const sst_keyops *ops, sst_cache *cache,
                          sst_reader **out);
/* Like sst_reader_open; with mmap true the file is mapped read-only (kv_file_map) and data
 * blocks are read from the mapping instead of through the cache: each block's CRC is checked
 * the first time it is touched (counted as a cache miss) and remembered in a bitmap (later
 * touches count as hits), as LevelDB reads tables through mmap. Falls back to pread when the
 * fs cannot map. Same errors. */
kv_status sst_reader_open_ex(kv_fs *fs, const char *path, const sst_keyops *ops, sst_cache *cache,
                             bool mmap, sst_reader **out);
void sst_reader_close(sst_reader *r);

/* The table's properties (owned by the reader). */
const sst_props *sst_reader_props(const sst_reader *r);
const char *sst_reader_path(const sst_reader *r);
/* Bytes of memory the reader holds (index, filter, properties). */
uint64_t sst_reader_memory(const sst_reader *r);

/* Whether the Bloom filter allows that the table holds a key whose filter bytes are fkey. */
bool sst_reader_may_contain(sst_reader *r, const void *fkey, size_t fklen);

/* Point lookup: when the filter allows fkey (fklen bytes), finds the first entry >= key and
 * calls fn(ctx, key, klen, value, vlen) with pointers valid only during the call; KV_NOT_FOUND
 * when the filter rules it out or every entry is < key. Errors: KV_IO, KV_CORRUPTION. */
typedef void (*sst_get_fn)(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
kv_status sst_reader_get(sst_reader *r, const void *key, size_t klen, const void *fkey,
                         size_t fklen, sst_get_fn fn, void *ctx);

/* Reads every block, checks CRCs, decoding, key order (strictly increasing within and across
 * blocks), index keys, entry count and smallest/largest against the properties.
 * Errors: KV_CORRUPTION naming file and offset, KV_IO. */
kv_status sst_reader_verify(sst_reader *r);

/* ---- iterator (forward) ---- */

typedef struct sst_iter sst_iter;

/* A new unpositioned iterator over r (r must outlive it). Returns NULL when out of memory. */
sst_iter *sst_iter_new(sst_reader *r);
void sst_iter_free(sst_iter *it);
void sst_iter_seek_first(sst_iter *it);
/* Positions at the first entry >= key. */
void sst_iter_seek(sst_iter *it, const void *key, size_t klen);
bool sst_iter_valid(const sst_iter *it);
void sst_iter_next(sst_iter *it);
/* Valid until the next move. */
const uint8_t *sst_iter_key(const sst_iter *it, size_t *klen);
const uint8_t *sst_iter_value(const sst_iter *it, size_t *vlen);
/* KV_OK or the error (KV_IO, KV_CORRUPTION) that stopped the iterator. */
kv_status sst_iter_status(const sst_iter *it);

/* ---- dump ---- */

/* Prints the table at path field by field with offsets: header, every data block (entries
 * with shared/non-shared/value lengths, restarts), the filter, properties, index and footer.
 * block >= 0 prints only that data block (0-based, index order) plus the footer and index.
 * Errors: KV_INVALID (no such block), KV_IO, KV_CORRUPTION (printed up to the damage). */
kv_status sst_dump(kv_fs *fs, const char *path, const sst_keyops *ops, FILE *out, int64_t block);

#endif
