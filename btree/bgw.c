/* bgw.c: the background writer (docs/btree.md section 5.1): the checkpoint's work done ahead of
 * it, on another core, while the writer goes on.
 *
 * A checkpoint fdatasyncs the log, writes every dirty page and fdatasyncs the data file, all
 * with the writer mutex held. The background writer takes two parts of that off the writer's
 * path, as PostgreSQL's checkpointer and bgwriter and InnoDB's page cleaner do:
 *
 * - The log is made durable as it grows (one fdatasync every checkpoint_bytes / 256 bytes of
 *   log), so the checkpoint's own log fdatasync only covers the last stretch.
 * - Over the last part of the log's growth towards checkpoint_bytes (from bgwriter_start percent
 *   of it), dirty pages are written back, paced by the log: the share of the pool's frames swept
 *   follows the share of that last stretch the log has covered (PostgreSQL's
 *   checkpoint_completion_target spreads a checkpoint's writes the same way). A page written
 *   back and not changed again before the checkpoint is clean when it comes.
 *
 * A batch is a copy-on-write-back: with the writer mutex held (no group is being built, every
 * page is as its last group left it, and the `none` buffer is flushed) it picks up to a batch of
 * dirty frames, sorts them by page number and copies their pages, together with their LSNs;
 * then, with only flush_mu held, it fdatasyncs the log (the WAL rule of ARIES: the log is durable
 * up to every copied page's LSN before the page moves), writes the copies (consecutive pages in
 * one pwrite) and the meta page's data_lsn; then, with the writer mutex again, marks clean each
 * frame whose page is still the one copied (same page number, same LSN: no group changed it
 * meanwhile). A page changed after its copy stays dirty and is written again later; the stale
 * copy on disk is harmless, since the log's current generation holds a full image of every page
 * changed since the checkpoint (wal.c), logged before any delta of it, and recovery starts from
 * that image. flush_mu orders the batch's writes with the writer's own write-back and the
 * checkpoint (flush.c), so an older copy never lands on top of a newer write.
 *
 * Lock order: wmu, then flush_mu, then the pool's lock. A batch holds flush_mu from its copy to
 * its last write, and releases it before it takes wmu to mark pages clean. */
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

/* Bytes of pages copied by one batch (at least 16 pages): the memory the background writer
 * holds beside the pool. */
#define BATCH_BYTES ((size_t)2 << 20)

typedef struct bgw_ent {
    bt_frame *f;
    uint32_t pgno;
    uint64_t lsn;
} bgw_ent;

static int cmp_ent(const void *a, const void *b)
{
    uint32_t x = ((const bgw_ent *)a)->pgno, y = ((const bgw_ent *)b)->pgno;
    return x < y ? -1 : x > y;
}

/* The log's fdatasync as the interval syncer makes it: what it covers is what was written
 * before it began, of the generation current then. */
static kv_status sync_log(bt_db *db)
{
    pthread_mutex_lock(&db->sync_mu);
    uint64_t gen = db->log_gen, len = atomic_load(&db->written);
    bool need = len > atomic_load(&db->synced);
    pthread_mutex_unlock(&db->sync_mu);
    if (!need)
        return KV_OK;
    kv_status s = kv_file_fdatasync(db->log);
    if (s == KV_OK) {
        bt_wal_synced(db, gen, len);
        atomic_fetch_add_explicit(&db->bgw_syncs, 1, memory_order_relaxed);
    }
    return s;
}

/* Writes the sealed copies (pages ents[i].pgno at buf + i * ps, sorted) to the data file,
 * consecutive pages in one pwrite. */
static kv_status write_copies(bt_db *db, const bgw_ent *ents, size_t n, const uint8_t *buf)
{
    uint32_t ps = db->ps;
    kv_status s = KV_OK;
    for (size_t i = 0; i < n && s == KV_OK;) {
        size_t k = 1;
        while (i + k < n && ents[i + k].pgno == ents[i].pgno + k)
            k++;
        s = kv_file_pwrite(db->data, buf + i * ps, k * ps, (uint64_t)ents[i].pgno * ps);
        i += k;
    }
    return s;
}

