/* engine.c: the btree engine's kv_engine vtable: open and recovery, the write path with group
 * commit, the durability modes, checkpoints and close (docs/btree.md).
 *
 * Write path: a put, a delete or a batch becomes an item; in `sync` mode items go through the
 * group-commit queue (common/group_commit.h) so that concurrent committers share one fdatasync
 * of the log; in the other modes the writer applies its item alone. Applying takes the writer
 * mutex, then the tree lock exclusively, changes the pages, and write(2)s the group's page
 * images and commit record to the log (`none`: to a user-space buffer); the tree lock is
 * released before any fdatasync, so readers never wait for one.
 *
 * Checkpoint (DDIA ch. 3 "Making B-trees reliable"; SQLite's WAL checkpoint): fdatasync the log,
 * write every dirty page and the meta page to the data file, fdatasync the data file, and only
 * then reset the log with a new generation and fdatasync it. The background writer (bgw.c) does
 * much of that ahead of it on another core (log fdatasyncs, dirty pages written back), so that
 * the checkpoint, which holds the writer mutex, has less left to do. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "btree_int.h"
#include "lock_assert.h"

/* The buffer pool's default budget: a quarter of the machine's memory (PostgreSQL's advice for
 * shared_buffers; WiredTiger takes half), at least 64 MiB. Frames are allocated as pages are
 * used, so a small database costs only its own pages. docs/btree.md section 3 explains the
 * choice with the figures. */
#define MIN_CACHE ((uint64_t)64 << 20)
static uint64_t default_cache(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
    return mem / 4 > MIN_CACHE ? mem / 4 : MIN_CACHE;
}
/* Log bytes that trigger a checkpoint. Each checkpoint costs a write of every dirty page, two
 * fdatasyncs and then a full page image in the log for the first change of every page (section
 * 4 of docs/btree.md), and stalls writers (not readers) meanwhile: a larger log means fewer of
 * them (lower write amplification), at the price of a longer replay after a crash. */
#define DEFAULT_CHECKPOINT ((uint64_t)2 << 30)

static const char *const option_help[] = {
    "page_size: bytes per page, a power of two from 4096 to 65536 (default 4096; fixed at "
    "creation)",
    "checkpoint_bytes: log size in bytes that triggers a checkpoint (default 2G)",
    "cache_size: bytes of the buffer pool, as the common cache_size setting (kvlab bench "
    "--cache-size) for tools that have no such flag; default a quarter of the machine's memory, "
    "at least 64M",
    "warm: when the data file fits in the cache, 2 = load it at open, on every core, before "
    "kv_open returns (default), 1 = load it in the background after open, 0 = read pages only "
    "when first used",
    "bgwriter: the background writer, which takes the checkpoint's work off the writer's path: "
    "it fdatasyncs the log as it grows and writes dirty pages back (under the WAL rule) over "
    "the last part of the log's growth towards checkpoint_bytes, so that a checkpoint finds "
    "fewer dirty pages and a durable log; 1 = on a thread of its own (default), 0 = off (every "
    "checkpoint does all of it while writers wait; no extra thread or data-file writes), 2 = "
    "the same work inline on the writer's thread (deterministic I/O, for crash tests)",
    "bgwriter_start: percent of checkpoint_bytes of log from which the background writer "
    "writes dirty pages back, paced to finish as the log reaches checkpoint_bytes (default 90; "
    "lower writes more pages early that are changed again before the checkpoint: more write "
    "amplification; 100 = log fdatasyncs only)",
    "bug: a deliberate crash bug for the lab (docs/lab.md; needs --allow-bugs): "
    "alloc_outside_log, truncate_before_sync, meta_outside_log or no_data_fsync",
    NULL,
};

kv_status bt_poison(bt_db *db, kv_status s)
{
    if (s != KV_OK && s != KV_NOT_FOUND && s != KV_INVALID)
        atomic_store(&db->poisoned, true);
    return s;
}

static kv_status poisoned_error(bt_db *db)
{
    return kv_error(KV_POISONED, "%s: an earlier write or fsync failed; reopen to recover",
                    db->log_path);
}

