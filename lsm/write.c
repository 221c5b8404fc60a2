/* write.c: the write path (LevelDB's DBImpl::Write). Every put, delete and batch becomes one
 * WAL record (so a batch is atomic after a crash) and goes through the group-commit queue
 * (common/group_commit.h): the leader makes room in the memtable, assigns sequence numbers,
 * appends the records of its whole group with one write(2) (in `sync` mode followed by one
 * fdatasync shared by the group), inserts them into the memtable and only then publishes the
 * new last sequence number, so readers never see half a batch. In `none` mode records collect
 * in a user-space buffer (written at 64 KiB, on kv_sync and at close). A failed write or
 * fdatasync poisons the handle. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lsm_int.h"
#include "lock_assert.h"

#define NONE_BUFFER (64 * 1024)

/* witem.type of a request to switch the memtable out (lsm_switch_for_compaction) */
#define W_SWITCH (-2)

typedef struct witem {
    const kv_batch *b; /* a batch, or NULL for the single operation below */
    int type;          /* LSM_TYPE_VALUE or LSM_TYPE_DEL; -1 = only a sync; W_SWITCH */
    const uint8_t *key, *val;
    size_t klen, vlen;
} witem;

static size_t item_count(const witem *w)
{
    return w->b ? kv_batch_count(w->b) : w->type >= 0 ? 1 : 0;
}

static bool put_op(kv_buf *b, int type, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    uint8_t t = (uint8_t)type;
    bool ok = kv_buf_append(b, &t, 1) && kv_buf_put_varint(b, kl) && kv_buf_append(b, k, kl);
    if (ok && type == LSM_TYPE_VALUE)
        ok = kv_buf_put_varint(b, vl) && kv_buf_append(b, v, vl);
    return ok;
}

/* Appends the record of w (first sequence number seq) to the log buffer. */
static bool encode_item(lsm_log *l, const witem *w, uint64_t seq)
{
    size_t n = item_count(w);
    uint8_t h[12];
    kv_put_u64(h, seq);
    kv_put_u32(h + 8, (uint32_t)n);
    if (!lsm_log_begin(l) || !kv_buf_append(&l->buf, h, sizeof h))
        return false;
    for (size_t i = 0; i < n; i++) {
        bool ok;
        if (w->b) {
            kv_batch_op op = kv_batch_get(w->b, i);
            ok = put_op(&l->buf, op.type == KV_OP_PUT ? LSM_TYPE_VALUE : LSM_TYPE_DEL, op.key,
                        op.klen, op.value, op.vlen);
        } else
            ok = put_op(&l->buf, w->type, w->key, w->klen, w->val, w->vlen);
        if (!ok)
            return false;
    }
    lsm_log_end(l, LSM_REC_BATCH);
    return true;
}

static bool apply_item(lsm_mem *m, const witem *w, uint64_t seq)
{
    size_t n = item_count(w);
    for (size_t i = 0; i < n; i++) {
        bool ok;
        if (w->b) {
            kv_batch_op op = kv_batch_get(w->b, i);
            ok = lsm_mem_add(m, seq + i, op.type == KV_OP_PUT ? LSM_TYPE_VALUE : LSM_TYPE_DEL,
                             op.key, op.klen, op.value, op.vlen);
        } else
            ok = lsm_mem_add(m, seq + i, w->type, w->key, w->klen, w->val, w->vlen);
        if (!ok)
            return false;
    }
    return true;
}

/* Switches to a new memtable and WAL (mu held; released during the I/O). The old WAL is
 * written out first and the new WAL's header records its number and final length, so that
 * recovery never replays a later WAL after an earlier one lost a suffix (a prefix survives); the
 * new header is fdatasynced at creation. In `interval` mode the old WAL is also fdatasynced
 * (the syncer only syncs the current one, and the mode promises to lose at most the last
 * interval); in `sync` mode it already is. Then the new header says so (LSM_LOG_PREV_DURABLE):
 * the old WAL is sealed, and if it ever comes back shorter, that is damage, never a torn tail.
 * In `os` and `none` it is not synced (that would cost a write of up to a whole memtable on the
 * write path): it stays open as db->imm_log until the flush of its memtable is durable, and the
 * next kv_sync or kv_close fdatasyncs it before the current WAL and then records that in the
 * current WAL (lsm_sync_wals): a sync must cover every WAL recovery still replays, not just the
 * newest, and the chain must say which of them are durable. */
