/* bench/bench_opts.c: kvlab bench's flags (defaults, lists, suffixes, every rejected value
 * with its one-line message) and the run plan (the matrix, fillsync always in sync, the
 * default suite, record-count and rate lists). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench.h"

static bench_cfg cfg;
static char err[512];

static int parse(int argc, char **argv)
{
    err[0] = '\0';
    return bench_parse_args(argc, argv, &cfg, err, sizeof err);
}

static bool has_engine(const char *name)
{
    for (size_t i = 0; i < cfg.n_engines; i++)
        if (!strcmp(cfg.engines[i], name))
            return true;
    return false;
}

static void test_defaults(void **state)
{
    (void)state;
    assert_int_equal(parse(0, NULL), 0);
    assert_true(has_engine("null"));
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++)
        assert_true(has_engine(names[i]));
    assert_int_equal(cfg.n_workloads, 2);
    assert_string_equal(cfg.workloads[0], "fillseq");
    assert_int_equal(cfg.n_threads, 1);
    assert_int_equal(cfg.threads[0], 1);
    assert_int_equal(cfg.n_durability, 1);
    assert_int_equal(cfg.durability[0].kind, KV_DURABILITY_OS);
    assert_true(cfg.num == 100000 && cfg.ops == 100000);
    assert_true(cfg.key_size == 16 && cfg.value_size == 100);
    assert_true(cfg.sync_ops == 1000 && cfg.scan_ops == 10000);
    assert_false(cfg.dir_given);
    assert_string_equal(cfg.out, "results/latest");
    assert_true(cfg.max_seconds == 0);
    assert_true(cfg.cache_size == 64ull << 20); /* one budget for every engine */
    assert_true(cfg.n_nums == 1 && cfg.nums[0] == 100000);
    assert_true(cfg.n_rates == 0 && cfg.arrival == ARRIVAL_CONSTANT);
    assert_true(cfg.exe[0] == '\0' && !cfg.write_hgrm);
}

static void test_values(void **state)
{
    (void)state;
    char *v[] = {"--engines",     "null",   "--workloads",  "ycsb-a,fillsync",
                 "--threads",     "1,2,8",  "--durability", "os,sync,interval:50",
                 "--num",         "20k",    "--ops",        "5000",
                 "--key-size",    "24",     "--value-size", "1K",
                 "--cache-size",  "64M",    "--seed",       "7",
                 "--dir",         "/tmp/x", "--out",        "o",
                 "--max-seconds", "30",     "--keep",       "--no-plots"};
    assert_int_equal(parse((int)(sizeof v / sizeof *v), v), 0);
    assert_int_equal(cfg.n_engines, 1);
    assert_int_equal(cfg.n_workloads, 2);
    assert_int_equal(cfg.n_threads, 3);
    assert_int_equal(cfg.threads[2], 8);
    assert_int_equal(cfg.n_durability, 3);
    assert_int_equal(cfg.durability[2].kind, KV_DURABILITY_INTERVAL);
    assert_int_equal(cfg.durability[2].interval_ms, 50);
    assert_true(cfg.num == 20000 && cfg.ops == 5000 && cfg.key_size == 24);
    assert_true(cfg.value_size == 1024 && cfg.cache_size == 64ull << 20 && cfg.seed == 7);
    assert_true(cfg.dir_given && !strcmp(cfg.dir, "/tmp/x") && !strcmp(cfg.out, "o"));
    assert_true(cfg.max_seconds == 30 && cfg.keep && cfg.no_plots);
    assert_non_null(strstr(cfg.cmdline, "kvlab bench --engines null"));

    run_spec *plan;
    size_t n;
    assert_true(bench_plan(&cfg, &plan, &n, err, sizeof err));
    /* ycsb-a: 3 modes x 3 thread counts; fillsync: once per thread count, in sync. */
    assert_int_equal(n, 9 + 3);
    size_t sync_runs = 0;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(plan[i].engine, "null");
        if (!strcmp(plan[i].wl->name, "fillsync")) {
            assert_int_equal(plan[i].durability.kind, KV_DURABILITY_SYNC);
            assert_true(plan[i].records == 0 && plan[i].ops == cfg.sync_ops);
            sync_runs++;
        } else {
            assert_true(plan[i].records == 20000 && plan[i].ops == 5000);
        }
    }
    assert_int_equal(sync_runs, 3);
    free(plan);
}

