/* A log-bucketed latency histogram in the manner of HdrHistogram: values from 1 ns to 1 hour
 * with at most 1% relative error (128 linear sub-buckets per power of two give < 0.8%),
 * mergeable across threads, with percentiles. Not thread-safe: one per thread, then merge. */
#ifndef KVLAB_HISTOGRAM_H
#define KVLAB_HISTOGRAM_H

#include <stdint.h>

typedef struct kv_histogram kv_histogram;

/* A new empty histogram (about 48 KiB), or NULL when out of memory. Free with
 * kv_histogram_free. */
kv_histogram *kv_histogram_new(void);
void kv_histogram_free(kv_histogram *h);
void kv_histogram_reset(kv_histogram *h);

/* Records one value in nanoseconds. 0 counts as 1 ns; values above 1 hour count as 1 hour
 * (the max field keeps the true maximum). */
void kv_histogram_record(kv_histogram *h, uint64_t ns);

/* Adds every count of src into dst. */
void kv_histogram_merge(kv_histogram *dst, const kv_histogram *src);

uint64_t kv_histogram_count(const kv_histogram *h);
uint64_t kv_histogram_min(const kv_histogram *h); /* ns, 0 when empty */
uint64_t kv_histogram_max(const kv_histogram *h); /* ns, exact, 0 when empty */
double kv_histogram_mean(const kv_histogram *h);  /* ns, 0 when empty */

/* The value in ns at percentile p (0 to 100): the smallest bucket value v such that at least
 * p% of recorded values are <= v, reported as the bucket's midpoint (within 1% of the truth),
 * clamped to [min, max]. 0 when empty. */
uint64_t kv_histogram_percentile(const kv_histogram *h, double p);

/* The number of buckets, for kv_histogram_bucket. */
unsigned kv_histogram_buckets(void);

/* Bucket i (i < kv_histogram_buckets(); buckets ascend by value): its count, and in *lo_ns and
 * *hi_ns the lowest and highest value it holds (ns). For exporters such as HdrHistogram's
 * percentile-distribution text, which lists each bucket's highest equivalent value. */
uint64_t kv_histogram_bucket(const kv_histogram *h, unsigned i, uint64_t *lo_ns, uint64_t *hi_ns);

#endif
