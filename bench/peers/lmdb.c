/* lmdb.c: LMDB (Symas Lightning Memory-Mapped Database, lmdb.h) behind kvlab's interface.
 *
 * LMDB is a copy-on-write B+tree (DDIA ch. 3, "B-trees", and its note on copy-on-write trees)
 * in one memory-mapped file: a writer copies the pages it changes and commits by writing one of
 * two meta pages; readers walk a consistent old root without locks (MVCC), so an iterator is a
 * read transaction and keeps its snapshot. Its default key order (mdb_cmp_memn) is memcmp, then
 * length: kvlab's. Keys stop at mdb_env_get_maxkeysize() = 511 bytes (declared in limits).
 *
 * Durability (docs/peers.md): `sync` -> default flags (fdatasync of data pages, then of the
 * meta page, before the commit returns); `os` -> MDB_NOSYNC (pages are write(2)n at commit, no
 * fdatasync); `interval:MS` -> MDB_NOSYNC plus a kvlab syncer calling mdb_env_sync(force);
 * `none` -> MDB_WRITEMAP|MDB_MAPASYNC|MDB_NOSYNC (a commit is a store into the shared map, no
 * system call). kv_sync and kv_close call mdb_env_sync(force), which fdatasyncs (or msyncs)
 * everything. The map is reserved once (map_size, default 64 GiB, sparse) because growing it
 * needs every read transaction closed, and iterators may stay open. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "kv_engine.h"
#include "peer_util.h"
#include "syncer.h"

#define NAME        "lmdb"
#define LMDB_MAXKEY 511 /* mdb_env_get_maxkeysize() of the default build */

typedef struct lm_db {
    kv_db base;
    MDB_env *env;
    MDB_dbi dbi;
    char *dir;
    kv_durability dur;
    uint64_t map_size;
    kv_syncer *syncer;
    peer_poison poison;
    peer_io io0;
    pthread_mutex_t mu; /* guards the pool of reset read transactions */
    MDB_txn **pool;
    size_t npool, cappool;
} lm_db;

typedef struct lm_iter {
    kv_iter base;
    lm_db *d;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    bool valid;
    kv_status status;
} lm_iter;

static const char *const option_help[] = {
    "map_size: bytes of address space reserved for the data file (default 64G, sparse)",
    "max_readers: concurrent read transactions (gets in flight plus open iterators; default "
    "1024)",
    NULL,
};

/* Maps an LMDB or errno code to a kv_status with LMDB's message. */
static kv_status lm_err(const char *what, int rc)
{
    kv_status s = KV_IO;
    switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
        s = KV_NOSPACE;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_BAD_TXN:
        s = KV_CORRUPTION;
        break;
    case EAGAIN:
    case EBUSY:
    case MDB_READERS_FULL:
        s = KV_BUSY;
        break;
    case MDB_BAD_VALSIZE:
    case EINVAL:
        s = KV_INVALID;
        break;
    default:
        break;
    }
    return kv_error(s, NAME ": %s: %s", what, mdb_strerror(rc));
}

/* A failed commit or sync poisons the handle (its fdatasync must not be retried). */
static kv_status lm_write_err(lm_db *d, const char *what, int rc)
{
    kv_status s = lm_err(what, rc);
    if (s == KV_IO)
        atomic_store(&d->poison.set, true);
    return s;
}

static kv_status lm_env_sync(void *ctx)
{
    lm_db *d = ctx;
    int rc = mdb_env_sync(d->env, 1);
    return rc ? lm_write_err(d, "mdb_env_sync", rc) : KV_OK;
}

/* A read transaction from the pool (renewed) or a new one. */
static kv_status lm_read_begin(lm_db *d, MDB_txn **out)
{
    MDB_txn *t = NULL;
    pthread_mutex_lock(&d->mu);
    if (d->npool)
        t = d->pool[--d->npool];
    pthread_mutex_unlock(&d->mu);
    int rc = t ? mdb_txn_renew(t) : mdb_txn_begin(d->env, NULL, MDB_RDONLY, &t);
    if (rc) {
        if (t)
            mdb_txn_abort(t);
        return lm_err("begin read transaction", rc);
    }
    *out = t;
    return KV_OK;
}

