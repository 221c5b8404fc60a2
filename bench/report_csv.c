/* results.csv and the helpers the other reports share (report.h). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bench_null.h"
#include "report.h"

const char report_csv_header[] =
    "engine,workload,durability,threads,ops,seconds,ops_per_sec,mb_per_sec,p50_us,p90_us,"
    "p99_us,p999_us,max_us,write_amp,space_amp,fsyncs_per_op,peak_mem_bytes,cpu_load,records,"
    "rate,service_p50_us,service_p99_us,page_cache_bytes,mem_per_key_bytes,open_s,"
    "min_1s_fraction";

static void field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void num(FILE *out, double v, int decimals)
{
    if (isnan(v))
        fputs(",", out);
    else
        fprintf(out, ",%.*f", decimals, v);
}

void report_csv_row(FILE *out, const bench_row *r)
{
    field(out, r->engine);
    fputc(',', out);
    field(out, r->workload);
    fputc(',', out);
    field(out, r->durability);
    fprintf(out, ",%u", r->threads);
    if (r->na) {
        for (int i = 0; i < 13; i++)
            fputs(",n/a", out);
        fprintf(out, ",%u,%llu,", r->cpu_load, (unsigned long long)r->num);
        if (r->rate)
            fprintf(out, "%llu", (unsigned long long)r->rate);
        for (int i = 0; i < 6; i++)
            fputs(",n/a", out);
        fputc('\n', out);
        return;
    }
    fprintf(out, ",%llu", (unsigned long long)r->ops);
    num(out, r->seconds, 6);
    num(out, r->ops_per_sec, 1);
    num(out, r->mb_per_sec, 3);
    num(out, r->p50_us, 3);
    num(out, r->p90_us, 3);
    num(out, r->p99_us, 3);
    num(out, r->p999_us, 3);
    num(out, r->max_us, 3);
    num(out, r->write_amp, 3);
    num(out, r->space_amp, 3);
    num(out, r->fsyncs_per_op, 4);
    fprintf(out, ",%llu,%u", (unsigned long long)r->peak_mem_bytes, r->cpu_load);
    fprintf(out, ",%llu,", (unsigned long long)r->num);
    if (r->rate)
        fprintf(out, "%llu", (unsigned long long)r->rate);
    num(out, r->svc_p50_us, 3);
    num(out, r->svc_p99_us, 3);
    if (r->page_cache_bytes == UINT64_MAX)
        fputs(",", out);
    else
        fprintf(out, ",%llu", (unsigned long long)r->page_cache_bytes);
    num(out, r->mem_per_key_bytes, 1);
    num(out, r->open_seconds, 6);
    num(out, r->min_1s_fraction, 3);
    fputc('\n', out);
}

bool report_csv_write(const char *path, const bench_row *rows, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "%s\n", report_csv_header);
    for (size_t i = 0; i < n; i++)
        report_csv_row(f, &rows[i]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        errno = errno ? errno : EIO;
        return false;
    }
    return true;
}

bool report_same_group(const bench_row *a, const bench_row *b)
{
    return !strcmp(a->workload, b->workload) && !strcmp(a->durability, b->durability) &&
           a->threads == b->threads && a->cpu_load == b->cpu_load && a->num == b->num &&
           a->rate == b->rate;
}

bool report_same_series(const bench_row *a, const bench_row *b, bool by_num)
{
    return !strcmp(a->workload, b->workload) && !strcmp(a->durability, b->durability) &&
           a->threads == b->threads && a->cpu_load == b->cpu_load &&
           (by_num ? a->rate == b->rate : a->num == b->num);
}

size_t report_groups(const bench_row *rows, size_t n, size_t *idx, size_t cap)
{
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < g && !seen; j++)
            seen = report_same_group(&rows[idx[j]], &rows[i]);
        if (!seen && g < cap)
            idx[g++] = i;
    }
    return g;
}

size_t report_overhead(const bench_row *rows, size_t n, overhead_row *out, size_t cap)
{
    size_t groups[256];
    size_t ng = report_groups(rows, n, groups, 256), k = 0;
    for (size_t g = 0; g < ng && k < cap; g++) {
        const bench_row *null = NULL, *fast = NULL;
        const bench_row *gr = &rows[groups[g]];
        if (gr->rate || !strcmp(gr->workload, "recover"))
            continue; /* time per op is the schedule's there, or there are no operations */
        for (size_t i = 0; i < n; i++) {
            const bench_row *r = &rows[i];
            if (!report_same_group(r, gr) || r->na || r->ops == 0 || r->ops_per_sec <= 0 ||
                r->cpu_load) /* the harness's cost on idle cores */
                continue;
            if (!strcmp(r->engine, BENCH_NULL_NAME))
                null = r;
            else if (!fast || r->ops_per_sec > fast->ops_per_sec)
                fast = r;
        }
        if (!null || !fast)
            continue;
        overhead_row *o = &out[k++];
        snprintf(o->workload, sizeof o->workload, "%s", null->workload);
        snprintf(o->durability, sizeof o->durability, "%s", null->durability);
        snprintf(o->fastest, sizeof o->fastest, "%s", fast->engine);
        o->threads = null->threads;
        o->num = null->num;
        o->scan = report_is_scan_workload(null->workload);
        o->null_us = 1e6 / null->ops_per_sec;
        o->fastest_us = 1e6 / fast->ops_per_sec;
        o->percent = 100.0 * o->null_us / o->fastest_us;
        o->records_per_op = report_records_per_op(null);
    }
    return k;
}

double report_records_per_op(const bench_row *r)
{
    double rec = (double)(r->key_size + r->value_size);
    if (!(rec > 0) || !r->ops)
        return 0;
    if (r->bytes_moved)
        return (double)r->bytes_moved / rec / (double)r->ops;
    /* rows made without the byte count (older results): from the rates */
    return r->ops_per_sec > 0 ? r->mb_per_sec * 1048576.0 / r->ops_per_sec / rec : 0;
}

bool report_is_scan_workload(const char *w)
{
    const wl_def *d = wl_find(w);
    return d && d->scan > 0;
}

char *report_group_slug(const bench_row *r, char *buf, size_t cap)
{
    return report_slug(r, buf, cap, false, true);
}

char *report_slug(const bench_row *r, char *buf, size_t cap, bool with_num, bool with_rate)
{
    int n = snprintf(buf, cap, "%s-%s-t%u", r->workload, r->durability, r->threads);
    if (with_num && n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "-n%llu", (unsigned long long)r->num);
    if (with_rate && r->rate && n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "-r%llu", (unsigned long long)r->rate);
    if (r->cpu_load && n >= 0 && (size_t)n < cap) /* --cpu-load: " load2" becomes "-load2" */
        snprintf(buf + n, cap - (size_t)n, "%s", report_load_label(r).s);
    for (char *p = buf; *p; p++)
        if (*p == ':' || *p == '/' || *p == ' ')
            *p = '-';
    return buf;
}

report_label report_load_label(const bench_row *r)
{
    report_label l = {""};
    if (r->cpu_load)
        snprintf(l.s, sizeof l.s, " load%u", r->cpu_load);
    return l;
}

bool report_is_write_workload(const char *w)
{
    return !strncmp(w, "fill", 4) || !strcmp(w, "overwrite") || !strcmp(w, "deleterandom");
}
