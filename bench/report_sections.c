/* The sections of report.md about scale, memory, open and recovery time, open-loop latency,
 * throughput over time, raw distributions and the scan side of the harness overhead
 * (report_int.h). */
#include <math.h>
#include <string.h>

#include "bench_null.h"
#include "cli.h"
#include "engine_config.h"
#include "report_int.h"

#define MAX_ENG 32
#define MAX_NUM 16

size_t md_engines(const bench_row *rows, size_t n, const char **out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(rows[i].engine, BENCH_NULL_NAME))
            continue;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = !strcmp(out[j], rows[i].engine);
        if (!seen && k < cap)
            out[k++] = rows[i].engine;
    }
    return k;
}

size_t md_nums(const bench_row *rows, size_t n, uint64_t *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = out[j] == rows[i].num;
        if (!seen && k < cap)
            out[k++] = rows[i].num;
    }
    for (size_t i = 1; i < k; i++) /* insertion sort: a handful */
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return k;
}

static bool is_recover(const bench_row *r)
{
    return !strcmp(r->workload, "recover");
}

static bool usable(const bench_row *r)
{
    return !r->na && r->ops && strcmp(r->engine, BENCH_NULL_NAME);
}

const bench_row *md_series_row(const bench_row *rows, size_t n, const bench_row *s, bool by_num,
                               const char *engine, uint64_t key)
{
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (report_same_series(r, s, by_num) && !strcmp(r->engine, engine) && usable(r) &&
            (by_num ? r->num == key : r->rate == key))
            return r;
    }
    return NULL;
}

static bool keep_scaling(const bench_row *r)
{
    return usable(r) && !is_recover(r) && !r->rate;
}

static bool keep_rate(const bench_row *r)
{
    return usable(r) && r->rate != 0;
}

size_t md_series(const bench_row *rows, size_t n, bool by_num, size_t *idx, size_t cap)
{
    bool (*keep)(const bench_row *) = by_num ? keep_scaling : keep_rate;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep(&rows[i]))
            continue;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = report_same_series(&rows[idx[j]], &rows[i], by_num);
        if (!seen && k < cap)
            idx[k++] = i;
    }
    return k;
}

/* "fillrandom os t1" (+ " at 20k/s"; + " n=1M" when by rate and several counts). */
static char *series_label(const report_ctx *c, const bench_row *s, bool by_num, char *buf,
                          size_t cap)
{
    char a[24];
    int k = snprintf(buf, cap, "%s %s t%u", s->workload, s->durability, s->threads);
    if (by_num && s->rate && k >= 0 && (size_t)k < cap)
        snprintf(buf + k, cap - (size_t)k, " at %s/s", md_count(s->rate, a, sizeof a));
    if (!by_num && c->multi_num && k >= 0 && (size_t)k < cap)
        snprintf(buf + k, cap - (size_t)k, " n=%s", md_count(s->num, a, sizeof a));
    return buf;
}

/* ---- method and configuration ---- */

