/* CRC32 (the zlib / IEEE 802.3 polynomial) through zlib's crc32(), as DESIGN.md section 6
 * requires for every record, page and block. */
#ifndef KVLAB_CRC_H
#define KVLAB_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC32 of n bytes at p. kv_crc32(NULL, 0) is 0. */
uint32_t kv_crc32(const void *p, size_t n);

/* Continues a CRC32: kv_crc32_extend(kv_crc32(a, na), b, nb) == kv_crc32(a ++ b). */
uint32_t kv_crc32_extend(uint32_t crc, const void *p, size_t n);

#endif
