/* Group commit as in LevelDB's DBImpl::Write: writers queue up under one mutex, each waiting on
 * its own condition variable; the writer at the head is the leader, writes a group made of
 * itself and the writers behind it, then hands every member the status and wakes the next
 * head. A leader of a sync group may first wait briefly for the previous group's members to
 * queue again (the commit delay, off unless asked for). */
#include "group_commit.h"

#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct gc_writer {
    void *item;
    size_t bytes;
    bool sync;
    bool done;
    kv_status status;
    pthread_cond_t cv;
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
    pthread_condattr_t cattr; /* CLOCK_MONOTONIC, for the leader's timed wait */
    size_t inside;            /* committers inside submit (queued, leading or being woken) */
    size_t peak;              /* the most inside since the last group was formed */
    size_t queued;            /* committers in the queue */
    size_t want;              /* the leader waits for this many queued (0: not waiting) */
    double sync_us;           /* moving average of a sync group's write time (microseconds) */
    unsigned long long delays, delay_timeouts;
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
    pthread_condattr_init(&q->cattr);
    pthread_condattr_setclock(&q->cattr, CLOCK_MONOTONIC);
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
 * group's write time, then lets the leader form the group. PostgreSQL's commit_delay and
 * commit_siblings, adaptive. */
static void commit_delay(kv_group_commit *q, gc_writer *leader)
{
    size_t expect = q->peak < q->max_items ? q->peak : q->max_items;
    if (expect <= q->queued || q->sync_us <= 0)
        return;
    struct timespec dl = kv_deadline_us(CLOCK_MONOTONIC, kv_commit_delay_max_us(q->sync_us));
    q->want = expect;
    q->delays++;
    while (q->queued < q->want)
        if (pthread_cond_timedwait(&leader->cv, &q->mu, &dl) != 0) {
            q->delay_timeouts++;
            break;
        }
    q->want = 0;
}

void kv_group_commit_free(kv_group_commit *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_condattr_destroy(&q->cattr);
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
    pthread_cond_init(&w.cv, &q->cattr);
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = &w;
    else
        q->head = &w;
    q->tail = &w;
    q->queued++;
    if (++q->inside > q->peak)
        q->peak = q->inside;
    if (q->want && q->queued >= q->want)
        pthread_cond_signal(&q->head->cv); /* the leader's commit delay is over */
    while (!w.done && q->head != &w)
        pthread_cond_wait(&w.cv, &q->mu);
    if (!w.done) {
        /* the leader: nobody else touches q->items until this group is popped */
        if (q->delay && sync)
            commit_delay(q, &w);
        gc_writer *last = &w;
        bool gsync;
        size_t n = build_group(q, &last, &gsync);
        q->peak = q->inside;
        pthread_mutex_unlock(&q->mu);
        uint64_t t0 = gsync ? kv_clock_us() : 0;
        kv_status s = q->fn(q->ctx, q->items, n, gsync);
        uint64_t took = gsync ? kv_clock_us() - t0 : 0;
        pthread_mutex_lock(&q->mu);
        if (gsync)
            q->sync_us = kv_commit_delay_mean(q->sync_us, (double)took);
        q->groups++;
        q->nitems += n;
        q->queued -= n;
        gc_writer *p = q->head;
        for (;;) {
            gc_writer *next = p->next;
            p->status = s;
            p->done = true;
            if (p != &w)
                pthread_cond_signal(&p->cv);
            if (p == last) {
                q->head = next;
                break;
            }
            p = next;
        }
        if (!q->head)
            q->tail = NULL;
        else
            pthread_cond_signal(&q->head->cv);
    }
    kv_status s = w.status;
    q->inside--;
    pthread_mutex_unlock(&q->mu);
    pthread_cond_destroy(&w.cv);
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
