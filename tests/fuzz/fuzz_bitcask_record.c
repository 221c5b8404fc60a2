/* fuzz_bitcask_record: a Bitcask data file NNNNNNNNNN.data (bitcask/bc_format.h: 32-byte header,
 * records of crc, seq, key size, value size, flags, key, value; batch records holding inner
 * records). First the pure decoders: bc_data_hdr_decode, bc_rec_parse at every record start and
 * the whole-file walk bc_walk_data (as the newest file, torn tail allowed, and as an older
 * one); then the engine opens a directory copied while its handle was open with the newest
 * data file replaced by the input (recovery scans it into the keydir) and reads it back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_format.h"
#include "fuzz_seal.h"
#include "fuzz_util.h"

extern const kv_engine kv_engine_bitcask;
static fz_tmpl t;
static char *data_name;

typedef struct walk_ctx {
    const uint8_t *buf;
    size_t len;
} walk_ctx;

static kv_status visit(void *ctx, const bc_rec *r)
{
    walk_ctx *w = ctx;
    if (r->klen && (r->key < w->buf || r->key + r->klen > w->buf + w->len)) {
        fprintf(stderr, "bc_walk_data gave a key outside the file image\n");
        abort();
    }
    if (r->value && r->vlen && (r->value < w->buf || r->value + r->vlen > w->buf + w->len)) {
        fprintf(stderr, "bc_walk_data gave a value outside the file image\n");
        abort();
    }
    volatile uint8_t sink =
        (r->klen ? r->key[r->klen - 1] : 0) ^ (r->value && r->vlen ? r->value[r->vlen - 1] : 0);
    (void)sink;
    return KV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    uint32_t kind;
    uint64_t id;
    (void)bc_data_hdr_decode(buf, size, &kind, &id);
    for (size_t off = size > BC_DATA_HDR ? BC_DATA_HDR : size; off < size;) {
        uint8_t flags;
        uint64_t seq;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        size_t rs = 0;
        if (bc_rec_parse(buf + off, size - off, &flags, &seq, &k, &kl, &v, &vl, &rs) != BC_PARSE_OK)
            break;
        if (rs == 0 || rs > size - off) {
            fprintf(stderr, "bc_rec_parse accepted a record of %zu bytes with %zu left\n", rs,
                    size - off);
            abort();
        }
        off += rs;
    }
    walk_ctx w = {buf, size};
    for (int torn = 0; torn < 2; torn++) {
        uint64_t end = 0;
        kv_status s = bc_walk_data("fuzz.data", buf, size, torn, &end, visit, &w);
        if (s != KV_OK && s != KV_CORRUPTION) {
            fprintf(stderr, "bc_walk_data returned %s\n", kv_strerror(s));
            abort();
        }
        if (s == KV_OK && end > size) {
            fprintf(stderr, "bc_walk_data: valid end %llu past %zu bytes\n",
                    (unsigned long long)end, size);
            abort();
        }
    }
    free(buf);
    fz_tmpl_init(&t, &kv_engine_bitcask);
    if (!data_name && !(data_name = fz_find(t.crashed, "", ".data")))
        fz_die("no .data file in the bitcask template");
    fz_tmpl_run_sealed(&t, t.crashed, data_name, data, size, fz_seal_bitcask_data);
    return 0;
}
