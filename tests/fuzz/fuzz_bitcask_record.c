/* fuzz_bitcask_record: a Bitcask data file NNNNNNNNNN.data (bitcask/bc_format.h: 40-byte header
 * with a salt, then records framed by common/reclog whose payloads are seq, key size, value
 * size, key, value; batch records holding framed inner records; sync marks). First the pure
 * decoders: bc_data_hdr_decode, bc_rec_check at every record start and the whole-file walk
 * bc_walk_data (as the active file, torn tail allowed, and as a sealed one), all on reclog's one
 * scanner; then the engine opens a directory copied while its handle was open with the active
 * data file (the newest) replaced by the input (recovery scans it into the keydir) and reads it
 * back. */
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
    uint64_t id, salt = 0;
    (void)bc_data_hdr_decode(buf, size, &kind, &id, &salt);
    uint32_t seed = kv_reclog_seed(size >= BC_DATA_HDR ? kv_get_u64(buf + 24) : salt);
    for (size_t off = size > BC_DATA_HDR ? BC_DATA_HDR : size; off < size;) {
        kv_reclog_rec r;
        if (kv_reclog_decode(buf, size, off, seed, &r, NULL) != KV_RECLOG_OK)
            break;
        size_t rs = KV_RECLOG_FRAME + (size_t)r.len;
        if (rs > size - off) {
            fprintf(stderr, "kv_reclog_decode accepted a record of %zu bytes with %zu left\n", rs,
                    size - off);
            abort();
        }
        bc_rec_view v;
        if (bc_rec_check(buf + off, rs, seed, &v) &&
            (v.key + v.klen > buf + size || v.value + v.vlen > buf + size)) {
            fprintf(stderr, "bc_rec_check gave a key or value outside the record\n");
            abort();
        }
        off += rs;
    }
    walk_ctx w = {buf, size};
    for (int sealed = 0; sealed < 2; sealed++) {
        uint64_t end = 0;
        kv_status s = bc_walk_data("fuzz.data", buf, size, sealed, seed, &end, NULL, visit, &w);
        if (s != KV_OK && s != KV_CORRUPTION) {
            fprintf(stderr, "bc_walk_data returned %s\n", kv_strerror(s));
            abort();
        }
        if (s == KV_OK && (end > size || (sealed && end != size))) {
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
