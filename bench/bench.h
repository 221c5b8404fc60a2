/* kvlab bench: configuration, run plan and result rows (docs/design.md section 7).
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
#include "kv_engine.h"
#include "workloads.h"

#define BENCH_MAX_ENGINES    16
#define BENCH_MAX_WORKLOADS  24
#define BENCH_MAX_THREADS    8
#define BENCH_MAX_DURABILITY 8
#define BENCH_MAX_OPTS       32
#define BENCH_PATH_MAX       1024
#define BENCH_MAX_NUMS       8
#define BENCH_MAX_RATES      8

/* The cache budget every engine and peer gets unless --cache-size says otherwise (bytes). */
#define BENCH_DEFAULT_CACHE (64ull << 20)

/* How --rate spaces the scheduled starts of operations: evenly (wrk2, YCSB -target) or with
 * exponential gaps (a Poisson process), seeded. */
typedef enum bench_arrival { ARRIVAL_CONSTANT, ARRIVAL_POISSON } bench_arrival;

typedef struct bench_cfg {
    char engines[BENCH_MAX_ENGINES][48]; /* includes "null" when chosen */
    size_t n_engines;
    char workloads[BENCH_MAX_WORKLOADS][48];
    size_t n_workloads;
    kv_durability durability[BENCH_MAX_DURABILITY];
    size_t n_durability;
    unsigned threads[BENCH_MAX_THREADS];
    size_t n_threads;
    uint64_t num;      /* records: keys of a fill, records loaded before other workloads */
    uint64_t ops;      /* measured operations of non-fill workloads (default: num) */
    uint64_t sync_ops; /* operations of fillsync (default: num / 100, at least 100) */
    uint64_t scan_ops; /* operations of ycsb-e (default: ops / 10, at least 100) */
    /* --num as a list (a scaling run): every run is made at each of these record counts; num
     * above is the first. ops, sync_ops and scan_ops are derived per record count unless given
     * (bench_counts). */
    uint64_t nums[BENCH_MAX_NUMS];
    size_t n_nums;
    bool ops_given, sync_ops_given, scan_ops_given;
    /* --rate: operations per second across all threads, issued at scheduled times (open loop);
     * each rate is a run of its own. No rate: closed loop (each thread waits for its answer). */
    uint64_t rates[BENCH_MAX_RATES];
    size_t n_rates;
    bench_arrival arrival;
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
    /* The kvlab executable, which the recover workload starts as its loading child ("" when
     * unknown: recover runs are then n/a). kvlab bench sets it from /proc/self/exe. */
    char exe[BENCH_PATH_MAX];
    bool write_hgrm; /* write each run's merged histogram into <out>/hgrm/ (kvlab bench does) */
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
    uint64_t num;     /* the record count of the run (--num): keys of a fill, records loaded */
    uint64_t rate;    /* scheduled operations per second across threads; 0: closed loop */
    /* busy-loop threads beside the measured phase (cpuload.h), 0: none */
    unsigned cpu_load;
} run_spec;

/* The measured operations of a run at num records: --ops, --sync-ops and --scan-ops when
 * given, else derived from num as for a single --num. */
void bench_counts(const bench_cfg *cfg, uint64_t num, uint64_t *ops, uint64_t *sync_ops,
                  uint64_t *scan_ops);

/* Builds the run list of cfg (malloc'd, *n entries; caller frees). Returns false (with err)
 * when a key of key_size bytes cannot number every record. */
bool bench_plan(const bench_cfg *cfg, run_spec **out, size_t *n, char *err, size_t cap);

/* The peers (production engines) among registered names; every other engine but null is one
 * of kvlab's own. */
bool bench_is_peer(const char *engine);

/* Throughput and p99 latency per 100 ms of a run's measured phase (docs/design.md section 7), from
 * the end time of every operation (reconstructed after the run from the latencies kept). */
typedef struct bench_timeline {
    double interval_s;            /* 0.1 */
    size_t n;                     /* intervals; the last may be shorter (last_s) */
    double last_s;                /* length of the last interval (seconds) */
    double *ops_per_sec, *p99_us; /* [n]; p99 NAN for an interval without operations */
} bench_timeline;

/* What the recover workload saw: the loading child killed at a seeded point, then the
 * recovering open. */
typedef struct bench_recovery {
    uint64_t kill_at;      /* records acknowledged at which the child was killed (seeded) */
    uint64_t acked;        /* records the child had acknowledged when it died */
    uint64_t found;        /* records the recovering open found (all acked, plus possibly the
                              whole batch in flight) */
    uint64_t read_bytes;   /* bytes the open read from files: kv_stats for kvlab engines, the
                              process's rchar for peers (reads through a memory map, as btree's
                              log scan, are in neither); UINT64_MAX when unknown */
    uint64_t log_replayed; /* bytes of log the engine says it replayed (its kv_stats counter
                              "recovery_log_bytes"); UINT64_MAX when it does not say */
} bench_recovery;

