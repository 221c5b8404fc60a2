/* Group commit as in LevelDB's DBImpl::Write: writers queue up under one mutex; the writer at
 * the head is the leader, writes a group made of itself and the writers behind it, then hands
 * every member the status and wakes the next head. A leader of a sync group may first wait
 * briefly for the previous group's members to queue again (the commit delay, off unless asked
 * for).
 *
 * A waiting writer yields the CPU while it looks at its own state word, then, after
 * GC_SPIN_US, sleeps on its own semaphore; whoever wakes it (its leader: done, or now the head;
 * a joining committer: its commit delay is over) sets the state and posts the semaphore only
 * when it sleeps. The leader sets a member's status before waking it and wakes with the mutex
 * released, so a member returns at once without taking the mutex again. (The first version
 * gave each writer a condition variable, signalled under the mutex: every woken member first
 * blocked on the mutex its leader still held, then took it to read its status. At 8 threads in
 * `sync` mode on 2 cores, those sleeps and wake-ups cost more CPU than the writes themselves and
 * left the disk idle between groups: 8 threads committed 3.3 to 4.4 times what 1 thread did.
 * Now 4.5 to 8.1 times, with 8 commits per fdatasync either way.) */
#include "group_commit.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* How long a waiting committer keeps yielding before it sleeps (microseconds): longer than a
 * flash device's fdatasync (0.1 to 0.5 ms here), so that a member of a sync group is usually
 * still yielding when its group is done; short enough that a slow disk (a spinning one's
 * 5 to 10 ms) does not turn every commit's wait into CPU time. */
#define GC_SPIN_US 1000

/* What woke a waiting writer (gc_writer.state). */
enum {
    GC_WAITING,  /* not woken yet, yielding the CPU between looks */
    GC_SLEEPING, /* not woken yet, asleep on sem: the waker must post it */
    GC_DONE,     /* its group was written: status is set */
    GC_LEAD,     /* it is the head of the queue now: the leader */
    GC_GO,       /* (a leader in its commit delay) the committers it waited for are queued */
};

typedef struct gc_writer {
    void *item;
    size_t bytes;
    bool sync;
    kv_status status;  /* the group's status, set before the state becomes GC_DONE */
    _Atomic int state; /* GC_*: set by the waker, read by the writer */
    sem_t sem;         /* posted by the waker when state was GC_SLEEPING */
    struct gc_writer *next;
} gc_writer;

/* The longest commit delay (microseconds) for a mean sync time of mean_sync_us: half of it, at
 * most 1,000. The bound of kv_group_commit_set_delay's wait. */
static uint64_t delay_max_us(double mean_sync_us)
{
    double half = mean_sync_us / 2;
    return half < 1000 ? (uint64_t)half : 1000;
}

/* The moving average of sync times that bounds the commit delay: mean_us (0: none yet) updated
 * with a sync that took took_us, weight 1/8 (microseconds). */
static double delay_mean(double mean_us, double took_us)
{
    return mean_us > 0 ? mean_us * 0.875 + took_us * 0.125 : took_us;
}

/* Wakes w with state st (GC_DONE, GC_LEAD or GC_GO). Its status must be set first: w may return
 * at once, and its gc_writer lives on its stack. */
static void wake(gc_writer *w, int st)
{
    if (atomic_exchange_explicit(&w->state, st, memory_order_acq_rel) == GC_SLEEPING)
        sem_post(&w->sem);
}

/* Waits until w is woken: gives the CPU away (sched_yield) between looks at its state until
 * kv_clock_us() reaches spin_end, then sleeps on its semaphore. Returns the state it was woken
 * with; *slept tells whether it slept. A woken writer that was still yielding pays no wake-up: on a
 * virtual machine, each futex wake-up of a sleeping thread cost 5 to 15 microseconds of its waker's
 * time, and a leader woke every member of its group in turn. (RocksDB's WriteThread::AwaitState
 * waits the same way: spin, then yield, then block.) */
