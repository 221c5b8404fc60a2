/* bench/runner.c + workloads.c + recover.c: every workload runs to completion with 1 and 3
 * threads on the null engine, on one peer (lmdb when built) and on the first of kvlab's own
 * engines, with every read checked; recover kills its loading child (the kvlab executable) and
 * finds every acknowledged record; the row's figures are consistent (ops, amplification, page
 * cache, memory per key, open time, timeline, .hgrm files where they apply); a --rate run keeps
 * its rate and both latencies; every kvlab engine counts the log bytes its recovering open
 * replayed; an engine without a durability mode gets an n/a row, not an
 * error. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "bench.h"
#include "testutil.h"

#ifndef KVLAB_EXE
#define KVLAB_EXE ""
#endif

static bench_cfg cfg;
static char *dir;

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* lmdb when built, else the first peer, else NULL. */
static const char *peer_engine(void)
{
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], "lmdb"))
            return names[i];
    for (size_t i = 0; names[i]; i++)
        if (bench_is_peer(names[i]))
            return names[i];
    return NULL;
}

/* The first of kvlab's own engines (they count I/O through kv_stats), or NULL. */
static const char *own_engine(void)
{
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++)
        if (!bench_is_peer(names[i]))
            return names[i];
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    dir = tu_mkdtemp("bench-runs");
    char *argv[] = {"--num", "3000",       "--ops", "2000",  "--sync-ops",
                    "40",    "--scan-ops", "200",   "--dir", dir};
    char err[256];
    assert_int_equal(bench_parse_args(10, argv, &cfg, err, sizeof err), 0);
    snprintf(cfg.exe, sizeof cfg.exe, "%s", KVLAB_EXE);
    snprintf(cfg.out, sizeof cfg.out, "%s/out", dir);
    cfg.write_hgrm = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(dir);
    free(dir);
    return 0;
}

/* A recover run: n/a on null; elsewhere the child was killed at or after the kill point and
 * the recovering open found every acknowledged record (recover_run checks the records). */
static void check_recover(const bench_cfg *c, const run_spec *rs, bench_row *row, bool null)
{
    if (null || !c->exe[0]) {
        assert_true(row->na);
        return;
    }
    assert_false(row->na);
    assert_true(row->recovery.kill_at >= rs->num * 3 / 4 && row->recovery.kill_at < rs->num);
    assert_true(row->recovery.acked >= row->recovery.kill_at);
    assert_true(row->recovery.found >= row->recovery.acked &&
                row->recovery.found <= row->recovery.acked + 256);
    assert_true(row->ops == row->recovery.found);
    assert_true(row->open_seconds > 0 && row->seconds == row->open_seconds);
    assert_true(isnan(row->p99_us) && isnan(row->ops_per_sec));
    assert_true(row->page_cache_bytes != UINT64_MAX);
    assert_true(row->mem_per_key_bytes > 0);
    assert_true(row->space_amp > 0);
    if (!bench_is_peer(rs->engine))
        assert_true(row->recovery.read_bytes != UINT64_MAX && row->recovery.read_bytes > 0);
    bench_row_free(row);
}

/* Plans and runs every workload (durability os; fillsync in sync) on engine with threads. */
static void run_all(const char *engine, unsigned threads)
{
    static bench_cfg c;
    c = cfg;
    snprintf(c.engines[0], sizeof c.engines[0], "%s", engine);
    c.n_engines = 1;
    c.n_workloads = 0;
    for (const wl_def *w = wl_table; w->name; w++)
        snprintf(c.workloads[c.n_workloads++], sizeof c.workloads[0], "%s", w->name);
    c.threads[0] = threads;
    c.n_threads = 1;
    run_spec *plan;
    size_t n;
    char err[1024] = "";
    assert_true(bench_plan(&c, &plan, &n, err, sizeof err));
    assert_int_equal(n, c.n_workloads);
    for (size_t i = 0; i < n; i++) {
        const run_spec *rs = &plan[i];
        const wl_def *w = rs->wl;
        bench_row row;
        if (bench_run(&c, rs, &row, err, sizeof err) != 0)
            fail_msg("%s %s t%u: %s", engine, w->name, threads, err);
        bool null = !strcmp(engine, "null");
        if (w->kind == WL_RECOVER) {
            check_recover(&c, rs, &row, null);
            continue;
        }
        if (row.na)
            continue;
        assert_true(row.ops == rs->ops && row.ops > 0);
        assert_true(row.num == c.num && row.rate == 0);
        assert_true(isnan(row.svc_p99_us));
        /* the merged histogram's file */
        char path[2048];
        snprintf(path, sizeof path, "%s/hgrm/%s", c.out, row.hgrm);
        assert_true(row.hgrm[0] && file_exists(path));
        /* memory: the database's files in the page cache, per key with the heap */
        if (!null) {
            assert_true(row.page_cache_bytes != UINT64_MAX && row.page_cache_bytes > 0);
            assert_true(row.mem_per_key_bytes > 0);
            assert_true(row.open_seconds > 0);
        } else {
            assert_true(isnan(row.mem_per_key_bytes) && isnan(row.open_seconds));
        }
        /* the timeline counts every operation */
        assert_true(row.timeline.n > 0);
        double total = 0;
        for (size_t k = 0; k < row.timeline.n; k++)
            total += row.timeline.ops_per_sec[k] *
                     (k + 1 == row.timeline.n ? row.timeline.last_s : row.timeline.interval_s);
        assert_true(fabs(total - (double)row.ops) < 0.5);
        assert_true(row.seconds > 0 && row.ops_per_sec > 0);
        assert_true(row.p50_us <= row.p99_us && row.p99_us <= row.max_us);
        bool writes = w->kind == WL_FILLSEQ || w->kind == WL_FILLRANDOM || w->kind == WL_FILLSYNC ||
                      w->kind == WL_OVERWRITE || w->kind == WL_DELETERANDOM || w->update > 0 ||
                      w->insert > 0 || w->rmw > 0;
        if (null) {
            assert_true(isnan(row.write_amp) && isnan(row.space_amp));
        } else if (writes) {
            assert_false(isnan(row.write_amp));
            assert_true(row.user_bytes > 0);
        }
        if (!null && w->kind != WL_DELETERANDOM)
            assert_true(row.space_amp > 0);
        /* Sync calls: kvlab engines count them in kv_stats; a peer's are counted only by the
         * kvlab executable's interposer, which this test does not link: unknown (NaN). */
        if (!null && bench_is_peer(engine))
            assert_true(isnan(row.fsyncs_per_op));
        else if (!null && w->kind == WL_FILLSYNC)
            assert_true(row.fsyncs_per_op > 0);
        bench_row_free(&row);
    }
    free(plan);
}

