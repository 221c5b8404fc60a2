/* fuzz_sstable_block: the SSTable block decoders of sstable/ as pure functions, past the CRC:
 * the block parser (sst_block_make: trailer, restart array), the block iterator with prefix
 * compression (sst_bi_seek_first/next/seek over sst_decode_entry), index entries as block
 * handles (sst_handle_decode), the properties block (sst_props_decode), the Bloom filter probe
 * (sst_bloom_may_match) and the footer (sst_footer_decode).
 *
 * Input: [mode][block contents...]. mode & 3 picks 0 data block, 1 index block, 2 properties,
 * 3 filter + footer. When mode & 0x80 the input already ends with its 5-byte trailer (type +
 * CRC, as read from disk); otherwise the target appends a valid trailer so that the fuzzer
 * spends its time on the structure behind the CRC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "sst_int.h"

static void walk(sst_block *b, int mode)
{
    sst_block_iter it;
    sst_bi_init(&it, b, &sst_bytewise, "fuzz", 0);
    size_t n = 0;
    for (sst_bi_seek_first(&it); sst_bi_valid(&it) && n < 100000; sst_bi_next(&it), n++) {
        volatile uint8_t sink =
            (it.key.len ? it.key.data[it.key.len - 1] : 0) ^ (it.vlen ? it.val[it.vlen - 1] : 0);
        (void)sink;
        if (it.val < b->data || it.val + it.vlen > b->data + b->restarts_off) {
            fprintf(stderr, "block iterator served a value outside the entries\n");
            abort();
        }
        if (mode == 1) {
            sst_handle h;
            (void)sst_handle_decode(it.val, it.vlen, &h);
        }
    }
    sst_bi_seek(&it, (const uint8_t *)"k5", 2);
    if (sst_bi_valid(&it))
        sst_bi_next(&it);
    sst_bi_seek(&it, (const uint8_t *)"\xff\xff", 2);
    sst_bi_free(&it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    size_t contents;
    uint8_t *raw;
    if (mode & 0x80) {
        if (n < SST_TRAILER_SIZE)
            return 0;
        contents = n - SST_TRAILER_SIZE;
        raw = malloc(n);
        if (!raw)
            return 0;
        memcpy(raw, in, n);
    } else {
        contents = n;
        raw = malloc(n + SST_TRAILER_SIZE);
        if (!raw)
            return 0;
        memcpy(raw, in, n);
        raw[n] = SST_BLOCK_RAW;
        kv_put_u32(raw + n + 1, kv_crc32(raw, n + 1));
    }
    switch (mode & 3) {
    case 0:
    case 1:
    case 2: {
        sst_block *b = NULL;
        if (sst_block_make("fuzz", 0, raw, contents, &b) != KV_OK) {
            free(raw);
            break;
        }
        if ((mode & 3) == 2) {
            sst_props p;
            char *name = NULL;
            if (sst_props_decode(b, &p, &name) == KV_OK) {
                volatile uint8_t sink = p.smallest_len ? p.smallest[p.smallest_len - 1] : 0;
                (void)sink;
                sst_props_free(&p);
                free(name);
            }
        } else {
            walk(b, mode & 3);
        }
        sst_block_unref(b); /* frees raw */
        break;
    }
    case 3: {
        if (sst_check_trailer("fuzz", 0, raw, contents) == KV_OK) {
            for (uint32_t h = 0; h < 64; h++)
                (void)sst_bloom_may_match(raw, contents, sst_bloom_hash((const uint8_t *)&h, 4));
        }
        if (n >= SST_FOOTER_SIZE) {
            sst_handle f, p, i;
            uint64_t id;
            (void)sst_footer_decode("fuzz", n, in + n - SST_FOOTER_SIZE, &f, &p, &i, &id);
        }
        if (n >= SST_HEADER_SIZE)
            (void)sst_header_decode("fuzz", in);
        free(raw);
        break;
    }
    }
    return 0;
}
