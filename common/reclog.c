/* reclog.c: framing, sync marks and the one scanner of kvlab's logs (see reclog.h). */
#include "reclog.h"

#include <assert.h>
#include <inttypes.h>

#include "crc.h"

uint32_t kv_reclog_seed(uint64_t salt)
{
    uint8_t b[8];
    kv_put_u64(b, salt);
    return kv_crc32(b, sizeof b);
}

/* The header check: CRC32 of framing bytes [8, 16) from the seed. */
static uint32_t header_crc(uint32_t seed, const uint8_t *rec)
{
    return kv_crc32_extend(seed, rec + 8, 8);
}

void kv_reclog_seal(uint8_t *rec, uint32_t seed, uint8_t type, uint32_t len)
{
    kv_put_u32(rec + 8, len);
    rec[12] = type;
    rec[13] = rec[14] = rec[15] = 0;
    uint32_t h = header_crc(seed, rec);
    kv_put_u32(rec + 4, h);
    /* crc covers [4, 16 + len): the header check, the header, the payload. */
    kv_put_u32(rec, kv_crc32_extend(seed, rec + 4, 12 + (size_t)len));
}

size_t kv_reclog_encode(uint8_t *out, uint32_t seed, uint8_t type, const void *payload,
                        uint32_t len)
{
    if (len)
        memcpy(out + KV_RECLOG_FRAME, payload, len);
    kv_reclog_seal(out, seed, type, len);
    return KV_RECLOG_FRAME + (size_t)len;
}

bool kv_reclog_begin(kv_buf *b, size_t *at)
{
    if (!kv_buf_reserve(b, KV_RECLOG_FRAME))
        return false;
    *at = b->len;
    memset(b->data + b->len, 0, KV_RECLOG_FRAME);
    b->len += KV_RECLOG_FRAME;
    return true;
}

void kv_reclog_end(kv_buf *b, size_t at, uint32_t seed, uint8_t type)
{
    assert(at + KV_RECLOG_FRAME <= b->len); /* kv_reclog_begin reserved the frame at `at` */
    assert(b->len - at - KV_RECLOG_FRAME <= KV_RECLOG_MAX_PAYLOAD);
    assert(type != 0); /* 0 is never a record */
    kv_reclog_seal(b->data + at, seed, type, (uint32_t)(b->len - at - KV_RECLOG_FRAME));
}

size_t kv_reclog_mark(uint8_t *out, uint32_t seed, uint64_t durable)
{
    uint8_t p[8];
    kv_put_u64(p, durable);
    return kv_reclog_encode(out, seed, KV_RECLOG_MARK, p, sizeof p);
}

kv_reclog_dec kv_reclog_decode(const uint8_t *data, uint64_t size, uint64_t off, uint32_t seed,
                               kv_reclog_rec *out, const char **why)
{
    const char *w = NULL;
    kv_reclog_dec d = KV_RECLOG_OK;
    *out = (kv_reclog_rec){.off = off};
    if (off > size || size - off < KV_RECLOG_FRAME) {
        w = "record header runs past the end of the file";
        d = KV_RECLOG_SHORT;
        goto done;
    }
    const uint8_t *r = data + off;
    uint32_t len = kv_get_u32(r + 8);
    out->type = r[12];
    out->len = len;
    if (kv_get_u32(r + 4) != header_crc(seed, r)) {
        w = "record header crc mismatch";
        d = KV_RECLOG_BAD;
    } else if (r[12] == 0 || r[13] || r[14] || r[15] || len > KV_RECLOG_MAX_PAYLOAD) {
        w = "record header holds an impossible type or length";
        d = KV_RECLOG_BAD;
    } else if (size - off - KV_RECLOG_FRAME < len) {
        w = "record runs past the end of the file";
        d = KV_RECLOG_SHORT;
    } else if (kv_get_u32(r) != kv_crc32_extend(seed, r + 4, 12 + (size_t)len)) {
        w = "record crc mismatch";
        d = KV_RECLOG_BAD;
    } else if (r[12] == KV_RECLOG_MARK && (len != 8 || kv_get_u64(r + KV_RECLOG_FRAME) > off)) {
        w = "sync mark names a durable length past itself";
        d = KV_RECLOG_BAD;
    } else {
        out->payload = r + KV_RECLOG_FRAME;
    }
done:
    if (why)
        *why = w;
    return d;
}

