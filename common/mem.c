/* Memory statistics: jemalloc's mallctl when built with it, peak RSS from getrusage. */
#include "mem.h"

#include <stddef.h>
#include <sys/resource.h>

#ifdef KVLAB_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

/* Reads a size_t statistic after refreshing jemalloc's cached stats through "epoch". */
static uint64_t je_stat(const char *name)
{
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    size_t v = 0;
    len = sizeof v;
    if (mallctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

uint64_t kv_mem_allocated(void)
{
    return je_stat("stats.allocated");
}

uint64_t kv_mem_resident(void)
{
    return je_stat("stats.resident");
}
#else
uint64_t kv_mem_allocated(void)
{
    return 0;
}

uint64_t kv_mem_resident(void)
{
    return 0;
}
#endif

uint64_t kv_mem_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024; /* KiB on Linux */
}
