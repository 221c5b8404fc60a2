/* A latency histogram as HdrHistogram's percentile-distribution text (the `.hgrm` files of
 * wrk2, YCSB and HdrHistogram's own outputPercentileDistribution), so that existing plotters
 * (HdrHistogram's plotFiles.html, HistogramLogAnalyzer) read kvlab's raw distributions. */
#ifndef KVLAB_BENCH_HGRM_H
#define KVLAB_BENCH_HGRM_H

#include <stdbool.h>
#include <stdio.h>

#include "histogram.h"

/* Writes h (values in ns) to out in microseconds with 3 decimals: the header line, one line
 * per percentile step of HdrHistogram's PercentileIterator with 5 ticks per half distance
 * (Value = the highest value of the bucket reached, Percentile as a fraction, TotalCount up to
 * it, 1/(1-Percentile)), the last at 100%, then the #[Mean, StdDeviation], #[Max, Total count]
 * and #[Buckets, SubBuckets] lines. Mean and maximum are exact; the standard deviation is
 * computed from the buckets' midpoints. Returns false when writing failed. */
bool hgrm_write(FILE *out, const kv_histogram *h);

/* hgrm_write into a new file at path. Returns false (errno set) when it cannot be written. */
bool hgrm_write_file(const char *path, const kv_histogram *h);

#endif
