/* The checker can fail: a deliberately broken toy engine (toy_engine.h) is caught, the correct
 * toy passes, in the power-loss, kill and I/O-error modes of the checker (damaged files:
 * test_damage.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crash.h"
#include "testutil.h"
#include "crash_tmp.h"
#include "toy_engine.h"

static char *workdir;
static uint64_t seed;

static crash_config cfg(kv_durability_kind mode, kv_crash_policy policy, const char *workload,
                        size_t ops, const char *const *options, size_t n_options)
{
    crash_config c;
    crash_config_init(&c);
    c.engine_vt = &toy_engine;
    c.durability.kind = mode;
    c.policy = policy;
    c.workload = workload;
    c.ops = ops;
    c.seed = seed;
    c.keys = 50;
    c.options = options;
    c.n_options = n_options;
    c.workdir = workdir;
    c.log = stderr;
    return c;
}

static void expect_clean(const crash_result *r)
{
    char buf[600];
    fprintf(stderr, "  %s\n", crash_result_format(r, buf, sizeof buf));
    if (r->violations)
        fprintf(stderr, "  first violation at %llu: %s\n", (unsigned long long)r->first_bad,
                r->first_violation);
    assert_int_equal(r->violations, 0);
    assert_true(r->points > 0);
    assert_true(r->recoveries >= r->points);
}

static void test_correct_toy_passes_power_loss(void **state)
{
    (void)state;
    static const struct {
        kv_durability_kind mode;
        kv_crash_policy policy;
        const char *workload;
    } runs[] = {
        {KV_DURABILITY_SYNC, KV_CRASH_LOSE, "mixed"},
        {KV_DURABILITY_SYNC, KV_CRASH_TORN, "mixed"},
        {KV_DURABILITY_OS, KV_CRASH_KEEP, "mixed"},
        {KV_DURABILITY_OS, KV_CRASH_RANDOM, "batches"},
        {KV_DURABILITY_NONE, KV_CRASH_RANDOM, "puts"},
        {KV_DURABILITY_NONE, KV_CRASH_KEEP, "mixed"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        crash_config c = cfg(runs[i].mode, runs[i].policy, runs[i].workload, 50, NULL, 0);
        c.sync_permille = 60;
        crash_result r;
        assert_int_equal(crash_run(&c, &r), KV_OK);
        expect_clean(&r);
        assert_true(r.fs_ops >= 10);
        /* every operation index was a crash point */
        assert_int_equal(r.points, r.fs_ops);
        if (runs[i].mode == KV_DURABILITY_SYNC || runs[i].policy == KV_CRASH_KEEP) {
            if (runs[i].mode != KV_DURABILITY_NONE)
                assert_int_equal(r.lost_writes, 0);
        }
    }
}

static void test_power_loss_loses_in_os_mode(void **state)
{
    (void)state;
    /* os under LOSE is allowed to lose a suffix, and does: the measurement is not vacuous */
    crash_config c = cfg(KV_DURABILITY_OS, KV_CRASH_LOSE, "puts", 40, NULL, 0);
    c.sync_permille = 0;
    crash_result r;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    expect_clean(&r);
    assert_true(r.lost_writes > 0);
}

static void test_broken_nosync_caught(void **state)
{
    (void)state;
    static const char *const opt[] = {"broken=nosync"};
    crash_config c = cfg(KV_DURABILITY_SYNC, KV_CRASH_LOSE, "mixed", 40, opt, 1);
    crash_result r;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    fprintf(stderr, "  nosync: %llu violations, first: %s\n", (unsigned long long)r.violations,
            r.first_violation);
    assert_true(r.violations > 0);
    assert_true(r.lost_violations > 0);
    /* the same bug is invisible to a process crash: keep loses nothing */
    c.policy = KV_CRASH_KEEP;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    assert_int_equal(r.violations, 0);
}

static void test_broken_nodirsync_caught(void **state)
{
    (void)state;
    static const char *const opt[] = {"broken=nodirsync"};
    crash_config c = cfg(KV_DURABILITY_SYNC, KV_CRASH_LOSE, "puts", 30, opt, 1);
    crash_result r;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    fprintf(stderr, "  nodirsync: %llu violations, first: %s\n", (unsigned long long)r.violations,
            r.first_violation);
    assert_true(r.violations > 0);
    assert_true(r.lost_violations > 0);
    /* the correct toy with the same settings passes */
    c.options = NULL;
    c.n_options = 0;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    expect_clean(&r);
}