static void lm_read_end(lm_db *d, MDB_txn *t)
{
    mdb_txn_reset(t);
    pthread_mutex_lock(&d->mu);
    if (d->npool == d->cappool) {
        size_t nc = d->cappool ? d->cappool * 2 : 16;
        MDB_txn **p = realloc(d->pool, nc * sizeof *p);
        if (p) {
            d->pool = p;
            d->cappool = nc;
        }
    }
    if (d->npool < d->cappool) {
        d->pool[d->npool++] = t;
        t = NULL;
    }
    pthread_mutex_unlock(&d->mu);
    if (t)
        mdb_txn_abort(t);
}

static void lm_free_parts(lm_db *d)
{
    for (size_t i = 0; i < d->npool; i++)
        mdb_txn_abort(d->pool[i]);
    free(d->pool);
    if (d->env)
        mdb_env_close(d->env);
    pthread_mutex_destroy(&d->mu);
    free(d->dir);
    free(d);
}

/* Creates dir/data.mdb so that a power loss leaves either no data.mdb or a complete, durable
 * one. mdb_env_open writes a new file's two meta pages with write(2) and never syncs them, and
 * LMDB never fsyncs the directory: a crash while it creates data.mdb in place can leave a file
 * with no valid meta page, which every later open rejects (MDB_INVALID), losing the commits
 * acknowledged since. So the file is made as SQLite and LevelDB make their new files: written
 * under a temporary name (data.mdb.new, with MDB_NOSUBDIR), fdatasynced (mdb_env_sync(force)),
 * renamed over, and the directory fsynced. A data.mdb.new left by an earlier crash is discarded.
 * map_size is in bytes. Errors: KV_IO, KV_NOSPACE. */
static kv_status lm_create_data_file(kv_fs *fs, const char *dir, uint64_t map_size)
{
    char *tmp = kv_path_join(dir, "data.mdb.new"), *lock = kv_path_join(dir, "data.mdb.new-lock");
    char *final = kv_path_join(dir, "data.mdb");
    kv_status s = KV_OK;
    MDB_env *env = NULL;
    int rc;
    if (!tmp || !lock || !final) {
        s = kv_error(KV_NOMEM, NAME ": out of memory");
        goto out;
    }
    if ((s = kv_fs_unlink(fs, tmp)) != KV_OK && s != KV_NOT_FOUND)
        goto out;
    if ((rc = mdb_env_create(&env))) {
        env = NULL;
        s = lm_err("mdb_env_create", rc);
        goto out;
    }
    if ((rc = mdb_env_set_mapsize(env, map_size)) ||
        (rc = mdb_env_open(env, tmp, MDB_NOSUBDIR | MDB_NOTLS, 0644)) ||
        (rc = mdb_env_sync(env, 1))) {
        s = lm_err("creating data.mdb.new", rc);
        goto out;
    }
    mdb_env_close(env);
    env = NULL;
    if ((s = kv_fs_unlink(fs, lock)) != KV_OK && s != KV_NOT_FOUND)
        goto out;
    if ((s = kv_fs_rename(fs, tmp, final)) == KV_OK)
        s = kv_fs_fsync_dir(fs, dir);
out:
    if (env)
        mdb_env_close(env);
    free(tmp);
    free(lock);
    free(final);
    return s;
}

