/* bc_format.c: encoding, decoding and verified walks of bitcask's data files, hint files and
 * merge manifest (formats in bc_format.h). */
#include "bc_format.h"

#include <stdlib.h>
#include <string.h>

#include "crc.h"

#define SECTOR 512u

void bc_data_hdr_encode(uint8_t out[BC_DATA_HDR], uint32_t kind, uint64_t id)
{
    memset(out, 0, BC_DATA_HDR);
    memcpy(out, BC_DATA_MAGIC, 8);
    kv_put_u32(out + 8, BC_VERSION);
    kv_put_u32(out + 12, kind);
    kv_put_u64(out + 16, id);
    kv_put_u32(out + 24, kv_crc32(out, 24));
}

bool bc_data_hdr_decode(const uint8_t *p, size_t n, uint32_t *kind, uint64_t *id)
{
    if (n < BC_DATA_HDR || memcmp(p, BC_DATA_MAGIC, 8) != 0)
        return false;
    if (kv_get_u32(p + 24) != kv_crc32(p, 24) || kv_get_u32(p + 8) != BC_VERSION)
        return false;
    uint32_t k = kv_get_u32(p + 12);
    if (k != BC_KIND_WRITE && k != BC_KIND_MERGE)
        return false;
    *kind = k;
    *id = kv_get_u64(p + 16);
    return true;
}

void bc_rec_finish(uint8_t *out, uint64_t seq, uint8_t flags, uint32_t klen, uint32_t vlen)
{
    kv_put_u64(out + 4, seq);
    kv_put_u32(out + 12, klen);
    kv_put_u32(out + 16, vlen);
    out[20] = flags;
    kv_put_u32(out, kv_crc32(out + 4, (size_t)BC_REC_HDR - 4 + klen + vlen));
}

size_t bc_rec_encode(uint8_t *out, uint64_t seq, uint8_t flags, const void *key, size_t klen,
                     const void *value, size_t vlen)
{
    memcpy(out + BC_REC_HDR, key, klen);
    if (vlen)
        memcpy(out + BC_REC_HDR + klen, value, vlen);
    bc_rec_finish(out, seq, flags, (uint32_t)klen, (uint32_t)vlen);
    return BC_REC_HDR + klen + vlen;
}

