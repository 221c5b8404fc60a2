/* writer.c: writes an SSTable (LevelDB's table/table_builder.cc): data blocks cut at about
 * block_size bytes, an index entry per data block (its last key), a Bloom filter over every
 * key's filter bytes, a properties block and a footer. The file is written as NAME.tmp and made
 * durable before it is renamed into place (docs/design.md section 6). Output is buffered and
 * written in chunks of about 64 KiB. */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "sst_int.h"

#define OUT_CHUNK (64 * 1024)

struct sst_writer {
    kv_fs *fs;
    char *dir, *name, *tmp, *final;
    kv_file *f;
    const sst_keyops *ops;
    sst_writer_opts opts;
    uint64_t off; /* bytes written to the file so far */
    kv_buf out;   /* bytes not yet written, at file offset off */
    sst_block_builder data, index;
    kv_buf last_key;
    bool pending_index; /* a data block was cut; its index entry waits for last_key */
    sst_handle pending;
    uint32_t *hashes;
    size_t n_hashes, cap_hashes;
    kv_buf last_fkey;
    sst_props props;
    kv_status status;
};

void sst_writer_opts_init(sst_writer_opts *o)
{
    o->block_size = 4096;
    o->restart_interval = 16;
    o->bloom_bits_per_key = 10;
    o->sync_dir = true;
    o->sync_data = true;
    o->unique_id = 0;
}

static kv_status oom(sst_writer *w)
{
    return kv_error(KV_NOMEM, "%s: out of memory", w->tmp);
}

kv_status sst_writer_new(kv_fs *fs, const char *dir, const char *name, const sst_keyops *ops,
                         const sst_writer_opts *opts, sst_writer **out)
{
    sst_writer_opts d;
    sst_writer_opts_init(&d);
    if (!opts)
        opts = &d;
    if (opts->block_size < 64 || opts->block_size > (64u << 20) || opts->restart_interval < 1 ||
        opts->bloom_bits_per_key > 100)
        return kv_error(KV_INVALID,
                        "sstable %s: bad options (block %zu bytes, restart interval "
                        "%u, %u bits per key)",
                        name, opts->block_size, opts->restart_interval, opts->bloom_bits_per_key);
    sst_writer *w = calloc(1, sizeof *w);
    if (!w)
        return kv_error(KV_NOMEM, "sstable %s: out of memory", name);
    w->fs = fs;
    w->ops = ops;
    w->opts = *opts;
    w->dir = strdup(dir);
    w->name = strdup(name);
    w->final = kv_path_join(dir, name);
    size_t n = strlen(name);
    char *tmpname = malloc(n + 5);
    if (tmpname) {
        memcpy(tmpname, name, n);
        memcpy(tmpname + n, ".tmp", 5);
        w->tmp = kv_path_join(dir, tmpname);
        free(tmpname);
    }
    sst_bb_init(&w->data, opts->restart_interval);
    sst_bb_init(&w->index, 1);
    if (!w->dir || !w->name || !w->final || !w->tmp) {
        sst_writer_abandon(w);
        return kv_error(KV_NOMEM, "sstable %s: out of memory", name);
    }
    kv_status s = kv_fs_open(fs, w->tmp, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &w->f);
    if (s != KV_OK) {
        w->f = NULL;
        sst_writer_abandon(w);
        return s;
    }
    uint8_t hdr[SST_HEADER_SIZE];
    sst_header_encode(hdr);
    if (!kv_buf_append(&w->out, hdr, sizeof hdr)) {
        sst_writer_abandon(w);
        return kv_error(KV_NOMEM, "sstable %s: out of memory", name);
    }
    w->props.block_size = (uint32_t)opts->block_size;
    w->props.bloom_bits_per_key = opts->bloom_bits_per_key;
    *out = w;
    return KV_OK;
}

/* Writes the buffered bytes when at least min are buffered. */
static kv_status drain(sst_writer *w, size_t min)
{
    if (w->out.len == 0 || w->out.len < min)
        return KV_OK;
    kv_status s = kv_file_pwrite(w->f, w->out.data, w->out.len, w->off);
    if (s != KV_OK)
        return s;
    w->off += w->out.len;
    w->out.len = 0;
    return KV_OK;
}

