/* wal_engine.c: the `wal` engine's open/close, writes, reads and checkpoints.
 *
 * A write builds its log records on the stack (PUT payload: varint key length, key, value;
 * DELETE payload: key), prepares the map entry outside any lock, and hands the batch to the log,
 * which writes it with its group and, in LSN order, calls apply() to change the in-memory tree
 * under the tree's write lock: readers see a batch all at once, and the tree's order of changes
 * equals the log's, so replay after a crash rebuilds exactly an acknowledged prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "wal_db.h"

static const char *const option_help[] = {
    "segment_size: bytes per log segment before a new one starts (default 64M, at least 4K)",
    "checkpoint_bytes: log bytes that trigger an automatic checkpoint (default 64M; 0 = never)",
    "recovery: strict (default, like etcd: damage before valid records fails the open) or "
    "point_in_time (cut the log at the first damage)",
    "buffer_bytes: durability none: user-space log buffer flushed above this size (default 256K)",
    "group_max: most batches written by one group commit (default 128)",
    "bug: a deliberate crash bug for the lab (docs/lab.md; needs --allow-bugs): "
    "newest_first_truncation, rewrite_in_place, no_commit_record or no_dir_fsync",
    NULL,
};

/* The names of wal_bug's values after WAL_BUG_NONE, in order. */
static const char *const wal_bug_names[] = {"newest_first_truncation", "rewrite_in_place",
                                            "no_commit_record", "no_dir_fsync", NULL};

/* ---- applying batches to the tree ---- */

typedef struct wal_op {
    uint8_t type;
    wal_entry *e;    /* PUT */
    const void *key; /* DELETE */
    size_t klen;
} wal_op;

typedef struct apply_ctx {
    wal_db *db;
    wal_op *ops;
    size_t n;
    bool ok;
} apply_ctx;

static void apply(void *ctx, uint64_t commit_lsn)
{
    apply_ctx *a = ctx;
    wal_map *m = &a->db->map;
    wal_map_begin(m);
    a->ok = true;
    for (size_t i = 0; i < a->n; i++) {
        wal_op *o = &a->ops[i];
        if (o->type == WAL_REC_PUT) {
            if (wal_map_put(m, o->e))
                o->e = NULL; /* the tree owns it */
            else
                a->ok = false;
        } else if (!wal_map_del(m, o->key, o->klen)) {
            a->ok = false;
        }
    }
    wal_map_end(m, commit_lsn);
}

static kv_status maybe_checkpoint(wal_db *db);

/* Logs and applies ops[0..n) (records built here), then frees leftover entries. */
static kv_status commit_ops(wal_db *db, wal_op *ops, size_t n, wal_record *recs, wal_slice *sl,
                            uint8_t (*vbuf)[KV_VARINT32_MAX])
{
    if (atomic_load(&db->poisoned))
        return kv_error(KV_POISONED, "wal %s: poisoned: an earlier batch could not be applied",
                        db->dir);
    for (size_t i = 0; i < n; i++) {
        wal_op *o = &ops[i];
        recs[i].type = o->type;
        if (o->type == WAL_REC_PUT) {
            size_t vl = kv_put_varint32(vbuf[i], o->e->klen);
            sl[3 * i] = (wal_slice){vbuf[i], vl};
            sl[3 * i + 1] = (wal_slice){o->e->data, o->e->klen};
            sl[3 * i + 2] = (wal_slice){o->e->data + o->e->klen, (size_t)o->e->vlen};
            recs[i].parts = &sl[3 * i];
            recs[i].nparts = 3;
        } else {
            sl[3 * i] = (wal_slice){o->key, o->klen};
            recs[i].parts = &sl[3 * i];
            recs[i].nparts = 1;
        }
    }
    apply_ctx a = {db, ops, n, true};
    kv_status s = wal_log_append_batch(db->log, recs, n, apply, &a, NULL);
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == WAL_REC_PUT)
            wal_entry_unref(&db->map, ops[i].e);
    if (s == KV_OK && !a.ok) {
        atomic_store(&db->poisoned, true);
        wal_log_poison(db->log, "out of memory applying a logged batch to the memtable");
        return kv_error(KV_NOMEM, "wal %s: out of memory applying a logged batch; handle poisoned",
                        db->dir);
    }
    if (s == KV_OK)
        s = maybe_checkpoint(db);
    return s;
}