static void expect_error(int argc, char **argv, const char *want)
{
    assert_int_equal(parse(argc, argv), 2);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
    assert_null(strchr(err, '\n'));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error(1, (char *[]){"--foo"}, "unknown flag --foo");
    expect_error(2, (char *[]){"--num", "abc"}, "--num: 'abc' is not a number");
    expect_error(2, (char *[]){"--num", "0"}, "--num: 0 is outside");
    expect_error(2, (char *[]){"--threads", "0"}, "--threads: 0 is outside");
    expect_error(2, (char *[]){"--threads", "1,,2"}, "--threads: empty item");
    expect_error(2, (char *[]){"--durability", "fast"}, "--durability:");
    expect_error(2, (char *[]){"--durability", "interval:0"}, "--durability:");
    expect_error(2, (char *[]){"--engines", "nosuch"}, "unknown engine 'nosuch'");
    expect_error(2, (char *[]){"--workloads", "ycsb-z"}, "unknown workload 'ycsb-z'");
    expect_error(2, (char *[]){"--key-size", "70000"}, "--key-size:");
    expect_error(2, (char *[]){"--value-size", "1G"}, "--value-size:");
    expect_error(3, (char *[]){"--default", "--workloads", "fillseq"},
                 "--workloads cannot be combined with --default");
    expect_error(3, (char *[]){"--default", "--cpu-load", "1"},
                 "--cpu-load cannot be combined with --default");
    expect_error(2, (char *[]){"--cpu-load", "65"}, "--cpu-load: 65 is outside");
    expect_error(2, (char *[]){"--cpu-load", "x"}, "--cpu-load: 'x' is not a number");
    expect_error(4, (char *[]){"--engines", "null", "-o", "bloom_bits=3"},
                 "no chosen engine has that option");
    expect_error(4, (char *[]){"--engines", "null", "-o", "novalue"}, "want KEY=VALUE");
    expect_error(1, (char *[]){"--engines"}, "needs a value");
    expect_error(2, (char *[]){"--num", "100k,,1M"}, "--num: empty item");
    expect_error(2, (char *[]){"--num", "100k,x"}, "--num: 'x' is not a number");
    expect_error(2, (char *[]){"--num", "1,2,3,4,5,6,7,8,9"}, "--num:");
    expect_error(2, (char *[]){"--rate", "0"}, "--rate: 0 is outside");
    expect_error(2, (char *[]){"--rate", "fast"}, "--rate: 'fast' is not a number");
    expect_error(2, (char *[]){"--arrival", "bursty"}, "--arrival: 'bursty' is neither");
    assert_int_equal(parse(1, (char *[]){"--help"}), 1);
}