kv_status bt_read_page_disk(bt_db *db, uint32_t pgno, uint8_t *buf)
{
    return kv_file_read_exact(db->data, buf, db->ps, (uint64_t)pgno * db->ps);
}

/* ---- the write path ---- */

typedef struct bt_item {
    const bt_op *op;   /* a single put or delete, or */
    const kv_batch *b; /* a batch */
} bt_item;

static kv_status apply_one(bt_db *db, const bt_item *it)
{
    if (it->op)
        return bt_tree_apply(db, it->op);
    size_t n = kv_batch_count(it->b);
    for (size_t i = 0; i < n; i++) {
        kv_batch_op bo = kv_batch_get(it->b, i);
        bt_op op = {bo.type, bo.key, bo.klen, bo.value, bo.vlen};
        kv_status s = bt_tree_apply(db, &op);
        if (s != KV_OK)
            return s;
    }
    return KV_OK;
}

/* Applies items as one log group. Writer mutex held. */
static kv_status apply_items(bt_db *db, void *const *items, size_t n)
{
    KV_ASSERT_HELD(&db->wmu);
    if (atomic_load(&db->poisoned))
        return poisoned_error(db);
    pthread_rwlock_wrlock(&db->tree);
    bt_txn_begin(db);
    kv_status s = KV_OK;
    for (size_t i = 0; i < n && s == KV_OK; i++)
        s = apply_one(db, items[i]);
    if (s == KV_OK) {
        s = bt_wal_commit_group(db);
        if (s != KV_OK)
            bt_poison(db, s); /* a failed log write: the tail may hold part of the group */
    }
    if (s == KV_OK && db->bug == BT_BUG_META_OUTSIDE_LOG) {
        /* BUG (docs/lab.md): the meta page (root, height, key count, free list) is written in
         * place into btree.db at every commit. The correct code logs its image with the group
         * and writes page 0 in place only at a checkpoint, after the log is durable (the WAL
         * rule): written early, the data file can name a root or a log position whose group a
         * power loss took back. */
        s = bt_poison(db, bt_write_meta(db, &db->meta));
    }
    if (s != KV_OK) {
        bt_txn_rollback(db);
    } else {
        bt_txn_end(db);
        atomic_store(&db->epoch, db->txn.epoch);
    }
    pthread_rwlock_unlock(&db->tree);
    return s;
}

static kv_status group_write(void *ctx, void *const *items, size_t n, bool sync)
{
    bt_db *db = ctx;
    pthread_mutex_lock(&db->wmu);
    kv_status s = apply_items(db, items, n);
    if (s == KV_OK && sync) {
        s = bt_poison(db, bt_wal_sync(db));
        if (s == KV_OK)
            db->durable_lsn = db->next_lsn - 1;
    }
    /* Checkpoints follow the log's size alone; the pool stays within its budget by writing
     * cold dirty pages back (steal, flush.c), not by checkpointing. */
    if (s == KV_OK && db->log_end >= BT_LOG_HDR + db->checkpoint_bytes)
        s = bt_checkpoint(db);
    else if (s == KV_OK)
        s = bt_writeback(db);
    if (s == KV_OK)
        bt_bgw_poke(db);
    pthread_mutex_unlock(&db->wmu);
    return s;
}

static kv_status submit(bt_db *db, bt_item *it, size_t bytes)
{
    if (db->gc)
        return kv_group_commit_submit(db->gc, it, bytes, true);
    void *items[1] = {it};
    return group_write(db, items, 1, false);
}

static kv_status bt_put(kv_db *kdb, const void *key, size_t klen, const void *value, size_t vlen)
{
    bt_op op = {KV_OP_PUT, key, klen, value, vlen};
    bt_item it = {&op, NULL};
    return submit((bt_db *)kdb, &it, klen + vlen);
}

static kv_status bt_del(kv_db *kdb, const void *key, size_t klen)
{
    bt_op op = {KV_OP_DELETE, key, klen, NULL, 0};
    bt_item it = {&op, NULL};
    return submit((bt_db *)kdb, &it, klen);
}

