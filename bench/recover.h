/* The recover workload: how long an engine takes to open after a process crash in the middle
 * of writing, and whether it kept every acknowledged write.
 *
 * A child process (the kvlab executable again, so that no thread or library state of the
 * benchmark is inherited) opens a fresh database in durability os and loads N records exactly
 * as every other workload's load does (random order, batches of 256 puts or 1 MiB), publishing
 * after each batch how many records it handed to kv_write and how many were acknowledged. The
 * benchmark sends it SIGKILL as soon as it sees the seeded kill point acknowledged (a point in
 * the last quarter of the load, the same for every engine; polled every millisecond, so a few
 * more batches may be acknowledged and one may be in flight). Then it times the open that
 * recovers, measures the bytes that open read, the engine's own count of log bytes replayed
 * where it keeps one, memory and page cache, and, off the clock, reads every record back: all
 * acknowledged records must be there, the batch in flight wholly or not at all, nothing else,
 * each value the one written (docs/design.md section 3: in os a process crash loses nothing
 * acknowledged). */
#ifndef KVLAB_BENCH_RECOVER_H
#define KVLAB_BENCH_RECOVER_H

#include "bench.h"

/* The records acknowledged at which the loading child of a run of num records is killed:
 * seeded, in the last quarter of the load, at least 1. */
uint64_t recover_kill_point(uint64_t num, uint64_t seed);

/* Checks what a recovering open found against the contract of durability os after a process
 * crash: seen is a bitmap of the record indexes found (found of them) among num records loaded
 * in the seeded order of kvb_perm(num, seed); acked of them were acknowledged and submitted
 * handed to kv_write. Every acknowledged record must be there, the batch in flight
 * [acked, submitted) wholly or not at all, nothing else. Returns 0, or -1 with the violation in
 * msg (cap bytes). */
int recover_check(uint64_t num, uint64_t seed, const uint8_t *seen, uint64_t found, uint64_t acked,
                  uint64_t submitted, char *msg, size_t cap);

/* Runs the recover workload of rs into row (the caller has filled the row's identity, checked
 * that the engine can run it, emptied dir and built the options o of the recovering open).
 * Returns 0 (row filled, or n/a when there is no executable to start) or -1 with the message
 * in err (cap bytes): the child failed, the open failed, or records were lost or wrong. */
int recover_run(const bench_cfg *cfg, const run_spec *rs, const char *dir, const kv_options *o,
                bench_row *row, char *err, size_t cap);

#endif
