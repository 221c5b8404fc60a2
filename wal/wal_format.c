/* wal_format.c: the segment header and record codec of the log (see wal_format.h). */
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

uint32_t wal_salt_crc(uint64_t salt)
{
    uint8_t s[8];
    kv_put_u64(s, salt);
    return kv_crc32(s, 8);
}

uint32_t wal_rec_crc_from(uint32_t salt_crc, const uint8_t *rec, uint32_t len)
{
    return kv_crc32_extend(salt_crc, rec, (size_t)WAL_REC_HEADER_SIZE + len);
}

uint32_t wal_rec_crc(uint64_t salt, const uint8_t *rec, uint32_t len)
{
    return wal_rec_crc_from(wal_salt_crc(salt), rec, len);
}

void wal_rec_header_encode(uint8_t *out, uint32_t len, uint8_t type, uint64_t lsn)
{
    kv_put_u32(out, len);
    out[4] = type;
    kv_put_u64(out + 5, lsn);
}

size_t wal_rec_encode(uint8_t *out, uint64_t salt, uint8_t type, uint64_t lsn, const void *payload,
                      uint32_t len)
{
    wal_rec_header_encode(out, len, type, lsn);
    if (len)
        memcpy(out + WAL_REC_HEADER_SIZE, payload, len);
    kv_put_u32(out + WAL_REC_HEADER_SIZE + len, wal_rec_crc(salt, out, len));
    return (size_t)WAL_REC_OVERHEAD + len;
}

wal_dec wal_rec_decode(const uint8_t *p, size_t avail, uint64_t salt, wal_rec_view *out,
                       const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    memset(out, 0, sizeof *out);
    if (avail < WAL_REC_HEADER_SIZE) {
        *why = "incomplete record header";
        return WAL_DEC_SHORT;
    }
    uint32_t len = kv_get_u32(p);
    out->len = len;
    out->type = p[4];
    out->lsn = kv_get_u64(p + 5);
    if (len > WAL_MAX_PAYLOAD) {
        *why = "impossible record length";
        return WAL_DEC_BAD;
    }
    if (out->type < WAL_REC_PUT || out->type > WAL_REC_CHECKPOINT) {
        *why = "unknown record type";
        return WAL_DEC_BAD;
    }
    out->total = (uint64_t)WAL_REC_OVERHEAD + len;
    if (avail < out->total) {
        *why = "incomplete record";
        return WAL_DEC_SHORT;
    }
    out->payload = p + WAL_REC_HEADER_SIZE;
    out->crc = kv_get_u32(p + WAL_REC_HEADER_SIZE + len);
    if (out->crc != wal_rec_crc(salt, p, len)) {
        *why = "record crc mismatch";
        return WAL_DEC_BAD;
    }
    *why = NULL;
    return WAL_DEC_OK;
}
