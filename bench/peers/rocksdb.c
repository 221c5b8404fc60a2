/* rocksdb.c: RocksDB (Meta's LevelDB descendant, through its C API rocksdb/c.h) behind kvlab's
 * interface.
 *
 * RocksDB is an LSM tree (DDIA ch. 3): write-ahead log plus memtable, SSTables in levels,
 * background flushes and compactions. Its default bytewise comparator is kvlab's key order
 * (memcmp, then length). Iterators read through a snapshot.
 *
 * Durability (docs/peers.md has the reasoning): `none` -> WriteOptions.disableWAL (a commit
 * lives only in the memtable until a flush writes an SSTable; flushes happen in sequence order,
 * so a crash loses a suffix); `os` -> sync=false (the WAL writer write(2)s every record since
 * manual_wal_flush is off); `interval:MS` -> sync=false plus a kvlab syncer calling
 * FlushWAL(sync=true), which fdatasyncs every live WAL file; `sync` -> sync=true. kv_sync and
 * kv_close: FlushWAL(sync=true), or in `none` a memtable flush that waits. */
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "kv_engine.h"
#include "peer_util.h"
#include "syncer.h"

#define NAME        "rocksdb"
#define LSM_PEER(x) rocksdb_##x

/* The fields up to poison are the ones lsm_peer.h uses. */
typedef struct lsm_peer_db rdb_db;
struct lsm_peer_db {
    kv_db base;
    rocksdb_t *db;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    char *dir;
    kv_syncer *syncer;
    peer_poison poison;
    rocksdb_options_t *opts;
    rocksdb_cache_t *cache;
    kv_durability dur;
    peer_io io0;
};

#include "lsm_peer.h"

static const char *const option_help[] = {
    "write_buffer_size: memtable bytes before a flush to a level-0 SSTable (default 64M)",
    "target_file_size: target SSTable size in bytes at level 1 (default 64M)",
    "block_size: SSTable block size in bytes (default 4K)",
    "bloom_bits: bloom filter bits per key, 0 for none (default 10)",
    "compression: none, snappy or lz4 (default none, as kvlab's engines do not compress)",
    "background_jobs: flush and compaction threads (default 2)",
    NULL,
};

/* Makes every acknowledged commit durable: FlushWAL(sync) syncs all live WAL files; with the
 * WAL disabled (`none`) the memtable is flushed to a synced SSTable instead. */
static kv_status lsm_peer_make_durable(void *ctx)
{
    rdb_db *d = ctx;
    char *err = NULL;
    if (d->dur.kind == KV_DURABILITY_NONE) {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        rocksdb_flush(d->db, fo, &err);
        rocksdb_flushoptions_destroy(fo);
    } else {
        rocksdb_flush_wal(d->db, 1, &err);
    }
    if (!err)
        return KV_OK;
    atomic_store(&d->poison.set, true); /* never retry a failed sync */
    return lsm_peer_err(NAME ": making the log durable", err);
}

static void lsm_peer_free_parts(rdb_db *d)
{
    if (d->db)
        rocksdb_close(d->db);
    if (d->opts)
        rocksdb_options_destroy(d->opts);
    if (d->cache)
        rocksdb_cache_destroy(d->cache);
    if (d->wopts)
        rocksdb_writeoptions_destroy(d->wopts);
    if (d->ropts)
        rocksdb_readoptions_destroy(d->ropts);
    free(d->dir);
    free(d);
}

static kv_status rdb_open(const char *dir, kv_fs *fs, const kv_options *o, kv_db **out)
{
    (void)fs;
    uint64_t wbs = 64 << 20, tfs = 64 << 20, bs = 4096, bloom = 10, jobs = 2;
    kv_status s;
    if ((s = kv_options_get_u64(o, "write_buffer_size", 64 << 10, 1ull << 34, &wbs)) != KV_OK ||
        (s = kv_options_get_u64(o, "target_file_size", 64 << 10, 1ull << 34, &tfs)) != KV_OK ||
        (s = kv_options_get_u64(o, "block_size", 256, 64 << 20, &bs)) != KV_OK ||
        (s = kv_options_get_u64(o, "bloom_bits", 0, 64, &bloom)) != KV_OK ||
        (s = kv_options_get_u64(o, "background_jobs", 1, 64, &jobs)) != KV_OK)
        return s;
    const char *comp = kv_options_get(o, "compression");
    int compression = rocksdb_no_compression;
    if (comp && !strcmp(comp, "snappy"))
        compression = rocksdb_snappy_compression;
    else if (comp && !strcmp(comp, "lz4"))
        compression = rocksdb_lz4_compression;
    else if (comp && strcmp(comp, "none"))
        return kv_error(KV_INVALID, NAME ": compression=%s: want none, snappy or lz4", comp);

    rdb_db *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        return kv_error(KV_NOMEM, NAME ": out of memory");
    }
    d->dur = o->durability;
    d->io0 = peer_io_now();
    d->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(d->opts, o->create_if_missing);
    rocksdb_options_set_write_buffer_size(d->opts, wbs);
    rocksdb_options_set_target_file_size_base(d->opts, tfs);
    rocksdb_options_set_max_background_jobs(d->opts, (int)jobs);
    rocksdb_options_set_compression(d->opts, compression);
    rocksdb_options_enable_statistics(d->opts);
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(t, bs);
    d->cache = rocksdb_cache_create_lru(o->cache_size ? o->cache_size : 32 << 20);
    rocksdb_block_based_options_set_block_cache(t, d->cache);
    if (bloom) /* the table options take ownership of the policy */
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom(bloom));
    rocksdb_options_set_block_based_table_factory(d->opts, t);
    rocksdb_block_based_options_destroy(t);
    d->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(d->wopts, o->durability.kind == KV_DURABILITY_SYNC);
    rocksdb_writeoptions_disable_WAL(d->wopts, o->durability.kind == KV_DURABILITY_NONE);
    d->ropts = rocksdb_readoptions_create();

    char *err = NULL;
    d->db = rocksdb_open(d->opts, dir, &err);
    if (err) {
        s = lsm_peer_err(NAME ": open", err);
        d->db = NULL;
        lsm_peer_free_parts(d);
        return s;
    }
    if ((s = lsm_peer_start_syncer(d, &o->durability)) != KV_OK)
        return s;
    *out = &d->base;
    return KV_OK;
}

