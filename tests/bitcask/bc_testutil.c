/* Helpers for the bitcask tests (see bc_testutil.h). Tests poke at files directly, outside the
 * engine, to simulate damage. */
#include "bc_testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *bt_nth_file(const char *dir, const char *suffix, size_t n, size_t *count)
{
    DIR *d = opendir(dir);
    char *names[4096];
    size_t k = 0, sl = strlen(suffix);
    struct dirent *de;
    while (d && (de = readdir(d)) && k < 4096) {
        size_t l = strlen(de->d_name);
        if (l > sl && !strcmp(de->d_name + l - sl, suffix))
            names[k++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, k, sizeof *names, cmp_str);
    char *out = NULL;
    if (n < k) {
        out = malloc(strlen(dir) + strlen(names[n]) + 2);
        sprintf(out, "%s/%s", dir, names[n]);
    }
    for (size_t i = 0; i < k; i++)
        free(names[i]);
    if (count)
        *count = k;
    return out;
}

int bt_flip(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    uint8_t b;
    int rc = -1;
    if (pread(fd, &b, 1, (off_t)off) == 1) {
        b ^= mask;
        rc = pwrite(fd, &b, 1, (off_t)off) == 1 ? 0 : -1;
    }
    close(fd);
    return rc;
}

long long bt_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int bt_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    int rc = len == 0 || write(fd, data, len) == (ssize_t)len ? 0 : -1;
    close(fd);
    return rc;
}

void bt_expect_get(kv_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
    void *got = NULL;
    size_t gl = 0;
    kv_status s = kv_get(db, k, kl, &got, &gl);
    if (!v) {
        assert_int_equal(s, KV_NOT_FOUND);
        return;
    }
    assert_int_equal(s, KV_OK);
    assert_int_equal(gl, vl);
    assert_memory_equal(got, v, vl);
    kv_free(got);
}

void bt_expect_model(kv_db *db, int n, const int *ver, size_t (*key)(int, char *),
                     size_t (*val)(int, int, char *), uint64_t keys, uint64_t live)
{
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    assert_int_equal(st.live_keys, keys);
    assert_int_equal(bt_stat(db, "live_bytes"), live);
    char k[64], v[256];
    for (int i = 0; i < n; i++) {
        size_t kl = key(i, k);
        if (ver[i] < 0)
            bt_expect_get(db, k, kl, NULL, 0);
        else
            bt_expect_get(db, k, kl, v, val(i, ver[i], v));
    }
    assert_int_equal(kv_check(db), KV_OK);
}
