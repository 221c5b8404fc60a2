/* Unit tests of the SSTable module: round trip across many blocks, seeks at restart
 * boundaries, the Bloom filter's false-positive rate, corruption detection, the cache budget,
 * the dump and the writer's checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coding.h"
#include "fs.h"
#include "sstable.h"
#include "testutil.h"

static int key_of(char *buf, int i)
{
    return snprintf(buf, 32, "key%08d", i);
}

/* Value of entry i: a few bytes depending on i, sometimes empty. */
static size_t value_of(uint8_t *buf, int i)
{
    size_t n = (size_t)(i % 7 == 0 ? 0 : 5 + i % 50);
    for (size_t j = 0; j < n; j++)
        buf[j] = (uint8_t)(i * 31 + (int)j);
    return n;
}

/* Writes keys 0, step, 2*step, ... (n of them) into dir/name. */
static void build(kv_fs *fs, const char *dir, const char *name, int n, int step,
                  const sst_writer_opts *o)
{
    sst_writer *w;
    OK(sst_writer_new(fs, dir, name, &sst_bytewise, o, &w));
    for (int i = 0; i < n; i++) {
        char k[32];
        uint8_t v[64];
        int kl = key_of(k, i * step);
        size_t vl = value_of(v, i * step);
        OK(sst_writer_add(w, k, (size_t)kl, v, vl));
    }
    sst_props p;
    OK(sst_writer_finish(w, &p));
    assert_int_equal(p.entries, (uint64_t)n);
    sst_props_free(&p);
}

typedef struct found {
    char key[32];
    size_t klen;
    uint8_t val[64];
    size_t vlen;
} found;

