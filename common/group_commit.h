/* Group commit: a leader/follower writer queue as in LevelDB's DBImpl::Write.
 *
 * Each committer submits an item. The committer at the head of the queue becomes the leader: it
 * takes itself and the items queued behind it (up to max_items and max_bytes), calls the
 * engine's write function once for the whole group (which appends all records in one write and,
 * when any item asks for it, does one fdatasync), then wakes every member with the group's
 * status. So concurrent committers in sync mode share one fdatasync (docs/design.md section 2).
 * Items are processed in submission order; groups never overlap. */
#ifndef KVLAB_GROUP_COMMIT_H
#define KVLAB_GROUP_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kv_group_commit kv_group_commit;

/* Writes a group: items[0..n) in order, as one atomic-per-item write. sync is true when any item
 * asked for durability. Returns the status given to every item of the group. Runs on the
 * leader's thread, one group at a time, with no queue lock held. */
typedef kv_status (*kv_group_write_fn)(void *ctx, void *const *items, size_t n, bool sync);

/* A new queue. max_items >= 1 caps a group's items, max_bytes caps the sum of the byte sizes
 * given at submit (a first item larger than max_bytes still forms a group alone).
 * Returns NULL when out of memory. */
kv_group_commit *kv_group_commit_new(kv_group_write_fn fn, void *ctx, size_t max_items,
                                     size_t max_bytes);
/* Frees the queue (no submit may be running). NULL allowed. */
void kv_group_commit_free(kv_group_commit *q);

/* Submits item (bytes: its size for the group cap) and waits until a group containing it has
 * been written. Returns the group's status. Thread-safe.
 *
 * A committer that is not the leader waits by giving the CPU away (sched_yield) between looks
 * at its own state, for up to 1 ms, then sleeps on a semaphore until woken: a yielding member
 * costs its leader a store instead of a futex wake-up. It yields only while yielding pays: a
 * yield slower than 0.5 ms (another thread's time slice) ends its yielding, and two such stalls
 * (slow yields that did not overlap) within 20 ms switch yielding off for the whole queue for
 * 10 ms, doubled at each switch up to 1 s, while committers sleep at once; so group commit keeps
 * its pace on a machine whose cores are busy with other work. A member returns without taking the
 * queue's mutex again. (RocksDB's WriteThread::AwaitState: yield while it pays, then block.) */
kv_status kv_group_commit_submit(kv_group_commit *q, void *item, size_t bytes, bool sync);

/* Turns the commit delay on or off (default off). With it on, the leader of a group that will
 * fdatasync (an item asked for sync) first waits until as many committers are queued as were
 * active since the previous group was formed (at most max_items), for at most half the moving
 * average of a sync group's write time and never more than 1,000 microseconds. At 8 threads this
 * turns the alternation of groups of a few and groups of the rest (the members of a group
 * cannot join the next one while they wait for theirs) into groups of all 8, sharing one
 * fdatasync. The leader waits as a member does (yielding while that pays, then asleep until the
 * last expected committer wakes it or the time limit). One committer never waits. The source:
 * PostgreSQL's commit_delay and commit_siblings, made adaptive. Thread-safe. */
void kv_group_commit_set_delay(kv_group_commit *q, bool on);

/* Replaces the queue's sched_yield with yield (NULL: sched_yield again), before any submit. For
 * tests: a stand-in that sleeps 1 ms is a yield that gave the core to another process for a
 * time slice, on any machine. */
void kv_group_commit_set_yield(kv_group_commit *q, int (*yield)(void));

/* Counters of the commit delay: leaders that waited, and waits that ended at the time limit
 * rather than with every expected committer queued. */
void kv_group_commit_delay_counts(kv_group_commit *q, unsigned long long *delays,
                                  unsigned long long *timeouts);

/* Counters of the waits (kv_group_commit_wait_counts). */
typedef struct kv_group_commit_waits {
    unsigned long long yielding;    /* followers' waits that ended without sleeping */
    unsigned long long asleep;      /* followers' waits that ended asleep, woken by a post */
    unsigned long long slow_yields; /* yields (any waiter's) that took longer than 0.5 ms */
    unsigned long long switches;    /* times stalls switched yielding off for a pause */
} kv_group_commit_waits;

/* Fills *out with the counters of q's waits so far. Thread-safe (each counter is read
 * atomically, the four not at one instant). */
void kv_group_commit_wait_counts(kv_group_commit *q, kv_group_commit_waits *out);

/* Counters: groups written and items written so far (items/groups = mean group size). */
void kv_group_commit_counts(kv_group_commit *q, unsigned long long *groups,
                            unsigned long long *items);

#endif
