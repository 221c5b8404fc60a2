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

#define NAME "rocksdb"

typedef struct rdb_db {
    kv_db base;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    char *dir;
    kv_durability dur;
    kv_syncer *syncer;
    peer_poison poison;
    peer_io io0;
} rdb_db;

typedef struct rdb_iter {
    kv_iter base;
    rdb_db *d;
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ropts;
    rocksdb_iterator_t *it;
} rdb_iter;

static const char *const option_help[] = {
    "write_buffer_size: memtable bytes before a flush to a level-0 SSTable (default 64M)",
    "target_file_size: target SSTable size in bytes at level 1 (default 64M)",
    "block_size: SSTable block size in bytes (default 4K)",
    "bloom_bits: bloom filter bits per key, 0 for none (default 10)",
    "compression: none, snappy or lz4 (default none, as kvlab's engines do not compress)",
    "background_jobs: flush and compaction threads (default 2)",
    NULL,
};

/* Takes ownership of err (a RocksDB malloc'd string). */
static kv_status rdb_err(const char *what, char *err)
{
    kv_status s = peer_status_text(what, err);
    rocksdb_free(err);
    return s;
}

/* Makes every acknowledged commit durable: FlushWAL(sync) syncs all live WAL files; with the
 * WAL disabled (`none`) the memtable is flushed to a synced SSTable instead. */
static kv_status rdb_make_durable(void *ctx)
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
    return rdb_err(NAME ": making the log durable", err);
}

static void rdb_free_parts(rdb_db *d)
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
        return kv_error(KV_IO, NAME ": out of memory");
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
        s = rdb_err(NAME ": open", err);
        d->db = NULL;
        rdb_free_parts(d);
        return s;
    }
    if (o->durability.kind == KV_DURABILITY_INTERVAL) {
        d->syncer = kv_syncer_start(o->durability.interval_ms, rdb_make_durable, d);
        if (!d->syncer) {
            s = kv_error_wrap(KV_IO, NAME ": starting the interval syncer");
            rdb_free_parts(d);
            return s;
        }
    }
    *out = &d->base;
    return KV_OK;
}

static kv_status rdb_close(kv_db *db)
{
    rdb_db *d = (rdb_db *)db;
    kv_status s = kv_syncer_stop(d->syncer);
    if (s == KV_OK)
        s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = rdb_make_durable(d);
    rdb_free_parts(d);
    return s;
}

static kv_status rdb_put(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen)
{
    rdb_db *d = (rdb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    char *err = NULL;
    rocksdb_put(d->db, d->wopts, key, klen, value, vlen, &err);
    return err ? peer_poison_on(&d->poison, rdb_err(NAME ": put", err)) : KV_OK;
}

static kv_status rdb_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    rdb_db *d = (rdb_db *)db;
    char *err = NULL;
    size_t n = 0;
    char *v = rocksdb_get(d->db, d->ropts, key, klen, &n, &err);
    if (err)
        return rdb_err(NAME ": get", err);
    if (!v)
        return KV_NOT_FOUND;
    if (n == 0) { /* malloc(0) may have returned NULL or a 0-byte block */
        rocksdb_free(v);
        v = malloc(1);
        if (!v)
            return kv_error(KV_IO, NAME ": get: out of memory");
    }
    *value = v; /* RocksDB's C API returns malloc()ed memory: kv_free (free) releases it */
    *vlen = n;
    return KV_OK;
}

