/* `kvlab crash` as a command: flags, exit codes (0 ok, 1 violation, 2 usage), and a tiny run of
 * each mode on the first registered kvlab engine when there is one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crash.h"
#include "crash_tmp.h"
#include "testutil.h"

static char *workdir;

static int run(const char *first, ...)
{
    char *argv[40];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 38; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return kvlab_cmd_crash(argc, argv);
}

static const char *first_engine(void)
{
    for (const char *const *n = kv_engine_names(); *n; n++)
        if (strcmp(*n, "leveldb") && strcmp(*n, "rocksdb") && strcmp(*n, "lmdb") &&
            strcmp(*n, "sqlite"))
            return *n;
    return NULL;
}

static void test_usage(void **state)
{
    (void)state;
    assert_int_equal(run("--help", NULL), 0);
    assert_int_equal(run(NULL), 2);                               /* no --engine */
    assert_int_equal(run("--engine", "no-such-engine", NULL), 2); /* unknown engine */
    assert_int_equal(run("--engine", "x", "--policy", "gentle", NULL), 2);
    assert_int_equal(run("--engine", "x", "--durability", "fast", NULL), 2);
    assert_int_equal(run("--engine", "x", "--ops", "zero", NULL), 2);
    assert_int_equal(run("--engine", "x", "--bogus", "1", NULL), 2);
    assert_int_equal(run("--engine", "x", "-o", "novalue", NULL), 2);
    assert_int_equal(run("--engine", "x", "--points", NULL), 2); /* missing value */
}

static void test_tiny_runs(void **state)
{
    (void)state;
    const char *e = first_engine();
    if (!e) {
        fprintf(stderr, "no kvlab engine registered: only the usage checks ran\n");
        return;
    }
    assert_int_equal(run("--engine", e, "--durability", "sync", "--ops", "40", "--points", "10",
                         "--workdir", workdir, NULL),
                     0);
    assert_int_equal(run("--engine", e, "--workload", "nope", "--workdir", workdir, NULL), 2);
    assert_int_equal(
        run("--kill", "--engine", e, "--ops", "60", "--points", "2", "--workdir", workdir, NULL),
        0);
    /* a damage run that completes exits 0 (every answer right) or 1 (a wrong answer found, as
     * an engine not yet keeping the damage contract gives), and writes its table */
    char out[512], md[600];
    snprintf(out, sizeof out, "%s/damage-out", workdir);
    snprintf(md, sizeof md, "%s/damage-%s.md", out, e);
    int rc = run("--damage", "--engine", e, "--ops", "60", "--points", "3", "--workdir", workdir,
                 "--out", out, NULL);
    assert_true(rc == 0 || rc == 1);
    assert_int_equal(access(md, R_OK), 0);
}

static int setup(void **state)
{
    (void)state;
    workdir = crash_test_tmp("crash-cli");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(workdir);
    free(workdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_tiny_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
