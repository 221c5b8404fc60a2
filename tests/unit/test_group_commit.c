/* Group commit: order, grouping, caps, status delivery, the commit delay, and the waits, on an
 * idle machine and with every core busy with another thread's loop.
 *
 * ThreadSanitizer (not part of `make test`; the system allocator, no jemalloc):
 *   clang -std=c11 -g -O1 -fsanitize=thread -Icommon tests/unit/test_group_commit.c \
 *       common/group_commit.c -lcmocka -lpthread -o /tmp/gc-tsan && /tmp/gc-tsan */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_timedjoin_np */
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "group_commit.h"

#define THREADS    8
#define PER_THREAD 25

/* The write function's log: every item in the order written, and per group its size. */
typedef struct wlog {
    pthread_mutex_t mu;
    int items[THREADS * PER_THREAD + 16];
    size_t nitems;
    size_t max_group;
    int in_write; /* > 1 would mean overlapping groups */
    bool overlap;
    bool sleep;
    long sleep_ns;  /* when sleep: how long a group's write takes (default 1 ms) */
    int fail_every; /* groups whose index % fail_every == fail_every-1 return KV_IO */
    int groups;
    bool any_sync;
    int item_group[THREADS * PER_THREAD];         /* per item: the group that wrote it */
    kv_status gstatus[THREADS * PER_THREAD + 16]; /* per group: the status returned */
} wlog;

/* The slot of an item value id * 1000 + i. */
static int slot_of(int v)
{
    return (v / 1000) * PER_THREAD + v % 1000;
}

static kv_status write_fn(void *ctx, void *const *items, size_t n, bool sync)
{
    wlog *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (++l->in_write > 1)
        l->overlap = true;
    for (size_t i = 0; i < n; i++) {
        l->items[l->nitems++] = *(int *)items[i];
        l->item_group[slot_of(*(int *)items[i])] = l->groups;
    }
    if (n > l->max_group)
        l->max_group = n;
    l->any_sync |= sync;
    int g = l->groups++;
    pthread_mutex_unlock(&l->mu);
    if (l->sleep) {
        struct timespec ts = {0, l->sleep_ns ? l->sleep_ns : 1000000};
        nanosleep(&ts, NULL);
    }
    kv_status st = l->fail_every && g % l->fail_every == l->fail_every - 1 ? KV_IO : KV_OK;
    pthread_mutex_lock(&l->mu);
    l->in_write--;
    l->gstatus[g] = st;
    pthread_mutex_unlock(&l->mu);
    return st;
}

static void test_single_thread_order(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 16, 1 << 20);
    assert_non_null(q);
    int vals[10];
    for (int i = 0; i < 10; i++) {
        vals[i] = i;
        assert_int_equal(kv_group_commit_submit(q, &vals[i], 4, i == 3), KV_OK);
    }
    assert_int_equal(l.nitems, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(l.items[i], i);
    assert_true(l.any_sync);
    unsigned long long groups, items;
    kv_group_commit_counts(q, &groups, &items);
    assert_int_equal(groups, 10);
    assert_int_equal(items, 10);
    kv_group_commit_free(q);
}

typedef struct worker {
    kv_group_commit *q;
    int id;
    int vals[PER_THREAD];
    kv_status st[PER_THREAD];
    size_t bytes;
    bool all_sync; /* every item asks for sync (else every other one) */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        w->vals[i] = w->id * 1000 + i;
        w->st[i] = kv_group_commit_submit(w->q, &w->vals[i], w->bytes, w->all_sync || i % 2 == 0);
    }
    return NULL;
}

/* The longest a run of the workers may take (seconds): a waiter that is never woken turns into
 * a failure instead of a hang. Generous: sanitizers, and the tests with every core busy. */
#define RUN_BOUND_S 60

/* Runs THREADS workers against q, and checks that every item was written exactly once, each
 * thread's items in submission order, groups never overlapping, and that every submit returned
 * the status of the group that wrote its item. */
static void run_workers_sync(kv_group_commit *q, wlog *l, size_t bytes, worker *ws, bool all_sync)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ws[t] = (worker){.q = q, .id = t, .bytes = bytes, .all_sync = all_sync};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &ws[t]), 0);
    }
    struct timespec bound;
    clock_gettime(CLOCK_REALTIME, &bound);
    bound.tv_sec += RUN_BOUND_S;
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_timedjoin_np(th[t], NULL, &bound), 0);
    assert_int_equal(l->nitems, THREADS * PER_THREAD);
    assert_false(l->overlap);
    int next[THREADS] = {0};
    for (size_t i = 0; i < l->nitems; i++) {
        int t = l->items[i] / 1000, k = l->items[i] % 1000;
        assert_int_equal(k, next[t]); /* each thread's items in submission order, each once */
        next[t]++;
    }
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            assert_int_equal(ws[t].st[i], l->gstatus[l->item_group[slot_of(ws[t].vals[i])]]);
}

static void run_workers(kv_group_commit *q, wlog *l, size_t bytes, worker *ws)
{
    run_workers_sync(q, l, bytes, ws, false);
}