static void get_cb(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    found *f = ctx;
    assert_true(kl < sizeof f->key && vl <= sizeof f->val);
    memcpy(f->key, k, kl);
    f->klen = kl;
    memcpy(f->val, v, vl);
    f->vlen = vl;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-rt");
    kv_fs *fs = kv_fs_posix();
    const int n = 20000;
    build(fs, dir, "t.sst", n, 1, NULL);
    char *path = kv_path_join(dir, "t.sst");
    sst_cache *cache = sst_cache_new(1 << 20);
    sst_reader *r;
    OK(sst_reader_open(fs, path, &sst_bytewise, cache, &r));
    const sst_props *p = sst_reader_props(r);
    assert_int_equal(p->entries, (uint64_t)n);
    assert_true(p->data_blocks > 50); /* many blocks */
    assert_memory_equal(p->smallest, "key00000000", 11);
    assert_memory_equal(p->largest, "key00019999", 11);
    /* every key by point lookup */
    for (int i = 0; i < n; i++) {
        char k[32];
        uint8_t v[64];
        int kl = key_of(k, i);
        size_t vl = value_of(v, i);
        found f;
        OK(sst_reader_get(r, k, (size_t)kl, k, (size_t)kl, get_cb, &f));
        assert_int_equal(f.klen, (size_t)kl);
        assert_memory_equal(f.key, k, (size_t)kl);
        assert_int_equal(f.vlen, vl);
        if (vl)
            assert_memory_equal(f.val, v, vl);
    }
    /* a key after the last one */
    found f;
    assert_int_equal(sst_reader_get(r, "zzz", 3, NULL, 0, get_cb, &f), KV_NOT_FOUND);
    /* a full scan */
    sst_iter *it = sst_iter_new(r);
    assert_non_null(it);
    int i = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it), i++) {
        char k[32];
        uint8_t v[64];
        int kl = key_of(k, i);
        size_t vl = value_of(v, i), gkl, gvl;
        const uint8_t *gk = sst_iter_key(it, &gkl), *gv = sst_iter_value(it, &gvl);
        assert_int_equal(gkl, (size_t)kl);
        assert_memory_equal(gk, k, (size_t)kl);
        assert_int_equal(gvl, vl);
        if (vl)
            assert_memory_equal(gv, v, vl);
    }
    assert_int_equal(i, n);
    OK(sst_iter_status(it));
    sst_iter_free(it);
    OK(sst_reader_verify(r));
    sst_reader_close(r);
    /* through a mapping: every key again, twice (the second time the CRC is not rechecked) */
    OK(sst_reader_open_ex(fs, path, &sst_bytewise, cache, true, &r));
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < n; j += 3) {
            char k[32];
            uint8_t v[64];
            int kl = key_of(k, j);
            size_t vl = value_of(v, j);
            OK(sst_reader_get(r, k, (size_t)kl, k, (size_t)kl, get_cb, &f));
            assert_int_equal(f.vlen, vl);
            if (vl)
                assert_memory_equal(f.val, v, vl);
        }
    it = sst_iter_new(r);
    i = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it))
        i++;
    assert_int_equal(i, n);
    sst_iter_free(it);
    sst_reader_close(r);
    sst_cache_free(cache);
    free(path);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static void test_seek_restart_boundaries(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-seek");
    kv_fs *fs = kv_fs_posix();
    sst_writer_opts o;
    sst_writer_opts_init(&o);
    o.block_size = 256;
    o.restart_interval = 4;
    const int n = 1000;
    build(fs, dir, "t.sst", n, 2, &o); /* even keys only */
    char *path = kv_path_join(dir, "t.sst");
    sst_reader *r;
    OK(sst_reader_open(fs, path, &sst_bytewise, NULL, &r));
    sst_iter *it = sst_iter_new(r);
    for (int i = 0; i < 2 * n; i++) { /* each present key and each gap between */
        char k[32], want[32];
        int kl = key_of(k, i);
        int wl = key_of(want, i % 2 ? i + 1 : i);
        sst_iter_seek(it, k, (size_t)kl);
        if (i + 1 >= 2 * n && i % 2) {
            assert_false(sst_iter_valid(it));
            continue;
        }
        assert_true(sst_iter_valid(it));
        size_t gl;
        const uint8_t *g = sst_iter_key(it, &gl);
        assert_int_equal(gl, (size_t)wl);
        assert_memory_equal(g, want, (size_t)wl);
        /* the entry after it too (crossing restarts and blocks) */
        sst_iter_next(it);
        if ((i % 2 ? i + 1 : i) / 2 + 1 < n) {
            char nk[32];
            int nl = key_of(nk, (i % 2 ? i + 1 : i) + 2);
            assert_true(sst_iter_valid(it));
            g = sst_iter_key(it, &gl);
            assert_int_equal(gl, (size_t)nl);
            assert_memory_equal(g, nk, (size_t)nl);
        } else
            assert_false(sst_iter_valid(it));
    }
    /* before the first key, and past the last */
    sst_iter_seek(it, "a", 1);
    assert_true(sst_iter_valid(it));
    sst_iter_seek(it, "zz", 2);
    assert_false(sst_iter_valid(it));
    OK(sst_iter_status(it));
    sst_iter_free(it);
    sst_reader_close(r);
    free(path);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static void test_bloom_false_positives(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-bloom");
    kv_fs *fs = kv_fs_posix();
    const int n = 10000;
    build(fs, dir, "t.sst", n, 2, NULL); /* even keys present, odd keys absent */
    char *path = kv_path_join(dir, "t.sst");
    sst_cache *cache = sst_cache_new(1 << 20);
    sst_reader *r;
    OK(sst_reader_open(fs, path, &sst_bytewise, cache, &r));
    int fp = 0;
    for (int i = 0; i < n; i++) {
        char k[32];
        int kl = key_of(k, 2 * i);
        assert_true(sst_reader_may_contain(r, k, (size_t)kl)); /* no false negatives */
        kl = key_of(k, 2 * i + 1);
        fp += sst_reader_may_contain(r, k, (size_t)kl);
    }
    double rate = (double)fp / n;
    fprintf(stderr, "bloom: %d false positives in %d absent keys (%.2f%%)\n", fp, n, 100 * rate);
    assert_true(rate < 0.02);
    sst_counters *c = sst_cache_counters(cache);
    assert_int_equal(atomic_load(&c->bloom_checks), (uint64_t)2 * n);
    assert_int_equal(atomic_load(&c->bloom_useful), (uint64_t)(n - fp));
    sst_reader_close(r);
    sst_cache_free(cache);
    free(path);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static void flip_bit(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
}

static void test_corruption(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-corrupt");
    kv_fs *fs = kv_fs_posix();
    build(fs, dir, "t.sst", 2000, 1, NULL);
    char *path = kv_path_join(dir, "t.sst");
    flip_bit(path, SST_HEADER_SIZE + 100); /* inside the first data block (offset 16) */
    sst_reader *r;
    OK(sst_reader_open(fs, path, &sst_bytewise, NULL, &r)); /* footer and index are fine */
    found f;
    assert_int_equal(sst_reader_get(r, "key00000001", 11, NULL, 0, get_cb, &f), KV_CORRUPTION);
    const char *msg = kv_errmsg();
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, "offset 16"));
    assert_int_equal(sst_reader_verify(r), KV_CORRUPTION);
    sst_iter *it = sst_iter_new(r);
    sst_iter_seek_first(it);
    assert_false(sst_iter_valid(it));
    assert_int_equal(sst_iter_status(it), KV_CORRUPTION);
    sst_iter_free(it);
    /* a key in a later block still reads */
    OK(sst_reader_get(r, "key00001999", 11, NULL, 0, get_cb, &f));
    sst_reader_close(r);
    /* the same through a mapping: the CRC is checked on first touch */
    OK(sst_reader_open_ex(fs, path, &sst_bytewise, NULL, true, &r));
    OK(sst_reader_get(r, "key00001999", 11, NULL, 0, get_cb, &f));
    assert_int_equal(sst_reader_get(r, "key00000001", 11, NULL, 0, get_cb, &f), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "offset 16"));
    assert_int_equal(sst_reader_get(r, "key00000001", 11, NULL, 0, get_cb, &f), KV_CORRUPTION);
    it = sst_iter_new(r);
    sst_iter_seek(it, "key00001990", 11);
    assert_true(sst_iter_valid(it));
    sst_iter_seek_first(it);
    assert_int_equal(sst_iter_status(it), KV_CORRUPTION);
    sst_iter_free(it);
    sst_reader_close(r);
    /* damage in the footer: the open fails naming the file */
    build(fs, dir, "u.sst", 100, 1, NULL);
    char *upath = kv_path_join(dir, "u.sst");
    FILE *uf = fopen(upath, "rb");
    fseek(uf, 0, SEEK_END);
    long size = ftell(uf);
    fclose(uf);
    flip_bit(upath, size - 10);
    assert_int_equal(sst_reader_open(fs, upath, &sst_bytewise, NULL, &r), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), upath));
    free(upath);
    free(path);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static void test_cache_budget(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-cache");
    kv_fs *fs = kv_fs_posix();
    build(fs, dir, "t.sst", 20000, 1, NULL);
    char *path = kv_path_join(dir, "t.sst");
    const uint64_t budget = 64 * 1024;
    sst_cache *cache = sst_cache_new(budget);
    sst_reader *r;
    OK(sst_reader_open(fs, path, &sst_bytewise, cache, &r));
    tu_rng rng = {tu_seed(7)};
    for (int i = 0; i < 20000; i++) {
        char k[32];
        int kl = key_of(k, (int)tu_below(&rng, 20000));
        found f;
        OK(sst_reader_get(r, k, (size_t)kl, NULL, 0, get_cb, &f));
        assert_true(sst_cache_usage(cache) <= budget);
    }
    assert_true(sst_cache_usage(cache) > budget / 2); /* it does cache */
    /* the same key twice in a row: the second read is a hit */
    sst_counters *c = sst_cache_counters(cache);
    found f;
    OK(sst_reader_get(r, "key00000042", 11, NULL, 0, get_cb, &f));
    uint64_t hits = atomic_load(&c->cache_hits);
    OK(sst_reader_get(r, "key00000042", 11, NULL, 0, get_cb, &f));
    assert_int_equal(atomic_load(&c->cache_hits), hits + 1);
    sst_reader_close(r);
    sst_cache_free(cache);
    free(path);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static void test_dump(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-dump");
    kv_fs *fs = kv_fs_posix();
    build(fs, dir, "t.sst", 500, 1, NULL);
    char *path = kv_path_join(dir, "t.sst");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    OK(sst_dump(fs, path, &sst_bytewise, out, -1));
    fclose(out);
    const char *want[] = {"header: magic=\"KVLABSST\"",
                          "footer:",
                          "index block",
                          "data block 0",
                          "restart[0]",
                          "num_restarts",
                          "filter block",
                          "properties block",
                          "entries=500",
                          "crc32="};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_non_null(strstr(buf, want[i]));
    free(buf);
    out = open_memstream(&buf, &len);
    OK(sst_dump(fs, path, &sst_bytewise, out, 1));
    fclose(out);
    assert_non_null(strstr(buf, "data block 1"));
    assert_null(strstr(buf, "data block 0 "));
    free(buf);
    out = open_memstream(&buf, &len);
    assert_int_equal(sst_dump(fs, path, &sst_bytewise, out, 100000), KV_INVALID);
    fclose(out);
    free(buf);
    free(path);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

static void test_writer_checks(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sst-writer");
    kv_fs *fs = kv_fs_posix();
    sst_writer *w;
    OK(sst_writer_new(fs, dir, "t.sst", &sst_bytewise, NULL, &w));
    OK(sst_writer_add(w, "b", 1, "1", 1));
    assert_int_equal(sst_writer_add(w, "a", 1, "2", 1), KV_INVALID); /* out of order */
    assert_int_equal(sst_writer_add(w, "b", 1, "2", 1), KV_INVALID); /* duplicate */
    sst_writer_abandon(w);
    bool exists = true;
    char *tmp = kv_path_join(dir, "t.sst.tmp");
    OK(kv_fs_exists(fs, tmp, &exists));
    assert_false(exists); /* abandon removes the .tmp */
    OK(sst_writer_new(fs, dir, "t.sst", &sst_bytewise, NULL, &w));
    assert_int_equal(sst_writer_finish(w, NULL), KV_INVALID); /* empty table */
    sst_writer_opts o;
    sst_writer_opts_init(&o);
    o.block_size = 1;
    assert_int_equal(sst_writer_new(fs, dir, "t.sst", &sst_bytewise, &o, &w), KV_INVALID);
    free(tmp);
    kv_fs_destroy(fs);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_seek_restart_boundaries),
        cmocka_unit_test(test_bloom_false_positives),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_cache_budget),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_writer_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
