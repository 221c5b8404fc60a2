/* engine_config.h: the configuration of every engine as the benchmark opens it. */
#include <stdio.h>
#include <string.h>

#include "bench_null.h"
#include "cli.h"
#include "engine_config.h"
#include "kv.h"

typedef struct config_text {
    const char *engine;
    /* Where the budget goes; "%s" is the budget ("64.0 MiB"). */
    const char *with_budget;
    /* The same when the budget is 0 (each engine's default). */
    const char *without_budget;
    /* Everything else that shapes the figures. */
    const char *rest;
} config_text;

static const config_text texts[] = {
    {"wal", "no cache to size: every record lives in memory",
     "no cache to size: every record lives in memory",
     "an in-memory ordered table (copy-on-write B-tree) made durable by a segmented logical log "
     "(64 MiB segments, a checkpoint every 64 MiB of log); heap grows with the data"},
    {"bitcask", "no cache to size: the keydir holds every key in memory",
     "no cache to size: the keydir holds every key in memory",
     "values are read from the data files through a memory map (page cache); data files of "
     "64 MiB; merge at 40% dead bytes; hint files at rotation"},
    {"lsm",
     "block cache of %s for tables read with pread (mmap_reads=0); by default (mmap_reads=1) "
     "tables are read through a memory map, so their blocks sit in the page cache",
     "block cache of 8 MiB (its default) for tables read with pread; by default tables are read "
     "through a memory map (page cache)",
     "memtable 4 MiB, SSTables 2 MiB, level 1 of 10 MiB and 10x per level, L0 compaction at 4 "
     "files, bloom filters of 10 bits per key, no compression"},
    {"btree", "buffer pool of %s (4 KiB pages)",
     "buffer pool of a quarter of the machine's memory (its default; 4 KiB pages)",
     "physical log of page images, a checkpoint every 2 GiB of log, dirty pages written back "
     "ahead of it by a background writer from 90% of that; at open the data file is read into "
     "the pool before kv_open returns when it fits (warm=2)"},
    {"leveldb", "LRU block cache of %s", "LevelDB's own 8 MiB block cache",
     "LevelDB 1.23: memtable 4 MiB, SSTables 2 MiB, bloom filters of 10 bits per key, no "
     "compression, 1000 open files (docs/peers.md)"},
    {"rocksdb", "LRU block cache of %s", "LRU block cache of 32 MiB (the adapter's default)",
     "RocksDB 7.8: memtable 64 MiB, SSTables 64 MiB, bloom filters of 10 bits per key, no "
     "compression, 2 background jobs (docs/peers.md)"},
    {"lmdb", "no cache of its own (the budget does not apply)", "no cache of its own",
     "LMDB 0.9.24: the data file is memory-mapped (64 GiB map, sparse), so everything it reads "
     "is page cache, which the page cache column counts (docs/peers.md)"},
    {"sqlite",
     "page cache of %s per connection (PRAGMA cache_size): one writer connection and one per "
     "reading thread",
     "SQLite's default page cache (2 MB per connection)",
     "SQLite 3.40: table kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID, WAL journal, 4 KiB "
     "pages, a checkpoint every 1000 WAL pages (docs/peers.md)"},
    {BENCH_NULL_NAME, "no data", "no data", BENCH_NULL_DESCRIPTION},
};

char *engine_config_text(const char *engine, uint64_t cache, char *buf, size_t cap)
{
    char budget[32];
    cli_human_bytes(cache, budget, sizeof budget);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        const config_text *t = &texts[i];
        if (strcmp(t->engine, engine))
            continue;
        char first[512];
        snprintf(first, sizeof first, cache ? t->with_budget : t->without_budget, budget);
        snprintf(buf, cap, "%s; %s.", first, t->rest);
        return buf;
    }
    const char *d = kv_engine_description(engine);
    snprintf(buf, cap, "%s.", d ? d : "no description");
    return buf;
}
