/* bench_run (bench.h): one run on a fresh database directory.
 *
 * 1. n/a when the engine does not declare the durability mode or cannot hold the keys/values.
 * 2. Load (workloads that need data): open in durability os, put the records in a random
 *    order in batches, close. Unmeasured.
 * 3. syncfs(2) the bench directory's file system (unmeasured), so that no run pays for the
 *    writeback of the runs before it (it matters most to the fdatasyncs of fillsync). In
 *    durability sync, probe the directory's fdatasync latency again (up to 100 rounds), so the
 *    run's one-thread bound is the disk's as it is now, not as it was at the start.
 *    Open in the run's mode; start the threads behind a barrier; the wall clock runs from the
 *    barrier to the last join. Each thread has its own histogram; they are merged. With
 *    --cpu-load N, N busy-loop threads spin in the helper process meanwhile (cpuload.h).
 *    The open itself is timed (open_s: after the clean close of the load, it is the cost of
 *    opening a database of that size). In a --rate run each thread issues its operations at
 *    scheduled times and latency runs from each one's due time (workloads.c).
 * 4. kv_stats before the close gives the engine's counters of the measured phase (kvlab
 *    engines); peers use /proc/self/io and the interposed sync counter around the same span.
 *    The page cache held by the database's files is measured then too (pagecache.h). The
 *    directory is walked after kv_close for the disk bytes.
 * 5. After the run: the merged histogram(s) into <out>/hgrm/ (hgrm.h) and the per-interval
 *    timeline (timeline.h), from the latencies the threads kept.
 * The recover workload has its own course (recover.h). */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_null.h"
#include "cpuload.h"
#include "hgrm.h"
#include "iocount.h"
#include "machine.h"
#include "monitor.h"
#include "pagecache.h"
#include "recover.h"
#include "timeline.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_na(bench_row *row, const char *fmt, const char *a, const char *b)
{
    row->na = true;
    snprintf(row->note, sizeof row->note, fmt, a, b);
}

/* ---- engines outside the registry (bench_add_engine) ---- */

#define MAX_EXTRA_ENGINES 4
static const kv_engine *extra_engines[MAX_EXTRA_ENGINES];

void bench_add_engine(const kv_engine *e)
{
    for (size_t i = 0; i < MAX_EXTRA_ENGINES; i++)
        if (!extra_engines[i] || extra_engines[i] == e) {
            extra_engines[i] = e;
            return;
        }
}

static const kv_engine *extra_engine(const char *name)
{
    for (size_t i = 0; i < MAX_EXTRA_ENGINES && extra_engines[i]; i++)
        if (!strcmp(extra_engines[i]->name, name))
            return extra_engines[i];
    return NULL;
}

static void engine_limits(const char *name, kv_limits *lim)
{
    const kv_engine *e = extra_engine(name);
    if (e)
        *lim = e->limits;
    else
        kv_engine_limits(name, lim);
}

static unsigned engine_durability_mask(const char *name)
{
    const kv_engine *e = extra_engine(name);
    return e ? e->durability_mask : kv_engine_durability_mask(name);
}

static const char *const *engine_option_help(const char *name)
{
    const kv_engine *e = extra_engine(name);
    return e ? e->option_help : kv_engine_option_help(name);
}

static kv_status engine_open(const char *name, const char *dir, const kv_options *o, kv_db **db)
{
    const kv_engine *e = extra_engine(name);
    return e ? kv_open_engine(e, dir, o, db) : kv_open(name, dir, o, db);
}

