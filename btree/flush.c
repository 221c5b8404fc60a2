/* flush.c: moving dirty pages from the buffer pool to the data file: the steal write-back that
 * keeps the pool within its budget between checkpoints, and the checkpoint that empties the log
 * (docs/btree.md sections 3 and 5).
 *
 * The WAL rule (ARIES; DDIA ch. 3 "Making B-trees reliable"): a page may overwrite its copy in
 * the data file only once the log is durable up to the last group that changed it (the frame's
 * LSN). In `sync` mode every acknowledged group already is; in `os`, `interval` and `none` the
 * write-back makes it so with one fdatasync of the log for a whole batch of pages. Torn-page
 * protection is unchanged: the log's current generation holds a full image of every page changed
 * since the checkpoint (wal.c), so a write-back torn by a power loss is rebuilt by recovery from
 * that image and the deltas after it. */
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

/* Pages written by one pwrite when their numbers are consecutive. */
#define RUN_PAGES 32

static int cmp_frame(const void *a, const void *b)
{
    uint32_t x = (*(bt_frame *const *)a)->pgno, y = (*(bt_frame *const *)b)->pgno;
    return x < y ? -1 : x > y;
}

kv_status bt_imaged_reserve(bt_db *db, uint32_t npages)
{
    size_t need = (size_t)npages / 64 + 1;
    if (need <= db->imaged_words)
        return KV_OK;
    size_t n = db->imaged_words ? db->imaged_words : 256;
    while (n < need)
        n *= 2;
    uint64_t *m = realloc(db->imaged, n * sizeof *m);
    if (!m)
        return kv_error(KV_NOMEM, "btree: out of memory for the page-image bitmap");
    memset(m + db->imaged_words, 0, (n - db->imaged_words) * sizeof *m);
    db->imaged = m;
    db->imaged_words = n;
    return KV_OK;
}

void bt_imaged_clear(bt_db *db)
{
    if (db->imaged)
        memset(db->imaged, 0, db->imaged_words * sizeof *db->imaged);
}

/* Writes the pinned frames list[0..n) (sorted by page number) to the data file, each sealed with
 * its CRC in a copy (readers may be reading the frame), runs of consecutive pages in one pwrite.
 * The caller brackets it with bt_pool_disk_write_begin/end. */
static kv_status write_frames(bt_db *db, bt_frame *const *list, size_t n)
{
    uint32_t ps = db->ps;
    uint8_t *buf = malloc((size_t)RUN_PAGES * ps);
    if (!buf)
        return kv_error(KV_NOMEM, "btree: out of memory for a page write-back");
    kv_status s = KV_OK;
    for (size_t i = 0; i < n && s == KV_OK;) {
        uint32_t first = list[i]->pgno;
        size_t k = 0;
        while (i + k < n && k < RUN_PAGES && list[i + k]->pgno == first + k) {
            memcpy(buf + k * ps, list[i + k]->data, ps);
            bt_pg_seal(buf + k * ps, ps, first + (uint32_t)k);
            k++;
        }
        s = kv_file_pwrite(db->data, buf, k * ps, (uint64_t)first * ps);
        i += k;
    }
    free(buf);
    return s;
}

/* Makes the log durable up to LSN lsn (flushing the `none` buffer first). */
static kv_status log_durable(bt_db *db, uint64_t lsn)
{
    if (lsn <= db->durable_lsn)
        return KV_OK;
    kv_status s = bt_wal_flush_pending(db);
    if (s == KV_OK)
        s = bt_wal_sync(db);
    if (s == KV_OK)
        db->durable_lsn = db->next_lsn - 1;
    return s;
}

kv_status bt_write_meta(bt_db *db, const bt_meta *m)
{
    uint8_t *p = malloc(db->ps);
    if (!p)
        return kv_error(KV_NOMEM, "btree: out of memory for the meta page");
    bt_meta_encode(m, p, db->ps);
    kv_status s = kv_file_pwrite(db->data, p, db->ps, 0);
    free(p);
    if (s == KV_OK)
        db->disk_meta = *m;
    return s;
}

