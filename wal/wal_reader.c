/* wal_reader.c: a buffered sequential reader over a segment file, so that replay reads the log
 * in large preads instead of one call per record. */
#include <stdlib.h>
#include <string.h>

#include "wal_log_int.h"

#define READ_CHUNK ((size_t)1 << 20)

kv_status wal_reader_init(wal_reader *r, kv_file *f)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    return kv_file_size(f, &r->size);
}

void wal_reader_free(wal_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->blen = 0;
}

kv_status wal_reader_peek(wal_reader *r, uint64_t off, size_t n, const uint8_t **p, size_t *avail)
{
    if (off >= r->size) {
        *p = r->buf;
        *avail = 0;
        return KV_OK;
    }
    uint64_t left = r->size - off;
    size_t want = left < n ? (size_t)left : n;
    if (off >= r->boff && off + want <= r->boff + r->blen) {
        *p = r->buf + (off - r->boff);
        *avail = want;
        return KV_OK;
    }
    size_t chunk = want > READ_CHUNK ? want : READ_CHUNK;
    if (chunk > left)
        chunk = (size_t)left;
    if (chunk > r->cap) {
        uint8_t *nb = realloc(r->buf, chunk);
        if (!nb)
            return kv_error(KV_NOMEM, "%s: out of memory for a %zu-byte read", r->f->path, chunk);
        r->buf = nb;
        r->cap = chunk;
    }
    size_t got = 0;
    kv_status s = kv_file_pread(r->f, r->buf, chunk, off, &got);
    if (s != KV_OK) {
        r->blen = 0;
        return s;
    }
    r->boff = off;
    r->blen = got;
    *p = r->buf;
    *avail = got < want ? got : want;
    return KV_OK;
}
