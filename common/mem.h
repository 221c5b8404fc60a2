/* Memory statistics from jemalloc's mallctl ("stats.allocated", refreshed through "epoch"),
 * as docs/design.md section 7 asks. In sanitizer builds (no jemalloc) they return 0. */
#ifndef KVLAB_MEM_H
#define KVLAB_MEM_H

#include <stdint.h>

/* Bytes currently allocated by the application (jemalloc stats.allocated), 0 without jemalloc. */
uint64_t kv_mem_allocated(void);

/* Bytes in physically resident pages mapped by the allocator (stats.resident), 0 without it. */
uint64_t kv_mem_resident(void);

/* Peak resident set size of the process in bytes (getrusage ru_maxrss). */
uint64_t kv_mem_peak_rss(void);

#endif
