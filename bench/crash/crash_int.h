/* Internals shared by the crash checker's files (bench/crash/). Not a public header. */
#ifndef KVLAB_CRASH_INT_H
#define KVLAB_CRASH_INT_H

#include <stdarg.h>

#include "crash.h"
#include "crash_oracle.h"

/* Everything one run needs, resolved from a crash_config. */
typedef struct crash_ctx {
    const crash_config *c;
    const kv_engine *e;
    crash_workload w;
    kv_options opts;   /* durability and engine options; fs set per open */
    char *base;        /* this run's scratch directory (removed at the end) */
    uint64_t last_bad; /* last point counted as a violation (one count per point) */
    bool any_bad;
    bool quiet_said;   /* the "further violations not printed" note was printed */
    uint64_t *ack_ns;  /* monotonic time each commit was acknowledged (ncommits entries) */
    uint64_t crash_ns; /* when the crash happened (0: do not measure the loss window) */
} crash_ctx;

/* What the run is doing now ("btree sync point 17"), for the CLI's fatal-signal message: a
 * crash of the engine during recovery must still tell how to replay it. */
extern char crash_now_doing[160];
void crash_set_doing(const crash_ctx *x, const char *what, uint64_t point);

/* Monotonic clock in nanoseconds. */
uint64_t crash_now_ns(void);

/* Resolves the engine, builds the workload and the options and makes a scratch directory
 * named after tag. Errors: KV_INVALID, KV_NOTSUP (mode), KV_IO. */
kv_status crash_ctx_init(crash_ctx *x, const crash_config *c, const char *tag);
void crash_ctx_free(crash_ctx *x);

/* The engine of a registry name, or NULL. */
const kv_engine *crash_find_engine(const char *name);
/* Engine options ("key=value", *n of them; NULL when the engine has none) that bring an
 * engine's rare paths within a few hundred commits: log switches and rotations, checkpoints,
 * merges, memtable flushes, compactions, manifest roll-overs, SQLite's WAL checkpoints. */
const char *const *crash_small_options(const char *engine, size_t *n);

/* Whether name is a production peer (leveldb, rocksdb, lmdb, sqlite). */
bool crash_is_peer(const char *name);

/* Result of running the workload on an open handle until it ends or an op fails. */
typedef struct crash_progress {
    size_t acked;     /* commits acknowledged (returned KV_OK): [0, acked) */
    size_t synced;    /* commits before the last acknowledged kv_sync */
    bool failed;      /* commit `acked` failed */
    kv_status status; /* its status */
    char msg[256];    /* its message */
} crash_progress;

/* The crash generator's seed for point n, so that --at N replays exactly point N. */
uint64_t crash_point_seed(uint64_t seed, uint64_t n);

/* Chooses k distinct points of [1, total] (seeded; k = 0 or k >= total: all of them),
 * ascending, into a malloc'd array of *count entries. NULL when out of memory. */
uint64_t *crash_choose_points(uint64_t total, size_t k, uint64_t seed, size_t *count);

/* crash_run through crashfs (fuse_sweep.c). Errors as crash_run; KV_IO with a one-line message
 * "crash: FUSE is not available: ..." when no FUSE file system can be mounted here. */
kv_status crash_fuse_run(const crash_config *c, crash_result *res);

/* Runs the workload from commit 0 on db. */
void crash_run_workload(crash_ctx *x, kv_db *db, crash_progress *p);

/* Reopens dir with posix, runs kv_check, reads the state and judges it with [lo, acked +
 * inflight]. Updates res (recoveries, failures, lost writes, violations) for point `point`.
 * Returns true when the point is free of violations. */
bool crash_verify(crash_ctx *x, const char *dir, size_t acked, bool inflight, size_t lo,
                  uint64_t point, const char *what, crash_result *res);

/* crash_verify in a forked child (alarm 120 s), its counters merged into res. The parent then
 * never initialises the engine's library: a peer like RocksDB starts process-wide background
 * threads on first use, which a later fork() would not carry into the next child (its flushes
 * would wait forever). A crash or hang of the child is a violation. */
bool crash_verify_in_child(crash_ctx *x, const char *dir, size_t acked, bool inflight, size_t lo,
                           uint64_t point, const char *what, crash_result *res);

/* Runs fn(x, arg) in a forked child under alarm(timeout_s); returns its exit status as
 * waitpid() gives it, or -1 when fork fails. The child exits with fn's return value. */
int crash_in_child(crash_ctx *x, int (*fn)(crash_ctx *x, void *arg), void *arg, unsigned timeout_s);

/* Records a violation of point in res (first one kept) and prints it to the log. */
void crash_violation(crash_ctx *x, crash_result *res, uint64_t point, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prints to the config's log (if any). */
void crash_logf(const crash_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Directory helpers on the real file system. */
int crash_mkdir_p(const char *path);
void crash_rmtree(const char *path);
/* Copies the regular files of dir `from` into the (existing) dir `to`, skipping KVLAB.LOCK.
 * Subdirectories are copied recursively. Returns 0 or -1. */
int crash_copy_dir(const char *from, const char *to);
/* malloc'd printf. Aborts when out of memory (tooling only). */
char *crash_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