static kv_status bt_write(kv_db *kdb, const kv_batch *b)
{
    bt_item it = {NULL, b};
    return submit((bt_db *)kdb, &it, kv_batch_bytes(b));
}

static kv_status bt_get(kv_db *kdb, const void *key, size_t klen, void **value, size_t *vlen)
{
    bt_db *db = (bt_db *)kdb;
    pthread_rwlock_rdlock(&db->tree);
    kv_status s = bt_tree_get(db, key, klen, value, vlen);
    pthread_rwlock_unlock(&db->tree);
    return s;
}

static kv_status bt_sync(kv_db *kdb)
{
    bt_db *db = (bt_db *)kdb;
    pthread_mutex_lock(&db->wmu);
    kv_status s = atomic_load(&db->poisoned) ? poisoned_error(db) : bt_wal_flush_pending(db);
    if (s == KV_OK)
        s = bt_wal_sync(db);
    if (s == KV_OK)
        db->durable_lsn = db->next_lsn - 1;
    pthread_mutex_unlock(&db->wmu);
    return bt_poison(db, s);
}

static kv_status syncer_fn(void *ctx)
{
    bt_db *db = ctx;
    if (atomic_load(&db->poisoned))
        return poisoned_error(db);
    /* What this fdatasync covers: the bytes written before it began, of the generation current
     * then (a checkpoint may reset the log meanwhile: bt_wal_synced ignores an older one). */
    pthread_mutex_lock(&db->sync_mu);
    uint64_t gen = db->log_gen, len = atomic_load(&db->written);
    pthread_mutex_unlock(&db->sync_mu);
    kv_status s = kv_file_fdatasync(db->log);
    if (s == KV_OK)
        bt_wal_synced(db, gen, len);
    return bt_poison(db, s);
}

/* ---- open and close ---- */

static void free_db(bt_db *db)
{
    bt_warm_stop(db);
    bt_bgw_stop(db);
    kv_group_commit_free(db->gc);
    kv_file_close(db->data);
    kv_file_close(db->log);
    bt_pool_free(&db->pool);
    bt_txn_free(&db->txn);
    bt_vs_free(&db->vs);
    kv_buf_free(&db->rec);
    kv_buf_free(&db->pending);
    free(db->imaged);
    for (int i = 0; i < 4; i++)
        free(db->sc[i]);
    free(db->cl[0]);
    free(db->cl[1]);
    pthread_rwlock_destroy(&db->tree);
    pthread_mutex_destroy(&db->wmu);
    pthread_mutex_destroy(&db->sync_mu);
    pthread_mutex_destroy(&db->flush_mu);
    pthread_mutex_destroy(&db->bgw_mu);
    pthread_cond_destroy(&db->bgw_cv);
    free(db->dir);
    free(db->data_path);
    free(db->log_path);
    free(db);
}

static kv_status bt_close(kv_db *kdb)
{
    bt_db *db = (bt_db *)kdb;
    bt_warm_stop(db);
    bt_bgw_stop(db); /* its last batch ends before the close's checkpoint */
    kv_status s = kv_syncer_stop(db->syncer);
    db->syncer = NULL;
    pthread_mutex_lock(&db->wmu);
    kv_status c = db->read_only                ? KV_OK
                  : atomic_load(&db->poisoned) ? poisoned_error(db)
                                               : bt_checkpoint(db);
    pthread_mutex_unlock(&db->wmu);
    if (c != KV_OK)
        s = c;
    free_db(db);
    return s;
}

/* kv_compact: a checkpoint now, as kv_close makes one (the B+tree updates pages in place and
 * has nothing else to reclaim): under the writer mutex, so no group is half applied. */
static kv_status bt_compact(kv_db *kdb)
{
    bt_db *db = (bt_db *)kdb;
    pthread_mutex_lock(&db->wmu);
    kv_status s = bt_checkpoint(db);
    pthread_mutex_unlock(&db->wmu);
    return s;
}

/* A random database id (never 0), written into the meta page and the log header at creation. */
static uint64_t new_db_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id || id == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
             ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&id;
        id |= 1;
    }
    return id;
}

