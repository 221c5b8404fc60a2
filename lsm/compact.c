/* compact.c: the background thread: memtable flushes, leveled compaction and deletion of
 * obsolete files (LevelDB's DBImpl::BackgroundCall, VersionSet::PickCompaction and
 * DBImpl::DoCompactionWork).
 *
 * Flush order: the table is written, fdatasynced, renamed and its directory fsynced
 * (sst_writer_finish) -> the manifest edit naming it (its size and unique id, and the new log
 * number) is fdatasynced and sealed by a sync mark (lsm_log_and_apply) -> only then are the old
 * WAL and any replaced table deleted.
 *
 * Compaction picks the level with the highest score (L0: files / l0_compaction_trigger; level
 * L >= 1: bytes / (level_base_bytes * 10^(L-1))), takes one file of it (for L0 every L0 file
 * overlapping it, transitively) and the overlapping files of the next level, and merges them
 * into tables of about target_file_size bytes, never splitting one user key across two tables.
 * An entry is dropped when a newer entry of its key is visible to every snapshot; a tombstone
 * is dropped when, moreover, no deeper level may hold its key. A single input file with nothing
 * to merge moves down by a manifest edit alone (trivial move).
 *
 * Size-tiered compaction (-o compaction=tiered; DDIA ch. 3 "Performance optimizations",
 * Cassandra's SizeTieredCompactionStrategy, RocksDB's universal compaction): every table is
 * one sorted run at level 0, newest (largest file number) first, and a run is never split
 * (RocksDB universal keeps each L0 sorted run in one file too). Runs are grouped as STCS buckets
 * them: a run joins the group when its size is within bucket_low = 0.5 to bucket_high = 1.5 times
 * the group's average, and runs of at most write_buffer_size bytes (a flush's worth: STCS's
 * min_sstable_size) all count as similar. Unlike STCS, which buckets sstables of any age
 * because every cell carries its own timestamp, a group here is always the newest runs, taken
 * in age order as RocksDB universal takes adjacent runs: the merged run then holds the newest
 * data of all, its new (largest) file number keeps the runs ordered by age, and a read can stop
 * at the first run holding the key. Flushes run on this same thread, so none can land between
 * the picked runs and the output, and a due merge runs before the next flush (lsm_bg_main), so
 * that a new small run never cuts a group of larger runs off. When the newest group holds
 * min_merge_width runs, up to
 * max_merge_width of them are merged into one run; a shadowed entry is dropped as above, and a
 * tombstone only when the merge includes the oldest run (nothing older is left to hide). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "lsm_int.h"
#include "lock_assert.h"

kv_status lsm_write_level0(lsm_db *db, lsm_mem *m, lsm_edit *e, uint64_t number)
{
    if (lsm_mem_entries(m) == 0)
        return KV_OK;
    char name[32];
    lsm_make_table_name(number, name, sizeof name);
    sst_writer *w;
    sst_writer_opts wo = db->o.sst;
    wo.unique_id = lsm_new_unique_id();
    kv_status s = sst_writer_new(db->fs, db->dir, name, &lsm_ikey_ops, &wo, &w);
    if (s != KV_OK)
        return s;
    lsm_it *it = lsm_mem_iter(m);
    if (!it) {
        sst_writer_abandon(w);
        return kv_error(KV_NOMEM, "lsm: out of memory");
    }
    for (it->ops->seek_first(it); s == KV_OK && it->ops->valid(it); it->ops->next(it)) {
        size_t kl, vl;
        const uint8_t *k = it->ops->key(it, &kl), *v = it->ops->value(it, &vl);
        s = sst_writer_add(w, k, kl, v, vl);
    }
    lsm_it_free(it);
    if (s != KV_OK) {
        sst_writer_abandon(w);
        return s;
    }
    lsm_file *f = NULL;
    s = lsm_finish_table(db, w, number, &f);
    if (s == KV_OK && !lsm_edit_add_file(e, 0, f))
        s = kv_error(KV_NOMEM, "lsm: out of memory");
    lsm_file_unref(f);
    return s;
}

/* ---- flush ---- */

