/* db.c: opening, closing and the engine table of the lsm engine, table files (names, identity
 * checks) and the handle's poisoning. Recovery itself is recover.c.
 *
 * A read-only open (kv_options.read_only, as LMDB's and SQLite's read-only opens) recovers in
 * memory only: the replayed WALs stay in one memtable, no table, manifest or log is written, no
 * file is renamed or deleted, and no background thread runs (no flush, no compaction). */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lsm.h"
#include "lsm_int.h"
#include "lock_assert.h"

lsm_file_type lsm_parse_name(const char *name, uint64_t *number)
{
    size_t n = strlen(name);
    if (n > 4 && !strcmp(name + n - 4, ".tmp"))
        return LSM_FILE_TEMP;
    if (!strcmp(name, "CURRENT"))
        return LSM_FILE_CURRENT;
    char *end;
    if (!strncmp(name, "MANIFEST-", 9) && name[9] >= '0' && name[9] <= '9') {
        *number = strtoull(name + 9, &end, 10);
        return *end ? LSM_FILE_OTHER : LSM_FILE_MANIFEST;
    }
    if (name[0] < '0' || name[0] > '9')
        return LSM_FILE_OTHER;
    *number = strtoull(name, &end, 10);
    if (!strcmp(end, ".log"))
        return LSM_FILE_LOG;
    if (!strcmp(end, ".sst"))
        return LSM_FILE_TABLE;
    return LSM_FILE_OTHER;
}

kv_status lsm_make_table_name(uint64_t number, char *buf, size_t cap)
{
    snprintf(buf, cap, "%06llu.sst", (unsigned long long)number);
    return KV_OK;
}

kv_status lsm_open_file(lsm_db *db, uint64_t number, uint64_t size, uint64_t unique_id,
                        lsm_file **out)
{
    char name[32];
    lsm_make_table_name(number, name, sizeof name);
    char *path = kv_path_join(db->dir, name);
    if (!path)
        return kv_error(KV_NOMEM, "out of memory");
    lsm_file *f = calloc(1, sizeof *f);
    kv_status s =
        f ? sst_reader_open_ex(db->fs, path, &lsm_ikey_ops, db->cache, db->o.mmap_reads, &f->reader)
          : kv_error(KV_NOMEM, "out of memory");
    if (s == KV_NOT_FOUND)
        s = kv_error(KV_CORRUPTION, "%s: missing", path);
    if (s != KV_OK) {
        free(path);
        free(f);
        return s;
    }
    const sst_props *p = sst_reader_props(f->reader);
    atomic_init(&f->refs, 1);
    f->number = number;
    f->size = p->file_size;
    f->unique_id = p->unique_id;
    f->entries = p->entries;
    /* The table must be the one the caller recorded (RocksDB 7 checks SST unique ids against its
     * manifest the same way): another table put under this name, an older or a cut copy. */
    if (p->file_size != size)
        s = kv_error(KV_CORRUPTION, "%s: %llu bytes, the manifest says %llu", path,
                     (unsigned long long)p->file_size, (unsigned long long)size);
    else if (p->unique_id != unique_id)
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %llu: unique id %016llx, the manifest says %016llx (another "
                     "table under this name)",
                     path, (unsigned long long)(p->file_size - SST_FOOTER_SIZE + 36),
                     (unsigned long long)p->unique_id, (unsigned long long)unique_id);
    else if (p->smallest_len < 8 || p->largest_len < 8)
        s = kv_error(KV_CORRUPTION, "%s: bad smallest/largest keys", path);
    else if (!(f->smallest = malloc(p->smallest_len)) || !(f->largest = malloc(p->largest_len)))
        s = kv_error(KV_NOMEM, "out of memory");
    free(path);
    if (s != KV_OK) {
        lsm_file_unref(f);
        return s;
    }
    memcpy(f->smallest, p->smallest, p->smallest_len);
    memcpy(f->largest, p->largest, p->largest_len);
    f->smallest_len = p->smallest_len;
    f->largest_len = p->largest_len;
    *out = f;
    return KV_OK;
}

uint64_t lsm_new_unique_id(void)
{
    static _Atomic uint64_t counter;
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        /* no entropy source: a mix of time, process and a counter is still unique here */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        v ^= (uint64_t)getpid() << 32;
        v += atomic_fetch_add(&counter, 1) * UINT64_C(0x9E3779B97F4A7C15);
    }
    return v ? v : 1;
}

