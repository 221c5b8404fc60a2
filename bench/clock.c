/* clock.h: choosing and calibrating the benchmark clock. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

double bench_ns_per_tick = 1.0;
bool bench_use_tsc = false;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool tsc_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[4096];
    bool constant = false, nonstop = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5))
            continue;
        constant = strstr(line, " constant_tsc") != NULL;
        nonstop = strstr(line, " nonstop_tsc") != NULL;
        break;
    }
    fclose(f);
    return constant && nonstop;
#else
    return false;
#endif
}

static void init(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (!tsc_invariant())
        return;
    uint64_t n0 = mono_ns(), t0 = __rdtsc();
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t n1 = mono_ns(), t1 = __rdtsc();
    if (t1 <= t0 || n1 <= n0)
        return;
    bench_ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
    bench_use_tsc = true;
#endif
}

void bench_clock_init(void)
{
    pthread_once(&once, init);
}

const char *bench_clock_name(void)
{
    return bench_use_tsc ? "tsc" : "clock_gettime(CLOCK_MONOTONIC)";
}

double bench_clock_read_ns(void)
{
    bench_clock_init();
    double best = 0;
    for (int round = 0; round < 5; round++) {
        enum { READS = 100000 };
        volatile uint64_t sink = 0; /* keeps the reads from being folded away */
        uint64_t n0 = mono_ns();
        for (int i = 0; i < READS; i++)
            sink += bench_ticks();
        double ns = (double)(mono_ns() - n0) / READS;
        (void)sink;
        if (round == 0 || ns < best)
            best = ns;
    }
    return best;
}
