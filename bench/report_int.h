/* Helpers and sections shared by report_md.c and report_sections.c (not part of report.h's
 * interface). */
#ifndef KVLAB_BENCH_REPORT_INT_H
#define KVLAB_BENCH_REPORT_INT_H

#include <stdio.h>

#include "report.h"

/* A figure as a Markdown cell (" 1.23 |"), "–" when NAN. */
void md_fig(FILE *f, double v, const char *fmt);

/* A count as the flags write it: 100k, 1M, 20M, 1500 (exact multiples only), into buf. */
char *md_count(uint64_t n, char *buf, size_t cap);

/* "ycsb-a os t1", plus " n=1M" when the report has several record counts, plus " at 20k/s"
 * for a --rate run, plus " load2" beside --cpu-load 2, into buf. */
char *md_group_label(const report_ctx *c, const bench_row *r, char *buf, size_t cap);

/* The row of engine in r's group (not n/a, with operations), or NULL. */
const bench_row *md_find(const bench_row *rows, size_t n, const bench_row *group,
                         const char *engine);

/* Distinct engines of rows, null left out, in first-seen order; returns the count (<= cap). */
size_t md_engines(const bench_row *rows, size_t n, const char **out, size_t cap);

/* Distinct record counts of rows in ascending order; returns the count (<= cap). */
size_t md_nums(const bench_row *rows, size_t n, uint64_t *out, size_t cap);

/* New sections of report.md (report_sections.c). Each writes nothing when it has nothing. */
void md_config_section(FILE *f, const report_ctx *c);
void md_memory_method(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);
void md_recover_table(FILE *f, const report_ctx *c, const bench_row *rows, size_t n,
                      const bench_row *group);
void md_scaling_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);
void md_open_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);
void md_rate_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);
void md_timeline_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);
void md_scan_overhead(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);
void md_hgrm_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n);

/* The first rows of the distinct series with a usable (not n/a, not null) run: by_num, the
 * closed-loop series across record counts (scaling; recover left out); else the --rate series
 * across rates. Returns the count; idx receives the rows (cap). */
size_t md_series(const bench_row *rows, size_t n, bool by_num, size_t *idx, size_t cap);

/* The usable row of engine in series s at record count key (by_num) or rate key. */
const bench_row *md_series_row(const bench_row *rows, size_t n, const bench_row *s, bool by_num,
                               const char *engine, uint64_t key);

/* Figures of a scaling series, and whether any run of series s has a finite, positive one
 * (a plot panel without points would stop gnuplot). */
typedef enum md_metric { MD_OPS, MD_WRITE_AMP, MD_SPACE_AMP, MD_MEM_PER_KEY } md_metric;
double md_metric_of(const bench_row *r, md_metric m);
bool md_series_has(const bench_row *rows, size_t n, const bench_row *s, md_metric m);

/* The open after a clean close of engine at num records: the run of the first workload (set in
 * *workload when NULL) that loads before measuring. NULL when there is none. */
const bench_row *md_clean_open(const bench_row *rows, size_t n, const char *engine, uint64_t num,
                               const char **workload);

/* The usable recover run of engine at num records, or NULL. */
const bench_row *md_recover_row(const bench_row *rows, size_t n, const char *engine, uint64_t num);

/* Whether a run of group (other than null) kept a timeline: the timeline plot exists. */
bool md_has_timeline(const bench_row *rows, size_t n, const bench_row *group);

/* The plots of plots_scale.c, added to plots.gp: the timelines per group; with several record
 * counts the scaling plots per series (throughput, memory per key, amplification against
 * records) and open.svg; with --rate the p99 against offered load per series. Writes their
 * data files into dir when write_data, and the script for one terminal (svg or png) to gp;
 * ne engines eng (null excluded) give the lines. */
void plots_more(FILE *gp, const char *dir, const report_ctx *c, const bench_row *rows, size_t n,
                const char **eng, size_t ne, bool svg, bool write_data);

/* The terminal lines of a plot named name, and the settings every histogram plot starts from
 * (plots.c). */
void plots_terminal(FILE *gp, bool svg, const char *name, int w, int h);
extern const char plots_common_style[];

#endif