/* One batch (see the top of the file). held: the caller holds the writer mutex (inline mode),
 * else it is taken for the copy and for marking pages clean. Sets *more when the sweep has
 * frames left to visit before it reaches the log's pace. Errors: KV_IO, KV_NOSPACE, KV_NOMEM
 * (the caller poisons the handle). */
static kv_status batch(bt_db *db, bool held, bool *more)
{
    bt_pool *p = &db->pool;
    *more = false;
    if (!held)
        pthread_mutex_lock(&db->wmu);
    uint64_t start = BT_LOG_HDR + db->checkpoint_bytes / 100 * db->bgw_start +
                     db->checkpoint_bytes % 100 * db->bgw_start / 100;
    uint64_t end = BT_LOG_HDR + db->checkpoint_bytes;
    if (db->bgw_gen != db->log_gen) { /* a checkpoint reset the log: a new sweep */
        db->bgw_gen = db->log_gen;
        db->bgw_swept = 0;
    }
    if (atomic_load(&db->poisoned) || db->log_end < start || start >= end) {
        if (!held)
            pthread_mutex_unlock(&db->wmu);
        return KV_OK;
    }
    pthread_rwlock_rdlock(&p->lock);
    size_t nframes = p->nframes;
    uint64_t done = db->log_end - start, span = end - start;
    size_t target =
        done >= span ? nframes : (size_t)((double)nframes * (double)done / (double)span);
    size_t cap = db->bgw_cap, n = 0;
    bgw_ent *ents = db->bgw_ents;
    while (n < cap && db->bgw_swept < target && nframes) {
        bt_frame *f = p->frames[db->bgw_hand % nframes];
        db->bgw_hand = (db->bgw_hand + 1) % nframes;
        db->bgw_swept++;
        /* No pin: a dirty frame is not evicted, and only a holder of the writer mutex makes one
         * clean, so the frame holds this page until the copy below. Later it may be written by
         * the writer, evicted and reused: marking it clean checks it (no pin keeps the pool's
         * frames evictable, within its budget). */
        if (f->dirty)
            ents[n++] = (bgw_ent){f, f->pgno, f->lsn};
    }
    *more = db->bgw_swept < target;
    pthread_rwlock_unlock(&p->lock);
    if (n == 0) {
        if (!held)
            pthread_mutex_unlock(&db->wmu);
        return KV_OK;
    }
    pthread_mutex_lock(&db->flush_mu);
    /* The `none` buffer goes to the file, so that the fdatasync below covers every group up to
     * the newest copied page's LSN. */
    kv_status s = bt_wal_flush_pending(db);
    qsort(ents, n, sizeof *ents, cmp_ent);
    uint64_t max_lsn = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(db->bgw_buf + i * db->ps, ents[i].f->data, db->ps);
        if (ents[i].lsn > max_lsn)
            max_lsn = ents[i].lsn;
    }
    if (!held)
        pthread_mutex_unlock(&db->wmu);

    for (size_t i = 0; i < n; i++)
        bt_pg_seal(db->bgw_buf + i * db->ps, db->ps, ents[i].pgno);
    if (s == KV_OK)
        s = sync_log(db); /* the WAL rule, once for the batch */
    if (s == KV_OK) {
        bt_pool_disk_write_begin(p); /* pages read meanwhile with no lock are not trusted */
        s = write_copies(db, ents, n, db->bgw_buf);
        bt_pool_disk_write_end(p);
    }
    if (s == KV_OK)
        s = bt_raise_data_lsn(db, max_lsn);
    pthread_mutex_unlock(&db->flush_mu);

    if (!held)
        pthread_mutex_lock(&db->wmu);
    size_t cleaned = 0;
    pthread_rwlock_wrlock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        bt_frame *f = ents[i].f;
        /* A frame reused for the same page was read clean and gets a new LSN when changed. */
        if (s == KV_OK && f->dirty && f->pgno == ents[i].pgno && f->lsn == ents[i].lsn) {
            f->dirty = false;
            p->ndirty--;
            cleaned++;
        }
    }
    pthread_rwlock_unlock(&p->lock);
    if (!held)
        pthread_mutex_unlock(&db->wmu);
    if (s != KV_OK)
        return s;
    atomic_fetch_add_explicit(&db->bgw_pages, cleaned, memory_order_relaxed);
    atomic_fetch_add_explicit(&db->bgw_batches, 1, memory_order_relaxed);
    return KV_OK;
}

