/* bench/report_csv.c: the exact columns of results.csv, number formats, empty fields for
 * figures that do not apply, "n/a" rows, RFC 4180 quoting, and the harness-overhead figures. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"
#include "testutil.h"

static bench_row row(const char *engine, const char *workload, double ops_per_sec)
{
    bench_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.engine, sizeof r.engine, "%s", engine);
    snprintf(r.workload, sizeof r.workload, "%s", workload);
    snprintf(r.durability, sizeof r.durability, "os");
    r.threads = 1;
    r.ops = 1000;
    r.seconds = 1000 / ops_per_sec;
    r.ops_per_sec = ops_per_sec;
    r.mb_per_sec = 1.5;
    r.p50_us = 1.25;
    r.p90_us = 2;
    r.p99_us = 3.5;
    r.p999_us = 10;
    r.max_us = 123.4567;
    r.write_amp = 2.5;
    r.space_amp = NAN;
    r.fsyncs_per_op = 0.25;
    r.peak_mem_bytes = 4096;
    r.num = 1000;
    r.svc_p50_us = r.svc_p99_us = NAN;
    r.page_cache_bytes = 8192;
    r.mem_per_key_bytes = 12.288;
    r.open_seconds = 0.25;
    r.min_1s_fraction = NAN;
    return r;
}

/* The text report_csv_row writes for r. */
static char *line_of(const bench_row *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    report_csv_row(f, r);
    fclose(f);
    return buf;
}

static void test_header(void **state)
{
    (void)state;
    assert_string_equal(report_csv_header,
                        "engine,workload,durability,threads,ops,seconds,ops_per_sec,mb_per_sec,"
                        "p50_us,p90_us,p99_us,p999_us,max_us,write_amp,space_amp,fsyncs_per_op,"
                        "peak_mem_bytes,cpu_load,records,rate,service_p50_us,service_p99_us,"
                        "page_cache_bytes,mem_per_key_bytes,open_s,min_1s_fraction");
}

static void test_rows(void **state)
{
    (void)state;
    bench_row r = row("lsm", "ycsb-a", 2000);
    char *s = line_of(&r);
    assert_string_equal(s, "lsm,ycsb-a,os,1,1000,0.500000,2000.0,1.500,1.250,2.000,3.500,"
                           "10.000,123.457,2.500,,0.2500,4096,0,1000,,,,8192,12.3,0.250000,\n");
    free(s);
    /* a --rate run: its rate and service times; unknown page cache and open time are empty */
    r.rate = 20000;
    r.svc_p50_us = 1.5;
    r.svc_p99_us = 7.25;
    r.page_cache_bytes = UINT64_MAX;
    r.mem_per_key_bytes = r.open_seconds = NAN;
    r.min_1s_fraction = 0.875;
    s = line_of(&r);
    assert_non_null(strstr(s, ",4096,0,1000,20000,1.500,7.250,,,,0.875\n"));
    free(s);
    r.na = true;
    r.rate = 0;
    snprintf(r.durability, sizeof r.durability, "interval:100");
    s = line_of(&r);
    assert_string_equal(s, "lsm,ycsb-a,interval:100,1,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,"
                           "n/a,n/a,n/a,n/a,0,1000,,n/a,n/a,n/a,n/a,n/a,n/a\n");
    free(s);
    r = row("we,ird", "say \"hi\"", 10);
    r.write_amp = r.fsyncs_per_op = NAN;
    s = line_of(&r);
    const char *want = "\"we,ird\",\"say \"\"hi\"\"\",os,1,1000,100.000000,10.0,";
    assert_true(!strncmp(s, want, strlen(want)));
    assert_non_null(strstr(s, ",123.457,,,,4096,0,1000,"));
    free(s);
    r = row("wal", "fillsync", 100);
    r.cpu_load = 2; /* a run beside 2 busy-loop threads */
    s = line_of(&r);
    assert_non_null(strstr(s, ",4096,2,1000,"));
    free(s);
}

static void test_file(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("bench-csv");
    char path[1024];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    bench_row rows[2] = {row("a", "fillseq", 10), row("b", "fillseq", 20)};
    assert_true(report_csv_write(path, rows, 2));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    assert_non_null(fgets(line, sizeof line, f));
    assert_true(!strncmp(line, report_csv_header, strlen(report_csv_header)));
    while (fgets(line, sizeof line, f)) {
        int commas = 0;
        for (char *p = line; *p; p++)
            commas += *p == ',';
        assert_int_equal(commas, 25);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 2);
    snprintf(path, sizeof path, "%s/no/such/dir/results.csv", dir);
    assert_false(report_csv_write(path, rows, 2));
    tu_rmtree(dir);
    free(dir);
}

static void test_overhead(void **state)
{
    (void)state;
    bench_row rows[5] = {row("null", "readrandom", 10e6), row("lmdb", "readrandom", 1e6),
                         row("sqlite", "readrandom", 2e5), row("lmdb", "fillseq", 1e5),
                         row("null", "ycsb-c", 5e6)};
    overhead_row o[4];
    size_t n = report_overhead(rows, 5, o, 4);
    assert_int_equal(n, 1); /* fillseq has no null run, ycsb-c no engine */
    assert_string_equal(o[0].workload, "readrandom");
    assert_string_equal(o[0].fastest, "lmdb");
    assert_true(fabs(o[0].null_us - 0.1) < 1e-9 && fabs(o[0].fastest_us - 1.0) < 1e-9);
    assert_true(fabs(o[0].percent - 10.0) < 1e-9);
    size_t g[8];
    assert_int_equal(report_groups(rows, 5, g, 8), 3);
    char slug[64];
    rows[0].threads = 8;
    snprintf(rows[0].durability, sizeof rows[0].durability, "interval:5");
    assert_string_equal(report_group_slug(&rows[0], slug, sizeof slug), "readrandom-interval-5-t8");
    rows[0].num = 1000000;
    rows[0].rate = 50000;
    assert_string_equal(report_group_slug(&rows[0], slug, sizeof slug),
                        "readrandom-interval-5-t8-r50000");
    assert_string_equal(report_slug(&rows[0], slug, sizeof slug, true, false),
                        "readrandom-interval-5-t8-n1000000");
    /* --rate and recover runs have no harness time per operation; groups split by count */
    bench_row more[4] = {row("null", "fillseq", 10e6), row("lsm", "fillseq", 1e6),
                         row("null", "fillseq", 10e6), row("lsm", "fillseq", 2e6)};
    more[2].num = more[3].num = 2000;
    assert_int_equal(report_groups(more, 4, g, 8), 2);
    assert_int_equal(report_overhead(more, 4, o, 4), 2);
    more[0].rate = more[1].rate = 100;
    assert_int_equal(report_groups(more, 4, g, 8), 2);
    assert_int_equal(report_overhead(more, 4, o, 4), 1);
    assert_int_equal(o[0].num, 2000);
    assert_false(o[0].scan);
    bench_row scan[2] = {row("null", "ycsb-e", 1e6), row("lsm", "ycsb-e", 1e5)};
    assert_int_equal(report_overhead(scan, 2, o, 4), 1);
    assert_true(o[0].scan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_overhead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
