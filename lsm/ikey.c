/* ikey.c: internal keys (user key ++ sequence number/type trailer), LevelDB's dbformat.cc. */
#include <inttypes.h>

#include "lsm_int.h"

bool lsm_ikey_append(kv_buf *b, const void *ukey, size_t ulen, uint64_t seq, int type)
{
    uint8_t t[8];
    kv_put_u64(t, lsm_trailer(seq, type));
    return kv_buf_append(b, ukey, ulen) && kv_buf_append(b, t, 8);
}

int lsm_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    /* A key shorter than its 8-byte trailer only comes from a damaged or crafted table: order it
     * by its bytes rather than read before its start (the reader's checks then reject it). */
    if (alen < 8 || blen < 8)
        return kv_key_cmp(a, alen, b, blen);
    int c = kv_key_cmp(a, alen - 8, b, blen - 8);
    if (c)
        return c;
    uint64_t ta = kv_get_u64(a + alen - 8), tb = kv_get_u64(b + blen - 8);
    return ta > tb ? -1 : ta < tb ? 1 : 0;
}

static size_t ikey_filter_len(size_t klen)
{
    return klen >= 8 ? klen - 8 : klen;
}

void lsm_ikey_print(FILE *out, const uint8_t *k, size_t klen)
{
    if (klen < 8) {
        kv_dump_bytes(out, k, klen, 64);
        fputs("(short internal key)", out);
        return;
    }
    uint64_t t = kv_get_u64(k + klen - 8);
    kv_dump_bytes(out, k, klen - 8, 64);
    fprintf(out, "@%" PRIu64 ":%s", t >> 8, (t & 0xff) == LSM_TYPE_VALUE ? "value" : "tombstone");
}

const sst_keyops lsm_ikey_ops = {"kvlab.lsm.internal", lsm_ikey_cmp, ikey_filter_len,
                                 lsm_ikey_print};
