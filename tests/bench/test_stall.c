/* Coordinated omission, shown on an engine that stalls once: a test engine answers every get
 * at once with the value written, except one get that sleeps 100 ms. Run open loop (--rate
 * 2000/s), every operation scheduled behind the stall waits for it, so the latency from the
 * scheduled start (corrected) has its p99 near 100 ms while the service time's p99 stays at
 * microseconds; run closed loop, the stall is one operation among 2000 and hides in the max.
 * A behaviour test: the bounds are a factor of two from what a loaded 2-core machine gives.
 * The same engine, its batches slowed down, shows that a load longer than --max-seconds leaves
 * its run out (n/a) instead of measuring a database short of its records. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bench.h"
#include "testutil.h"

#define STALL_AT 500         /* the get that stalls (1-based) */
#define STALL_NS 100000000ll /* 100 ms */

typedef struct stall_db {
    kv_db base;
    _Atomic uint64_t gets;
} stall_db;

static kv_status st_open(const char *dir, kv_fs *fs, const kv_options *o, kv_db **out)
{
    (void)dir;
    (void)fs;
    (void)o;
    stall_db *d = calloc(1, sizeof *d);
    if (!d)
        return kv_error(KV_NOMEM, "stall: out of memory");
    *out = &d->base;
    return KV_OK;
}

static kv_status st_close(kv_db *db)
{
    free(db);
    return KV_OK;
}

static kv_status st_put(kv_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)db;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    return KV_OK;
}

/* The value the benchmark wrote: version 1 of the key's record (its load). */
static kv_status st_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    stall_db *d = (stall_db *)db;
    uint64_t idx;
    if (!kvb_key_parse(key, klen, klen, &idx))
        return KV_NOT_FOUND;
    if (atomic_fetch_add(&d->gets, 1) + 1 == STALL_AT) {
        struct timespec ts = {0, STALL_NS};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    uint8_t *v = malloc(100);
    if (!v)
        return kv_error(KV_NOMEM, "stall: out of memory");
    kvb_value(v, 100, idx, 1);
    *value = v;
    *vlen = 100;
    return KV_OK;
}

static kv_status st_del(kv_db *db, const void *k, size_t kl)
{
    return st_put(db, k, kl, NULL, 0);
}

/* Milliseconds each batch write sleeps (the slow-load test sets it). */
static long write_sleep_ms;

static kv_status st_write(kv_db *db, const kv_batch *b)
{
    (void)db;
    (void)b;
    if (write_sleep_ms) {
        struct timespec ts = {0, write_sleep_ms * 1000000l};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    return KV_OK;
}

static kv_status st_iter(kv_db *db, kv_iter **out)
{
    (void)db;
    (void)out;
    return kv_error(KV_NOTSUP, "stall: no iterators");
}

static kv_status st_sync(kv_db *db)
{
    (void)db;
    return KV_OK;
}

static kv_status st_stats(kv_db *db, kv_stats *out)
{
    (void)db;
    out->live_keys = UINT64_MAX;
    return KV_OK;
}

static kv_status st_check(kv_db *db)
{
    (void)db;
    return KV_OK;
}

static kv_status st_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    (void)db;
    (void)out;
    (void)file;
    (void)page;
    return KV_OK;
}

static const char *const no_options[] = {NULL};

static const kv_engine stall_engine = {
    .name = "stall",
    .description = "answers at once but for one get that sleeps 100 ms (tests only)",
    .option_help = no_options,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .open = st_open,
    .close = st_close,
    .put = st_put,
    .get = st_get,
    .del = st_del,
    .write = st_write,
    .iter_new = st_iter,
    .sync = st_sync,
    .stats = st_stats,
    .check = st_check,
    .dump = st_dump,
};

static bench_cfg cfg;
static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tu_mkdtemp("bench-stall");
    char *argv[] = {"--engines", "null", "--num", "1000", "--ops", "2000", "--dir", dir};
    char err[256];
    assert_int_equal(bench_parse_args(8, argv, &cfg, err, sizeof err), 0);
    bench_add_engine(&stall_engine);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(dir);
    free(dir);
    return 0;
}

static void run(uint64_t rate, bench_row *row)
{
    run_spec rs = {"stall", wl_find("readrandom"), {KV_DURABILITY_OS, 0}, 1, 1000, 2000, 1000, rate,
                   0};
    char err[1024] = "";
    if (bench_run(&cfg, &rs, row, err, sizeof err) != 0)
        fail_msg("stall run at rate %llu: %s", (unsigned long long)rate, err);
    assert_false(row->na);
    assert_int_equal(row->ops, 2000);
}

static void test_open_loop_shows_the_stall(void **state)
{
    (void)state;
    bench_row row;
    run(2000, &row); /* 1 s of operations, 200 of them due during the stall */
    /* the stall itself: one operation of 100 ms, in both measures */
    assert_true(row.svc_max_us >= 99000);
    assert_true(row.max_us >= 99000);
    /* corrected: the ~200 operations behind it (10%) waited up to 100 ms */
    assert_true(row.p99_us >= 50000);
    /* service time: the stall is 1 operation of 2000, below the 99th percentile */
    assert_true(row.svc_p99_us < 50000);
    assert_true(row.svc_p50_us < 1000);
    assert_true(row.p99_us > 10 * row.svc_p99_us);
    /* the achieved rate is the offered one: the queue drains after the stall */
    assert_true(row.ops_per_sec > 1000 && row.ops_per_sec < 2100);
    /* the timeline shows it: an interval whose p99 is the stall's */
    double worst = 0;
    for (size_t k = 0; k < row.timeline.n; k++)
        if (row.timeline.p99_us[k] > worst)
            worst = row.timeline.p99_us[k];
    assert_true(worst >= 50000);
    bench_row_free(&row);
}

static void test_closed_loop_hides_it(void **state)
{
    (void)state;
    bench_row row;
    run(0, &row);
    assert_true(row.max_us >= 99000);
    assert_true(row.p99_us < 50000); /* coordinated omission: one slow operation, p99 unmoved */
    assert_true(isnan(row.svc_p99_us));
    bench_row_free(&row);
}

/* 100 batches of 20 ms: a 2 s load against a 1 s limit. */
static void test_load_over_the_limit(void **state)
{
    (void)state;
    static bench_cfg c;
    c = cfg;
    c.max_seconds = 1;
    write_sleep_ms = 20;
    run_spec rs = {"stall", wl_find("readrandom"), {KV_DURABILITY_OS, 0}, 1, 25600, 1000, 25600, 0,
                   0};
    bench_row row;
    char err[1024] = "";
    assert_int_equal(bench_run(&c, &rs, &row, err, sizeof err), 0);
    write_sleep_ms = 0;
    assert_true(row.na && row.load_timed_out);
    assert_non_null(strstr(row.note, "the load stopped at the 1 s limit after"));
    assert_int_equal(row.ops, 0);
    bench_row_free(&row);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_loop_shows_the_stall),
        cmocka_unit_test(test_closed_loop_hides_it),
        cmocka_unit_test(test_load_over_the_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
