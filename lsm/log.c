/* log.c: the record log shared by the WAL and the manifest, in the spirit of LevelDB's
 * db/log_format.h but simpler: no 32 KiB blocks, each record is "crc32, length, payload" with
 * the CRC also covering the file number (the log's generation), so a stale record can never
 * replay in another log. Replay cuts a torn tail (what a power loss leaves: a record running
 * past the end, or one with a zero-filled piece of a 512-byte sector) and reports a damaged
 * record followed by good ones as corruption (DESIGN.md section 6). */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "lsm_int.h"

#define SECTOR 512

static uint32_t number_crc(uint64_t number)
{
    uint8_t nb[8];
    kv_put_u64(nb, number);
    return kv_crc32(nb, 8);
}

/* crc32 of (file number, length, payload); seed = number_crc(file number). The length field
 * and the payload are contiguous in a record. */
static uint32_t rec_crc(uint32_t seed, const uint8_t *lenp, size_t n)
{
    return kv_crc32_extend(seed, lenp, 4 + n);
}

kv_status lsm_log_create(kv_fs *fs, const char *dir, const char *name, const char *magic,
                         uint64_t number, uint64_t prev_number, uint64_t prev_len, lsm_log **out)
{
    lsm_log *l = calloc(1, sizeof *l);
    if (!l || !(l->path = kv_path_join(dir, name))) {
        free(l);
        return kv_error(KV_IO, "%s: out of memory", name);
    }
    atomic_init(&l->refs, 1);
    l->number = number;
    l->seed = number_crc(number);
    kv_status s = kv_fs_open(fs, l->path, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &l->f);
    if (s != KV_OK) {
        l->f = NULL;
        lsm_log_unref(l);
        return s;
    }
    uint8_t h[LSM_LOG_HEADER];
    memcpy(h, magic, 8);
    kv_put_u32(h + 8, 1);
    kv_put_u64(h + 12, number);
    kv_put_u64(h + 20, prev_number);
    kv_put_u64(h + 28, prev_len);
    kv_put_u32(h + 36, kv_crc32(h, 36));
    s = kv_file_pwrite(l->f, h, sizeof h, 0);
    if (s == KV_OK)
        s = kv_fs_fsync_dir(fs, dir);
    if (s != KV_OK) {
        lsm_log_unref(l);
        return s;
    }
    l->written = sizeof h;
    *out = l;
    return KV_OK;
}

