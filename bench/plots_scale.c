/* Line plots of a benchmark (report_int.h, plots_more): throughput and p99 per 100 ms of each
 * workload (timeline-*), throughput, memory per key and amplification against records
 * (scaling-*, memory-*, scaling-amp-*; log-log), open and recovery time against records
 * (open), and p99 against offered load (rate-*). One data file per plot, one block (gnuplot
 * index) per engine, '?' for a missing figure. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_null.h"
#include "report_int.h"

#define MAX_ENG 32
#define MAX_NUM 16

static void val(FILE *f, double v, bool log)
{
    if (!isfinite(v) || (log && v <= 0))
        fputs(" ?", f);
    else
        fprintf(f, " %.6g", v);
}

static FILE *open_dat(const char *dir, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s.dat", dir, name);
    return fopen(path, "w");
}

/* The line style of a plot: a fresh state (the histogram settings off), a key outside. */
static void line_style(FILE *gp, const char *title)
{
    fprintf(gp,
            "reset\nset datafile missing '?'\nset key outside right top noenhanced\n"
            "set grid\nset title '%s' noenhanced\n",
            title);
}

/* "plot 'dat' index 0 using 1:COL with STYLE title 'NAME SUFFIX', ..." over the engines whose
 * blocks are in dat (have[e]). */
static void plot_blocks(FILE *gp, const char *dat, const char **eng, const bool *have, size_t ne,
                        int col, const char *style, const char *suffix, bool more)
{
    size_t idx = 0;
    bool first = true;
    if (!more)
        fprintf(gp, "plot");
    for (size_t e = 0; e < ne; e++) {
        if (!have[e])
            continue;
        fprintf(gp, "%s '%s' index %zu using 1:%d with %s lc %zu title '%s%s'",
                first && !more ? "" : ",", dat, idx, col, style, e + 1, eng[e], suffix);
        first = false;
        idx++;
    }
}

/* ---- timelines ---- */

static void timeline_plots(FILE *gp, const char *dir, const report_ctx *c, const bench_row *rows,
                           size_t n, const char **eng, size_t ne, bool svg, bool write_data)
{
    size_t groups[256];
    size_t ng = report_groups(rows, n, groups, 256);
    for (size_t g = 0; g < ng; g++) {
        const bench_row *gr = &rows[groups[g]];
        if (!md_has_timeline(rows, n, gr))
            continue;
        char slug[160], name[200], dat[220], label[160], title[300];
        report_slug(gr, slug, sizeof slug, c->multi_num, true);
        snprintf(name, sizeof name, "timeline-%s", slug);
        snprintf(dat, sizeof dat, "%s.dat", name);
        bool have[MAX_ENG] = {false};
        FILE *f = write_data ? open_dat(dir, name) : NULL;
        for (size_t e = 0; e < ne; e++) {
            const bench_row *r = md_find(rows, n, gr, eng[e]);
            if (!r || !r->timeline.n)
                continue;
            have[e] = true;
            if (!f)
                continue;
            fprintf(f, "# %s: seconds ops/s p99_us\n", eng[e]);
            const bench_timeline *t = &r->timeline;
            for (size_t k = 0; k < t->n; k++) {
                double mid =
                    (double)k * t->interval_s + (k + 1 == t->n ? t->last_s : t->interval_s) / 2;
                fprintf(f, "%.4f", mid);
                val(f, t->ops_per_sec[k], true);
                val(f, t->p99_us[k], true);
                fprintf(f, "\n");
            }
            fprintf(f, "\n\n");
        }
        if (f)
            fclose(f);
        md_group_label(c, gr, label, sizeof label);
        snprintf(title, sizeof title, "Throughput and p99 per 100 ms: %s", label);
        plots_terminal(gp, svg, name, 1000, 700);
        line_style(gp, title);
        fprintf(gp, "set multiplot layout 2,1\nset logscale y\nset ylabel 'operations per second'\n"
                    "set format x ''\n");
        plot_blocks(gp, dat, eng, have, ne, 2, "lines", "", false);
        fprintf(gp, "\nset title ''\nset format x '%%g'\nset xlabel 'seconds into the measured "
                    "phase'\nset ylabel 'p99 latency per interval, µs'\n");
        plot_blocks(gp, dat, eng, have, ne, 3, "lines", "", false);
        fprintf(gp, "\nunset multiplot\n");
    }
}

/* ---- against records ---- */

