/* The benchmark workloads: LevelDB's db_bench set and YCSB's core workloads A to F
 * (Cooper et al., SoCC 2010, with the proportions of YCSB's workloads/workload[a-f] files),
 * and the per-thread loops that run them against a target (an open kv_db or the null engine). */
#ifndef KVLAB_BENCH_WORKLOADS_H
#define KVLAB_BENCH_WORKLOADS_H

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "keyval.h"
#include "kv.h"
#include "zipf.h"

typedef enum wl_kind {
    WL_FILLSEQ,      /* put every key once in key order, into an empty database */
    WL_FILLRANDOM,   /* put every key once in a random order (a permutation) */
    WL_OVERWRITE,    /* put uniformly random existing keys (new versions) */
    WL_READRANDOM,   /* get uniformly random existing keys; check each value */
    WL_READSEQ,      /* iterate in key order; check each record */
    WL_READMISSING,  /* get absent keys (an existing key plus a '.' byte, as db_bench) */
    WL_SEEKRANDOM,   /* new iterator, seek to a random existing key, read that record */
    WL_DELETERANDOM, /* delete every key once in a random order */
    WL_FILLSYNC,     /* fillrandom of fewer keys, always in durability sync (db_bench) */
    WL_YCSB,         /* a YCSB mix (proportions below) after a load phase */
    WL_RECOVER,      /* load in a child process killed by SIGKILL, then time the recovering open
                        (recover.c) */
} wl_kind;

typedef enum wl_dist { DIST_UNIFORM, DIST_ZIPFIAN, DIST_LATEST } wl_dist;

typedef struct wl_def {
    const char *name;
    wl_kind kind;
    bool needs_load; /* records are loaded (unmeasured) before the measured phase */
    const char *help;
    /* YCSB operation proportions (sum 1) and request distribution. */
    double read, update, insert, scan, rmw;
    wl_dist dist;
} wl_def;

/* Every workload, NULL-name terminated, in the order kvlab bench --help lists them. */
extern const wl_def wl_table[];

/* The workload named name, or NULL. */
const wl_def *wl_find(const char *name);

/* YCSB's maximum scan length (workload E: uniform in [1, 100]). */
#define WL_MAX_SCAN 100

/* What the threads of one run share. The version array holds, per record index, the number of
 * versions issued (0: never written); ins_acked flags the records inserted during the run. */
typedef struct wl_shared {
    const wl_def *wl;
    kv_db *db; /* NULL for the null engine */
    bool null;
    size_t key_size, value_size;
    uint64_t records;  /* records present at the start (loaded) */
    uint64_t capacity; /* size of versions: records + the most inserts a run can do */
    _Atomic uint32_t *versions;
    _Atomic uint8_t *ins_acked; /* [max_inserts]: set once an insert is acknowledged */
    uint64_t max_inserts;       /* inserts the run may do (YCSB D and E: its ops), else 0 */
    _Atomic uint64_t ins_next;  /* next record index to insert */
    uint64_t zipf_items;        /* key space of the scrambled zipfian (YCSB's expected keys) */
    zipf_gen latest_base;       /* zipfian over records, copied to each thread for 'latest' */
    kvb_perm perm;              /* fill and delete order */
    unsigned threads;
    uint8_t *keytab;        /* [capacity x key_size]: every record's key, for the workloads that
                               iterate (the null engine's iterator returns these, checks compare with
                               them), or NULL */
    uint32_t fixed_version; /* read-only workloads: every record has this version (1), so the
                               checks need not load versions[] (a cache miss per read) */
    uint64_t seed;
    /* Open loop (--rate): operations per second across all threads (0: closed loop), and
     * whether the gaps between scheduled starts are exponential (Poisson) or constant. */
    uint64_t rate;
    bool poisson;
    _Atomic int stop; /* set on error or time limit: threads finish early */
    _Atomic int failed;
    char error[1024]; /* the first error (set once, under failed) */
} wl_shared;