/* Marks list[0..n) clean when ok, and unpins them. */
static void finish(bt_pool *p, bt_frame **list, size_t n, bool ok)
{
    if (ok) {
        pthread_rwlock_wrlock(&p->lock);
        for (size_t i = 0; i < n; i++)
            if (list[i]->dirty) {
                list[i]->dirty = false;
                p->ndirty--;
            }
        pthread_rwlock_unlock(&p->lock);
    }
    for (size_t i = 0; i < n; i++)
        pool_unpin(list[i]);
}

kv_status bt_raise_data_lsn(bt_db *db, uint64_t lsn)
{
    if (lsn <= db->disk_meta.data_lsn)
        return KV_OK;
    bt_meta m = db->disk_meta;
    m.data_lsn = lsn;
    return bt_write_meta(db, &m);
}

kv_status bt_writeback(bt_db *db)
{
    bt_pool *p = &db->pool;
    if (p->ndirty <= db->dirty_high) /* only writers (who hold wmu) change ndirty */
        return KV_OK;
    if (atomic_load(&db->poisoned))
        return kv_error(KV_POISONED, "%s: an earlier write or fsync failed; reopen to recover",
                        db->log_path);
    size_t want = p->ndirty - db->dirty_low, n = 0;
    bt_frame **list = malloc(want * sizeof *list);
    if (!list)
        return bt_poison(db, kv_error(KV_NOMEM, "btree: out of memory for a page write-back"));
    uint64_t max_lsn = 0;
    pthread_rwlock_rdlock(&p->lock);
    /* The write-back's CLOCK: a dirty frame whose reference bit is set (used since the hand last
     * passed) gets a second chance, so hot pages (the upper levels, a leaf being filled) stay
     * dirty in memory and absorb more changes per write. Two sweeps find every unpinned one. */
    for (size_t step = 0; n < want && step < 2 * p->nframes; step++) {
        bt_frame *f = p->frames[p->clean_hand];
        p->clean_hand = (p->clean_hand + 1) % p->nframes;
        if (!f->dirty || atomic_load_explicit(&f->pins, memory_order_acquire) != 0)
            continue;
        if (step < p->nframes && atomic_exchange_explicit(&f->ref, 0, memory_order_relaxed))
            continue;
        atomic_fetch_add(&f->pins, 1);
        list[n++] = f;
        if (f->lsn > max_lsn)
            max_lsn = f->lsn;
    }
    pthread_rwlock_unlock(&p->lock);
    qsort(list, n, sizeof *list, cmp_frame);
    kv_status s = log_durable(db, max_lsn); /* the WAL rule, once for the batch */
    pthread_mutex_lock(&db->flush_mu);      /* after a background batch's writes (bgw.c) */
    if (s == KV_OK) {
        bt_pool_disk_write_begin(p); /* pages read meanwhile with no lock are not trusted */
        s = write_frames(db, list, n);
        bt_pool_disk_write_end(p);
    }
    if (s == KV_OK)
        s = bt_raise_data_lsn(db, max_lsn);
    pthread_mutex_unlock(&db->flush_mu);
    finish(p, list, n, s == KV_OK);
    free(list);
    if (s != KV_OK)
        return bt_poison(db, s);
    atomic_fetch_add_explicit(&p->writebacks, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->writeback_batches, 1, memory_order_relaxed);
    return KV_OK;
}

static kv_status checkpoint_locked(bt_db *db);

