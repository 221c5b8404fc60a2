/* leveldb.c: LevelDB (1.2x, through its C API leveldb/c.h) behind kvlab's interface.
 *
 * LevelDB is the log-structured merge tree of DDIA ch. 3 as Google built it: a write goes to
 * a log file and a memtable; full memtables become SSTables (level 0) and compaction merges
 * them down the levels. Its default bytewise comparator is kvlab's key order (memcmp, then
 * length). Iterators read through a snapshot.
 *
 * Durability (docs/peers.md has the reasoning): `sync` -> WriteOptions.sync (fdatasync of the
 * log before acknowledging); `os` -> sync=false (LevelDB's log writer write(2)s every record);
 * `interval:MS` -> sync=false plus a kvlab syncer that fdatasyncs every *.log file (oldest
 * first) and the directory every MS ms; `none` is not offered: LevelDB always write(2)s each
 * commit, so a "user-space buffer" mode would be a mislabelled `os`. kv_sync and kv_close
 * fdatasync every log file, which covers a log LevelDB has closed but not yet turned into an
 * SSTable. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "kv_engine.h"
#include "peer_util.h"
#include "syncer.h"

#define NAME        "leveldb"
#define LSM_PEER(x) leveldb_##x

/* The fields up to poison are the ones lsm_peer.h uses. */
typedef struct lsm_peer_db ldb_db;
struct lsm_peer_db {
    kv_db base;
    leveldb_t *db;
    leveldb_writeoptions_t *wopts;
    leveldb_readoptions_t *ropts;
    char *dir;
    kv_syncer *syncer;
    peer_poison poison;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    kv_fs *fs;
    kv_durability dur;
    pthread_mutex_t sync_mu; /* serializes log syncs (syncer thread, kv_sync, close) */
    uint64_t dir_synced;     /* highest log number whose directory entry is durable */
    peer_io io0;
};

#include "lsm_peer.h"

static const char *const option_help[] = {
    "write_buffer_size: memtable bytes before it becomes a level-0 SSTable (default 4M)",
    "max_file_size: target SSTable size in bytes (default 2M)",
    "block_size: SSTable block size in bytes (default 4K)",
    "bloom_bits: bloom filter bits per key, 0 for none (default 10)",
    "compression: snappy or none (default none, as kvlab's engines do not compress)",
    "max_open_files: table files kept open (default 1000)",
    NULL,
};

/* fdatasyncs every *.log file (oldest first) and, when a new one appeared, the directory:
 * LevelDB's own sync=true syncs only the log it is writing. */
static kv_status lsm_peer_make_durable(void *ctx)
{
    ldb_db *d = ctx;
    pthread_mutex_lock(&d->sync_mu);
    kv_status s = peer_sync_numbered(d->fs, d->dir, ".log", &d->dir_synced);
    pthread_mutex_unlock(&d->sync_mu);
    if (s != KV_OK) /* never retry a failed fdatasync: poison the handle */
        atomic_store(&d->poison.set, true);
    return s == KV_OK ? s : kv_error_wrap(s, NAME ": syncing the logs");
}

static void lsm_peer_free_parts(ldb_db *d)
{
    if (d->db)
        leveldb_close(d->db);
    if (d->opts)
        leveldb_options_destroy(d->opts);
    if (d->cache)
        leveldb_cache_destroy(d->cache);
    if (d->filter)
        leveldb_filterpolicy_destroy(d->filter);
    if (d->wopts)
        leveldb_writeoptions_destroy(d->wopts);
    if (d->ropts)
        leveldb_readoptions_destroy(d->ropts);
    pthread_mutex_destroy(&d->sync_mu);
    free(d->dir);
    free(d);
}

