/* The pieces of kvlab bench's scale and memory figures: the timeline rebuilt from kept
 * latencies (closed loop and --rate), the lowest-second fraction, the .hgrm text, page-cache
 * residency by cachestat and mincore, the recover contract check and kill point, run names and
 * the engine configuration text. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"
#include "engine_config.h"
#include "hgrm.h"
#include "pagecache.h"
#include "recover.h"
#include "testutil.h"
#include "timeline.h"

#define MS 1000000ull /* ns (the tests set one tick to one ns) */

/* The benchmark clock's calibration (bench/clock.h; common/ has a clock.h of its own). */
extern double bench_ns_per_tick;
extern bool bench_use_tsc;

/* A finished thread of count operations with latencies lat (ticks) kept as the harness keeps
 * them (lat_keep: UINT32_MAX and the overflow list for large ones). */
static void fake_thread(wl_thread *t, wl_shared *sh, uint64_t count, const uint64_t *lat,
                        uint64_t start)
{
    memset(t, 0, sizeof *t);
    t->sh = sh;
    t->count = count;
    atomic_store(&t->done, count);
    t->start_tick = start;
    t->lat = calloc(count, sizeof *t->lat);
    assert_non_null(t->lat);
    for (uint64_t j = 0; j < count; j++) {
        if (lat[j] < UINT32_MAX) {
            t->lat[j] = (uint32_t)lat[j];
            continue;
        }
        t->lat[j] = UINT32_MAX;
        t->big = realloc(t->big, (t->n_big + 1) * sizeof *t->big);
        assert_non_null(t->big);
        t->big[t->n_big++] = (struct wl_big){j, lat[j]};
    }
}

static void clock_ns(void)
{
    bench_use_tsc = false;
    bench_ns_per_tick = 1.0;
}

/* Closed loop: 1 ms per operation for 2 s, except 100 operations in the middle at 2 ms each:
 * the intervals there complete half as many, the p99 doubles, the lowest second dips. */
static void test_timeline_closed(void **state)
{
    (void)state;
    clock_ns();
    wl_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.threads = 1;
    uint64_t n = 2000, lat[2000];
    for (uint64_t j = 0; j < n; j++)
        lat[j] = j >= 1000 && j < 1100 ? 2 * MS : MS;
    wl_thread t;
    fake_thread(&t, &sh, n, lat, 12345);
    bench_timeline tl;
    assert_true(timeline_build(&t, 1, &tl));
    assert_int_equal(tl.n, 21); /* 2.1 s */
    double total = 0, lowest = INFINITY, highest_p99 = 0;
    for (size_t k = 0; k < tl.n; k++) {
        double len = k + 1 == tl.n ? tl.last_s : tl.interval_s;
        total += tl.ops_per_sec[k] * len;
        if (k + 1 < tl.n && tl.ops_per_sec[k] < lowest)
            lowest = tl.ops_per_sec[k];
        if (tl.p99_us[k] > highest_p99)
            highest_p99 = tl.p99_us[k];
    }
    assert_true(fabs(total - (double)n) < 0.5);
    assert_true(lowest >= 450 && lowest <= 550);             /* 2 ms per op: 500/s */
    assert_true(fabs(highest_p99 - 2000.0) / 2000.0 < 0.01); /* µs, within 1% */
    assert_true(fabs(tl.p99_us[3] - 1000.0) / 1000.0 < 0.01);
    double mean = (double)n / 2.1;
    double f = timeline_min_window_fraction(&tl, 10, mean);
    /* the worst second holds the 200 slow ms: 900 operations against a mean of 952/s */
    assert_true(f > 0.85 && f < 0.99);
    assert_true(isnan(timeline_min_window_fraction(&tl, 30, mean))); /* too short */
    timeline_free(&tl);
    assert_null(tl.ops_per_sec);
    wl_thread_free(&t);
}

/* A latency above 2^32 ticks goes to the overflow list and still places the operations after
 * it; two threads add up. */