static kv_status lm_open(const char *dir, kv_fs *fs, const kv_options *o, kv_db **out)
{
    uint64_t map_size = 64ull << 30, readers = 1024;
    kv_status s;
    if ((s = kv_options_get_u64(o, "map_size", 1 << 20, 1ull << 46, &map_size)) != KV_OK ||
        (s = kv_options_get_u64(o, "max_readers", 8, 1 << 20, &readers)) != KV_OK)
        return s;
    char *p = kv_path_join(dir, "data.mdb");
    bool exists = false;
    s = p ? kv_fs_exists(fs, p, &exists) : kv_error(KV_NOMEM, NAME ": out of memory");
    free(p);
    if (s != KV_OK)
        return s;
    if (!exists && !o->create_if_missing)
        return kv_error(KV_NOT_FOUND, NAME ": %s/data.mdb does not exist", dir);
    if (!exists && (s = lm_create_data_file(fs, dir, map_size)) != KV_OK)
        return s;
    lm_db *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        return kv_error(KV_NOMEM, NAME ": out of memory");
    }
    pthread_mutex_init(&d->mu, NULL);
    d->dur = o->durability;
    d->map_size = map_size;
    d->io0 = peer_io_now();
    unsigned flags = MDB_NOTLS;
    switch (o->durability.kind) {
    case KV_DURABILITY_NONE:
        flags |= MDB_WRITEMAP | MDB_MAPASYNC | MDB_NOSYNC;
        break;
    case KV_DURABILITY_OS:
    case KV_DURABILITY_INTERVAL:
        flags |= MDB_NOSYNC;
        break;
    case KV_DURABILITY_SYNC:
        break;
    }
    int rc = mdb_env_create(&d->env);
    if (rc) {
        d->env = NULL;
        s = lm_err("mdb_env_create", rc);
        goto fail;
    }
    if ((rc = mdb_env_set_mapsize(d->env, map_size)) ||
        (rc = mdb_env_set_maxreaders(d->env, (unsigned)readers))) {
        s = lm_err("configuring the environment", rc);
        goto fail;
    }
    if ((rc = mdb_env_open(d->env, dir, flags, 0644))) {
        s = lm_err("mdb_env_open", rc);
        goto fail;
    }
    if (mdb_env_get_maxkeysize(d->env) < LMDB_MAXKEY) {
        s = kv_error(KV_NOTSUP, NAME ": this liblmdb allows keys of %d bytes, kvlab declares %d",
                     mdb_env_get_maxkeysize(d->env), LMDB_MAXKEY);
        goto fail;
    }
    MDB_txn *t;
    if ((rc = mdb_txn_begin(d->env, NULL, 0, &t))) {
        s = lm_err("begin", rc);
        goto fail;
    }
    if ((rc = mdb_dbi_open(t, NULL, 0, &d->dbi))) {
        mdb_txn_abort(t);
        s = lm_err("mdb_dbi_open", rc);
        goto fail;
    }
    if ((rc = mdb_txn_commit(t))) {
        s = lm_err("commit", rc);
        goto fail;
    }
    /* LMDB never fsyncs the directory: make lock.mdb's name durable (data.mdb's is, by
     * lm_create_data_file). */
    if ((s = kv_fs_fsync_dir(fs, dir)) != KV_OK)
        goto fail;
    if (o->durability.kind == KV_DURABILITY_INTERVAL) {
        d->syncer = kv_syncer_start(o->durability.interval_ms, lm_env_sync, d);
        if (!d->syncer) {
            s = kv_error_wrap(KV_IO, NAME ": starting the interval syncer");
            goto fail;
        }
    }
    *out = &d->base;
    return KV_OK;
fail:
    lm_free_parts(d);
    return s;
}

static kv_status lm_close(kv_db *db)
{
    lm_db *d = (lm_db *)db;
    kv_status s = kv_syncer_stop(d->syncer);
    if (s == KV_OK)
        s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = lm_env_sync(d);
    lm_free_parts(d);
    return s;
}

