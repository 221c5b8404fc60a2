/* block.c: building and reading SSTable blocks (prefix-compressed keys with restart points),
 * after LevelDB's table/block_builder.cc and table/block.cc. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "sst_int.h"

/* ---- builder ---- */

void sst_bb_init(sst_block_builder *b, unsigned interval)
{
    memset(b, 0, sizeof *b);
    b->interval = interval ? interval : 1;
}

void sst_bb_free(sst_block_builder *b)
{
    kv_buf_free(&b->buf);
    kv_buf_free(&b->last_key);
    free(b->restarts);
    memset(b, 0, sizeof *b);
}

void sst_bb_reset(sst_block_builder *b)
{
    b->buf.len = 0;
    b->n_restarts = 0;
    b->counter = 0;
    b->last_key.len = 0;
    b->entries = 0;
}

static bool push_restart(sst_block_builder *b, uint32_t off)
{
    if (b->n_restarts == b->cap_restarts) {
        size_t cap = b->cap_restarts ? b->cap_restarts * 2 : 32;
        uint32_t *n = realloc(b->restarts, cap * sizeof *n);
        if (!n)
            return false;
        b->restarts = n;
        b->cap_restarts = cap;
    }
    b->restarts[b->n_restarts++] = off;
    return true;
}

bool sst_bb_add(sst_block_builder *b, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    size_t shared = 0;
    if (b->counter < b->interval && b->entries > 0) {
        size_t n = klen < b->last_key.len ? klen : b->last_key.len;
        while (shared < n && b->last_key.data[shared] == k[shared])
            shared++;
    } else {
        if (!push_restart(b, (uint32_t)b->buf.len))
            return false;
        b->counter = 0;
    }
    size_t non_shared = klen - shared;
    if (!kv_buf_reserve(&b->buf, 3 * KV_VARINT32_MAX + non_shared + vlen))
        return false;
    uint8_t *p = b->buf.data + b->buf.len;
    p += kv_put_varint32(p, (uint32_t)shared);
    p += kv_put_varint32(p, (uint32_t)non_shared);
    p += kv_put_varint32(p, (uint32_t)vlen);
    memcpy(p, k + shared, non_shared);
    p += non_shared;
    if (vlen)
        memcpy(p, v, vlen);
    p += vlen;
    b->buf.len = (size_t)(p - b->buf.data);
    b->last_key.len = 0;
    if (!kv_buf_append(&b->last_key, k, klen))
        return false;
    b->counter++;
    b->entries++;
    return true;
}

size_t sst_bb_size(const sst_block_builder *b)
{
    return b->buf.len + 4 * (b->n_restarts ? b->n_restarts : 1) + 4;
}

bool sst_bb_finish(sst_block_builder *b)
{
    if (b->n_restarts == 0 && !push_restart(b, 0))
        return false;
    if (!kv_buf_reserve(&b->buf, 4 * b->n_restarts + 4))
        return false;
    for (size_t i = 0; i < b->n_restarts; i++)
        kv_buf_put_u32(&b->buf, b->restarts[i]);
    kv_buf_put_u32(&b->buf, (uint32_t)b->n_restarts);
    return true;
}

/* ---- handles ---- */

bool sst_handle_decode(const uint8_t *p, size_t n, sst_handle *h)
{
    const uint8_t *end = p + n;
    return kv_get_varint64(&p, end, &h->off) && kv_get_varint64(&p, end, &h->size);
}

size_t sst_handle_encode(uint8_t *p, sst_handle h)
{
    size_t n = kv_put_varint64(p, h.off);
    return n + kv_put_varint64(p + n, h.size);
}

/* ---- decoded blocks ---- */

kv_status sst_check_trailer(const char *path, uint64_t off, const uint8_t *raw, size_t size)
{
    if (raw[size] != SST_BLOCK_RAW)
        return kv_error(KV_CORRUPTION, "%s: block at offset %llu: unknown block type %u", path,
                        (unsigned long long)off, raw[size]);
    uint32_t want = kv_get_u32(raw + size + 1);
    uint32_t got = kv_crc32(raw, size + 1);
    if (want != got)
        return kv_error(KV_CORRUPTION,
                        "%s: block at offset %llu (%zu bytes): crc mismatch (stored %08x, "
                        "computed %08x)",
                        path, (unsigned long long)off, size, want, got);
    return KV_OK;
}

