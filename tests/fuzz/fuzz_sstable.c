/* fuzz_sstable: a whole SSTable file (sstable/: header, data blocks, Bloom filter, properties,
 * index, footer) opened with the table's own reader (sst_reader_open, through a block cache,
 * and sst_reader_open_ex with mmap), then verified (sst_reader_verify), iterated from the
 * first entry, sought, and probed with point reads of the keys the iterator served. Every call
 * must return KV_OK or KV_CORRUPTION/KV_IO, never crash or read outside the file. The table is
 * opened with the bytewise comparator and, when its properties name another (KV_INVALID), with
 * the LSM engine's internal-key comparator (lsm_ikey_ops), as the lsm engine opens its tables;
 * KV_INVALID for a comparator name neither knows is accepted (the name sits behind a CRC). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seal.h"
#include "fuzz_util.h"
#include "lsm_int.h"
#include "sstable.h"

static kv_fs *fs;
static sst_cache *cache;

static void got(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    volatile uint8_t sink = (klen ? k[klen - 1] : 0) ^ (vlen ? v[vlen - 1] : 0);
    (void)sink;
    (*(int *)ctx)++;
}

static void check_status(const char *what, kv_status s)
{
    if (s != KV_OK && s != KV_CORRUPTION && s != KV_IO && s != KV_NOT_FOUND) {
        fprintf(stderr, "%s returned %s: %s\n", what, kv_strerror(s), kv_errmsg());
        abort();
    }
}

/* Probe keys: with lsm_ikey_ops a key is an internal key (user key + 8-byte sequence/type
 * trailer), so probes get a trailer of 0xff bytes (the newest possible). */
static bool ikeys;

static void exercise(sst_reader *r)
{
    static const uint8_t k_probe[] = "k\xff\xff\xff\xff\xff\xff\xff\xff";
    static const uint8_t zz_probe[] = "zz\xff\xff\xff\xff\xff\xff\xff\xff";
    size_t kpl = ikeys ? 9 : 1, zpl = ikeys ? 10 : 2;
    const sst_props *p = sst_reader_props(r);
    (void)p;
    (void)sst_reader_memory(r);
    sst_iter *it = sst_iter_new(r);
    if (!it)
        return;
    kv_buf keys = {0};
    size_t n = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it) && n < 100000; sst_iter_next(it), n++) {
        size_t kl, vl;
        const uint8_t *k = sst_iter_key(it, &kl);
        const uint8_t *v = sst_iter_value(it, &vl);
        volatile uint8_t sink = (kl ? k[kl - 1] : 0) ^ (vl ? v[vl - 1] : 0);
        (void)sink;
        if (n < 32 && kl < 256) { /* remember a few keys for point reads: len byte + key */
            uint8_t l = (uint8_t)kl;
            (void)(kv_buf_append(&keys, &l, 1) && kv_buf_append(&keys, k, kl));
        }
    }
    check_status("sst_iter", sst_iter_status(it));
    sst_iter_seek(it, k_probe, kpl);
    if (sst_iter_valid(it))
        sst_iter_next(it);
    sst_iter_free(it);
    for (size_t off = 0; off < keys.len;) {
        size_t kl = keys.data[off];
        const uint8_t *k = keys.data + off + 1;
        int hits = 0;
        size_t fl = ikeys && kl >= 8 ? kl - 8 : kl;
        (void)sst_reader_may_contain(r, k, fl);
        check_status("sst_reader_get", sst_reader_get(r, k, kl, k, fl, got, &hits));
        off += 1 + kl;
    }
    kv_buf_free(&keys);
    int hits = 0;
    check_status("sst_reader_get", sst_reader_get(r, zz_probe, zpl, zz_probe, 2, got, &hits));
}

static void run(const char *path, const uint8_t *data, size_t size)
{
    fz_write(path, data, size);
    for (int mm = 0; mm < 2; mm++) {
        sst_reader *r = NULL;
        ikeys = false;
        kv_status s = sst_reader_open_ex(fs, path, &sst_bytewise, mm ? NULL : cache, mm, &r);
        if (s == KV_INVALID) {
            ikeys = true;
            s = sst_reader_open_ex(fs, path, &lsm_ikey_ops, mm ? NULL : cache, mm, &r);
        }
        if (s == KV_INVALID)
            break;
        check_status("sst_reader_open", s);
        if (s != KV_OK)
            break;
        exercise(r);
        check_status("sst_reader_verify", sst_reader_verify(r));
        exercise(r);
        sst_reader_close(r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fs && !(fs = kv_fs_posix()))
        fz_die("kv_fs_posix");
    if (!cache && !(cache = sst_cache_new(1 << 20)))
        fz_die("sst_cache_new");
    char *path = fz_strf("%s/000001.sst", fz_root());
    run(path, data, size);
    /* Again with the footer CRC and every block trailer fixed (fuzz_seal.h). */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy) {
        memcpy(copy, data, size);
        if (fz_seal_sstable(copy, size))
            run(path, copy, size);
        free(copy);
    }
    free(path);
    return 0;
}
