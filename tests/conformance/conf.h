/* conf.h: helpers of the conformance suite (test_conformance.c), which runs every kvlab engine
 * and peer through the kv.h interface only (docs/design.md section 2). */
#ifndef KVLAB_CONF_H
#define KVLAB_CONF_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kv.h"

/* The engine under test (argv[1]) and its declared limits and durability modes. */
extern const char *conf_engine;
extern kv_limits conf_limits;
extern unsigned conf_mask;

/* Fails the test with the call, status and kv_errmsg() unless expr returns want. */
#define EXPECT_STATUS(expr, want)                                                                  \
    do {                                                                                           \
        kv_status s_ = (expr);                                                                     \
        if (s_ != (want))                                                                          \
            fail_msg("%s:%d: %s returned %s (wanted %s): %s", __FILE__, __LINE__, #expr,           \
                     kv_strerror(s_), kv_strerror(want), kv_errmsg());                             \
    } while (0)
#define EXPECT_OK(expr) EXPECT_STATUS(expr, KV_OK)

/* A new scratch directory for this engine (free with conf_dir_done). */
char *conf_dir(const char *tag);
/* Removes the directory and frees the path. */
void conf_dir_done(char *dir);

/* Opens dir with the engine in durability mode `dur` ("os", "sync", ...); fails the test on
 * error. */
kv_db *conf_open(const char *dir, const char *dur);

/* Asserts that key holds exactly (val, vlen). */
void conf_expect(kv_db *db, const void *key, size_t klen, const void *val, size_t vlen);
/* Asserts that key is absent. */
void conf_expect_missing(kv_db *db, const void *key, size_t klen);
/* Number of keys seen by a full iteration (and checks the iterator status). */
size_t conf_count(kv_db *db);

/* memcmp-then-length order. */
int conf_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* The tests defined outside test_conformance.c (cmocka test functions). */
void test_batches(void **state);
void test_iter_snapshot(void **state);
void test_threads(void **state);
void test_order(void **state);
void test_durability_modes(void **state);
void test_differential(void **state);
void test_read_only(void **state);

/* ---- the in-memory model of the differential test: a sorted array ---- */

typedef struct conf_entry {
    uint8_t *k, *v;
    size_t klen, vlen;
} conf_entry;

typedef struct conf_model {
    conf_entry *e;
    size_t n, cap;
} conf_model;

/* Index of the first entry >= key. */
size_t model_lower(const conf_model *m, const void *key, size_t klen);
/* The entry of key or NULL. */
const conf_entry *model_get(const conf_model *m, const void *key, size_t klen);
void model_put(conf_model *m, const void *key, size_t klen, const void *v, size_t vlen);
void model_del(conf_model *m, const void *key, size_t klen);
void model_free(conf_model *m);

#endif
