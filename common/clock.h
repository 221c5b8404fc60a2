/* clock.h: monotonic time in microseconds and absolute deadlines for pthread_cond_timedwait, the
 * two time computations the engines' waits share (group commit, the interval syncer, merges). */
#ifndef KVLAB_CLOCK_H
#define KVLAB_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds on CLOCK_MONOTONIC (arbitrary origin: for intervals only). */
static inline uint64_t kv_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The time us microseconds from now on clock clk (CLOCK_MONOTONIC for a condition variable
 * created with that clock, CLOCK_REALTIME for a default one), as pthread_cond_timedwait's
 * absolute deadline. */
static inline struct timespec kv_deadline_us(clockid_t clk, uint64_t us)
{
    struct timespec t;
    clock_gettime(clk, &t);
    uint64_t ns = (uint64_t)t.tv_nsec + (us % 1000000u) * 1000u;
    t.tv_sec += (time_t)(us / 1000000u + ns / 1000000000u);
    t.tv_nsec = (long)(ns % 1000000000u);
    return t;
}

#endif
