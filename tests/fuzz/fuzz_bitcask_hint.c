/* fuzz_bitcask_hint: a Bitcask hint file NNNNNNNNNN.hint (bitcask/bc_format.h: 56-byte header
 * with file id, data salt, data size, entry count and two CRCs; entries of crc, seq, offset,
 * record size, key size, flags, key). First the pure decoder bc_walk_hint (with the id, salt and
 * data size the header claims, so that inputs from a real hint file reach the entries; lenient
 * and strict) and bc_hint_count; then the engine opens a closed directory with its newest hint
 * file replaced by the input (start-up loads the keydir from hints, falling back to the data
 * file) and reads everything back. MANIFEST has its own decoder (bc_manifest_decode), fuzzed
 * here too when the input starts with its magic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_format.h"
#include "fuzz_seal.h"
#include "fuzz_util.h"

extern const kv_engine kv_engine_bitcask;
static fz_tmpl t;
static char *hint_name;

typedef struct walk_ctx {
    const uint8_t *buf;
    size_t len;
} walk_ctx;

static kv_status visit(void *ctx, const bc_rec *r)
{
    walk_ctx *w = ctx;
    if (r->klen && (r->key < w->buf || r->key + r->klen > w->buf + w->len)) {
        fprintf(stderr, "bc_walk_hint gave a key outside the file image\n");
        abort();
    }
    volatile uint8_t sink = r->klen ? r->key[r->klen - 1] : 0;
    (void)sink;
    return KV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (size >= 8 && !memcmp(buf, BC_MANIFEST_MAGIC, 8)) {
        bc_manifest m;
        if (bc_manifest_decode("MANIFEST", buf, size, &m) == KV_OK) {
            uint8_t *again = NULL;
            size_t len = 0;
            if (bc_manifest_encode(&m, &again, &len) && (len != size || memcmp(again, buf, len))) {
                fprintf(stderr, "bc_manifest_decode accepted bytes it does not encode back\n");
                abort();
            }
            free(again);
            bc_manifest_free(&m);
        }
        free(buf);
        return 0;
    }
    uint64_t id = size >= 24 ? kv_get_u64(buf + 16) : 0;
    uint64_t salt = size >= 32 ? kv_get_u64(buf + 24) : 0;
    uint64_t dsize = size >= 40 ? kv_get_u64(buf + 32) : 0;
    (void)bc_hint_count(buf, size);
    walk_ctx w = {buf, size};
    for (int strict = 0; strict < 2; strict++) {
        kv_status s = bc_walk_hint("fuzz.hint", buf, size, id, salt, dsize, strict, visit, &w);
        if (s != KV_OK && s != KV_CORRUPTION) {
            fprintf(stderr, "bc_walk_hint returned %s\n", kv_strerror(s));
            abort();
        }
    }
    free(buf);
    fz_tmpl_init(&t, &kv_engine_bitcask);
    if (!hint_name && !(hint_name = fz_find(t.closed, "", ".hint")))
        fz_die("no .hint file in the bitcask template");
    fz_tmpl_run_sealed(&t, t.closed, hint_name, data, size, fz_seal_bitcask_hint);
    return 0;
}
