/* lsm_peer.h: the part of the LevelDB and RocksDB adapters (leveldb.c, rocksdb.c) that is the
 * same for both. RocksDB began as a fork of LevelDB, and their C APIs still match name for name
 * (leveldb_put / rocksdb_put, leveldb_iter_seek / rocksdb_iter_seek, ...) and signature for
 * signature, so one body serves both: this file is a template, included once by each adapter
 * with the API prefix given as a macro. It defines static functions only, never a symbol that
 * links.
 *
 * Before including it, an adapter defines:
 *   NAME                   the engine's name, a string ("leveldb")
 *   LSM_PEER(x)            pastes the API prefix: #define LSM_PEER(x) leveldb_##x
 *   struct lsm_peer_db     its handle, holding at least
 *                            kv_db base (first); LSM_PEER(t) *db; LSM_PEER(writeoptions_t) *wopts;
 *                            LSM_PEER(readoptions_t) *ropts; char *dir; kv_syncer *syncer;
 *                            peer_poison poison;
 * and declares (defined after the include, or before):
 *   static kv_status lsm_peer_make_durable(void *ctx);
 *       makes every acknowledged commit durable (ctx is the lsm_peer_db); the interval
 *       syncer, kv_sync and kv_close call it; it poisons the handle when it fails
 *   static void lsm_peer_free_parts(lsm_peer_db *d);
 *       closes the database and frees d with everything it owns
 *
 * What this gives: put, get, del, write (a WriteBatch), sync, close, snapshot iterators,
 * check (a full scan with verify_checksums) and a dump of named properties. Opening (each
 * peer's options), the durability mapping and the statistics stay in the adapters.
 * Every put, del and write returns KV_POISONED once a write or sync has failed (docs/design.md
 * section 4); a failed write (KV_IO) poisons the handle. */
#ifndef LSM_PEER
#error "define LSM_PEER(x) (the C API prefix) before including lsm_peer.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_engine.h"
#include "peer_util.h"
#include "syncer.h"

typedef struct lsm_peer_db lsm_peer_db;

static kv_status lsm_peer_make_durable(void *ctx);
static void lsm_peer_free_parts(lsm_peer_db *d);

typedef struct lsm_peer_iter {
    kv_iter base;
    lsm_peer_db *d;
    const LSM_PEER(snapshot_t) * snap;
    LSM_PEER(readoptions_t) * ropts;
    LSM_PEER(iterator_t) * it;
} lsm_peer_iter;

/* Maps the peer's error text to a kv_status (peer_status_text) and frees err, a string the
 * peer malloc'd. */
static kv_status lsm_peer_err(const char *what, char *err)
{
    kv_status s = peer_status_text(what, err);
    LSM_PEER(free)(err);
    return s;
}

/* Starts the interval syncer when the durability mode is interval:MS. On failure the handle
 * is freed (lsm_peer_free_parts). Errors: KV_IO. */
static kv_status lsm_peer_start_syncer(lsm_peer_db *d, const kv_durability *dur)
{
    if (dur->kind != KV_DURABILITY_INTERVAL)
        return KV_OK;
    d->syncer = kv_syncer_start(dur->interval_ms, lsm_peer_make_durable, d);
    if (d->syncer)
        return KV_OK;
    kv_status s = kv_error_wrap(KV_IO, NAME ": starting the interval syncer");
    lsm_peer_free_parts(d);
    return s;
}

static kv_status lsm_peer_close(kv_db *db)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    kv_status s = kv_syncer_stop(d->syncer);
    if (s == KV_OK)
        s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = lsm_peer_make_durable(d);
    lsm_peer_free_parts(d);
    return s;
}

static kv_status lsm_peer_put(kv_db *db, const void *key, size_t klen, const void *value,
                              size_t vlen)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    char *err = NULL;
    LSM_PEER(put)(d->db, d->wopts, key, klen, value, vlen, &err);
    return err ? peer_poison_on(&d->poison, lsm_peer_err(NAME ": put", err)) : KV_OK;
}

