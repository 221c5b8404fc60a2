/* format.c: the fixed parts of an SSTable file: header, footer and the properties block. */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "sst_int.h"

void sst_header_encode(uint8_t out[SST_HEADER_SIZE])
{
    memcpy(out, SST_MAGIC, 8);
    kv_put_u32(out + 8, SST_VERSION);
    kv_put_u32(out + 12, kv_crc32(out, 12));
}

kv_status sst_header_decode(const char *path, const uint8_t in[SST_HEADER_SIZE])
{
    if (memcmp(in, SST_MAGIC, 8))
        return kv_error(KV_CORRUPTION, "%s: offset 0: bad magic (not an SSTable)", path);
    if (kv_get_u32(in + 12) != kv_crc32(in, 12))
        return kv_error(KV_CORRUPTION, "%s: offset 12: header crc mismatch", path);
    if (kv_get_u32(in + 8) != SST_VERSION)
        return kv_error(KV_CORRUPTION, "%s: offset 8: unknown format version %u", path,
                        kv_get_u32(in + 8));
    return KV_OK;
}

static void put_handle(uint8_t *p, sst_handle h)
{
    kv_put_u64(p, h.off);
    kv_put_u32(p + 8, (uint32_t)h.size);
}

void sst_footer_encode(uint8_t out[SST_FOOTER_SIZE], sst_handle filter, sst_handle props,
                       sst_handle index, uint64_t unique_id)
{
    put_handle(out, filter);
    put_handle(out + 12, props);
    put_handle(out + 24, index);
    kv_put_u64(out + 36, unique_id);
    kv_put_u32(out + 44, SST_VERSION);
    memcpy(out + 48, SST_FOOTER_MAGIC, 8);
    kv_put_u32(out + 56, kv_crc32(out, 56));
}

kv_status sst_footer_decode(const char *path, uint64_t off, const uint8_t in[SST_FOOTER_SIZE],
                            sst_handle *filter, sst_handle *props, sst_handle *index,
                            uint64_t *unique_id)
{
    if (memcmp(in + 48, SST_FOOTER_MAGIC, 8))
        return kv_error(KV_CORRUPTION, "%s: footer at offset %llu: bad magic", path,
                        (unsigned long long)off);
    if (kv_get_u32(in + 56) != kv_crc32(in, 56))
        return kv_error(KV_CORRUPTION, "%s: footer at offset %llu: crc mismatch", path,
                        (unsigned long long)off);
    if (kv_get_u32(in + 44) != SST_VERSION)
        return kv_error(KV_CORRUPTION, "%s: footer at offset %llu: unknown version %u", path,
                        (unsigned long long)off, kv_get_u32(in + 44));
    *unique_id = kv_get_u64(in + 36);
    sst_handle *hs[3] = {filter, props, index};
    for (int i = 0; i < 3; i++) {
        hs[i]->off = kv_get_u64(in + 12 * i);
        hs[i]->size = kv_get_u32(in + 12 * i + 8);
        if ((hs[i]->size || i > 0) &&
            (hs[i]->off < SST_HEADER_SIZE || hs[i]->off + hs[i]->size + SST_TRAILER_SIZE > off))
            return kv_error(KV_CORRUPTION,
                            "%s: footer at offset %llu: block handle %d "
                            "(offset %llu, %llu bytes) outside the file",
                            path, (unsigned long long)off, i, (unsigned long long)hs[i]->off,
                            (unsigned long long)hs[i]->size);
    }
    return KV_OK;
}

/* Properties, in name order (the block is read whole, the order is for the reader's eye). */
static bool add_u64(sst_block_builder *b, const char *name, uint64_t v)
{
    uint8_t buf[KV_VARINT64_MAX];
    size_t n = kv_put_varint64(buf, v);
    return sst_bb_add(b, (const uint8_t *)name, strlen(name), buf, n);
}

static bool add_bytes(sst_block_builder *b, const char *name, const void *p, size_t n)
{
    return sst_bb_add(b, (const uint8_t *)name, strlen(name), p, n);
}