/* A round of work: the log's fdatasync, then batches up to the log's pace. */
static void run(bt_db *db, bool held)
{
    if (atomic_load(&db->poisoned))
        return;
    kv_status s = sync_log(db);
    bool more = true;
    while (s == KV_OK && more && !atomic_load(&db->bgw_stop))
        s = batch(db, held, &more);
    if (s != KV_OK)
        bt_poison(db, s);
}

static void *thread_main(void *arg)
{
    bt_db *db = arg;
    pthread_mutex_lock(&db->bgw_mu);
    for (;;) {
        while (!atomic_load(&db->bgw_stop) && db->bgw_req == db->bgw_seen)
            pthread_cond_wait(&db->bgw_cv, &db->bgw_mu);
        if (atomic_load(&db->bgw_stop))
            break;
        db->bgw_seen = db->bgw_req;
        pthread_mutex_unlock(&db->bgw_mu);
        run(db, false);
        pthread_mutex_lock(&db->bgw_mu);
    }
    pthread_mutex_unlock(&db->bgw_mu);
    return NULL;
}

kv_status bt_bgw_start(bt_db *db)
{
    if (db->bgw_opt == 0 || db->read_only)
        return KV_OK;
    size_t cap = BATCH_BYTES / db->ps;
    db->bgw_cap = cap < 16 ? 16 : cap;
    db->bgw_buf = malloc(db->bgw_cap * db->ps);
    db->bgw_ents = malloc(db->bgw_cap * sizeof *db->bgw_ents);
    if (!db->bgw_buf || !db->bgw_ents)
        return kv_error(KV_NOMEM, "btree: out of memory for the background writer");
    db->bgw_step = db->checkpoint_bytes / 256 ? db->checkpoint_bytes / 256 : 1;
    db->bgw_gen = db->log_gen;
    if (db->bgw_opt == 1) {
        if (pthread_create(&db->bgw, NULL, thread_main, db) != 0)
            return kv_error(KV_NOMEM, "btree: cannot start the background writer thread");
        db->bgw_running = true;
    }
    return KV_OK;
}

void bt_bgw_poke(bt_db *db)
{
    if (!db->bgw_buf)
        return;
    if (db->bgw_poke_gen != db->log_gen) { /* the log was reset */
        db->bgw_poke_gen = db->log_gen;
        db->bgw_poke_at = BT_LOG_HDR;
    }
    if (db->log_end < db->bgw_poke_at + db->bgw_step)
        return;
    db->bgw_poke_at = db->log_end;
    if (db->bgw_opt == 2) {
        run(db, true);
        return;
    }
    pthread_mutex_lock(&db->bgw_mu);
    db->bgw_req++;
    pthread_cond_signal(&db->bgw_cv);
    pthread_mutex_unlock(&db->bgw_mu);
}

void bt_bgw_stop(bt_db *db)
{
    if (db->bgw_running) {
        pthread_mutex_lock(&db->bgw_mu);
        atomic_store(&db->bgw_stop, true);
        pthread_cond_signal(&db->bgw_cv);
        pthread_mutex_unlock(&db->bgw_mu);
        pthread_join(db->bgw, NULL);
        db->bgw_running = false;
    }
    free(db->bgw_buf);
    free(db->bgw_ents);
    db->bgw_buf = NULL;
    db->bgw_ents = NULL;
}
