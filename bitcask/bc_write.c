/* bc_write.c: the write path. Every put, delete and batch becomes one record appended to the
 * active data file (a batch: one record carrying all its operations under one crc), framed by
 * common/reclog, then the keydir is updated, all under the writer mutex so the keydir follows
 * log order. Durability per docs/design.md section 3: none = a user-space buffer flushed at
 * buffer_size, on sync and close; os = write(2) per commit; interval:MS = write(2) plus the
 * background syncer (common/syncer.h); sync = group commit (common/group_commit.h): one write
 * and one fdatasync per group. The first write after each successful fdatasync of the active
 * file starts with a sync mark naming the durable length (reclog.h), so that damage below it is
 * told from a torn tail. A rotation seals the old file in MANIFEST (bc_manifest.c). */
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "lock_assert.h"

typedef struct bc_item {
    const kv_batch *batch; /* NULL: a single operation */
    bool tomb;
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} bc_item;

static size_t item_ops(const bc_item *it)
{
    return it->batch ? kv_batch_count(it->batch) : 1;
}

static uint64_t item_size(const bc_item *it)
{
    if (!it->batch)
        return bc_rec_size(it->klen, it->vlen);
    uint64_t n = BC_REC_OVERHEAD;
    size_t c = kv_batch_count(it->batch);
    for (size_t i = 0; i < c; i++) {
        kv_batch_op op = kv_batch_get(it->batch, i);
        n += bc_rec_size(op.klen, op.type == KV_OP_PUT ? op.vlen : 0);
    }
    return n;
}

static void note_op(bc_db *db, const uint8_t *key, size_t klen, uint64_t off, uint32_t size,
                    uint64_t seq, bool tomb)
{
    bc_applied *a = &db->ap[db->nap++];
    a->key = key;
    a->klen = klen;
    a->tomb = tomb;
    /* The keydir slot is fetched now, so its cache miss overlaps the crc and the write(2)
     * instead of following them. The table's shape changes only under wmu (held). */
    a->hash = bc_hash(key, klen);
    bc_kd_prefetch(&db->kd, a->hash);
    a->loc =
        (bc_loc){.offset = off, .seq = seq, .file_id = (uint32_t)db->active->id, .rec_size = size};
    if (!db->hint_broken && !bc_hint_add(&db->hint, seq, off, size, tomb, key, klen))
        db->hint_broken = true;
    db->hint_count++;
}

/* Encodes one item at the end of the write buffer (wmu held). */
static kv_status append_item(bc_db *db, const bc_item *it)
{
    KV_ASSERT_HELD(&db->wmu);
    uint64_t need = item_size(it);
    if (need > KV_RECLOG_FRAME + (uint64_t)KV_RECLOG_MAX_PAYLOAD)
        return kv_error(KV_INVALID, "bitcask: a batch of %llu bytes is larger than 4 GiB",
                        (unsigned long long)need);
    uint64_t end = db->wbuf_off + db->wbuf.len;
    if (end > BC_DATA_HDR && end + need > db->file_size) {
        kv_status s = bc_rotate_locked(db);
        if (s != KV_OK)
            return s;
        end = db->wbuf_off + db->wbuf.len;
    }
    if (db->mark_due) { /* the first write since an fdatasync: say what it made durable */
        if (!kv_buf_reserve(&db->wbuf, KV_RECLOG_MARK_SIZE))
            return kv_error(KV_NOMEM, "bitcask: out of memory for a sync mark");
        db->wbuf.len += kv_reclog_mark(db->wbuf.data + db->wbuf.len, db->active->seed, db->durable);
        db->mark_due = false;
        end += KV_RECLOG_MARK_SIZE;
    }
    size_t ops = item_ops(it);
    if (db->nap + ops > db->capap) {
        size_t cap = db->capap ? db->capap : 16;
        while (cap < db->nap + ops)
            cap *= 2;
        bc_applied *n = realloc(db->ap, cap * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "bitcask: out of memory");
        db->ap = n;
        db->capap = cap;
    }
    if (!kv_buf_reserve(&db->wbuf, (size_t)need))
        return kv_error(KV_NOMEM, "bitcask: out of memory for a record of %llu bytes",
                        (unsigned long long)need);
    uint64_t seq = db->next_seq++;
    uint8_t *p = db->wbuf.data + db->wbuf.len;
    uint32_t seed = db->active->seed;
    if (!it->batch) {
        size_t n = bc_rec_encode(p, seed, it->tomb ? BC_T_TOMB : BC_T_PUT, seq, it->key, it->klen,
                                 it->val, it->vlen);
        note_op(db, it->key, it->klen, end, (uint32_t)n, seq, it->tomb);
    } else {
        size_t off = BC_REC_OVERHEAD;
        for (size_t i = 0; i < ops; i++) {
            kv_batch_op op = kv_batch_get(it->batch, i);
            bool tomb = op.type == KV_OP_DELETE;
            size_t n = bc_rec_encode(p + off, seed, tomb ? BC_T_BATCH_TOMB : BC_T_BATCH_PUT, seq,
                                     op.key, op.klen, op.value, tomb ? 0 : op.vlen);
            note_op(db, op.key, op.klen, end + off, (uint32_t)n, seq, tomb);
            off += n;
        }
        bc_rec_finish(p, seed, BC_T_BATCH, seq, 0, (uint32_t)(off - BC_REC_OVERHEAD));
    }
    db->wbuf.len += (size_t)need;
    return KV_OK;
}

