/* wal_log.c: opening and closing the log, batches through group commit (LevelDB's
 * DBImpl::Write leader/follower queue: one write(2) and at most one fdatasync per group), the
 * `none` user-space buffer, the `interval:MS` background fdatasync, and stats. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_commit.h"
#include "wal_log_int.h"
#include "lock_assert.h"

typedef struct gc_item {
    const wal_record *recs;
    size_t n;
    wal_apply_fn apply;
    void *actx;
    uint64_t commit_lsn;
} gc_item;

void wal_log_options_init(wal_log_options *o)
{
    memset(o, 0, sizeof *o);
    o->segment_size = (uint64_t)64 << 20;
    o->durability.kind = KV_DURABILITY_OS;
    o->recovery = WAL_RECOVER_STRICT;
    o->buffer_bytes = (uint64_t)256 << 10;
    o->group_max_items = 128;
    o->group_max_bytes = (size_t)1 << 20;
    o->start_lsn = 1;
}

static uint64_t payload_len(const wal_record *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->nparts; i++)
        n += r->parts[i].len;
    return n;
}

static kv_status poisoned_error(wal_log *l)
{
    return kv_error(KV_POISONED, "wal %s: poisoned by an earlier failure (reopen to recover): %s",
                    l->dir, l->poison_msg);
}

/* Starts a new segment at next_lsn (mu held), in the order wal_format.h's NEXT relies on: makes
 * the current segment durable; creates the new one durably (NAME.tmp, header, fdatasync, rename,
 * directory fsync); appends NEXT naming it to the current segment and fdatasyncs that; only then
 * does the new segment become the active one. A crash before the new segment is durable leaves
 * the current one the newest; a crash after it, a NEXT absent or torn, which open completes. */
static kv_status roll_locked(wal_log *l)
{
    KV_ASSERT_HELD(&l->mu);
    kv_status s = wal_sync_locked(l);
    if (s != KV_OK)
        return s;
    wal_wait_syncers(l); /* may release mu: the active file is read again below */
    kv_file *nf = NULL;
    uint64_t first = l->next_lsn;
    s = wal_seg_create(l, first, 0, NULL, 0, 0, &nf, NULL);
    if (s == KV_OK) {
        wal_seg *a = &l->segs[l->nsegs - 1];
        uint8_t rec[WAL_NEXT_SIZE];
        wal_next_encode(rec, l->seed, first);
        s = kv_file_pwrite(l->active, rec, sizeof rec, a->size);
        if (s == KV_OK) {
            a->size += sizeof rec;
            atomic_fetch_add(&l->bytes, sizeof rec);
            s = kv_file_fdatasync(l->active);
        }
    }
    if (s == KV_OK)
        s = wal_segs_push(l, (wal_seg){first, first - 1, WAL_SEG_HEADER_SIZE});
    if (s != KV_OK) {
        kv_file_close(nf);
        return wal_poison_locked(l, s);
    }
    kv_file_close(l->active);
    l->active = nf;
    l->synced_seq = ++l->write_seq;
    /* Created durable; a mark naming the header alone would vouch for nothing. */
    l->durable = l->marked = WAL_SEG_HEADER_SIZE;
    atomic_fetch_add(&l->bytes, WAL_SEG_HEADER_SIZE);
    return KV_OK;
}

/* Encodes one record at the end of b with LSN lsn: reclog framing, the LSN, the body pieces. */
static bool encode_rec(kv_buf *b, uint32_t seed, uint8_t type, uint64_t lsn, const wal_slice *parts,
                       size_t nparts, uint32_t len)
{
    if (!kv_buf_reserve(b, (size_t)WAL_REC_OVERHEAD + len))
        return false;
    uint8_t *start = b->data + b->len;
    kv_put_u64(start + KV_RECLOG_FRAME, lsn);
    size_t at = WAL_REC_OVERHEAD;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len)
            memcpy(start + at, parts[i].data, parts[i].len);
        at += parts[i].len;
    }
    kv_reclog_seal(start, seed, type, WAL_REC_LSN_SIZE + len);
    b->len += at;
    return true;
}

/* Whether the next bytes written to the active file start with a sync mark: the first write
 * after an fdatasync that made more of the file durable than a mark already names (reclog.h).
 * In `sync` mode that is every group after the first: the mark rides in the group's own write
 * and is made durable by the group's own fdatasync. */
static bool mark_due(const wal_log *l)
{
    return l->durable > l->marked && l->durable > WAL_SEG_HEADER_SIZE;
}

