/* keyops.c: the bytewise key order (kvlab user keys: memcmp, then length). */
#include "coding.h"
#include "sstable.h"

static int bytewise_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return kv_key_cmp(a, alen, b, blen);
}

const sst_keyops sst_bytewise = {"kvlab.bytewise", bytewise_cmp, NULL, NULL};