kv_status bc_flush_locked(bc_db *db)
{
    KV_ASSERT_HELD(&db->wmu);
    if (!db->wbuf.len)
        return KV_OK;
    kv_status s = kv_file_pwrite(db->active->f, db->wbuf.data, db->wbuf.len, db->wbuf_off);
    if (s != KV_OK)
        return bc_poison(db, s);
    db->wbuf_off += db->wbuf.len;
    db->wbuf.len = 0;
    atomic_store(&db->active->size, db->wbuf_off);
    return KV_OK;
}

/* The thread that prepares the keydir's next table (bc_kd_table_new) and hands it over. */
static void *prefault_main(void *arg)
{
    bc_db *db = arg;
    size_t cap = db->pf_cap; /* written before the thread was created */
    bc_slot *t = bc_kd_table_new(cap);
    if (t) { /* out of memory: the growth allocates its table itself, as without a spare */
        pthread_rwlock_wrlock(&db->lock);
        bc_kd_give_spare(&db->kd, t, cap);
        pthread_rwlock_unlock(&db->lock);
    }
    atomic_store(&db->pf_running, false);
    return NULL;
}

/* Starts preparing the keydir's next table when it is wanted (db->lock held exclusively): the
 * zeroing and page faults of a 2x table then happen on another core, not inside puts. */
static void maybe_prefault(bc_db *db)
{
    KV_ASSERT_RW_HELD(&db->lock);
    size_t cap = bc_kd_spare_wanted(&db->kd);
    if (!cap || cap == db->pf_cap || atomic_load(&db->pf_running))
        return;
    if (db->pf_started) /* the previous one has handed over: only its exit is left */
        pthread_join(db->pf, NULL);
    db->pf_started = false;
    db->pf_cap = cap;
    atomic_store(&db->pf_running, true);
    if (pthread_create(&db->pf, NULL, prefault_main, db) != 0)
        atomic_store(&db->pf_running, false); /* the growth allocates its table itself */
    else
        db->pf_started = true;
}

void bc_prefault_join(bc_db *db)
{
    if (db->pf_started)
        pthread_join(db->pf, NULL);
    db->pf_started = false;
}

