/* The companion thread of a run: samples memory every 10 ms (jemalloc stats.allocated, or the
 * resident set size without jemalloc) to find the run's peak, draws a progress line on stderr
 * when stderr is a terminal (workload, ops done, ops/s, ETA), stops the run at its time limit,
 * and ends the process (exit 3, with a message) when no operation has finished for
 * MONITOR_STALL_SECONDS: an engine call that never returns cannot be stopped otherwise. */
#ifndef KVLAB_BENCH_MONITOR_H
#define KVLAB_BENCH_MONITOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "workloads.h"

#define MONITOR_STALL_SECONDS 300

typedef struct monitor {
    pthread_t thread;
    wl_thread *threads;
    unsigned n_threads;
    wl_shared *sh;
    uint64_t planned_ops;
    double max_seconds; /* 0: no limit */
    char label[160];
    bool tty;
    bool quiet; /* no progress line (the load phase) */
    uint64_t start_ns;
    uint64_t baseline; /* memory at the start */
    uint64_t peak;     /* highest sample */
    bool timed_out;
    _Atomic int quit;
} monitor;

/* The memory figure sampled: jemalloc stats.allocated when available, else the current
 * resident set size from /proc/self/statm (bytes). */
uint64_t monitor_memory_now(void);

/* Starts the thread (baseline taken now). Returns false when it cannot start. */
bool monitor_start(monitor *m);

/* Stops and joins it (the progress line is erased). */
void monitor_stop(monitor *m);

#endif
