/* gnuplot plots of a benchmark (report.h): data files plus one script, rendered as SVG and
 * PNG: throughput per workload per engine, throughput against durability mode (write
 * workloads), latency percentiles per workload, write and space amplification. Log scales
 * where figures span decades. The null engine is left out (it is in the overhead table). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_null.h"
#include "report_int.h"

#define MAX_ENGINES 32

static const bench_row *find(const bench_row *rows, size_t n, const bench_row *group,
                             const char *engine)
{
    for (size_t i = 0; i < n; i++)
        if (report_same_group(&rows[i], group) && !strcmp(rows[i].engine, engine) && !rows[i].na &&
            rows[i].ops)
            return &rows[i];
    return NULL;
}

typedef double (*metric_fn)(const bench_row *r);
static double m_ops(const bench_row *r)
{
    return r->ops_per_sec;
}
static double m_wamp(const bench_row *r)
{
    return r->write_amp;
}
static double m_samp(const bench_row *r)
{
    return r->space_amp;
}

static void value(FILE *f, double v, bool log)
{
    if (isnan(v) || (log && v <= 0))
        fputs(" ?", f);
    else
        fprintf(f, " %.6g", v);
}

/* 0 none, 1 os, 2 interval:MS, 3 sync. */
static int mode_rank(const char *mode)
{
    if (!strcmp(mode, "none"))
        return 0;
    if (!strcmp(mode, "os"))
        return 1;
    if (!strncmp(mode, "interval", 8))
        return 2;
    return 3;
}

/* The x label of a group: "ycsb-a/os/t1" (writes_only: "os/fillrandom/t1"), with "/1M" when
 * the report has several record counts and "/20k/s" for a --rate run. */
static void group_label(FILE *f, const report_ctx *c, const bench_row *gr, bool writes_only)
{
    char a[24];
    if (writes_only)
        fprintf(f, "%s/%s/t%u", gr->durability, gr->workload, gr->threads);
    else
        fprintf(f, "%s/%s/t%u", gr->workload, gr->durability, gr->threads);
    if (c->multi_num)
        fprintf(f, "/%s", md_count(gr->num, a, sizeof a));
    if (gr->rate)
        fprintf(f, "/%s/s", md_count(gr->rate, a, sizeof a));
    if (gr->cpu_load) /* --cpu-load */
        fprintf(f, "/load%u", gr->cpu_load);
}

/* A table with one line per group (filtered) and one column per engine. Returns the lines.
 * recover groups are left out (they have no operations to count). */
static size_t write_group_table(const char *path, const report_ctx *c, const bench_row *rows,
                                size_t n, const char **eng, size_t ne, metric_fn m,
                                bool writes_only, bool log)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    size_t groups[256], lines = 0;
    size_t ng = report_groups(rows, n, groups, 256);
    fprintf(f, "group");
    for (size_t e = 0; e < ne; e++)
        fprintf(f, " %s", eng[e]);
    fprintf(f, "\n");
    /* The durability plot orders its groups by mode: none, os, interval, sync. */
    for (int pass = 0; pass < (writes_only ? 4 : 1); pass++)
        for (size_t g = 0; g < ng; g++) {
            const bench_row *gr = &rows[groups[g]];
            if (!strcmp(gr->workload, "recover"))
                continue;
            if (writes_only &&
                (!report_is_write_workload(gr->workload) || mode_rank(gr->durability) != pass))
                continue;
            bool any = false;
            for (size_t e = 0; e < ne; e++) {
                const bench_row *r = find(rows, n, gr, eng[e]);
                any |= r && !isnan(m(r)) && (!log || m(r) > 0);
            }
            if (!any)
                continue;
            group_label(f, c, gr, writes_only);
            for (size_t e = 0; e < ne; e++) {
                const bench_row *r = find(rows, n, gr, eng[e]);
                value(f, r ? m(r) : NAN, log);
            }
            fprintf(f, "\n");
            lines++;
        }
    fclose(f);
    return lines;
}

static void histogram_plot(FILE *gp, const char *dat, const char *title, const char *ylabel,
                           bool log, size_t columns)
{
    fprintf(gp, "set title '%s'\nset ylabel '%s'\n%s\n", title, ylabel,
            log ? "set logscale y" : "unset logscale y");
    fprintf(gp, "plot for [i=2:%zu] '%s' using i:xtic(1) title columnheader(i)\n", columns + 1,
            dat);
}

const char plots_common_style[] = "set datafile missing '?'\n"
                                  "set style data histograms\n"
                                  "set style histogram clustered gap 1\n"
                                  "set style fill solid 0.85 border -1\n"
                                  "set boxwidth 0.9\n"
                                  "set xtics rotate by -30 scale 0\n"
                                  "set key outside right top\n"
                                  "set grid ytics\n"
                                  "set yrange [*:*]\n";

void plots_terminal(FILE *gp, bool svg, const char *name, int w, int h)
{
    if (svg)
        fprintf(gp,
                "set terminal svg size %d,%d dynamic noenhanced background rgb 'white' "
                "font 'sans,11'\n",
                w, h);
    else
        fprintf(gp, "set terminal pngcairo size %d,%d noenhanced font 'sans,10'\n", w, h);
    fprintf(gp, "set output '%s.%s'\n", name, svg ? "svg" : "png");
}

