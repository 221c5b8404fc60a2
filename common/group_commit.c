/* Group commit as in LevelDB's DBImpl::Write: writers queue up under one mutex, each waiting on
 * its own condition variable; the writer at the head is the leader, writes a group made of
 * itself and the writers behind it, then hands every member the status and wakes the next
 * head. */
#include "group_commit.h"

#include <pthread.h>
#include <stdlib.h>

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
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = &w;
    else
        q->head = &w;
    q->tail = &w;
    while (!w.done && q->head != &w)
        pthread_cond_wait(&w.cv, &q->mu);
    if (!w.done) {
        /* the leader: nobody else touches q->items until this group is popped */
        gc_writer *last = &w;
        bool gsync;
        size_t n = build_group(q, &last, &gsync);
        pthread_mutex_unlock(&q->mu);
        kv_status s = q->fn(q->ctx, q->items, n, gsync);
        pthread_mutex_lock(&q->mu);
        q->groups++;
        q->nitems += n;
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