/* Runs one write transaction applying n operations (from a batch, or one put/delete). */
static kv_status lm_apply(lm_db *d, const kv_batch *b, const kv_batch_op *single)
{
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    MDB_txn *t;
    int rc = mdb_txn_begin(d->env, NULL, 0, &t);
    if (rc)
        return lm_write_err(d, "begin write transaction", rc);
    size_t n = b ? kv_batch_count(b) : 1;
    for (size_t i = 0; i < n; i++) {
        kv_batch_op op = b ? kv_batch_get(b, i) : *single;
        MDB_val k = {op.klen, (void *)op.key};
        if (op.type == KV_OP_PUT) {
            MDB_val v = {op.vlen, (void *)op.value};
            rc = mdb_put(t, d->dbi, &k, &v, 0);
        } else {
            rc = mdb_del(t, d->dbi, &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
        if (rc) {
            mdb_txn_abort(t);
            if (rc == MDB_MAP_FULL)
                return kv_error(KV_NOSPACE,
                                NAME ": the map of %llu bytes is full; reopen with a larger "
                                     "-o map_size",
                                (unsigned long long)d->map_size);
            return lm_write_err(d, op.type == KV_OP_PUT ? "mdb_put" : "mdb_del", rc);
        }
    }
    rc = mdb_txn_commit(t);
    return rc ? lm_write_err(d, "commit", rc) : KV_OK;
}

static kv_status lm_put(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen)
{
    kv_batch_op op = {KV_OP_PUT, key, klen, value, vlen};
    return lm_apply((lm_db *)db, NULL, &op);
}

static kv_status lm_del(kv_db *db, const void *key, size_t klen)
{
    kv_batch_op op = {KV_OP_DELETE, key, klen, NULL, 0};
    return lm_apply((lm_db *)db, NULL, &op);
}

static kv_status lm_write(kv_db *db, const kv_batch *b)
{
    return lm_apply((lm_db *)db, b, NULL);
}

static kv_status lm_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    lm_db *d = (lm_db *)db;
    MDB_txn *t = NULL;
    kv_status s = lm_read_begin(d, &t);
    if (s != KV_OK)
        return s;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t, d->dbi, &k, &v);
    if (rc == 0) {
        *value = peer_dup(v.mv_data, v.mv_size);
        *vlen = v.mv_size;
        s = *value ? KV_OK : kv_error(KV_NOMEM, NAME ": get: out of memory");
    } else {
        s = rc == MDB_NOTFOUND ? KV_NOT_FOUND : lm_err("mdb_get", rc);
    }
    lm_read_end(d, t);
    return s;
}

static kv_status lm_sync(kv_db *db)
{
    lm_db *d = (lm_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = d->syncer ? kv_syncer_status(d->syncer) : KV_OK;
    return s == KV_OK ? lm_env_sync(d) : s;
}

/* ---- iterators: a read transaction and a cursor ---- */

static void it_get(lm_iter *i, MDB_cursor_op op)
{
    if (i->status != KV_OK) {
        i->valid = false;
        return;
    }
    int rc = mdb_cursor_get(i->cur, &i->k, &i->v, op);
    i->valid = rc == 0;
    if (rc && rc != MDB_NOTFOUND)
        i->status = lm_err("mdb_cursor_get", rc);
}

static void it_seek_first(kv_iter *it)
{
    it_get((lm_iter *)it, MDB_FIRST);
}

static void it_seek(kv_iter *it, const void *key, size_t klen)
{
    lm_iter *i = (lm_iter *)it;
    if (klen == 0) {
        it_get(i, MDB_FIRST);
        return;
    }
    /* LMDB refuses a longer search key; every stored key is at most LMDB_MAXKEY bytes, so seek
     * to the cut prefix and step over the keys that sort below the full key. */
    size_t cut = klen > LMDB_MAXKEY ? LMDB_MAXKEY : klen;
    i->k.mv_size = cut;
    i->k.mv_data = (void *)key;
    it_get(i, MDB_SET_RANGE);
    while (i->valid && cut < klen && peer_key_cmp(i->k.mv_data, i->k.mv_size, key, klen) < 0)
        it_get(i, MDB_NEXT);
}

static bool it_valid(const kv_iter *it)
{
    return ((const lm_iter *)it)->valid;
}

static void it_next(kv_iter *it)
{
    it_get((lm_iter *)it, MDB_NEXT);
}

static const void *it_key(const kv_iter *it, size_t *klen)
{
    const lm_iter *i = (const lm_iter *)it;
    *klen = i->k.mv_size;
    return i->k.mv_data;
}

static const void *it_value(const kv_iter *it, size_t *vlen)
{
    const lm_iter *i = (const lm_iter *)it;
    *vlen = i->v.mv_size;
    return i->v.mv_size ? i->v.mv_data : "";
}

static kv_status it_status(const kv_iter *it)
{
    return ((const lm_iter *)it)->status;
}

static void it_free(kv_iter *it)
{
    lm_iter *i = (lm_iter *)it;
    mdb_cursor_close(i->cur);
    lm_read_end(i->d, i->txn);
    free(i);
}

static const kv_iter_ops lm_iter_ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                        it_key,        it_value, it_status, it_free};