bool report_plots(const char *dir, report_ctx *ctx, const bench_row *rows, size_t n)
{
    ctx->plots_made = false;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        snprintf(ctx->plots_note, sizeof ctx->plots_note,
                 "gnuplot was not found, so there are no plots (install gnuplot-nox)");
        return false;
    }
    if (strchr(dir, '\'')) {
        snprintf(ctx->plots_note, sizeof ctx->plots_note,
                 "no plots: the output directory name contains a quote");
        return false;
    }
    const char *eng[MAX_ENGINES];
    size_t ne = md_engines(rows, n, eng, MAX_ENGINES);
    if (ne == 0) {
        snprintf(ctx->plots_note, sizeof ctx->plots_note, "no plots: only the null engine ran");
        return false;
    }
    char path[2048];
    snprintf(path, sizeof path, "%s/throughput.dat", dir);
    size_t l_tp = write_group_table(path, ctx, rows, n, eng, ne, m_ops, false, true);
    snprintf(path, sizeof path, "%s/durability.dat", dir);
    size_t l_du = write_group_table(path, ctx, rows, n, eng, ne, m_ops, true, true);
    snprintf(path, sizeof path, "%s/write_amp.dat", dir);
    size_t l_wa = write_group_table(path, ctx, rows, n, eng, ne, m_wamp, false, true);
    snprintf(path, sizeof path, "%s/space_amp.dat", dir);
    size_t l_sa = write_group_table(path, ctx, rows, n, eng, ne, m_samp, false, false);

    /* Latency tables: one per group, one line per engine. */
    size_t groups[256];
    size_t ng = report_groups(rows, n, groups, 256);
    bool lat_ok[256] = {false};
    for (size_t g = 0; g < ng; g++) {
        char slug[160];
        if (!strcmp(rows[groups[g]].workload, "recover"))
            continue;
        report_slug(&rows[groups[g]], slug, sizeof slug, ctx->multi_num, true);
        snprintf(path, sizeof path, "%s/latency-%s.dat", dir, slug);
        FILE *f = fopen(path, "w");
        if (!f)
            continue;
        fprintf(f, "engine p50 p90 p99 p99.9 max\n");
        for (size_t e = 0; e < ne; e++) {
            const bench_row *r = find(rows, n, &rows[groups[g]], eng[e]);
            if (!r)
                continue;
            fprintf(f, "%s", eng[e]);
            value(f, r->p50_us, true);
            value(f, r->p90_us, true);
            value(f, r->p99_us, true);
            value(f, r->p999_us, true);
            value(f, r->max_us, true);
            fprintf(f, "\n");
            lat_ok[g] = true;
        }
        fclose(f);
    }

    snprintf(path, sizeof path, "%s/plots.gp", dir);
    FILE *gp = fopen(path, "w");
    if (!gp) {
        snprintf(ctx->plots_note, sizeof ctx->plots_note, "no plots: cannot write %.400s", path);
        return false;
    }
    fprintf(gp, "# Generated by kvlab bench: gnuplot plots.gp (in this directory)\n%s",
            plots_common_style);
    for (int svg = 1; svg >= 0; svg--) {
        if (l_tp) {
            plots_terminal(gp, svg, "throughput", 1100, 520);
            histogram_plot(gp, "throughput.dat", "Throughput per workload (log scale)",
                           "operations per second", true, ne);
        }
        if (l_du) {
            plots_terminal(gp, svg, "durability", 1000, 480);
            histogram_plot(gp, "durability.dat",
                           "Write throughput against durability mode (log scale)",
                           "operations per second", true, ne);
        }
        if (l_wa || l_sa) {
            plots_terminal(gp, svg, "amplification", 1100, 900);
            fprintf(gp, "set multiplot layout 2,1\n");
            if (l_wa)
                histogram_plot(gp, "write_amp.dat",
                               "Write amplification (file bytes written / user bytes, log scale)",
                               "ratio", true, ne);
            if (l_sa)
                histogram_plot(gp, "space_amp.dat",
                               "Space amplification (disk bytes / live logical bytes)", "ratio",
                               false, ne);
            fprintf(gp, "unset multiplot\n");
        }
        for (size_t g = 0; g < ng; g++) {
            if (!lat_ok[g])
                continue;
            char slug[160], name[200], dat[220], title[300];
            const bench_row *gr = &rows[groups[g]];
            report_slug(gr, slug, sizeof slug, ctx->multi_num, true);
            snprintf(name, sizeof name, "latency-%s", slug);
            snprintf(dat, sizeof dat, "latency-%s.dat", slug);
            char label[160];
            snprintf(title, sizeof title, "Latency percentiles%s: %s (log scale)",
                     gr->rate ? " from the scheduled start" : "",
                     md_group_label(ctx, gr, label, sizeof label));
            plots_terminal(gp, svg, name, 900, 450);
            histogram_plot(gp, dat, title, "microseconds", true, 5);
        }
        plots_more(gp, dir, ctx, rows, n, eng, ne, svg, svg);
    }
    fclose(gp);
    char cmd[2300];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plots.gp > plots.log 2>&1", dir);
    if (system(cmd) != 0) {
        snprintf(ctx->plots_note, sizeof ctx->plots_note,
                 "gnuplot failed; its messages are in plots.log");
        return false;
    }
    ctx->plots_made = true;
    ctx->plots_note[0] = '\0';
    return true;
}