kv_status bench_make_options(const bench_cfg *cfg, const char *engine, kv_durability d,
                             kv_options *o)
{
    o->durability = d;
    o->cache_size = cfg->cache_size;
    const char *const *help = engine_option_help(engine);
    for (size_t i = 0; i < cfg->n_opts; i++) {
        const char *opt = cfg->opts[i], *eq = strchr(opt, '='), *colon = strchr(opt, ':');
        const char *kv = opt;
        if (!eq)
            continue;
        if (colon && colon < eq) {
            if (strlen(engine) != (size_t)(colon - opt) ||
                strncmp(engine, opt, (size_t)(colon - opt)))
                continue;
            kv = colon + 1;
        }
        size_t klen = (size_t)(eq - kv);
        bool known = false;
        for (size_t h = 0; help && help[h]; h++)
            if (!strncmp(help[h], kv, klen) && (help[h][klen] == ':' || !help[h][klen]))
                known = true;
        if (known && kv_options_set(o, kv) != KV_OK)
            return KV_INVALID;
    }
    return KV_OK;
}

/* Threads wait at this gate until the main thread opens it and starts the clock. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
} gate;

typedef struct worker {
    wl_thread *t;
    gate *g;
    bool load;
    int rc;
    pthread_t th;
    uint64_t start_ns, end_ns; /* when this thread began and finished its slice */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->g->mu);
    while (!w->g->open)
        pthread_cond_wait(&w->g->cv, &w->g->mu);
    pthread_mutex_unlock(&w->g->mu);
    w->start_ns = now_ns();
    w->rc = w->load ? wl_load(w->t) : wl_thread_run(w->t);
    w->end_ns = now_ns();
    if (!w->load)
        wl_thread_finish(w->t); /* latencies into the histogram, off the clock */
    return NULL;
}

/* Runs the n threads ts (initialized here with their slices of total operations) of the load
 * or the measured phase; *seconds is the wall time from the first thread's start to the last
 * thread's end (so the wake-up delay of the threads is not counted).
 * The caller frees ts with wl_thread_free. Returns 0 or -1 (message in sh->error). */
static int run_threads(wl_shared *sh, wl_thread *ts, unsigned n, bool load, uint64_t total,
                       monitor *mon, double *seconds, uint64_t *harness_bytes)
{
    worker *w = calloc(n, sizeof *w);
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    unsigned started = 0;
    uint64_t first = 0;
    *harness_bytes = 0;
    if (!w) {
        wl_fail(sh, "out of memory");
        return -1;
    }
    uint64_t mem0 = monitor_memory_now();
    for (unsigned i = 0; i < n; i++) {
        uint64_t count = total / n + (i < total % n ? 1 : 0);
        if (!wl_thread_init(&ts[i], sh, i, first, count, load))
            wl_fail(sh, "out of memory for thread %u", i);
        first += count;
        w[i] = (worker){&ts[i], &g, load, 0, 0, 0, 0};
    }
    uint64_t mem1 = monitor_memory_now();
    *harness_bytes = mem1 > mem0 ? mem1 - mem0 : 0;
    for (unsigned i = 0; i < n && !atomic_load(&sh->failed); i++) {
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
            wl_fail(sh, "cannot start thread %u", i);
            break;
        }
        started++;
    }
    if (mon) {
        mon->threads = ts;
        mon->n_threads = n;
        mon->sh = sh;
        if (!monitor_start(mon))
            mon = NULL;
    }
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    uint64_t first_start = UINT64_MAX, last_end = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(w[i].th, NULL);
        if (w[i].start_ns < first_start)
            first_start = w[i].start_ns;
        if (w[i].end_ns > last_end)
            last_end = w[i].end_ns;
    }
    *seconds = started && last_end > first_start ? (double)(last_end - first_start) / 1e9 : 0;
    if (mon)
        monitor_stop(mon);
    free(w);
    return atomic_load(&sh->failed) ? -1 : 0;
}

/* The null engine's runs last milliseconds, so one preemption of the benchmark on a busy
 * machine would double them: it runs NULL_REPS times from the same state and keeps the fastest
 * (*ts and *seconds are replaced by the best repetition's). Returns 0 or -1. */
#define NULL_REPS 5