static void test_broken_split_batch_caught(void **state)
{
    (void)state;
    static const char *const opt[] = {"broken=split"};
    crash_config c = cfg(KV_DURABILITY_OS, KV_CRASH_KEEP, "batches", 30, opt, 1);
    crash_result r;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    fprintf(stderr, "  split: %llu violations, %llu torn batches, first: %s\n",
            (unsigned long long)r.violations, (unsigned long long)r.torn_batches,
            r.first_violation);
    assert_true(r.violations > 0);
    assert_true(r.torn_batches > 0);
    /* replaying the first bad point alone reproduces it */
    c.at = r.first_bad;
    crash_result one;
    assert_int_equal(crash_run(&c, &one), KV_OK);
    assert_int_equal(one.points, 1);
    assert_int_equal(one.violations, 1);
}

static void test_sampled_points(void **state)
{
    (void)state;
    crash_config c = cfg(KV_DURABILITY_SYNC, KV_CRASH_RANDOM, "mixed", 60, NULL, 0);
    c.points = 25;
    crash_result r;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    expect_clean(&r);
    assert_int_equal(r.points, 25);
    assert_true(r.fs_ops > 25);
}

static void test_faults(void **state)
{
    (void)state;
    crash_config c = cfg(KV_DURABILITY_SYNC, KV_CRASH_LOSE, "mixed", 80, NULL, 0);
    crash_result r;
    assert_int_equal(crash_faults_run(&c, &r), KV_OK);
    expect_clean(&r);
    assert_int_equal(r.points, 3);
    static const char *const opt[] = {"broken=nosync"};
    c.options = opt;
    c.n_options = 1;
    assert_int_equal(crash_faults_run(&c, &r), KV_OK);
    fprintf(stderr, "  faults, nosync: %llu violations, first: %s\n",
            (unsigned long long)r.violations, r.first_violation);
    assert_true(r.violations > 0);
}

static void test_kills(void **state)
{
    (void)state;
    kv_durability_kind modes[] = {KV_DURABILITY_NONE, KV_DURABILITY_OS, KV_DURABILITY_SYNC};
    for (size_t i = 0; i < 3; i++) {
        crash_config c = cfg(modes[i], KV_CRASH_KEEP, "mixed", 300, NULL, 0);
        c.points = 8;
        crash_result r;
        assert_int_equal(crash_kill_run(&c, &r), KV_OK);
        expect_clean(&r);
        assert_int_equal(r.points, 8);
        if (modes[i] != KV_DURABILITY_NONE)
            assert_int_equal(r.lost_writes, 0);
    }
}

static void test_broken_lazy_caught_by_kills(void **state)
{
    (void)state;
    static const char *const opt[] = {"broken=lazy"};
    crash_config c = cfg(KV_DURABILITY_OS, KV_CRASH_KEEP, "puts", 600, opt, 1);
    c.sync_permille = 0;
    c.value_max = 400; /* a few hundred commits fill the 64 KiB buffer more than once */
    c.points = 8;
    crash_result r;
    assert_int_equal(crash_kill_run(&c, &r), KV_OK);
    fprintf(stderr, "  kill, lazy: %llu violations, first: %s\n", (unsigned long long)r.violations,
            r.first_violation);
    assert_true(r.violations > 0);
    assert_true(r.lost_violations > 0);
    /* the same toy declared as none keeps its promise */
    c.durability.kind = KV_DURABILITY_NONE;
    assert_int_equal(crash_kill_run(&c, &r), KV_OK);
    expect_clean(&r);
}

static int setup(void **state)
{
    (void)state;
    workdir = crash_test_tmp("crash-toy");
    seed = tu_seed(3);
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
        cmocka_unit_test(test_correct_toy_passes_power_loss),
        cmocka_unit_test(test_power_loss_loses_in_os_mode),
        cmocka_unit_test(test_broken_nosync_caught),
        cmocka_unit_test(test_broken_nodirsync_caught),
        cmocka_unit_test(test_broken_split_batch_caught),
        cmocka_unit_test(test_sampled_points),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_kills),
        cmocka_unit_test(test_broken_lazy_caught_by_kills),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