static void scaling_plots(FILE *gp, const char *dir, const bench_row *rows, size_t n,
                          const char **eng, size_t ne, bool svg, bool write_data)
{
    size_t idx[64];
    size_t ns = md_series(rows, n, true, idx, 64);
    uint64_t nums[MAX_NUM];
    size_t nn = md_nums(rows, n, nums, MAX_NUM);
    for (size_t k = 0; k < ns; k++) {
        const bench_row *s = &rows[idx[k]];
        char slug[160], dat[220], name[220], label[160], title[300];
        report_slug(s, slug, sizeof slug, false, true);
        snprintf(dat, sizeof dat, "scaling-%s.dat", slug);
        snprintf(name, sizeof name, "scaling-%s", slug);
        bool have[MAX_ENG] = {false};
        FILE *f = write_data ? open_dat(dir, name) : NULL;
        for (size_t e = 0; e < ne; e++) {
            for (size_t j = 0; j < nn; j++)
                have[e] |= md_series_row(rows, n, s, true, eng[e], nums[j]) != NULL;
            if (!have[e] || !f)
                continue;
            fprintf(f, "# %s: records ops/s write_amp space_amp mem_per_key_bytes\n", eng[e]);
            for (size_t j = 0; j < nn; j++) {
                const bench_row *r = md_series_row(rows, n, s, true, eng[e], nums[j]);
                if (!r)
                    continue;
                fprintf(f, "%llu", (unsigned long long)nums[j]);
                val(f, r->ops_per_sec, true);
                val(f, r->write_amp, true);
                val(f, r->space_amp, false);
                val(f, r->mem_per_key_bytes, true);
                fprintf(f, "\n");
            }
            fprintf(f, "\n\n");
        }
        if (f)
            fclose(f);
        snprintf(label, sizeof label, "%s %s t%u", s->workload, s->durability, s->threads);
        if (md_series_has(rows, n, s, MD_OPS)) {
            plots_terminal(gp, svg, name, 900, 550);
            snprintf(title, sizeof title, "Throughput against records: %s (log-log)", label);
            line_style(gp, title);
            fprintf(gp, "set logscale xy\nset xlabel 'records'\nset ylabel 'operations per "
                        "second'\n");
            plot_blocks(gp, dat, eng, have, ne, 2, "linespoints", "", false);
            fprintf(gp, "\n");
        }
        if (md_series_has(rows, n, s, MD_MEM_PER_KEY)) {
            snprintf(name, sizeof name, "memory-%s", slug);
            plots_terminal(gp, svg, name, 900, 550);
            snprintf(title, sizeof title,
                     "Memory per key, (peak heap + page cache) / live keys: %s (log-log)", label);
            line_style(gp, title);
            fprintf(gp, "set logscale xy\nset xlabel 'records'\nset ylabel 'bytes per key'\n");
            plot_blocks(gp, dat, eng, have, ne, 5, "linespoints", "", false);
            fprintf(gp, "\n");
        }
        bool wa = md_series_has(rows, n, s, MD_WRITE_AMP);
        bool sa = md_series_has(rows, n, s, MD_SPACE_AMP);
        if (!wa && !sa)
            continue;
        snprintf(name, sizeof name, "scaling-amp-%s", slug);
        plots_terminal(gp, svg, name, 900, wa && sa ? 800 : 450);
        line_style(gp, "");
        fprintf(gp, "set multiplot layout %d,1\nset logscale x\nset xlabel 'records'\n",
                wa && sa ? 2 : 1);
        if (wa) {
            fprintf(gp,
                    "set title 'Write amplification against records: %s (log-log)' "
                    "noenhanced\nset logscale y\nset ylabel 'file bytes written / user "
                    "bytes'\n",
                    label);
            plot_blocks(gp, dat, eng, have, ne, 3, "linespoints", "", false);
            fprintf(gp, "\n");
        }
        if (sa) {
            fprintf(gp,
                    "set title 'Space amplification against records: %s' noenhanced\n"
                    "unset logscale y\nset ylabel 'disk bytes / live logical bytes'\n",
                    label);
            plot_blocks(gp, dat, eng, have, ne, 4, "linespoints", "", false);
            fprintf(gp, "\n");
        }
        fprintf(gp, "unset multiplot\n");
    }
}