static void flush_imm(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    assert(db->imm && db->imm_log); /* made together by a memtable switch */
    lsm_mem *imm = db->imm;
    lsm_mem_ref(imm);
    uint64_t number = db->next_file++;
    lsm_edit e;
    lsm_edit_init(&e);
    if (db->o.bug == LSM_BUG_LOG_DELETED_EARLY && db->imm_log) {
        /* BUG (docs/lab.md): the memtable's WAL is deleted (durably) before its table is
         * written. The correct code deletes it only once the table and the manifest edit naming
         * it are durable (delete_obsolete, after lsm_log_and_apply): until then the WAL is the
         * only durable copy of the memtable's commits. */
        kv_fs_unlink(db->fs, db->imm_log->path);
        kv_fs_fsync_dir(db->fs, db->dir);
    }
    pthread_mutex_unlock(&db->mu);
    kv_status s = lsm_write_level0(db, imm, &e, number);
    pthread_mutex_lock(&db->mu);
    if (s == KV_OK) {
        e.has_log_number = true;
        e.log_number = db->imm_next_log;
        s = lsm_log_and_apply(db, &e);
    }
    if (s == KV_OK) {
        assert(db->imm == imm); /* no switch while imm is still there (make_room waits) */
        db->imm = NULL;
        lsm_mem_unref(imm);
        /* the table and the edit naming it are durable: recovery no longer needs the WAL */
        lsm_log_unref(db->imm_log);
        db->imm_log = NULL;
        atomic_fetch_add(&db->flushes, 1);
        db->obsolete_pending = true;
    } else
        lsm_poison_locked(db, s);
    lsm_mem_unref(imm);
    lsm_edit_free(&e);
    pthread_cond_broadcast(&db->done_cv);
}

/* ---- picking ---- */

typedef struct compaction {
    int level;
    bool tiered;      /* runs of level 0 merged into one run of level 0 */
    bool with_oldest; /* tiered: the inputs include the oldest run */
    lsm_version *v;
    lsm_file **in[2];
    size_t n_in[2];
} compaction;

/* An empty compaction of level out of version v, which it pins (compaction_free unpins it);
 * NULL when out of memory. */
static compaction *compaction_new(lsm_db *db, lsm_version *v, int level)
{
    compaction *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->level = level;
    c->tiered = db->o.compaction == LSM_COMPACTION_TIERED;
    c->v = v;
    lsm_version_ref(v);
    return c;
}

static void compaction_free(compaction *c)
{
    if (!c)
        return;
    free(c->in[0]);
    free(c->in[1]);
    lsm_version_unref_locked(c->v);
    free(c);
}

static double level_score(const lsm_db *db, const lsm_version *v, int l)
{
    if (l == 0)
        return (double)v->n[0] / (double)db->o.l0_trigger;
    double max = (double)db->o.level_base_bytes;
    for (int i = 1; i < l; i++)
        max *= 10;
    return (double)lsm_version_level_bytes(v, l) / max;
}

static bool overlaps(const lsm_file *f, const uint8_t *lo, size_t lol, const uint8_t *hi,
                     size_t hil)
{
    return lsm_ukey_cmp(f->largest, f->largest_len - 8, lo, lol) >= 0 &&
           lsm_ukey_cmp(f->smallest, f->smallest_len - 8, hi, hil) <= 0;
}

static bool push(lsm_file ***arr, size_t *n, lsm_file *f)
{
    lsm_file **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!na)
        return false;
    na[(*n)++] = f;
    *arr = na;
    return true;
}

/* Adds to c's second input every table of `level` that overlaps [lo, hi]. False when out of
 * memory. */
static bool add_next_level(compaction *c, const lsm_version *v, int level, const uint8_t *lo,
                           size_t lol, const uint8_t *hi, size_t hil)
{
    for (size_t i = 0; i < v->n[level]; i++)
        if (overlaps(v->files[level][i], lo, lol, hi, hil) &&
            !push(&c->in[1], &c->n_in[1], v->files[level][i]))
            return false;
    return true;
}