/* Applies the noted operations to the keydir and the files' live byte counts. */
static kv_status apply_keydir(bc_db *db)
{
    kv_status s = KV_OK;
    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < db->nap; i++) {
        bc_applied *a = &db->ap[i];
        uint32_t h = a->hash;
        bc_loc prev;
        bool had = false, pt = false;
        if (a->tomb) {
            had = bc_kd_del(&db->kd, a->key, a->klen, h, &prev);
            if (had)
                bc_ix_note(&db->ix, a->key, a->klen, &prev, true, db->kd.count);
        } else if (!bc_kd_put(&db->kd, a->key, a->klen, h, &a->loc, false, &had, &prev, &pt)) {
            s = bc_poison(db, kv_error(KV_NOMEM, "bitcask: out of memory growing the keydir"));
            break;
        } else {
            bc_ix_note(&db->ix, a->key, a->klen, &a->loc, false, db->kd.count);
            atomic_fetch_add_explicit(&db->active->live_bytes, a->loc.rec_size,
                                      memory_order_relaxed);
        }
        if (had) {
            bc_file *pf = bc_files_peek(db, prev.file_id);
            if (pf)
                atomic_fetch_sub_explicit(&pf->live_bytes, prev.rec_size, memory_order_relaxed);
        }
    }
    maybe_prefault(db);
    pthread_rwlock_unlock(&db->lock);
    db->nap = 0;
    return s;
}

/* An fdatasync of f covered its first off bytes (wmu held): when f is still the active file, the
 * next write starts with a sync mark saying so. */
static void note_durable_locked(bc_db *db, const bc_file *f, uint64_t off)
{
    KV_ASSERT_HELD(&db->wmu);
    if (f == db->active && off > db->durable) {
        db->durable = off;
        db->mark_due = true;
    }
}

/* Appends items as one group, writes, fdatasyncs when sync, updates the keydir (wmu held). */
static kv_status commit_locked(bc_db *db, bc_item *const *items, size_t n, bool sync)
{
    KV_ASSERT_HELD(&db->wmu);
    if (atomic_load(&db->poisoned))
        return kv_error(KV_POISONED, "bitcask: an earlier write or fsync failed; reopen");
    db->nap = 0;
    kv_status s = KV_OK;
    for (size_t i = 0; i < n; i++) {
        if ((s = append_item(db, items[i])) == KV_OK)
            continue;
        db->nap = 0;
        /* The first item failed before changing anything: refuse just it. Otherwise earlier
         * items of the group sit in the buffer unacknowledged: stop writing. */
        if (i == 0 && !atomic_load(&db->poisoned))
            return s;
        return bc_poison(db, s);
    }
    if (db->dur.kind != KV_DURABILITY_NONE || db->wbuf.len >= db->buffer_size)
        s = bc_flush_locked(db);
    if (s == KV_OK && sync) {
        s = kv_file_fdatasync(db->active->f);
        if (s != KV_OK)
            bc_poison(db, s);
        else
            note_durable_locked(db, db->active, db->wbuf_off);
    }
    if (s != KV_OK) {
        db->nap = 0;
        return s;
    }
    return apply_keydir(db);
}

kv_status bc_group_fn(void *ctx, void *const *items, size_t n, bool sync)
{
    bc_db *db = ctx;
    pthread_mutex_lock(&db->wmu);
    kv_status s = commit_locked(db, (bc_item *const *)items, n, sync);
    pthread_mutex_unlock(&db->wmu);
    return s;
}

static void run_jobs_if_manual(bc_db *db)
{
    if (db->merge_auto)
        return;
    /* A merge in progress runs the queued jobs when it ends: never wait for it here. */
    if (pthread_mutex_trylock(&db->merge_mu) != 0)
        return;
    bc_run_hint_jobs(db);
    pthread_mutex_unlock(&db->merge_mu);
}

static kv_status commit(bc_db *db, bc_item *it)
{
    kv_status s;
    if (db->gc) {
        /* No lock after the submit: the next group's leader holds wmu through its fdatasync,
         * and a member of the last group waiting for it could not queue for the group after
         * (groups shrank to about one commit per fdatasync at 8 threads). */
        s = kv_group_commit_submit(db->gc, it, (size_t)item_size(it), true);
    } else {
        pthread_mutex_lock(&db->wmu);
        s = commit_locked(db, &it, 1, false);
        pthread_mutex_unlock(&db->wmu);
    }
    if (atomic_load_explicit(&db->rotated, memory_order_relaxed) &&
        atomic_exchange(&db->rotated, false))
        run_jobs_if_manual(db);
    return s;
}

