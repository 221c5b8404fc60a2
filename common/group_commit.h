/* Group commit: a leader/follower writer queue as in LevelDB's DBImpl::Write.
 *
 * Each committer submits an item. The committer at the head of the queue becomes the leader: it
 * takes itself and the items queued behind it (up to max_items and max_bytes), calls the
 * engine's write function once for the whole group (which appends all records in one write and,
 * when any item asks for it, does one fdatasync), then wakes every member with the group's
 * status. So concurrent committers in sync mode share one fdatasync (DESIGN.md section 2).
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
 * A committer that is not the leader waits by giving the CPU away (sched_yield) for up to 1 ms,
 * then sleeps until woken: at 8 threads in `sync` mode on a 2-core virtual machine, futex
 * wake-ups of sleeping members cost their leader more time than the group's write, and the
 * members of a group that yield through its fdatasync return without one. A member returns
 * without taking the queue's mutex again. (RocksDB's WriteThread::AwaitState: spin, yield,
 * then block.) */
kv_status kv_group_commit_submit(kv_group_commit *q, void *item, size_t bytes, bool sync);

/* Turns the commit delay on or off (default off). With it on, the leader of a group that will
 * fdatasync (an item asked for sync) first waits until as many committers are queued as were
 * active since the previous group was formed (at most max_items), for at most half the moving
 * average of a sync group's write time and never more than 1,000 microseconds. At 8 threads this
 * turns the alternation of groups of a few and groups of the rest (the members of a group
 * cannot join the next one while they wait for theirs) into groups of all 8, sharing one
 * fdatasync. The leader yields the CPU while it waits (the committers it waits for need it).
 * One committer never waits. The source: PostgreSQL's commit_delay and
 * commit_siblings, made adaptive. Thread-safe. */
void kv_group_commit_set_delay(kv_group_commit *q, bool on);

/* Counters of the commit delay: leaders that waited, and waits that ended at the time limit
 * rather than with every expected committer queued. */
void kv_group_commit_delay_counts(kv_group_commit *q, unsigned long long *delays,
                                  unsigned long long *timeouts);

/* Counters of the followers' waits: ended while yielding, and ended asleep (woken by a post). */
void kv_group_commit_wait_counts(kv_group_commit *q, unsigned long long *yielding,
                                 unsigned long long *asleep);

/* Counters: groups written and items written so far (items/groups = mean group size). */
void kv_group_commit_counts(kv_group_commit *q, unsigned long long *groups,
                            unsigned long long *items);

#endif