static int null_best_of(wl_shared *sh, wl_thread **ts, unsigned nt, const run_spec *rs,
                        double *seconds)
{
    for (unsigned rep = 1; rep < NULL_REPS; rep++) {
        wl_thread *other = calloc(nt, sizeof *other);
        if (!other) {
            wl_fail(sh, "out of memory");
            return -1;
        }
        /* The state after the load: version 1 of every loaded record, nothing inserted. */
        for (uint64_t i = 0; i < sh->capacity; i++)
            atomic_store_explicit(&sh->versions[i], i < sh->records ? 1 : 0, memory_order_relaxed);
        for (uint64_t i = 0; i < sh->max_inserts; i++)
            atomic_store_explicit(&sh->ins_acked[i], 0, memory_order_relaxed);
        atomic_store(&sh->ins_next, sh->records);
        double secs = 0;
        uint64_t harness;
        int rc = run_threads(sh, other, nt, false, rs->ops, NULL, &secs, &harness);
        if (rc == 0 && secs < *seconds) {
            wl_thread *t = *ts;
            *ts = other;
            other = t;
            *seconds = secs;
        }
        for (unsigned i = 0; i < nt; i++)
            wl_thread_free(&other[i]);
        free(other);
        if (rc)
            return rc;
    }
    return 0;
}

char *bench_run_name(const bench_row *r, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s-%s-%s-t%u-n%llu", r->engine, r->workload, r->durability,
                     r->threads, (unsigned long long)r->num);
    if (r->rate && n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "-r%llu", (unsigned long long)r->rate);
    if (r->cpu_load && n >= 0 && (size_t)n < cap) /* beside --cpu-load: its own files */
        snprintf(buf + n, cap - (size_t)n, "-load%u", r->cpu_load);
    for (char *p = buf; *p; p++)
        if (*p == ':' || *p == '/' || *p == ' ')
            *p = '-';
    return buf;
}

void bench_row_free(bench_row *row)
{
    timeline_free(&row->timeline);
}

/* The directory of a run: <dir>/<engine>-<workload>-<mode>-t<threads> (':' becomes '-'), then
 * -n<records> when the benchmark has several record counts and -r<rate> for a --rate run. */
static void run_dir(const bench_cfg *cfg, const bench_row *row, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s-%s-%s-t%u", cfg->dir, row->engine, row->workload,
                     row->durability, row->threads);
    if (cfg->n_nums > 1 && n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "-n%llu", (unsigned long long)row->num);
    if (row->rate && n >= 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "-r%llu", (unsigned long long)row->rate);
    for (char *p = out + strlen(cfg->dir); *p; p++)
        if (*p == ':')
            *p = '-';
}

/* Latency percentiles of h in microseconds into p (p50, p90, p99, p99.9, max, mean). */
static void percentiles(const kv_histogram *h, double *p50, double *p90, double *p99, double *p999,
                        double *max, double *mean)
{
    *p50 = (double)kv_histogram_percentile(h, 50) / 1000.0;
    *p90 = (double)kv_histogram_percentile(h, 90) / 1000.0;
    *p99 = (double)kv_histogram_percentile(h, 99) / 1000.0;
    *p999 = (double)kv_histogram_percentile(h, 99.9) / 1000.0;
    *max = (double)kv_histogram_max(h) / 1000.0;
    *mean = kv_histogram_mean(h) / 1000.0;
}

/* Writes h to <out>/hgrm/<name><suffix>.hgrm (best effort: a failure is reported on stderr
 * and the row names no file). */
static bool write_hgrm(const bench_cfg *cfg, const kv_histogram *h, const char *name,
                       const char *suffix)
{
    char path[BENCH_PATH_MAX + 512];
    snprintf(path, sizeof path, "%s/hgrm", cfg->out);
    if (!io_mkdirs(path)) {
        fprintf(stderr, "kvlab: bench: cannot create %s\n", path);
        return false;
    }
    snprintf(path, sizeof path, "%s/hgrm/%s%s.hgrm", cfg->out, name, suffix);
    if (!hgrm_write_file(path, h)) {
        fprintf(stderr, "kvlab: bench: cannot write %s\n", path);
        return false;
    }
    return true;
}

