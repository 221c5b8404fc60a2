/* hgrm.h: HdrHistogram's outputPercentileDistribution, step by step, over kvlab's buckets. */
#include <errno.h>
#include <math.h>

#include "hgrm.h"

#define TICKS_PER_HALF_DISTANCE 5
#define SCALE                   1000.0 /* ns to microseconds */

/* The level after level (percent): HdrHistogram's PercentileIterator.incrementIterationLevel,
 * which halves the step each time the distance to 100% halves. */
static double next_level(double level)
{
    double ticks =
        TICKS_PER_HALF_DISTANCE * pow(2.0, floor(log(100.0 / (100.0 - level)) / log(2.0)) + 1.0);
    return level + 100.0 / ticks;
}

bool hgrm_write(FILE *out, const kv_histogram *h)
{
    uint64_t total = kv_histogram_count(h);
    unsigned nb = kv_histogram_buckets();
    fprintf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
            "1/(1-Percentile)");
    double level = 0.0;
    uint64_t cum = 0;
    bool last_step = false;
    unsigned i = 0;
    bool fresh = true;
    /* The iterator: each step moves through the buckets until the cumulative share reaches the
     * level, prints it there, raises the level; once every value is counted one more step
     * prints the 100% line at the last bucket. */
    while (total) {
        if (cum >= total) {
            if (last_step)
                break;
            level = 100.0;
            last_step = true;
        }
        bool printed = false;
        while (i < nb) {
            uint64_t lo, hi, c = kv_histogram_bucket(h, i, &lo, &hi);
            if (fresh) {
                cum += c;
                fresh = false;
            }
            if (c && 100.0 * (double)cum / (double)total >= level) {
                double v = (double)hi / SCALE, p = level / 100.0;
                if (level < 100.0)
                    fprintf(out, "%12.3f %2.12f %10llu %14.2f\n", v, p, (unsigned long long)cum,
                            1.0 / (1.0 - p));
                else
                    fprintf(out, "%12.3f %2.12f %10llu\n", v, p, (unsigned long long)cum);
                level = next_level(level);
                printed = true;
                break;
            }
            i++;
            fresh = true;
        }
        if (!printed)
            break;
    }
    double mean = kv_histogram_mean(h), var = 0;
    for (unsigned b = 0; b < nb && total; b++) {
        uint64_t lo, hi, c = kv_histogram_bucket(h, b, &lo, &hi);
        double mid = ((double)lo + (double)hi) / 2.0 - mean;
        var += (double)c * mid * mid;
    }
    double sd = total ? sqrt(var / (double)total) : 0;
    fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean / SCALE, sd / SCALE);
    fprintf(out, "#[Max     = %12.3f, Total count    = %12llu]\n",
            (double)kv_histogram_max(h) / SCALE, (unsigned long long)total);
    /* kvlab's layout in HdrHistogram's terms: 256 sub-buckets (values below 256 ns exact),
     * then one bucket of 128 more per power of two up to an hour. */
    fprintf(out, "#[Buckets = %12u, SubBuckets     = %12u]\n", nb / 128 - 1, 256u);
    return !ferror(out);
}

bool hgrm_write_file(const char *path, const kv_histogram *h)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = hgrm_write(f, h);
    if (fclose(f) != 0)
        ok = false;
    if (!ok && !errno)
        errno = EIO;
    return ok;
}