/* Whether a valid record starts at off, checked cheaply first: the reserved bytes, the type and
 * the length, then the header CRC, then the whole record. */
static bool valid_at(const uint8_t *data, uint64_t size, uint64_t off, uint32_t seed,
                     kv_reclog_rec *rec)
{
    if (size - off < KV_RECLOG_FRAME)
        return false;
    const uint8_t *r = data + off;
    if (r[12] == 0 || r[13] || r[14] || r[15] || kv_get_u32(r + 8) > size - off - KV_RECLOG_FRAME)
        return false;
    return kv_reclog_decode(data, size, off, seed, rec, NULL) == KV_RECLOG_OK;
}

/* The first valid mark in (after, size) naming a durable length above after. */
static bool durable_past(const uint8_t *data, uint64_t size, uint64_t after, uint32_t seed,
                         uint64_t *mark_off, uint64_t *durable)
{
    for (uint64_t off = after + 1; off < size && size - off >= KV_RECLOG_MARK_SIZE; off++) {
        if (data[off + 12] != KV_RECLOG_MARK)
            continue;
        kv_reclog_rec rec;
        if (valid_at(data, size, off, seed, &rec) && kv_get_u64(rec.payload) > after) {
            *mark_off = off;
            *durable = kv_get_u64(rec.payload);
            return true;
        }
    }
    return false;
}

static kv_status scan(const char *path, const uint8_t *data, uint64_t size, uint64_t start,
                      uint32_t seed, bool sealed, kv_reclog_visit_fn visit, void *ctx,
                      kv_reclog_result *res)
{
    *res = (kv_reclog_result){.end = start, .size = size};
    if (start > size)
        return kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": file ends inside its header", path,
                        size);
    uint64_t off = start;
    const char *why = NULL;
    while (off < size) {
        kv_reclog_rec rec;
        if (kv_reclog_decode(data, size, off, seed, &rec, &why) != KV_RECLOG_OK)
            break;
        if (rec.type == KV_RECLOG_MARK) {
            uint64_t d = kv_get_u64(rec.payload);
            if (d > res->durable)
                res->durable = d;
            res->marks++;
        } else {
            res->records++;
        }
        if (visit) {
            kv_status s = visit(ctx, &rec);
            if (s != KV_OK)
                return s;
        }
        off += KV_RECLOG_FRAME + (uint64_t)rec.len;
        res->end = off;
    }
    if (off >= size)
        return KV_OK;
    if (sealed)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": %s in a log that was made durable whole", path,
                        off, why);
    uint64_t mark_off, durable;
    if (durable_past(data, size, off, seed, &mark_off, &durable))
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": %s, but the sync mark at offset %" PRIu64
                        " says the log was durable to offset %" PRIu64,
                        path, off, why, mark_off, durable);
    res->torn = true;
    res->why = why;
    return KV_OK;
}

kv_status kv_reclog_scan(const char *path, const uint8_t *data, uint64_t size, uint64_t start,
                         uint32_t seed, kv_reclog_visit_fn visit, void *ctx, kv_reclog_result *res)
{
    return scan(path, data, size, start, seed, false, visit, ctx, res);
}

kv_status kv_reclog_scan_sealed(const char *path, const uint8_t *data, uint64_t size,
                                uint64_t start, uint32_t seed, kv_reclog_visit_fn visit, void *ctx,
                                kv_reclog_result *res)
{
    return scan(path, data, size, start, seed, true, visit, ctx, res);
}