static kv_status switch_memtable(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    uint64_t num = db->next_file++;
    lsm_log *old = db->log, *nl = NULL;
    lsm_mem *nm = lsm_mem_new();
    char name[32];
    snprintf(name, sizeof name, "%06llu.log", (unsigned long long)num);
    pthread_mutex_unlock(&db->mu);
    kv_status s = nm ? lsm_log_flush(old) : kv_error(KV_NOMEM, "lsm: out of memory");
    if (s == KV_OK && db->dur.kind == KV_DURABILITY_INTERVAL)
        s = lsm_log_sync(old);
    uint64_t len = atomic_load(&old->written);
    bool durable = atomic_load(&old->synced) == len;
    if (s == KV_OK) {
        lsm_log_header h = {
            LSM_LOG_VERSION, durable ? LSM_LOG_PREV_DURABLE : 0, num, db->db_id, old->number, len};
        s = lsm_log_create(db->fs, db->dir, name, LSM_WAL_MAGIC, &h, true, &nl);
    }
    /* The old WAL names the new one, now that it exists (a deleted newer WAL is then found
     * missing); durable with the old one's records, so an fdatasync when they already are. */
    if (s == KV_OK)
        s = lsm_log_append_next(old, num);
    if (s == KV_OK && durable)
        s = lsm_log_sync(old);
    pthread_mutex_lock(&db->mu);
    if (s != KV_OK) {
        lsm_mem_unref(nm);
        lsm_log_unref(nl);
        lsm_poison_locked(db, s);
        return s;
    }
    /* one immutable memtable at a time: make_room waited for the flush of the last one */
    assert(!db->imm && !db->imm_log);
    db->imm = db->mem;
    db->imm_next_log = num;
    db->imm_log = old; /* takes our reference; imm_log was NULL (no imm before a switch) */
    db->imm_log_synced = durable;
    db->mem = nm;
    db->log = nl;
    pthread_cond_signal(&db->bg_cv);
    return KV_OK;
}

/* Waits until the memtable has room (LevelDB's MakeRoomForWrite): delays each write 1 ms once
 * L0 reaches the slowdown trigger, waits while the previous memtable is still being flushed or
 * L0 reaches the stop trigger, and switches memtables when the current one is full. With
 * size-tiered compaction the count is that of the runs a due merge will take (none while no
 * merge is due, so that runs of dissimilar sizes never stop writes). mu held. */
static kv_status make_room(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    bool allow_delay = true;
    for (;;) {
        if (atomic_load(&db->poisoned))
            return lsm_poisoned_status_locked(db);
        size_t l0 = db->current->n[0];
        if (db->o.compaction == LSM_COMPACTION_TIERED) { /* runs a due merge will take */
            l0 = lsm_tiered_window(db, db->current);
            l0 = l0 >= db->o.min_merge_width ? l0 : 0;
        }
        if (allow_delay && l0 >= db->o.l0_slowdown) {
            uint64_t t = kv_clock_us();
            pthread_mutex_unlock(&db->mu);
            usleep(1000);
            pthread_mutex_lock(&db->mu);
            atomic_fetch_add(&db->stall_us, kv_clock_us() - t);
            allow_delay = false;
        } else if (lsm_mem_usage(db->mem) < db->o.write_buffer_size ||
                   lsm_mem_entries(db->mem) == 0) {
            return KV_OK;
        } else if (db->imm || l0 >= db->o.l0_stop) {
            uint64_t t = kv_clock_us();
            pthread_cond_signal(&db->bg_cv);
            pthread_cond_wait(&db->done_cv, &db->mu);
            atomic_fetch_add(&db->stall_us, kv_clock_us() - t);
        } else {
            kv_status s = switch_memtable(db);
            if (s != KV_OK)
                return s;
        }
    }
}

kv_status lsm_group_write(void *ctx, void *const *items, size_t n, bool sync)
{
    lsm_db *db = ctx;
    size_t ops = 0;
    for (size_t i = 0; i < n; i++)
        ops += item_count(items[i]);
    pthread_mutex_lock(&db->mu);
    kv_status s = atomic_load(&db->poisoned) ? lsm_poisoned_status_locked(db) : KV_OK;
    if (s == KV_OK && ops)
        s = make_room(db);
    bool want_switch = false;
    for (size_t i = 0; i < n; i++)
        want_switch |= ((const witem *)items[i])->type == W_SWITCH;
    if (s == KV_OK && want_switch) {
        /* the previous immutable memtable must be flushed first: there is one slot */
        while (db->imm && !atomic_load(&db->poisoned)) {
            pthread_cond_signal(&db->bg_cv);
            pthread_cond_wait(&db->done_cv, &db->mu);
        }
        if (atomic_load(&db->poisoned))
            s = lsm_poisoned_status_locked(db);
        else if (lsm_mem_entries(db->mem) > 0)
            s = switch_memtable(db);
    }
    lsm_log *log = db->log;
    lsm_mem *mem = db->mem;
    pthread_mutex_unlock(&db->mu);
    if (s != KV_OK)
        return s;
    /* Only the leader writes, so last_seq, log and mem stay ours until we return. */
    uint64_t first = atomic_load_explicit(&db->last_seq, memory_order_relaxed) + 1;
    uint64_t seq = first;
    /* what the log buffer held before this group: an allocation failure drops the group's
     * records, whole or begun, so that the log never holds a record nobody acknowledged */
    size_t buffered = log->buf.len;
    for (size_t i = 0; i < n; i++) {
        const witem *w = items[i];
        if (item_count(w) == 0)
            continue;
        if (!encode_item(log, w, seq)) {
            log->buf.len = buffered;
            return kv_error(KV_NOMEM, "lsm: out of memory encoding a log record");
        }
        seq += item_count(w);
    }
    bool none = db->dur.kind == KV_DURABILITY_NONE;
    if (sync)
        s = lsm_sync_wals(db, log);
    else if (!none || log->buf.len >= NONE_BUFFER)
        s = lsm_log_flush(log);
    if (s != KV_OK) {
        lsm_poison(db, s);
        return s;
    }
    seq = first;
    for (size_t i = 0; i < n; i++) {
        const witem *w = items[i];
        if (!apply_item(mem, w, seq)) {
            s = kv_error(KV_NOMEM, "lsm: out of memory in the memtable");
            lsm_poison(db, s);
            return s;
        }
        seq += item_count(w);
    }
    atomic_store_explicit(&db->last_seq, seq - 1, memory_order_release);
    return KV_OK;
}