static void fill_latency(const bench_cfg *cfg, bench_row *row, wl_thread *ts, unsigned n)
{
    kv_histogram *h = kv_histogram_new(), *svc = kv_histogram_new();
    if (!h || !svc) {
        kv_histogram_free(h);
        kv_histogram_free(svc);
        return;
    }
    uint64_t bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        if (ts[i].hist)
            kv_histogram_merge(h, ts[i].hist);
        if (ts[i].svc_hist)
            kv_histogram_merge(svc, ts[i].svc_hist);
        bytes += ts[i].bytes;
        row->ops += atomic_load(&ts[i].done);
    }
    row->bytes_moved = bytes;
    row->ops_per_sec = row->seconds > 0 ? (double)row->ops / row->seconds : 0;
    row->mb_per_sec = row->seconds > 0 ? (double)bytes / 1048576.0 / row->seconds : 0;
    percentiles(h, &row->p50_us, &row->p90_us, &row->p99_us, &row->p999_us, &row->max_us,
                &row->mean_us);
    if (row->rate)
        percentiles(svc, &row->svc_p50_us, &row->svc_p90_us, &row->svc_p99_us, &row->svc_p999_us,
                    &row->svc_max_us, &row->svc_mean_us);
    if (cfg->write_hgrm) {
        char name[256];
        bench_run_name(row, name, sizeof name);
        if (write_hgrm(cfg, h, name, "") && (!row->rate || write_hgrm(cfg, svc, name, "-service")))
            snprintf(row->hgrm, sizeof row->hgrm, "%s.hgrm", name);
    }
    kv_histogram_free(h);
    kv_histogram_free(svc);
}

/* Live logical bytes after the run: records present times key + value size. */
static uint64_t live_records(const wl_shared *sh, const bench_row *row)
{
    switch (sh->wl->kind) {
    case WL_FILLSEQ:
    case WL_FILLRANDOM:
    case WL_FILLSYNC:
        return row->ops;
    case WL_DELETERANDOM:
        return sh->records - (row->ops < sh->records ? row->ops : sh->records);
    default: {
        uint64_t n = sh->records;
        for (uint64_t i = 0; i < sh->max_inserts; i++)
            n += atomic_load_explicit(&sh->ins_acked[i], memory_order_relaxed);
        return n;
    }
    }
}

static int fail_run(char *err, size_t cap, const run_spec *rs, const char *phase, const char *msg)
{
    snprintf(err, cap, "%s %s: %s: %s", rs->engine, rs->wl->name, phase, msg);
    return -1;
}