static kv_status rdb_del(kv_db *db, const void *key, size_t klen)
{
    rdb_db *d = (rdb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    char *err = NULL;
    rocksdb_delete(d->db, d->wopts, key, klen, &err);
    return err ? peer_poison_on(&d->poison, rdb_err(NAME ": delete", err)) : KV_OK;
}

static kv_status rdb_write(kv_db *db, const kv_batch *b)
{
    rdb_db *d = (rdb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t n = kv_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        kv_batch_op op = kv_batch_get(b, i);
        if (op.type == KV_OP_PUT)
            rocksdb_writebatch_put(wb, (const char *)op.key, op.klen, (const char *)op.value,
                                   op.vlen);
        else
            rocksdb_writebatch_delete(wb, (const char *)op.key, op.klen);
    }
    char *err = NULL;
    rocksdb_write(d->db, d->wopts, wb, &err);
    rocksdb_writebatch_destroy(wb);
    return err ? peer_poison_on(&d->poison, rdb_err(NAME ": write batch", err)) : KV_OK;
}

static kv_status rdb_sync(kv_db *db)
{
    rdb_db *d = (rdb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = d->syncer ? kv_syncer_status(d->syncer) : KV_OK;
    return s == KV_OK ? rdb_make_durable(d) : s;
}

/* ---- iterators ---- */

static void it_seek_first(kv_iter *it)
{
    rocksdb_iter_seek_to_first(((rdb_iter *)it)->it);
}

static void it_seek(kv_iter *it, const void *key, size_t klen)
{
    rocksdb_iter_seek(((rdb_iter *)it)->it, key, klen);
}

static bool it_valid(const kv_iter *it)
{
    return rocksdb_iter_valid(((const rdb_iter *)it)->it);
}

static void it_next(kv_iter *it)
{
    rocksdb_iter_next(((rdb_iter *)it)->it);
}

static const void *it_key(const kv_iter *it, size_t *klen)
{
    return rocksdb_iter_key(((const rdb_iter *)it)->it, klen);
}

static const void *it_value(const kv_iter *it, size_t *vlen)
{
    const char *v = rocksdb_iter_value(((const rdb_iter *)it)->it, vlen);
    return v ? v : "";
}

static kv_status it_status(const kv_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(((const rdb_iter *)it)->it, &err);
    return err ? rdb_err(NAME ": iterator", err) : KV_OK;
}

static void it_free(kv_iter *it)
{
    rdb_iter *i = (rdb_iter *)it;
    rocksdb_iter_destroy(i->it);
    rocksdb_readoptions_destroy(i->ropts);
    rocksdb_release_snapshot(i->d->db, i->snap);
    free(i);
}

static const kv_iter_ops rdb_iter_ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                         it_key,        it_value, it_status, it_free};

static kv_status rdb_iter_new(kv_db *db, kv_iter **out)
{
    rdb_db *d = (rdb_db *)db;
    rdb_iter *i = calloc(1, sizeof *i);
    if (!i)
        return kv_error(KV_IO, NAME ": iterator: out of memory");
    i->base.ops = &rdb_iter_ops;
    i->d = d;
    i->snap = rocksdb_create_snapshot(d->db);
    i->ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(i->ropts, i->snap);
    i->it = rocksdb_create_iterator(d->db, i->ropts);
    *out = &i->base;
    return KV_OK;
}

/* ---- stats, check, dump ---- */

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

static kv_status rdb_check(kv_db *db)
{
    rdb_db *d = (rdb_db *)db;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(ro, 1);
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, ro);
    char *prev = NULL;
    size_t prevlen = 0;
    uint64_t n = 0;
    kv_status s = KV_OK;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it), n++) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        (void)rocksdb_iter_value(it, &vl);
        if (prev && peer_key_cmp(prev, prevlen, k, kl) >= 0) {
            s = kv_error(KV_CORRUPTION, NAME ": key %llu is not above the previous key",
                         (unsigned long long)n);
            break;
        }
        char *c = realloc(prev, kl ? kl : 1);
        if (!c) {
            s = kv_error(KV_IO, NAME ": check: out of memory");
            break;
        }
        prev = c;
        memcpy(prev, k, kl);
        prevlen = kl;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (s == KV_OK && err)
        s = peer_status_text(NAME ": check (iterating with verify_checksums)", err);
    rocksdb_free(err);
    free(prev);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return s;
}

static kv_status rdb_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    rdb_db *d = (rdb_db *)db;
    if (file || page >= 0)
        return kv_error(KV_NOTSUP, NAME ": the peer exposes no per-file or per-page dump; run "
                                        "without a file or page for its summaries");
    fprintf(out,
            "# %s: these are RocksDB's own summaries (properties rocksdb.stats, "
            "rocksdb.sstables, rocksdb.levelstats); kvlab does not parse RocksDB's files\n",
            d->dir);
    static const char *const props[] = {"rocksdb.levelstats", "rocksdb.sstables", "rocksdb.stats"};
    for (size_t i = 0; i < sizeof props / sizeof *props; i++) {
        char *v = rocksdb_property_value(d->db, props[i]);
        fprintf(out, "## %s\n%s\n", props[i], v ? v : "(not available)");
        rocksdb_free(v);
    }
    return ferror(out) ? kv_error(KV_IO, NAME ": dump: write error") : KV_OK;
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
    .close = rdb_close,
    .put = rdb_put,
    .get = rdb_get,
    .del = rdb_del,
    .write = rdb_write,
    .iter_new = rdb_iter_new,
    .sync = rdb_sync,
    .stats = rdb_stats,
    .check = rdb_check,
    .dump = rdb_dump,
};