static void test_null(void **state)
{
    (void)state;
    run_all("null", 1);
    run_all("null", 3);
}

static void test_peer(void **state)
{
    (void)state;
    const char *e = peer_engine();
    if (!e)
        skip();
    run_all(e, 1);
    run_all(e, 3);
}

static void test_own_engine(void **state)
{
    (void)state;
    const char *e = own_engine();
    if (!e)
        skip();
    run_all(e, 1);
    run_all(e, 3);
}

/* Open loop on a real engine: the rate is kept, service time is at most the corrected latency,
 * and both histograms are written. */
static void test_rate(void **state)
{
    (void)state;
    const char *e = own_engine();
    if (!e)
        skip();
    static bench_cfg c;
    c = cfg;
    c.arrival = ARRIVAL_POISSON;
    run_spec rs = {e, wl_find("ycsb-b"), {KV_DURABILITY_OS, 0}, 2, 3000, 2000, 3000, 4000, 0};
    bench_row row;
    char err[1024] = "";
    if (bench_run(&c, &rs, &row, err, sizeof err) != 0)
        fail_msg("%s: %s", e, err);
    assert_int_equal(row.ops, 2000);
    assert_int_equal(row.rate, 4000);
    /* 2000 operations at 4000/s: half a second, whatever the engine's speed */
    assert_true(row.seconds > 0.4 && row.seconds < 5);
    assert_true(row.svc_p50_us <= row.p50_us + 1 && row.svc_max_us <= row.max_us + 1);
    assert_true(row.svc_p50_us > 0);
    char path[2048];
    snprintf(path, sizeof path, "%s/hgrm/%s-ycsb-b-os-t2-n3000-r4000-service.hgrm", c.out, e);
    assert_true(file_exists(path));
    assert_true(row.timeline.n >= 4);
    bench_row_free(&row);
    /* readseq has no separate operations to schedule */
    rs.wl = wl_find("readseq");
    assert_int_equal(bench_run(&c, &rs, &row, err, sizeof err), 0);
    assert_true(row.na);
}

/* recover on every one of kvlab's own engines: each says how many bytes of its log the
 * recovering open replayed (the kill leaves records since the last checkpoint, flush or hint
 * file, so there is always some). The open's read bytes are no bound on it: an engine that
 * scans its log through a read-only mapping (btree) reads it without pread. */
static void test_recover_log_bytes(void **state)
{
    (void)state;
    if (!cfg.exe[0])
        skip();
    static bench_cfg c;
    c = cfg;
    c.n_engines = 0;
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++)
        if (!bench_is_peer(names[i]) && strcmp(names[i], "null") && c.n_engines < BENCH_MAX_ENGINES)
            snprintf(c.engines[c.n_engines++], sizeof c.engines[0], "%s", names[i]);
    if (c.n_engines == 0)
        skip();
    snprintf(c.workloads[0], sizeof c.workloads[0], "recover");
    c.n_workloads = 1;
    c.threads[0] = 1;
    c.n_threads = 1;
    run_spec *plan;
    size_t n;
    char err[1024] = "";
    assert_true(bench_plan(&c, &plan, &n, err, sizeof err));
    assert_int_equal(n, c.n_engines);
    for (size_t i = 0; i < n; i++) {
        bench_row row;
        if (bench_run(&c, &plan[i], &row, err, sizeof err) != 0)
            fail_msg("%s recover: %s", plan[i].engine, err);
        assert_false(row.na);
        if (row.recovery.log_replayed == UINT64_MAX || row.recovery.log_replayed == 0)
            fail_msg("%s: recovery_log_bytes %llu after a kill", plan[i].engine,
                     (unsigned long long)row.recovery.log_replayed);
        bench_row_free(&row);
    }
    free(plan);
}

static void test_na(void **state)
{
    (void)state;
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++) {
        unsigned mask = kv_engine_durability_mask(names[i]);
        for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC; k++) {
            if (mask & KV_DURABILITY_BIT(k))
                continue;
            run_spec rs = {
                names[i], wl_find("fillseq"), {(kv_durability_kind)k, 10}, 1, 0, 100, 100, 0, 0};
            bench_row row;
            char err[512];
            assert_int_equal(bench_run(&cfg, &rs, &row, err, sizeof err), 0);
            assert_true(row.na);
            assert_true(row.note[0] != '\0');
            return;
        }
    }
    skip(); /* every engine offers every mode */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_peer),
        cmocka_unit_test(test_own_engine),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_recover_log_bytes),
        cmocka_unit_test(test_na),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
