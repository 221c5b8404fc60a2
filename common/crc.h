/* CRC32 (the zlib / IEEE 802.3 polynomial) through zlib's crc32(), as docs/design.md section 6
 * requires for every record, page and block. */
#ifndef KVLAB_CRC_H
#define KVLAB_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC32 of n bytes at p. kv_crc32(NULL, 0) is 0. */
uint32_t kv_crc32(const void *p, size_t n);

/* Joins two CRC32s: kv_crc32_combine(kv_crc32(a, na), kv_crc32(b, nb), nb) == kv_crc32(a ++ b),
 * so that pieces of one buffer can be checked on different threads (zlib's crc32_combine:
 * O(log nb), no pass over the bytes). nb in bytes. */
uint32_t kv_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t nb);

/* Continues a CRC32: kv_crc32_extend(kv_crc32(a, na), b, nb) == kv_crc32(a ++ b). */
uint32_t kv_crc32_extend(uint32_t crc, const void *p, size_t n);

#endif