kv_status bc_put(kv_db *kdb, const void *key, size_t klen, const void *value, size_t vlen)
{
    bc_item it = {.key = key, .klen = klen, .val = value, .vlen = vlen};
    return commit((bc_db *)kdb, &it);
}

kv_status bc_del(kv_db *kdb, const void *key, size_t klen)
{
    bc_item it = {.tomb = true, .key = key, .klen = klen};
    return commit((bc_db *)kdb, &it);
}

kv_status bc_write(kv_db *kdb, const kv_batch *b)
{
    bc_item it = {.batch = b};
    return commit((bc_db *)kdb, &it);
}

/* One fdatasync of the active file, outside wmu (readers and writers go on meanwhile): flushes
 * first, and afterwards notes what it made durable. */
static kv_status sync_once(bc_db *db)
{
    pthread_mutex_lock(&db->wmu);
    if (atomic_load(&db->poisoned)) {
        pthread_mutex_unlock(&db->wmu);
        return kv_error(KV_POISONED, "bitcask: an earlier write or fsync failed; reopen");
    }
    kv_status s = bc_flush_locked(db);
    bc_file *f = db->active;
    uint64_t off = db->wbuf_off;
    bc_file_ref(f);
    pthread_mutex_unlock(&db->wmu);
    if (s == KV_OK && db->bug == BC_BUG_NO_FSYNC) {
        /* BUG (docs/lab.md): kv_sync returns without an fdatasync. The correct code fdatasyncs
         * the active file: a write(2) only reaches the page cache, and a power loss takes back
         * the commits that kv_sync promised were durable. */
    } else if (s == KV_OK) {
        s = kv_file_fdatasync(f->f);
        if (s != KV_OK)
            bc_poison(db, s);
    }
    if (s == KV_OK) {
        pthread_mutex_lock(&db->wmu);
        note_durable_locked(db, f, off);
        pthread_mutex_unlock(&db->wmu);
    }
    bc_file_unref(f);
    return s;
}

kv_status bc_sync_active(bc_db *db, bool mark)
{
    kv_status s = sync_once(db);
    if (s != KV_OK || !mark)
        return s;
    /* a mark now (unless a write since the sync already carries it), made durable too */
    pthread_mutex_lock(&db->wmu);
    if (db->mark_due) {
        if (kv_buf_reserve(&db->wbuf, KV_RECLOG_MARK_SIZE)) {
            db->wbuf.len +=
                kv_reclog_mark(db->wbuf.data + db->wbuf.len, db->active->seed, db->durable);
            db->mark_due = false;
        } else {
            s = kv_error(KV_NOMEM, "bitcask: out of memory for a sync mark");
        }
    }
    pthread_mutex_unlock(&db->wmu);
    return s == KV_OK ? sync_once(db) : s;
}

kv_status bc_sync(kv_db *kdb)
{
    return bc_sync_active((bc_db *)kdb, false);
}

kv_status bc_syncer_fn(void *ctx)
{
    bc_db *db = ctx;
    if (atomic_load(&db->poisoned))
        return KV_OK; /* nothing more will be written */
    kv_status s = sync_once(db);
    return s == KV_POISONED ? KV_OK : s;
}

static void queue_job(bc_db *db, bc_hint_job *j)
{
    pthread_mutex_lock(&db->bg_mu);
    if (db->jobs_tail)
        db->jobs_tail->next = j;
    else
        db->jobs = j;
    db->jobs_tail = j;
    pthread_cond_signal(&db->bg_cv);
    pthread_mutex_unlock(&db->bg_mu);
}

/* Rotation (wmu held). The order makes every state a crash can leave one that recovery reads
 * right (docs/bitcask.md section 4.4): the old file durable, then the new file and its name
 * durable, then MANIFEST naming the old file sealed at its length and the new one active; only
 * then does a record go into the new file. */