/* fdatasync of the active segment with mu released meanwhile (held on entry and on return), so
 * that committers, stats, the explicit sync and truncation go on; wal_wait_syncers waits for it.
 * Marks the writes it covers synced. Returns KV_OK, or the fdatasync's error after poisoning the
 * log (never retried). Used by `sync` commits (group_write) and the `interval:MS` syncer. */
static kv_status sync_active_unlocked(wal_log *l)
{
    KV_ASSERT_HELD(&l->mu);
    uint64_t seq = l->write_seq;
    uint64_t size = l->segs[l->nsegs - 1].size; /* what this fdatasync covers */
    kv_file *f = l->active;
    l->syncing++;
    pthread_mutex_unlock(&l->mu);
    kv_status s = kv_file_fdatasync(f);
    pthread_mutex_lock(&l->mu);
    l->syncing--;
    pthread_cond_broadcast(&l->cv);
    if (s != KV_OK)
        return wal_poison_locked(l, s);
    if (seq > l->synced_seq)
        l->synced_seq = seq;
    if (size > l->durable)
        l->durable = size; /* the file cannot have changed: rolls and truncations wait for us */
    return KV_OK;
}

/* The group commit write function: runs on the leader, one group at a time. */
static kv_status group_write(void *ctx, void *const *items, size_t n, bool sync)
{
    wal_log *l = ctx;
    pthread_mutex_lock(&l->wmu);
    pthread_mutex_lock(&l->mu);
    kv_status s = KV_OK;
    if (l->poisoned) {
        s = poisoned_error(l);
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const gc_item *it = items[i];
        for (size_t j = 0; j < it->n; j++)
            total += WAL_REC_OVERHEAD + payload_len(&it->recs[j]);
        total += WAL_COMMIT_SIZE;
    }
    wal_seg *a = &l->segs[l->nsegs - 1];
    uint64_t logical = a->size + l->nbuf.len;
    if (logical > WAL_SEG_HEADER_SIZE &&
        logical + total + (mark_due(l) ? WAL_MARK_SIZE : 0) > l->opt.segment_size) {
        if ((s = roll_locked(l)) != KV_OK)
            goto out;
        a = &l->segs[l->nsegs - 1];
    }
    bool none = l->opt.durability.kind == KV_DURABILITY_NONE;
    kv_buf *b = none ? &l->nbuf : &l->wbuf;
    if (!none)
        b->len = 0;
    size_t before = b->len;
    bool mark = mark_due(l);
    if (mark) {
        /* It names durable, at most the offset it lands at (a->size + b->len). */
        if (!kv_buf_reserve(b, WAL_MARK_SIZE)) {
            s = kv_error(KV_NOMEM, "wal: out of memory encoding a group of %llu bytes",
                         (unsigned long long)total);
            goto out;
        }
        b->len += kv_reclog_mark(b->data + b->len, l->seed, l->durable);
        total += WAL_MARK_SIZE;
    }
    uint64_t lsn = l->next_lsn;
    for (size_t i = 0; i < n; i++) {
        gc_item *it = items[i];
        bool ok = true;
        for (size_t j = 0; j < it->n && ok; j++)
            ok = encode_rec(b, l->seed, it->recs[j].type, lsn++, it->recs[j].parts,
                            it->recs[j].nparts, (uint32_t)payload_len(&it->recs[j]));
        uint8_t cnt[4];
        kv_put_u32(cnt, (uint32_t)it->n);
        wal_slice cs = {cnt, 4};
        it->commit_lsn = lsn;
        if (!ok || !encode_rec(b, l->seed, WAL_REC_COMMIT, lsn++, &cs, 1, 4)) {
            b->len = before;
            s = kv_error(KV_NOMEM, "wal: out of memory encoding a group of %llu bytes",
                         (unsigned long long)total);
            goto out; /* nothing was written: the log stays usable */
        }
    }
    if (none) {
        if (l->nbuf.len >= l->opt.buffer_bytes)
            s = wal_flush_locked(l);
    } else {
        s = kv_file_pwrite(l->active, b->data, b->len, a->size);
        if (s == KV_OK) {
            a->size += b->len;
            l->write_seq++;
        } else {
            wal_poison_locked(l, s);
        }
    }
    if (s != KV_OK)
        goto out;
    if (mark)
        l->marked = l->durable;
    assert(lsn > l->next_lsn); /* every group has a COMMIT: LSNs only grow */
    assert(a->first_lsn <=
           l->next_lsn); /* the group went to the segment that starts at or below it */
    l->next_lsn = lsn;
    a->last_lsn = lsn - 1;
    atomic_fetch_add(&l->bytes, total);
    if (b == &l->wbuf && b->cap > ((size_t)8 << 20)) {
        kv_buf_free(b); /* do not keep a huge batch's buffer */
    }
    /* `sync`: the group's one fdatasync, without mu (wmu still held, so no other group writes
     * and the segment does not roll meanwhile); the next group queues up behind this one
     * (LevelDB's DBImpl::Write) */
    if (sync && (s = sync_active_unlocked(l)) != KV_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        gc_item *it = items[i];
        if (it->apply)
            it->apply(it->actx, it->commit_lsn);
    }
out:
    /* These committers are past the write step (written, synced when asked, or failed). */
    atomic_fetch_sub_explicit(&l->committers, (unsigned)n, memory_order_release);
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&l->wmu);
    return s;
}

