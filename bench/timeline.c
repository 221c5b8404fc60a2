/* timeline.h: per-interval throughput and p99 from the latencies a run kept. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "histogram.h"
#include "timeline.h"

/* Walks one thread's operations in order, giving each one's end time and latency (ticks). */
typedef struct cursor {
    const wl_thread *t;
    uint64_t j, done;
    uint64_t end; /* end time of operation j (valid while j < done) */
    uint64_t lat; /* its latency */
    size_t big_pos;
    wl_sched sched; /* --rate runs: the due times again */
} cursor;

static void cursor_load(cursor *c)
{
    if (c->j >= c->done)
        return;
    c->lat = wl_thread_latency(c->t, c->j, &c->big_pos);
    if (c->t->sh->rate)
        c->end = c->t->start_tick + wl_sched_next(&c->sched) + c->lat;
    else
        c->end += c->lat; /* closed loop: from the previous operation's end */
}

static void cursor_init(cursor *c, const wl_thread *t)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->done = atomic_load(&((wl_thread *)t)->done);
    if (c->done > t->count)
        c->done = t->count;
    c->end = t->start_tick;
    if (t->sh->rate)
        wl_sched_init(&c->sched, t);
    cursor_load(c);
}

static void cursor_next(cursor *c)
{
    c->j++;
    cursor_load(c);
}

bool timeline_build(const wl_thread *ts, unsigned n, bench_timeline *tl)
{
    memset(tl, 0, sizeof *tl);
    tl->interval_s = TIMELINE_INTERVAL_S;
    cursor *cs = calloc(n ? n : 1, sizeof *cs);
    kv_histogram *h = kv_histogram_new();
    bool ok = cs && h;
    uint64_t first = UINT64_MAX, last = 0;
    for (unsigned i = 0; ok && i < n; i++) {
        if (!ts[i].lat && ts[i].count) {
            ok = false;
            break;
        }
        cursor_init(&cs[i], &ts[i]);
        if (cs[i].done == 0)
            continue;
        if (ts[i].start_tick < first)
            first = ts[i].start_tick;
        /* the last end: walk a copy of the cursor to the end */
        cursor c = cs[i];
        while (c.j + 1 < c.done)
            cursor_next(&c);
        if (c.end > last)
            last = c.end;
    }
    if (!ok || first == UINT64_MAX || last <= first) {
        free(cs);
        kv_histogram_free(h);
        return false;
    }
    double iv_ticks = TIMELINE_INTERVAL_S * 1e9 / bench_ns_per_tick;
    double span = (double)(last - first);
    size_t k_n = (size_t)ceil(span / iv_ticks);
    if (k_n == 0)
        k_n = 1;
    tl->ops_per_sec = malloc(k_n * sizeof *tl->ops_per_sec);
    tl->p99_us = malloc(k_n * sizeof *tl->p99_us);
    if (!tl->ops_per_sec || !tl->p99_us) {
        timeline_free(tl);
        free(cs);
        kv_histogram_free(h);
        return false;
    }
    tl->n = k_n;
    tl->last_s = span * bench_ns_per_tick / 1e9 - (double)(k_n - 1) * TIMELINE_INTERVAL_S;
    for (size_t k = 0; k < k_n; k++) {
        bool final = k + 1 == k_n;
        uint64_t limit = first + (uint64_t)((double)(k + 1) * iv_ticks);
        uint64_t count = 0;
        kv_histogram_reset(h);
        for (unsigned i = 0; i < n; i++) {
            cursor *c = &cs[i];
            while (c->j < c->done && (final || c->end < limit)) {
                kv_histogram_record(h, bench_ticks_ns(c->lat));
                count++;
                cursor_next(c);
            }
        }
        double len = final ? tl->last_s : TIMELINE_INTERVAL_S;
        tl->ops_per_sec[k] = len > 0 ? (double)count / len : 0;
        tl->p99_us[k] = count ? (double)kv_histogram_percentile(h, 99) / 1000.0 : NAN;
    }
    free(cs);
    kv_histogram_free(h);
    return true;
}

double timeline_min_window_fraction(const bench_timeline *tl, size_t window,
                                    double mean_ops_per_sec)
{
    size_t whole = tl->n;
    if (whole && tl->last_s < TIMELINE_INTERVAL_S * 0.999)
        whole--;
    if (window == 0 || whole < window || !(mean_ops_per_sec > 0))
        return NAN;
    double sum = 0, best = INFINITY;
    for (size_t k = 0; k < whole; k++) {
        sum += tl->ops_per_sec[k];
        if (k >= window)
            sum -= tl->ops_per_sec[k - window];
        if (k + 1 >= window && sum < best)
            best = sum;
    }
    return best / (double)window / mean_ops_per_sec;
}

void timeline_free(bench_timeline *tl)
{
    free(tl->ops_per_sec);
    free(tl->p99_us);
    tl->ops_per_sec = tl->p99_us = NULL;
    tl->n = 0;
}
