/* results.csv and the helpers the other reports share (report.h). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bench_null.h"
#include "report.h"

const char report_csv_header[] =
    "engine,workload,durability,threads,ops,seconds,ops_per_sec,mb_per_sec,p50_us,p90_us,"
    "p99_us,p999_us,max_us,write_amp,space_amp,fsyncs_per_op,peak_mem_bytes,cpu_load";

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
        fprintf(out, ",%u\n", r->cpu_load);
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
    fprintf(out, ",%llu,%u\n", (unsigned long long)r->peak_mem_bytes, r->cpu_load);
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
           a->threads == b->threads && a->cpu_load == b->cpu_load;
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
        for (size_t i = 0; i < n; i++) {
            const bench_row *r = &rows[i];
            if (!report_same_group(r, &rows[groups[g]]) || r->na || r->ops == 0 ||
                r->ops_per_sec <= 0 || r->cpu_load) /* the harness's cost on idle cores */
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
        o->null_us = 1e6 / null->ops_per_sec;
        o->fastest_us = 1e6 / fast->ops_per_sec;
        o->percent = 100.0 * o->null_us / o->fastest_us;
        double rec = (double)(null->key_size + null->value_size);
        o->records_per_op = rec > 0 ? null->mb_per_sec * 1048576.0 / null->ops_per_sec / rec : 0;
    }
    return k;
}

char *report_group_slug(const bench_row *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%s-t%u%s", r->workload, r->durability, r->threads,
             report_load_label(r).s);
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