static kv_status wal_put(kv_db *kdb, const void *key, size_t klen, const void *value, size_t vlen)
{
    wal_db *db = (wal_db *)kdb;
    wal_op op = {WAL_REC_PUT, wal_entry_new(&db->map, key, klen, value, vlen), NULL, 0};
    if (!op.e)
        return kv_error(KV_NOMEM, "wal put: out of memory for %zu bytes", klen + vlen);
    wal_record rec;
    wal_slice sl[3];
    uint8_t vb[1][KV_VARINT32_MAX];
    return commit_ops(db, &op, 1, &rec, sl, vb);
}

static kv_status wal_del(kv_db *kdb, const void *key, size_t klen)
{
    wal_db *db = (wal_db *)kdb;
    wal_op op = {WAL_REC_DELETE, NULL, key, klen};
    wal_record rec;
    wal_slice sl[3];
    uint8_t vb[1][KV_VARINT32_MAX];
    return commit_ops(db, &op, 1, &rec, sl, vb);
}

static kv_status wal_write(kv_db *kdb, const kv_batch *b)
{
    wal_db *db = (wal_db *)kdb;
    size_t n = kv_batch_count(b);
    /* One allocation for all per-op arrays. */
    size_t sz = n * (sizeof(wal_op) + sizeof(wal_record) + 3 * sizeof(wal_slice) + KV_VARINT32_MAX);
    uint8_t *mem = malloc(sz);
    if (!mem)
        return kv_error(KV_NOMEM, "wal write: out of memory for a batch of %zu operations", n);
    wal_op *ops = (wal_op *)mem;
    wal_record *recs = (wal_record *)(ops + n);
    wal_slice *sl = (wal_slice *)(recs + n);
    uint8_t(*vb)[KV_VARINT32_MAX] = (uint8_t(*)[KV_VARINT32_MAX])(sl + 3 * n);
    kv_status s = KV_OK;
    size_t made = 0;
    for (; made < n; made++) {
        kv_batch_op bo = kv_batch_get(b, made);
        if (bo.type == KV_OP_PUT) {
            wal_entry *e = wal_entry_new(&db->map, bo.key, bo.klen, bo.value, bo.vlen);
            if (!e) {
                s = kv_error(KV_NOMEM, "wal write: out of memory");
                break;
            }
            ops[made] = (wal_op){WAL_REC_PUT, e, NULL, 0};
        } else {
            ops[made] = (wal_op){WAL_REC_DELETE, NULL, bo.key, bo.klen};
        }
    }
    if (s == KV_OK)
        s = commit_ops(db, ops, n, recs, sl, vb);
    else
        for (size_t i = 0; i < made; i++)
            if (ops[i].type == WAL_REC_PUT)
                wal_entry_unref(&db->map, ops[i].e);
    free(mem);
    return s;
}

static kv_status wal_get(kv_db *kdb, const void *key, size_t klen, void **value, size_t *vlen)
{
    wal_db *db = (wal_db *)kdb;
    wal_entry *e;
    if (!wal_map_get(&db->map, key, klen, &e))
        return KV_NOT_FOUND;
    void *v = malloc(e->vlen ? e->vlen : 1);
    if (!v) {
        wal_entry_unref(&db->map, e);
        return kv_error(KV_NOMEM, "wal get: out of memory for %llu bytes",
                        (unsigned long long)e->vlen);
    }
    memcpy(v, e->data + e->klen, e->vlen);
    *value = v;
    *vlen = (size_t)e->vlen;
    wal_entry_unref(&db->map, e);
    return KV_OK;
}

static kv_status wal_sync(kv_db *kdb)
{
    return wal_log_sync(((wal_db *)kdb)->log);
}

/* ---- checkpoints ---- */