typedef struct bench_row {
    char engine[48], workload[48], durability[32];
    unsigned threads;
    /* busy-loop threads that ran beside the measured phase (--cpu-load), 0: none */
    unsigned cpu_load;
    uint64_t num;        /* the run's record count (--num) */
    uint64_t rate;       /* offered operations per second (--rate); 0 for a closed-loop run */
    bool na;             /* the engine cannot run this (durability mode, key size): "n/a" */
    bool load_timed_out; /* n/a because its load did not finish within --max-seconds */
    char note[256];      /* why n/a, or "stopped at the time limit" */
    uint64_t ops, planned_ops, records;
    double seconds, ops_per_sec, mb_per_sec;
    /* Latency in microseconds: for a --rate run measured from each operation's scheduled
     * start (corrected for coordinated omission), else from the previous operation's end. */
    double p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
    /* --rate runs: service time, from the operation's actual start (NAN otherwise). */
    double svc_p50_us, svc_p90_us, svc_p99_us, svc_p999_us, svc_max_us, svc_mean_us;
    double write_amp, space_amp, fsyncs_per_op; /* NAN when not applicable */
    /* Durability sync: the mean fdatasync latency (us) of a short probe of the bench directory
     * made just before the measured phase (after its syncfs), so 1 / it is this run's one-thread
     * bound; NAN in other modes, for null, or when the probe is off (--probes 0) or failed. */
    double sync_probe_mean_us;
    uint64_t peak_mem_bytes;
    /* Bytes of the database's files resident in the page cache at the end of the measured
     * phase (pagecache.h), and (peak heap + that) / live keys; UINT64_MAX / NAN when unknown. */
    uint64_t page_cache_bytes;
    const char *page_cache_method; /* "cachestat", "mincore" or "none" */
    uint64_t live_keys;
    double mem_per_key_bytes;
    double open_seconds;     /* the open before the measured phase (recover: the recovering open) */
    double min_1s_fraction;  /* lowest ops/s over 1 s (10 intervals) / mean ops/s; NAN if < 1 s */
    uint64_t bytes_moved;    /* key + value bytes the operations moved (records a scan returned) */
    bench_timeline timeline; /* owned by the row: bench_row_free */
    bench_recovery recovery;
    char hgrm[272]; /* file name of the merged histogram in <out>/hgrm/, "" when none */
    double load_seconds;
    uint64_t key_size, value_size;
    /* raw counters behind the amplification figures */
    const char *io_source; /* "kv_stats", "process" (peers) or "none" (null) */
    uint64_t user_bytes, file_bytes_written, disk_bytes, live_bytes, syncs, wchar, write_bytes;
    kv_stat_counter extra[KV_STATS_EXTRA_MAX];
    size_t n_extra;
} bench_row;

/* Runs one planned run into row. Returns 0 (row filled, possibly n/a) or -1 when the run
 * failed (an engine error, a wrong value read, acknowledged records lost): the message is in
 * err (cap bytes). The merged histogram goes to <cfg->out>/hgrm/ (row->hgrm) when cfg->out is
 * set. The row owns memory: free it with bench_row_free. */
int bench_run(const bench_cfg *cfg, const run_spec *rs, bench_row *row, char *err, size_t cap);

/* Frees what a row owns (its timeline); the row stays readable otherwise. */
void bench_row_free(bench_row *row);

/* The kv_options of engine for a run in durability d: the cache budget and the -o options
 * meant for it (ENGINE:KEY=VALUE, or KEY=VALUE when it declares KEY). KV_INVALID when an
 * option's value is bad. The caller frees o with kv_options_free. */
kv_status bench_make_options(const bench_cfg *cfg, const char *engine, kv_durability d,
                             kv_options *o);

/* Makes engine e, which is outside libkvlab's registry, runnable by bench_run under e->name
 * (tests use it for an engine that misbehaves on purpose). At most 4; e must outlive the runs. */
void bench_add_engine(const kv_engine *e);

/* The file name stem of a run ("lsm-ycsb-a-os-t1-n100000-r20000"): engine, workload, mode
 * (':' becomes '-'), threads, record count, the rate when there is one, and "-load<N>" for a
 * run beside --cpu-load N. */
char *bench_run_name(const bench_row *r, char *buf, size_t cap);

/* The hidden entry of kvlab bench that the recover workload runs as its loading child:
 * argv[0] is the first argument after BENCH_LOAD_CHILD_FLAG (recover.c). */
#define BENCH_LOAD_CHILD_FLAG "--recover-load-child"
int bench_recover_child(int argc, char **argv);

#endif
