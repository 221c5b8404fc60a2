/* fuzz_wal_record: the pure codec of the wal/ log format (wal_format.h): a segment header
 * (wal_seg_header_decode) and records back to back (wal_rec_decode), exactly as wal_scan.c walks
 * a segment image. The salt is the one the header carries, so inputs built from a real segment
 * pass the CRC and reach every field check. A decode must never read past its input (ASan) and a
 * record it accepts must lie inside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "wal_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy to an exact-size heap buffer so that ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    wal_seg_header h;
    const char *why = wal_seg_header_decode(buf, size, &h);
    uint64_t salt = size >= 24 ? kv_get_u64(buf + 16) : 0;
    (void)why;
    size_t off = size >= WAL_SEG_HEADER_SIZE ? WAL_SEG_HEADER_SIZE : 0;
    while (off < size) {
        wal_rec_view v;
        const char *w = NULL;
        wal_dec d = wal_rec_decode(buf + off, size - off, salt, &v, &w);
        if (d != WAL_DEC_OK)
            break;
        if (v.total != WAL_REC_OVERHEAD + (uint64_t)v.len || v.total > size - off ||
            v.payload != buf + off + WAL_REC_HEADER_SIZE) {
            fprintf(stderr, "wal_rec_decode accepted a record outside its input\n");
            abort();
        }
        volatile uint8_t sink = v.len ? v.payload[v.len - 1] : 0;
        (void)sink;
        (void)wal_rec_type_name(v.type);
        off += v.total;
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
