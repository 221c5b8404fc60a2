/* The benchmark's clock: the x86 time-stamp counter when the CPU says it is invariant
 * (constant_tsc and nonstop_tsc in /proc/cpuinfo), calibrated against CLOCK_MONOTONIC: a read
 * is an instruction, where clock_gettime is a call into the vDSO; elsewhere CLOCK_MONOTONIC
 * itself. One read per operation (workloads.c), the largest part of the harness's cost; the
 * report's harness-overhead table shows what it comes to. */
#ifndef KVLAB_BENCH_CLOCK_H
#define KVLAB_BENCH_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* Nanoseconds per tick (1 when the clock is CLOCK_MONOTONIC), set by bench_clock_init. */
extern double bench_ns_per_tick;
extern bool bench_use_tsc;

/* Chooses the clock and calibrates it (about 20 ms, once per process; later calls return at
 * once). Thread-safe. */
void bench_clock_init(void);

/* Which clock is in use: "tsc" or "clock_gettime(CLOCK_MONOTONIC)". */
const char *bench_clock_name(void);

/* What one bench_ticks() costs, in nanoseconds: the least mean of 5 rounds of 100,000
 * back-to-back reads (about 5 ms in all). The harness reads the clock once per operation, so
 * this is the floor of its cost per operation (the report's harness-overhead section). Calls
 * bench_clock_init. */
double bench_clock_read_ns(void);

/* A reading in ticks. */
static inline uint64_t bench_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (bench_use_tsc)
        return __rdtsc();
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Ticks to nanoseconds. */
static inline uint64_t bench_ticks_ns(uint64_t ticks)
{
    return bench_use_tsc ? (uint64_t)((double)ticks * bench_ns_per_tick) : ticks;
}

#endif