/* The user-key range [lo, hi] of files. */
static void range_of(lsm_file **fs, size_t n, const uint8_t **lo, size_t *lol, const uint8_t **hi,
                     size_t *hil)
{
    for (size_t i = 0; i < n; i++) {
        lsm_file *f = fs[i];
        if (i == 0 || lsm_ukey_cmp(f->smallest, f->smallest_len - 8, *lo, *lol) < 0) {
            *lo = f->smallest;
            *lol = f->smallest_len - 8;
        }
        if (i == 0 || lsm_ukey_cmp(f->largest, f->largest_len - 8, *hi, *hil) > 0) {
            *hi = f->largest;
            *hil = f->largest_len - 8;
        }
    }
}

static bool contains(lsm_file **fs, size_t n, const lsm_file *f)
{
    for (size_t i = 0; i < n; i++)
        if (fs[i] == f)
            return true;
    return false;
}

/* ---- size-tiered picking ---- */

const char *lsm_compaction_name(int compaction)
{
    return compaction == LSM_COMPACTION_TIERED ? "tiered" : "leveled";
}

/* Whether a run of `size` bytes belongs with a group of n runs totalling sum bytes (STCS's
 * bucket test, bucket_low 0.5 and bucket_high 1.5 of the average, in integers). */
static bool similar_size(const lsm_db *db, uint64_t size, uint64_t sum, uint64_t n)
{
    uint64_t small = db->o.write_buffer_size;
    if (size <= small && sum <= small * n)
        return true;
    return 2 * size * n >= sum && 2 * size * n <= 3 * sum;
}

size_t lsm_tiered_window(const lsm_db *db, const lsm_version *v)
{
    if (!v->n[0])
        return 0;
    size_t w = 1;
    uint64_t sum = v->files[0][0]->size;
    while (w < v->n[0] && w < db->o.max_merge_width &&
           similar_size(db, v->files[0][w]->size, sum, w))
        sum += v->files[0][w++]->size;
    return w;
}

/* The newest group of similar-size runs once it holds min_merge_width of them, else NULL (also
 * when out of memory). */
static compaction *pick_tiered(lsm_db *db)
{
    lsm_version *v = db->current;
    size_t w = lsm_tiered_window(db, v);
    if (w < db->o.min_merge_width)
        return NULL;
    compaction *c = compaction_new(db, v, 0);
    if (!c)
        return NULL;
    for (size_t i = 0; i < w; i++)
        if (!push(&c->in[0], &c->n_in[0], v->files[0][i])) {
            compaction_free(c);
            return NULL;
        }
    c->with_oldest = w == v->n[0];
    return c;
}

static compaction *pick_compaction(lsm_db *db)
{
    if (db->o.compaction == LSM_COMPACTION_TIERED)
        return pick_tiered(db);
    lsm_version *v = db->current;
    int best = -1;
    double bs = 1.0;
    for (int l = 0; l < LSM_LEVELS - 1; l++) {
        double s = level_score(db, v, l);
        if (s >= bs) {
            bs = s;
            best = l;
        }
    }
    if (best < 0)
        return NULL;
    compaction *c = compaction_new(db, v, best);
    if (!c)
        return NULL;
    kv_buf *ptr = &db->compact_ptr[best];
    lsm_file *first = NULL;
    if (best == 0) {
        first = v->files[0][v->n[0] - 1]; /* the oldest */
    } else {
        for (size_t i = 0; i < v->n[best] && !first; i++)
            if (!ptr->len || lsm_ikey_cmp(v->files[best][i]->largest,
                                          v->files[best][i]->largest_len, ptr->data, ptr->len) > 0)
                first = v->files[best][i];
        if (!first)
            first = v->files[best][0];
    }
    bool ok = push(&c->in[0], &c->n_in[0], first);
    const uint8_t *lo = NULL, *hi = NULL;
    size_t lol = 0, hil = 0;
    range_of(c->in[0], c->n_in[0], &lo, &lol, &hi, &hil);
    if (best == 0) { /* every L0 file overlapping the range, until it stops growing */
        bool grew = true;
        while (ok && grew) {
            grew = false;
            for (size_t i = 0; ok && i < v->n[0]; i++) {
                lsm_file *f = v->files[0][i];
                if (!contains(c->in[0], c->n_in[0], f) && overlaps(f, lo, lol, hi, hil)) {
                    ok = push(&c->in[0], &c->n_in[0], f);
                    range_of(c->in[0], c->n_in[0], &lo, &lol, &hi, &hil);
                    grew = true;
                }
            }
        }
        /* newest first, as in the version */
        lsm_file **sorted = NULL;
        size_t k = 0;
        for (size_t i = 0; ok && i < v->n[0]; i++)
            if (contains(c->in[0], c->n_in[0], v->files[0][i]))
                ok = push(&sorted, &k, v->files[0][i]);
        free(c->in[0]);
        c->in[0] = sorted;
        c->n_in[0] = k;
    }
    ok = ok && add_next_level(c, v, best + 1, lo, lol, hi, hil);
    if (!ok) {
        compaction_free(c);
        return NULL;
    }
    return c;
}

