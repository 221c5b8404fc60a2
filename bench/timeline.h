/* Throughput over time: ops/s and p99 latency per 100 ms of a run's measured phase, so that
 * compaction stalls, checkpoints and merges show (docs/design.md section 7). Built after the run
 * from the latencies the threads kept: in a closed loop an operation ends one latency after the
 * previous one ended (the harness reads the clock once per operation), in a --rate run one
 * latency after it was due; so the timeline costs the measured loop nothing. */
#ifndef KVLAB_BENCH_TIMELINE_H
#define KVLAB_BENCH_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"
#include "workloads.h"

/* The width of an interval (seconds). */
#define TIMELINE_INTERVAL_S 0.1

/* Builds tl (malloc'd arrays, free with timeline_free) from the n threads ts of a finished run
 * (after wl_thread_finish). Intervals count from the earliest thread start; an operation counts
 * in the interval where it ended; an interval's p99 is that of the operations that ended in
 * it (NAN when none did). Returns false, tl empty, when a thread kept no latency array (more
 * operations than the harness keeps) or memory ran out. */
bool timeline_build(const wl_thread *ts, unsigned n, bench_timeline *tl);

/* The lowest throughput over `window` consecutive whole intervals (a shorter last interval is
 * left out), divided by mean_ops_per_sec: 10 intervals give the lowest 1-second throughput as
 * a fraction of the mean. NAN when the run has fewer whole intervals than window. */
double timeline_min_window_fraction(const bench_timeline *tl, size_t window,
                                    double mean_ops_per_sec);

void timeline_free(bench_timeline *tl);

#endif