/* One thread's state. */
typedef struct wl_thread {
    wl_shared *sh;
    unsigned id;
    uint64_t first, count; /* this thread's slice of the operations */
    bench_rng rng;
    zipf_scrambled zs;
    zipf_gen latest;
    kv_histogram *hist;
    uint64_t bytes;            /* key + value bytes moved by completed operations */
    _Atomic uint64_t done;     /* operations completed (for progress and the time limit) */
    uint8_t *key, *key2, *val; /* scratch: key_size + 1, key_size + 1, value_size bytes */
    kv_batch *batch;           /* for the load phase */
    /* The plan: the thread's operations drawn before the measured phase (NULL when the
     * workload's keys depend on the run, as YCSB's 'latest', or the plan would not fit in
     * WL_PLAN_MAX_BYTES: then they are drawn during the run). */
    uint64_t *plan_idx; /* [count] the record index of each operation */
    uint8_t *plan_key;  /* [count x key_size] its key */
    uint8_t *plan_op;   /* [count] YCSB: the operation (wl_op), or NULL */
    uint8_t *plan_len;  /* [count] ycsb-e: the scan length, or NULL */
    uint32_t *lat;      /* [count] latency of each operation in clock ticks (UINT32_MAX: in big);
                           put into hist by wl_thread_finish and kept for the timeline; NULL:
                           straight into hist (then there is no timeline) */
    uint32_t *svc;      /* [count] --rate runs: service time of each operation (ticks) */
    kv_histogram *svc_hist; /* --rate runs: the service times */
    struct wl_big {
        uint64_t j, ticks;
    } * big; /* latencies of UINT32_MAX ticks or more, in operation order */
    size_t n_big, cap_big;
    uint64_t start_tick; /* clock reading at the start of the thread's measured loop */
    /* wl_load: when set, [0] receives the records handed to kv_write so far (before the call)
     * and [1] the records acknowledged (after it), so a crash between them is in that batch. */
    _Atomic uint64_t *progress;
} wl_thread;

/* The schedule of a thread's operations in a --rate run: operation j is due sched_next's j-th
 * answer ticks after the thread's start_tick. The rate is split evenly across the threads;
 * Poisson gaps come from a generator seeded by (seed, thread), apart from the operations' own,
 * so the same operations run as in a closed-loop run. */
typedef struct wl_sched {
    double gap;  /* mean ticks between two scheduled starts */
    double next; /* the next due offset (ticks) */
    bool poisson;
    bench_rng rng;
} wl_sched;

void wl_sched_init(wl_sched *s, const wl_thread *t);

/* The due offset of the next operation (ticks after start_tick; 0 for the first). */
static inline uint64_t wl_sched_next(wl_sched *s)
{
    uint64_t due = (uint64_t)s->next;
    if (s->poisson)
        s->next += -log1p(-rng_double(&s->rng)) * s->gap; /* exponential, mean gap */
    else
        s->next += s->gap;
    return due;
}

/* The most memory one thread's plan may take (bytes); a bigger run draws its keys as it goes,
 * which costs every operation a Feistel permutation, a key formatted and a cache miss on its
 * version (the null engine's time per operation shows it). A plan takes 26 bytes per operation
 * with 16-byte keys, so 1 GiB covers a one-thread fill of 20M records (the scale suite's
 * largest) with room to spare; it is harness memory, not counted as the engine's. */
#define WL_PLAN_MAX_BYTES (1ull << 30)

/* Fills sh->keytab when the workload iterates (readseq, seekrandom, YCSB scans). Returns false
 * when out of memory. The caller frees sh->keytab. */
bool wl_keytab_init(wl_shared *sh);

/* Allocates the thread's scratch buffers and histogram and, for the measured phase (load
 * false), draws its plan. Returns false when out of memory. */
bool wl_thread_init(wl_thread *t, wl_shared *sh, unsigned id, uint64_t first, uint64_t count,
                    bool load);
void wl_thread_free(wl_thread *t);

/* Runs the thread's slice of the measured workload. Returns 0, or -1 after recording the first
 * error in sh->error and setting sh->stop. */
int wl_thread_run(wl_thread *t);

/* Puts the latencies kept during wl_thread_run into t->hist (and t->svc_hist) (call after the
 * run's clock has stopped: this is not the engine's time). The arrays stay for the timeline
 * until wl_thread_free. */
void wl_thread_finish(wl_thread *t);

/* The latency of operation j (< done) in ticks, from lat or the overflow list (*big_pos: a
 * cursor into it, start at 0, for operations visited in order). */
uint64_t wl_thread_latency(const wl_thread *t, uint64_t j, size_t *big_pos);

/* Loads records [first, first + count) of the permutation sh->perm as version 1 with batches
 * of up to WL_LOAD_BATCH puts or WL_LOAD_BATCH_BYTES (the unmeasured load phase). After each
 * acknowledged batch, t->progress (when set) receives the records written and acknowledged.
 * When sh->stop is set (the time limit) it returns at the next batch boundary; t->done says how
 * far it got. Returns 0 or -1 (error in sh->error). */
#define WL_LOAD_BATCH       256
#define WL_LOAD_BATCH_BYTES (1u << 20)
int wl_load(wl_thread *t);

/* Records the first error of a run (printf-style) and tells every thread to stop. */
void wl_fail(wl_shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