/* ---- running ---- */

typedef struct out_state {
    lsm_db *db;
    int level;
    sst_writer *w;
    uint64_t number;
    lsm_edit *e;
} out_state;

static kv_status finish_output(out_state *o)
{
    if (!o->w)
        return KV_OK;
    sst_writer *w = o->w;
    o->w = NULL;
    lsm_file *f = NULL;
    kv_status s = lsm_finish_table(o->db, w, o->number, &f);
    if (s == KV_OK) {
        atomic_fetch_add(&o->db->comp_written, f->size);
        if (!lsm_edit_add_file(o->e, o->level, f))
            s = kv_error(KV_NOMEM, "lsm: out of memory");
    }
    lsm_file_unref(f);
    return s;
}

static kv_status open_output(out_state *o)
{
    lsm_db *db = o->db;
    pthread_mutex_lock(&db->mu);
    o->number = db->next_file++;
    pthread_mutex_unlock(&db->mu);
    char name[32];
    lsm_make_table_name(o->number, name, sizeof name);
    sst_writer_opts wo = db->o.sst;
    wo.sync_dir = false; /* one directory fsync for all outputs, in merge_inputs */
    wo.unique_id = lsm_new_unique_id();
    kv_status s = sst_writer_new(db->fs, db->dir, name, &lsm_ikey_ops, &wo, &o->w);
    if (s != KV_OK)
        o->w = NULL;
    return s;
}

/* Merges the inputs (mu not held). Returns KV_OK, an error, or KV_BUSY when stopped. */
static kv_status merge_inputs(lsm_db *db, compaction *c, uint64_t smallest_snap, lsm_edit *e)
{
    size_t n = c->n_in[0] + c->n_in[1], nch = 0; /* children made so far */
    lsm_it **ch = calloc(n ? n : 1, sizeof *ch);
    if (!ch)
        return kv_error(KV_NOMEM, "lsm: out of memory");
    bool ok = true;
    if (c->level == 0) /* L0 tables overlap: one child each, newest first */
        for (size_t i = 0; ok && i < c->n_in[0]; i++)
            ok = (ch[nch++] = lsm_table_iter(c->in[0][i])) != NULL;
    else if (c->n_in[0])
        ok = (ch[nch++] = lsm_files_iter(c->in[0], c->n_in[0])) != NULL;
    if (ok && c->n_in[1]) /* the next level's run: one concatenating child */
        ok = (ch[nch++] = lsm_files_iter(c->in[1], c->n_in[1])) != NULL;
    lsm_it *m = ok ? lsm_merge_iter(ch, nch) : NULL;
    if (!m) {
        if (!ok)
            for (size_t i = 0; i < nch; i++)
                lsm_it_free(ch[i]);
        free(ch);
        return kv_error(KV_NOMEM, "lsm: out of memory");
    }
    free(ch);
    out_state o = {db, c->tiered ? 0 : c->level + 1, NULL, 0, e};
    kv_buf cur = {0};
    bool has_cur = false;
    uint64_t last_seq_for_key = 0;
    kv_status s = KV_OK;
    uint64_t count = 0;
    for (m->ops->seek_first(m); s == KV_OK && m->ops->valid(m); m->ops->next(m)) {
        if ((++count & 1023) == 0) {
            pthread_mutex_lock(&db->mu);
            bool stop = db->stop;
            pthread_mutex_unlock(&db->mu);
            if (stop) {
                s = KV_BUSY;
                break;
            }
        }
        size_t kl, vl;
        const uint8_t *k = m->ops->key(m, &kl), *v = m->ops->value(m, &vl);
        atomic_fetch_add_explicit(&db->comp_read, kl + vl, memory_order_relaxed);
        const uint8_t *u = k;
        size_t ul = kl - 8;
        uint64_t t = lsm_ikey_trailer(k, kl);
        uint64_t seq = t >> 8;
        if (!has_cur || lsm_ukey_cmp(u, ul, cur.data, cur.len) != 0) {
            /* a new user key: a table may end here (a tiered run is one table) */
            if (!c->tiered && o.w && sst_writer_estimated_size(o.w) >= db->o.target_file_size)
                s = finish_output(&o);
            cur.len = 0;
            if (!kv_buf_append(&cur, u, ul))
                s = kv_error(KV_NOMEM, "lsm: out of memory");
            has_cur = true;
            last_seq_for_key = UINT64_MAX;
        }
        bool drop = false;
        if (last_seq_for_key <= smallest_snap)
            drop = true; /* shadowed by a newer entry every snapshot sees */
        else if ((t & 0xff) == LSM_TYPE_DEL && seq <= smallest_snap &&
                 (c->tiered ? c->with_oldest
                            : !lsm_version_key_in_deeper(c->v, c->level + 1, u, ul)))
            drop = true; /* a tombstone with nothing older left to hide */
        last_seq_for_key = seq;
        if (drop || s != KV_OK)
            continue;
        if (!o.w)
            s = open_output(&o);
        if (s == KV_OK)
            s = sst_writer_add(o.w, k, kl, v, vl);
    }
    if (s == KV_OK)
        s = m->ops->status(m);
    if (s == KV_OK)
        s = finish_output(&o);
    if (s == KV_OK && e->n_adds) /* the renames are durable before the manifest names them */
        s = kv_fs_fsync_dir(db->fs, db->dir);
    if (o.w)
        sst_writer_abandon(o.w);
    kv_buf_free(&cur);
    lsm_it_free(m);
    return s;
}