static int await_wake(gc_writer *w, uint64_t spin_end, bool *slept)
{
    int st;
    *slept = false;
    while ((st = atomic_load_explicit(&w->state, memory_order_acquire)) == GC_WAITING &&
           kv_clock_us() < spin_end)
        sched_yield();
    if (st != GC_WAITING)
        return st;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &st, GC_SLEEPING, memory_order_acq_rel,
                                                 memory_order_acquire))
        return st; /* woken meanwhile */
    *slept = true;
    while (sem_wait(&w->sem) != 0 && errno == EINTR)
        ;
    return atomic_load_explicit(&w->state, memory_order_acquire);
}

struct kv_group_commit {
    pthread_mutex_t mu;
    gc_writer *head, *tail;
    kv_group_write_fn fn;
    void *ctx;
    size_t max_items, max_bytes;
    void **items; /* the leader's group, under construction; cap entries */
    size_t cap;
    unsigned long long groups, nitems;
    /* Commit delay (kv_group_commit_set_delay). */
    bool delay;
    size_t queued;  /* committers in the queue (waiting, leading, or in the group being written) */
    size_t peak;    /* the most queued since the last group was formed */
    size_t want;    /* the leader waits for this many queued (0: not waiting) */
    double sync_us; /* moving average of a sync group's write time (microseconds) */
    unsigned long long delays, delay_timeouts;
    _Atomic unsigned long long woke_yielding, woke_asleep; /* followers' waits, by how they ended */
};

