/* CPU load beside a benchmark run (kvlab bench --cpu-load N): busy-loop threads in a separate
 * process, so that a run can be measured on a machine whose cores are not idle, as a database
 * server's rarely are.
 *
 * cpuload_start forks one helper process while the caller has no other thread (a child of a
 * multi-threaded process may only call async-signal-safe functions, and the helper starts
 * threads). The helper starts its threads at once and parks them; cpuload_run(n) sets n of them
 * spinning (a plain loop, no system call, no memory traffic) and returns once all n spin, so that
 * a measured phase bracketed by cpuload_run(n) and cpuload_run(0) has the load from its first
 * operation to its last. The helper exits when the parent closes the connection or dies. */
#ifndef KVLAB_BENCH_CPULOAD_H
#define KVLAB_BENCH_CPULOAD_H

#include <stdbool.h>
#include <stddef.h>

/* The most busy-loop threads --cpu-load takes. */
#define CPULOAD_MAX 64

/* Forks the helper process with max_threads (1 to CPULOAD_MAX) parked threads. Call it before
 * the process starts any thread. Returns false with a one-line message in err (cap bytes) when
 * the helper cannot be started (socketpair, fork, or the helper's thread creation failed), or
 * when a helper already runs. */
bool cpuload_start(unsigned max_threads, char *err, size_t cap);

/* Sets n busy-loop threads spinning in the helper (0 parks them all) and returns once exactly n
 * spin. Returns false with a message in err (cap bytes) when n is above the helper's threads,
 * when no helper was started (n > 0), or when the helper is gone. */
bool cpuload_run(unsigned n, char *err, size_t cap);

/* Stops the helper process and waits for it. Does nothing when none runs. */
void cpuload_stop(void);

#endif
