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

#define NAME "leveldb"

typedef struct ldb_db {
    kv_db base;
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_writeoptions_t *wopts;
    leveldb_readoptions_t *ropts;
    kv_fs *fs;
    char *dir;
    kv_durability dur;
    kv_syncer *syncer;
    pthread_mutex_t sync_mu; /* serializes log syncs (syncer thread, kv_sync, close) */
    uint64_t dir_synced;     /* highest log number whose directory entry is durable */
    peer_poison poison;
    peer_io io0;
} ldb_db;

typedef struct ldb_iter {
    kv_iter base;
    ldb_db *d;
    const leveldb_snapshot_t *snap;
    leveldb_readoptions_t *ropts;
    leveldb_iterator_t *it;
} ldb_iter;

static const char *const option_help[] = {
    "write_buffer_size: memtable bytes before it becomes a level-0 SSTable (default 4M)",
    "max_file_size: target SSTable size in bytes (default 2M)",
    "block_size: SSTable block size in bytes (default 4K)",
    "bloom_bits: bloom filter bits per key, 0 for none (default 10)",
    "compression: snappy or none (default none, as kvlab's engines do not compress)",
    "max_open_files: table files kept open (default 1000)",
    NULL,
};

/* Takes ownership of err (a leveldb malloc'd string). */
static kv_status ldb_err(const char *what, char *err)
{
    kv_status s = peer_status_text(what, err);
    leveldb_free(err);
    return s;
}

static kv_status ldb_sync_logs(void *ctx)
{
    ldb_db *d = ctx;
    pthread_mutex_lock(&d->sync_mu);
    kv_status s = peer_sync_numbered(d->fs, d->dir, ".log", &d->dir_synced);
    pthread_mutex_unlock(&d->sync_mu);
    if (s != KV_OK) /* never retry a failed fdatasync: poison the handle */
        atomic_store(&d->poison.set, true);
    return s == KV_OK ? s : kv_error_wrap(s, NAME ": syncing the logs");
}

static void ldb_free_parts(ldb_db *d)
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
        return kv_error(KV_IO, NAME ": out of memory");
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
        s = ldb_err(NAME ": open", err);
        d->db = NULL;
        ldb_free_parts(d);
        return s;
    }
    if (o->durability.kind == KV_DURABILITY_INTERVAL) {
        d->syncer = kv_syncer_start(o->durability.interval_ms, ldb_sync_logs, d);
        if (!d->syncer) {
            s = kv_error_wrap(KV_IO, NAME ": starting the interval syncer");
            ldb_free_parts(d);
            return s;
        }
    }
    *out = &d->base;
    return KV_OK;
}

static kv_status ldb_close(kv_db *db)
{
    ldb_db *d = (ldb_db *)db;
    kv_status s = kv_syncer_stop(d->syncer);
    if (s == KV_OK && atomic_load(&d->poison.set))
        s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = ldb_sync_logs(d);
    ldb_free_parts(d);
    return s;
}

static kv_status ldb_put(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen)
{
    ldb_db *d = (ldb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    char *err = NULL;
    leveldb_put(d->db, d->wopts, key, klen, value, vlen, &err);
    return err ? peer_poison_on(&d->poison, ldb_err(NAME ": put", err)) : KV_OK;
}

static kv_status ldb_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    ldb_db *d = (ldb_db *)db;
    char *err = NULL;
    size_t n = 0;
    char *v = leveldb_get(d->db, d->ropts, key, klen, &n, &err);
    if (err)
        return ldb_err(NAME ": get", err);
    if (!v)
        return KV_NOT_FOUND;
    if (n == 0) { /* malloc(0) may have returned NULL or a 0-byte block */
        leveldb_free(v);
        v = malloc(1);
        if (!v)
            return kv_error(KV_IO, NAME ": get: out of memory");
    }
    *value = v; /* LevelDB's C API returns malloc()ed memory: kv_free (free) releases it */
    *vlen = n;
    return KV_OK;
}