static void test_timeline_big_and_threads(void **state)
{
    (void)state;
    clock_ns();
    wl_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.threads = 2;
    uint64_t a[10], b[10];
    for (int j = 0; j < 10; j++) {
        a[j] = 10 * MS;
        b[j] = 10 * MS;
    }
    a[4] = 5000 * MS; /* 5 s */
    wl_thread ts[2];
    fake_thread(&ts[0], &sh, 10, a, 1000);
    fake_thread(&ts[1], &sh, 10, b, 1000);
    bench_timeline tl;
    assert_true(timeline_build(ts, 2, &tl));
    /* thread 0 ends at 5.09 s: 51 intervals; the first holds 4 + 9 operations (100 ms is the
     * second's) */
    assert_int_equal(tl.n, 51);
    assert_true(fabs(tl.ops_per_sec[0] - 130) < 1e-6);
    size_t k5 = (size_t)(5.04 / 0.1); /* the big one ended at 5.04 s */
    assert_true(tl.ops_per_sec[k5] > 0);
    assert_true(fabs(tl.p99_us[k5] - 5e6) / 5e6 < 0.01);
    assert_true(isnan(tl.p99_us[20])); /* nothing ended then */
    timeline_free(&tl);
    /* a thread without a latency array: no timeline */
    free(ts[1].lat);
    ts[1].lat = NULL;
    assert_false(timeline_build(ts, 2, &tl));
    assert_int_equal(tl.n, 0);
    wl_thread_free(&ts[0]);
    wl_thread_free(&ts[1]);
}

/* --rate: operation j is due j ms after the start and ends its corrected latency after that;
 * a 300 ms stall makes the operations queued behind it late, each by less. */
static void test_timeline_rate(void **state)
{
    (void)state;
    clock_ns();
    wl_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.threads = 1;
    sh.rate = 1000;
    uint64_t n = 1000, lat[1000];
    for (uint64_t j = 0; j < n; j++)
        lat[j] = 10000; /* 10 µs */
    /* operation 200 stalls 300 ms; 201..499 start late and catch up at once */
    for (uint64_t j = 200; j < 500; j++)
        lat[j] = 300 * MS - (j - 200) * MS + 10000;
    wl_thread t;
    fake_thread(&t, &sh, n, lat, 0);
    bench_timeline tl;
    assert_true(timeline_build(&t, 1, &tl));
    assert_int_equal(tl.n, 10);
    assert_true(fabs(tl.ops_per_sec[0] - 1000) < 1e-6);
    assert_true(tl.ops_per_sec[2] == 0 && tl.ops_per_sec[3] == 0 && tl.ops_per_sec[4] == 0);
    assert_true(tl.ops_per_sec[5] >= 3000); /* everything queued ends just after 0.5 s */
    assert_true(tl.p99_us[5] > 250000);
    timeline_free(&tl);
    wl_thread_free(&t);
}

