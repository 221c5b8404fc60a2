/* fuzz_seal.c: see fuzz_seal.h. The layouts are the ones documented in wal/wal_format.h,
 * lsm/lsm_int.h, btree/btree_int.h, sstable/sst_int.h and bitcask/bc_format.h. */
#include "fuzz_seal.h"

#include <stdlib.h>
#include <string.h>

#include "bc_format.h"
#include "btree_int.h"
#include "coding.h"
#include "crc.h"
#include "lsm_int.h"
#include "reclog.h"
#include "sst_int.h"
#include "wal_format.h"

static bool put_crc(uint8_t *at, uint32_t crc)
{
    if (kv_get_u32(at) == crc)
        return false;
    kv_put_u32(at, crc);
    return true;
}

bool fz_seal_wal_segment(uint8_t *buf, size_t n)
{
    if (n < WAL_SEG_HEADER_SIZE)
        return false;
    bool ch = put_crc(buf + 40, kv_crc32(buf, 40));
    uint32_t seed = wal_seed(kv_get_u64(buf + 16));
    /* reclog framing: hcrc over bytes 8..15, then crc over bytes 4 .. 16+len-1 (hcrc included). */
    size_t off = WAL_SEG_HEADER_SIZE;
    while (n - off >= KV_RECLOG_FRAME) {
        uint32_t len = kv_get_u32(buf + off + 8);
        if (len > n - off - KV_RECLOG_FRAME)
            break;
        ch |= put_crc(buf + off + 4, kv_crc32_extend(seed, buf + off + 8, 8));
        ch |= put_crc(buf + off, kv_crc32_extend(seed, buf + off + 4, 12 + (size_t)len));
        off += KV_RECLOG_FRAME + (size_t)len;
    }
    return ch;
}

bool fz_seal_lsm_log(uint8_t *buf, size_t n)
{
    if (n < LSM_LOG_HEADER)
        return false;
    bool ch = put_crc(buf + 52, kv_crc32(buf, 52));
    uint32_t seed = kv_reclog_seed(lsm_log_salt(kv_get_u64(buf + 24), kv_get_u64(buf + 16)));
    size_t off = LSM_LOG_HEADER;
    while (n - off >= KV_RECLOG_FRAME) {
        uint32_t len = kv_get_u32(buf + off + 8);
        if (len > n - off - KV_RECLOG_FRAME)
            break;
        uint8_t before[KV_RECLOG_FRAME];
        memcpy(before, buf + off, sizeof before);
        kv_reclog_seal(buf + off, seed, buf[off + 12], len);
        ch |= memcmp(before, buf + off, sizeof before) != 0;
        off += KV_RECLOG_FRAME + (size_t)len;
    }
    return ch;
}

bool fz_seal_btree_file(uint8_t *buf, size_t n, uint32_t ps)
{
    bool ch = false;
    uint8_t *page = malloc(ps);
    if (!page)
        return false;
    for (size_t off = 0; ps && n - off >= ps; off += ps) {
        memcpy(page, buf + off, ps);
        bt_pg_seal(page, ps, (uint32_t)(off / ps));
        if (memcmp(page, buf + off, ps)) {
            memcpy(buf + off, page, ps);
            ch = true;
        }
    }
    free(page);
    return ch;
}

bool fz_seal_btree_log(uint8_t *buf, size_t n)
{
    if (n < BT_LOG_HDR)
        return false;
    bool ch = false;
    const uint8_t *cur = NULL;
    for (size_t off = 0; off <= BT_LOG_SLOT1; off += BT_LOG_SLOT1) {
        uint8_t *h = buf + off;
        ch |= put_crc(h + 60, kv_crc32(h, 60));
        if (!memcmp(h, BT_LOG_MAGIC, 8) && (!cur || kv_get_u64(h + 16) > kv_get_u64(cur + 16)))
            cur = h;
    }
    if (!cur)
        return ch;
    uint32_t seed = bt_log_seed(kv_get_u64(cur + 24), kv_get_u64(cur + 16));
    size_t off = BT_LOG_HDR;
    while (n - off >= KV_RECLOG_FRAME) {
        uint8_t *r = buf + off, old[KV_RECLOG_FRAME];
        uint32_t len = kv_get_u32(r + 8);
        if (len > n - off - KV_RECLOG_FRAME)
            break;
        memcpy(old, r, sizeof old);
        kv_reclog_seal(r, seed, r[12], len);
        ch |= memcmp(old, r, sizeof old) != 0;
        off += KV_RECLOG_FRAME + (size_t)len;
    }
    return ch;
}

