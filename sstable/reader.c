/* reader.c: opening an SSTable (footer -> index, filter, properties kept in memory), point
 * lookups (index binary search, then a restart-point binary search inside the data block),
 * forward iterators and a full verification, after LevelDB's table/table.cc and
 * table/two_level_iterator.cc. Data blocks go through the block cache. */
#include <stdlib.h>
#include <string.h>

#include "kv_engine.h"
#include "sst_int.h"

struct sst_reader {
    kv_fs *fs;
    char *path;
    kv_file *f;
    const sst_keyops *ops;
    sst_cache *cache;
    uint64_t cache_id;
    uint64_t file_size;
    sst_block *index;
    const uint8_t *map;        /* the whole file mapped, or NULL */
    _Atomic uint8_t *verified; /* with map: one bit per 16 bytes of file, set once the block
                                  starting there passed its CRC check */
    uint8_t *filter;
    size_t filter_len;
    sst_props props;
};

const sst_props *sst_reader_props(const sst_reader *r)
{
    return &r->props;
}

const char *sst_reader_path(const sst_reader *r)
{
    return r->path;
}

const sst_block *sst_reader_index(const sst_reader *r)
{
    return r->index;
}

uint64_t sst_reader_memory(const sst_reader *r)
{
    return sizeof *r + r->index->size + r->filter_len + (r->verified ? r->file_size / 128 + 1 : 0) +
           r->props.smallest_len + r->props.largest_len + strlen(r->path);
}

/* Reads h's contents and trailer into a malloc'd buffer. */
static kv_status read_raw(sst_reader *r, sst_handle h, uint8_t **out)
{
    if (h.off + h.size + SST_TRAILER_SIZE > r->file_size || h.off < SST_HEADER_SIZE)
        return kv_error(KV_CORRUPTION,
                        "%s: block handle (offset %llu, %llu bytes) outside the "
                        "file (%llu bytes)",
                        r->path, (unsigned long long)h.off, (unsigned long long)h.size,
                        (unsigned long long)r->file_size);
    uint8_t *raw = malloc(h.size + SST_TRAILER_SIZE);
    if (!raw)
        return kv_error(KV_NOMEM, "%s: out of memory for a block of %llu bytes", r->path,
                        (unsigned long long)h.size);
    kv_status s = kv_file_read_exact(r->f, raw, h.size + SST_TRAILER_SIZE, h.off);
    if (s != KV_OK) {
        free(raw);
        return s;
    }
    *out = raw;
    return KV_OK;
}

static kv_status read_block(sst_reader *r, sst_handle h, sst_block **out)
{
    uint8_t *raw = NULL;
    kv_status s = read_raw(r, h, &raw);
    if (s != KV_OK)
        return s;
    s = sst_block_make(r->path, h.off, raw, h.size, out);
    if (s != KV_OK)
        free(raw);
    return s;
}

/* Fills *b with the mapped block at h, checking its CRC on the first touch. */
static kv_status map_block(sst_reader *r, sst_handle h, sst_block *b)
{
    if (h.off + h.size + SST_TRAILER_SIZE > r->file_size || h.off < SST_HEADER_SIZE || h.size < 4)
        return kv_error(KV_CORRUPTION,
                        "%s: block handle (offset %llu, %llu bytes) outside the "
                        "file (%llu bytes)",
                        r->path, (unsigned long long)h.off, (unsigned long long)h.size,
                        (unsigned long long)r->file_size);
    uint64_t unit = h.off / 16;
    uint8_t bit = (uint8_t)(1u << (unit % 8));
    bool seen = atomic_load_explicit(&r->verified[unit / 8], memory_order_acquire) & bit;
    sst_counters *c = r->cache ? sst_cache_counters(r->cache) : NULL;
    if (c)
        atomic_fetch_add_explicit(seen ? &c->cache_hits : &c->cache_misses, 1,
                                  memory_order_relaxed);
    const uint8_t *raw = r->map + h.off;
    if (!seen) {
        kv_status s = sst_check_trailer(r->path, h.off, raw, h.size);
        if (s != KV_OK)
            return s;
    }
    uint32_t n = kv_get_u32(raw + h.size - 4);
    if (n == 0 || (uint64_t)n * 4 + 4 > h.size)
        return kv_error(KV_CORRUPTION, "%s: block at offset %llu: bad restart count %u", r->path,
                        (unsigned long long)h.off, n);
    size_t roff = h.size - 4 - (size_t)n * 4;
    if (!seen) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t rs = kv_get_u32(raw + roff + 4 * i);
            if (rs >= roff && !(rs == 0 && roff == 0))
                return kv_error(KV_CORRUPTION,
                                "%s: block at offset %llu: restart %u points "
                                "past the entries (%u)",
                                r->path, (unsigned long long)h.off, i, rs);
        }
        atomic_fetch_or_explicit(&r->verified[unit / 8], bit, memory_order_release);
    }
    atomic_init(&b->refs, 1);
    b->owned = false;
    b->data = (uint8_t *)raw;
    b->size = h.size;
    b->n_restarts = n;
    b->restarts_off = roff;
    return KV_OK;
}

