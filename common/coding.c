/* LEB128 varints and a growable buffer (LevelDB util/coding.cc is the model). */
#include "coding.h"

#include <stdlib.h>

size_t kv_put_varint64(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t kv_put_varint32(uint8_t *p, uint32_t v)
{
    return kv_put_varint64(p, v);
}

size_t kv_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

bool kv_get_varint64(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t result = 0;
    for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t byte = *p++;
        if (shift == 63 && byte > 1)
            return false; /* overflows 64 bits */
        result |= (byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = result;
            *pp = p;
            return true;
        }
    }
    return false;
}

bool kv_get_varint32(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r;
    if (end - p > KV_VARINT32_MAX)
        end = p + KV_VARINT32_MAX;
    if (!kv_get_varint64(&p, end, &r) || r > UINT32_MAX)
        return false;
    *v = (uint32_t)r;
    *pp = p;
    return true;
}

bool kv_get_fixed32(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    if (end - *p < 4)
        return false;
    *v = kv_get_u32(*p);
    *p += 4;
    return true;
}

bool kv_get_fixed64(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    if (end - *p < 8)
        return false;
    *v = kv_get_u64(*p);
    *p += 8;
    return true;
}

bool kv_buf_reserve(kv_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return true;
    size_t need = b->len + extra;
    if (need < b->len)
        return false;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return false;
    b->data = d;
    b->cap = cap;
    return true;
}

bool kv_buf_append(kv_buf *b, const void *p, size_t n)
{
    if (!kv_buf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

bool kv_buf_put_u32(kv_buf *b, uint32_t v)
{
    uint8_t t[4];
    kv_put_u32(t, v);
    return kv_buf_append(b, t, 4);
}

bool kv_buf_put_u64(kv_buf *b, uint64_t v)
{
    uint8_t t[8];
    kv_put_u64(t, v);
    return kv_buf_append(b, t, 8);
}

bool kv_buf_put_varint(kv_buf *b, uint64_t v)
{
    uint8_t t[KV_VARINT64_MAX];
    return kv_buf_append(b, t, kv_put_varint64(t, v));
}

void kv_buf_free(kv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