/* Appends contents + trailer as a block at the current end; *h gets its handle. */
static kv_status emit_block(sst_writer *w, const uint8_t *p, size_t n, sst_handle *h)
{
    h->off = w->off + w->out.len;
    h->size = n;
    uint8_t trailer[SST_TRAILER_SIZE];
    trailer[0] = SST_BLOCK_RAW;
    uint32_t crc = kv_crc32_extend(kv_crc32(p, n), trailer, 1);
    kv_put_u32(trailer + 1, crc);
    if (!kv_buf_append(&w->out, p, n) || !kv_buf_append(&w->out, trailer, sizeof trailer))
        return oom(w);
    return drain(w, OUT_CHUNK);
}

static kv_status add_pending_index(sst_writer *w)
{
    if (!w->pending_index)
        return KV_OK;
    uint8_t hb[2 * KV_VARINT64_MAX];
    size_t hn = sst_handle_encode(hb, w->pending);
    if (!sst_bb_add(&w->index, w->last_key.data, w->last_key.len, hb, hn))
        return oom(w);
    w->pending_index = false;
    return KV_OK;
}

static kv_status flush_data(sst_writer *w)
{
    if (w->data.entries == 0)
        return KV_OK;
    if (!sst_bb_finish(&w->data))
        return oom(w);
    sst_handle h;
    kv_status s = emit_block(w, w->data.buf.data, w->data.buf.len, &h);
    if (s != KV_OK)
        return s;
    w->props.data_blocks++;
    w->props.data_size += h.size + SST_TRAILER_SIZE;
    sst_bb_reset(&w->data);
    w->pending = h;
    w->pending_index = true;
    return KV_OK;
}

static bool add_hash(sst_writer *w, const uint8_t *k, size_t klen)
{
    size_t fl = w->ops->filter_len ? w->ops->filter_len(klen) : klen;
    if (w->n_hashes && w->last_fkey.len == fl && !memcmp(w->last_fkey.data, k, fl))
        return true;
    if (w->n_hashes == w->cap_hashes) {
        size_t cap = w->cap_hashes ? w->cap_hashes * 2 : 1024;
        uint32_t *n = realloc(w->hashes, cap * sizeof *n);
        if (!n)
            return false;
        w->hashes = n;
        w->cap_hashes = cap;
    }
    w->hashes[w->n_hashes++] = sst_bloom_hash(k, fl);
    w->last_fkey.len = 0;
    return kv_buf_append(&w->last_fkey, k, fl);
}

kv_status sst_writer_add(sst_writer *w, const void *key, size_t klen, const void *value,
                         size_t vlen)
{
    if (w->status != KV_OK)
        return w->status;
    const uint8_t *k = key;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return kv_error(KV_INVALID, "%s: entry too large", w->tmp);
    if (w->props.entries > 0 && w->ops->cmp(w->last_key.data, w->last_key.len, k, klen) >= 0)
        return kv_error(KV_INVALID, "%s: keys out of order at entry %llu", w->tmp,
                        (unsigned long long)w->props.entries);
    kv_status s = add_pending_index(w);
    if (s == KV_OK && !sst_bb_add(&w->data, k, klen, value, vlen))
        s = oom(w);
    if (s == KV_OK && w->opts.bloom_bits_per_key && !add_hash(w, k, klen))
        s = oom(w);
    if (s == KV_OK) {
        w->last_key.len = 0;
        if (!kv_buf_append(&w->last_key, k, klen))
            s = oom(w);
    }
    if (s == KV_OK && w->props.entries == 0) {
        w->props.smallest = malloc(klen);
        if (!w->props.smallest)
            s = oom(w);
        else {
            memcpy(w->props.smallest, k, klen);
            w->props.smallest_len = klen;
        }
    }
    if (s != KV_OK)
        return w->status = s;
    w->props.entries++;
    w->props.raw_key_bytes += klen;
    w->props.raw_value_bytes += vlen;
    if (sst_bb_size(&w->data) >= w->opts.block_size)
        s = flush_data(w);
    return w->status = s;
}

