/* fuzz_reclog: the one record log (common/reclog.h) that frames and scans every engine's logs.
 *
 * Half the inputs are scanned as they are: a file whose first 8 bytes are the salt. The scan must
 * never read outside its input (ASan), and every record it hands over must lie inside the input
 * and before the end it reports.
 *
 * The other half build a valid log from the input (record lengths and types, sync marks) and
 * then damage it as the input says (bit flips, a zeroed run, a cut). The scanner's contract must
 * hold: the result is either KV_CORRUPTION naming the file, or a prefix of whole records that
 * ends at or before the first damaged byte; and when an intact mark after the damage names a
 * durable length past it, the result is KV_CORRUPTION (a mark that still decodes after the damage
 * is intact: its CRC covers it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reclog.h"

#define HDR 8

typedef struct seen {
    const uint8_t *base;
    uint64_t size;
    uint64_t offs[4096];
    size_t n;
} seen;

static kv_status visit(void *ctx, const kv_reclog_rec *r)
{
    seen *s = ctx;
    if (r->off + KV_RECLOG_FRAME + (uint64_t)r->len > s->size ||
        r->payload != s->base + r->off + KV_RECLOG_FRAME) {
        fprintf(stderr, "fuzz_reclog: a record outside the input\n");
        abort();
    }
    volatile uint8_t sink = r->len ? r->payload[r->len - 1] : 0;
    (void)sink;
    if (s->n < sizeof s->offs / sizeof *s->offs)
        s->offs[s->n++] = r->off;
    return KV_OK;
}

static void scan_raw(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return;
    memcpy(buf, data, size);
    uint64_t salt = 0;
    for (size_t i = 0; i < HDR && i < size; i++)
        salt |= (uint64_t)buf[i] << (8 * i);
    seen s = {.base = buf, .size = size};
    kv_reclog_result res;
    kv_status st = kv_reclog_scan("f.log", buf, size, size < HDR ? size : HDR, kv_reclog_seed(salt),
                                  visit, &s, &res);
    if (st == KV_OK && (res.end > size || (res.torn != (res.end < size))))
        abort();
    (void)kv_reclog_scan_sealed("f.log", buf, size, size < HDR ? size : HDR, kv_reclog_seed(salt),
                                NULL, NULL, &res);
    free(buf);
}

static void build_and_damage(const uint8_t *in, size_t n)
{
    size_t p = 0;
#define NEXT() (p < n ? in[p++] : 0)
    uint32_t seed = kv_reclog_seed(NEXT());
    kv_buf b = {0};
    uint64_t starts[256];
    bool is_mark[256];
    size_t nrec = 1 + NEXT() % 40;
    if (!kv_buf_reserve(&b, HDR))
        return;
    memset(b.data, 0x5A, HDR);
    b.len = HDR;
    size_t k = 0;
    for (size_t i = 0; i < nrec && k < 256; i++) {
        uint8_t op = NEXT();
        starts[k] = b.len;
        if (op % 5 == 0) {
            uint8_t m[KV_RECLOG_MARK_SIZE];
            kv_reclog_mark(m, seed, b.len);
            if (!kv_buf_append(&b, m, sizeof m))
                goto out;
            is_mark[k++] = true;
        } else {
            size_t at;
            uint32_t len = NEXT() * 3u;
            if (!kv_reclog_begin(&b, &at) || !kv_buf_reserve(&b, len))
                goto out;
            for (uint32_t j = 0; j < len; j++)
                b.data[b.len++] = (uint8_t)(j * 31 + op);
            kv_reclog_end(&b, at, seed, (uint8_t)(1 + op % 254));
            is_mark[k++] = false;
        }
    }
    uint64_t size = b.len;
    uint8_t *orig = malloc(size);
    if (!orig)
        goto out;
    memcpy(orig, b.data, size);
    uint8_t kind = NEXT() % 3;
    uint64_t hi = NEXT(), lo = NEXT();
    uint64_t at = HDR + (hi << 8 | lo) % (size - HDR);
    if (kind == 0) {
        for (int f = 0, nf = 1 + NEXT() % 3; f < nf; f++) {
            uint64_t o = at + NEXT() % 64;
            if (o < size)
                b.data[o] ^= (uint8_t)(1u << (NEXT() % 8));
        }
    } else if (kind == 1) {
        uint64_t len = 1 + ((uint64_t)NEXT() << 2);
        for (uint64_t o = at; o < at + len && o < size; o++)
            b.data[o] = 0;
    } else {
        size = at;
    }
    /* The first byte that differs from the log as written (flips may cancel out). */
    uint64_t first_bad = size;
    for (uint64_t o = 0; o < size && first_bad == size; o++)
        if (b.data[o] != orig[o])
            first_bad = o;
    free(orig);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        goto out;
    memcpy(copy, b.data, size);
    seen s = {.base = copy, .size = size};
    kv_reclog_result res;
    kv_status st = kv_reclog_scan("f.log", copy, size, HDR, seed, visit, &s, &res);
    /* The record holding the first damaged byte, and an intact mark after it that vouches. */
    size_t rec = 0;
    while (rec + 1 < k && starts[rec + 1] <= first_bad)
        rec++;
    bool vouched = false;
    if (first_bad < size)
        for (size_t i = rec + 1; i < k; i++) {
            kv_reclog_rec r;
            if (is_mark[i] && starts[i] + KV_RECLOG_MARK_SIZE <= size && starts[i] > first_bad &&
                kv_reclog_decode(copy, size, starts[i], seed, &r, NULL) == KV_RECLOG_OK &&
                kv_get_u64(r.payload) > starts[rec])
                vouched = true;
        }
    if (st == KV_OK) {
        if (vouched) {
            fprintf(stderr, "fuzz_reclog: damage vouched for by a mark read as a torn tail\n");
            abort();
        }
        if (first_bad < size && res.end > starts[rec]) {
            fprintf(stderr, "fuzz_reclog: the log end passes the damaged record\n");
            abort();
        }
        for (size_t i = 0; i < s.n; i++)
            if (i >= k || s.offs[i] != starts[i]) {
                fprintf(stderr, "fuzz_reclog: a record that was never written\n");
                abort();
            }
    } else if (st != KV_CORRUPTION || !strstr(kv_errmsg(), "f.log: offset ")) {
        fprintf(stderr, "fuzz_reclog: scan returned %d: %s\n", (int)st, kv_errmsg());
        abort();
    }
    free(copy);
out:
    kv_buf_free(&b);
#undef NEXT
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        scan_raw(data + 1, size - 1);
    else
        build_and_damage(data + 1, size - 1);
    return 0;
}
