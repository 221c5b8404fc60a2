/* How much of a database's files sits in the page cache: the memory an engine uses without
 * allocating it (LMDB's map, bitcask's and the lsm's mmap reads, every engine's recently
 * written files), which a heap figure such as jemalloc's stats.allocated does not see. */
#ifndef KVLAB_BENCH_PAGECACHE_H
#define KVLAB_BENCH_PAGECACHE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum pc_method {
    PC_AUTO,      /* cachestat(2) when the kernel has it (Linux 6.5), else mincore(2) */
    PC_CACHESTAT, /* cachestat(2) only */
    PC_MINCORE,   /* mincore(2) only */
} pc_method;

/* Bytes of the regular files under dir (recursively) resident in the page cache: per file,
 * cachestat(2)'s nr_cache pages, or mincore(2) over a read-only shared mapping of the whole
 * file (which maps without reading: pages not resident stay so), times the page size, at most
 * the file's size rounded up to a page. mincore reports a file's pages only to its owner or
 * to a process that may write it (Linux 5.0 on), which the benchmark is. *used receives the
 * method that answered ("cachestat" or "mincore"). Returns false (errno set) when dir cannot
 * be walked, a file cannot be opened or mapped, or the method asked for is missing (ENOSYS). */
bool pc_dir_resident(const char *dir, pc_method how, uint64_t *bytes, const char **used);

#endif