kv_status bt_checkpoint(bt_db *db)
{
    if (atomic_load(&db->poisoned))
        return kv_error(KV_POISONED, "%s: an earlier write or fsync failed; reopen to recover",
                        db->log_path);
    if (!db->meta_dirty && db->pool.ndirty == 0 && db->log_end == BT_LOG_HDR)
        return KV_OK; /* nothing since the last checkpoint */
    /* A background batch (bgw.c) finishes its writes first: none of its copies, older than
     * the pages written here, may land after them. */
    pthread_mutex_lock(&db->flush_mu);
    kv_status s = checkpoint_locked(db);
    pthread_mutex_unlock(&db->flush_mu);
    return s;
}

/* The checkpoint, flush_mu held. */
static kv_status checkpoint_locked(bt_db *db)
{
    kv_status s = bt_wal_flush_pending(db);
    if (s == KV_OK)
        s = bt_wal_sync(db); /* every image is durable before any data page moves */
    if (s != KV_OK)
        return bt_poison(db, s);
    db->durable_lsn = db->next_lsn - 1;
    bt_pool *p = &db->pool;
    pthread_rwlock_rdlock(&p->lock);
    size_t n = 0, cap = p->ndirty ? p->ndirty : 1;
    bt_frame **list = malloc(cap * sizeof *list);
    for (size_t i = 0; list && i < p->nframes; i++) {
        bt_frame *f = p->frames[i];
        if (f->dirty && n < cap) {
            atomic_fetch_add(&f->pins, 1);
            list[n++] = f;
        }
    }
    pthread_rwlock_unlock(&p->lock);
    if (!list)
        return bt_poison(db, kv_error(KV_NOMEM, "btree: out of memory for a checkpoint"));
    qsort(list, n, sizeof *list, cmp_frame);
    /* The meta page names the generation the log reset will start and the checkpoint's LSN, so
     * that an older copy of either file is recognised at open (wal.c, check_pair). */
    uint64_t ckpt = db->next_lsn - 1;
    pthread_rwlock_rdlock(&db->tree);
    bt_meta meta = db->meta;
    pthread_rwlock_unlock(&db->tree);
    meta.log_gen = db->log_gen + 1;
    meta.checkpoint_lsn = meta.data_lsn = ckpt;
    bt_pool_disk_write_begin(p); /* pages read meanwhile with no lock are not trusted */
    s = write_frames(db, list, n);
    if (s == KV_OK)
        s = bt_write_meta(db, &meta);
    bt_pool_disk_write_end(p);
    if (s == KV_OK && db->bug == BT_BUG_TRUNCATE_BEFORE_SYNC) {
        /* BUG (docs/lab.md): the log is reset before the data file is fdatasynced. The correct
         * order (below) makes btree.db durable first: until then the log's images are the only
         * durable copy of the checkpointed pages, and a power loss in between loses both. */
        s = bt_wal_reset(db, ckpt);
        if (s == KV_OK)
            s = kv_file_fdatasync(db->data);
    } else {
        if (s == KV_OK && db->bug == BT_BUG_NO_DATA_FSYNC) {
            /* BUG (docs/lab.md): no fdatasync of btree.db at the checkpoint. The correct code
             * fdatasyncs it before the log reset: the pages written in place sit in the page
             * cache only, and once the log is reset a power loss loses them for good. */
        } else if (s == KV_OK)
            s = kv_file_fdatasync(db->data);
        if (s == KV_OK)
            s = bt_wal_reset(db, ckpt); /* only now: the data file holds every logged image */
    }
    if (s == KV_OK) {
        bt_imaged_clear(db); /* the new generation holds no image yet */
        pthread_rwlock_wrlock(&db->tree);
        db->meta.log_gen = meta.log_gen;
        db->meta.checkpoint_lsn = db->meta.data_lsn = ckpt;
        pthread_rwlock_unlock(&db->tree);
    }
    finish(p, list, n, s == KV_OK);
    free(list);
    if (s != KV_OK)
        return bt_poison(db, s);
    db->meta_dirty = false;
    atomic_fetch_add_explicit(&db->checkpoints, 1, memory_order_relaxed);
    return KV_OK;
}
