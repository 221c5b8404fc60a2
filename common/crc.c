/* CRC32 via zlib (docs/design.md section 6): a well-kept library beats our own table. */
#include "crc.h"

#include <zlib.h>

uint32_t kv_crc32_extend(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    /* zlib takes uInt lengths: feed large buffers in pieces. */
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32((uLong)crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}

uint32_t kv_crc32(const void *p, size_t n)
{
    return kv_crc32_extend(0, p, n);
}

uint32_t kv_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t nb)
{
    return (uint32_t)crc32_combine64((uLong)crc_a, (uLong)crc_b, (z_off64_t)nb);
}