kv_status lsm_finish_table(lsm_db *db, sst_writer *w, uint64_t number, lsm_file **out)
{
    sst_props props = {0};
    kv_status s = sst_writer_finish(w, &props);
    if (s == KV_OK)
        s = lsm_open_file(db, number, props.file_size, props.unique_id, out);
    sst_props_free(&props);
    return s;
}

void lsm_poison_locked(lsm_db *db, kv_status s)
{
    KV_ASSERT_HELD(&db->mu);
    if (!atomic_load(&db->poisoned)) {
        db->bg_error = s;
        snprintf(db->bg_msg, sizeof db->bg_msg, "%s", kv_errmsg());
        atomic_store(&db->poisoned, true);
    }
    pthread_cond_broadcast(&db->done_cv);
}

void lsm_poison(lsm_db *db, kv_status s)
{
    pthread_mutex_lock(&db->mu);
    lsm_poison_locked(db, s);
    pthread_mutex_unlock(&db->mu);
}

kv_status lsm_poisoned_status_locked(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    return kv_error(KV_POISONED, "lsm %s: handle poisoned by an earlier failure: %s", db->dir,
                    db->bg_msg);
}

kv_status lsm_poisoned_status(lsm_db *db)
{
    pthread_mutex_lock(&db->mu);
    kv_status s = lsm_poisoned_status_locked(db);
    pthread_mutex_unlock(&db->mu);
    return s;
}

uint64_t lsm_smallest_snapshot(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    uint64_t m = atomic_load(&db->last_seq);
    for (size_t i = 0; i < db->n_snaps; i++)
        if (db->snaps[i] < m)
            m = db->snaps[i];
    return m;
}

/* ---- options ---- */

static const char *const option_help[] = {
    "compaction: leveled (LevelDB: L0, then levels of non-overlapping tables) or tiered "
    "(size-tiered: every flush is a sorted run, runs of similar size are merged; Cassandra "
    "STCS, RocksDB universal); a database keeps the strategy it was created with (default "
    "leveled)",
    "min_merge_width: tiered: runs of similar size (0.5x to 1.5x their average, or all at most "
    "write_buffer_size) that start a merge (default 4)",
    "max_merge_width: tiered: at most this many runs merged at once (default 32)",
    "write_buffer_size: bytes of memtable before it is flushed to an L0 SSTable (default 4M)",
    "target_file_size: bytes of an SSTable written by compaction (default 2M)",
    "l0_compaction_trigger: L0 files that start a compaction (default 4)",
    "l0_slowdown_trigger: L0 files (tiered: runs awaiting a merge) at which each write is "
    "delayed 1 ms (default 8)",
    "l0_stop_trigger: L0 files (tiered: runs awaiting a merge) at which writes wait for "
    "compaction (default 12)",
    "level_base_bytes: bytes of level 1; each deeper level holds 10x more (default 10M)",
    "block_size: bytes of an SSTable data block (default 4K)",
    "block_restart_interval: keys between restart points in a block (default 16)",
    "bloom_bits_per_key: Bloom filter bits per key, 0 = none (default 10)",
    "manifest_max_size: bytes of manifest before it rolls over to a new one (default 4M)",
    "mmap_reads: 1 = read tables through mmap, each block's CRC checked on first touch; 0 = "
    "pread through the block cache (default 1)",
    "bug: a deliberate crash bug for the lab (docs/lab.md; needs --allow-bugs): wal_no_fsync, "
    "table_no_fsync, log_deleted_early or no_dir_fsync",
    NULL,
};

/* The names of lsm_bug's values after LSM_BUG_NONE, in order. */
static const char *const bug_names[] = {"wal_no_fsync", "table_no_fsync", "log_deleted_early",
                                        "no_dir_fsync", NULL};