/* The value is the peer's malloc()ed copy: kv_free (free) releases it. */
static kv_status lsm_peer_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    char *err = NULL;
    size_t n = 0;
    char *v = LSM_PEER(get)(d->db, d->ropts, key, klen, &n, &err);
    if (err)
        return lsm_peer_err(NAME ": get", err);
    if (!v)
        return KV_NOT_FOUND;
    if (n == 0) { /* malloc(0) may have returned NULL or a 0-byte block */
        LSM_PEER(free)(v);
        v = malloc(1);
        if (!v)
            return kv_error(KV_NOMEM, NAME ": get: out of memory");
    }
    *value = v;
    *vlen = n;
    return KV_OK;
}

static kv_status lsm_peer_del(kv_db *db, const void *key, size_t klen)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    char *err = NULL;
    LSM_PEER(delete)(d->db, d->wopts, key, klen, &err);
    return err ? peer_poison_on(&d->poison, lsm_peer_err(NAME ": delete", err)) : KV_OK;
}

/* One kv_batch becomes one WriteBatch: the peer applies it atomically. */
static kv_status lsm_peer_write(kv_db *db, const kv_batch *b)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    LSM_PEER(writebatch_t) *wb = LSM_PEER(writebatch_create)();
    size_t n = kv_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        kv_batch_op op = kv_batch_get(b, i);
        if (op.type == KV_OP_PUT)
            LSM_PEER(writebatch_put)
        (wb, (const char *)op.key, op.klen, (const char *)op.value, op.vlen);
        else LSM_PEER(writebatch_delete)(wb, (const char *)op.key, op.klen);
    }
    char *err = NULL;
    LSM_PEER(write)(d->db, d->wopts, wb, &err);
    LSM_PEER(writebatch_destroy)(wb);
    return err ? peer_poison_on(&d->poison, lsm_peer_err(NAME ": write batch", err)) : KV_OK;
}

static kv_status lsm_peer_sync(kv_db *db)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = d->syncer ? kv_syncer_status(d->syncer) : KV_OK;
    return s == KV_OK ? lsm_peer_make_durable(d) : s;
}

/* ---- iterators: each reads through its own snapshot ---- */

static void lsm_peer_it_seek_first(kv_iter *it)
{
    LSM_PEER(iter_seek_to_first)(((lsm_peer_iter *)it)->it);
}

static void lsm_peer_it_seek(kv_iter *it, const void *key, size_t klen)
{
    LSM_PEER(iter_seek)(((lsm_peer_iter *)it)->it, key, klen);
}

static bool lsm_peer_it_valid(const kv_iter *it)
{
    return LSM_PEER(iter_valid)(((const lsm_peer_iter *)it)->it);
}

static void lsm_peer_it_next(kv_iter *it)
{
    LSM_PEER(iter_next)(((lsm_peer_iter *)it)->it);
}

static const void *lsm_peer_it_key(const kv_iter *it, size_t *klen)
{
    return LSM_PEER(iter_key)(((const lsm_peer_iter *)it)->it, klen);
}

static const void *lsm_peer_it_value(const kv_iter *it, size_t *vlen)
{
    const char *v = LSM_PEER(iter_value)(((const lsm_peer_iter *)it)->it, vlen);
    return v ? v : "";
}

static kv_status lsm_peer_it_status(const kv_iter *it)
{
    char *err = NULL;
    LSM_PEER(iter_get_error)(((const lsm_peer_iter *)it)->it, &err);
    return err ? lsm_peer_err(NAME ": iterator", err) : KV_OK;
}

static void lsm_peer_it_free(kv_iter *it)
{
    lsm_peer_iter *i = (lsm_peer_iter *)it;
    LSM_PEER(iter_destroy)(i->it);
    LSM_PEER(readoptions_destroy)(i->ropts);
    LSM_PEER(release_snapshot)(i->d->db, i->snap);
    free(i);
}