/* ---- stats and dump ---- */

/* The COUNT of ticker or histogram `name` in RocksDB's statistics text, or UINT64_MAX. */
static uint64_t ticker(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, n) || p[n] != ' ')
            continue;
        const char *c = strstr(p + n, "COUNT : ");
        const char *eol = strchr(p, '\n');
        if (c && (!eol || c < eol))
            return strtoull(c + 8, NULL, 10);
    }
    return UINT64_MAX;
}

static kv_status rdb_stats(kv_db *db, kv_stats *out)
{
    rdb_db *d = (rdb_db *)db;
    peer_fill_io(out, d->io0);
    uint64_t v = 0, mem = 0;
    if (!rocksdb_property_int(d->db, "rocksdb.cur-size-all-mem-tables", &v))
        mem += v;
    if (!rocksdb_property_int(d->db, "rocksdb.estimate-table-readers-mem", &v))
        mem += v;
    out->memory_bytes = mem + rocksdb_cache_get_usage(d->cache);
    if (!rocksdb_property_int(d->db, "rocksdb.estimate-num-keys", &v))
        kv_stats_add(out, "estimated_live_keys", v);
    kv_stats_add(out, "block_cache_bytes", rocksdb_cache_get_usage(d->cache));
    for (int l = 0; l < 7; l++) {
        char prop[64], name[40];
        snprintf(prop, sizeof prop, "rocksdb.num-files-at-level%d", l);
        snprintf(name, sizeof name, "sstables_level%d", l);
        if (!rocksdb_property_int(d->db, prop, &v))
            kv_stats_add(out, name, v);
    }
    char *st = rocksdb_options_statistics_get_string(d->opts);
    if (st) {
        static const struct {
            const char *ticker, *name;
        } t[] = {
            {"rocksdb.block.cache.hit", "cache_hits"},
            {"rocksdb.block.cache.miss", "cache_misses"},
            {"rocksdb.bloom.filter.useful", "bloom_useful"},
            {"rocksdb.wal.bytes", "wal_bytes"},
            {"rocksdb.wal.synced", "wal_syncs"},
            {"rocksdb.flush.write.bytes", "flush_write_bytes"},
            {"rocksdb.compact.read.bytes", "compaction_read_bytes"},
            {"rocksdb.compact.write.bytes", "compaction_write_bytes"},
            {"rocksdb.compaction.times.micros", "compactions"},
            {"rocksdb.stall.micros", "stall_micros"},
        };
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            uint64_t c = ticker(st, t[i].ticker);
            if (c != UINT64_MAX)
                kv_stats_add(out, t[i].name, c);
        }
        rocksdb_free(st);
    }
    return KV_OK;
}

static kv_status rdb_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    static const char *const props[] = {"rocksdb.levelstats", "rocksdb.sstables", "rocksdb.stats"};
    return lsm_peer_dump_props((rdb_db *)db, out, file, page,
                               "these are RocksDB's own summaries (properties rocksdb.stats, "
                               "rocksdb.sstables, rocksdb.levelstats); kvlab does not parse "
                               "RocksDB's files",
                               props, sizeof props / sizeof *props);
}

const kv_engine kv_engine_rocksdb = {
    .name = NAME,
    .description = "RocksDB (Meta), a tuned LSM tree descended from LevelDB, through its C API",
    .option_help = option_help,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 1,
    .open = rdb_open,
    .close = lsm_peer_close,
    .put = lsm_peer_put,
    .get = lsm_peer_get,
    .del = lsm_peer_del,
    .write = lsm_peer_write,
    .iter_new = lsm_peer_iter_new,
    .sync = lsm_peer_sync,
    .stats = rdb_stats,
    .check = lsm_peer_check,
    .dump = rdb_dump,
};