void md_memory_method(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    const char *method = "none";
    bool rate = false, recover = false;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].na && rows[i].page_cache_method && strcmp(rows[i].page_cache_method, "none"))
            method = rows[i].page_cache_method;
        rate |= rows[i].rate != 0;
        recover |= is_recover(&rows[i]);
    }
    char budget[32];
    cli_human_bytes(c->cfg->cache_size, budget, sizeof budget);
    fprintf(
        f,
        "- Memory, all of it. `page cache`: bytes of the database's files resident in the "
        "page cache at the end of the measured phase, before the close (cachestat(2) per "
        "file where the kernel has it, else mincore(2) over a read-only mapping of each "
        "file; here: %s). It is the memory an engine uses without allocating it (LMDB's map, the "
        "memory-mapped reads of bitcask and the lsm, every file read through the kernel) "
        "and also what was written recently, which stays cached: on a machine whose memory "
        "holds the whole database it is about the database's size for every engine; it "
        "says how much an engine would need to keep its speed. `mem/key` = (peak heap + page "
        "cache) / live keys. Every engine and peer gets the same cache budget (%s, "
        "`--cache-size`); \"Engine configuration\" says what each makes of it.\n",
        strcmp(method, "none") ? method : "not measured",
        c->cfg->cache_size ? budget
                           : "0: "
                             "each engine's own default");
    fprintf(f, "- `open s`: seconds of the kv_open just before the measured phase; after a load "
               "it follows the load's clean close, so it is the cost of opening a database of "
               "that size (a fill opens an empty directory).\n");
    fprintf(f, "- Throughput over time: every run keeps its ops/s and p99 per 100 ms (in "
               "results.json, and the timeline plots), rebuilt after the run from the latencies "
               "the harness keeps anyway, so they cost the measured loop nothing. `min 1 s`: the "
               "lowest throughput over any second of the run (10 consecutive intervals) divided "
               "by its mean; 1.00 is flat, a compaction stall, checkpoint or merge shows as a "
               "dip; runs shorter than a second have none.\n");
    if (rate)
        fprintf(f,
                "- Open loop (`--rate`, %s arrivals): each thread issues its share of the rate "
                "at scheduled times (%s, seeded) and measures every latency from the "
                "operation's scheduled start, as wrk2 and YCSB's intended-time measurement do: "
                "when an operation stalls, the ones scheduled behind it wait and their latency "
                "shows it (no coordinated omission). Service time, from each operation's actual "
                "start, is given beside it. A closed loop (no `--rate`) only shows the stalled "
                "operation itself.\n",
                c->cfg->arrival == ARRIVAL_POISSON ? "Poisson" : "constant",
                c->cfg->arrival == ARRIVAL_POISSON ? "exponential gaps" : "even gaps");
    if (recover)
        fprintf(f,
                "- `recover`: a child process (kvlab itself) loads N records in durability os "
                "as every load does (random order, batches of 256); the benchmark kills it with "
                "SIGKILL as soon as it sees the seeded kill point acknowledged (in the last "
                "quarter of the load, the same point for every engine; polled every ms, so a "
                "few more batches may be acknowledged and one may be in flight), then times the "
                "open that recovers. Off the clock it reads every record back and checks the "
                "contract of durability os: every acknowledged record is there, the batch in "
                "flight wholly or not at all, nothing else. `read by the open`: bytes the "
                "recovering open read (kvlab's fs counters; for peers the process's rchar, which "
                "misses reads through a memory map); `log replayed`: the engine's own count "
                "where it keeps one (kv_stats counter `recovery_log_bytes`: wal the segments "
                "it scanned, lsm the WALs it replayed into memtables, btree the log groups it "
                "redid, bitcask the data files it scanned for want of a valid hint file; the "
                "peers do not say).\n");
    fprintf(f, "\n");
}

void md_config_section(FILE *f, const report_ctx *c)
{
    const bench_cfg *g = c->cfg;
    char budget[32], text[1024];
    fprintf(f, "## Engine configuration\n\n");
    if (g->cache_size)
        fprintf(f,
                "Cache budget: %s for every engine and peer (`--cache-size`). What each makes "
                "of it, and the settings that shape its figures:\n\n",
                cli_human_bytes(g->cache_size, budget, sizeof budget));
    else
        fprintf(f, "Cache budget: none given (`--cache-size 0`): each engine keeps its own "
                   "default.\n\n");
    fprintf(f, "| engine | configuration |\n|---|---|\n");
    for (size_t e = 0; e < g->n_engines; e++)
        fprintf(f, "| %s | %s |\n", g->engines[e],
                engine_config_text(g->engines[e], g->cache_size, text, sizeof text));
    if (g->n_opts) {
        fprintf(f, "\nEngine options given (`-o`):");
        for (size_t i = 0; i < g->n_opts; i++)
            fprintf(f, " `%s`", g->opts[i]);
        fprintf(f, ".\n");
    }
    fprintf(f, "\n");
}

/* ---- recover ---- */

static void bytes_cell(FILE *f, uint64_t v)
{
    char b[32];
    if (v == UINT64_MAX)
        fprintf(f, " – |");
    else
        fprintf(f, " %s |", cli_human_bytes(v, b, sizeof b));
}