uint64_t sst_writer_entries(const sst_writer *w)
{
    return w->props.entries;
}

uint64_t sst_writer_estimated_size(const sst_writer *w)
{
    return w->off + w->out.len + sst_bb_size(&w->data) + w->index.buf.len + w->n_hashes * 2;
}

static kv_status finish_blocks(sst_writer *w)
{
    kv_status s = flush_data(w);
    if (s == KV_OK)
        s = add_pending_index(w);
    if (s != KV_OK)
        return s;
    sst_handle fh = {0, 0}, ph, ih;
    kv_buf tmp = {0};
    if (w->opts.bloom_bits_per_key) {
        if (!sst_bloom_build(w->hashes, w->n_hashes, w->opts.bloom_bits_per_key, &tmp))
            return oom(w);
        s = emit_block(w, tmp.data, tmp.len, &fh);
        w->props.filter_size = tmp.len + SST_TRAILER_SIZE;
    }
    /* The index size is known before the properties are written: finish it first. */
    if (s == KV_OK && !sst_bb_finish(&w->index))
        s = oom(w);
    if (s == KV_OK) {
        w->props.index_size = w->index.buf.len + SST_TRAILER_SIZE;
        w->props.largest = malloc(w->last_key.len);
        if (!w->props.largest)
            s = oom(w);
        else {
            memcpy(w->props.largest, w->last_key.data, w->last_key.len);
            w->props.largest_len = w->last_key.len;
        }
    }
    tmp.len = 0;
    if (s == KV_OK && !sst_props_encode(&w->props, w->ops->name, &tmp, 1))
        s = oom(w);
    if (s == KV_OK)
        s = emit_block(w, tmp.data, tmp.len, &ph);
    kv_buf_free(&tmp);
    if (s == KV_OK)
        s = emit_block(w, w->index.buf.data, w->index.buf.len, &ih);
    if (s != KV_OK)
        return s;
    uint8_t footer[SST_FOOTER_SIZE];
    sst_footer_encode(footer, fh, ph, ih, w->opts.unique_id);
    if (!kv_buf_append(&w->out, footer, sizeof footer))
        return oom(w);
    s = drain(w, 0);
    w->props.file_size = w->off;
    w->props.unique_id = w->opts.unique_id;
    return s;
}

kv_status sst_writer_finish(sst_writer *w, sst_props *props)
{
    kv_status s = w->status;
    if (s == KV_OK && w->props.entries == 0)
        s = kv_error(KV_INVALID, "%s: a table needs at least one entry", w->tmp);
    if (s == KV_OK)
        s = finish_blocks(w);
    if (s == KV_OK && w->opts.sync_data)
        s = kv_file_fdatasync(w->f);
    if (s == KV_OK) {
        kv_status c = kv_file_close(w->f);
        w->f = NULL;
        s = c;
    }
    if (s == KV_OK)
        s = kv_fs_rename(w->fs, w->tmp, w->final);
    if (s == KV_OK && w->opts.sync_dir)
        s = kv_fs_fsync_dir(w->fs, w->dir);
    if (s != KV_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
        sst_writer_abandon(w);
        return kv_error(s, "%s", msg);
    }
    if (props) {
        *props = w->props;
        w->props.smallest = w->props.largest = NULL;
    }
    free(w->tmp);
    w->tmp = NULL; /* nothing left to remove */
    sst_writer_abandon(w);
    return KV_OK;
}

void sst_writer_abandon(sst_writer *w)
{
    if (!w)
        return;
    if (w->f)
        kv_file_close(w->f);
    if (w->tmp)
        kv_fs_unlink(w->fs, w->tmp); /* best effort: a leftover .tmp is removed at open */
    free(w->dir);
    free(w->name);
    free(w->tmp);
    free(w->final);
    kv_buf_free(&w->out);
    sst_bb_free(&w->data);
    sst_bb_free(&w->index);
    kv_buf_free(&w->last_key);
    kv_buf_free(&w->last_fkey);
    free(w->hashes);
    sst_props_free(&w->props);
    free(w);
}

void sst_props_free(sst_props *p)
{
    free(p->smallest);
    free(p->largest);
    p->smallest = p->largest = NULL;
}
