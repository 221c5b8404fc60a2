/* kvlab bench: configuration, run plan and result rows (DESIGN.md section 7).
 *
 * A plan is a list of runs (engine x workload x durability x threads). Each run gets a fresh
 * database directory; a workload that reads or changes existing data first loads its records
 * unmeasured (random order, batches of 256, durability os), closes and reopens the database in
 * the run's durability mode, then measures. One result row per run. */
#ifndef KVLAB_BENCH_BENCH_H
#define KVLAB_BENCH_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "workloads.h"

#define BENCH_MAX_ENGINES    16
#define BENCH_MAX_WORKLOADS  24
#define BENCH_MAX_THREADS    8
#define BENCH_MAX_DURABILITY 8
#define BENCH_MAX_OPTS       32
#define BENCH_PATH_MAX       1024

typedef struct bench_cfg {
    char engines[BENCH_MAX_ENGINES][48]; /* includes "null" when chosen */
    size_t n_engines;
    char workloads[BENCH_MAX_WORKLOADS][48];
    size_t n_workloads;
    kv_durability durability[BENCH_MAX_DURABILITY];
    size_t n_durability;
    unsigned threads[BENCH_MAX_THREADS];
    size_t n_threads;
    uint64_t num;        /* records: keys of a fill, records loaded before other workloads */
    uint64_t ops;        /* measured operations of non-fill workloads (default: num) */
    uint64_t sync_ops;   /* operations of fillsync (default: num / 100, at least 100) */
    uint64_t scan_ops;   /* operations of ycsb-e (default: ops / 10, at least 100) */
    uint64_t key_size;   /* bytes (default 16) */
    uint64_t value_size; /* bytes (default 100) */
    uint64_t cache_size; /* bytes, 0 = each engine's default */
    uint64_t seed;
    double max_seconds; /* per measured run; 0 = no limit */
    unsigned probes;    /* fdatasync probes of the machine description (default 200) */
    /* --cpu-load: busy-loop threads beside every measured phase (cpuload.h), 0: none */
    unsigned cpu_load;
    char dir[BENCH_PATH_MAX];
    char out[BENCH_PATH_MAX];
    const char *opts[BENCH_MAX_OPTS]; /* -o values: "key=value" or "engine:key=value" */
    size_t n_opts;
    bool is_default, keep, no_plots, dir_given, quiet;
    char cmdline[2048];
} bench_cfg;

/* Parses the arguments of kvlab bench (argv[0] is the first one after "bench") into cfg.
 * Returns 0 to run, 1 when --help was printed, 2 after writing a one-line error into err
 * (cap bytes). Does not touch the file system. */
int bench_parse_args(int argc, char **argv, bench_cfg *cfg, char *err, size_t cap);

/* Prints the help of kvlab bench. */
void bench_print_help(void);

typedef struct run_spec {
    const char *engine; /* points into the cfg */
    const wl_def *wl;
    kv_durability durability;
    unsigned threads;
    uint64_t records; /* loaded before the measured phase (0 for fills) */
    uint64_t ops;     /* measured operations planned */
    /* busy-loop threads beside the measured phase (cpuload.h), 0: none */
    unsigned cpu_load;
} run_spec;

/* Builds the run list of cfg (malloc'd, *n entries; caller frees). Returns false (with err)
 * when a key of key_size bytes cannot number every record. */
bool bench_plan(const bench_cfg *cfg, run_spec **out, size_t *n, char *err, size_t cap);

/* The peers (production engines) among registered names; every other engine but null is one
 * of kvlab's own. */
bool bench_is_peer(const char *engine);

typedef struct bench_row {
    char engine[48], workload[48], durability[32];
    unsigned threads;
    /* busy-loop threads that ran beside the measured phase (--cpu-load), 0: none */
    unsigned cpu_load;
    bool na;        /* the engine cannot run this (durability mode, key size): "n/a" */
    char note[256]; /* why n/a, or "stopped at the time limit" */
    uint64_t ops, planned_ops, records;
    double seconds, ops_per_sec, mb_per_sec;
    double p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
    double write_amp, space_amp, fsyncs_per_op; /* NAN when not applicable */
    /* Durability sync: the mean fdatasync latency (us) of a short probe of the bench directory
     * made just before the measured phase (after its syncfs), so 1 / it is this run's one-thread
     * bound; NAN in other modes, for null, or when the probe is off (--probes 0) or failed. */
    double sync_probe_mean_us;
    uint64_t peak_mem_bytes;
    double load_seconds;
    uint64_t key_size, value_size;
    /* raw counters behind the amplification figures */
    const char *io_source; /* "kv_stats", "process" (peers) or "none" (null) */
    uint64_t user_bytes, file_bytes_written, disk_bytes, live_bytes, syncs, wchar, write_bytes;
    kv_stat_counter extra[KV_STATS_EXTRA_MAX];
    size_t n_extra;
} bench_row;

/* Runs one planned run into row. Returns 0 (row filled, possibly n/a) or -1 when the run
 * failed (an engine error or a wrong value read): the message is in err (cap bytes). */
int bench_run(const bench_cfg *cfg, const run_spec *rs, bench_row *row, char *err, size_t cap);

#endif