/* Seals the trailer of block h when it lies inside the file. */
static bool seal_block(uint8_t *buf, size_t n, sst_handle h)
{
    if (h.off > n || h.size > n - h.off || n - h.off - h.size < SST_TRAILER_SIZE)
        return false;
    uint8_t *b = buf + h.off;
    bool ch = b[h.size] != SST_BLOCK_RAW;
    b[h.size] = SST_BLOCK_RAW;
    ch |= put_crc(b + h.size + 1, kv_crc32(b, h.size + 1));
    return ch;
}

bool fz_seal_sstable(uint8_t *buf, size_t n)
{
    if (n < SST_FOOTER_SIZE)
        return false;
    uint8_t *foot = buf + n - SST_FOOTER_SIZE;
    bool ch = put_crc(foot + 56, kv_crc32(foot, 56));
    sst_handle hs[3];
    for (int i = 0; i < 3; i++) {
        hs[i].off = kv_get_u64(foot + 12 * i);
        hs[i].size = kv_get_u32(foot + 12 * i + 8);
        ch |= seal_block(buf, n, hs[i]);
    }
    /* Data blocks named by the index. */
    sst_handle ih = hs[2];
    if (ih.off > n || ih.size > n - ih.off || n - ih.off - ih.size < SST_TRAILER_SIZE)
        return ch;
    uint8_t *raw = malloc(ih.size + SST_TRAILER_SIZE);
    if (!raw)
        return ch;
    memcpy(raw, buf + ih.off, ih.size + SST_TRAILER_SIZE);
    sst_block *b = NULL;
    if (sst_block_make("seal", ih.off, raw, ih.size, &b) != KV_OK) {
        free(raw);
        return ch;
    }
    sst_block_iter it;
    sst_bi_init(&it, b, &sst_bytewise, "seal", ih.off);
    size_t k = 0;
    for (sst_bi_seek_first(&it); sst_bi_valid(&it) && k < 4096; sst_bi_next(&it), k++) {
        sst_handle h;
        if (sst_handle_decode(it.val, it.vlen, &h))
            ch |= seal_block(buf, n, h);
    }
    sst_bi_free(&it);
    sst_block_unref(b);
    return ch;
}

/* Seals the reclog records in [off, end) with seed, and the inner records of a batch first. */
static bool seal_bc_records(uint8_t *buf, size_t off, size_t end, uint32_t seed, int depth)
{
    bool ch = false;
    while (end - off >= KV_RECLOG_FRAME) {
        uint8_t *p = buf + off;
        uint64_t len = kv_get_u32(p + 8);
        if (len > end - off - KV_RECLOG_FRAME)
            break;
        if (p[12] == BC_T_BATCH && depth == 0 && len >= BC_PAYLOAD_HDR)
            ch |= seal_bc_records(buf, off + BC_REC_OVERHEAD, off + KV_RECLOG_FRAME + len, seed, 1);
        uint8_t before[KV_RECLOG_FRAME];
        memcpy(before, p, sizeof before);
        kv_reclog_seal(p, seed, p[12], (uint32_t)len);
        ch |= memcmp(before, p, sizeof before) != 0;
        off += KV_RECLOG_FRAME + (size_t)len;
    }
    return ch;
}

bool fz_seal_bitcask_data(uint8_t *buf, size_t n)
{
    if (n < BC_DATA_HDR)
        return false;
    bool ch = put_crc(buf + 36, kv_crc32(buf, 36));
    return seal_bc_records(buf, BC_DATA_HDR, n, kv_reclog_seed(kv_get_u64(buf + 24)), 0) || ch;
}

bool fz_seal_bitcask_hint(uint8_t *buf, size_t n)
{
    if (n < BC_HINT_HDR)
        return false;
    bool ch = false;
    size_t off = BC_HINT_HDR;
    while (n - off >= BC_HINT_ENT_HDR) {
        uint32_t kl = kv_get_u32(buf + off + 24);
        if (kl > n - off - BC_HINT_ENT_HDR)
            break;
        ch |= put_crc(buf + off, kv_crc32(buf + off + 4, BC_HINT_ENT_HDR - 4 + (size_t)kl));
        off += BC_HINT_ENT_HDR + (size_t)kl;
    }
    ch |= put_crc(buf + BC_HINT_ENTS_CRC, kv_crc32(buf + BC_HINT_HDR, n - BC_HINT_HDR));
    ch |= put_crc(buf + BC_HINT_HDR_CRC, kv_crc32(buf, BC_HINT_HDR_CRC));
    return ch;
}