/* Runs compaction c (mu held, released during the merge). A manual compaction (lsm_compact_all)
 * always rewrites its inputs, as LevelDB's does, so that shadowed entries and tombstones go. */
static kv_status run_compaction(lsm_db *db, compaction *c, bool manual)
{
    KV_ASSERT_HELD(&db->mu);
    lsm_edit e;
    lsm_edit_init(&e);
    kv_status s = KV_OK;
    lsm_file *last = c->in[0][c->n_in[0] - 1];
    if (!manual && !c->tiered && c->n_in[0] == 1 && c->n_in[1] == 0) {
        lsm_file *f = c->in[0][0];
        if (!lsm_edit_del(&e, c->level, f->number) || !lsm_edit_add_file(&e, c->level + 1, f))
            s = kv_error(KV_NOMEM, "lsm: out of memory");
        if (s == KV_OK)
            s = lsm_log_and_apply(db, &e);
        if (s == KV_OK)
            atomic_fetch_add(&db->trivial_moves, 1);
    } else {
        uint64_t snap = lsm_smallest_snapshot(db);
        pthread_mutex_unlock(&db->mu);
        s = merge_inputs(db, c, snap, &e);
        pthread_mutex_lock(&db->mu);
        for (int w = 0; s == KV_OK && w < 2; w++)
            for (size_t i = 0; i < c->n_in[w]; i++)
                if (!lsm_edit_del(&e, c->level + w, c->in[w][i]->number))
                    s = kv_error(KV_NOMEM, "lsm: out of memory");
        if (s == KV_OK)
            s = lsm_log_and_apply(db, &e);
        if (s == KV_OK)
            atomic_fetch_add(&db->compactions, 1);
    }
    if (s == KV_OK) {
        kv_buf *p = &db->compact_ptr[c->level];
        p->len = 0;
        if (c->level > 0)
            kv_buf_append(p, last->largest, last->largest_len);
    } else if (s != KV_BUSY)
        lsm_poison_locked(db, s);
    db->obsolete_pending = true;
    lsm_edit_free(&e);
    pthread_cond_broadcast(&db->done_cv);
    return s;
}

/* ---- manual compaction (lsm_compact_all) ---- */

/* A compaction of every table of `level` with the overlapping tables of level + 1, or NULL
 * (out of memory). The level must hold a table. */
