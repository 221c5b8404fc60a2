/* Memory statistics: jemalloc counters move with allocations (when built with it), peak RSS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"

static void test_peak_rss(void **state)
{
    (void)state;
    uint64_t before = kv_mem_peak_rss();
    assert_true(before > 0);
    size_t n = 64u << 20;
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 1, n); /* touch it: resident */
    uint64_t after = kv_mem_peak_rss();
    assert_true(after >= before);
    assert_true(after >= n);
    free(p);
}

static void test_allocated(void **state)
{
    (void)state;
    uint64_t a0 = kv_mem_allocated();
#ifdef KVLAB_SANITIZE
    /* no jemalloc in sanitizer builds: everything reads 0 */
    assert_int_equal(a0, 0);
    assert_int_equal(kv_mem_resident(), 0);
    skip();
#endif
    assert_true(a0 > 0);
    size_t n = 32u << 20;
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 2, n);
    uint64_t a1 = kv_mem_allocated();
    assert_true(a1 >= a0 + n);
    assert_true(kv_mem_resident() >= n);
    free(p);
    assert_true(kv_mem_allocated() < a1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peak_rss),
        cmocka_unit_test(test_allocated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