bool sst_props_encode(const sst_props *p, const char *keyops_name, kv_buf *out, unsigned interval)
{
    sst_block_builder b;
    sst_bb_init(&b, interval);
    bool ok = add_u64(&b, "block_size", p->block_size) &&
              add_u64(&b, "bloom_bits_per_key", p->bloom_bits_per_key) &&
              add_bytes(&b, "comparator", keyops_name, strlen(keyops_name)) &&
              add_u64(&b, "data_blocks", p->data_blocks) &&
              add_u64(&b, "data_size", p->data_size) && add_u64(&b, "entries", p->entries) &&
              add_u64(&b, "filter_size", p->filter_size) &&
              add_u64(&b, "index_size", p->index_size) &&
              add_bytes(&b, "largest_key", p->largest, p->largest_len) &&
              add_u64(&b, "raw_key_bytes", p->raw_key_bytes) &&
              add_u64(&b, "raw_value_bytes", p->raw_value_bytes) &&
              add_bytes(&b, "smallest_key", p->smallest, p->smallest_len) && sst_bb_finish(&b) &&
              kv_buf_append(out, b.buf.data, b.buf.len);
    sst_bb_free(&b);
    return ok;
}

static bool get_u64(const uint8_t *v, size_t n, uint64_t *out)
{
    const uint8_t *p = v;
    return kv_get_varint64(&p, v + n, out) && p == v + n;
}

static bool dup_bytes(const uint8_t *v, size_t n, uint8_t **out, size_t *len)
{
    free(*out);
    *out = malloc(n ? n : 1);
    if (!*out)
        return false;
    memcpy(*out, v, n);
    *len = n;
    return true;
}

kv_status sst_props_decode(const sst_block *b, sst_props *p, char **name)
{
    static const sst_keyops raw = {"props", NULL, NULL, NULL};
    sst_block_iter it;
    sst_bi_init(&it, b, &raw, "", 0);
    memset(p, 0, sizeof *p);
    *name = NULL;
    bool ok = true, nomem = false;
    for (sst_bi_seek_first(&it); ok && sst_bi_valid(&it); sst_bi_next(&it)) {
        char k[32];
        if (it.key.len >= sizeof k)
            continue;
        memcpy(k, it.key.data, it.key.len);
        k[it.key.len] = '\0';
        uint64_t v = 0;
        const uint8_t *val = it.val;
        size_t vl = it.vlen;
        if (!strcmp(k, "comparator")) {
            free(*name);
            *name = strndup((const char *)val, vl);
            ok = *name != NULL;
            nomem = !ok;
        } else if (!strcmp(k, "largest_key")) {
            ok = dup_bytes(val, vl, &p->largest, &p->largest_len);
            nomem = !ok;
        } else if (!strcmp(k, "smallest_key")) {
            ok = dup_bytes(val, vl, &p->smallest, &p->smallest_len);
            nomem = !ok;
        } else if (!get_u64(val, vl, &v))
            ok = false;
        else if (!strcmp(k, "block_size"))
            p->block_size = (uint32_t)v;
        else if (!strcmp(k, "bloom_bits_per_key"))
            p->bloom_bits_per_key = (uint32_t)v;
        else if (!strcmp(k, "data_blocks"))
            p->data_blocks = v;
        else if (!strcmp(k, "data_size"))
            p->data_size = v;
        else if (!strcmp(k, "entries"))
            p->entries = v;
        else if (!strcmp(k, "filter_size"))
            p->filter_size = v;
        else if (!strcmp(k, "index_size"))
            p->index_size = v;
        else if (!strcmp(k, "raw_key_bytes"))
            p->raw_key_bytes = v;
        else if (!strcmp(k, "raw_value_bytes"))
            p->raw_value_bytes = v;
    }
    kv_status st = it.status;
    if (st != KV_OK || !*name || !p->smallest || !p->largest)
        ok = false;
    sst_bi_free(&it);
    if (!ok) {
        sst_props_free(p);
        free(*name);
        *name = NULL;
    }
    if (ok)
        return KV_OK;
    return nomem || st == KV_NOMEM ? KV_NOMEM : KV_CORRUPTION;
}
