/* Group commit as in LevelDB's DBImpl::Write: writers queue up under one mutex; the writer at
 * the head is the leader, writes a group made of itself and the writers behind it, then hands
 * every member the status and wakes the next head. A leader of a sync group may first wait
 * briefly for the previous group's members to queue again (the commit delay, off unless asked
 * for).
 *
 * How a writer waits (for its group, to become the leader, or, as a leader, for its commit
 * delay) decides how fast 8 threads can commit on 2 cores, and whether that survives other work
 * on the machine:
 *
 * - Sleeping on a semaphore costs the waker a futex wake-up per sleeper (a system call, and on a
 *   virtual machine often an inter-processor interrupt to a halted virtual CPU), and the leader
 *   wakes every member of its group in turn, while the disk is idle between two groups.
 * - Yielding the CPU (sched_yield) between looks at one's own state word costs the waker only a
 *   store, and keeps both cores awake; but a yield hands the core to any other runnable thread,
 *   and when that is another process's CPU-bound thread, the yielder (and the leader or member
 *   that needed the core) waits for that thread's whole time slice, milliseconds, longer than
 *   the fdatasync the group shares.
 *
 * So a writer yields only while yielding pays. Each yield is timed; one that took longer than
 * GC_SLOW_YIELD_US (no writer holds the core that long between two system calls: another
 * thread ran for a time slice) ends that wait's yielding. GC_STALLS stalls (slow yields that
 * did not overlap) within GC_STALL_WINDOW_US switch yielding off for the whole queue, for
 * GC_OFF_MIN_US, doubled at each switch up to GC_OFF_MAX_US: meanwhile writers go straight to
 * sleep. GC_PAID_WAITS waits ended while yielding after a switch bring the pause back to its
 * shortest. So a lone burst of a kernel thread on an idle machine switches nothing, and a
 * machine under steady load pays a few time slices per pause. This is RocksDB's
 * WriteThread::AwaitState adaptive yield (its slow yields, its yield credit per call site),
 * with a pause that grows instead of a 1-in-256 random sample.
 *
 * Whoever wakes a writer (its leader: done, or now the head; a joining committer: the commit
 * delay is over) sets the writer's state, and posts its semaphore only when it sleeps. The
 * leader sets each member's status before its state and wakes with the mutex released, so a
 * woken member returns at once without taking the mutex again; only the members of the group
 * just written are woken, then the next head. */
#include "group_commit.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* How long a waiting writer may keep yielding before it sleeps (microseconds): longer than a
 * flash device's fdatasync, so that the members of a sync group are usually still yielding when
 * it is done; short enough that a slow disk (a spinning one's 5 to 10 ms) does not turn every
 * commit's wait into CPU time. */
#define GC_YIELD_US 1000

/* A yield that returns after more than this (microseconds) gave the core to another thread for
 * a time slice (Linux's are 0.75 ms and more): another process's, a kernel thread's, an engine's
 * background thread's. */
#define GC_SLOW_YIELD_US 500

/* GC_STALLS stalls within GC_STALL_WINDOW_US (microseconds) switch yielding off. A stall is a
 * slow yield that began after the slow yields of the previous stall had ended: a burst of a
 * kernel thread, or the hypervisor pausing the virtual CPU, makes every yield in flight slow at
 * once and counts once; another process's busy loop makes the next yields slow again. */
#define GC_STALLS          2
#define GC_STALL_WINDOW_US 20000

/* Then nobody in the queue yields for GC_OFF_MIN_US, doubled at each switch in a row up to
 * GC_OFF_MAX_US (microseconds). */
#define GC_OFF_MIN_US 10000
#define GC_OFF_MAX_US 1000000

/* Waits ended while yielding since the last switch that bring the next pause back to
 * GC_OFF_MIN_US: yielding paid again for a while (under steady load hardly any wait ends so). */
#define GC_PAID_WAITS 256

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
    /* Adaptive yielding, shared by every waiter without a lock (a lost update only shifts a
     * pause): yielding is off until off_until (kv_clock_us), the next pause lasts off_us. */
    _Atomic uint64_t off_until, off_us;
    _Atomic unsigned paid;        /* waits ended by yielding since the last switch */
    _Atomic uint64_t stall_end;   /* when the slow yields of the last stall ended (kv_clock_us) */
    _Atomic uint64_t stall_since; /* the first stall of the current window */
    _Atomic unsigned stalls;      /* stalls since stall_since */
    _Atomic unsigned long long woke_yielding, woke_asleep, slow_yields, switches;
    int (*yield)(void); /* sched_yield, or a test's stand-in */
};

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

/* Whether a waiter of q may yield now (no slow yield switched yielding off). */
static bool may_yield(kv_group_commit *q)
{
    return kv_clock_us() >= atomic_load_explicit(&q->off_until, memory_order_relaxed);
}

/* One sched_yield, timed. Returns false when it was slow; the GC_STALLS-th stall within
 * GC_STALL_WINDOW_US switches yielding off for the queue's next pause, and doubles the pause
 * after it. */