/* Creates btree.db (meta page and an empty root leaf) for a database whose log (generation 1 of
 * database db_id) exists already. */
static kv_status create_data(kv_fs *fs, const char *dir, uint32_t ps, uint64_t db_id)
{
    uint8_t *buf = calloc(2, ps);
    if (!buf)
        return kv_error(KV_NOMEM, "btree: out of memory");
    bt_meta m = {.page_size = ps, .root = 1, .height = 1, .hwm = 2, .db_id = db_id, .log_gen = 1};
    bt_meta_encode(&m, buf, ps);
    bt_pg_init(buf + ps, ps, 1, BT_LEAF, 0);
    bt_pg_seal(buf + ps, ps, 1);
    kv_status s = kv_fs_replace_file(fs, dir, BT_DATA_FILE, buf, 2 * (size_t)ps);
    free(buf);
    return s;
}

/* Decides what the directory holds (db, wal: whether btree.db and btree.wal exist) and creates
 * what a new database needs. The log is created first: a btree.db without a btree.wal is then
 * always a lost log (KV_CORRUPTION), and a btree.wal without a btree.db is a creation that
 * stopped half-way only while the log is exactly as created (generation 1, no record);
 * otherwise btree.db was lost. A read-only open creates nothing: a database whose creation did
 * not finish holds no data, and is KV_NOT_FOUND. */
static kv_status prepare_files(bt_db *db, bool db_exists, bool wal_exists, uint32_t ps)
{
    kv_fs *fs = db->fs;
    if (db_exists && wal_exists)
        return KV_OK;
    if (db_exists)
        return kv_error(KV_CORRUPTION,
                        "%s: missing, but %s exists and its meta page (offset 72) names the log "
                        "generation that follows its checkpoint: every change since is lost",
                        db->log_path, BT_DATA_FILE);
    uint64_t id = 0;
    if (wal_exists) {
        kv_file *f = NULL;
        bt_loghdr h;
        uint64_t size = 0;
        kv_status s = kv_fs_open(fs, db->log_path, KV_FS_READ, &f);
        if (s == KV_OK)
            s = bt_wal_read_header(f, db->log_path, &h);
        if (s == KV_OK)
            s = kv_file_size(f, &size);
        kv_file_close(f);
        if (s == KV_OK && (h.gen != 1 || h.ckpt_lsn != 0 || size != BT_LOG_HDR))
            s = kv_error(KV_CORRUPTION,
                         "%s: missing, but %s (%" PRIu64 " bytes) names database %016" PRIx64
                         " at offset %" PRIu64 ", generation %" PRIu64 " after the checkpoint at "
                         "LSN %" PRIu64 ": the database had a data file",
                         db->data_path, BT_LOG_FILE, size, h.db_id, h.off + 24, h.gen, h.ckpt_lsn);
        if (s != KV_OK)
            return s;
        id = h.db_id;
        ps = h.ps;
    }
    if (db->read_only)
        return kv_error(KV_NOT_FOUND, "%s: no btree database (its creation did not finish)",
                        db->dir);
    kv_status s = KV_OK;
    if (!wal_exists) {
        id = new_db_id();
        s = bt_wal_create(fs, db->dir, ps, id);
    }
    return s == KV_OK ? create_data(fs, db->dir, ps, id) : s;
}

