/* The option bug=NAME (docs/lab.md) through the library: kv_open refuses it unless
 * kv_options.allow_bugs is set, before anything is created; with it, every bug of the four
 * engines opens, and an unknown name is refused with the list of the engine's bugs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kv.h"
#include "testutil.h"

static const struct {
    const char *engine;
    const char *bugs[5];
} engines[] = {
    {"btree", {"alloc_outside_log", "truncate_before_sync", "meta_outside_log", "no_data_fsync"}},
    {"lsm", {"wal_no_fsync", "table_no_fsync", "log_deleted_early", "no_dir_fsync"}},
    {"bitcask", {"no_fsync", "no_dir_fsync"}},
    {"wal", {"newest_first_truncation", "rewrite_in_place", "no_commit_record", "no_dir_fsync"}},
};

static void test_refused_without_allow(void **state)
{
    (void)state;
    char *base = tu_mkdtemp("bugopt");
    for (size_t e = 0; e < sizeof engines / sizeof *engines; e++) {
        if (!kv_engine_exists(engines[e].engine))
            continue;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", base, engines[e].engine);
        kv_options o;
        kv_options_init(&o);
        assert_false(o.allow_bugs);
        char opt[64];
        snprintf(opt, sizeof opt, "bug=%s", engines[e].bugs[0]);
        OK(kv_options_set(&o, opt));
        kv_db *db = NULL;
        assert_int_equal(kv_open(engines[e].engine, dir, &o, &db), KV_INVALID);
        assert_null(db);
        assert_non_null(strstr(kv_errmsg(), "allow_bugs"));
        struct stat st;
        assert_int_not_equal(stat(dir, &st), 0); /* nothing was created */
        kv_options_free(&o);
    }
    tu_rmtree(base);
    free(base);
}

static void test_allowed_and_unknown(void **state)
{
    (void)state;
    char *base = tu_mkdtemp("bugopt");
    for (size_t e = 0; e < sizeof engines / sizeof *engines; e++) {
        if (!kv_engine_exists(engines[e].engine))
            continue;
        for (size_t b = 0; b < 5 && engines[e].bugs[b]; b++) {
            char dir[512], opt[64];
            snprintf(dir, sizeof dir, "%s/%s-%zu", base, engines[e].engine, b);
            snprintf(opt, sizeof opt, "bug=%s", engines[e].bugs[b]);
            kv_options o;
            kv_options_init(&o);
            o.allow_bugs = true;
            OK(kv_options_set(&o, opt));
            kv_db *db = NULL;
            OK(kv_open(engines[e].engine, dir, &o, &db));
            OK(kv_put(db, "k", 1, "v", 1));
            OK(kv_close(db));
            kv_options_free(&o);
        }
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s-unknown", base, engines[e].engine);
        kv_options o;
        kv_options_init(&o);
        o.allow_bugs = true;
        OK(kv_options_set(&o, "bug=no_such_bug"));
        kv_db *db = NULL;
        assert_int_equal(kv_open(engines[e].engine, dir, &o, &db), KV_INVALID);
        assert_non_null(strstr(kv_errmsg(), engines[e].bugs[0]));
        kv_options_free(&o);
    }
    tu_rmtree(base);
    free(base);
}

static void test_get_bug(void **state)
{
    (void)state;
    static const char *const names[] = {"one", "two", NULL};
    kv_options o;
    kv_options_init(&o);
    int bug = 7;
    OK(kv_options_get_bug(&o, "x", names, &bug));
    assert_int_equal(bug, 7); /* unset: unchanged */
    OK(kv_options_set(&o, "bug=two"));
    assert_int_equal(kv_options_get_bug(&o, "x", names, &bug), KV_INVALID);
    assert_int_equal(bug, 7);
    o.allow_bugs = true;
    OK(kv_options_get_bug(&o, "x", names, &bug));
    assert_int_equal(bug, 2);
    OK(kv_options_set(&o, "bug=three"));
    assert_int_equal(kv_options_get_bug(&o, "x", names, &bug), KV_INVALID);
    assert_non_null(strstr(kv_errmsg(), "one, two"));
    kv_options_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_bug),
        cmocka_unit_test(test_refused_without_allow),
        cmocka_unit_test(test_allowed_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