static bool yield_once(kv_group_commit *q)
{
    uint64_t t0 = kv_clock_us();
    q->yield();
    uint64_t t1 = kv_clock_us();
    if (t1 - t0 <= GC_SLOW_YIELD_US)
        return true;
    atomic_fetch_add_explicit(&q->slow_yields, 1, memory_order_relaxed);
    uint64_t end = atomic_load_explicit(&q->stall_end, memory_order_relaxed);
    if (t0 < end) { /* it overlaps the last stall: the same one */
        if (t1 > end)
            atomic_store_explicit(&q->stall_end, t1, memory_order_relaxed);
        return false;
    }
    atomic_store_explicit(&q->stall_end, t1, memory_order_relaxed);
    if (t1 - atomic_load_explicit(&q->stall_since, memory_order_relaxed) > GC_STALL_WINDOW_US) {
        atomic_store_explicit(&q->stall_since, t1, memory_order_relaxed);
        atomic_store_explicit(&q->stalls, 1, memory_order_relaxed);
        return false;
    }
    if (atomic_fetch_add_explicit(&q->stalls, 1, memory_order_relaxed) + 1 < GC_STALLS)
        return false;
    atomic_store_explicit(&q->stalls, 0, memory_order_relaxed);
    uint64_t off = atomic_load_explicit(&q->off_us, memory_order_relaxed);
    off = off < GC_OFF_MIN_US ? GC_OFF_MIN_US : off;
    atomic_store_explicit(&q->off_until, t1 + off, memory_order_relaxed);
    atomic_store_explicit(&q->off_us, off * 2 < GC_OFF_MAX_US ? off * 2 : GC_OFF_MAX_US,
                          memory_order_relaxed);
    atomic_store_explicit(&q->paid, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&q->switches, 1, memory_order_relaxed);
    return false;
}

/* A wait ended while yielding: the GC_PAID_WAITS-th since the last switch brings the next pause
 * back to its shortest. */
static void yield_paid(kv_group_commit *q)
{
    if (atomic_fetch_add_explicit(&q->paid, 1, memory_order_relaxed) + 1 == GC_PAID_WAITS)
        atomic_store_explicit(&q->off_us, 0, memory_order_relaxed);
}

/* Waits until w's state leaves GC_WAITING (set by a waker) or kv_clock_us() reaches end
 * (0: no end). While yielding pays (may_yield, no slow yield) it yields between looks, for at
 * most yield_us; then it sleeps on w's semaphore, until end. Returns the state it was woken
 * with (GC_WAITING or GC_SLEEPING: end came first); *slept tells whether it slept. */
static int await_state(kv_group_commit *q, gc_writer *w, uint64_t yield_us, uint64_t end,
                       bool *slept)
{
    int st = atomic_load_explicit(&w->state, memory_order_acquire);
    *slept = false;
    if (st == GC_WAITING && may_yield(q)) {
        uint64_t yield_end = kv_clock_us() + yield_us;
        if (end && end < yield_end)
            yield_end = end;
        while (st == GC_WAITING && kv_clock_us() < yield_end && yield_once(q))
            st = atomic_load_explicit(&w->state, memory_order_acquire);
        if (st != GC_WAITING) {
            yield_paid(q);
            return st;
        }
    }
    if (st != GC_WAITING || (end && kv_clock_us() >= end))
        return st;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &st, GC_SLEEPING, memory_order_acq_rel,
                                                 memory_order_acquire))
        return st; /* woken meanwhile */
    *slept = true;
    if (end) {
        uint64_t now = kv_clock_us(); /* end may have passed since the look above */
        struct timespec ts = kv_deadline_us(CLOCK_MONOTONIC, end > now ? end - now : 0);
        while (sem_clockwait(&w->sem, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR)
            ;
    } else {
        while (sem_wait(&w->sem) != 0 && errno == EINTR)
            ;
    }
    return atomic_load_explicit(&w->state, memory_order_acquire);
}

kv_group_commit *kv_group_commit_new(kv_group_write_fn fn, void *ctx, size_t max_items,
                                     size_t max_bytes)
{
    kv_group_commit *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->fn = fn;
    q->ctx = ctx;
    q->yield = sched_yield;
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

void kv_group_commit_set_yield(kv_group_commit *q, int (*yield)(void))
{
    q->yield = yield ? yield : sched_yield;
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
 * group's write time, then lets the leader form the group. The leader waits without the mutex,
 * as a member does (await_state); the committer that completes the count wakes it (and clears
 * want, so it is woken at most once). PostgreSQL's commit_delay and commit_siblings,
 * adaptive. */
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
    bool slept;
    (void)await_state(q, leader, GC_YIELD_US, end, &slept);
    pthread_mutex_lock(&q->mu);
    /* Any wake-up (and its post) happened under the mutex: the semaphore is not touched again
     * (a post that came after the timeout stays unconsumed until sem_destroy). */
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
        /* The leader's commit delay is over. Woken under the mutex: a leader whose delay timed
         * out takes the mutex before it goes on, so it cannot return (its gc_writer is on its
         * stack) before this post. */
        q->want = 0;
        wake(q->head, GC_GO);
    }
    if (q->head != &w) {
        pthread_mutex_unlock(&q->mu);
        bool slept;
        int st = await_state(q, &w, GC_YIELD_US, 0, &slept);
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
    /* Wakes outside the mutex. A member may return (its gc_writer is on its stack) as soon as
     * it is woken, so its next pointer is read first; the next head stays queued until it is
     * woken. */
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

void kv_group_commit_wait_counts(kv_group_commit *q, kv_group_commit_waits *out)
{
    out->yielding = atomic_load_explicit(&q->woke_yielding, memory_order_relaxed);
    out->asleep = atomic_load_explicit(&q->woke_asleep, memory_order_relaxed);
    out->slow_yields = atomic_load_explicit(&q->slow_yields, memory_order_relaxed);
    out->switches = atomic_load_explicit(&q->switches, memory_order_relaxed);
}