kv_status wal_log_append_batch(wal_log *l, const wal_record *recs, size_t n, wal_apply_fn apply,
                               void *apply_ctx, uint64_t *commit_lsn)
{
    if (n == 0 || !recs)
        return kv_error(KV_INVALID, "wal: empty batch");
    if (l->opt.read_only)
        return kv_error(KV_INVALID, "wal %s: the log was opened read-only", l->dir);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t t = recs[i].type;
        if (t != WAL_REC_PUT && t != WAL_REC_DELETE && t != WAL_REC_CHECKPOINT)
            return kv_error(KV_INVALID, "wal: record %zu has type %u (PUT, DELETE, CHECKPOINT)", i,
                            t);
        uint64_t len = payload_len(&recs[i]);
        if (len > WAL_MAX_PAYLOAD)
            return kv_error(KV_INVALID, "wal: record %zu payload of %llu bytes (at most %u)", i,
                            (unsigned long long)len, WAL_MAX_PAYLOAD);
        bytes += len + WAL_REC_OVERHEAD;
    }
    gc_item it = {recs, n, apply, apply_ctx, 0};
    bool sync = l->opt.durability.kind == KV_DURABILITY_SYNC;
    kv_status s;
    if (atomic_fetch_add_explicit(&l->committers, 1, memory_order_acquire) == 0 && !sync) {
        /* Nobody else is committing: be a group of one directly. group_write is serialized by
         * wmu, so a committer that arrives meanwhile and leads a queued group simply waits for
         * this write (whose LSNs come first) as it would for a previous group. Not in `sync`:
         * there the queue's commit delay gathers the committers of the group just synced into
         * the next one, and a committer passing it would take their fdatasync for itself
         * (groups of 1 and 7 instead of 8 at 8 threads). */
        void *one = &it;
        s = group_write(l, &one, 1, sync);
        atomic_fetch_add_explicit(&l->fast_groups, 1, memory_order_relaxed);
    } else {
        s = kv_group_commit_submit(l->gc, &it, (size_t)bytes, sync);
    }
    if (s == KV_OK && commit_lsn)
        *commit_lsn = it.commit_lsn;
    return s;
}

kv_status wal_log_sync(wal_log *l)
{
    if (l->opt.read_only)
        return KV_OK; /* nothing was written */
    pthread_mutex_lock(&l->mu);
    kv_status s = l->poisoned ? poisoned_error(l) : wal_sync_locked(l);
    pthread_mutex_unlock(&l->mu);
    return s;
}

void wal_log_poison(wal_log *l, const char *reason)
{
    pthread_mutex_lock(&l->mu);
    if (!l->poisoned) {
        l->poisoned = true;
        snprintf(l->poison_msg, sizeof l->poison_msg, "%s", reason);
    }
    pthread_mutex_unlock(&l->mu);
}

/* The `interval:MS` syncer: fdatasync of the active segment without holding mu, so that
 * committers keep writing meanwhile. */
static kv_status bg_sync(void *ctx)
{
    wal_log *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->poisoned) {
        kv_status p = poisoned_error(l);
        pthread_mutex_unlock(&l->mu);
        return p;
    }
    if (l->synced_seq == l->write_seq) {
        pthread_mutex_unlock(&l->mu);
        return KV_OK;
    }
    kv_status s = sync_active_unlocked(l);
    pthread_mutex_unlock(&l->mu);
    return s;
}

