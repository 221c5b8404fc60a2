/* A failed allocation is KV_NOMEM (common/status.h), never an I/O error, a corruption, a crash
 * or a lost acknowledged write.
 *
 * The program is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every
 * allocation kvlab's own code makes goes through the wrappers below; armed with n, the n-th
 * allocation of the testing thread from then on fails (the engines' background threads are never
 * failed, so what the test sees is the status of the call it made). For every kvlab engine and
 * for n = 1, 2, ... until the call no longer reaches its n-th allocation: kv_open of an existing
 * database, kv_put, kv_get and a whole scan each return KV_OK (or KV_NOT_FOUND) or KV_NOMEM with
 * the text "out of memory", and a reopen finds every put that returned KV_OK. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv.h"
#include "testutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

/* Allocations of this thread left before the one that fails; 0: disarmed. */
static _Thread_local unsigned long fail_in;

static int should_fail(void)
{
    return fail_in && --fail_in == 0;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

#define KEYS       300
#define MAX_TRIALS 20000

static void key_of(unsigned i, char *k, size_t *kl)
{
    *kl = (size_t)snprintf(k, 32, "key%06u", i);
}

static kv_db *open_db(const char *engine, const char *dir)
{
    kv_options o;
    kv_options_init(&o);
    kv_db *db = NULL;
    kv_status s = kv_open(engine, dir, &o, &db);
    if (s != KV_OK)
        fail_msg("%s: open: %s", engine, kv_errmsg());
    return db;
}

/* s must be one of ok1/ok2 or KV_NOMEM saying so. */
static void expect_ok_or_nomem(const char *engine, const char *what, unsigned long n, kv_status s,
                               kv_status ok1, kv_status ok2)
{
    if (s == ok1 || s == ok2)
        return;
    if (s == KV_NOMEM && strstr(kv_errmsg(), "out of memory"))
        return;
    fail_msg("%s: %s with allocation %lu failing: %s: %s", engine, what, n, kv_strerror(s),
             kv_errmsg());
}

static void one_engine(const char *engine)
{
    char *dir = tu_mkdtemp("nomem");
    kv_db *db = open_db(engine, dir);
    char k[32], v[64];
    size_t kl;
    for (unsigned i = 0; i < KEYS; i++) {
        key_of(i, k, &kl);
        int vl = snprintf(v, sizeof v, "value-%u", i);
        assert_int_equal(kv_put(db, k, kl, v, (size_t)vl), KV_OK);
    }
    assert_int_equal(kv_close(db), KV_OK);

    /* kv_open of an existing database */
    unsigned long n;
    for (n = 1; n < MAX_TRIALS; n++) {
        db = NULL;
        kv_options o;
        kv_options_init(&o);
        fail_in = n;
        kv_status s = kv_open(engine, dir, &o, &db);
        int reached = fail_in == 0;
        fail_in = 0;
        expect_ok_or_nomem(engine, "kv_open", n, s, KV_OK, KV_OK);
        if (s == KV_OK)
            assert_int_equal(kv_close(db), KV_OK);
        if (!reached)
            break;
    }
    fprintf(stderr, "  %s: kv_open met a failed allocation at each of its first %lu\n", engine,
            n - 1);

    /* kv_put, each on a fresh handle (an engine may poison its handle after a failed write:
     * the close then says so, and the reopen recovers); what returned KV_OK is there after a
     * reopen */
    unsigned next = KEYS;
    unsigned acked[MAX_TRIALS / 10];
    size_t nacked = 0;
    for (n = 1; n < MAX_TRIALS / 10; n++) {
        db = open_db(engine, dir);
        key_of(next, k, &kl);
        fail_in = n;
        kv_status s = kv_put(db, k, kl, "v", 1);
        int reached = fail_in == 0;
        fail_in = 0;
        expect_ok_or_nomem(engine, "kv_put", n, s, KV_OK, KV_OK);
        if (s == KV_OK)
            acked[nacked++] = next;
        next++;
        kv_status c = kv_close(db);
        if (c != KV_OK && !(s == KV_NOMEM && c == KV_POISONED))
            fail_msg("%s: kv_close after a put that returned %s: %s", engine, kv_strerror(s),
                     kv_errmsg());
        if (!reached)
            break;
    }
    fprintf(stderr, "  %s: kv_put met a failed allocation at each of its first %lu\n", engine,
            n - 1);
    db = open_db(engine, dir);

    /* kv_get */
    for (n = 1; n < MAX_TRIALS / 10; n++) {
        key_of(7, k, &kl);
        void *val = NULL;
        size_t vlen = 0;
        fail_in = n;
        kv_status s = kv_get(db, k, kl, &val, &vlen);
        int reached = fail_in == 0;
        fail_in = 0;
        expect_ok_or_nomem(engine, "kv_get", n, s, KV_OK, KV_OK);
        kv_free(val);
        if (!reached)
            break;
    }

    /* a whole scan */
    for (n = 1; n < MAX_TRIALS; n++) {
        kv_iter *it = NULL;
        fail_in = n;
        kv_status s = kv_iter_new(db, &it);
        size_t seen = 0;
        if (s == KV_OK) {
            for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
                seen++;
            s = kv_iter_status(it);
        }
        int reached = fail_in == 0;
        fail_in = 0;
        if (it)
            kv_iter_free(it);
        expect_ok_or_nomem(engine, "a scan", n, s, KV_OK, KV_OK);
        if (s == KV_OK)
            assert_true(seen >= KEYS);
        if (!reached)
            break;
    }
    assert_int_equal(kv_close(db), KV_OK);

    /* every acknowledged put is there */
    db = open_db(engine, dir);
    for (size_t i = 0; i < nacked; i++) {
        key_of(acked[i], k, &kl);
        void *val = NULL;
        size_t vlen = 0;
        if (kv_get(db, k, kl, &val, &vlen) != KV_OK)
            fail_msg("%s: key %u was acknowledged, then lost: %s", engine, acked[i], kv_errmsg());
        kv_free(val);
    }
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

static char **only; /* the engines named on the command line; NULL: every kvlab engine */

static bool wanted(const char *name)
{
    if (!only)
        return strcmp(name, "null") != 0;
    for (char **o = only; *o; o++)
        if (!strcmp(*o, name))
            return true;
    return false;
}

static void test_engines(void **state)
{
    (void)state;
    const char *const *names = kv_engine_names();
    int ran = 0;
    for (size_t i = 0; names[i]; i++) {
        if (!wanted(names[i]))
            continue;
        one_engine(names[i]);
        ran++;
    }
    assert_true(ran > 0);
}

/* usage: unit.nomem [ENGINE...] */
int main(int argc, char **argv)
{
    if (argc > 1)
        only = argv + 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