kv_status sst_block_make(const char *path, uint64_t off, uint8_t *raw, size_t size, sst_block **out)
{
    kv_status s = sst_check_trailer(path, off, raw, size);
    if (s != KV_OK)
        return s;
    if (size < 4)
        return kv_error(KV_CORRUPTION, "%s: block at offset %llu: %zu bytes, too short", path,
                        (unsigned long long)off, size);
    uint32_t n = kv_get_u32(raw + size - 4);
    if (n == 0 || (uint64_t)n * 4 + 4 > size)
        return kv_error(KV_CORRUPTION, "%s: block at offset %llu: bad restart count %u", path,
                        (unsigned long long)off, n);
    size_t roff = size - 4 - (size_t)n * 4;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = kv_get_u32(raw + roff + 4 * i);
        if (r >= roff && !(r == 0 && roff == 0))
            return kv_error(KV_CORRUPTION,
                            "%s: block at offset %llu: restart %u points past "
                            "the entries (%u)",
                            path, (unsigned long long)off, i, r);
    }
    sst_block *b = malloc(sizeof *b);
    if (!b)
        return kv_error(KV_NOMEM, "%s: out of memory", path);
    atomic_init(&b->refs, 1);
    b->owned = true;
    b->data = raw;
    b->size = size;
    b->n_restarts = n;
    b->restarts_off = roff;
    *out = b;
    return KV_OK;
}

void sst_block_unref(sst_block *b)
{
    if (!b)
        return;
    long left = (long)atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left == 1) {
        if (b->owned)
            free(b->data);
        free(b);
    }
}

/* ---- block iterator ---- */

bool sst_decode_entry(const uint8_t *data, size_t off, size_t limit, uint32_t *shared,
                      uint32_t *non_shared, uint32_t *vlen, size_t *delta_off)
{
    const uint8_t *p = data + off, *end = data + limit;
    if (off >= limit)
        return false;
    if (!kv_get_varint32(&p, end, shared) || !kv_get_varint32(&p, end, non_shared) ||
        !kv_get_varint32(&p, end, vlen))
        return false;
    if ((uint64_t)(end - p) < (uint64_t)*non_shared + *vlen)
        return false;
    *delta_off = (size_t)(p - data);
    return true;
}

static uint32_t restart_at(const sst_block *b, uint32_t i)
{
    return kv_get_u32(b->data + b->restarts_off + 4 * (size_t)i);
}

void sst_bi_init(sst_block_iter *it, const sst_block *b, const sst_keyops *ops, const char *path,
                 uint64_t file_off)
{
    memset(it, 0, sizeof *it);
    it->b = b;
    it->ops = ops;
    it->path = path;
    it->file_off = file_off;
    it->cur = it->next = b->restarts_off;
}

void sst_bi_free(sst_block_iter *it)
{
    kv_buf_free(&it->key);
}

bool sst_bi_valid(const sst_block_iter *it)
{
    return it->status == KV_OK && it->cur < it->b->restarts_off;
}

static void corrupt(sst_block_iter *it, size_t off)
{
    it->status = kv_error(KV_CORRUPTION, "%s: block at offset %llu: bad entry at offset %zu",
                          it->path, (unsigned long long)it->file_off, off);
    it->cur = it->next = it->b->restarts_off;
}

/* Decodes the entry at it->next, making it current. False at the end or on damage. */
static bool parse_next(sst_block_iter *it)
{
    const sst_block *b = it->b;
    it->cur = it->next;
    if (it->cur >= b->restarts_off) {
        it->cur = it->next = b->restarts_off;
        return false;
    }
    uint32_t shared, non_shared, vlen;
    size_t d;
    if (!sst_decode_entry(b->data, it->cur, b->restarts_off, &shared, &non_shared, &vlen, &d) ||
        shared > it->key.len) {
        corrupt(it, it->cur);
        return false;
    }
    it->key.len = shared;
    if (!kv_buf_append(&it->key, b->data + d, non_shared)) {
        it->status = kv_error(KV_NOMEM, "%s: out of memory", it->path);
        return false;
    }
    it->val = b->data + d + non_shared;
    it->vlen = vlen;
    it->next = d + non_shared + vlen;
    while (it->restart_i + 1 < b->n_restarts && restart_at(b, it->restart_i + 1) <= it->cur)
        it->restart_i++;
    return true;
}

static void seek_restart(sst_block_iter *it, uint32_t i)
{
    it->key.len = 0;
    it->restart_i = i;
    it->next = restart_at(it->b, i);
}

void sst_bi_seek_first(sst_block_iter *it)
{
    if (it->status != KV_OK)
        return;
    seek_restart(it, 0);
    parse_next(it);
}

void sst_bi_next(sst_block_iter *it)
{
    parse_next(it);
}

void sst_bi_seek(sst_block_iter *it, const uint8_t *k, size_t klen)
{
    if (it->status != KV_OK)
        return;
    const sst_block *b = it->b;
    /* Binary search for the last restart whose key is < k. */
    uint32_t lo = 0, hi = b->n_restarts - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        uint32_t off = restart_at(b, mid);
        uint32_t shared, non_shared, vlen;
        size_t d;
        if (!sst_decode_entry(b->data, off, b->restarts_off, &shared, &non_shared, &vlen, &d) ||
            shared != 0) {
            corrupt(it, off);
            return;
        }
        if (it->ops->cmp(b->data + d, non_shared, k, klen) < 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    seek_restart(it, lo);
    while (parse_next(it)) {
        if (it->ops->cmp(it->key.data, it->key.len, k, klen) >= 0)
            return;
    }
}