static kv_status checkpoint_locked(wal_db *db)
{
    uint64_t count, lsn;
    wal_node *root = wal_map_snapshot(&db->map, &count, &lsn);
    kv_status s = KV_OK;
    if (lsn == atomic_load(&db->snap_lsn))
        goto out; /* nothing new since the last checkpoint */
    /* The log must hold every record up to lsn durably before a snapshot claims lsn. */
    if ((s = wal_log_sync(db->log)) != KV_OK)
        goto out;
    uint64_t bytes = 0;
    wal_log_stats ls;
    wal_log_get_stats(db->log, &ls);
    if ((s = wal_snapshot_write(db, root, count, lsn, ls.salt, &bytes)) != KV_OK)
        goto out;
    atomic_store(&db->snap_lsn, lsn);
    atomic_store(&db->snap_bytes, bytes);
    uint8_t p[8];
    kv_put_u64(p, lsn);
    wal_slice sl = {p, 8};
    wal_record rec = {WAL_REC_CHECKPOINT, &sl, 1};
    if ((s = wal_log_append_batch(db->log, &rec, 1, NULL, NULL, NULL)) != KV_OK)
        goto out;
    if ((s = wal_log_truncate(db->log, lsn)) != KV_OK)
        goto out;
    atomic_fetch_add(&db->checkpoints, 1);
out:
    wal_map_release(&db->map, root);
    return s;
}

kv_status wal_engine_checkpoint(kv_db *kdb)
{
    if (!kdb || kdb->engine != &kv_engine_wal)
        return kv_error(KV_INVALID, "wal_engine_checkpoint: not a wal handle");
    if (kv_db_read_only(kdb))
        return kv_error(KV_INVALID, "wal_engine_checkpoint: the handle was opened read-only");
    wal_db *db = (wal_db *)kdb;
    pthread_mutex_lock(&db->ckpt_mu);
    kv_status s = checkpoint_locked(db);
    pthread_mutex_unlock(&db->ckpt_mu);
    return s;
}

static kv_status maybe_checkpoint(wal_db *db)
{
    if (!db->checkpoint_bytes || wal_log_bytes(db->log) < db->checkpoint_bytes)
        return KV_OK;
    bool expect = false;
    if (!atomic_compare_exchange_strong(&db->ckpt_busy, &expect, true))
        return KV_OK; /* another thread is checkpointing */
    pthread_mutex_lock(&db->ckpt_mu);
    kv_status s = checkpoint_locked(db);
    pthread_mutex_unlock(&db->ckpt_mu);
    atomic_store(&db->ckpt_busy, false);
    return s;
}

/* ---- replay ---- */

typedef struct replay_state {
    wal_db *db;
    uint64_t snap_lsn;
    uint64_t snap_salt; /* the salt SNAPSHOT records (meaningful when snap_lsn > 0) */
} replay_state;

/* The log's wal_salt_fn: a SNAPSHOT taken from another log (another database's file copied over
 * this one's) is refused before any batch is replayed over it. */
static kv_status check_salt(void *ctx, uint64_t salt)
{
    replay_state *st = ctx;
    if (st->snap_lsn > 0 && st->snap_salt != salt)
        return wal_snapshot_salt_error(st->db->dir, st->snap_salt, salt);
    return KV_OK;
}

static kv_status bad_rec(const wal_replay_rec *r, const char *what)
{
    char name[WAL_SEG_NAME_LEN + 1];
    wal_seg_name(name, r->segment);
    return kv_error(KV_CORRUPTION, "%s: offset %llu: LSN %llu: %s", name,
                    (unsigned long long)r->offset, (unsigned long long)r->lsn, what);
}

