/* Helpers of the conformance suite: scratch directories, open, expectations, and the sorted
 * array model of the differential test. See conf.h. */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

const char *conf_engine;
kv_limits conf_limits;
unsigned conf_mask;

char *conf_dir(const char *tag)
{
    char name[128];
    snprintf(name, sizeof name, "conf-%s-%s", conf_engine, tag);
    return tu_mkdtemp(name);
}

void conf_dir_done(char *dir)
{
    tu_rmtree(dir);
    free(dir);
}

kv_db *conf_open(const char *dir, const char *dur)
{
    kv_options o;
    kv_options_init(&o);
    EXPECT_OK(kv_durability_parse(dur, &o.durability));
    kv_db *db = NULL;
    kv_status s = kv_open(conf_engine, dir, &o, &db);
    kv_options_free(&o);
    if (s != KV_OK)
        fail_msg("kv_open(%s, %s, durability %s): %s: %s", conf_engine, dir, dur, kv_strerror(s),
                 kv_errmsg());
    return db;
}

int conf_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

void conf_expect(kv_db *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    void *v = NULL;
    size_t n = 0;
    EXPECT_OK(kv_get(db, key, klen, &v, &n));
    assert_non_null(v);
    if (n != vlen || (vlen && memcmp(v, val, vlen)))
        fail_msg("key of %zu bytes: value of %zu bytes differs (wanted %zu bytes)", klen, n, vlen);
    kv_free(v);
}

void conf_expect_missing(kv_db *db, const void *key, size_t klen)
{
    void *v = NULL;
    size_t n = 0;
    EXPECT_STATUS(kv_get(db, key, klen, &v, &n), KV_NOT_FOUND);
}

size_t conf_count(kv_db *db)
{
    kv_iter *it = NULL;
    EXPECT_OK(kv_iter_new(db, &it));
    size_t n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    EXPECT_OK(kv_iter_status(it));
    kv_iter_free(it);
    return n;
}

size_t model_lower(const conf_model *m, const void *key, size_t klen)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (conf_cmp(m->e[mid].k, m->e[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const conf_entry *model_get(const conf_model *m, const void *key, size_t klen)
{
    size_t i = model_lower(m, key, klen);
    if (i < m->n && !conf_cmp(m->e[i].k, m->e[i].klen, key, klen))
        return &m->e[i];
    return NULL;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *r = malloc(n ? n : 1);
    assert_non_null(r);
    if (n)
        memcpy(r, p, n);
    return r;
}

void model_put(conf_model *m, const void *key, size_t klen, const void *v, size_t vlen)
{
    size_t i = model_lower(m, key, klen);
    if (i < m->n && !conf_cmp(m->e[i].k, m->e[i].klen, key, klen)) {
        free(m->e[i].v);
        m->e[i].v = dup_bytes(v, vlen);
        m->e[i].vlen = vlen;
        return;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
        assert_non_null(m->e);
    }
    memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof *m->e);
    m->e[i] = (conf_entry){dup_bytes(key, klen), dup_bytes(v, vlen), klen, vlen};
    m->n++;
}

void model_del(conf_model *m, const void *key, size_t klen)
{
    size_t i = model_lower(m, key, klen);
    if (i < m->n && !conf_cmp(m->e[i].k, m->e[i].klen, key, klen)) {
        free(m->e[i].k);
        free(m->e[i].v);
        memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
        m->n--;
    }
}

void model_free(conf_model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    free(m->e);
    memset(m, 0, sizeof *m);
}
