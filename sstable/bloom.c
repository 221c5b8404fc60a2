/* bloom.c: the Bloom filter of an SSTable, after LevelDB's util/bloom.cc (one hash, double
 * hashing to derive k probes; k = bits_per_key * ln 2 so about 1% false positives at 10 bits
 * per key) and LevelDB's util/hash.cc (a Murmur-like hash). */
#include <string.h>

#include "sst_int.h"

uint32_t sst_hash(const uint8_t *data, size_t n, uint32_t seed)
{
    const uint32_t m = 0xc6a4a793;
    const uint32_t r = 24;
    const uint8_t *limit = data + n;
    uint32_t h = seed ^ ((uint32_t)n * m);
    while (limit - data >= 4) {
        uint32_t w = kv_get_u32(data);
        data += 4;
        h += w;
        h *= m;
        h ^= (h >> 16);
    }
    switch (limit - data) {
    case 3:
        h += (uint32_t)data[2] << 16;
        /* fall through */
    case 2:
        h += (uint32_t)data[1] << 8;
        /* fall through */
    case 1:
        h += data[0];
        h *= m;
        h ^= (h >> r);
        break;
    }
    return h;
}

bool sst_bloom_build(const uint32_t *hashes, size_t n, unsigned bits_per_key, kv_buf *out)
{
    size_t k = (size_t)(bits_per_key * 0.69); /* ln 2 */
    if (k < 1)
        k = 1;
    if (k > 30)
        k = 30;
    size_t bits = n * bits_per_key;
    if (bits < 64)
        bits = 64;
    size_t bytes = (bits + 7) / 8;
    bits = bytes * 8;
    if (!kv_buf_reserve(out, bytes + 1))
        return false;
    uint8_t *array = out->data + out->len;
    memset(array, 0, bytes);
    for (size_t i = 0; i < n; i++) {
        uint32_t h = hashes[i];
        uint32_t delta = (h >> 17) | (h << 15);
        for (size_t j = 0; j < k; j++) {
            uint32_t pos = (uint32_t)(h % bits);
            array[pos / 8] |= (uint8_t)(1u << (pos % 8));
            h += delta;
        }
    }
    array[bytes] = (uint8_t)k;
    out->len += bytes + 1;
    return true;
}

bool sst_bloom_may_match(const uint8_t *filter, size_t len, uint32_t h)
{
    if (len < 2)
        return true; /* no filter: everything may match */
    size_t bits = (len - 1) * 8;
    size_t k = filter[len - 1];
    if (k > 30)
        return true; /* reserved for other encodings */
    uint32_t delta = (h >> 17) | (h << 15);
    for (size_t j = 0; j < k; j++) {
        uint32_t pos = (uint32_t)(h % bits);
        if (!(filter[pos / 8] & (1u << (pos % 8))))
            return false;
        h += delta;
    }
    return true;
}