void lsm_log_ref(lsm_log *l)
{
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

void lsm_log_unref(lsm_log *l)
{
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    kv_file_close(l->f);
    kv_buf_free(&l->buf);
    free(l->path);
    free(l);
}

bool lsm_log_begin(lsm_log *l)
{
    l->rec_start = l->buf.len;
    if (!kv_buf_reserve(&l->buf, LSM_REC_HEADER))
        return false;
    l->buf.len += LSM_REC_HEADER;
    return true;
}

void lsm_log_end(lsm_log *l)
{
    uint8_t *h = l->buf.data + l->rec_start;
    size_t n = l->buf.len - l->rec_start - LSM_REC_HEADER;
    kv_put_u32(h + 4, (uint32_t)n);
    kv_put_u32(h, rec_crc(l->seed, h + 4, n));
}

kv_status lsm_log_flush(lsm_log *l)
{
    if (l->buf.len == 0)
        return KV_OK;
    kv_status s = kv_file_pwrite(l->f, l->buf.data, l->buf.len, l->written);
    if (s != KV_OK)
        return s;
    l->written += l->buf.len;
    l->buf.len = 0;
    if (l->buf.cap > (4u << 20)) { /* do not keep a huge batch's buffer */
        kv_buf_free(&l->buf);
    }
    return KV_OK;
}

kv_status lsm_log_sync(lsm_log *l)
{
    return kv_file_fdatasync(l->f);
}

static bool all_zero(const uint8_t *p, size_t n);

kv_status lsm_log_prev(kv_fs *fs, const char *path, const char *magic, uint64_t number,
                       uint64_t *prev_number, uint64_t *prev_len)
{
    *prev_number = *prev_len = 0;
    kv_file *f;
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &f);
    if (s != KV_OK)
        return s;
    uint8_t h[LSM_LOG_HEADER];
    size_t got = 0;
    s = kv_file_pread(f, h, sizeof h, 0, &got);
    kv_file_close(f);
    if (s != KV_OK || got < sizeof h || all_zero(h, sizeof h))
        return s; /* torn: lsm_log_replay treats it as empty */
    if (memcmp(h, magic, 8) || kv_get_u32(h + 36) != kv_crc32(h, 36) || kv_get_u32(h + 8) != 1 ||
        kv_get_u64(h + 12) != number)
        return kv_error(KV_CORRUPTION, "%s: offset 0: bad log header", path);
    *prev_number = kv_get_u64(h + 20);
    *prev_len = kv_get_u64(h + 28);
    return KV_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Whether the record [from, to) (clipped to size) has a piece in some 512-byte sector that is
 * all zero: what a lost or torn write leaves, since a sector not made durable reverts to its
 * durable content, and past the synced end of an append-only log that is zeros. (Damage inside
 * a record that happens to hold zeros at a sector edge therefore reads as a torn tail.) */
static bool touches_zero_sector(const uint8_t *d, size_t size, size_t from, size_t to)
{
    if (to > size)
        to = size;
    for (size_t s = from / SECTOR * SECTOR; s < to; s += SECTOR) {
        size_t a = s > from ? s : from, e = s + SECTOR < to ? s + SECTOR : to;
        if (all_zero(d + a, e - a))
            return true;
    }
    return false;
}

/* Whether a whole, CRC-valid record starts at off. */
static bool good_record_at(const uint8_t *d, size_t size, size_t off, uint64_t number)
{
    if (off + LSM_REC_HEADER > size)
        return false;
    uint32_t n = kv_get_u32(d + off + 4);
    if ((uint64_t)off + LSM_REC_HEADER + n > size)
        return false;
    return kv_get_u32(d + off) == rec_crc(number_crc(number), d + off + 4, n);
}

kv_status lsm_log_replay(kv_fs *fs, const char *path, const char *magic, uint64_t number,
                         lsm_log_fn fn, void *ctx, bool *torn, uint64_t *end)
{
    void *data;
    size_t size;
    *torn = false;
    *end = 0;
    kv_status s = kv_fs_read_file(fs, path, (uint64_t)1 << 40, &data, &size);
    if (s != KV_OK)
        return s;
    const uint8_t *d = data;
    if (size < LSM_LOG_HEADER || all_zero(d, LSM_LOG_HEADER)) {
        *torn = true; /* created, header never made durable: an empty log */
        free(data);
        return KV_OK;
    }
    if (memcmp(d, magic, 8) || kv_get_u32(d + 36) != kv_crc32(d, 36)) {
        free(data);
        return kv_error(KV_CORRUPTION, "%s: offset 0: bad log header (magic or crc)", path);
    }
    if (kv_get_u32(d + 8) != 1 || kv_get_u64(d + 12) != number) {
        /* The message reads the header: format it before the buffer is freed. */
        s = kv_error(KV_CORRUPTION,
                     "%s: offset 8: version %u / file number %llu, expected "
                     "1 / %llu",
                     path, kv_get_u32(d + 8), (unsigned long long)kv_get_u64(d + 12),
                     (unsigned long long)number);
        free(data);
        return s;
    }
    size_t off = LSM_LOG_HEADER;
    while (off < size) {
        if (good_record_at(d, size, off, number)) {
            uint32_t n = kv_get_u32(d + off + 4);
            s = fn(ctx, d + off + LSM_REC_HEADER, n, off);
            if (s != KV_OK)
                break;
            off += LSM_REC_HEADER + (size_t)n;
            continue;
        }
        /* A bad record. A power loss leaves a record that runs past the end or overlaps a
         * zero-filled sector (lost or torn writes); anything else with a good record after it
         * is damage. */
        size_t rec_end = size;
        if (off + LSM_REC_HEADER <= size)
            rec_end = off + LSM_REC_HEADER + (size_t)kv_get_u32(d + off + 4);
        bool crash = rec_end > size || rec_end < off ||
                     touches_zero_sector(d, size, off, rec_end > size ? size : rec_end);
        if (!crash && good_record_at(d, size, rec_end, number)) {
            s = kv_error(KV_CORRUPTION,
                         "%s: offset %zu: bad record (crc mismatch) followed by "
                         "good records",
                         path, off);
            break;
        }
        *torn = true;
        break;
    }
    *end = off;
    free(data);
    return s;
}