static kv_status submit(lsm_db *db, witem *w, size_t bytes, bool sync)
{
    if (atomic_load_explicit(&db->poisoned, memory_order_relaxed))
        return lsm_poisoned_status(db);
    return kv_group_commit_submit(db->gc, w, bytes, sync);
}

kv_status lsm_put(kv_db *kdb, const void *key, size_t klen, const void *val, size_t vlen)
{
    lsm_db *db = (lsm_db *)kdb;
    witem w = {NULL, LSM_TYPE_VALUE, key, val, klen, vlen};
    return submit(db, &w, klen + vlen, db->dur.kind == KV_DURABILITY_SYNC);
}

kv_status lsm_del(kv_db *kdb, const void *key, size_t klen)
{
    lsm_db *db = (lsm_db *)kdb;
    witem w = {NULL, LSM_TYPE_DEL, key, NULL, klen, 0};
    return submit(db, &w, klen, db->dur.kind == KV_DURABILITY_SYNC);
}

kv_status lsm_write(kv_db *kdb, const kv_batch *b)
{
    lsm_db *db = (lsm_db *)kdb;
    /* one WAL record per batch: its length field is 32 bits */
    if ((uint64_t)kv_batch_count(b) * 16 + kv_batch_bytes(b) > UINT32_MAX - 64)
        return kv_error(KV_INVALID,
                        "lsm: batch of %zu operations and %llu bytes exceeds the "
                        "4 GiB log record limit",
                        kv_batch_count(b), (unsigned long long)kv_batch_bytes(b));
    witem w = {b, 0, NULL, NULL, 0, 0};
    return submit(db, &w, kv_batch_bytes(b), db->dur.kind == KV_DURABILITY_SYNC);
}

kv_status lsm_sync(kv_db *kdb)
{
    lsm_db *db = (lsm_db *)kdb;
    witem w = {NULL, -1, NULL, NULL, 0, 0};
    return submit(db, &w, 0, true);
}

kv_status lsm_switch_for_compaction(lsm_db *db)
{
    witem w = {NULL, W_SWITCH, NULL, NULL, 0, 0};
    return submit(db, &w, 0, false);
}

kv_status lsm_sync_wals(lsm_db *db, lsm_log *log)
{
    pthread_mutex_lock(&db->mu);
    lsm_log *older = db->imm_log && !db->imm_log_synced ? db->imm_log : NULL;
    if (older)
        lsm_log_ref(older);
    pthread_mutex_unlock(&db->mu);
    kv_status s = KV_OK;
    if (older) {
        /* The older WAL first: if the newer one were durable and the older one not, recovery
         * would stop at the older one's lost suffix and drop the newer one's commits. Then the
         * newer one records that the older one is durable whole (it gets no more writes), in
         * the same write as whatever it syncs next: were the older one later found shorter,
         * recovery knows it is damage, not a power loss. */
        s = lsm_log_sync(older);
        if (s == KV_OK) {
            uint8_t p[16];
            kv_put_u64(p, log->prev_number);
            kv_put_u64(p + 8, log->prev_len);
            if (!lsm_log_begin(log) || !kv_buf_append(&log->buf, p, sizeof p))
                s = kv_error(KV_NOMEM, "lsm: out of memory");
            else
                lsm_log_end(log, LSM_REC_PREV_DURABLE);
        }
        pthread_mutex_lock(&db->mu);
        if (s == KV_OK && db->imm_log == older)
            db->imm_log_synced = true; /* once is enough */
        pthread_mutex_unlock(&db->mu);
        lsm_log_unref(older);
    }
    if (s == KV_OK)
        s = lsm_log_flush(log);
    if (s == KV_OK && db->o.bug == LSM_BUG_WAL_NO_FSYNC) {
        /* BUG (docs/lab.md): the WAL is written but not fdatasynced. The correct code
         * fdatasyncs it: a write(2) only reaches the page cache, and a power loss takes back
         * the commits kv_sync (or a sync-mode commit) promised were durable. */
    } else if (s == KV_OK)
        s = lsm_log_sync(log);
    return s;
}

kv_status lsm_interval_sync(void *ctx)
{
    lsm_db *db = ctx;
    pthread_mutex_lock(&db->mu);
    lsm_log *l = db->log;
    lsm_log_ref(l);
    pthread_mutex_unlock(&db->mu);
    kv_status s = lsm_log_sync(l);
    lsm_log_unref(l);
    if (s != KV_OK)
        lsm_poison(db, s);
    return s;
}
