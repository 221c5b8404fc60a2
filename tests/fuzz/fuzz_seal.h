/* fuzz_seal.h: CRC fix-ups for the engines' file formats (tests only).
 *
 * A mutated file almost always fails its first CRC, so a fuzzer that only feeds raw bytes never
 * gets past the checksums to the field checks behind them. These functions walk a file image
 * as its format describes and rewrite every CRC field they can locate (header, record, page,
 * block, footer) to match the bytes, as a buggy writer or a crafted file would. Each target
 * opens the raw input first and then, when sealing changed it, the sealed copy. Every function
 * works in place on buf (n bytes), never reads or writes outside it, and returns whether it
 * changed anything. */
#ifndef KVLAB_FUZZ_SEAL_H
#define KVLAB_FUZZ_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* wal/ segment: header CRC, every record's reclog CRCs (seeded by the header's salt). */
bool fz_seal_wal_segment(uint8_t *buf, size_t n);
/* lsm/ log (WAL and manifest): header CRC, every record's reclog framing (salt from the
 * header's database id and file number). */
bool fz_seal_lsm_log(uint8_t *buf, size_t n);
/* btree/ data file of ps-byte pages: every page's CRC (page 0 with the meta layout). */
bool fz_seal_btree_file(uint8_t *buf, size_t n, uint32_t ps);
/* btree/ log btree.wal: both header slots' CRCs, then every record's reclog framing (header
 * and record CRCs, seeded for the current slot's generation and database id). */
bool fz_seal_btree_log(uint8_t *buf, size_t n);
/* sstable/: footer CRC, index/properties/filter trailers, every data block the index names. */
bool fz_seal_sstable(uint8_t *buf, size_t n);
/* bitcask/ data file: header CRC, every record's reclog framing, seeded with the header's salt
 * (inner records of a batch first). */
bool fz_seal_bitcask_data(uint8_t *buf, size_t n);
/* bitcask/ hint file: every entry's CRC, the entries CRC, the header CRC. */
bool fz_seal_bitcask_hint(uint8_t *buf, size_t n);

#endif