bc_parse bc_rec_parse(const uint8_t *p, size_t avail, uint8_t *flags, uint64_t *seq,
                      const uint8_t **key, uint32_t *klen, const uint8_t **value, uint32_t *vlen,
                      size_t *size)
{
    if (avail < BC_REC_HDR)
        return BC_PARSE_SHORT;
    uint32_t kl = kv_get_u32(p + 12), vl = kv_get_u32(p + 16);
    uint8_t fl = p[20];
    if (fl != 0 && fl != BC_FLAG_TOMBSTONE && fl != BC_FLAG_BATCH && fl != BC_FLAG_INNER &&
        fl != (BC_FLAG_INNER | BC_FLAG_TOMBSTONE))
        return BC_PARSE_BAD;
    if (kl > 65535 || ((fl & BC_FLAG_BATCH) ? kl != 0 : kl == 0))
        return BC_PARSE_BAD;
    if ((fl & BC_FLAG_TOMBSTONE) && vl != 0)
        return BC_PARSE_BAD;
    uint64_t total = (uint64_t)BC_REC_HDR + kl + vl;
    if (total > avail)
        return BC_PARSE_SHORT;
    if (kv_get_u32(p) != kv_crc32(p + 4, (size_t)total - 4))
        return BC_PARSE_BAD;
    *flags = fl;
    *seq = kv_get_u64(p + 4);
    *key = p + BC_REC_HDR;
    *klen = kl;
    *value = p + BC_REC_HDR + kl;
    *vlen = vl;
    *size = (size_t)total;
    return BC_PARSE_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Whether the bad record at x contains damage a power loss makes: faultfs and real disks lose
 * whole 512-byte sectors, and a lost sector past the durable size reads back as zeros. So the
 * record's bytes from x to the next sector boundary, or one whole sector inside it, are zero. */
static bool looks_torn(const uint8_t *buf, size_t len, size_t x)
{
    size_t end = x + BC_REC_HDR;
    if (len - x >= BC_REC_HDR) {
        uint64_t total = (uint64_t)BC_REC_HDR + kv_get_u32(buf + x + 12) + kv_get_u32(buf + x + 16);
        if (x + total <= len && x + total > end)
            end = (size_t)(x + total);
    }
    if (end > len)
        end = len;
    size_t b = (x / SECTOR + 1) * SECTOR;
    if (all_zero(buf + x, (b < len ? b : len) - x))
        return true;
    for (size_t s = b; s < end; s += SECTOR) {
        size_t e = s + SECTOR < len ? s + SECTOR : len;
        if (all_zero(buf + s, e - s))
            return true;
    }
    return false;
}

/* Whether any valid record starts after x. */
static bool valid_after(const uint8_t *buf, size_t len, size_t x)
{
    for (size_t y = x + 1; y + BC_REC_HDR <= len; y++) {
        uint8_t fl;
        uint64_t seq;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        size_t sz;
        if (bc_rec_parse(buf + y, len - y, &fl, &seq, &k, &kl, &v, &vl, &sz) == BC_PARSE_OK &&
            !(fl & BC_FLAG_INNER))
            return true;
    }
    return false;
}

/* Walks the inner records of a batch whose payload is [p, p+n) at file offset base. */
static kv_status walk_batch(const char *name, const uint8_t *p, size_t n, uint64_t base,
                            uint64_t seq, bc_rec_fn fn, void *ctx)
{
    size_t off = 0;
    if (n == 0)
        return kv_error(KV_CORRUPTION, "%s: empty batch at offset %llu", name,
                        (unsigned long long)base);
    while (off < n) {
        uint8_t fl;
        uint64_t s;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        size_t sz;
        if (bc_rec_parse(p + off, n - off, &fl, &s, &k, &kl, &v, &vl, &sz) != BC_PARSE_OK ||
            !(fl & BC_FLAG_INNER) || s != seq)
            return kv_error(KV_CORRUPTION, "%s: bad operation inside batch at offset %llu", name,
                            (unsigned long long)(base + off));
        bc_rec r = {.seq = s,
                    .offset = base + off,
                    .rec_size = (uint32_t)sz,
                    .tomb = (fl & BC_FLAG_TOMBSTONE) != 0,
                    .key = k,
                    .klen = kl,
                    .value = v,
                    .vlen = vl};
        kv_status st = fn ? fn(ctx, &r) : KV_OK;
        if (st != KV_OK)
            return st;
        off += sz;
    }
    return KV_OK;
}

kv_status bc_walk_data(const char *name, const uint8_t *buf, size_t len, bool allow_torn,
                       uint64_t *valid_end, bc_rec_fn fn, void *ctx)
{
    size_t off = BC_DATA_HDR;
    *valid_end = len;
    while (off < len) {
        uint8_t fl;
        uint64_t seq;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        size_t sz;
        bc_parse ps = bc_rec_parse(buf + off, len - off, &fl, &seq, &k, &kl, &v, &vl, &sz);
        if (ps == BC_PARSE_OK && (fl & BC_FLAG_INNER))
            ps = BC_PARSE_BAD; /* a batch's operation outside a batch */
        if (ps != BC_PARSE_OK) {
            bool later = valid_after(buf, len, off);
            if (allow_torn && (!later || looks_torn(buf, len, off))) {
                *valid_end = off;
                return KV_OK;
            }
            return kv_error(KV_CORRUPTION, "%s: %s record at offset %llu%s", name,
                            ps == BC_PARSE_SHORT ? "truncated" : "bad (checksum or fields)",
                            (unsigned long long)off,
                            later ? ", followed by valid records" : " at the end of the file");
        }
        kv_status st;
        if (fl & BC_FLAG_BATCH) {
            st = walk_batch(name, v, vl, off + BC_REC_HDR, seq, fn, ctx);
        } else {
            bc_rec r = {.seq = seq,
                        .offset = off,
                        .rec_size = (uint32_t)sz,
                        .tomb = (fl & BC_FLAG_TOMBSTONE) != 0,
                        .key = k,
                        .klen = kl,
                        .value = v,
                        .vlen = vl};
            st = fn ? fn(ctx, &r) : KV_OK;
        }
        if (st != KV_OK)
            return st;
        off += sz;
    }
    return KV_OK;
}

bool bc_hint_add(kv_buf *b, uint64_t seq, uint64_t offset, uint32_t rec_size, bool tomb,
                 const void *key, size_t klen)
{
    if (!kv_buf_reserve(b, BC_HINT_ENT_HDR + klen))
        return false;
    uint8_t *p = b->data + b->len;
    kv_put_u64(p + 4, seq);
    kv_put_u64(p + 12, offset);
    kv_put_u32(p + 20, rec_size);
    kv_put_u32(p + 24, (uint32_t)klen);
    p[28] = tomb ? BC_FLAG_TOMBSTONE : 0;
    memcpy(p + BC_HINT_ENT_HDR, key, klen);
    kv_put_u32(p, 0);
    b->len += BC_HINT_ENT_HDR + klen;
    return true;
}

void bc_hint_seal(uint8_t *ents, size_t len)
{
    size_t off = 0;
    while (off + BC_HINT_ENT_HDR <= len) {
        uint8_t *p = ents + off;
        size_t klen = kv_get_u32(p + 24);
        if (klen > len - off - BC_HINT_ENT_HDR)
            break; /* cannot happen for entries made by bc_hint_add */
        kv_put_u32(p, kv_crc32(p + 4, BC_HINT_ENT_HDR - 4 + klen));
        off += BC_HINT_ENT_HDR + klen;
    }
}

void bc_hint_hdr_encode(uint8_t out[BC_HINT_HDR], uint64_t id, uint64_t data_size, uint64_t count,
                        const uint8_t *ents, size_t ents_len)
{
    memset(out, 0, BC_HINT_HDR);
    memcpy(out, BC_HINT_MAGIC, 8);
    kv_put_u32(out + 8, BC_VERSION);
    kv_put_u64(out + 16, id);
    kv_put_u64(out + 24, data_size);
    kv_put_u64(out + 32, count);
    kv_put_u32(out + 40, kv_crc32(ents, ents_len));
    kv_put_u32(out + 44, kv_crc32(out, 44));
}

uint64_t bc_hint_count(const uint8_t *buf, size_t len)
{
    if (len < BC_HINT_HDR || memcmp(buf, BC_HINT_MAGIC, 8) != 0)
        return 0;
    return kv_get_u64(buf + 32);
}

kv_status bc_walk_hint(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                       uint64_t expect_size, bool strict, bc_rec_fn fn, void *ctx)
{
    uint32_t crc = len >= BC_HINT_HDR ? kv_crc32(buf + BC_HINT_HDR, len - BC_HINT_HDR) : 0;
    return bc_walk_hint_crc(name, buf, len, expect_id, expect_size, strict, crc, fn, ctx);
}

kv_status bc_walk_hint_crc(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                           uint64_t expect_size, bool strict, uint32_t entries_crc, bc_rec_fn fn,
                           void *ctx)
{
    if (len < BC_HINT_HDR || memcmp(buf, BC_HINT_MAGIC, 8) != 0)
        return kv_error(KV_CORRUPTION, "%s: bad hint header at offset 0", name);
    if (kv_get_u32(buf + 44) != kv_crc32(buf, 44) || kv_get_u32(buf + 8) != BC_VERSION)
        return kv_error(KV_CORRUPTION, "%s: hint header checksum or version bad at offset 0", name);
    if (kv_get_u64(buf + 16) != expect_id || kv_get_u64(buf + 24) != expect_size)
        return kv_error(KV_CORRUPTION,
                        "%s: hint describes file %llu of %llu bytes, data file is %llu of %llu",
                        name, (unsigned long long)kv_get_u64(buf + 16),
                        (unsigned long long)kv_get_u64(buf + 24), (unsigned long long)expect_id,
                        (unsigned long long)expect_size);
    if (kv_get_u32(buf + 40) != entries_crc)
        return kv_error(KV_CORRUPTION, "%s: hint entries checksum bad (offset %u)", name,
                        BC_HINT_HDR);
    uint64_t count = kv_get_u64(buf + 32), seen = 0;
    size_t off = BC_HINT_HDR;
    while (off < len) {
        if (len - off < BC_HINT_ENT_HDR)
            return kv_error(KV_CORRUPTION, "%s: truncated hint entry at offset %zu", name, off);
        const uint8_t *p = buf + off;
        uint32_t kl = kv_get_u32(p + 24);
        uint8_t fl = p[28];
        if (kl == 0 || kl > 65535 || kl > len - off - BC_HINT_ENT_HDR || fl > 1)
            return kv_error(KV_CORRUPTION, "%s: bad hint entry at offset %zu", name, off);
        if (strict && kv_get_u32(p) != kv_crc32(p + 4, BC_HINT_ENT_HDR - 4 + kl))
            return kv_error(KV_CORRUPTION, "%s: hint entry checksum bad at offset %zu", name, off);
        bc_rec r = {.seq = kv_get_u64(p + 4),
                    .offset = kv_get_u64(p + 12),
                    .rec_size = kv_get_u32(p + 20),
                    .tomb = fl != 0,
                    .key = p + BC_HINT_ENT_HDR,
                    .klen = kl};
        if (r.offset < BC_DATA_HDR || r.rec_size < BC_REC_HDR + kl ||
            r.offset + r.rec_size > expect_size)
            return kv_error(KV_CORRUPTION, "%s: hint entry at offset %zu points outside the data",
                            name, off);
        if (fn) {
            kv_status st = fn(ctx, &r);
            if (st != KV_OK)
                return st;
        }
        seen++;
        off += BC_HINT_ENT_HDR + kl;
    }
    if (seen != count)
        return kv_error(KV_CORRUPTION, "%s: hint has %llu entries, header says %llu", name,
                        (unsigned long long)seen, (unsigned long long)count);
    return KV_OK;
}

bool bc_manifest_encode(const bc_manifest *m, uint8_t **out, size_t *len)
{
    size_t n = BC_MANIFEST_FIXED + 8 * ((size_t)m->n_replaced + m->n_produced) + 4;
    uint8_t *p = calloc(1, n);
    if (!p)
        return false;
    memcpy(p, BC_MANIFEST_MAGIC, 8);
    kv_put_u32(p + 8, BC_VERSION);
    kv_put_u32(p + 12, m->n_replaced);
    kv_put_u32(p + 16, m->n_produced);
    kv_put_u64(p + 24, m->merge_no);
    kv_put_u64(p + 32, m->next_id);
    kv_put_u64(p + 40, m->max_seq);
    size_t off = BC_MANIFEST_FIXED;
    for (uint32_t i = 0; i < m->n_replaced; i++, off += 8)
        kv_put_u64(p + off, m->replaced[i]);
    for (uint32_t i = 0; i < m->n_produced; i++, off += 8)
        kv_put_u64(p + off, m->produced[i]);
    kv_put_u32(p + off, kv_crc32(p, off));
    *out = p;
    *len = n;
    return true;
}

kv_status bc_manifest_decode(const char *name, const uint8_t *p, size_t len, bc_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (len < BC_MANIFEST_FIXED + 4 || memcmp(p, BC_MANIFEST_MAGIC, 8) != 0 ||
        kv_get_u32(p + 8) != BC_VERSION)
        return kv_error(KV_CORRUPTION, "%s: bad merge manifest header at offset 0", name);
    uint32_t nr = kv_get_u32(p + 12), np = kv_get_u32(p + 16);
    if ((uint64_t)BC_MANIFEST_FIXED + 8 * ((uint64_t)nr + np) + 4 != len)
        return kv_error(KV_CORRUPTION, "%s: merge manifest length %zu does not match its counts",
                        name, len);
    if (kv_get_u32(p + len - 4) != kv_crc32(p, len - 4))
        return kv_error(KV_CORRUPTION, "%s: merge manifest checksum bad at offset %zu", name,
                        len - 4);
    m->merge_no = kv_get_u64(p + 24);
    m->next_id = kv_get_u64(p + 32);
    m->max_seq = kv_get_u64(p + 40);
    m->replaced = calloc(nr + 1, 8);
    m->produced = calloc(np + 1, 8);
    if (!m->replaced || !m->produced) {
        bc_manifest_free(m);
        return kv_error(KV_IO, "%s: out of memory", name);
    }
    m->n_replaced = nr;
    m->n_produced = np;
    size_t off = BC_MANIFEST_FIXED;
    for (uint32_t i = 0; i < nr; i++, off += 8)
        m->replaced[i] = kv_get_u64(p + off);
    for (uint32_t i = 0; i < np; i++, off += 8)
        m->produced[i] = kv_get_u64(p + off);
    return KV_OK;
}

void bc_manifest_free(bc_manifest *m)
{
    free(m->replaced);
    free(m->produced);
    m->replaced = m->produced = NULL;
    m->n_replaced = m->n_produced = 0;
}