static kv_status replay(void *ctx, const wal_replay_rec *recs, size_t n, uint64_t commit_lsn)
{
    replay_state *st = ctx;
    wal_map *m = &st->db->map;
    if (commit_lsn <= st->snap_lsn)
        return KV_OK; /* already in the snapshot */
    kv_status s = KV_OK;
    wal_map_begin(m);
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        const wal_replay_rec *r = &recs[i];
        if (r->type == WAL_REC_PUT) {
            const uint8_t *p = r->payload, *end = p + r->len;
            uint32_t klen;
            if (!kv_get_varint32(&p, end, &klen) || klen == 0 || klen > KV_MAX_KEY ||
                klen > (size_t)(end - p) || (uint64_t)(end - p - klen) > KV_MAX_VALUE) {
                s = bad_rec(r, "bad PUT payload");
                break;
            }
            wal_entry *e = wal_entry_new(m, p, klen, p + klen, (size_t)(end - p - klen));
            if (!e || !wal_map_put(m, e)) {
                wal_entry_unref(m, e);
                s = kv_error(KV_NOMEM, "wal replay: out of memory");
            }
        } else if (r->type == WAL_REC_DELETE) {
            if (r->len == 0 || r->len > KV_MAX_KEY)
                s = bad_rec(r, "bad DELETE payload");
            else if (!wal_map_del(m, r->payload, r->len))
                s = kv_error(KV_NOMEM, "wal replay: out of memory");
        } else if (r->type == WAL_REC_CHECKPOINT) {
            if (r->len != 8)
                s = bad_rec(r, "bad CHECKPOINT payload");
            else if (kv_get_u64(r->payload) > st->snap_lsn) {
                char what[160];
                snprintf(what, sizeof what,
                         "CHECKPOINT names LSN %llu but SNAPSHOT covers only up to %llu: "
                         "SNAPSHOT is missing or an older copy",
                         (unsigned long long)kv_get_u64(r->payload),
                         (unsigned long long)st->snap_lsn);
                s = bad_rec(r, what);
            }
        } else {
            s = bad_rec(r, "unexpected record type");
        }
    }
    wal_map_end(m, commit_lsn);
    return s;
}

/* ---- open / close ---- */

static void db_free(wal_db *db)
{
    wal_map_destroy(&db->map);
    pthread_mutex_destroy(&db->ckpt_mu);
    free(db->dir);
    free(db);
}

static kv_status parse_options(const kv_options *o, wal_log_options *lo, uint64_t *ckpt)
{
    wal_log_options_init(lo);
    lo->durability = o->durability;
    uint64_t gm = lo->group_max_items;
    kv_status s = kv_options_get_u64(o, "segment_size", 4096, (uint64_t)1 << 40, &lo->segment_size);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "checkpoint_bytes", 0, UINT64_MAX, ckpt);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "buffer_bytes", 0, (uint64_t)1 << 30, &lo->buffer_bytes);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "group_max", 1, 65536, &gm);
    lo->group_max_items = (size_t)gm;
    int bug = 0;
    if (s == KV_OK)
        s = kv_options_get_bug(o, "wal", wal_bug_names, &bug);
    lo->bug = (wal_bug)bug;
    const char *rec = kv_options_get(o, "recovery");
    if (s == KV_OK && rec) {
        if (!strcmp(rec, "strict"))
            lo->recovery = WAL_RECOVER_STRICT;
        else if (!strcmp(rec, "point_in_time"))
            lo->recovery = WAL_RECOVER_POINT_IN_TIME;
        else
            s = kv_error(KV_INVALID, "option recovery=%s: want strict or point_in_time", rec);
    }
    return s;
}

static kv_status remove_stale_tmp(wal_db *db)
{
    char *p = kv_path_join(db->dir, WAL_SNAPSHOT_TMP);
    if (!p)
        return kv_error(KV_NOMEM, "wal: out of memory");
    bool ex = false;
    kv_status s = kv_fs_exists(db->fs, p, &ex);
    if (s == KV_OK && ex) {
        s = kv_fs_unlink(db->fs, p);
        if (s == KV_OK)
            s = kv_fs_fsync_dir(db->fs, db->dir);
    }
    free(p);
    return s;
}