static void open_plot(FILE *gp, const char *dir, const bench_row *rows, size_t n, const char **eng,
                      size_t ne, bool svg, bool write_data)
{
    uint64_t nums[MAX_NUM];
    size_t nn = md_nums(rows, n, nums, MAX_NUM);
    const char *workload = NULL;
    bool have[MAX_ENG] = {false}, clean = false, recover = false;
    for (size_t e = 0; e < ne; e++)
        for (size_t j = 0; j < nn; j++) {
            const bench_row *a = md_clean_open(rows, n, eng[e], nums[j], &workload);
            const bench_row *b = md_recover_row(rows, n, eng[e], nums[j]);
            clean |= a && a->open_seconds > 0;
            recover |= b && b->open_seconds > 0;
            have[e] |= a || b;
        }
    if (!clean && !recover)
        return;
    FILE *f = write_data ? open_dat(dir, "open") : NULL;
    for (size_t e = 0; f && e < ne; e++) {
        if (!have[e])
            continue;
        fprintf(f, "# %s: records clean_open_s recovering_open_s\n", eng[e]);
        for (size_t j = 0; j < nn; j++) {
            const bench_row *a = md_clean_open(rows, n, eng[e], nums[j], &workload);
            const bench_row *b = md_recover_row(rows, n, eng[e], nums[j]);
            if (!a && !b)
                continue;
            fprintf(f, "%llu", (unsigned long long)nums[j]);
            val(f, a ? a->open_seconds : NAN, true);
            val(f, b ? b->open_seconds : NAN, true);
            fprintf(f, "\n");
        }
        fprintf(f, "\n\n");
    }
    if (f)
        fclose(f);
    plots_terminal(gp, svg, "open", 900, clean && recover ? 800 : 450);
    line_style(gp, "");
    fprintf(gp,
            "set multiplot layout %d,1\nset logscale xy\nset xlabel 'records'\n"
            "set ylabel 'seconds'\n",
            clean && recover ? 2 : 1);
    if (clean) {
        fprintf(gp, "set title 'Open after a clean close (%s) against records (log-log)'\n",
                workload);
        plot_blocks(gp, "open.dat", eng, have, ne, 2, "linespoints", "", false);
        fprintf(gp, "\n");
    }
    if (recover) {
        fprintf(gp, "set title 'Recovering open after SIGKILL against records (log-log)'\n");
        plot_blocks(gp, "open.dat", eng, have, ne, 3, "linespoints", "", false);
        fprintf(gp, "\n");
    }
    fprintf(gp, "unset multiplot\n");
}

/* ---- against offered load ---- */

static void rate_plots(FILE *gp, const char *dir, const report_ctx *c, const bench_row *rows,
                       size_t n, const char **eng, size_t ne, bool svg, bool write_data)
{
    size_t idx[64];
    size_t ns = md_series(rows, n, false, idx, 64);
    for (size_t k = 0; k < ns; k++) {
        const bench_row *s = &rows[idx[k]];
        char slug[160], name[200], dat[220], label[160], title[300];
        report_slug(s, slug, sizeof slug, c->multi_num, false);
        snprintf(name, sizeof name, "rate-%s", slug);
        snprintf(dat, sizeof dat, "%s.dat", name);
        bool have[MAX_ENG] = {false};
        FILE *f = write_data ? open_dat(dir, name) : NULL;
        for (size_t e = 0; e < ne; e++) {
            for (size_t i = 0; i < n; i++)
                have[e] |= rows[i].rate && md_series_row(rows, n, s, false, eng[e], rows[i].rate);
            if (!have[e] || !f)
                continue;
            fprintf(f, "# %s: offered_ops_per_sec achieved corrected_p99_us service_p99_us\n",
                    eng[e]);
            for (size_t i = 0; i < n; i++) {
                const bench_row *r = &rows[i];
                if (!r->rate || r != md_series_row(rows, n, s, false, eng[e], r->rate))
                    continue;
                fprintf(f, "%llu", (unsigned long long)r->rate);
                val(f, r->ops_per_sec, true);
                val(f, r->p99_us, true);
                val(f, r->svc_p99_us, true);
                fprintf(f, "\n");
            }
            fprintf(f, "\n\n");
        }
        if (f)
            fclose(f);
        snprintf(label, sizeof label, "%s %s t%u", s->workload, s->durability, s->threads);
        if (c->multi_num) {
            char a[24];
            size_t len = strlen(label);
            snprintf(label + len, sizeof label - len, " n=%s", md_count(s->num, a, sizeof a));
        }
        plots_terminal(gp, svg, name, 900, 550);
        snprintf(title, sizeof title,
                 "p99 against offered load: %s (solid: from the scheduled start; dashed: "
                 "service time)",
                 label);
        line_style(gp, title);
        fprintf(gp, "set logscale xy\nset xlabel 'offered operations per second'\n"
                    "set ylabel 'p99 latency, µs'\n");
        plot_blocks(gp, dat, eng, have, ne, 3, "linespoints dt 1", " corrected", false);
        plot_blocks(gp, dat, eng, have, ne, 4, "linespoints dt 2", " service", true);
        fprintf(gp, "\n");
    }
}

void plots_more(FILE *gp, const char *dir, const report_ctx *c, const bench_row *rows, size_t n,
                const char **eng, size_t ne, bool svg, bool write_data)
{
    if (ne > MAX_ENG)
        ne = MAX_ENG;
    timeline_plots(gp, dir, c, rows, n, eng, ne, svg, write_data);
    if (c->multi_num) {
        scaling_plots(gp, dir, rows, n, eng, ne, svg, write_data);
        open_plot(gp, dir, rows, n, eng, ne, svg, write_data);
    }
    rate_plots(gp, dir, c, rows, n, eng, ne, svg, write_data);
    /* back to what the histogram plots of the next terminal expect */
    fprintf(gp, "reset\n%s", plots_common_style);
}