static void log_free(wal_log *l)
{
    kv_file_close(l->active);
    kv_group_commit_free(l->gc);
    kv_buf_free(&l->nbuf);
    kv_buf_free(&l->wbuf);
    free(l->segs);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->wmu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

kv_status wal_log_open(kv_fs *fs, const char *dir, const wal_log_options *opts,
                       wal_replay_fn replay, void *ctx, wal_log **out)
{
    wal_log_options o;
    if (opts)
        o = *opts;
    else
        wal_log_options_init(&o);
    if (!fs || !dir || !out)
        return kv_error(KV_INVALID, "wal_log_open: missing argument");
    if (o.segment_size < 4096 || o.group_max_items < 1 || o.group_max_bytes < 1 ||
        o.start_lsn < 1 || o.start_lsn > UINT64_MAX / 2)
        return kv_error(KV_INVALID,
                        "wal_log_open: bad options (segment_size >= 4096, group caps >= 1, "
                        "start_lsn >= 1)");
    wal_log *l = calloc(1, sizeof *l);
    if (!l || !(l->dir = strdup(dir))) {
        free(l);
        return kv_error(KV_NOMEM, "wal: out of memory");
    }
    l->fs = fs;
    l->opt = o;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->wmu, NULL);
    pthread_cond_init(&l->cv, NULL);
    kv_status s = wal_recover(l, replay, ctx);
    l->seed = wal_seed(l->salt);
    if (s == KV_OK) {
        uint64_t b = 0;
        for (size_t i = 0; i < l->nsegs; i++)
            b += l->segs[i].size;
        atomic_store(&l->bytes, b);
        l->gc = kv_group_commit_new(group_write, l, o.group_max_items, o.group_max_bytes);
        if (!l->gc)
            s = kv_error(KV_NOMEM, "wal: out of memory");
        else if (o.durability.kind == KV_DURABILITY_SYNC)
            kv_group_commit_set_delay(l->gc, true); /* gather a group's fdatasync sharers */
    }
    if (s == KV_OK && o.durability.kind == KV_DURABILITY_INTERVAL && !o.read_only) {
        l->syncer = kv_syncer_start(o.durability.interval_ms, bg_sync, l);
        if (!l->syncer)
            s = kv_error_wrap(KV_IO, "wal: cannot start the interval syncer");
    }
    if (s != KV_OK) {
        log_free(l);
        return s;
    }
    *out = l;
    return KV_OK;
}

kv_status wal_log_close(wal_log *l)
{
    if (!l)
        return KV_OK;
    kv_status s = KV_OK;
    if (l->syncer) {
        s = kv_syncer_stop(l->syncer);
        l->syncer = NULL;
    }
    pthread_mutex_lock(&l->mu);
    kv_status t = KV_OK;
    if (l->poisoned)
        t = poisoned_error(l);
    else if (!l->opt.read_only)
        t = wal_sync_locked(l);
    if (t == KV_OK && !l->poisoned && !l->opt.read_only && mark_due(l)) {
        /* A clean close: fdatasync, mark, fdatasync (reclog.h), so that damage to the last
         * batches is told from a torn write at the next open. */
        uint8_t m[WAL_MARK_SIZE];
        wal_seg *a = &l->segs[l->nsegs - 1];
        kv_reclog_mark(m, l->seed, l->durable);
        t = kv_file_pwrite(l->active, m, sizeof m, a->size);
        if (t == KV_OK) {
            a->size += sizeof m;
            l->write_seq++;
            l->marked = l->durable;
            t = wal_sync_locked(l);
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (s == KV_OK || t != KV_OK)
        s = t;
    log_free(l);
    return s;
}

void wal_log_get_stats(wal_log *l, wal_log_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&l->mu);
    st->segments = l->nsegs;
    st->bytes = atomic_load(&l->bytes);
    st->first_lsn = l->nsegs ? l->segs[0].first_lsn : l->next_lsn;
    st->last_lsn = l->next_lsn - 1;
    st->salt = l->salt;
    st->torn_bytes_cut = l->torn_cut;
    st->replayed_bytes = l->replayed;
    st->truncations = l->truncations;
    st->rewrites = l->rewrites;
    st->segments_created = l->created;
    st->poisoned = l->poisoned;
    pthread_mutex_unlock(&l->mu);
    unsigned long long g = 0, it = 0;
    if (l->gc)
        kv_group_commit_counts(l->gc, &g, &it);
    uint64_t fast = atomic_load(&l->fast_groups);
    st->groups = g + fast;
    st->items = it + fast;
}

uint64_t wal_log_bytes(wal_log *l)
{
    return atomic_load(&l->bytes);
}