static compaction *whole_level(lsm_db *db, int level)
{
    lsm_version *v = db->current;
    compaction *c = compaction_new(db, v, level);
    if (!c)
        return NULL;
    bool ok = true;
    for (size_t i = 0; ok && i < v->n[level]; i++) /* L0: newest first, as in the version */
        ok = push(&c->in[0], &c->n_in[0], v->files[level][i]);
    const uint8_t *lo = NULL, *hi = NULL;
    size_t lol = 0, hil = 0;
    range_of(c->in[0], c->n_in[0], &lo, &lol, &hi, &hil);
    ok = ok && add_next_level(c, v, level + 1, lo, lol, hi, hil);
    if (!ok) {
        compaction_free(c);
        return NULL;
    }
    c->with_oldest = true; /* tiered: every run (only level 0 holds tables) */
    return c;
}

void lsm_run_manual(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    uint64_t serving = db->manual_requested;
    kv_status s = KV_OK;
    /* the memtable switched out by lsm_compact_all becomes a level-0 table first */
    if (db->imm && !atomic_load(&db->poisoned))
        flush_imm(db);
    int deepest = 1;
    for (int l = 0; l < LSM_LEVELS; l++)
        if (db->current->n[l])
            deepest = l > deepest ? l : deepest;
    for (int l = 0; l < deepest && s == KV_OK; l++) {
        if (atomic_load(&db->poisoned)) {
            s = KV_POISONED;
            break;
        }
        if (db->stop) {
            s = KV_BUSY;
            break;
        }
        if (db->imm) /* a writer filled a memtable meanwhile: its flush comes first */
            flush_imm(db);
        if (!db->current->n[l])
            continue;
        compaction *c = whole_level(db, l);
        if (!c) {
            s = kv_error(KV_NOMEM, "lsm: out of memory");
            lsm_poison_locked(db, s);
            break;
        }
        s = run_compaction(db, c, true);
        compaction_free(c);
    }
    if (atomic_load(&db->poisoned))
        s = KV_POISONED;
    if (s == KV_OK)
        lsm_delete_obsolete(db);
    assert(serving >= db->manual_done); /* requests are served in order */
    db->manual_status = s;
    db->manual_done = serving;
    pthread_cond_broadcast(&db->done_cv);
}

kv_status lsm_compact_all(kv_db *kdb)
{
    if (!kdb || kdb->engine != &kv_engine_lsm)
        return kv_error(KV_INVALID, "lsm_compact_all: not an lsm handle");
    lsm_db *db = (lsm_db *)kdb;
    if (db->read_only)
        return kv_error(KV_INVALID, "lsm %s: compaction: the handle was opened read-only", db->dir);
    pthread_mutex_lock(&db->mu);
    bool held = db->bg_pause;
    kv_status s = atomic_load(&db->poisoned) ? lsm_poisoned_status_locked(db) : KV_OK;
    pthread_mutex_unlock(&db->mu);
    if (s != KV_OK)
        return s;
    if (held)
        return kv_error(KV_BUSY, "lsm %s: compaction: the background work is paused", db->dir);
    s = lsm_switch_for_compaction(db);
    if (s != KV_OK)
        return s;
    pthread_mutex_lock(&db->mu);
    uint64_t ticket = ++db->manual_requested;
    pthread_cond_broadcast(&db->bg_cv);
    while (db->manual_done < ticket && !db->stop && !atomic_load(&db->poisoned))
        pthread_cond_wait(&db->done_cv, &db->mu);
    if (atomic_load(&db->poisoned))
        s = lsm_poisoned_status_locked(db);
    else if (db->manual_done < ticket)
        s = kv_error(KV_BUSY, "lsm %s: compaction: the database is being closed", db->dir);
    else if (db->manual_status != KV_OK)
        s = kv_error(db->manual_status, "lsm %s: compaction: %s", db->dir,
                     db->manual_status == KV_BUSY ? "the database is being closed"
                                                  : kv_strerror(db->manual_status));
    pthread_mutex_unlock(&db->mu);
    return s;
}