static kv_status lm_iter_new(kv_db *db, kv_iter **out)
{
    lm_db *d = (lm_db *)db;
    lm_iter *i = calloc(1, sizeof *i);
    if (!i)
        return kv_error(KV_NOMEM, NAME ": iterator: out of memory");
    kv_status s = lm_read_begin(d, &i->txn);
    if (s != KV_OK) {
        free(i);
        return s;
    }
    int rc = mdb_cursor_open(i->txn, d->dbi, &i->cur);
    if (rc) {
        lm_read_end(d, i->txn);
        free(i);
        return lm_err("mdb_cursor_open", rc);
    }
    i->base.ops = &lm_iter_ops;
    i->d = d;
    *out = &i->base;
    return KV_OK;
}

/* ---- stats, check, dump ---- */

static kv_status lm_stat(lm_db *d, MDB_stat *st, MDB_envinfo *info)
{
    MDB_txn *t;
    kv_status s = lm_read_begin(d, &t);
    if (s != KV_OK)
        return s;
    int rc = mdb_stat(t, d->dbi, st);
    lm_read_end(d, t);
    if (!rc)
        rc = mdb_env_info(d->env, info);
    return rc ? lm_err("mdb_stat", rc) : KV_OK;
}

static kv_status lm_stats(kv_db *db, kv_stats *out)
{
    lm_db *d = (lm_db *)db;
    peer_fill_io(out, d->io0);
    MDB_stat st;
    MDB_envinfo info;
    kv_status s = lm_stat(d, &st, &info);
    if (s != KV_OK)
        return s;
    /* In `none` (MDB_WRITEMAP) the data file is extended to the whole map, sparsely: count the
     * blocks it really holds instead of its apparent size. */
    char *p = kv_path_join(d->dir, "data.mdb");
    struct stat fst;
    if (p && stat(p, &fst) == 0 && (uint64_t)fst.st_blocks * 512 < (uint64_t)fst.st_size &&
        out->disk_bytes >= (uint64_t)fst.st_size)
        out->disk_bytes -= (uint64_t)fst.st_size - (uint64_t)fst.st_blocks * 512;
    free(p);
    out->live_keys = st.ms_entries;
    kv_stats_add(out, "page_size", st.ms_psize);
    kv_stats_add(out, "depth", st.ms_depth);
    kv_stats_add(out, "branch_pages", st.ms_branch_pages);
    kv_stats_add(out, "leaf_pages", st.ms_leaf_pages);
    kv_stats_add(out, "overflow_pages", st.ms_overflow_pages);
    kv_stats_add(out, "last_page", info.me_last_pgno);
    kv_stats_add(out, "last_txnid", info.me_last_txnid);
    kv_stats_add(out, "readers", info.me_numreaders);
    return KV_OK;
}

/* Walks the whole tree in one read transaction, reading every byte of every value, and checks
 * that keys ascend strictly and that the walk finds mdb_stat's entry count. LMDB keeps no
 * checksums; a damaged page shows up as MDB_CORRUPTED / MDB_PAGE_NOTFOUND. */