kv_status bc_rotate_locked(bc_db *db)
{
    KV_ASSERT_HELD(&db->wmu);
    kv_status s = bc_flush_locked(db);
    if (s != KV_OK)
        return s;
    /* The old file must be durable before MANIFEST seals it (else a power loss could leave it
     * shorter than sealed: an unopenable database) and before any record lands in the new one
     * (else a power loss could keep the newer file and lose the older one's tail). */
    if ((s = kv_file_fdatasync(db->active->f)) != KV_OK)
        return bc_poison(db, s);
    bc_file *old = db->active;
    bc_file *nf = NULL;
    uint64_t id = atomic_fetch_add(&db->next_id, 1);
    if ((s = bc_file_create(db, id, BC_KIND_WRITE, "data", &nf)) != KV_OK)
        return bc_poison(db, s);
    if ((s = kv_fs_fsync_dir(db->fs, db->dir)) != KV_OK) {
        bc_file_unref(nf);
        return bc_poison(db, s);
    }
    pthread_mutex_lock(&db->man_mu);
    bool ok = bc_manifest_set(&db->man, &(bc_man_file){.id = old->id,
                                                       .salt = old->salt,
                                                       .length = db->wbuf_off,
                                                       .kind = old->kind,
                                                       .state = BC_MAN_SEALED}) &&
              bc_manifest_set(&db->man, &(bc_man_file){.id = nf->id,
                                                       .salt = nf->salt,
                                                       .length = BC_DATA_HDR,
                                                       .kind = BC_KIND_WRITE,
                                                       .state = BC_MAN_ACTIVE});
    s = ok ? bc_man_write_locked(db, db->next_seq - 1)
           : kv_error(KV_NOMEM, "bitcask: out of memory");
    pthread_mutex_unlock(&db->man_mu);
    if (s != KV_OK) {
        bc_file_unref(nf);
        return bc_poison(db, s);
    }
    atomic_store(&old->sealed, true);
    if (!db->hint_broken) {
        bc_hint_job *j = calloc(1, sizeof *j);
        if (j) {
            bc_file_ref(old);
            j->file = old;
            j->ents = db->hint;
            j->count = db->hint_count;
            j->data_size = db->wbuf_off;
            memset(&db->hint, 0, sizeof db->hint);
            queue_job(db, j);
            atomic_store(&db->rotated, true);
        }
    }
    db->hint.len = 0;
    db->hint_count = 0;
    db->hint_broken = false;
    pthread_rwlock_wrlock(&db->lock);
    ok = bc_files_add(db, nf);
    if (ok)
        db->active = nf;
    pthread_rwlock_unlock(&db->lock);
    if (!ok) {
        bc_file_unref(nf);
        return bc_poison(db, kv_error(KV_NOMEM, "bitcask: out of memory"));
    }
    db->wbuf_off = BC_DATA_HDR;
    db->durable = BC_DATA_HDR;
    db->mark_due = false;
    if (db->merge_auto) {
        pthread_mutex_lock(&db->bg_mu);
        pthread_cond_signal(&db->bg_cv);
        pthread_mutex_unlock(&db->bg_mu);
    }
    return KV_OK;
}

void bc_run_hint_jobs(bc_db *db)
{
    KV_ASSERT_HELD(&db->merge_mu);
    for (;;) {
        pthread_mutex_lock(&db->bg_mu);
        bc_hint_job *j = db->jobs;
        if (j) {
            db->jobs = j->next;
            if (!db->jobs)
                db->jobs_tail = NULL;
        }
        pthread_mutex_unlock(&db->bg_mu);
        if (!j)
            return;
        if (!atomic_load(&j->file->obsolete) && !atomic_load(&db->poisoned)) {
            kv_status s = bc_hint_write(db, j->file, "hint", &j->ents, j->count, j->data_size);
            if (s == KV_OK)
                atomic_store(&j->file->has_hint, true);
            else
                bc_poison(db, s); /* a failed fsync is never retried */
        }
        bc_file_unref(j->file);
        kv_buf_free(&j->ents);
        free(j);
    }
}
