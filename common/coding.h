/* Little-endian fixed-width and LEB128 varint coding (docs/design.md section 6), as LevelDB's
 * util/coding.h does. Encoders write into a caller buffer; decoders are bounds-checked: they
 * never read past `end` and report truncation instead. */
#ifndef KVLAB_CODING_H
#define KVLAB_CODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Maximum encoded sizes in bytes. */
#define KV_VARINT32_MAX 5
#define KV_VARINT64_MAX 10

static inline void kv_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void kv_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void kv_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t kv_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t kv_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t kv_get_u64(const uint8_t *p)
{
    return (uint64_t)kv_get_u32(p) | ((uint64_t)kv_get_u32(p + 4) << 32);
}

/* Writes v as LEB128 at p (room for KV_VARINT64_MAX bytes); returns the bytes written (1-10). */
size_t kv_put_varint64(uint8_t *p, uint64_t v);
size_t kv_put_varint32(uint8_t *p, uint32_t v);
/* Encoded length of v in bytes. */
size_t kv_varint_len(uint64_t v);

/* Reads a varint from [*p, end) into *v and advances *p. Returns false (and leaves *p) when the
 * input ends first or the encoding is longer than 10 bytes (5 for the 32-bit form) or overflows. */
bool kv_get_varint64(const uint8_t **p, const uint8_t *end, uint64_t *v);
bool kv_get_varint32(const uint8_t **p, const uint8_t *end, uint32_t *v);

/* Bounds-checked fixed-width reads from [*p, end) that advance *p; false on truncation. */
bool kv_get_fixed32(const uint8_t **p, const uint8_t *end, uint32_t *v);
bool kv_get_fixed64(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* A growable byte buffer for building records. Free with kv_buf_free. */
typedef struct kv_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} kv_buf;

/* Ensures room for `extra` more bytes; false when out of memory (the buffer is unchanged). */
bool kv_buf_reserve(kv_buf *b, size_t extra);
/* Appends; false when out of memory. */
bool kv_buf_append(kv_buf *b, const void *p, size_t n);
bool kv_buf_put_u32(kv_buf *b, uint32_t v);
bool kv_buf_put_u64(kv_buf *b, uint64_t v);
bool kv_buf_put_varint(kv_buf *b, uint64_t v);
void kv_buf_free(kv_buf *b);

/* memcmp-then-length order of kvlab keys: <0, 0, >0. */
static inline int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

#endif
