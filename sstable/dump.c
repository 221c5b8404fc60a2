/* dump.c: prints an SSTable field by field with file offsets, for a student reading the format
 * (sstable.h has the layout). It reads the file directly, so it prints up to any damage. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sst_int.h"

static void print_key(FILE *out, const sst_keyops *ops, const uint8_t *k, size_t n)
{
    if (ops && ops->format)
        ops->format(out, k, n);
    else
        kv_dump_bytes(out, k, n, 64);
}

typedef struct dctx {
    const char *path;
    kv_file *f;
    uint64_t size;
    const sst_keyops *ops;
    FILE *out;
} dctx;

static kv_status load(dctx *d, sst_handle h, const char *what, sst_block **out)
{
    if (h.off < SST_HEADER_SIZE || h.off + h.size + SST_TRAILER_SIZE > d->size)
        return kv_error(KV_CORRUPTION, "%s: %s handle (offset %llu, %llu bytes) outside the file",
                        d->path, what, (unsigned long long)h.off, (unsigned long long)h.size);
    uint8_t *raw = malloc(h.size + SST_TRAILER_SIZE);
    if (!raw)
        return kv_error(KV_NOMEM, "%s: out of memory", d->path);
    kv_status s = kv_file_read_exact(d->f, raw, h.size + SST_TRAILER_SIZE, h.off);
    if (s == KV_OK)
        s = sst_block_make(d->path, h.off, raw, h.size, out);
    if (s != KV_OK)
        free(raw);
    return s;
}

static void trailer_line(dctx *d, sst_handle h, const sst_block *b)
{
    (void)b;
    uint8_t t[SST_TRAILER_SIZE];
    if (kv_file_read_exact(d->f, t, sizeof t, h.off + h.size) == KV_OK)
        fprintf(d->out, "  @%llu trailer: type=%u (raw) crc32=%08x\n",
                (unsigned long long)(h.off + h.size), t[0], kv_get_u32(t + 1));
}

/* Prints every entry and the restart array of block b at h. */
static kv_status dump_block(dctx *d, sst_handle h, const sst_block *b, bool values_are_handles,
                            bool keys_are_text)
{
    FILE *out = d->out;
    size_t off = 0;
    kv_buf key = {0};
    kv_status s = KV_OK;
    while (off < b->restarts_off) {
        uint32_t shared, non_shared, vlen;
        size_t delta;
        if (!sst_decode_entry(b->data, off, b->restarts_off, &shared, &non_shared, &vlen, &delta) ||
            shared > key.len) {
            s = kv_error(KV_CORRUPTION, "%s: block at offset %llu: bad entry at offset %zu",
                         d->path, (unsigned long long)h.off, off);
            break;
        }
        key.len = shared;
        kv_buf_append(&key, b->data + delta, non_shared);
        fprintf(out, "  @%llu entry: shared=%u non_shared=%u value_len=%u key=",
                (unsigned long long)(h.off + off), shared, non_shared, vlen);
        if (keys_are_text)
            kv_dump_bytes(out, key.data, key.len, 64);
        else
            print_key(out, d->ops, key.data, key.len);
        const uint8_t *v = b->data + delta + non_shared;
        sst_handle vh;
        if (values_are_handles && sst_handle_decode(v, vlen, &vh))
            fprintf(out, " -> block offset=%llu size=%llu\n", (unsigned long long)vh.off,
                    (unsigned long long)vh.size);
        else {
            fputs(" value=", out);
            kv_dump_bytes(out, v, vlen, 32);
            fputc('\n', out);
        }
        off = delta + non_shared + vlen;
    }
    kv_buf_free(&key);
    for (uint32_t i = 0; i < b->n_restarts; i++)
        fprintf(out, "  @%llu restart[%u] = %u\n",
                (unsigned long long)(h.off + b->restarts_off + 4 * (size_t)i), i,
                kv_get_u32(b->data + b->restarts_off + 4 * (size_t)i));
    fprintf(out, "  @%llu num_restarts = %u\n", (unsigned long long)(h.off + b->size - 4),
            b->n_restarts);
    trailer_line(d, h, b);
    return s;
}

