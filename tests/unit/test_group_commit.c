/* Group commit: order, grouping under load, caps, status delivery. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

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

/* Runs THREADS workers against q; checks per-thread order and that every item was written. */
static void run_workers_sync(kv_group_commit *q, wlog *l, size_t bytes, worker *ws, bool all_sync)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ws[t] = (worker){.q = q, .id = t, .bytes = bytes, .all_sync = all_sync};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &ws[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(l->nitems, THREADS * PER_THREAD);
    assert_false(l->overlap);
    int next[THREADS] = {0};
    for (size_t i = 0; i < l->nitems; i++) {
        int t = l->items[i] / 1000, k = l->items[i] % 1000;
        assert_int_equal(k, next[t]); /* each thread's items in submission order */
        next[t]++;
    }
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

/* Every member of a group gets the group's status. */
static void test_status_reaches_members(void **state)
{
    (void)state;
    wlog l = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .fail_every = 3};
    kv_group_commit *q = kv_group_commit_new(write_fn, &l, 64, 1 << 20);
    worker ws[THREADS];
    run_workers(q, &l, 8, ws);
    /* each item's submit returned the status of the group that wrote it */
    int failed = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            int g = l.item_group[slot_of(ws[t].vals[i])];
            assert_int_equal(ws[t].st[i], l.gstatus[g]);
            failed += ws[t].st[i] == KV_IO;
        }
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

/* A follower waits yielding the CPU for up to 1 ms, then asleep. Short group writes (0.1 ms)
 * end most waits while the follower still yields; long ones (4 ms) end them asleep, woken by a
 * post. Either way every item is written once, in order, and gets its group's status. */
static void test_wait_yielding_then_asleep(void **state)
{
    (void)state;
    wlog fast = {.mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .sleep_ns = 100000};
    kv_group_commit *q = kv_group_commit_new(write_fn, &fast, 64, 1 << 20);
    worker ws[THREADS];
    run_workers_sync(q, &fast, 10, ws, true);
    unsigned long long yielding = 0, asleep = 0;
    kv_group_commit_wait_counts(q, &yielding, &asleep);
    assert_true(yielding > 0);
    kv_group_commit_free(q);

    wlog slow = {
        .mu = PTHREAD_MUTEX_INITIALIZER, .sleep = true, .sleep_ns = 4000000, .fail_every = 4};
    q = kv_group_commit_new(write_fn, &slow, 64, 1 << 20);
    run_workers_sync(q, &slow, 10, ws, true);
    kv_group_commit_wait_counts(q, &yielding, &asleep);
    assert_true(asleep > 0);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            assert_int_equal(ws[t].st[i], slow.gstatus[slow.item_group[slot_of(ws[t].vals[i])]]);
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
        cmocka_unit_test(test_wait_yielding_then_asleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