static void test_concurrent_groups(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 64, 1 << 20);
    worker ws[THREADS];
    run_workers(q, &l, 100, ws);
    unsigned long long groups, items;
    kv_group_commit_counts(q, &groups, &items);
    assert_int_equal(items, THREADS * PER_THREAD);
    assert_true(groups < items); /* followers shared a leader's write */
    assert_int_equal(groups, (unsigned long long)l.groups);
    kv_group_commit_free(q);
}

static void test_caps(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 3, 1 << 20);
    worker ws[THREADS];
    run_workers(q, &l, 10, ws);
    assert_true(l.max_group <= 3);
    assert_true(l.max_group >= 2);
    kv_group_commit_free(q);

    /* bytes cap: items of 100 bytes, at most 250 per group -> at most 2 items */
    wlog l2 = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true};
    q = kv_group_commit_new(write_fn, &l2, 64, 250);
    run_workers(q, &l2, 100, ws);
    assert_true(l2.max_group <= 2);
    kv_group_commit_free(q);

    /* an item larger than the cap still forms a group alone */
    wlog l3 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    q = kv_group_commit_new(write_fn, &l3, 64, 10);
    int v = 7;
    assert_int_equal(kv_group_commit_submit(q, &v, 1000, false), KV_OK);
    assert_int_equal(l3.nitems, 1);
    kv_group_commit_free(q);
}

/* The submits that returned KV_IO. */
static int failed_items(const worker *ws)
{
    int failed = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            failed += ws[t].st[i] == KV_IO;
    return failed;
}

/* Every member of a group gets the group's status (run_workers checks each item's), failures
 * and successes both. */
static void test_status_reaches_members(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .fail_every = 3};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 64, 1 << 20);
    worker ws[THREADS];
    run_workers(q, &l, 8, ws);
    int failed = failed_items(ws);
    assert_true(failed > 0);
    assert_true(failed < THREADS * PER_THREAD);
    kv_group_commit_free(q);
}

/* With a single thread, the status of each (one-item) group is exact. */
static void test_status_exact(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .fail_every = 2};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 8, 1 << 20);
    int v = 1;
    assert_int_equal(kv_group_commit_submit(q, &v, 1, true), KV_OK);
    assert_int_equal(kv_group_commit_submit(q, &v, 1, true), KV_IO);
    assert_int_equal(kv_group_commit_submit(q, &v, 1, true), KV_OK);
    kv_group_commit_free(q);
}

/* The commit delay: one committer never waits; THREADS committers whose every commit is a sync
 * (a 4 ms write, as a slow fdatasync) end up sharing groups of nearly all THREADS, where the
 * plain queue alternates between the few that arrived during the last write and the rest (a
 * mean of about THREADS / 2). The bound allows for a loaded machine: a mean above THREADS x 5/8. */
static void test_commit_delay(void **state)
{
    (void)state;
    wlog l1 = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l1, 64, 1 << 20);
    kv_group_commit_set_delay(q, true);
    int v = 1;
    for (int i = 0; i < 5; i++)
        assert_int_equal(kv_group_commit_submit(q, &v, 1, true), KV_OK);
    unsigned long long delays = 1, timeouts = 1;
    kv_group_commit_delay_counts(q, &delays, &timeouts);
    assert_int_equal(delays, 0);
    assert_int_equal(timeouts, 0);
    kv_group_commit_free(q);

    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .sleep_ns = 4000000};
    q = kv_group_commit_new(write_fn, &l, 64, 1 << 20);
    kv_group_commit_set_delay(q, true);
    worker ws[THREADS];
    run_workers_sync(q, &l, 10, ws, true); /* also checks order and completeness */
    unsigned long long groups, items;
    kv_group_commit_counts(q, &groups, &items);
    kv_group_commit_delay_counts(q, &delays, &timeouts);
    assert_int_equal(items, THREADS * PER_THREAD);
    assert_true(delays > 0);
    assert_true(groups * THREADS * 5 < items * 8);
    kv_group_commit_free(q);
}

/* The idle regime. A follower waits yielding the CPU for up to 1 ms, then asleep. Short group
 * writes (0.1 ms, a flash device's fdatasync) end most waits while the follower still yields;
 * long ones (4 ms) end them asleep, woken by a post. Either way every item is written once, in
 * order, and gets its group's status (run_workers_sync), with the commit delay on as the
 * engines use it. */
static void test_idle_waits(void **state)
{
    (void)state;
    wlog fast = {
        .mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .sleep_ns = 100000, .fail_every = 5};
    kv_group_commit *q = kv_group_commit_new(write_fn, &fast, 64, 1 << 20);
    kv_group_commit_set_delay(q, true);
    worker ws[THREADS];
    run_workers_sync(q, &fast, 10, ws, true);
    assert_true(failed_items(ws) > 0);
    kv_group_commit_waits w;
    kv_group_commit_wait_counts(q, &w);
    assert_true(w.yielding > 0);
    kv_group_commit_free(q);

    wlog slow = {
        .mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .sleep_ns = 4000000, .fail_every = 4};
    q = kv_group_commit_new(write_fn, &slow, 64, 1 << 20);
    kv_group_commit_set_delay(q, true);
    run_workers_sync(q, &slow, 10, ws, true);
    assert_true(failed_items(ws) > 0);
    kv_group_commit_wait_counts(q, &w);
    assert_true(w.asleep > 0);
    kv_group_commit_free(q);
}

