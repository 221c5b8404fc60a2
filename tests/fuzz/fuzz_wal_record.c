/* fuzz_wal_record: the pure scanner of a wal/ log segment image (wal_scan_image: the segment
 * header, then every record through common/reclog's framing and damage rule, with the log's own
 * checks of type, LSN sequence and COMMIT counts), both as the newest segment (torn-tail rule)
 * and sealed (an older segment). The salt is the one the header carries, so inputs built from a
 * real segment pass the CRCs and reach every check. A scan must never read past its input
 * (ASan), every record it hands out must lie inside it, the valid prefix must end inside it, and
 * a sealed scan may accept only what the unsealed one accepts without a torn tail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "wal_log_int.h"

typedef struct bounds {
    const uint8_t *buf;
    size_t size;
    uint64_t next; /* where the next record must start */
} bounds;

static kv_status visit(void *ctx, const wal_rec_view *v)
{
    bounds *b = ctx;
    uint64_t total = v->type == WAL_REC_MARK ? WAL_MARK_SIZE : WAL_REC_OVERHEAD + (uint64_t)v->len;
    if (v->off != b->next || v->off + total > b->size ||
        (v->type != WAL_REC_MARK && v->body != b->buf + v->off + WAL_REC_OVERHEAD) ||
        (v->type == WAL_REC_MARK && v->durable > v->off)) {
        fprintf(stderr, "wal_scan_image handed out a record outside its input\n");
        abort();
    }
    volatile uint8_t sink = v->len ? v->body[v->len - 1] : 0;
    (void)sink;
    (void)wal_rec_type_name(v->type);
    b->next = v->off + total;
    return KV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy to an exact-size heap buffer so that ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    wal_scan_result open_res, sealed_res;
    bounds b = {buf, size, WAL_SEG_HEADER_SIZE};
    kv_status s = wal_scan_image("seg", buf, size, false, false, 0, visit, &b, &open_res);
    b.next = WAL_SEG_HEADER_SIZE;
    kv_status t = wal_scan_image("seg", buf, size, true, false, 0, visit, &b, &sealed_res);
    if ((s != KV_OK && s != KV_CORRUPTION) || (t != KV_OK && t != KV_CORRUPTION) ||
        (s == KV_OK && (open_res.end > size || open_res.batch_end > open_res.end ||
                        (!open_res.torn && open_res.end != size))) ||
        (t == KV_OK && (s != KV_OK || open_res.torn || sealed_res.end != size))) {
        fprintf(stderr, "wal_scan_image: open scan %s (end %llu), sealed scan %s of %zu bytes\n",
                kv_strerror(s), (unsigned long long)open_res.end, kv_strerror(t), size);
        abort();
    }
    char name[WAL_SEG_NAME_LEN + 1];
    uint64_t lsn = 0;
    if (size > 0 && size <= WAL_SEG_NAME_LEN) {
        memcpy(name, buf, size);
        name[size] = '\0';
        (void)wal_seg_name_parse(name, &lsn);
    }
    free(buf);
    return 0;
}