static kv_status lm_check(kv_db *db)
{
    lm_db *d = (lm_db *)db;
    MDB_txn *t;
    kv_status s = lm_read_begin(d, &t);
    if (s != KV_OK)
        return s;
    MDB_stat st;
    MDB_cursor *c = NULL;
    int rc = mdb_stat(t, d->dbi, &st);
    if (!rc)
        rc = mdb_cursor_open(t, d->dbi, &c);
    uint64_t n = 0;
    volatile unsigned char sum = 0; /* reading every value byte is the point of the walk */
    MDB_val k, v, prev = {0, NULL};
    while (!rc && !(rc = mdb_cursor_get(c, &k, &v, n ? MDB_NEXT : MDB_FIRST))) {
        if (n && peer_key_cmp(prev.mv_data, prev.mv_size, k.mv_data, k.mv_size) >= 0) {
            s = kv_error(KV_CORRUPTION, NAME ": entry %llu: key not above the previous one",
                         (unsigned long long)n);
            break;
        }
        for (size_t i = 0; i < v.mv_size; i++)
            sum ^= ((const unsigned char *)v.mv_data)[i];
        prev = k;
        n++;
    }
    if (s == KV_OK && rc != MDB_NOTFOUND)
        s = kv_error(rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ? KV_CORRUPTION : KV_IO,
                     NAME ": check: walking entry %llu: %s", (unsigned long long)n,
                     mdb_strerror(rc));
    if (s == KV_OK && n != st.ms_entries)
        s = kv_error(KV_CORRUPTION, NAME ": check: walk found %llu entries, mdb_stat says %llu",
                     (unsigned long long)n, (unsigned long long)st.ms_entries);
    (void)sum;
    if (c)
        mdb_cursor_close(c);
    lm_read_end(d, t);
    return s;
}

static kv_status lm_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    lm_db *d = (lm_db *)db;
    if (file || page >= 0)
        return kv_error(KV_NOTSUP, NAME ": the peer exposes no per-file or per-page dump; run "
                                        "without a file or page for its summaries");
    MDB_stat st;
    MDB_envinfo info;
    kv_status s = lm_stat(d, &st, &info);
    if (s != KV_OK)
        return s;
    unsigned flags = 0;
    mdb_env_get_flags(d->env, &flags);
    fprintf(out,
            "# %s: these are LMDB's own summaries (mdb_env_info, mdb_stat); kvlab does not "
            "parse data.mdb page by page\n",
            d->dir);
    fprintf(out,
            "## mdb_env_info\nmap_size %zu bytes\nlast_page %zu\nlast_txnid %zu\n"
            "max_readers %u\nreaders %u\nenv_flags 0x%x\n",
            info.me_mapsize, info.me_last_pgno, info.me_last_txnid, info.me_maxreaders,
            info.me_numreaders, flags);
    fprintf(out,
            "## mdb_stat (main database)\npage_size %u bytes\ndepth %u\nbranch_pages %zu\n"
            "leaf_pages %zu\noverflow_pages %zu\nentries %zu\nmax_key %d bytes\n",
            st.ms_psize, st.ms_depth, st.ms_branch_pages, st.ms_leaf_pages, st.ms_overflow_pages,
            st.ms_entries, mdb_env_get_maxkeysize(d->env));
    return ferror(out) ? kv_error(KV_IO, NAME ": dump: write error") : KV_OK;
}

const kv_engine kv_engine_lmdb = {
    .name = NAME,
    .description = "LMDB (Symas), a copy-on-write memory-mapped B+tree with MVCC readers",
    .option_help = option_help,
    .limits = {LMDB_MAXKEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 1,
    .open = lm_open,
    .close = lm_close,
    .put = lm_put,
    .get = lm_get,
    .del = lm_del,
    .write = lm_write,
    .iter_new = lm_iter_new,
    .sync = lm_sync,
    .stats = lm_stats,
    .check = lm_check,
    .dump = lm_dump,
};