static void test_plan(void **state)
{
    (void)state;
    run_spec *plan;
    size_t n;
    /* Keys too short to number the records. */
    assert_int_equal(parse(6, (char *[]){"--engines", "null", "--num", "1000", "--key-size", "3"}),
                     0);
    assert_false(bench_plan(&cfg, &plan, &n, err, sizeof err));
    assert_non_null(strstr(err, "--key-size 3 cannot number"));
    /* The default suite: 7 workloads in os with 1 thread, fillsync in sync with 1 and 8, and
     * with 8 again beside 2 busy-loop threads. */
    assert_int_equal(parse(3, (char *[]){"--default", "--engines", "null"}), 0);
    assert_true(cfg.is_default && cfg.num == 200000 && cfg.max_seconds > 0);
    assert_true(bench_plan(&cfg, &plan, &n, err, sizeof err));
    assert_int_equal(n, 10);
    unsigned fs_threads = 0, loaded = 0;
    for (size_t i = 0; i < n; i++) {
        if (plan[i].cpu_load) { /* the last fillsync run only */
            assert_string_equal(plan[i].wl->name, "fillsync");
            assert_true(i == n - 1 && plan[i].threads == 8 && plan[i].cpu_load == 2);
            loaded++;
        }
        if (!strcmp(plan[i].wl->name, "fillsync")) {
            assert_int_equal(plan[i].durability.kind, KV_DURABILITY_SYNC);
            fs_threads += plan[i].threads;
        } else {
            assert_int_equal(plan[i].durability.kind, KV_DURABILITY_OS);
            assert_int_equal(plan[i].threads, 1);
        }
        if (!strcmp(plan[i].wl->name, "ycsb-e"))
            assert_true(plan[i].ops == cfg.scan_ops && plan[i].records == cfg.num);
    }
    assert_int_equal(fs_threads, 17);
    assert_int_equal(loaded, 1);
    free(plan);
    /* --cpu-load N: every run of the plan beside N busy-loop threads. */
    assert_int_equal(parse(8, (char *[]){"--engines", "null", "--workloads", "fillseq,fillsync",
                                         "--threads", "1,8", "--cpu-load", "3"}),
                     0);
    assert_int_equal(cfg.cpu_load, 3);
    assert_true(bench_plan(&cfg, &plan, &n, err, sizeof err));
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(plan[i].cpu_load, 3);
    free(plan);
    /* Record counts and rates: every run at each count, each rate a run; counts follow each
     * record count unless given; recover once per count, closed loop. */
    assert_int_equal(parse(8, (char *[]){"--engines", "null", "--workloads",
                                         "readrandom,ycsb-e,recover,fillrandom", "--num", "1k,20k",
                                         "--rate", "100,2k"}),
                     0);
    assert_true(cfg.n_nums == 2 && cfg.nums[0] == 1000 && cfg.nums[1] == 20000);
    assert_true(cfg.num == 1000 && cfg.ops == 1000 && cfg.scan_ops == 100);
    assert_true(cfg.n_rates == 2 && cfg.rates[1] == 2000);
    assert_true(bench_plan(&cfg, &plan, &n, err, sizeof err));
    assert_int_equal(n, 2 * (3 * 2 + 1));
    size_t recovers = 0;
    for (size_t i = 0; i < n; i++) {
        const run_spec *r = &plan[i];
        assert_true(r->num == 1000 || r->num == 20000);
        if (!strcmp(r->wl->name, "recover")) {
            recovers++;
            assert_true(r->rate == 0 && r->records == r->num && r->ops == r->num);
            continue;
        }
        assert_true(r->rate == 100 || r->rate == 2000);
        if (!strcmp(r->wl->name, "readrandom"))
            assert_true(r->records == r->num && r->ops == r->num);
        if (!strcmp(r->wl->name, "ycsb-e"))
            assert_true(r->ops == (r->num == 1000 ? 100 : 2000));
        if (!strcmp(r->wl->name, "fillrandom"))
            assert_true(r->records == 0 && r->ops == r->num);
    }
    assert_int_equal(recovers, 2);
    free(plan);
    /* --ops given: the same at every record count */
    assert_int_equal(parse(8, (char *[]){"--engines", "null", "--workloads", "readrandom", "--num",
                                         "1k,20k", "--ops", "500"}),
                     0);
    assert_true(bench_plan(&cfg, &plan, &n, err, sizeof err));
    assert_int_equal(n, 2);
    assert_true(plan[0].ops == 500 && plan[1].ops == 500 && plan[1].records == 20000);
    free(plan);
    /* the largest record count decides the key size needed */
    assert_int_equal(
        parse(6, (char *[]){"--engines", "null", "--num", "10,100000", "--key-size", "5"}), 0);
    assert_false(bench_plan(&cfg, &plan, &n, err, sizeof err));
    assert_int_equal(parse(4, (char *[]){"--arrival", "poisson", "--cache-size", "0"}), 0);
    assert_true(cfg.arrival == ARRIVAL_POISSON && cfg.cache_size == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