static kv_status parse_options(const kv_options *opts, uint64_t *ps, uint64_t *ckpt, bool *ps_set,
                               uint64_t *warm, uint64_t *cache, uint64_t *bgw, uint64_t *bgw_start)
{
    *warm = 2;
    *bgw = 1;
    *bgw_start = 90;
    *cache = opts->cache_size ? opts->cache_size : default_cache();
    *ps = BT_MIN_PS;
    *ckpt = DEFAULT_CHECKPOINT;
    *ps_set = kv_options_get(opts, "page_size") != NULL;
    kv_status s = kv_options_get_u64(opts, "page_size", BT_MIN_PS, BT_MAX_PS, ps);
    if (s == KV_OK && (*ps & (*ps - 1)))
        s = kv_error(KV_INVALID, "option page_size=%llu: not a power of two",
                     (unsigned long long)*ps);
    if (s == KV_OK)
        s = kv_options_get_u64(opts, "checkpoint_bytes", 1, (uint64_t)1 << 40, ckpt);
    if (s == KV_OK)
        s = kv_options_get_u64(opts, "warm", 0, 2, warm);
    if (s == KV_OK)
        s = kv_options_get_u64(opts, "bgwriter", 0, 2, bgw);
    if (s == KV_OK)
        s = kv_options_get_u64(opts, "bgwriter_start", 0, 100, bgw_start);
    if (s == KV_OK)
        s = kv_options_get_u64(opts, "cache_size", 1, UINT64_MAX, cache);
    return s;
}

/* The names of bt_bug's values after BT_BUG_NONE, in order. */
static const char *const bt_bug_names[] = {"alloc_outside_log", "truncate_before_sync",
                                           "meta_outside_log", "no_data_fsync", NULL};

