/* The interval syncer: calls, stop, error handling (behaviour, not timing). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "syncer.h"

typedef struct ctr {
    atomic_int calls;
    int fail_at; /* the call that returns KV_IO (0: never) */
} ctr;

static kv_status sync_fn(void *arg)
{
    ctr *c = arg;
    int n = atomic_fetch_add(&c->calls, 1) + 1;
    if (c->fail_at && n >= c->fail_at)
        return kv_error(KV_IO, "fdatasync(test): Input/output error");
    return KV_OK;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for at least n calls. */
static bool wait_calls(ctr *c, int n)
{
    for (int i = 0; i < 1000 && atomic_load(&c->calls) < n; i++)
        sleep_ms(10);
    return atomic_load(&c->calls) >= n;
}

static void test_calls_and_stop(void **state)
{
    (void)state;
    ctr c = {0};
    kv_syncer *s = kv_syncer_start(5, sync_fn, &c);
    assert_non_null(s);
    assert_true(wait_calls(&c, 2));
    assert_int_equal(kv_syncer_status(s), KV_OK);
    assert_int_equal(kv_syncer_stop(s), KV_OK);
    int after = atomic_load(&c.calls);
    sleep_ms(30);
    assert_int_equal(atomic_load(&c.calls), after); /* joined: no call after stop */
    assert_int_equal(kv_syncer_stop(NULL), KV_OK);
}

/* A long interval: stop must not wait for it (it would take an hour). */
static void test_stop_long_interval(void **state)
{
    (void)state;
    ctr c = {0};
    kv_syncer *s = kv_syncer_start(3600000, sync_fn, &c);
    assert_non_null(s);
    assert_int_equal(kv_syncer_stop(s), KV_OK);
    assert_int_equal(atomic_load(&c.calls), 0);
}

static void test_error_stops_calls(void **state)
{
    (void)state;
    ctr c = {.fail_at = 2};
    kv_syncer *s = kv_syncer_start(2, sync_fn, &c);
    assert_non_null(s);
    assert_true(wait_calls(&c, 2));
    for (int i = 0; i < 1000 && kv_syncer_status(s) == KV_OK; i++)
        sleep_ms(10);
    assert_int_equal(kv_syncer_status(s), KV_IO);
    sleep_ms(30);
    assert_int_equal(atomic_load(&c.calls), 2); /* never retried */
    kv_errclear();
    assert_int_equal(kv_syncer_stop(s), KV_IO);
    assert_non_null(strstr(kv_errmsg(), "fdatasync(test)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_and_stop),
        cmocka_unit_test(test_stop_long_interval),
        cmocka_unit_test(test_error_stops_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
