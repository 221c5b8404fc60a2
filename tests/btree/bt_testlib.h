/* Helpers shared by the btree engine's tests: opening with options, keys, a model. */
#ifndef KVLAB_BT_TESTLIB_H
#define KVLAB_BT_TESTLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kv.h"
#include "testutil.h"

/* Opens dir with engine btree, durability text, optional fs and "k=v" extras (NULL-ended); the
 * extra "read_only" sets kv_options.read_only. */
static inline kv_status bt_open_opts(const char *dir, const char *dur, kv_fs *fs, uint64_t cache,
                                     kv_db **db, ...)
{
    kv_options o;
    kv_options_init(&o);
    if (dur)
        assert_int_equal(kv_durability_parse(dur, &o.durability), KV_OK);
    o.fs = fs;
    o.cache_size = cache;
    va_list ap;
    va_start(ap, db);
    const char *e;
    while ((e = va_arg(ap, const char *)) != NULL) {
        if (!strcmp(e, "read_only"))
            o.read_only = true;
        else
            assert_int_equal(kv_options_set(&o, e), KV_OK);
    }
    va_end(ap);
    kv_status s = kv_open("btree", dir, &o, db);
    kv_options_free(&o);
    return s;
}

/* The value of a stats extra counter (asserts it exists). */
static inline uint64_t bt_stat(kv_db *db, const char *name)
{
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    for (size_t i = 0; i < st.n_extra; i++)
        if (!strcmp(st.extra[i].name, name))
            return st.extra[i].value;
    fail_msg("no stat %s", name);
    return 0;
}

static inline void bt_assert_check(kv_db *db)
{
    kv_status s = kv_check(db);
    if (s != KV_OK) {
        char buf[1024];
        fail_msg("kv_check: %s", kv_last_error(db, buf, sizeof buf));
    }
}

/* Key i as fixed-width text "k%08u" (9 bytes) into buf. */
static inline size_t bt_key(char *buf, unsigned i)
{
    return (size_t)snprintf(buf, 32, "k%08u", i);
}

/* Deterministic value of length len for key i and version ver. */
static inline void bt_val(uint8_t *buf, size_t len, unsigned i, unsigned ver)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = (uint8_t)(i * 31 + ver * 7 + j);
}

#endif