static kv_status bt_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    uint64_t ps64, ckpt, warm, cache, bgw, bgw_start;
    bool ps_set;
    int bug = 0;
    kv_status s = parse_options(opts, &ps64, &ckpt, &ps_set, &warm, &cache, &bgw, &bgw_start);
    if (s == KV_OK)
        s = kv_options_get_bug(opts, "btree", bt_bug_names, &bug);
    if (s != KV_OK)
        return s;
    bt_db *db = calloc(1, sizeof *db);
    if (!db)
        return kv_error(KV_NOMEM, "btree: out of memory");
    pthread_rwlock_init(&db->tree, NULL);
    pthread_mutex_init(&db->wmu, NULL);
    pthread_mutex_init(&db->sync_mu, NULL);
    pthread_mutex_init(&db->flush_mu, NULL);
    pthread_mutex_init(&db->bgw_mu, NULL);
    pthread_cond_init(&db->bgw_cv, NULL);
    db->bgw_opt = (int)bgw;
    db->bgw_start = (unsigned)bgw_start;
    db->fs = fs;
    db->read_only = opts->read_only;
    db->dur = opts->durability;
    db->checkpoint_bytes = ckpt;
    db->bug = (bt_bug)bug;
    db->warm_opt = (int)warm;
    db->cache_bytes = cache;
    db->dir = strdup(dir);
    db->data_path = kv_path_join(dir, BT_DATA_FILE);
    db->log_path = kv_path_join(dir, BT_LOG_FILE);
    if (!db->dir || !db->data_path || !db->log_path || bt_vs_init(&db->vs) != KV_OK) {
        s = kv_error(KV_NOMEM, "btree: out of memory");
        goto fail;
    }
    /* A creation that crashed before its rename leaves a .tmp behind: it holds nothing. */
    const char *tmps[] = {BT_DATA_FILE ".tmp", BT_LOG_FILE ".tmp"};
    bool exists, db_exists, wal_exists;
    for (int i = 0; !db->read_only && i < 2; i++) {
        char *t = kv_path_join(dir, tmps[i]);
        if (t && kv_fs_exists(fs, t, &exists) == KV_OK && exists)
            kv_fs_unlink(fs, t);
        free(t);
    }
    if ((s = kv_fs_exists(fs, db->data_path, &db_exists)) != KV_OK ||
        (s = kv_fs_exists(fs, db->log_path, &wal_exists)) != KV_OK ||
        (s = prepare_files(db, db_exists, wal_exists, (uint32_t)ps64)) != KV_OK)
        goto fail;
    int mode = db->read_only ? KV_FS_READ : KV_FS_WRITE;
    if ((s = kv_fs_open(fs, db->data_path, mode, &db->data)) != KV_OK ||
        (s = kv_fs_open(fs, db->log_path, mode, &db->log)) != KV_OK)
        goto fail;
    /* The page size is the log header's (the meta page may be torn: recovery rebuilds it). */
    bt_loghdr h;
    if ((s = bt_wal_read_header(db->log, db->log_path, &h)) != KV_OK)
        goto fail;
    db->ps = h.ps;
    if (ps_set && db->ps != ps64) {
        s = kv_error(KV_INVALID, "%s: page_size=%llu given, but the database has %u-byte pages",
                     dir, (unsigned long long)ps64, db->ps);
        goto fail;
    }
    db->usable = db->ps - BT_HDR;
    bt_zext_init(&db->zext, db->ps);
    db->max_cell = db->usable / 4 - BT_SLOT; /* a cell and its slot fit a quarter page */
    db->fill_min = db->usable / 4;
    db->clcap = 2 * (db->ps / 8) + 8;
    for (int i = 0; i < 4; i++)
        db->sc[i] = malloc(db->ps);
    db->cl[0] = malloc(db->clcap * sizeof(bt_cell));
    db->cl[1] = malloc(db->clcap * sizeof(bt_cell));
    if (!db->sc[0] || !db->sc[1] || !db->sc[2] || !db->sc[3] || !db->cl[0] || !db->cl[1]) {
        s = kv_error(KV_NOMEM, "btree: out of memory");
        goto fail;
    }
    if ((s = bt_pool_init(&db->pool, db->ps, db->cache_bytes, db->data, db->data_path)) != KV_OK)
        goto fail;
    /* A quarter of the budget stays clean for the pages that reads and the next groups bring
     * in; a write-back batch is a sixteenth of the rest (at most 4096 pages, 16 MiB of 4 KiB
     * pages), so one log fdatasync covers many pages. */
    db->dirty_high = db->pool.budget - (db->pool.budget / 4 > 4 ? db->pool.budget / 4 : 4);
    size_t batch = db->dirty_high / 16;
    batch = batch < 1 ? 1 : batch > 4096 ? 4096 : batch;
    db->dirty_low = db->dirty_high - batch;
    db->pool.ref_from = db->dirty_low;
    /* btree.db's meta page as it is on disk; a failed check is for recovery to judge (a meta
     * page torn by a checkpoint is rebuilt from the log). */
    bt_meta disk;
    char disk_err[512] = "";
    s = bt_read_page_disk(db, 0, db->sc[0]);
    if (s == KV_CORRUPTION)
        s = kv_error(KV_CORRUPTION, "%s: offset 0: meta page missing or short", db->data_path);
    else if (s == KV_OK)
        s = bt_meta_decode(db->sc[0], db->ps, db->data_path, &disk);
    if (s != KV_OK && s != KV_CORRUPTION)
        goto fail;
    if (s != KV_OK)
        snprintf(disk_err, sizeof disk_err, "%s", kv_errmsg());
    if ((s = bt_wal_recover(db, disk_err[0] ? NULL : &disk, disk_err)) != KV_OK)
        goto fail;
    uint64_t size;
    if ((s = kv_file_size(db->data, &size)) != KV_OK)
        goto fail;
    /* Read-only, pages the log rebuilt are in the pool, not (yet) in the file. */
    if (!db->read_only && size < (uint64_t)db->meta.hwm * db->ps) {
        s = kv_error(KV_CORRUPTION, "%s: %llu bytes, but the meta page counts %u pages",
                     db->data_path, (unsigned long long)size, db->meta.hwm);
        goto fail;
    }
    db->durable_lsn = db->next_lsn - 1; /* recovery left every earlier group durable */
    atomic_store(&db->epoch, 1);
    if (!db->read_only && db->dur.kind == KV_DURABILITY_SYNC &&
        !(db->gc = kv_group_commit_new(group_write, db, 1024, (size_t)4 << 20))) {
        s = kv_error(KV_NOMEM, "btree: out of memory for the group-commit queue");
        goto fail;
    }
    if (db->gc) /* sync groups of every active committer, not alternating halves */
        kv_group_commit_set_delay(db->gc, true);
    if (!db->read_only && db->dur.kind == KV_DURABILITY_INTERVAL &&
        !(db->syncer = kv_syncer_start(db->dur.interval_ms, syncer_fn, db))) {
        s = KV_IO;
        goto fail;
    }
    if ((s = bt_bgw_start(db)) != KV_OK)
        goto fail;
    if (db->warm_opt)
        bt_warm_start(db, db->warm_opt == 2);
    *out = &db->base;
    return KV_OK;