void md_recover_table(FILE *f, const report_ctx *c, const bench_row *rows, size_t n,
                      const bench_row *gr)
{
    (void)c;
    fprintf(f, "| engine | kill point | acked | found | recovering open s | read by the open | "
               "log replayed | peak heap | page cache | mem/key | disk | space amp |\n"
               "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (!report_same_group(r, gr))
            continue;
        if (r->na) {
            fprintf(f, "| %s | n/a: %s |||||||||||\n", r->engine, r->note);
            continue;
        }
        char mem[32];
        fprintf(f, "| %s | %llu | %llu | %llu |", r->engine,
                (unsigned long long)r->recovery.kill_at, (unsigned long long)r->recovery.acked,
                (unsigned long long)r->recovery.found);
        md_fig(f, r->open_seconds, "%.3f");
        bytes_cell(f, r->recovery.read_bytes);
        bytes_cell(f, r->recovery.log_replayed);
        fprintf(f, " %s |", cli_human_bytes(r->peak_mem_bytes, mem, sizeof mem));
        bytes_cell(f, r->page_cache_bytes);
        md_fig(f, r->mem_per_key_bytes, "%.0f B");
        bytes_cell(f, r->disk_bytes);
        md_fig(f, r->space_amp, "%.2f");
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* ---- scaling ---- */

double md_metric_of(const bench_row *r, md_metric m)
{
    switch (m) {
    case MD_OPS:
        return r->ops_per_sec;
    case MD_WRITE_AMP:
        return r->write_amp;
    case MD_SPACE_AMP:
        return r->space_amp;
    default:
        return r->mem_per_key_bytes;
    }
}

bool md_series_has(const bench_row *rows, size_t n, const bench_row *s, md_metric m)
{
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        double v = md_metric_of(r, m);
        if (report_same_series(r, s, true) && usable(r) && !is_recover(r) && !r->rate &&
            isfinite(v) && v > 0)
            return true;
    }
    return false;
}

typedef double (*metric_fn)(const bench_row *r);
static double m_ops(const bench_row *r)
{
    return r->ops_per_sec;
}
static double m_mem(const bench_row *r)
{
    return r->mem_per_key_bytes;
}

/* One table: engines x record counts of series s, cells fmt of m. */
static void scaling_table(FILE *f, const bench_row *rows, size_t n, const bench_row *s,
                          const char *what, metric_fn m, const char *fmt)
{
    const char *eng[MAX_ENG];
    uint64_t nums[MAX_NUM];
    size_t ne = md_engines(rows, n, eng, MAX_ENG), nn = md_nums(rows, n, nums, MAX_NUM);
    fprintf(f, "| %s |", what);
    for (size_t k = 0; k < nn; k++) {
        char a[24];
        fprintf(f, " %s |", md_count(nums[k], a, sizeof a));
    }
    fprintf(f, "\n|---|");
    for (size_t k = 0; k < nn; k++)
        fprintf(f, "--:|");
    fprintf(f, "\n");
    for (size_t e = 0; e < ne; e++) {
        bool any = false;
        for (size_t k = 0; k < nn && !any; k++)
            any = md_series_row(rows, n, s, true, eng[e], nums[k]) != NULL;
        if (!any)
            continue;
        fprintf(f, "| %s |", eng[e]);
        for (size_t k = 0; k < nn; k++) {
            const bench_row *r = md_series_row(rows, n, s, true, eng[e], nums[k]);
            if (!r) {
                fprintf(f, " – |");
                continue;
            }
            if (r->note[0])
                fprintf(f, " *");
            md_fig(f, m(r), fmt);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

void md_scaling_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    if (!c->multi_num)
        return;
    size_t idx[64];
    size_t ns = md_series(rows, n, true, idx, 64);
    fprintf(f, "## Scaling\n\n"
               "How each engine's cost grows with the data: throughput, memory per key "
               "((peak heap + page cache) / live keys) and, in the plots, write and space "
               "amplification, against the record count (log-log). \\* marks a run stopped at "
               "the time limit (`--max-seconds`): its figures cover the operations it did.\n\n");
    for (size_t k = 0; k < ns; k++) {
        const bench_row *s = &rows[idx[k]];
        char label[160], slug[160];
        fprintf(f, "### %s\n\n", series_label(c, s, true, label, sizeof label));
        scaling_table(f, rows, n, s, "ops/s", m_ops, "%.0f");
        scaling_table(f, rows, n, s, "mem/key", m_mem, "%.0f B");
        if (c->plots_made) {
            report_slug(s, slug, sizeof slug, false, true);
            if (md_series_has(rows, n, s, MD_OPS))
                fprintf(f, "![Throughput against records: %s](scaling-%s.svg)\n\n", label, slug);
            if (md_series_has(rows, n, s, MD_MEM_PER_KEY))
                fprintf(f, "![Memory per key against records: %s](memory-%s.svg)\n\n", label, slug);
            if (md_series_has(rows, n, s, MD_WRITE_AMP) || md_series_has(rows, n, s, MD_SPACE_AMP))
                fprintf(f, "![Amplification against records: %s](scaling-amp-%s.svg)\n\n", label,
                        slug);
        }
    }
    bool stopped = false;
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (!r->load_timed_out && (r->na || !r->note[0] || !strstr(r->note, "limit")))
            continue;
        if (!stopped)
            fprintf(f,
                    "Runs stopped at the time limit (`--max-seconds %.0f`; a load that does "
                    "not finish in time leaves its run out, and the later runs that would "
                    "load as many records for that engine):\n\n",
                    c->cfg->max_seconds);
        stopped = true;
        char label[160];
        md_group_label(c, r, label, sizeof label);
        if (r->load_timed_out)
            fprintf(f, "- %s, %s: not measured: %s\n", r->engine, label, r->note);
        else
            fprintf(f, "- %s, %s: %llu of %llu operations in %.0f s\n", r->engine, label,
                    (unsigned long long)r->ops, (unsigned long long)r->planned_ops, r->seconds);
    }
    if (stopped)
        fprintf(f, "\n");
}

/* ---- open and recovery ---- */

const bench_row *md_clean_open(const bench_row *rows, size_t n, const char *engine, uint64_t num,
                               const char **workload)
{
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        const wl_def *w = wl_find(r->workload);
        if (!w || !w->needs_load || r->rate || !usable(r) || r->num != num ||
            strcmp(r->engine, engine) || !isfinite(r->open_seconds))
            continue;
        if (!*workload)
            *workload = r->workload;
        if (!strcmp(*workload, r->workload))
            return r;
    }
    return NULL;
}

const bench_row *md_recover_row(const bench_row *rows, size_t n, const char *engine, uint64_t num)
{
    for (size_t i = 0; i < n; i++)
        if (is_recover(&rows[i]) && usable(&rows[i]) && rows[i].num == num &&
            !strcmp(rows[i].engine, engine))
            return &rows[i];
    return NULL;
}

void md_open_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    const char *eng[MAX_ENG];
    uint64_t nums[MAX_NUM];
    size_t ne = md_engines(rows, n, eng, MAX_ENG), nn = md_nums(rows, n, nums, MAX_NUM);
    const char *workload = NULL;
    bool clean = false, recover = false;
    for (size_t e = 0; e < ne; e++)
        for (size_t k = 0; k < nn; k++) {
            clean |= md_clean_open(rows, n, eng[e], nums[k], &workload) != NULL;
            recover |= md_recover_row(rows, n, eng[e], nums[k]) != NULL;
        }
    if (!clean && !recover)
        return;
    fprintf(f, "## Open and recovery\n\n");
    char a[24];
    if (clean) {
        fprintf(f,
                "Seconds of the open after a clean close, by records (the open before the "
                "measured phase of %s):\n\n| engine |",
                workload);
        for (size_t k = 0; k < nn; k++)
            fprintf(f, " %s |", md_count(nums[k], a, sizeof a));
        fprintf(f, "\n|---|");
        for (size_t k = 0; k < nn; k++)
            fprintf(f, "--:|");
        fprintf(f, "\n");
        for (size_t e = 0; e < ne; e++) {
            fprintf(f, "| %s |", eng[e]);
            for (size_t k = 0; k < nn; k++) {
                const bench_row *r = md_clean_open(rows, n, eng[e], nums[k], &workload);
                md_fig(f, r ? r->open_seconds : NAN, "%.3f");
            }
            fprintf(f, "\n");
        }
        fprintf(f, "\n");
    }
    if (recover) {
        fprintf(f, "Seconds of the open that recovers after SIGKILL of the loading child "
                   "(`recover`), with the records it found and the bytes it read:\n\n"
                   "| engine |");
        for (size_t k = 0; k < nn; k++)
            fprintf(f, " %s |", md_count(nums[k], a, sizeof a));
        fprintf(f, "\n|---|");
        for (size_t k = 0; k < nn; k++)
            fprintf(f, "--:|");
        fprintf(f, "\n");
        for (size_t e = 0; e < ne; e++) {
            fprintf(f, "| %s |", eng[e]);
            for (size_t k = 0; k < nn; k++) {
                const bench_row *r = md_recover_row(rows, n, eng[e], nums[k]);
                char b[32];
                if (!r)
                    fprintf(f, " – |");
                else if (r->recovery.read_bytes == UINT64_MAX)
                    fprintf(f, " %.3f s (%llu found) |", r->open_seconds,
                            (unsigned long long)r->recovery.found);
                else
                    fprintf(f, " %.3f s (%llu found, %s read) |", r->open_seconds,
                            (unsigned long long)r->recovery.found,
                            cli_human_bytes(r->recovery.read_bytes, b, sizeof b));
            }
            fprintf(f, "\n");
        }
        fprintf(f, "\n");
    }
    if (c->plots_made && c->multi_num)
        fprintf(f, "![Open and recovery time against records](open.svg)\n\n");
}

