/* The benchmark's `null` engine: a target that stores nothing and answers every read with the
 * value the harness expects, so that a run on it measures the harness alone (key and value
 * generation, value verification, timing, histograms). It exists only inside kvlab bench, not
 * in libkvlab's registry. */
#ifndef KVLAB_BENCH_NULL_H
#define KVLAB_BENCH_NULL_H

#define BENCH_NULL_NAME "null"
#define BENCH_NULL_DESCRIPTION                                                                     \
    "does nothing: puts are dropped, reads return the expected value, scans walk synthetic "       \
    "records; measures harness overhead"

#endif
