/* monitor.h: memory peak, progress line, time limit. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "monitor.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t monitor_memory_now(void)
{
    uint64_t a = kv_mem_allocated();
    if (a)
        return a;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t ops_done(const monitor *m)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < m->n_threads; i++)
        n += atomic_load_explicit(&m->threads[i].done, memory_order_relaxed);
    return n;
}

static void *loop(void *arg)
{
    monitor *m = arg;
    uint64_t last_print = m->start_ns, last_done = 0, last_change = m->start_ns;
    while (!atomic_load(&m->quit)) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t mem = monitor_memory_now();
        if (mem > m->peak)
            m->peak = mem;
        uint64_t now = now_ns();
        double elapsed = (double)(now - m->start_ns) / 1e9;
        if (m->max_seconds > 0 && elapsed > m->max_seconds && !m->timed_out) {
            m->timed_out = true;
            atomic_store(&m->sh->stop, 1);
        }
        uint64_t done = ops_done(m);
        if (done != last_done) {
            last_done = done;
            last_change = now;
        } else if (now - last_change > MONITOR_STALL_SECONDS * 1000000000ull) {
            fprintf(stderr,
                    "\nkvlab: bench: %s: no operation finished for %d s: the engine hangs; "
                    "stopping (the runs before this one are in results.csv)\n",
                    m->label, MONITOR_STALL_SECONDS);
            _exit(3);
        }
        if (m->tty && !m->quiet && now - last_print >= 1000000000ull) {
            last_print = now;
            double rate = elapsed > 0 ? (double)done / elapsed : 0;
            double eta = rate > 0 ? (double)(m->planned_ops - done) / rate : 0;
            fprintf(stderr, "\r\033[K%s: %llu/%llu ops, %.0f ops/s, ETA %.0f s", m->label,
                    (unsigned long long)done, (unsigned long long)m->planned_ops, rate, eta);
            fflush(stderr);
        }
    }
    if (m->tty && !m->quiet) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    return NULL;
}

bool monitor_start(monitor *m)
{
    m->tty = isatty(STDERR_FILENO);
    m->start_ns = now_ns();
    m->baseline = m->peak = monitor_memory_now();
    m->timed_out = false;
    atomic_store(&m->quit, 0);
    return pthread_create(&m->thread, NULL, loop, m) == 0;
}

void monitor_stop(monitor *m)
{
    atomic_store(&m->quit, 1);
    pthread_join(m->thread, NULL);
    uint64_t mem = monitor_memory_now();
    if (mem > m->peak)
        m->peak = mem;
}