static kv_status ldb_open(const char *dir, kv_fs *fs, const kv_options *o, kv_db **out)
{
    uint64_t wbs = 4 << 20, mfs = 2 << 20, bs = 4096, bloom = 10, mof = 1000;
    kv_status s;
    if ((s = kv_options_get_u64(o, "write_buffer_size", 64 << 10, 1ull << 32, &wbs)) != KV_OK ||
        (s = kv_options_get_u64(o, "max_file_size", 64 << 10, 1ull << 32, &mfs)) != KV_OK ||
        (s = kv_options_get_u64(o, "block_size", 256, 64 << 20, &bs)) != KV_OK ||
        (s = kv_options_get_u64(o, "bloom_bits", 0, 64, &bloom)) != KV_OK ||
        (s = kv_options_get_u64(o, "max_open_files", 16, 1 << 20, &mof)) != KV_OK)
        return s;
    const char *comp = kv_options_get(o, "compression");
    int compression = leveldb_no_compression;
    if (comp && !strcmp(comp, "snappy"))
        compression = leveldb_snappy_compression;
    else if (comp && strcmp(comp, "none"))
        return kv_error(KV_INVALID, NAME ": compression=%s: want snappy or none", comp);

    ldb_db *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        return kv_error(KV_NOMEM, NAME ": out of memory");
    }
    pthread_mutex_init(&d->sync_mu, NULL);
    d->fs = fs;
    d->dur = o->durability;
    d->io0 = peer_io_now();
    d->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(d->opts, o->create_if_missing);
    leveldb_options_set_write_buffer_size(d->opts, wbs);
    leveldb_options_set_max_file_size(d->opts, mfs);
    leveldb_options_set_block_size(d->opts, bs);
    leveldb_options_set_max_open_files(d->opts, (int)mof);
    leveldb_options_set_compression(d->opts, compression);
    if (bloom) {
        d->filter = leveldb_filterpolicy_create_bloom((int)bloom);
        leveldb_options_set_filter_policy(d->opts, d->filter);
    }
    if (o->cache_size) {
        d->cache = leveldb_cache_create_lru(o->cache_size);
        leveldb_options_set_cache(d->opts, d->cache);
    }
    d->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(d->wopts, o->durability.kind == KV_DURABILITY_SYNC);
    d->ropts = leveldb_readoptions_create();

    char *err = NULL;
    d->db = leveldb_open(d->opts, dir, &err);
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

/* Sums the columns of the "leveldb.stats" compaction table. */
static void ldb_stats_table(const char *text, kv_stats *out)
{
    uint64_t files = 0;
    double size = 0, time = 0, rd = 0, wr = 0;
    for (const char *p = text; p && *p;) {
        int level, nfiles;
        double a, b, c, e;
        if (sscanf(p, " %d %d %lf %lf %lf %lf", &level, &nfiles, &a, &b, &c, &e) == 6) {
            char name[40];
            snprintf(name, sizeof name, "sstables_level%d", level);
            kv_stats_add(out, name, (uint64_t)nfiles);
            files += (uint64_t)nfiles;
            size += a;
            time += b;
            rd += c;
            wr += e;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    kv_stats_add(out, "sstables", files);
    kv_stats_add(out, "sstable_mb", (uint64_t)size);
    kv_stats_add(out, "compaction_seconds", (uint64_t)time);
    kv_stats_add(out, "compaction_read_mb", (uint64_t)rd);
    kv_stats_add(out, "compaction_write_mb", (uint64_t)wr);
}

static kv_status ldb_stats(kv_db *db, kv_stats *out)
{
    ldb_db *d = (ldb_db *)db;
    peer_fill_io(out, d->io0);
    char *mem = leveldb_property_value(d->db, "leveldb.approximate-memory-usage");
    if (mem) {
        out->memory_bytes = strtoull(mem, NULL, 10);
        leveldb_free(mem);
    }
    char *st = leveldb_property_value(d->db, "leveldb.stats");
    if (st) {
        ldb_stats_table(st, out);
        leveldb_free(st);
    }
    return KV_OK;
}

static kv_status ldb_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    static const char *const props[] = {"leveldb.stats", "leveldb.sstables",
                                        "leveldb.approximate-memory-usage"};
    return lsm_peer_dump_props((ldb_db *)db, out, file, page,
                               "these are LevelDB's own summaries (properties leveldb.stats and "
                               "leveldb.sstables); kvlab does not parse LevelDB's files",
                               props, sizeof props / sizeof *props);
}

const kv_engine kv_engine_leveldb = {
    .name = NAME,
    .description = "LevelDB (Google), the LSM tree of DDIA ch. 3, through its C API",
    .option_help = option_help,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 1,
    .open = ldb_open,
    .close = lsm_peer_close,
    .put = lsm_peer_put,
    .get = lsm_peer_get,
    .del = lsm_peer_del,
    .write = lsm_peer_write,
    .iter_new = lsm_peer_iter_new,
    .sync = lsm_peer_sync,
    .stats = ldb_stats,
    .check = lsm_peer_check,
    .dump = ldb_dump,
};
