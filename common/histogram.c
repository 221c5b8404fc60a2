/* A log-bucketed latency histogram in the manner of HdrHistogram: below 256 ns every value has
 * its own bucket; above, each power of two [2^e, 2^(e+1)) is cut into 128 linear sub-buckets of
 * width 2^(e-7), so a bucket is less than 1/128 of its lower bound wide (< 0.8%) and its
 * midpoint is within 0.4% of any value in it. */
#include "histogram.h"

#include <stdlib.h>
#include <string.h>

#define SUB_BITS  7
#define SUB_COUNT (1u << SUB_BITS) /* 128 sub-buckets per power of two */
#define MAX_NS    3600000000000ull /* one hour */
/* The largest value, 3.6e12 < 2^42, has e = 41: shift 34, index 34 * 128 + 255. */
#define NBUCKETS (34 * SUB_COUNT + 2 * SUB_COUNT)

struct kv_histogram {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t buckets[NBUCKETS];
};

/* The bucket of v (1 <= v <= MAX_NS): index = s * 128 + (v >> s) with s = max(0, e - 7). */
static unsigned bucket_of(uint64_t v)
{
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned s = e > SUB_BITS ? e - SUB_BITS : 0;
    return s * SUB_COUNT + (unsigned)(v >> s);
}

/* The lowest and highest value of bucket i. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
    if (i < 2 * SUB_COUNT) {
        *lo = *hi = i;
        return;
    }
    unsigned s = i / SUB_COUNT - 1;
    uint64_t sub = (uint64_t)(i - s * SUB_COUNT);
    *lo = sub << s;
    *hi = ((sub + 1) << s) - 1;
}

/* The midpoint of bucket i: the mean of its lowest and highest value. */
static uint64_t bucket_mid(unsigned i)
{
    uint64_t lo, hi;
    bucket_range(i, &lo, &hi);
    return lo + (hi - lo) / 2;
}

kv_histogram *kv_histogram_new(void)
{
    return calloc(1, sizeof(kv_histogram));
}

void kv_histogram_free(kv_histogram *h)
{
    free(h);
}

void kv_histogram_reset(kv_histogram *h)
{
    memset(h, 0, sizeof *h);
}

void kv_histogram_record(kv_histogram *h, uint64_t ns)
{
    uint64_t v = ns ? ns : 1;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
    h->buckets[bucket_of(v < MAX_NS ? v : MAX_NS)]++;
}

void kv_histogram_merge(kv_histogram *dst, const kv_histogram *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < NBUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

uint64_t kv_histogram_count(const kv_histogram *h)
{
    return h->count;
}

uint64_t kv_histogram_min(const kv_histogram *h)
{
    return h->count ? h->min : 0;
}

uint64_t kv_histogram_max(const kv_histogram *h)
{
    return h->count ? h->max : 0;
}

double kv_histogram_mean(const kv_histogram *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t kv_histogram_percentile(const kv_histogram *h, double p)
{
    if (h->count == 0)
        return 0;
    if (!(p > 0)) /* also NaN */
        p = 0;
    if (p > 100)
        p = 100;
    /* the rank of the value: at least p% of the values are at or below it */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bucket_mid(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

unsigned kv_histogram_buckets(void)
{
    return NBUCKETS;
}

uint64_t kv_histogram_bucket(const kv_histogram *h, unsigned i, uint64_t *lo_ns, uint64_t *hi_ns)
{
    if (i >= NBUCKETS) {
        *lo_ns = *hi_ns = 0;
        return 0;
    }
    bucket_range(i, lo_ns, hi_ns);
    return h->buckets[i];
}