kv_status sst_dump(kv_fs *fs, const char *path, const sst_keyops *ops, FILE *out, int64_t which)
{
    dctx d = {path, NULL, 0, ops, out};
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &d.f);
    if (s != KV_OK)
        return s;
    sst_block *index = NULL;
    if ((s = kv_file_size(d.f, &d.size)) != KV_OK)
        goto done;
    fprintf(out, "SSTable %s (%llu bytes)\n", path, (unsigned long long)d.size);
    if (d.size < SST_HEADER_SIZE + SST_FOOTER_SIZE) {
        s = kv_error(KV_CORRUPTION, "%s: offset 0: %llu bytes, too short for an SSTable", path,
                     (unsigned long long)d.size);
        goto done;
    }
    uint8_t hdr[SST_HEADER_SIZE], foot[SST_FOOTER_SIZE];
    if ((s = kv_file_read_exact(d.f, hdr, sizeof hdr, 0)) != KV_OK)
        goto done;
    fprintf(out, "@0 header: magic=");
    kv_dump_bytes(out, hdr, 8, 8);
    fprintf(out, " @8 version=%u @12 crc32=%08x\n", kv_get_u32(hdr + 8), kv_get_u32(hdr + 12));
    if ((s = sst_header_decode(path, hdr)) != KV_OK)
        goto done;
    uint64_t fo = d.size - SST_FOOTER_SIZE;
    if ((s = kv_file_read_exact(d.f, foot, sizeof foot, fo)) != KV_OK)
        goto done;
    const char *names[3] = {"filter", "properties", "index"};
    fprintf(out, "@%llu footer:\n", (unsigned long long)fo);
    for (int i = 0; i < 3; i++)
        fprintf(out, "  @%llu %s handle: offset=%llu size=%u\n", (unsigned long long)(fo + 12 * i),
                names[i], (unsigned long long)kv_get_u64(foot + 12 * i),
                kv_get_u32(foot + 12 * i + 8));
    fprintf(out, "  @%llu unique_id=%016llx\n", (unsigned long long)(fo + 36),
            (unsigned long long)kv_get_u64(foot + 36));
    fprintf(out, "  @%llu version=%u\n  @%llu magic=", (unsigned long long)(fo + 44),
            kv_get_u32(foot + 44), (unsigned long long)(fo + 48));
    kv_dump_bytes(out, foot + 48, 8, 8);
    fprintf(out, "\n  @%llu crc32=%08x\n", (unsigned long long)(fo + 56), kv_get_u32(foot + 56));
    sst_handle fh, ph, ih;
    uint64_t unique_id;
    if ((s = sst_footer_decode(path, fo, foot, &fh, &ph, &ih, &unique_id)) != KV_OK)
        goto done;
    if ((s = load(&d, ih, "index", &index)) != KV_OK)
        goto done;
    fprintf(out, "@%llu index block (%llu bytes, %u restarts):\n", (unsigned long long)ih.off,
            (unsigned long long)ih.size, index->n_restarts);
    if ((s = dump_block(&d, ih, index, true, false)) != KV_OK)
        goto done;
    /* Data blocks, in index order. */
    sst_block_iter ii;
    sst_bi_init(&ii, index, ops, path, ih.off);
    int64_t n = 0;
    bool found = which < 0;
    for (sst_bi_seek_first(&ii); s == KV_OK && sst_bi_valid(&ii); sst_bi_next(&ii), n++) {
        if (which >= 0 && n != which)
            continue;
        found = true;
        sst_handle h;
        if (!sst_handle_decode(ii.val, ii.vlen, &h)) {
            s = kv_error(KV_CORRUPTION, "%s: index entry %lld: bad handle", path, (long long)n);
            break;
        }
        fprintf(out, "@%llu data block %lld (%llu bytes):\n", (unsigned long long)h.off,
                (long long)n, (unsigned long long)h.size);
        sst_block *b;
        if ((s = load(&d, h, "data block", &b)) != KV_OK)
            break;
        s = dump_block(&d, h, b, false, false);
        sst_block_unref(b);
    }
    if (s == KV_OK && ii.status != KV_OK)
        s = ii.status;
    sst_bi_free(&ii);
    if (s == KV_OK && !found)
        s = kv_error(KV_INVALID, "%s: no data block %lld (the table has %lld)", path,
                     (long long)which, (long long)n);
    if (s != KV_OK || which >= 0)
        goto done;
    if (fh.size) {
        uint8_t *raw = malloc(fh.size + SST_TRAILER_SIZE);
        if (!raw) {
            s = kv_error(KV_NOMEM, "%s: out of memory", path);
            goto done;
        }
        s = kv_file_read_exact(d.f, raw, fh.size + SST_TRAILER_SIZE, fh.off);
        if (s == KV_OK)
            s = sst_check_trailer(path, fh.off, raw, fh.size);
        if (s == KV_OK) {
            size_t ones = 0;
            for (size_t i = 0; i + 1 < fh.size; i++)
                ones += (size_t)__builtin_popcount(raw[i]);
            fprintf(out, "@%llu filter block: %llu bits (%zu set), @%llu k=%u probes\n",
                    (unsigned long long)fh.off, (unsigned long long)(fh.size - 1) * 8, ones,
                    (unsigned long long)(fh.off + fh.size - 1), raw[fh.size - 1]);
            fprintf(out, "  @%llu trailer: type=%u crc32=%08x\n",
                    (unsigned long long)(fh.off + fh.size), raw[fh.size],
                    kv_get_u32(raw + fh.size + 1));
        }
        free(raw);
        if (s != KV_OK)
            goto done;
    } else
        fprintf(out, "no filter block\n");
    sst_block *pb;
    if ((s = load(&d, ph, "properties", &pb)) != KV_OK)
        goto done;
    fprintf(out, "@%llu properties block (%llu bytes):\n", (unsigned long long)ph.off,
            (unsigned long long)ph.size);
    s = dump_block(&d, ph, pb, false, true);
    sst_props p;
    char *name;
    if (s == KV_OK && sst_props_decode(pb, &p, &name) == KV_OK) {
        fprintf(out,
                "  decoded: comparator=%s entries=%" PRIu64 " data_blocks=%" PRIu64
                " data_size=%" PRIu64 " index_size=%" PRIu64 " filter_size=%" PRIu64
                " block_size=%u bloom_bits_per_key=%u\n  smallest=",
                name, p.entries, p.data_blocks, p.data_size, p.index_size, p.filter_size,
                p.block_size, p.bloom_bits_per_key);
        print_key(out, ops, p.smallest, p.smallest_len);
        fputs("\n  largest=", out);
        print_key(out, ops, p.largest, p.largest_len);
        fputc('\n', out);
        sst_props_free(&p);
        free(name);
    }
    sst_block_unref(pb);
done:
    sst_block_unref(index);
    kv_file_close(d.f);
    return s;
}