/* ---- obsolete files ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void lsm_delete_obsolete(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    db->obsolete_pending = false;
    if (atomic_load(&db->poisoned))
        return;
    size_t n = 0, cap = 64;
    uint64_t *live = malloc(cap * sizeof *live);
    if (!live)
        return;
    for (lsm_version *v = db->versions.next; v != &db->versions; v = v->next)
        for (int l = 0; l < LSM_LEVELS; l++)
            for (size_t i = 0; i < v->n[l]; i++) {
                if (n == cap) {
                    uint64_t *nl = realloc(live, 2 * cap * sizeof *nl);
                    if (!nl) {
                        free(live);
                        return;
                    }
                    live = nl;
                    cap *= 2;
                }
                live[n++] = v->files[l][i]->number;
            }
    qsort(live, n, sizeof *live, cmp_u64);
    uint64_t log_number = db->log_number, manifest = db->manifest_number;
    pthread_mutex_unlock(&db->mu);
    kv_namelist names;
    if (kv_fs_list(db->fs, db->dir, &names) == KV_OK) {
        for (size_t i = 0; i < names.count; i++) {
            uint64_t num = 0;
            lsm_file_type t = lsm_parse_name(names.names[i], &num);
            bool del = (t == LSM_FILE_LOG && num < log_number) ||
                       (t == LSM_FILE_TABLE && !bsearch(&num, live, n, sizeof *live, cmp_u64)) ||
                       (t == LSM_FILE_MANIFEST && num != manifest) || t == LSM_FILE_TEMP;
            if (!del)
                continue;
            char *p = kv_path_join(db->dir, names.names[i]);
            if (p)
                kv_fs_unlink(db->fs, p); /* best effort: a leftover is removed at next open */
            free(p);
        }
        kv_namelist_free(&names);
    }
    free(live);
    pthread_mutex_lock(&db->mu);
}

/* ---- the thread ---- */

void *lsm_bg_main(void *arg)
{
    lsm_db *db = arg;
    pthread_mutex_lock(&db->mu);
    while (!db->stop) {
        bool ok = !atomic_load(&db->poisoned) && !db->bg_paused;
        /* Tiered: a due merge goes before the flush. A flush lands a new run on top, and a
         * group is always taken from the newest run on: flushing first would let a small run
         * cut off every group of larger runs under it whenever writes keep up with merges, and
         * the runs would pile up. Writers wait meanwhile, as leveled ones do on l0_stop. */
        bool merge_first = ok && db->o.compaction == LSM_COMPACTION_TIERED &&
                           lsm_tiered_window(db, db->current) >= db->o.min_merge_width;
        if (ok && db->imm && !merge_first) {
            flush_imm(db);
            continue;
        }
        /* before the next compaction: under a sustained write load there is always one due,
         * and the replaced tables and WALs would otherwise pile up until the load stops */
        if (ok && db->obsolete_pending) {
            lsm_delete_obsolete(db);
            continue;
        }
        if (ok && db->manual_done < db->manual_requested) {
            lsm_run_manual(db);
            continue;
        }
        compaction *c = ok ? pick_compaction(db) : NULL;
        if (c) {
            run_compaction(db, c, false);
            compaction_free(c);
            continue;
        }
        if (db->bg_pause && !db->bg_paused) { /* no work left: hold from here on */
            db->bg_paused = true;
            pthread_cond_broadcast(&db->done_cv);
        }
        pthread_cond_wait(&db->bg_cv, &db->mu);
    }
    pthread_cond_broadcast(&db->done_cv); /* a waiting lsm_compact_all sees db->stop */
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

kv_status lsm_pause_background_work(kv_db *kdb, bool pause)
{
    if (!kdb || kdb->engine != &kv_engine_lsm)
        return kv_error(KV_INVALID, "lsm_pause_background_work: not an lsm handle");
    lsm_db *db = (lsm_db *)kdb;
    if (db->read_only)
        return kv_error(KV_INVALID, "lsm_pause_background_work: a read-only handle has no "
                                    "background thread");
    pthread_mutex_lock(&db->mu);
    db->bg_pause = pause;
    if (!pause)
        db->bg_paused = false;
    pthread_cond_broadcast(&db->bg_cv);
    while (pause && !db->bg_paused)
        pthread_cond_wait(&db->done_cv, &db->mu);
    pthread_mutex_unlock(&db->mu);
    return KV_OK;
}