int bench_run(const bench_cfg *cfg, const run_spec *rs, bench_row *row, char *err, size_t cap)
{
    char mode[32], dir[BENCH_PATH_MAX + 128] = "";
    kv_durability_format(rs->durability, mode, sizeof mode);
    memset(row, 0, sizeof *row);
    snprintf(row->engine, sizeof row->engine, "%s", rs->engine);
    snprintf(row->workload, sizeof row->workload, "%s", rs->wl->name);
    snprintf(row->durability, sizeof row->durability, "%s", mode);
    row->threads = rs->threads;
    row->cpu_load = rs->cpu_load;
    row->num = rs->num;
    row->rate = rs->rate;
    row->planned_ops = rs->ops;
    row->records = rs->records;
    row->key_size = cfg->key_size;
    row->value_size = cfg->value_size;
    row->write_amp = row->space_amp = row->fsyncs_per_op = row->sync_probe_mean_us = NAN;
    row->svc_p50_us = row->svc_p90_us = row->svc_p99_us = row->svc_p999_us = row->svc_max_us =
        row->svc_mean_us = NAN;
    row->mem_per_key_bytes = row->min_1s_fraction = row->open_seconds = NAN;
    row->page_cache_bytes = UINT64_MAX;
    row->page_cache_method = "none";
    bool null = !strcmp(rs->engine, BENCH_NULL_NAME);
    bool recover = rs->wl->kind == WL_RECOVER;
    row->io_source = null ? "none" : bench_is_peer(rs->engine) ? "process" : "kv_stats";
    if (recover) {
        row->p50_us = row->p90_us = row->p99_us = row->p999_us = row->max_us = row->mean_us = NAN;
        if (null) {
            set_na(row, "%s stores nothing to recover%s", rs->engine, "");
            return 0;
        }
        if (!(engine_durability_mask(rs->engine) & KV_DURABILITY_BIT(KV_DURABILITY_OS))) {
            set_na(row, "%s does not offer durability %s, which recover loads in", rs->engine,
                   "os");
            return 0;
        }
    }
    if (rs->rate && rs->wl->kind == WL_READSEQ) {
        set_na(row, "%s: %s has no separate operations to schedule (--rate)", rs->engine,
               rs->wl->name);
        return 0;
    }
    if (!null) {
        kv_limits lim;
        engine_limits(rs->engine, &lim);
        if (!(engine_durability_mask(rs->engine) & KV_DURABILITY_BIT(rs->durability.kind))) {
            set_na(row, "%s does not offer durability %s", rs->engine, mode);
            return 0;
        }
        size_t klen = cfg->key_size + (rs->wl->kind == WL_READMISSING ? 1 : 0);
        if (klen > lim.max_key || cfg->value_size > lim.max_value) {
            row->na = true;
            snprintf(row->note, sizeof row->note,
                     "%s takes keys up to %zu and values up to %llu bytes (run: %zu and %llu)",
                     rs->engine, lim.max_key, (unsigned long long)lim.max_value, klen,
                     (unsigned long long)cfg->value_size);
            return 0;
        }
    }

    /* Shared state. */
    wl_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.wl = rs->wl;
    sh.null = null;
    sh.key_size = cfg->key_size;
    sh.value_size = cfg->value_size;
    sh.records = rs->records;
    bool fill = !rs->wl->needs_load;
    uint64_t inserts = rs->wl->insert > 0 ? rs->ops : 0;
    sh.capacity = fill ? rs->ops : rs->records + inserts;
    sh.max_inserts = inserts;
    sh.threads = rs->threads;
    bool writes = fill || rs->wl->kind == WL_OVERWRITE || rs->wl->kind == WL_DELETERANDOM ||
                  rs->wl->update > 0 || rs->wl->insert > 0 || rs->wl->rmw > 0;
    sh.fixed_version = writes ? 0 : 1; /* the load writes version 1 of every record */
    sh.seed = cfg->seed;
    sh.rate = rs->rate;
    sh.poisson = cfg->arrival == ARRIVAL_POISSON;
    atomic_store(&sh.ins_next, rs->records);
    sh.zipf_items = rs->records + (uint64_t)((double)rs->ops * rs->wl->insert * 2.0);
    if (rs->wl->dist == DIST_LATEST)
        zipf_init(&sh.latest_base, rs->records ? rs->records : 1, ZIPF_YCSB_THETA);
    kvb_perm_init(&sh.perm, fill ? rs->ops : rs->records, cfg->seed);
    sh.versions = calloc(sh.capacity ? sh.capacity : 1, sizeof *sh.versions);
    sh.ins_acked = calloc(inserts ? inserts : 1, sizeof *sh.ins_acked);
    unsigned nt = rs->threads;
    wl_thread *ts = calloc(nt, sizeof *ts);
    int rc = 0;
    if (!sh.versions || !sh.ins_acked || !ts || !wl_keytab_init(&sh))
        rc = fail_run(err, cap, rs, "setup", "out of memory");

    kv_options o;
    kv_options_init(&o);
    if (rc == 0 && !null) {
        run_dir(cfg, row, dir, sizeof dir);
        if (!io_rmtree(dir))
            rc = fail_run(err, cap, rs, "setup", "cannot remove an old run directory");
        else if (bench_make_options(cfg, rs->engine, rs->durability, &o) != KV_OK)
            rc = fail_run(err, cap, rs, "options", kv_errmsg());
    }
    if (rc == 0 && recover) {
        rc = recover_run(cfg, rs, dir, &o, row, err, cap);
        if (!cfg->keep && rc == 0)
            io_rmtree(dir);
        free(ts);
        free(sh.versions);
        free(sh.ins_acked);
        free(sh.keytab);
        kv_options_free(&o);
        return rc;
    }

    /* Load phase. */
    if (rc == 0 && rs->wl->needs_load) {
        kv_db *db = NULL;
        kv_options lo = o;
        if (engine_durability_mask(rs->engine) & KV_DURABILITY_BIT(KV_DURABILITY_OS))
            lo.durability = (kv_durability){KV_DURABILITY_OS, 0};
        if (!null && engine_open(rs->engine, dir, &lo, &db) != KV_OK) {
            rc = fail_run(err, cap, rs, "load: open", kv_errmsg());
        } else {
            wl_thread lt;
            double secs = 0;
            memset(&lt, 0, sizeof lt);
            sh.db = db;
            uint64_t hb;
            monitor lm; /* watches the load for a hang and the time limit; no progress line */
            memset(&lm, 0, sizeof lm);
            lm.quiet = true;
            lm.max_seconds = cfg->max_seconds;
            snprintf(lm.label, sizeof lm.label, "%s %s load", rs->engine, rs->wl->name);
            rc = run_threads(&sh, &lt, 1, true, rs->records, &lm, &secs, &hb);
            if (rc)
                fail_run(err, cap, rs, "load", sh.error);
            else if (lm.timed_out) {
                /* A database short of its records would be measured under the wrong size. */
                row->na = row->load_timed_out = true;
                snprintf(row->note, sizeof row->note,
                         "the load stopped at the %.0f s limit after %llu of %llu records",
                         cfg->max_seconds, (unsigned long long)atomic_load(&lt.done),
                         (unsigned long long)rs->records);
            }
            wl_thread_free(&lt);
            if (!null && kv_close(db) != KV_OK && rc == 0)
                rc = fail_run(err, cap, rs, "load: close", kv_errmsg());
            sh.db = NULL;
            row->load_seconds = secs;
        }
    }

    /* Measured phase. */
    monitor mon;
    memset(&mon, 0, sizeof mon);
    kv_stats st;
    memset(&st, 0, sizeof st);
    uint64_t wchar0 = 0, wb0 = 0, wchar1 = 0, wb1 = 0, sync0 = 0, sync1 = 0;
    bool proc_ok = false, sync_ok = false;
    kv_db *db = NULL;
    if (rc == 0 && !row->na) {
        mon.planned_ops = rs->ops;
        mon.max_seconds = cfg->max_seconds;
        snprintf(mon.label, sizeof mon.label, "%s %s %s t%u", rs->engine, rs->wl->name, mode, nt);
        int dfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) /* best effort: a failure only loses the fairness it buys */
            (void)syncfs(dfd);
        if (!null && rs->durability.kind == KV_DURABILITY_SYNC && cfg->probes) {
            row->sync_probe_mean_us =
                machine_probe_mean_us(cfg->dir, cfg->probes < 100 ? cfg->probes : 100);
            if (dfd >= 0) /* the probe file's unlink is not the run's to pay for */
                (void)syncfs(dfd);
        }
        if (dfd >= 0)
            close(dfd);
        proc_ok = io_proc_read(&wchar0, &wb0);
        sync0 = io_sync_calls(&sync_ok);
        uint64_t mem0 = monitor_memory_now();
        uint64_t open0 = now_ns();
        kv_status s = null ? KV_OK : engine_open(rs->engine, dir, &o, &db);
        if (!null)
            row->open_seconds = (double)(now_ns() - open0) / 1e9;
        if (s == KV_NOTSUP) {
            set_na(row, "%s: %s", "open", kv_errmsg());
        } else if (s != KV_OK) {
            rc = fail_run(err, cap, rs, "open", kv_errmsg());
        } else {
            sh.db = db;
            uint64_t harness = 0;
            char lerr[160];
            if (!cpuload_run(rs->cpu_load, lerr, sizeof lerr)) /* --cpu-load: beside the phase */
                wl_fail(&sh, "%s", lerr);
            rc = run_threads(&sh, ts, nt, false, rs->ops, &mon, &row->seconds, &harness);
            if (rc == 0 && null)
                rc = null_best_of(&sh, &ts, nt, rs, &row->seconds);
            if (!cpuload_run(0, lerr, sizeof lerr) && rc == 0) {
                wl_fail(&sh, "%s", lerr);
                rc = -1;
            }
            if (rc)
                fail_run(err, cap, rs, "run", sh.error);
            if (rc == 0 && !null && kv_stats_get(db, &st) != KV_OK)
                rc = fail_run(err, cap, rs, "stats", kv_errmsg());
            /* The page cache the database's files hold at the end of the measured phase. */
            if (rc == 0 && !null &&
                !pc_dir_resident(dir, PC_AUTO, &row->page_cache_bytes, &row->page_cache_method)) {
                row->page_cache_bytes = UINT64_MAX;
                row->page_cache_method = "none";
            }
            if (proc_ok)
                proc_ok = io_proc_read(&wchar1, &wb1);
            sync1 = io_sync_calls(&sync_ok);
            if (!null && kv_close(db) != KV_OK && rc == 0)
                rc = fail_run(err, cap, rs, "close", kv_errmsg());
            /* The threads' histograms and buffers are the harness's, not the engine's. */
            row->peak_mem_bytes = mon.peak > mem0 + harness ? mon.peak - mem0 - harness : 0;
            if (mon.timed_out)
                snprintf(row->note, sizeof row->note, "stopped at the %.0f s limit",
                         cfg->max_seconds);
        }
    }

    if (rc == 0 && !row->na) {
        fill_latency(cfg, row, ts, nt);
        if (timeline_build(ts, nt, &row->timeline))
            row->min_1s_fraction = timeline_min_window_fraction(
                &row->timeline, (size_t)(1.0 / TIMELINE_INTERVAL_S + 0.5), row->ops_per_sec);
        row->live_keys = live_records(&sh, row);
        row->live_bytes = row->live_keys * (cfg->key_size + cfg->value_size);
        if (!null && row->page_cache_bytes != UINT64_MAX && row->live_keys)
            row->mem_per_key_bytes =
                (double)(row->peak_mem_bytes + row->page_cache_bytes) / (double)row->live_keys;
        if (!null) {
            uint64_t files = 0;
            row->user_bytes = st.user_bytes_written;
            if (bench_is_peer(rs->engine)) {
                row->file_bytes_written = proc_ok ? wchar1 - wchar0 : 0;
                row->syncs = sync_ok ? sync1 - sync0 : 0;
            } else {
                row->file_bytes_written = st.file_bytes_written;
                row->syncs = st.fsyncs + st.fdatasyncs;
            }
            row->wchar = proc_ok ? wchar1 - wchar0 : 0;
            row->write_bytes = proc_ok ? wb1 - wb0 : 0;
            if (io_dir_bytes(dir, &row->disk_bytes, &files) && row->live_bytes)
                row->space_amp = (double)row->disk_bytes / (double)row->live_bytes;
            if (row->user_bytes && (proc_ok || !bench_is_peer(rs->engine)))
                row->write_amp = (double)row->file_bytes_written / (double)row->user_bytes;
            if (row->ops && (sync_ok || !bench_is_peer(rs->engine)))
                row->fsyncs_per_op = (double)row->syncs / (double)row->ops;
            row->n_extra = st.n_extra;
            memcpy(row->extra, st.extra, sizeof st.extra);
        }
    }
    if (!null && !cfg->keep && rc == 0)
        io_rmtree(dir);
    for (unsigned i = 0; ts && i < nt; i++)
        wl_thread_free(&ts[i]);
    free(ts);
    free(sh.versions);
    free(sh.ins_acked);
    free(sh.keytab);
    kv_options_free(&o);
    return rc;
}
