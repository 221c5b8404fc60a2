/* wal_format.c: the segment header and the record codec of the log (see wal_format.h). */
#include "wal_format.h"

#include <stdio.h>
#include <string.h>

#include "coding.h"
#include "crc.h"

const char *wal_rec_type_name(uint8_t type)
{
    switch (type) {
    case WAL_REC_PUT:
        return "PUT";
    case WAL_REC_DELETE:
        return "DELETE";
    case WAL_REC_COMMIT:
        return "COMMIT";
    case WAL_REC_CHECKPOINT:
        return "CHECKPOINT";
    case WAL_REC_NEXT:
        return "NEXT";
    case WAL_REC_MARK:
        return "MARK";
    default:
        return "?";
    }
}

void wal_seg_header_encode(uint8_t *out, uint64_t salt, uint64_t first_lsn, uint64_t supersedes)
{
    memcpy(out, WAL_SEG_MAGIC, 8);
    kv_put_u32(out + 8, WAL_SEG_VERSION);
    kv_put_u32(out + 12, WAL_SEG_HEADER_SIZE);
    kv_put_u64(out + 16, salt);
    kv_put_u64(out + 24, first_lsn);
    kv_put_u64(out + 32, supersedes);
    kv_put_u32(out + 40, kv_crc32(out, 40));
    kv_put_u32(out + 44, 0);
}

const char *wal_seg_header_decode(const uint8_t *p, size_t n, wal_seg_header *h)
{
    memset(h, 0, sizeof *h);
    if (n < WAL_SEG_HEADER_SIZE)
        return "short header";
    if (memcmp(p, WAL_SEG_MAGIC, 8) != 0)
        return "bad magic";
    h->version = kv_get_u32(p + 8);
    h->header_len = kv_get_u32(p + 12);
    h->salt = kv_get_u64(p + 16);
    h->first_lsn = kv_get_u64(p + 24);
    h->supersedes = kv_get_u64(p + 32);
    h->crc = kv_get_u32(p + 40);
    if (h->crc != kv_crc32(p, 40))
        return "bad header crc";
    if (kv_get_u32(p + 44) != 0)
        return "reserved field not zero";
    if (h->version != WAL_SEG_VERSION)
        return "unsupported version";
    if (h->header_len != WAL_SEG_HEADER_SIZE)
        return "bad header length";
    if (h->first_lsn == 0)
        return "first LSN 0";
    if (h->supersedes >= h->first_lsn)
        return "supersedes a newer segment";
    return NULL;
}

void wal_seg_name(char *out, uint64_t first_lsn)
{
    snprintf(out, WAL_SEG_NAME_LEN + 1, "%020llu.wal", (unsigned long long)first_lsn);
}

bool wal_seg_name_parse(const char *name, uint64_t *first_lsn)
{
    if (strlen(name) != WAL_SEG_NAME_LEN || strcmp(name + 20, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *first_lsn = v;
    return true;
}

uint32_t wal_seed(uint64_t salt)
{
    return kv_reclog_seed(salt);
}

size_t wal_rec_encode(uint8_t *out, uint32_t seed, uint8_t type, uint64_t lsn, const void *body,
                      uint32_t len)
{
    kv_put_u64(out + KV_RECLOG_FRAME, lsn);
    if (len)
        memcpy(out + WAL_REC_OVERHEAD, body, len);
    kv_reclog_seal(out, seed, type, WAL_REC_LSN_SIZE + len);
    return (size_t)WAL_REC_OVERHEAD + len;
}

size_t wal_next_encode(uint8_t *out, uint32_t seed, uint64_t successor)
{
    uint8_t p[8];
    kv_put_u64(p, successor);
    return kv_reclog_encode(out, seed, WAL_REC_NEXT, p, sizeof p);
}

const char *wal_rec_view_of(const kv_reclog_rec *r, wal_rec_view *out)
{
    memset(out, 0, sizeof *out);
    out->off = r->off;
    out->type = r->type;
    const uint8_t *frame = r->payload - KV_RECLOG_FRAME;
    out->crc = kv_get_u32(frame);
    out->hcrc = kv_get_u32(frame + 4);
    if (r->type == WAL_REC_MARK) {
        out->durable = kv_get_u64(r->payload); /* reclog checked its length */
        return NULL;
    }
    if (r->type == WAL_REC_NEXT) {
        if (r->len != 8)
            return "NEXT record of the wrong length";
        out->successor = kv_get_u64(r->payload);
        out->body = r->payload + 8;
        return NULL;
    }
    if (r->type < WAL_REC_PUT || r->type > WAL_REC_CHECKPOINT)
        return "unknown record type";
    if (r->len < WAL_REC_LSN_SIZE || r->len - WAL_REC_LSN_SIZE > WAL_MAX_PAYLOAD)
        return "record length cannot hold an LSN and a body";
    out->lsn = kv_get_u64(r->payload);
    out->body = r->payload + WAL_REC_LSN_SIZE;
    out->len = r->len - WAL_REC_LSN_SIZE;
    return NULL;
}