static kv_status ldb_del(kv_db *db, const void *key, size_t klen)
{
    ldb_db *d = (ldb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    char *err = NULL;
    leveldb_delete(d->db, d->wopts, key, klen, &err);
    return err ? peer_poison_on(&d->poison, ldb_err(NAME ": delete", err)) : KV_OK;
}

static kv_status ldb_write(kv_db *db, const kv_batch *b)
{
    ldb_db *d = (ldb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    size_t n = kv_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        kv_batch_op op = kv_batch_get(b, i);
        if (op.type == KV_OP_PUT)
            leveldb_writebatch_put(wb, (const char *)op.key, op.klen, (const char *)op.value,
                                   op.vlen);
        else
            leveldb_writebatch_delete(wb, (const char *)op.key, op.klen);
    }
    char *err = NULL;
    leveldb_write(d->db, d->wopts, wb, &err);
    leveldb_writebatch_destroy(wb);
    return err ? peer_poison_on(&d->poison, ldb_err(NAME ": write batch", err)) : KV_OK;
}

static kv_status ldb_sync(kv_db *db)
{
    ldb_db *d = (ldb_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = d->syncer ? kv_syncer_status(d->syncer) : KV_OK;
    return s == KV_OK ? ldb_sync_logs(d) : s;
}

/* ---- iterators ---- */

static void it_seek_first(kv_iter *it)
{
    leveldb_iter_seek_to_first(((ldb_iter *)it)->it);
}

static void it_seek(kv_iter *it, const void *key, size_t klen)
{
    leveldb_iter_seek(((ldb_iter *)it)->it, key, klen);
}

static bool it_valid(const kv_iter *it)
{
    return leveldb_iter_valid(((const ldb_iter *)it)->it);
}

static void it_next(kv_iter *it)
{
    leveldb_iter_next(((ldb_iter *)it)->it);
}

static const void *it_key(const kv_iter *it, size_t *klen)
{
    return leveldb_iter_key(((const ldb_iter *)it)->it, klen);
}

static const void *it_value(const kv_iter *it, size_t *vlen)
{
    const char *v = leveldb_iter_value(((const ldb_iter *)it)->it, vlen);
    return v ? v : "";
}

static kv_status it_status(const kv_iter *it)
{
    char *err = NULL;
    leveldb_iter_get_error(((const ldb_iter *)it)->it, &err);
    return err ? ldb_err(NAME ": iterator", err) : KV_OK;
}

static void it_free(kv_iter *it)
{
    ldb_iter *i = (ldb_iter *)it;
    leveldb_iter_destroy(i->it);
    leveldb_readoptions_destroy(i->ropts);
    leveldb_release_snapshot(i->d->db, i->snap);
    free(i);
}

static const kv_iter_ops ldb_iter_ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                         it_key,        it_value, it_status, it_free};

static kv_status ldb_iter_new(kv_db *db, kv_iter **out)
{
    ldb_db *d = (ldb_db *)db;
    ldb_iter *i = calloc(1, sizeof *i);
    if (!i)
        return kv_error(KV_IO, NAME ": iterator: out of memory");
    i->base.ops = &ldb_iter_ops;
    i->d = d;
    i->snap = leveldb_create_snapshot(d->db);
    i->ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_snapshot(i->ropts, i->snap);
    i->it = leveldb_create_iterator(d->db, i->ropts);
    *out = &i->base;
    return KV_OK;
}

/* ---- stats, check, dump ---- */

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

static kv_status ldb_check(kv_db *db)
{
    ldb_db *d = (ldb_db *)db;
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(ro, 1);
    leveldb_readoptions_set_fill_cache(ro, 0);
    leveldb_iterator_t *it = leveldb_create_iterator(d->db, ro);
    char *prev = NULL;
    size_t prevlen = 0;
    uint64_t n = 0;
    kv_status s = KV_OK;
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it), n++) {
        size_t kl, vl;
        const char *k = leveldb_iter_key(it, &kl);
        (void)leveldb_iter_value(it, &vl);
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
    leveldb_iter_get_error(it, &err);
    if (s == KV_OK && err)
        s = peer_status_text(NAME ": check (iterating with verify_checksums)", err);
    leveldb_free(err);
    free(prev);
    leveldb_iter_destroy(it);
    leveldb_readoptions_destroy(ro);
    return s;
}

static kv_status ldb_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    ldb_db *d = (ldb_db *)db;
    if (file || page >= 0)
        return kv_error(KV_NOTSUP, NAME ": the peer exposes no per-file or per-page dump; run "
                                        "without a file or page for its summaries");
    fprintf(out,
            "# %s: these are LevelDB's own summaries (properties leveldb.stats and "
            "leveldb.sstables); kvlab does not parse LevelDB's files\n",
            d->dir);
    static const char *const props[] = {"leveldb.stats", "leveldb.sstables",
                                        "leveldb.approximate-memory-usage"};
    for (size_t i = 0; i < sizeof props / sizeof *props; i++) {
        char *v = leveldb_property_value(d->db, props[i]);
        fprintf(out, "## %s\n%s\n", props[i], v ? v : "(not available)");
        leveldb_free(v);
    }
    return ferror(out) ? kv_error(KV_IO, NAME ": dump: write error") : KV_OK;
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
    .close = ldb_close,
    .put = ldb_put,
    .get = ldb_get,
    .del = ldb_del,
    .write = ldb_write,
    .iter_new = ldb_iter_new,
    .sync = ldb_sync,
    .stats = ldb_stats,
    .check = ldb_check,
    .dump = ldb_dump,
};