/* ---- open-loop latency ---- */

void md_rate_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    size_t idx[64];
    size_t ns = md_series(rows, n, false, idx, 64);
    if (!ns)
        return;
    fprintf(f,
            "## Open-loop latency\n\n"
            "Operations issued at the offered rate (%s gaps); `corrected` latency runs from "
            "each operation's scheduled start, `service` from its actual start. When the "
            "engine keeps up the two agree; a stall, or an offered rate above what the "
            "engine sustains, raises the corrected percentiles of every operation queued "
            "behind it, while service time hides it.\n\n",
            c->cfg->arrival == ARRIVAL_POISSON ? "Poisson" : "constant");
    for (size_t k = 0; k < ns; k++) {
        const bench_row *s = &rows[idx[k]];
        char label[160], slug[160];
        fprintf(f, "### %s\n\n", series_label(c, s, false, label, sizeof label));
        fprintf(f, "| engine | offered ops/s | achieved ops/s | corrected p50 µs | p99 µs | "
                   "p99.9 µs | max µs | service p50 µs | p99 µs | p99.9 µs | max µs |\n"
                   "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (size_t i = 0; i < n; i++) {
            const bench_row *r = &rows[i];
            if (!report_same_series(r, s, false) || !r->rate)
                continue;
            if (r->na) {
                fprintf(f, "| %s | n/a: %s ||||||||||\n", r->engine, r->note);
                continue;
            }
            fprintf(f, "| %s%s | %llu |", r->engine, r->note[0] ? " *" : "",
                    (unsigned long long)r->rate);
            md_fig(f, r->ops_per_sec, "%.0f");
            md_fig(f, r->p50_us, "%.2f");
            md_fig(f, r->p99_us, "%.2f");
            md_fig(f, r->p999_us, "%.2f");
            md_fig(f, r->max_us, "%.1f");
            md_fig(f, r->svc_p50_us, "%.2f");
            md_fig(f, r->svc_p99_us, "%.2f");
            md_fig(f, r->svc_p999_us, "%.2f");
            md_fig(f, r->svc_max_us, "%.1f");
            fprintf(f, "\n");
        }
        fprintf(f, "\n");
        if (c->plots_made) {
            report_slug(s, slug, sizeof slug, c->multi_num, false);
            fprintf(f, "![p99 against offered load: %s](rate-%s.svg)\n\n", label, slug);
        }
    }
}