kv_group_commit *kv_group_commit_new(kv_group_write_fn fn, void *ctx, size_t max_items,
                                     size_t max_bytes)
{
    kv_group_commit *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->fn = fn;
    q->ctx = ctx;
    q->max_items = max_items ? max_items : 1;
    q->max_bytes = max_bytes;
    q->cap = q->max_items < 64 ? q->max_items : 64;
    if (!(q->items = malloc(q->cap * sizeof *q->items))) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void kv_group_commit_set_delay(kv_group_commit *q, bool on)
{
    pthread_mutex_lock(&q->mu);
    q->delay = on;
    pthread_mutex_unlock(&q->mu);
}

/* The commit delay of a leader about to write a sync group (mutex held): when more committers
 * were active since the last group than are queued now, those are the members of the group
 * just written, about to commit again (the previous group's members cannot join a group formed
 * while they wait for theirs: without a delay, groups alternate between the few that arrived
 * during the last fdatasync and the rest). Waits until they are queued, at most half a sync
 * group's write time, then lets the leader form the group. The leader sleeps on its semaphore
 * without the mutex; the committer that completes the count posts it (and clears want, so it is
 * posted at most once). PostgreSQL's commit_delay and commit_siblings, adaptive. */
static void commit_delay(kv_group_commit *q, gc_writer *leader)
{
    size_t expect = q->peak < q->max_items ? q->peak : q->max_items;
    if (expect <= q->queued || q->sync_us <= 0)
        return;
    uint64_t end = kv_clock_us() + delay_max_us(q->sync_us);
    atomic_store_explicit(&leader->state, GC_WAITING, memory_order_relaxed);
    q->want = expect;
    q->delays++;
    pthread_mutex_unlock(&q->mu);
    while (atomic_load_explicit(&leader->state, memory_order_acquire) != GC_GO &&
           kv_clock_us() < end)
        sched_yield(); /* the committers it waits for need the CPU */
    pthread_mutex_lock(&q->mu);
    if (q->want) { /* not woken: the time limit ended the delay */
        q->delay_timeouts++;
        q->want = 0;
    }
}

void kv_group_commit_free(kv_group_commit *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    free(q->items);
    free(q);
}

/* Fills q->items with the group headed by the leader (queue head); returns its size, the last
 * member in *last and whether any member asked for sync. Mutex held. */
static size_t build_group(kv_group_commit *q, gc_writer **last, bool *sync)
{
    size_t n = 0, bytes = 0;
    *sync = false;
    for (gc_writer *w = q->head; w && n < q->max_items; w = w->next) {
        if (n > 0 && (w->bytes > q->max_bytes - bytes))
            break;
        if (n == q->cap) {
            size_t cap = q->cap * 2 < q->max_items ? q->cap * 2 : q->max_items;
            void **items = realloc(q->items, cap * sizeof *items);
            if (!items)
                break; /* a smaller group is still correct */
            q->items = items;
            q->cap = cap;
        }
        q->items[n++] = w->item;
        bytes = w->bytes > q->max_bytes - bytes ? q->max_bytes : bytes + w->bytes;
        *sync |= w->sync;
        *last = w;
    }
    return n;
}

kv_status kv_group_commit_submit(kv_group_commit *q, void *item, size_t bytes, bool sync)
{
    gc_writer w = {.item = item, .bytes = bytes, .sync = sync};
    sem_init(&w.sem, 0, 0);
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = &w;
    else
        q->head = &w;
    q->tail = &w;
    if (++q->queued > q->peak)
        q->peak = q->queued;
    if (q->want && q->queued >= q->want) {
        q->want = 0;
        wake(q->head, GC_GO); /* the leader's commit delay is over */
    }
    if (q->head != &w) {
        uint64_t spin_end = kv_clock_us() + GC_SPIN_US;
        pthread_mutex_unlock(&q->mu);
        bool slept;
        int st = await_wake(&w, spin_end, &slept);
        atomic_fetch_add_explicit(slept ? &q->woke_asleep : &q->woke_yielding, 1,
                                  memory_order_relaxed);
        if (st == GC_DONE) {
            /* a leader wrote this item's group: nothing shared is touched again */
            sem_destroy(&w.sem);
            return w.status;
        }
        pthread_mutex_lock(&q->mu); /* GC_LEAD: now the head, the leader */
    }
    /* the leader: nobody else touches q->items until this group is popped */
    if (q->delay && sync)
        commit_delay(q, &w);
    gc_writer *last = &w;
    bool gsync;
    size_t n = build_group(q, &last, &gsync);
    q->peak = q->queued;
    pthread_mutex_unlock(&q->mu);
    uint64_t t0 = gsync ? kv_clock_us() : 0;
    kv_status s = q->fn(q->ctx, q->items, n, gsync);
    uint64_t took = gsync ? kv_clock_us() - t0 : 0;
    pthread_mutex_lock(&q->mu);
    if (gsync)
        q->sync_us = delay_mean(q->sync_us, (double)took);
    q->groups++;
    q->nitems += n;
    q->queued -= n;
    gc_writer *members = w.next; /* the group after the leader: w.next .. last */
    q->head = last->next;
    if (!q->head)
        q->tail = NULL;
    gc_writer *next_head = q->head;
    pthread_mutex_unlock(&q->mu);
    /* Posts outside the mutex. A member may return (its gc_writer is on its stack) as soon as
     * it is posted, so its next pointer is read first; the next head stays queued until it is
     * posted. */
    for (gc_writer *p = last != &w ? members : NULL; p;) {
        gc_writer *next = p == last ? NULL : p->next;
        p->status = s;
        wake(p, GC_DONE);
        p = next;
    }
    if (next_head)
        wake(next_head, GC_LEAD);
    sem_destroy(&w.sem);
    return s;
}

void kv_group_commit_counts(kv_group_commit *q, unsigned long long *groups,
                            unsigned long long *items)
{
    pthread_mutex_lock(&q->mu);
    if (groups)
        *groups = q->groups;
    if (items)
        *items = q->nitems;
    pthread_mutex_unlock(&q->mu);
}

void kv_group_commit_delay_counts(kv_group_commit *q, unsigned long long *delays,
                                  unsigned long long *timeouts)
{
    pthread_mutex_lock(&q->mu);
    if (delays)
        *delays = q->delays;
    if (timeouts)
        *timeouts = q->delay_timeouts;
    pthread_mutex_unlock(&q->mu);
}

void kv_group_commit_wait_counts(kv_group_commit *q, unsigned long long *yielding,
                                 unsigned long long *asleep)
{
    if (yielding)
        *yielding = atomic_load_explicit(&q->woke_yielding, memory_order_relaxed);
    if (asleep)
        *asleep = atomic_load_explicit(&q->woke_asleep, memory_order_relaxed);
}