static const kv_iter_ops lsm_peer_iter_ops = {
    lsm_peer_it_seek_first, lsm_peer_it_seek,  lsm_peer_it_valid,  lsm_peer_it_next,
    lsm_peer_it_key,        lsm_peer_it_value, lsm_peer_it_status, lsm_peer_it_free};

static kv_status lsm_peer_iter_new(kv_db *db, kv_iter **out)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    lsm_peer_iter *i = calloc(1, sizeof *i);
    if (!i)
        return kv_error(KV_NOMEM, NAME ": iterator: out of memory");
    i->base.ops = &lsm_peer_iter_ops;
    i->d = d;
    i->snap = LSM_PEER(create_snapshot)(d->db);
    i->ropts = LSM_PEER(readoptions_create)();
    LSM_PEER(readoptions_set_snapshot)(i->ropts, i->snap);
    i->it = LSM_PEER(create_iterator)(d->db, i->ropts);
    *out = &i->base;
    return KV_OK;
}

/* ---- check and dump ---- */

/* Reads every record with verify_checksums on (so the peer checks each block's CRC) and checks
 * that the keys come in strictly ascending kvlab order. Errors: KV_CORRUPTION (a checksum the
 * peer rejected, or keys out of order), KV_IO. */
static kv_status lsm_peer_check(kv_db *db)
{
    lsm_peer_db *d = (lsm_peer_db *)db;
    LSM_PEER(readoptions_t) *ro = LSM_PEER(readoptions_create)();
    LSM_PEER(readoptions_set_verify_checksums)(ro, 1);
    LSM_PEER(readoptions_set_fill_cache)(ro, 0);
    LSM_PEER(iterator_t) *it = LSM_PEER(create_iterator)(d->db, ro);
    char *prev = NULL;
    size_t prevlen = 0;
    uint64_t n = 0;
    kv_status s = KV_OK;
    for (LSM_PEER(iter_seek_to_first)(it); LSM_PEER(iter_valid)(it); LSM_PEER(iter_next)(it), n++) {
        size_t kl, vl;
        const char *k = LSM_PEER(iter_key)(it, &kl);
        (void)LSM_PEER(iter_value)(it, &vl);
        if (prev && peer_key_cmp(prev, prevlen, k, kl) >= 0) {
            s = kv_error(KV_CORRUPTION, NAME ": key %llu is not above the previous key",
                         (unsigned long long)n);
            break;
        }
        char *c = realloc(prev, kl ? kl : 1);
        if (!c) {
            s = kv_error(KV_NOMEM, NAME ": check: out of memory");
            break;
        }
        prev = c;
        memcpy(prev, k, kl);
        prevlen = kl;
    }
    char *err = NULL;
    LSM_PEER(iter_get_error)(it, &err);
    if (s == KV_OK && err)
        s = peer_status_text(NAME ": check (iterating with verify_checksums)", err);
    LSM_PEER(free)(err);
    free(prev);
    LSM_PEER(iter_destroy)(it);
    LSM_PEER(readoptions_destroy)(ro);
    return s;
}

/* Prints "# DIR: about" and then each of the n_props named properties as "## name" and its
 * text. kvlab does not parse the peer's files, so a file or a
 * page is KV_NOTSUP. Errors: KV_NOTSUP, KV_IO (a write to out failed). */
static kv_status lsm_peer_dump_props(lsm_peer_db *d, FILE *out, const char *file, int64_t page,
                                     const char *about, const char *const *props, size_t n_props)
{
    if (file || page >= 0)
        return kv_error(KV_NOTSUP, NAME ": the peer exposes no per-file or per-page dump; run "
                                        "without a file or page for its summaries");
    fprintf(out, "# %s: %s\n", d->dir, about);
    for (size_t i = 0; i < n_props; i++) {
        char *v = LSM_PEER(property_value)(d->db, props[i]);
        fprintf(out, "## %s\n%s\n", props[i], v ? v : "(not available)");
        LSM_PEER(free)(v);
    }
    return ferror(out) ? kv_error(KV_IO, NAME ": dump: write error") : KV_OK;
}