/* A busy loop per online core, in threads of this process: the machine of a server that does
 * other work besides committing. */
typedef struct hogs {
    _Atomic bool stop;
    _Atomic long running;
    long n;
    pthread_t th[256];
} hogs;

static void *hog_main(void *arg)
{
    hogs *h = arg;
    volatile uint64_t x = 0;
    atomic_fetch_add(&h->running, 1);
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed))
        x = x * 6364136223846793005u + 1;
    return NULL;
}

/* Starts the busy loops; returns once every one runs. */
static void hogs_start(hogs *h)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    h->n = cpus < 1 ? 1 : cpus > 256 ? 256 : cpus;
    atomic_store(&h->stop, false);
    atomic_store(&h->running, 0);
    for (long i = 0; i < h->n; i++)
        assert_int_equal(pthread_create(&h->th[i], NULL, hog_main, h), 0);
    while (atomic_load(&h->running) < h->n)
        sched_yield();
}

static void hogs_stop(hogs *h)
{
    atomic_store(&h->stop, true);
    for (long i = 0; i < h->n; i++)
        pthread_join(h->th[i], NULL);
}

/* The busy regime: every core runs a busy loop, so a yield may hand the core over for a whole
 * time slice (whether it does is the scheduler's choice; test_slow_yields_switch_yielding_off
 * makes every yield slow). Every item is still written once, in order, with its group's status,
 * within the time bound (run_workers_sync), for short and long group writes, commit delay on. */
static void test_busy_cpus(void **state)
{
    (void)state;
    static const long write_ns[] = {200000, 2000000};
    hogs h;
    hogs_start(&h);
    kv_group_commit_waits w[2];
    unsigned long long groups[2];
    int failed[2];
    for (int k = 0; k < 2; k++) {
        wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER,
                  .sleep = true,
                  .sleep_ns = write_ns[k],
                  .fail_every = 3};
        kv_group_commit *q = kv_group_commit_new(write_fn, &l, 64, 1 << 20);
        kv_group_commit_set_delay(q, true);
        worker ws[THREADS];
        run_workers_sync(q, &l, 10, ws, true);
        failed[k] = failed_items(ws);
        kv_group_commit_wait_counts(q, &w[k]);
        kv_group_commit_counts(q, &groups[k], NULL);
        kv_group_commit_free(q);
    }
    hogs_stop(&h);
    for (int k = 0; k < 2; k++) {
        assert_true(failed[k] > 0);
        /* every member waited (a leader woken as the new head did too) */
        assert_true(w[k].yielding + w[k].asleep >= THREADS * PER_THREAD - groups[k]);
        assert_true(w[k].yielding + w[k].asleep <= THREADS * PER_THREAD);
    }
    assert_true(w[1].asleep > 0); /* 2 ms writes outlast the 1 ms of yielding */
}

/* A yield that gives the core away for a time slice, on any machine. */
static int slow_yield(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return 0;
}

/* Adaptive yielding: when yields are slow (here each one sleeps 1 ms, as a yield that gave the
 * core to another process's busy loop), two stalls switch yielding off for the queue, and the
 * waiters sleep instead of yielding. Every item is still written once, in order, with its
 * group's status. */
static void test_slow_yields_switch_yielding_off(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .sleep_ns = 200000, .fail_every = 3};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 64, 1 << 20);
    kv_group_commit_set_delay(q, true);
    kv_group_commit_set_yield(q, slow_yield);
    worker ws[THREADS];
    run_workers_sync(q, &l, 10, ws, true);
    kv_group_commit_waits w;
    kv_group_commit_wait_counts(q, &w);
    unsigned long long groups;
    kv_group_commit_counts(q, &groups, NULL);
    assert_true(w.slow_yields >= 2);
    assert_true(w.switches >= 1);
    /* After the first switch every yield is paused for at least 10 ms, longer than this run
     * lasts once waits sleep: at most a few waits ended while yielding. */
    assert_true(w.yielding + w.asleep >= THREADS * PER_THREAD - groups);
    assert_true(w.asleep > w.yielding);
    assert_true(w.slow_yields < THREADS * PER_THREAD / 2); /* at most one per waiter per pause */
    kv_group_commit_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_order),
        cmocka_unit_test(test_concurrent_groups),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_status_reaches_members),
        cmocka_unit_test(test_status_exact),
        cmocka_unit_test(test_commit_delay),
        cmocka_unit_test(test_idle_waits),
        cmocka_unit_test(test_busy_cpus),
        cmocka_unit_test(test_slow_yields_switch_yielding_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