static kv_status parse_opts(const kv_options *o, lsm_opts *out)
{
    memset(out, 0, sizeof *out);
    out->write_buffer_size = 4 << 20;
    out->target_file_size = 2 << 20;
    out->l0_trigger = 4;
    out->l0_slowdown = 8;
    out->l0_stop = 12;
    out->level_base_bytes = 10 << 20;
    out->manifest_max_size = 4 << 20;
    out->compaction = LSM_COMPACTION_LEVELED;
    out->min_merge_width = 4;
    out->max_merge_width = 32;
    const char *comp = kv_options_get(o, "compaction");
    if (comp) {
        if (!strcmp(comp, "leveled"))
            out->compaction = LSM_COMPACTION_LEVELED;
        else if (!strcmp(comp, "tiered"))
            out->compaction = LSM_COMPACTION_TIERED;
        else
            return kv_error(KV_INVALID, "lsm: compaction=%s: want leveled or tiered", comp);
        out->compaction_given = true;
    }
    out->cache_size = o->cache_size ? o->cache_size : 8 << 20;
    sst_writer_opts_init(&out->sst);
    uint64_t bs = out->sst.block_size, ri = out->sst.restart_interval,
             bb = out->sst.bloom_bits_per_key, mm = 1;
    kv_status s;
    if ((s = kv_options_get_u64(o, "write_buffer_size", 1024, 1ull << 32,
                                &out->write_buffer_size)) != KV_OK ||
        (s = kv_options_get_u64(o, "target_file_size", 1024, 1ull << 32, &out->target_file_size)) !=
            KV_OK ||
        (s = kv_options_get_u64(o, "l0_compaction_trigger", 1, 1000, &out->l0_trigger)) != KV_OK ||
        (s = kv_options_get_u64(o, "l0_slowdown_trigger", 1, 1000, &out->l0_slowdown)) != KV_OK ||
        (s = kv_options_get_u64(o, "l0_stop_trigger", 1, 1000, &out->l0_stop)) != KV_OK ||
        (s = kv_options_get_u64(o, "level_base_bytes", 1024, 1ull << 40, &out->level_base_bytes)) !=
            KV_OK ||
        (s = kv_options_get_u64(o, "block_size", 256, 1 << 20, &bs)) != KV_OK ||
        (s = kv_options_get_u64(o, "block_restart_interval", 1, 1024, &ri)) != KV_OK ||
        (s = kv_options_get_u64(o, "bloom_bits_per_key", 0, 100, &bb)) != KV_OK ||
        (s = kv_options_get_u64(o, "manifest_max_size", 256, 1ull << 32,
                                &out->manifest_max_size)) != KV_OK ||
        (s = kv_options_get_u64(o, "mmap_reads", 0, 1, &mm)) != KV_OK ||
        (s = kv_options_get_u64(o, "min_merge_width", 2, 1000, &out->min_merge_width)) != KV_OK ||
        (s = kv_options_get_u64(o, "max_merge_width", 2, 1000, &out->max_merge_width)) != KV_OK)
        return s;
    if (out->max_merge_width < out->min_merge_width)
        return kv_error(KV_INVALID, "lsm: want min_merge_width <= max_merge_width");
    if (out->l0_slowdown < out->l0_trigger || out->l0_stop < out->l0_slowdown)
        return kv_error(KV_INVALID, "lsm: want l0_compaction_trigger <= l0_slowdown_trigger <= "
                                    "l0_stop_trigger");
    out->sst.block_size = bs;
    out->sst.restart_interval = (unsigned)ri;
    out->sst.bloom_bits_per_key = (unsigned)bb;
    out->mmap_reads = mm != 0;
    int bug = 0;
    if ((s = kv_options_get_bug(o, "lsm", bug_names, &bug)) != KV_OK)
        return s;
    out->bug = (lsm_bug)bug;
    if (out->bug == LSM_BUG_TABLE_NO_FSYNC) {
        /* BUG (docs/lab.md): tables are renamed into place without an fdatasync. The correct
         * writer fdatasyncs the table before its rename: the manifest edit naming it then
         * lets the WAL (or the compaction's inputs) go, and a power loss can leave a table
         * whose blocks never reached the disk. */
        out->sst.sync_data = false;
    }
    if (out->bug == LSM_BUG_NO_DIR_FSYNC) {
        /* BUG (docs/lab.md): a flushed table's rename is not followed by a directory fsync.
         * The correct writer fsyncs the directory after it: the name is durable only then, and
         * the manifest edit naming the table lets the WAL go, so a power loss can leave a
         * manifest that names a table that is not there. */
        out->sst.sync_dir = false;
    }
    return KV_OK;
}

/* ---- open / close ---- */

static void db_free(lsm_db *db)
{
    kv_group_commit_free(db->gc);
    lsm_mem_unref(db->mem);
    lsm_mem_unref(db->imm);
    lsm_log_unref(db->imm_log);
    lsm_log_unref(db->log);
    lsm_log_unref(db->manifest);
    if (db->current) {
        lsm_version *v = db->current;
        db->current = NULL;
        pthread_mutex_lock(&db->mu);
        lsm_version_unref_locked(v);
        pthread_mutex_unlock(&db->mu);
    }
    sst_cache_free(db->cache);
    for (int l = 0; l < LSM_LEVELS; l++)
        kv_buf_free(&db->compact_ptr[l]);
    free(db->snaps);
    free(db->dir);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->manifest_mu);
    pthread_cond_destroy(&db->bg_cv);
    pthread_cond_destroy(&db->done_cv);
    free(db);
}

