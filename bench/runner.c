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
 * 4. kv_stats before the close gives the engine's counters of the measured phase (kvlab
 *    engines); peers use /proc/self/io and the interposed sync counter around the same span.
 *    The directory is walked after kv_close for the disk bytes. */
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
#include "iocount.h"
#include "machine.h"
#include "monitor.h"

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

/* Builds the kv_options of engine for this run: its durability, the cache size and the -o
 * options meant for it (ENGINE:KEY=VALUE, or KEY=VALUE when it declares KEY). */
static kv_status make_options(const bench_cfg *cfg, const char *engine, kv_durability d,
                              kv_options *o)
{
    o->durability = d;
    o->cache_size = cfg->cache_size;
    const char *const *help = kv_engine_option_help(engine);
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

/* The directory of a run: <dir>/<engine>-<workload>-<mode>-t<threads> (':' becomes '-'). */
static void run_dir(const bench_cfg *cfg, const run_spec *rs, const char *mode, char *out,
                    size_t cap)
{
    snprintf(out, cap, "%s/%s-%s-%s-t%u", cfg->dir, rs->engine, rs->wl->name, mode, rs->threads);
    for (char *p = out + strlen(cfg->dir); *p; p++)
        if (*p == ':')
            *p = '-';
}

static void fill_latency(bench_row *row, wl_thread *ts, unsigned n)
{
    kv_histogram *h = kv_histogram_new();
    if (!h)
        return;
    uint64_t bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        if (ts[i].hist)
            kv_histogram_merge(h, ts[i].hist);
        bytes += ts[i].bytes;
        row->ops += atomic_load(&ts[i].done);
    }
    row->ops_per_sec = row->seconds > 0 ? (double)row->ops / row->seconds : 0;
    row->mb_per_sec = row->seconds > 0 ? (double)bytes / 1048576.0 / row->seconds : 0;
    row->p50_us = (double)kv_histogram_percentile(h, 50) / 1000.0;
    row->p90_us = (double)kv_histogram_percentile(h, 90) / 1000.0;
    row->p99_us = (double)kv_histogram_percentile(h, 99) / 1000.0;
    row->p999_us = (double)kv_histogram_percentile(h, 99.9) / 1000.0;
    row->max_us = (double)kv_histogram_max(h) / 1000.0;
    row->mean_us = kv_histogram_mean(h) / 1000.0;
    kv_histogram_free(h);
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
    row->planned_ops = rs->ops;
    row->records = rs->records;
    row->key_size = cfg->key_size;
    row->value_size = cfg->value_size;
    row->write_amp = row->space_amp = row->fsyncs_per_op = row->sync_probe_mean_us = NAN;
    bool null = !strcmp(rs->engine, BENCH_NULL_NAME);
    row->io_source = null ? "none" : bench_is_peer(rs->engine) ? "process" : "kv_stats";
    if (!null) {
        kv_limits lim;
        kv_engine_limits(rs->engine, &lim);
        if (!(kv_engine_durability_mask(rs->engine) & KV_DURABILITY_BIT(rs->durability.kind))) {
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
        run_dir(cfg, rs, mode, dir, sizeof dir);
        if (!io_rmtree(dir))
            rc = fail_run(err, cap, rs, "setup", "cannot remove an old run directory");
        else if (make_options(cfg, rs->engine, rs->durability, &o) != KV_OK)
            rc = fail_run(err, cap, rs, "options", kv_errmsg());
    }

    /* Load phase. */
    if (rc == 0 && rs->wl->needs_load) {
        kv_db *db = NULL;
        kv_options lo = o;
        if (kv_engine_durability_mask(rs->engine) & KV_DURABILITY_BIT(KV_DURABILITY_OS))
            lo.durability = (kv_durability){KV_DURABILITY_OS, 0};
        if (!null && kv_open(rs->engine, dir, &lo, &db) != KV_OK) {
            rc = fail_run(err, cap, rs, "load: open", kv_errmsg());
        } else {
            wl_thread lt;
            double secs = 0;
            memset(&lt, 0, sizeof lt);
            sh.db = db;
            uint64_t hb;
            monitor lm; /* watches the load for a hang; no progress line */
            memset(&lm, 0, sizeof lm);
            lm.quiet = true;
            snprintf(lm.label, sizeof lm.label, "%s %s load", rs->engine, rs->wl->name);
            rc = run_threads(&sh, &lt, 1, true, rs->records, &lm, &secs, &hb);
            if (rc)
                fail_run(err, cap, rs, "load", sh.error);
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
    if (rc == 0) {
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
        kv_status s = null ? KV_OK : kv_open(rs->engine, dir, &o, &db);
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
        fill_latency(row, ts, nt);
        row->live_bytes = live_records(&sh, row) * (cfg->key_size + cfg->value_size);
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