kv_status sst_reader_block(sst_reader *r, sst_handle h, sst_block **out)
{
    if (r->map) {
        sst_block *b = malloc(sizeof *b);
        if (!b)
            return kv_error(KV_NOMEM, "%s: out of memory", r->path);
        kv_status s = map_block(r, h, b);
        if (s != KV_OK) {
            free(b);
            return s;
        }
        *out = b;
        return KV_OK;
    }
    if (r->cache) {
        sst_block *b = sst_cache_lookup(r->cache, r->cache_id, h.off);
        if (b) {
            *out = b;
            return KV_OK;
        }
    }
    kv_status s = read_block(r, h, out);
    if (s == KV_OK && r->cache)
        sst_cache_insert(r->cache, r->cache_id, h.off, *out);
    return s;
}

kv_status sst_reader_open(kv_fs *fs, const char *path, const sst_keyops *ops, sst_cache *cache,
                          sst_reader **out)
{
    return sst_reader_open_ex(fs, path, ops, cache, false, out);
}

kv_status sst_reader_open_ex(kv_fs *fs, const char *path, const sst_keyops *ops, sst_cache *cache,
                             bool mmap, sst_reader **out)
{
    sst_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return kv_error(KV_NOMEM, "%s: out of memory", path);
    }
    r->fs = fs;
    r->ops = ops;
    r->cache = cache;
    r->cache_id = cache ? sst_cache_new_id(cache) : 0;
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &r->f);
    if (s != KV_OK) {
        r->f = NULL;
        goto fail;
    }
    if ((s = kv_file_size(r->f, &r->file_size)) != KV_OK)
        goto fail;
    if (r->file_size < SST_HEADER_SIZE + SST_FOOTER_SIZE) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset 0: file of %llu bytes is too short for an "
                     "SSTable",
                     path, (unsigned long long)r->file_size);
        goto fail;
    }
    uint8_t hdr[SST_HEADER_SIZE], foot[SST_FOOTER_SIZE];
    uint64_t foot_off = r->file_size - SST_FOOTER_SIZE;
    if ((s = kv_file_read_exact(r->f, hdr, sizeof hdr, 0)) != KV_OK ||
        (s = sst_header_decode(path, hdr)) != KV_OK ||
        (s = kv_file_read_exact(r->f, foot, sizeof foot, foot_off)) != KV_OK)
        goto fail;
    sst_handle fh, ph, ih;
    uint64_t unique_id;
    if ((s = sst_footer_decode(path, foot_off, foot, &fh, &ph, &ih, &unique_id)) != KV_OK)
        goto fail;
    if ((s = read_block(r, ih, &r->index)) != KV_OK)
        goto fail;
    sst_block *pb;
    if ((s = read_block(r, ph, &pb)) != KV_OK)
        goto fail;
    char *name = NULL;
    s = sst_props_decode(pb, &r->props, &name);
    sst_block_unref(pb);
    if (s == KV_NOMEM) {
        s = kv_error(KV_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (s != KV_OK) {
        s = kv_error(KV_CORRUPTION, "%s: properties block at offset %llu is malformed", path,
                     (unsigned long long)ph.off);
        goto fail;
    }
    if (strcmp(name, ops->name)) {
        s = kv_error(KV_INVALID, "%s: written with comparator '%s', opened with '%s'", path, name,
                     ops->name);
        free(name);
        goto fail;
    }
    free(name);
    r->props.file_size = r->file_size;
    r->props.unique_id = unique_id;
    if (mmap) {
        const void *addr = NULL;
        r->verified = calloc(r->file_size / 128 + 1, 1);
        if (r->verified && kv_file_map(r->f, r->file_size, &addr) == KV_OK)
            r->map = addr;
        else {
            free((void *)r->verified);
            r->verified = NULL;
            kv_errclear(); /* no mapping: read with pread instead */
        }
    }
    if (fh.size) {
        if ((s = read_raw(r, fh, &r->filter)) != KV_OK)
            goto fail;
        if ((s = sst_check_trailer(path, fh.off, r->filter, fh.size)) != KV_OK)
            goto fail;
        r->filter_len = fh.size;
    }
    *out = r;
    return KV_OK;
fail:
    sst_reader_close(r);
    return s;
}

void sst_reader_close(sst_reader *r)
{
    if (!r)
        return;
    if (r->map)
        kv_file_unmap(r->f, r->map, r->file_size);
    free((void *)r->verified);
    kv_file_close(r->f);
    sst_block_unref(r->index);
    free(r->filter);
    sst_props_free(&r->props);
    free(r->path);
    free(r);
}

bool sst_reader_may_contain(sst_reader *r, const void *fkey, size_t fklen)
{
    if (!r->filter)
        return true;
    bool m = sst_bloom_may_match(r->filter, r->filter_len, sst_bloom_hash(fkey, fklen));
    if (r->cache) {
        sst_counters *c = sst_cache_counters(r->cache);
        atomic_fetch_add_explicit(&c->bloom_checks, 1, memory_order_relaxed);
        if (!m)
            atomic_fetch_add_explicit(&c->bloom_useful, 1, memory_order_relaxed);
    }
    return m;
}

static kv_status bad_handle(sst_reader *r, const sst_block_iter *ii)
{
    return kv_error(KV_CORRUPTION, "%s: index block: bad block handle in entry at offset %zu",
                    r->path, ii->cur);
}

kv_status sst_reader_get(sst_reader *r, const void *key, size_t klen, const void *fkey,
                         size_t fklen, sst_get_fn fn, void *ctx)
{
    if (fkey && !sst_reader_may_contain(r, fkey, fklen))
        return KV_NOT_FOUND;
    sst_block_iter ii;
    sst_bi_init(&ii, r->index, r->ops, r->path, 0);
    sst_bi_seek(&ii, key, klen);
    kv_status s = ii.status;
    if (s != KV_OK || !sst_bi_valid(&ii)) {
        sst_bi_free(&ii);
        return s != KV_OK ? s : KV_NOT_FOUND;
    }
    sst_handle h;
    if (!sst_handle_decode(ii.val, ii.vlen, &h)) {
        s = bad_handle(r, &ii);
        sst_bi_free(&ii);
        return s;
    }
    sst_bi_free(&ii);
    sst_block *b, mapped;
    if (r->map) {
        if ((s = map_block(r, h, &mapped)) != KV_OK)
            return s;
        b = &mapped;
    } else if ((s = sst_reader_block(r, h, &b)) != KV_OK)
        return s;
    sst_block_iter bi;
    sst_bi_init(&bi, b, r->ops, r->path, h.off);
    sst_bi_seek(&bi, key, klen);
    if (sst_bi_valid(&bi))
        fn(ctx, bi.key.data, bi.key.len, bi.val, bi.vlen);
    else
        s = bi.status != KV_OK ? bi.status : KV_NOT_FOUND;
    sst_bi_free(&bi);
    if (b != &mapped)
        sst_block_unref(b);
    return s;
}

/* ---- iterator ---- */

struct sst_iter {
    sst_reader *r;
    sst_block_iter ii; /* over the index */
    sst_block *b;      /* current data block, or NULL */
    sst_block_iter bi;
    kv_status status;
    kv_iter_error err; /* the error that stopped the iterator, with its message */
};

/* Stops the iterator with s, keeping this thread's current message for sst_iter_status. */
static void iter_fail(sst_iter *it, kv_status s)
{
    it->status = s;
    kv_iter_error_set(&it->err, s);
}

sst_iter *sst_iter_new(sst_reader *r)
{
    sst_iter *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->r = r;
    sst_bi_init(&it->ii, r->index, r->ops, r->path, 0);
    return it;
}

static void drop_block(sst_iter *it)
{
    if (it->b) {
        sst_bi_free(&it->bi);
        sst_block_unref(it->b);
        it->b = NULL;
    }
}

void sst_iter_free(sst_iter *it)
{
    if (!it)
        return;
    drop_block(it);
    sst_bi_free(&it->ii);
    free(it);
}

/* Loads the data block the index iterator points at; false at the end or on error. */
static bool load_block(sst_iter *it)
{
    drop_block(it);
    if (it->ii.status != KV_OK) {
        iter_fail(it, it->ii.status);
        return false;
    }
    if (!sst_bi_valid(&it->ii))
        return false;
    sst_handle h;
    if (!sst_handle_decode(it->ii.val, it->ii.vlen, &h)) {
        iter_fail(it, bad_handle(it->r, &it->ii));
        return false;
    }
    kv_status s = sst_reader_block(it->r, h, &it->b);
    if (s != KV_OK) {
        it->b = NULL;
        iter_fail(it, s);
        return false;
    }
    sst_bi_init(&it->bi, it->b, it->r->ops, it->r->path, h.off);
    return true;
}

/* Moves forward over blocks until the data iterator is valid or the table ends. */
static void skip_empty(sst_iter *it)
{
    while (it->status == KV_OK && (!it->b || !sst_bi_valid(&it->bi))) {
        if (it->b && it->bi.status != KV_OK) {
            iter_fail(it, it->bi.status);
            break;
        }
        if (!it->b)
            break;
        sst_bi_next(&it->ii);
        if (!load_block(it))
            break;
        sst_bi_seek_first(&it->bi);
    }
}

void sst_iter_seek_first(sst_iter *it)
{
    if (it->status != KV_OK)
        return;
    sst_bi_seek_first(&it->ii);
    if (load_block(it))
        sst_bi_seek_first(&it->bi);
    skip_empty(it);
}

void sst_iter_seek(sst_iter *it, const void *key, size_t klen)
{
    if (it->status != KV_OK)
        return;
    sst_bi_seek(&it->ii, key, klen);
    if (load_block(it))
        sst_bi_seek(&it->bi, key, klen);
    skip_empty(it);
}

bool sst_iter_valid(const sst_iter *it)
{
    return it->status == KV_OK && it->b && sst_bi_valid(&it->bi);
}

void sst_iter_next(sst_iter *it)
{
    sst_bi_next(&it->bi);
    skip_empty(it);
}

const uint8_t *sst_iter_key(const sst_iter *it, size_t *klen)
{
    *klen = it->bi.key.len;
    return it->bi.key.data;
}

const uint8_t *sst_iter_value(const sst_iter *it, size_t *vlen)
{
    *vlen = it->bi.vlen;
    return it->bi.val;
}

kv_status sst_iter_status(const sst_iter *it)
{
    return it->status == KV_OK ? KV_OK : kv_iter_error_get(&it->err);
}

/* ---- verification ---- */

kv_status sst_reader_verify(sst_reader *r)
{
    sst_block_iter ii;
    sst_bi_init(&ii, r->index, r->ops, r->path, 0);
    kv_buf prev = {0};
    uint64_t entries = 0;
    kv_status s = KV_OK;
    for (sst_bi_seek_first(&ii); s == KV_OK && sst_bi_valid(&ii); sst_bi_next(&ii)) {
        sst_handle h;
        if (!sst_handle_decode(ii.val, ii.vlen, &h)) {
            s = bad_handle(r, &ii);
            break;
        }
        sst_block *b;
        if ((s = read_block(r, h, &b)) != KV_OK)
            break;
        sst_block_iter bi;
        sst_bi_init(&bi, b, r->ops, r->path, h.off);
        for (sst_bi_seek_first(&bi); sst_bi_valid(&bi); sst_bi_next(&bi)) {
            if (entries > 0 && r->ops->cmp(prev.data, prev.len, bi.key.data, bi.key.len) >= 0) {
                s = kv_error(KV_CORRUPTION,
                             "%s: block at offset %llu: key at block offset %zu "
                             "is not greater than the previous key",
                             r->path, (unsigned long long)h.off, bi.cur);
                break;
            }
            size_t fl = r->ops->filter_len ? r->ops->filter_len(bi.key.len) : bi.key.len;
            if (r->filter &&
                !sst_bloom_may_match(r->filter, r->filter_len, sst_bloom_hash(bi.key.data, fl))) {
                s = kv_error(KV_CORRUPTION,
                             "%s: the Bloom filter misses the key at block "
                             "offset %llu + %zu",
                             r->path, (unsigned long long)h.off, bi.cur);
                break;
            }
            prev.len = 0;
            if (!kv_buf_append(&prev, bi.key.data, bi.key.len)) {
                s = kv_error(KV_NOMEM, "%s: out of memory", r->path);
                break;
            }
            entries++;
        }
        if (s == KV_OK && bi.status != KV_OK)
            s = bi.status;
        if (s == KV_OK && (prev.len != ii.key.len || memcmp(prev.data, ii.key.data, prev.len)))
            s = kv_error(KV_CORRUPTION,
                         "%s: index entry at offset %zu does not match the last "
                         "key of the block at offset %llu",
                         r->path, ii.cur, (unsigned long long)h.off);
        sst_bi_free(&bi);
        sst_block_unref(b);
    }
    if (s == KV_OK && ii.status != KV_OK)
        s = ii.status;
    if (s == KV_OK && entries != r->props.entries)
        s = kv_error(KV_CORRUPTION, "%s: %llu entries found, the properties say %llu", r->path,
                     (unsigned long long)entries, (unsigned long long)r->props.entries);
    if (s == KV_OK &&
        (r->props.largest_len != prev.len || memcmp(r->props.largest, prev.data, prev.len)))
        s = kv_error(KV_CORRUPTION, "%s: the last key differs from the properties' largest_key",
                     r->path);
    sst_bi_free(&ii);
    kv_buf_free(&prev);
    return s;
}
