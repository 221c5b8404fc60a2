/* The outputs of kvlab bench in --out (docs/design.md section 7): results.csv, results.json,
 * report.md and gnuplot plots (SVG and PNG). */
#ifndef KVLAB_BENCH_REPORT_H
#define KVLAB_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bench.h"
#include "machine.h"

/* The header line of results.csv (no newline). */
extern const char report_csv_header[];

/* Writes one row of results.csv (with newline): numbers in C locale, empty fields for figures
 * that do not apply (write_amp of a read-only run, anything of null's I/O), "n/a" in every
 * figure of a run the engine cannot do; a field with a comma, quote or newline is quoted
 * RFC 4180 style. */
void report_csv_row(FILE *out, const bench_row *r);

/* Writes header and rows to path. Returns false (errno set) when the file cannot be written. */
bool report_csv_write(const char *path, const bench_row *rows, size_t n);

/* Everything the JSON and Markdown reports describe besides the rows. */
typedef struct report_ctx {
    const bench_cfg *cfg;
    const machine_info *machine;
    const char *commit;
    const char *started_utc; /* ISO 8601 */
    double total_seconds;
    const char *error; /* the error that stopped the benchmark, or NULL */
    bool plots_made;
    char plots_note[512]; /* why there are no plots ("gnuplot not found"), or "" */
    const char *bench_dir;
    bool multi_num; /* several record counts: group names carry the count */
} report_ctx;

/* Harness overhead: for a (workload, durability, threads) group, null's time per op against
 * the fastest engine's (time per op = 1 / throughput, wall clock). */
typedef struct overhead_row {
    char workload[48], durability[32];
    unsigned threads;
    uint64_t num;
    bool scan; /* a scan workload: no target, compared per returned record */
    double null_us, fastest_us, percent;
    double records_per_op; /* records the null engine returned and the harness checked, per op */
    char fastest[48];
} overhead_row;

/* Fills up to cap overhead rows from rows (closed-loop runs; --rate and recover runs have no
 * harness time per operation to compare); returns the count. */
size_t report_overhead(const bench_row *rows, size_t n, overhead_row *out, size_t cap);

/* results.json via jansson: {"machine", "git_commit", "options", "runs": [...],
 * "harness_overhead": [...], "error"}. Returns false when it cannot be written. */
bool report_json_write(const char *path, const report_ctx *ctx, const bench_row *rows, size_t n);

/* Writes the data files and gnuplot script into dir and runs gnuplot. On success returns true;
 * otherwise false with the reason in ctx->plots_note (gnuplot missing, or its error). */
bool report_plots(const char *dir, report_ctx *ctx, const bench_row *rows, size_t n);

/* report.md: machine, method, one table per workload, kvlab-vs-peer ratios, overhead, plots. */
bool report_md_write(const char *path, const report_ctx *ctx, const bench_row *rows, size_t n);

/* Groups: the distinct (workload, durability, threads, cpu load, records, rate) of rows in
 * first-seen order; returns the count and the index of the first row of each group in idx
 * (cap). */
size_t report_groups(const bench_row *rows, size_t n, size_t *idx, size_t cap);

/* Whether rows a and b are in the same group. */
bool report_same_group(const bench_row *a, const bench_row *b);

/* Whether a and b belong to the same series of a scaling plot (by_num: the same workload, mode,
 * threads, cpu load and rate, any record count) or of a latency-against-offered-load plot
 * (!by_num: the same but for the rate). */
bool report_same_series(const bench_row *a, const bench_row *b, bool by_num);

/* A file-name-safe name of r's group, "ycsb-a-os-t1", "fillsync-sync-t8-load2" (':', '/' and
 * ' ' become '-'), with "-r<rate>" for a --rate run, into buf. */
char *report_group_slug(const bench_row *r, char *buf, size_t cap);

/* The same with the record count ("-n<num>") when with_num, the rate when with_rate. */
char *report_slug(const bench_row *r, char *buf, size_t cap, bool with_num, bool with_rate);

/* " load2" for a run beside 2 busy-loop threads (--cpu-load 2), "" for a run on idle cores:
 * what tells a loaded group from the idle one in labels and file names (in .s, until the end of
 * the full expression that called it). */
typedef struct report_label {
    char s[16];
} report_label;
report_label report_load_label(const bench_row *r);

/* Records an operation of r returned or wrote on average (about 50 for a YCSB scan). */
double report_records_per_op(const bench_row *r);

/* Whether a workload's operations are scans (YCSB E): the overhead target is for point
 * operations only. */
bool report_is_scan_workload(const char *workload);

/* Whether a workload only writes (fills, overwrite, deleterandom): the durability plot's. */
bool report_is_write_workload(const char *workload);

#endif