/* ---- throughput over time ---- */

void md_timeline_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    size_t groups[256];
    size_t ng = report_groups(rows, n, groups, 256);
    fprintf(f, "## Throughput over time\n\n"
               "Operations per second and p99 latency per 100 ms of each run (results.json, "
               "`timeline` of every run); the lowest second against the mean is the `min 1 s` "
               "column of the tables above.\n\n");
    if (!c->plots_made)
        return;
    for (size_t g = 0; g < ng; g++) {
        const bench_row *gr = &rows[groups[g]];
        if (!md_has_timeline(rows, n, gr))
            continue;
        char slug[160], label[160];
        report_slug(gr, slug, sizeof slug, c->multi_num, true);
        fprintf(f, "![Timeline: %s](timeline-%s.svg)\n\n",
                md_group_label(c, gr, label, sizeof label), slug);
    }
}

bool md_has_timeline(const bench_row *rows, size_t n, const bench_row *group)
{
    for (size_t i = 0; i < n; i++)
        if (report_same_group(&rows[i], group) && usable(&rows[i]) && rows[i].timeline.n)
            return true;
    return false;
}

/* ---- the harness on scans ---- */

void md_scan_overhead(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    size_t groups[256];
    size_t ng = report_groups(rows, n, groups, 256);
    bool header = false;
    for (size_t g = 0; g < ng; g++) {
        const bench_row *gr = &rows[groups[g]];
        if (!report_is_scan_workload(gr->workload) || gr->rate)
            continue;
        const bench_row *null = NULL;
        for (size_t i = 0; i < n; i++)
            if (report_same_group(&rows[i], gr) && !rows[i].na && rows[i].ops &&
                !strcmp(rows[i].engine, BENCH_NULL_NAME))
                null = &rows[i];
        if (!null || !(null->ops_per_sec > 0))
            continue;
        double null_rec = report_records_per_op(null);
        double harness = null_rec > 0 ? 1e6 / null->ops_per_sec / null_rec : NAN;
        char label[160];
        if (!header)
            fprintf(f, "Scans: time per returned record, each engine's beside the harness's "
                       "(the `null` engine walks synthetic records and the harness checks each "
                       "one as it does an engine's). No target.\n\n");
        header = true;
        fprintf(f,
                "| %s | µs/op | records/op | µs per record | harness µs per record | "
                "harness share |\n|---|--:|--:|--:|--:|--:|\n",
                md_group_label(c, gr, label, sizeof label));
        for (size_t i = 0; i < n; i++) {
            const bench_row *r = &rows[i];
            if (!report_same_group(r, gr) || !usable(r) || !(r->ops_per_sec > 0))
                continue;
            double rec = report_records_per_op(r), us = 1e6 / r->ops_per_sec;
            double per = rec > 0 ? us / rec : NAN;
            fprintf(f, "| %s |", r->engine);
            md_fig(f, us, "%.3f");
            md_fig(f, rec, "%.1f");
            md_fig(f, per, "%.4f");
            md_fig(f, harness, "%.4f");
            md_fig(f, per > 0 ? 100.0 * harness / per : NAN, "%.1f%%");
            fprintf(f, "\n");
        }
        fprintf(f, "| null (harness) |");
        md_fig(f, 1e6 / null->ops_per_sec, "%.3f");
        md_fig(f, null_rec, "%.1f");
        md_fig(f, harness, "%.4f");
        fprintf(f, " – | – |\n\n");
    }
}

/* ---- raw distributions ---- */

void md_hgrm_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    (void)c;
    size_t files = 0;
    const bench_row *example = NULL;
    bool rate = false;
    for (size_t i = 0; i < n; i++)
        if (rows[i].hgrm[0]) {
            files++;
            if (!example)
                example = &rows[i];
            rate |= rows[i].rate != 0;
        }
    if (!files)
        return;
    fprintf(f,
            "## Raw distributions\n\n"
            "Each run's merged latency histogram is in `hgrm/` (%zu files), named "
            "`ENGINE-WORKLOAD-MODE-tTHREADS-nRECORDS[-rRATE].hgrm` (e.g. `hgrm/%s`), in "
            "HdrHistogram's percentile-distribution text format (values in microseconds), so "
            "HdrHistogram's plotter and other `.hgrm` readers take them as they are.%s\n\n",
            files, example->hgrm,
            rate ? " A `--rate` run also has `...-service.hgrm`, its service times; the plain "
                   "file holds the corrected latencies."
                 : "");
}
