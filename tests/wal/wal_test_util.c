#include "wal_test_util.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

void wt_payload(uint8_t *out, size_t len, uint64_t b, uint64_t j)
{
    tu_rng r = {b * 1000003u + j};
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)tu_next(&r);
}

size_t wt_len(uint64_t b, uint64_t j)
{
    return (size_t)((b * 7 + j * 13) % 97) + ((b % 17 == 3) ? 3000 : 0);
}

kv_status wt_collect(void *ctx, const wal_replay_rec *recs, size_t n, uint64_t commit_lsn)
{
    wt_replay *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->b = realloc(r->b, r->cap * sizeof *r->b);
    }
    wt_batch *b = &r->b[r->n++];
    b->commit_lsn = commit_lsn;
    b->n = n;
    b->types = malloc(n);
    b->lsns = malloc(n * sizeof *b->lsns);
    b->payloads = malloc(n * sizeof *b->payloads);
    b->lens = malloc(n * sizeof *b->lens);
    for (size_t i = 0; i < n; i++) {
        b->types[i] = recs[i].type;
        b->lsns[i] = recs[i].lsn;
        b->lens[i] = recs[i].len;
        b->payloads[i] = malloc(recs[i].len + 1);
        if (recs[i].len)
            memcpy(b->payloads[i], recs[i].payload, recs[i].len);
    }
    return KV_OK;
}

void wt_replay_free(wt_replay *r)
{
    for (size_t i = 0; i < r->n; i++) {
        wt_batch *b = &r->b[i];
        for (size_t j = 0; j < b->n; j++)
            free(b->payloads[j]);
        free(b->types);
        free(b->lsns);
        free(b->payloads);
        free(b->lens);
    }
    free(r->b);
    memset(r, 0, sizeof *r);
}

kv_status wt_append(wal_log *l, uint64_t b, size_t nrec, uint64_t *lsn)
{
    wal_record recs[16] = {{0}};
    wal_slice sl[16] = {{0}};
    uint8_t *bufs[16] = {0};
    if (nrec > 16)
        nrec = 16;
    for (size_t j = 0; j < nrec; j++) {
        size_t len = wt_len(b, j);
        bufs[j] = malloc(len + 1);
        wt_payload(bufs[j], len, b, j);
        sl[j] = (wal_slice){bufs[j], len};
        recs[j] = (wal_record){j % 3 == 2 ? WAL_REC_DELETE : WAL_REC_PUT, &sl[j], 1};
    }
    kv_status s = wal_log_append_batch(l, recs, nrec, NULL, NULL, lsn);
    for (size_t j = 0; j < nrec; j++)
        free(bufs[j]);
    return s;
}

void wt_expect_batch(const wt_batch *got, uint64_t b, size_t nrec)
{
    assert_int_equal(got->n, nrec);
    for (size_t j = 0; j < nrec; j++) {
        size_t len = wt_len(b, j);
        uint8_t *want = malloc(len + 1);
        wt_payload(want, len, b, j);
        assert_int_equal(got->types[j], j % 3 == 2 ? WAL_REC_DELETE : WAL_REC_PUT);
        assert_int_equal(got->lens[j], len);
        assert_memory_equal(got->payloads[j], want, len);
        assert_int_equal(got->lsns[j], got->commit_lsn - nrec + j);
        free(want);
    }
}

uint64_t wt_file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

void wt_flip_byte(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= mask;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

void wt_truncate(const char *path, uint64_t size)
{
    assert_int_equal(truncate(path, (off_t)size), 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **wt_segments(const char *dir, size_t *n)
{
    kv_fs *fs = kv_fs_posix();
    kv_namelist l;
    assert_int_equal(kv_fs_list(fs, dir, &l), KV_OK);
    char **out = calloc(l.count + 1, sizeof *out);
    *n = 0;
    for (size_t i = 0; i < l.count; i++) {
        uint64_t first;
        if (wal_seg_name_parse(l.names[i], &first))
            out[(*n)++] = strdup(l.names[i]);
    }
    qsort(out, *n, sizeof *out, cmp_str);
    kv_namelist_free(&l);
    kv_fs_destroy(fs);
    return out;
}

void wt_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

char *wt_join(const char *dir, const char *name)
{
    return kv_path_join(dir, name);
}

void wt_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}