fail:
    free_db(db);
    return s;
}

static kv_status bt_stats(kv_db *kdb, kv_stats *out)
{
    bt_db *db = (bt_db *)kdb;
    pthread_rwlock_rdlock(&db->tree);
    bt_meta m = db->meta;
    pthread_rwlock_unlock(&db->tree);
    out->live_keys = m.key_count;
    pthread_mutex_lock(&db->vs.mu);
    size_t nver = db->vs.count;
    pthread_mutex_unlock(&db->vs.mu);
    pthread_rwlock_rdlock(&db->pool.lock);
    size_t nframes = db->pool.nframes, ndirty = db->pool.ndirty; /* both change under it */
    pthread_rwlock_unlock(&db->pool.lock);
    out->memory_bytes = (uint64_t)(nframes + nver + 4) * db->ps;
    kv_stats_add(out, "splits", atomic_load(&db->splits));
    kv_stats_add(out, "merges", atomic_load(&db->merges));
    kv_stats_add(out, "borrows", atomic_load(&db->borrows));
    kv_stats_add(out, "checkpoints", atomic_load(&db->checkpoints));
    kv_stats_add(out, "log_groups", atomic_load(&db->groups));
    kv_stats_add(out, "log_records", atomic_load(&db->records));
    kv_stats_add(out, "recovery_log_bytes", db->replayed_bytes);
    kv_stats_add(out, "pages_allocated", atomic_load(&db->allocs));
    kv_stats_add(out, "pages_freed", atomic_load(&db->frees));
    kv_stats_add(out, "cache_hits", bt_pool_hits(&db->pool));
    kv_stats_add(out, "cache_misses", atomic_load(&db->pool.misses));
    kv_stats_add(out, "cache_evictions", atomic_load(&db->pool.evictions));
    kv_stats_add(out, "pages_written_back", atomic_load(&db->pool.writebacks));
    kv_stats_add(out, "writeback_batches", atomic_load(&db->pool.writeback_batches));
    kv_stats_add(out, "dirty_pages", ndirty);
    kv_stats_add(out, "bgwriter_pages", atomic_load(&db->bgw_pages));
    kv_stats_add(out, "bgwriter_batches", atomic_load(&db->bgw_batches));
    kv_stats_add(out, "bgwriter_log_syncs", atomic_load(&db->bgw_syncs));
    kv_stats_add(out, "cache_budget_pages", db->pool.budget);
    kv_stats_add(out, "pages_warmed", atomic_load(&db->pool.warmed));
    kv_stats_add(out, "height", m.height);
    kv_stats_add(out, "pages", m.hwm);
    kv_stats_add(out, "free_pages", m.free_count);
    kv_stats_add(out, "snapshot_versions", nver);
    if (db->gc) {
        unsigned long long g, i;
        kv_group_commit_counts(db->gc, &g, &i);
        kv_stats_add(out, "commit_groups", g);
        kv_stats_add(out, "commit_items", i);
    }
    return KV_OK;
}

const kv_engine kv_engine_btree = {
    .name = "btree",
    .description = "paged B+tree with a buffer pool and a physical write-ahead log of page "
                   "images (atomic multi-page changes, checkpoints); memory: the buffer pool's "
                   "budget (cache_size, default a quarter of RAM) whatever the share of dirty "
                   "pages (written back under the WAL rule), plus the pages of one atomic change "
                   "while it is built and the background writer's 2 MiB batch",
    .option_help = option_help,
    .limits = {BT_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 2,
    .read_only = true,
    .open = bt_open,
    .close = bt_close,
    .put = bt_put,
    .get = bt_get,
    .del = bt_del,
    .write = bt_write,
    .iter_new = bt_iter_new,
    .sync = bt_sync,
    .stats = bt_stats,
    .check = bt_check,
    .dump = bt_dump,
    .picture = bt_picture,
    .compact = bt_compact,
};