/* Parses the data lines of .hgrm text: value, percentile, count. Returns how many. */
static size_t hgrm_lines(const char *text, double *v, double *p, unsigned long long *c, size_t max)
{
    size_t k = 0;
    const char *line = text;
    while (line && *line && k < max) {
        double a, b;
        unsigned long long n;
        if (line[0] != '#' && line[0] != '\n' && sscanf(line, "%lf %lf %llu", &a, &b, &n) == 3) {
            v[k] = a;
            p[k] = b;
            c[k] = n;
            k++;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return k;
}

static char *hgrm_text(const kv_histogram *h)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_true(hgrm_write(f, h));
    fclose(f);
    return buf;
}

static void test_hgrm(void **state)
{
    (void)state;
    kv_histogram *h = kv_histogram_new();
    for (uint64_t i = 1; i <= 10000; i++)
        kv_histogram_record(h, i * 1000); /* 1 µs .. 10 ms */
    char *s = hgrm_text(h);
    assert_true(!strncmp(s, "       Value     Percentile TotalCount 1/(1-Percentile)\n\n", 57));
    double v[400], p[400];
    unsigned long long c[400];
    size_t k = hgrm_lines(s, v, p, c, 400);
    assert_true(k > 30);
    assert_true(p[0] == 0.0 && c[0] == 1 && fabs(v[0] - 1.0) < 0.01);
    assert_true(p[k - 1] == 1.0 && c[k - 1] == 10000);
    for (size_t i = 1; i < k; i++)
        assert_true(v[i] >= v[i - 1] && p[i] >= p[i - 1] && c[i] >= c[i - 1]);
    /* HdrHistogram's steps: 0, 0.1, ..., 0.5, then 0.55, ...: the 0.5 line is the median */
    bool half = false;
    for (size_t i = 0; i < k; i++)
        if (p[i] == 0.5) {
            half = true;
            assert_true(fabs(v[i] - 5000.0) / 5000.0 < 0.01);
            assert_true(c[i] >= 5000 && c[i] <= 5050);
        }
    assert_true(half);
    assert_non_null(strstr(s, "#[Mean    =     5000.500, StdDeviation   ="));
    assert_non_null(strstr(s, "#[Max     =    10000.000, Total count    =        10000]\n"));
    assert_non_null(strstr(s, "#[Buckets =           35, SubBuckets     =          256]\n"));
    free(s);
    /* one value: the 0% line and the 100% line */
    kv_histogram_reset(h);
    kv_histogram_record(h, 42000);
    s = hgrm_text(h);
    k = hgrm_lines(s, v, p, c, 400);
    assert_int_equal(k, 2);
    assert_true(p[0] == 0.0 && p[1] == 1.0 && c[1] == 1);
    free(s);
    /* empty: the header and the summary */
    kv_histogram_reset(h);
    s = hgrm_text(h);
    assert_int_equal(hgrm_lines(s, v, p, c, 400), 0);
    assert_non_null(strstr(s, "Total count    =            0]"));
    free(s);
    kv_histogram_free(h);
}

/* A file just written is in the page cache; after fdatasync and POSIX_FADV_DONTNEED most of it
 * is not. Both methods agree. */
static void test_pagecache(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bench-pagecache");
    char path[1024], sub[1024];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/sub/data", dir);
    size_t size = 4u << 20;
    char *buf = malloc(size);
    assert_non_null(buf);
    memset(buf, 0x5a, size);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    snprintf(path, sizeof path, "%s/empty", dir);
    int fd0 = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    assert_true(fd0 >= 0);
    close(fd0);
    uint64_t b = 0;
    const char *used = NULL;
    assert_true(pc_dir_resident(dir, PC_MINCORE, &b, &used));
    assert_string_equal(used, "mincore");
    assert_true(b >= size && b <= size + 4096);
    bool have_cachestat = pc_dir_resident(dir, PC_CACHESTAT, &b, &used);
    if (have_cachestat) {
        assert_string_equal(used, "cachestat");
        assert_true(b >= size && b <= size + 4096);
    } else {
        assert_int_equal(errno, ENOSYS);
    }
    assert_true(pc_dir_resident(dir, PC_AUTO, &b, &used));
    assert_string_equal(used, have_cachestat ? "cachestat" : "mincore");
    struct statfs sf;
    assert_int_equal(fstatfs(fd, &sf), 0);
    if (sf.f_type != 0x01021994 /* tmpfs keeps its pages */) {
        assert_int_equal(fdatasync(fd), 0);
        assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
        assert_true(pc_dir_resident(dir, PC_MINCORE, &b, &used));
        assert_true(b < size / 2);
    }
    close(fd);
    assert_false(pc_dir_resident("/nonexistent/kvlab", PC_AUTO, &b, &used));
    free(buf);
    tu_rmtree(dir);
    free(dir);
}

static void set_seen(uint8_t *seen, uint64_t idx)
{
    seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
}

/* The contract of durability os after SIGKILL: every acknowledged record, the batch in flight
 * wholly or not at all, nothing else. */
static void test_recover_check(void **state)
{
    (void)state;
    const uint64_t num = 1000, seed = 3, acked = 512, submitted = 768;
    kvb_perm perm;
    kvb_perm_init(&perm, num, seed);
    uint8_t seen[num / 8 + 1];
    char msg[512];
    memset(seen, 0, sizeof seen);
    for (uint64_t j = 0; j < acked; j++)
        set_seen(seen, kvb_perm_at(&perm, j));
    assert_int_equal(recover_check(num, seed, seen, acked, acked, submitted, msg, sizeof msg), 0);
    for (uint64_t j = acked; j < submitted; j++)
        set_seen(seen, kvb_perm_at(&perm, j));
    assert_int_equal(recover_check(num, seed, seen, submitted, acked, submitted, msg, sizeof msg),
                     0);
    /* half of the batch in flight */
    seen[0] = 0;
    memset(seen, 0, sizeof seen);
    for (uint64_t j = 0; j < acked + 100; j++)
        set_seen(seen, kvb_perm_at(&perm, j));
    assert_int_equal(recover_check(num, seed, seen, acked + 100, acked, submitted, msg, sizeof msg),
                     -1);
    assert_non_null(strstr(msg, "half a batch"));
    /* an acknowledged record missing */
    memset(seen, 0, sizeof seen);
    for (uint64_t j = 1; j < acked; j++)
        set_seen(seen, kvb_perm_at(&perm, j));
    assert_int_equal(recover_check(num, seed, seen, acked - 1, acked, submitted, msg, sizeof msg),
                     -1);
    assert_non_null(strstr(msg, "1 of the 512 acknowledged records are missing"));
    /* a record never handed to the engine */
    set_seen(seen, kvb_perm_at(&perm, 0));
    set_seen(seen, kvb_perm_at(&perm, 900));
    assert_int_equal(recover_check(num, seed, seen, acked + 1, acked, submitted, msg, sizeof msg),
                     -1);
    assert_non_null(strstr(msg, "only 512 were written"));
    /* the kill point: seeded, in the last quarter, at least 1 */
    for (uint64_t s = 0; s < 50; s++) {
        uint64_t at = recover_kill_point(100000, s);
        assert_true(at >= 75000 && at < 100000);
        assert_int_equal(at, recover_kill_point(100000, s));
    }
    assert_true(recover_kill_point(100000, 1) != recover_kill_point(100000, 2));
    assert_int_equal(recover_kill_point(1, 7), 1);
    assert_int_equal(recover_kill_point(0, 7), 0);
    assert_true(recover_kill_point(3, 7) >= 1 && recover_kill_point(3, 7) < 3);
}

static void test_names_and_config(void **state)
{
    (void)state;
    bench_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.engine, sizeof r.engine, "lsm");
    snprintf(r.workload, sizeof r.workload, "ycsb-a");
    snprintf(r.durability, sizeof r.durability, "interval:5");
    r.threads = 2;
    r.num = 1000;
    char buf[256];
    assert_string_equal(bench_run_name(&r, buf, sizeof buf), "lsm-ycsb-a-interval-5-t2-n1000");
    r.rate = 300;
    assert_string_equal(bench_run_name(&r, buf, sizeof buf), "lsm-ycsb-a-interval-5-t2-n1000-r300");
    r.cpu_load = 2; /* beside --cpu-load 2: not the idle run's files */
    assert_string_equal(bench_run_name(&r, buf, sizeof buf),
                        "lsm-ycsb-a-interval-5-t2-n1000-r300-load2");
    r.cpu_load = 0;
    const char *const *names = kv_engine_names();
    char text[1024];
    for (size_t i = 0; names[i]; i++) {
        engine_config_text(names[i], 64ull << 20, text, sizeof text);
        assert_true(strlen(text) > 20);
        if (!strcmp(names[i], "btree") || !strcmp(names[i], "lsm") ||
            !strcmp(names[i], "leveldb") || !strcmp(names[i], "rocksdb") ||
            !strcmp(names[i], "sqlite"))
            assert_non_null(strstr(text, "64.0 MiB"));
        engine_config_text(names[i], 0, text, sizeof text);
        assert_null(strstr(text, "64.0 MiB of"));
    }
    assert_non_null(strstr(engine_config_text("null", 0, text, sizeof text), "harness"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeline_closed),  cmocka_unit_test(test_timeline_big_and_threads),
        cmocka_unit_test(test_timeline_rate),    cmocka_unit_test(test_hgrm),
        cmocka_unit_test(test_pagecache),        cmocka_unit_test(test_recover_check),
        cmocka_unit_test(test_names_and_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