static kv_status lsm_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    lsm_db *db = calloc(1, sizeof *db);
    if (!db)
        return kv_error(KV_NOMEM, "lsm: out of memory");
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->manifest_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    pthread_cond_init(&db->done_cv, NULL);
    db->versions.next = db->versions.prev = &db->versions;
    db->fs = fs;
    db->dur = opts->durability;
    db->read_only = opts->read_only;
    kv_status s = parse_opts(opts, &db->o);
    if (s != KV_OK) {
        db_free(db);
        return s;
    }
    db->dir = strdup(dir);
    db->cache = sst_cache_new(db->o.cache_size);
    db->gc = kv_group_commit_new(lsm_group_write, db, 1024, 1 << 20);
    if (db->gc) /* sync groups of every active committer, not alternating halves */
        kv_group_commit_set_delay(db->gc, true);
    if (!db->dir || !db->cache || !db->gc) {
        db_free(db);
        return kv_error(KV_NOMEM, "lsm: out of memory");
    }
    pthread_mutex_lock(&db->mu);
    s = lsm_recover(db);
    pthread_mutex_unlock(&db->mu);
    if (s == KV_OK && !db->read_only && pthread_create(&db->bg, NULL, lsm_bg_main, db) != 0)
        s = kv_error(KV_IO, "lsm: cannot start the background thread");
    else if (s == KV_OK && !db->read_only)
        db->bg_started = true;
    if (s == KV_OK && !db->read_only && db->dur.kind == KV_DURABILITY_INTERVAL) {
        db->syncer = kv_syncer_start(db->dur.interval_ms, lsm_interval_sync, db);
        if (!db->syncer)
            s = KV_IO;
    }
    if (s != KV_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
        if (db->bg_started) {
            pthread_mutex_lock(&db->mu);
            db->stop = true;
            pthread_cond_broadcast(&db->bg_cv);
            pthread_mutex_unlock(&db->mu);
            pthread_join(db->bg, NULL);
        }
        db_free(db);
        return kv_error(s, "%s", msg);
    }
    pthread_mutex_lock(&db->mu);
    pthread_cond_signal(&db->bg_cv); /* a compaction may be due */
    pthread_mutex_unlock(&db->mu);
    *out = &db->base;
    return KV_OK;
}

static kv_status lsm_close(kv_db *kdb)
{
    lsm_db *db = (lsm_db *)kdb;
    if (db->read_only) { /* nothing was written: nothing to make durable */
        db_free(db);
        return KV_OK;
    }
    pthread_mutex_lock(&db->mu);
    db->stop = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    pthread_join(db->bg, NULL);
    kv_status s = KV_OK;
    if (db->syncer) {
        kv_status ss = kv_syncer_stop(db->syncer);
        db->syncer = NULL;
        if (ss != KV_OK)
            lsm_poison(db, ss);
    }
    if (atomic_load(&db->poisoned))
        s = lsm_poisoned_status(db);
    else { /* every WAL recovery would replay: the immutable memtable's too, if unflushed; then
              a sync mark vouches for all of the current one (a clean close) */
        s = lsm_sync_wals(db, db->log);
        if (s == KV_OK)
            s = lsm_log_seal(db->log);
        if (s == KV_OK)
            s = lsm_seal_in_manifest(db);
    }
    db_free(db);
    return s;
}

const kv_engine kv_engine_lsm = {
    .name = "lsm",
    .description = "log-structured merge tree (LevelDB-style): WAL + skiplist memtable, "
                   "SSTables in leveled or size-tiered compaction",
    .option_help = option_help,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 2,
    .read_only = true,
    .open = lsm_open,
    .close = lsm_close,
    .put = lsm_put,
    .get = lsm_get,
    .del = lsm_del,
    .write = lsm_write,
    .iter_new = lsm_iter_new,
    .sync = lsm_sync,
    .stats = lsm_stats,
    .check = lsm_check,
    .dump = lsm_dump,
    .picture = lsm_picture,
    .compact = lsm_compact_all,
};