static kv_status wal_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    wal_log_options lo;
    uint64_t ckpt = (uint64_t)64 << 20;
    kv_status s = parse_options(opts, &lo, &ckpt);
    if (s != KV_OK)
        return s;
    wal_db *db = calloc(1, sizeof *db);
    if (!db || !(db->dir = strdup(dir))) {
        free(db);
        return kv_error(KV_NOMEM, "wal: out of memory");
    }
    db->fs = fs;
    db->checkpoint_bytes = ckpt;
    wal_map_init(&db->map);
    pthread_mutex_init(&db->ckpt_mu, NULL);
    uint64_t snap = 0, snap_bytes = 0, snap_salt = 0;
    lo.read_only = opts->read_only;
    if (lo.read_only || (s = remove_stale_tmp(db)) == KV_OK)
        s = wal_snapshot_load(db, &snap, &snap_bytes, &snap_salt);
    atomic_store(&db->snap_lsn, snap);
    atomic_store(&db->snap_bytes, snap_bytes);
    lo.start_lsn = snap + 1;
    lo.must_exist = snap > 0; /* a checkpoint never removes the last segment */
    replay_state st = {db, snap, snap_salt};
    lo.check_salt = check_salt;
    lo.check_salt_ctx = &st;
    if (s == KV_OK)
        s = wal_log_open(fs, dir, &lo, replay, &st, &db->log);
    if (s == KV_OK) {
        wal_log_stats ls;
        wal_log_get_stats(db->log, &ls);
        /* The log must go on from SNAPSHOT's LSN + 1 (from LSN 1 without one): a truncation
         * names its first segment after that LSN, so the file that should be there is known. */
        char want[WAL_SEG_NAME_LEN + 1], first[WAL_SEG_NAME_LEN + 1];
        wal_seg_name(want, snap + 1);
        wal_seg_name(first, ls.first_lsn);
        if (snap > 0 && ls.salt != snap_salt)
            s = wal_snapshot_salt_error(dir, snap_salt, ls.salt);
        else if (ls.first_lsn > snap + 1 && snap == 0)
            s = kv_error(KV_CORRUPTION,
                         "%s: the log starts at LSN %llu (%s) and there is no SNAPSHOT: "
                         "segment %s is missing, records are missing",
                         dir, (unsigned long long)ls.first_lsn, first, want);
        else if (ls.first_lsn > snap + 1)
            s = kv_error(KV_CORRUPTION,
                         "%s: the log starts at LSN %llu (%s) but SNAPSHOT covers only up to "
                         "%llu: segment %s is missing or SNAPSHOT is an older copy, records are "
                         "missing",
                         dir, (unsigned long long)ls.first_lsn, first, (unsigned long long)snap,
                         want);
        else if (ls.last_lsn < snap)
            s = kv_error(KV_CORRUPTION,
                         "%s: SNAPSHOT covers LSN %llu but the log ends at %llu: SNAPSHOT is "
                         "newer than the log, or the log's newest segments are missing",
                         dir, (unsigned long long)snap, (unsigned long long)ls.last_lsn);
        if (s != KV_OK) {
            wal_log_close(db->log);
            db->log = NULL;
        }
    }
    if (s != KV_OK) {
        db_free(db);
        return s;
    }
    *out = &db->base;
    return KV_OK;
}

static kv_status wal_close(kv_db *kdb)
{
    wal_db *db = (wal_db *)kdb;
    kv_status s = wal_log_close(db->log);
    db_free(db);
    return s;
}

const kv_engine kv_engine_wal = {
    .name = "wal",
    .description = "in-memory ordered table (copy-on-write B-tree) made durable by a segmented "
                   "write-ahead log with group commit and checkpoints",
    .option_help = option_help,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 3, /* 2: segments framed by common/reclog, with sync marks; 3: SNAPSHOT records
                    the log's salt, a rolled segment names its successor */
    .read_only = true,
    .open = wal_open,
    .close = wal_close,
    .put = wal_put,
    .get = wal_get,
    .del = wal_del,
    .write = wal_write,
    .iter_new = wal_iter_new,
    .sync = wal_sync,
    .stats = wal_stats,
    .check = wal_check,
    .dump = wal_dump,
    .picture = wal_picture,
    .compact = wal_engine_checkpoint,
};
