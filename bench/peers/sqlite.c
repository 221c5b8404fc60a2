/* sqlite.c: SQLite 3 (sqlite3.h) behind kvlab's interface.
 *
 * One table kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID in the file kv.sqlite: a B-tree keyed
 * by k (DDIA ch. 3, "B-trees"; SQLite's file format keeps long keys in overflow pages). SQLite
 * compares BLOBs with memcmp, then length: kvlab's order. The journal is SQLite's WAL (write-
 * ahead log, checkpointed into the database file), so readers never wait for the writer.
 *
 * Threads: one writer connection behind a mutex (SQLite admits one writer at a time anyway) and
 * a pool of reader connections, each used by one thread at a time; an iterator keeps a reader
 * connection inside a read transaction (its snapshot) until it is freed.
 *
 * Durability (docs/peers.md): `sync` -> synchronous=FULL (the WAL is fdatasynced at every
 * commit); `os` -> synchronous=NORMAL (a commit write(2)s its WAL frames; fsyncs only at
 * checkpoints, so a power loss rolls back a suffix of commits and never corrupts);
 * `interval:MS` -> NORMAL plus a kvlab syncer that fdatasyncs the -wal file every MS ms;
 * `none` is not offered (SQLite has no commit that stays in user space and still keeps
 * transactions atomic after a crash). kv_sync and kv_close fdatasync the WAL. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kv_engine.h"
#include "peer_util.h"
#include "syncer.h"

#define NAME    "sqlite"
#define DB_FILE "kv.sqlite"

typedef struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *get, *put, *del, *begin, *commit, *rollback, *scan_from, *scan_all;
    struct sq_conn *next;
} sq_conn;

typedef struct sq_db {
    kv_db base;
    char *path, *wal_path, *dir;
    kv_fs *fs;
    kv_durability dur;
    int cache_kib;      /* 0: SQLite's default */
    unsigned page_size; /* bytes, for a new database */
    kv_syncer *syncer;
    peer_poison poison;
    peer_io io0;
    pthread_mutex_t wmu; /* the writer connection */
    sq_conn *writer;
    pthread_mutex_t pmu; /* the pool of idle reader connections */
    sq_conn *idle;
} sq_db;

typedef struct sq_iter {
    kv_iter base;
    sq_db *d;
    sq_conn *c;
    sqlite3_stmt *cur; /* the statement being stepped, or NULL */
    bool valid;
    kv_status status;
} sq_iter;

static const char *const option_help[] = {
    "page_size: database page size in bytes for a new database (default 4096)",
    "autocheckpoint: WAL pages before a commit checkpoints (default 1000)",
    NULL,
};

static kv_status sq_err(sqlite3 *db, const char *what, int rc)
{
    kv_status s = KV_IO;
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        s = KV_CORRUPTION;
        break;
    case SQLITE_FULL:
        s = KV_NOSPACE;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        s = KV_BUSY;
        break;
    case SQLITE_TOOBIG:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        s = KV_INVALID;
        break;
    default:
        break;
    }
    return kv_error(s, NAME ": %s: %s (code %d)", what,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
}

static kv_status sq_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return KV_OK;
    kv_status s = sq_err(db, sql, rc);
    sqlite3_free(msg);
    return s;
}

static void conn_close(sq_conn *c)
{
    if (!c)
        return;
    sqlite3_stmt *st[] = {c->get,    c->put,      c->del,       c->begin,
                          c->commit, c->rollback, c->scan_from, c->scan_all};
    for (size_t i = 0; i < sizeof st / sizeof *st; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(c->db);
    free(c);
}

/* Opens a connection with its prepared statements and per-connection pragmas. */
static kv_status conn_open(sq_db *d, bool create, sq_conn **out)
{
    sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return kv_error(KV_NOMEM, NAME ": out of memory");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(d->path, &c->db, flags, NULL);
    kv_status s;
    if (rc != SQLITE_OK) {
        s = rc == SQLITE_CANTOPEN && !create
                ? kv_error(KV_NOT_FOUND, NAME ": %s does not exist", d->path)
                : sq_err(c->db, "open", rc);
        conn_close(c);
        return s;
    }
    sqlite3_busy_timeout(c->db, 60000);
    sqlite3_extended_result_codes(c->db, 1);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s",
             d->dur.kind == KV_DURABILITY_SYNC ? "FULL" : "NORMAL");
    if ((s = sq_exec(c->db, sql)) != KV_OK)
        goto fail;
    if (d->cache_kib) {
        snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", d->cache_kib);
        if ((s = sq_exec(c->db, sql)) != KV_OK)
            goto fail;
    }
    if (create) { /* the writer: page size (new files only), WAL mode and the table */
        snprintf(sql, sizeof sql, "PRAGMA page_size=%u", d->page_size);
        if ((s = sq_exec(c->db, sql)) != KV_OK)
            goto fail;
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal")) {
            s = rc == SQLITE_ROW ? kv_error(KV_IO, NAME ": cannot switch %s to WAL mode", d->path)
                                 : sq_err(c->db, "PRAGMA journal_mode=WAL", rc);
            sqlite3_finalize(st);
            goto fail;
        }
        sqlite3_finalize(st);
        if ((s = sq_exec(c->db, "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) "
                                "WITHOUT ROWID")) != KV_OK)
            goto fail;
    }
    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(sq_conn, get), "SELECT v FROM kv WHERE k = ?1"},
        {offsetof(sq_conn, put), "INSERT OR REPLACE INTO kv(k, v) VALUES (?1, ?2)"},
        {offsetof(sq_conn, del), "DELETE FROM kv WHERE k = ?1"},
        {offsetof(sq_conn, begin), "BEGIN"},
        {offsetof(sq_conn, commit), "COMMIT"},
        {offsetof(sq_conn, rollback), "ROLLBACK"},
        {offsetof(sq_conn, scan_from), "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k"},
        {offsetof(sq_conn, scan_all), "SELECT k, v FROM kv ORDER BY k"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)((char *)c + stmts[i].off);
        rc = sqlite3_prepare_v3(c->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            s = sq_err(c->db, stmts[i].sql, rc);
            goto fail;
        }
    }
    *out = c;
    return KV_OK;
fail:
    conn_close(c);
    return s;
}

static kv_status reader_get(sq_db *d, sq_conn **out)
{
    pthread_mutex_lock(&d->pmu);
    sq_conn *c = d->idle;
    if (c)
        d->idle = c->next;
    pthread_mutex_unlock(&d->pmu);
    if (c) {
        *out = c;
        return KV_OK;
    }
    return conn_open(d, false, out);
}

static void reader_put(sq_db *d, sq_conn *c)
{
    pthread_mutex_lock(&d->pmu);
    c->next = d->idle;
    d->idle = c;
    pthread_mutex_unlock(&d->pmu);
}

/* fdatasyncs the -wal file: with synchronous=NORMAL every commit is write(2)n to it and every
 * checkpoint has already synced what it copied into the database file. */
static kv_status sq_sync_wal(void *ctx)
{
    sq_db *d = ctx;
    kv_status s = peer_fdatasync_path(d->fs, d->wal_path, true);
    if (s != KV_OK) /* never retry a failed fdatasync */
        atomic_store(&d->poison.set, true);
    return s;
}

static void sq_free_parts(sq_db *d)
{
    while (d->idle) {
        sq_conn *c = d->idle;
        d->idle = c->next;
        conn_close(c);
    }
    conn_close(d->writer); /* the last connection: checkpoints and removes the WAL */
    pthread_mutex_destroy(&d->wmu);
    pthread_mutex_destroy(&d->pmu);
    free(d->path);
    free(d->wal_path);
    free(d->dir);
    free(d);
}

static kv_status sq_open(const char *dir, kv_fs *fs, const kv_options *o, kv_db **out)
{
    uint64_t page_size = 4096, autockpt = 1000;
    kv_status s;
    if ((s = kv_options_get_u64(o, "page_size", 512, 65536, &page_size)) != KV_OK ||
        (s = kv_options_get_u64(o, "autocheckpoint", 0, 1 << 30, &autockpt)) != KV_OK)
        return s;
    if (page_size & (page_size - 1))
        return kv_error(KV_INVALID, NAME ": page_size=%llu is not a power of two",
                        (unsigned long long)page_size);
    if (!sqlite3_threadsafe())
        return kv_error(KV_NOTSUP, NAME ": the SQLite library was built without threads");
    sq_db *d = calloc(1, sizeof *d);
    if (!d)
        return kv_error(KV_NOMEM, NAME ": out of memory");
    pthread_mutex_init(&d->wmu, NULL);
    pthread_mutex_init(&d->pmu, NULL);
    d->fs = fs;
    d->dur = o->durability;
    d->page_size = (unsigned)page_size;
    d->io0 = peer_io_now();
    if (o->cache_size)
        d->cache_kib = (int)(o->cache_size / 1024 > 1 << 30 ? 1 << 30 : o->cache_size / 1024 + 1);
    d->dir = strdup(dir);
    d->path = kv_path_join(dir, DB_FILE);
    d->wal_path = kv_path_join(dir, DB_FILE "-wal");
    if (!d->dir || !d->path || !d->wal_path) {
        s = kv_error(KV_NOMEM, NAME ": out of memory");
        goto fail;
    }
    bool exists = false;
    if ((s = kv_fs_exists(fs, d->path, &exists)) != KV_OK)
        goto fail;
    if (!exists && !o->create_if_missing) {
        s = kv_error(KV_NOT_FOUND, NAME ": %s does not exist", d->path);
        goto fail;
    }
    if ((s = conn_open(d, true, &d->writer)) != KV_OK)
        goto fail;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%llu", (unsigned long long)autockpt);
    if ((s = sq_exec(d->writer->db, sql)) != KV_OK)
        goto fail;
    /* SQLite fsyncs a directory only for rollback journals: make the names of the database and
     * its -wal file durable here. */
    if ((s = kv_fs_fsync_dir(fs, dir)) != KV_OK)
        goto fail;
    if (o->durability.kind == KV_DURABILITY_INTERVAL) {
        d->syncer = kv_syncer_start(o->durability.interval_ms, sq_sync_wal, d);
        if (!d->syncer) {
            s = kv_error_wrap(KV_IO, NAME ": starting the interval syncer");
            goto fail;
        }
    }
    *out = &d->base;
    return KV_OK;
fail:
    sq_free_parts(d);
    return s;
}

static kv_status sq_close(kv_db *db)
{
    sq_db *d = (sq_db *)db;
    kv_status s = kv_syncer_stop(d->syncer);
    if (s == KV_OK)
        s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = sq_sync_wal(d);
    sq_free_parts(d);
    return s;
}

/* Steps a bound write statement to completion and resets it; the caller holds wmu. */
static kv_status step_write(sq_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    kv_status s = rc == SQLITE_DONE ? KV_OK : sq_err(c->db, what, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s;
}

static kv_status apply_op(sq_conn *c, const kv_batch_op *op)
{
    if (op->type == KV_OP_PUT) {
        sqlite3_bind_blob(c->put, 1, op->key, (int)op->klen, SQLITE_STATIC);
        sqlite3_bind_blob64(c->put, 2, op->vlen ? (const void *)op->value : "", op->vlen,
                            SQLITE_STATIC);
        return step_write(c, c->put, "put");
    }
    sqlite3_bind_blob(c->del, 1, op->key, (int)op->klen, SQLITE_STATIC);
    return step_write(c, c->del, "delete");
}

static kv_status sq_apply(sq_db *d, const kv_batch *b, const kv_batch_op *single)
{
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s != KV_OK)
        return s;
    pthread_mutex_lock(&d->wmu);
    sq_conn *c = d->writer;
    if (single) {
        s = apply_op(c, single); /* one statement: its own transaction */
    } else {
        s = step_write(c, c->begin, "BEGIN");
        size_t n = kv_batch_count(b);
        for (size_t i = 0; i < n && s == KV_OK; i++) {
            kv_batch_op op = kv_batch_get(b, i);
            s = apply_op(c, &op);
        }
        if (s == KV_OK)
            s = step_write(c, c->commit, "COMMIT");
        if (s != KV_OK && !sqlite3_get_autocommit(c->db)) {
            char keep[1024];
            snprintf(keep, sizeof keep, "%s", kv_errmsg());
            step_write(c, c->rollback, "ROLLBACK");
            kv_error(s, "%s", keep);
        }
    }
    pthread_mutex_unlock(&d->wmu);
    return peer_poison_on(&d->poison, s);
}

static kv_status sq_put(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen)
{
    kv_batch_op op = {KV_OP_PUT, key, klen, value, vlen};
    return sq_apply((sq_db *)db, NULL, &op);
}

static kv_status sq_del(kv_db *db, const void *key, size_t klen)
{
    kv_batch_op op = {KV_OP_DELETE, key, klen, NULL, 0};
    return sq_apply((sq_db *)db, NULL, &op);
}

static kv_status sq_write(kv_db *db, const kv_batch *b)
{
    return sq_apply((sq_db *)db, b, NULL);
}

static kv_status sq_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    sq_db *d = (sq_db *)db;
    sq_conn *c;
    kv_status s = reader_get(d, &c);
    if (s != KV_OK)
        return s;
    sqlite3_bind_blob(c->get, 1, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(c->get);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(c->get, 0);
        *value = peer_dup(sqlite3_column_blob(c->get, 0), n);
        *vlen = n;
        s = *value ? KV_OK : kv_error(KV_NOMEM, NAME ": get: out of memory");
    } else {
        s = rc == SQLITE_DONE ? KV_NOT_FOUND : sq_err(c->db, "get", rc);
    }
    sqlite3_reset(c->get);
    sqlite3_clear_bindings(c->get);
    reader_put(d, c);
    return s;
}

static kv_status sq_sync(kv_db *db)
{
    sq_db *d = (sq_db *)db;
    kv_status s = peer_poison_check(&d->poison, NAME);
    if (s == KV_OK)
        s = d->syncer ? kv_syncer_status(d->syncer) : KV_OK;
    return s == KV_OK ? sq_sync_wal(d) : s;
}

/* ---- iterators: a reader connection inside a read transaction ---- */

static void it_step(sq_iter *i)
{
    int rc = sqlite3_step(i->cur);
    i->valid = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && i->status == KV_OK)
        i->status = sq_err(i->c->db, "iterator step", rc);
}

static void it_start(sq_iter *i, sqlite3_stmt *st, const void *key, size_t klen)
{
    if (i->cur)
        sqlite3_reset(i->cur);
    i->cur = st;
    if (key)
        sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_TRANSIENT);
    if (i->status != KV_OK) {
        i->valid = false;
        return;
    }
    it_step(i);
}

static void it_seek_first(kv_iter *it)
{
    sq_iter *i = (sq_iter *)it;
    it_start(i, i->c->scan_all, NULL, 0);
}

static void it_seek(kv_iter *it, const void *key, size_t klen)
{
    sq_iter *i = (sq_iter *)it;
    it_start(i, i->c->scan_from, klen ? key : "", klen);
}

static bool it_valid(const kv_iter *it)
{
    return ((const sq_iter *)it)->valid;
}

static void it_next(kv_iter *it)
{
    it_step((sq_iter *)it);
}

static const void *it_key(const kv_iter *it, size_t *klen)
{
    const sq_iter *i = (const sq_iter *)it;
    const void *k = sqlite3_column_blob(i->cur, 0);
    *klen = (size_t)sqlite3_column_bytes(i->cur, 0);
    return k ? k : "";
}

static const void *it_value(const kv_iter *it, size_t *vlen)
{
    const sq_iter *i = (const sq_iter *)it;
    const void *v = sqlite3_column_blob(i->cur, 1);
    *vlen = (size_t)sqlite3_column_bytes(i->cur, 1);
    return v ? v : "";
}

static kv_status it_status(const kv_iter *it)
{
    return ((const sq_iter *)it)->status;
}

static void it_free(kv_iter *it)
{
    sq_iter *i = (sq_iter *)it;
    sqlite3_reset(i->c->scan_all);
    sqlite3_reset(i->c->scan_from);
    sqlite3_clear_bindings(i->c->scan_from);
    sqlite3_step(i->c->commit); /* ends the read transaction */
    sqlite3_reset(i->c->commit);
    reader_put(i->d, i->c);
    free(i);
}

static const kv_iter_ops sq_iter_ops = {it_seek_first, it_seek,  it_valid,  it_next,
                                        it_key,        it_value, it_status, it_free};

static kv_status sq_iter_new(kv_db *db, kv_iter **out)
{
    sq_db *d = (sq_db *)db;
    sq_iter *i = calloc(1, sizeof *i);
    if (!i)
        return kv_error(KV_NOMEM, NAME ": iterator: out of memory");
    kv_status s = reader_get(d, &i->c);
    if (s != KV_OK) {
        free(i);
        return s;
    }
    /* BEGIN, then one read: in WAL mode the snapshot is fixed by the transaction's first read. */
    int rc = sqlite3_step(i->c->begin);
    sqlite3_reset(i->c->begin);
    if (rc == SQLITE_DONE) {
        rc = sqlite3_step(i->c->scan_all);
        sqlite3_reset(i->c->scan_all);
        rc = rc == SQLITE_ROW ? SQLITE_DONE : rc;
    }
    if (rc != SQLITE_DONE) {
        s = sq_err(i->c->db, "starting the iterator's read transaction", rc);
        if (!sqlite3_get_autocommit(i->c->db)) {
            sqlite3_step(i->c->rollback);
            sqlite3_reset(i->c->rollback);
        }
        reader_put(d, i->c);
        free(i);
        return s;
    }
    i->base.ops = &sq_iter_ops;
    i->d = d;
    *out = &i->base;
    return KV_OK;
}

/* ---- stats, check, dump ---- */

/* The integer result of a one-value query on connection c, or -1. */
static long long query_int(sq_conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static kv_status sq_stats(kv_db *db, kv_stats *out)
{
    sq_db *d = (sq_db *)db;
    peer_fill_io(out, d->io0);
    out->memory_bytes = (uint64_t)sqlite3_memory_used();
    sq_conn *c;
    kv_status s = reader_get(d, &c);
    if (s != KV_OK)
        return s;
    static const char *const q[][2] = {
        {"page_size", "PRAGMA page_size"},
        {"pages", "PRAGMA page_count"},
        {"free_pages", "PRAGMA freelist_count"},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        long long v = query_int(c, q[i][1]);
        if (v >= 0)
            kv_stats_add(out, q[i][0], (uint64_t)v);
    }
    reader_put(d, c);
    return KV_OK;
}

static kv_status sq_check(kv_db *db)
{
    sq_db *d = (sq_db *)db;
    sq_conn *c;
    kv_status s = reader_get(d, &c);
    if (s != KV_OK)
        return s;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st, NULL);
    char msg[1024] = "";
    size_t used = 0;
    bool ok = false;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(st)) != SQLITE_ROW)
            break;
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (t && !strcmp(t, "ok"))
            ok = true;
        else if (t && used < sizeof msg - 1)
            used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s", used ? "; " : "", t);
    }
    if (rc != SQLITE_DONE)
        s = sq_err(c->db, "PRAGMA integrity_check", rc);
    else if (!ok || used)
        s = kv_error(KV_CORRUPTION, NAME ": %s: integrity_check: %s", d->path, msg);
    sqlite3_finalize(st);
    reader_put(d, c);
    return s;
}

static kv_status sq_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    sq_db *d = (sq_db *)db;
    if (file || page >= 0)
        return kv_error(KV_NOTSUP, NAME ": the peer exposes no per-file or per-page dump; run "
                                        "without a file or page for its summaries");
    sq_conn *c;
    kv_status s = reader_get(d, &c);
    if (s != KV_OK)
        return s;
    fprintf(out,
            "# %s: these are SQLite's own summaries (PRAGMAs and sqlite_schema); kvlab "
            "does not parse the database file page by page\n",
            d->path);
    static const char *const q[] = {"page_size",          "page_count",   "freelist_count",
                                    "schema_version",     "user_version", "auto_vacuum",
                                    "wal_autocheckpoint", "cache_size"};
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA %s", q[i]);
        fprintf(out, "%s %lld\n", q[i], query_int(c, sql));
    }
    fprintf(out, "journal_mode wal\n## sqlite_schema (type, name, table, root page)\n");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "SELECT type, name, tbl_name, rootpage FROM sqlite_schema",
                                -1, &st, NULL);
    while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(st)) == SQLITE_ROW)
        fprintf(out, "%s %s %s %lld\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
    if (rc != SQLITE_DONE)
        s = sq_err(c->db, "reading sqlite_schema", rc);
    sqlite3_finalize(st);
    reader_put(d, c);
    if (s == KV_OK && ferror(out))
        s = kv_error(KV_IO, NAME ": dump: write error");
    return s;
}

const kv_engine kv_engine_sqlite = {
    .name = NAME,
    .description = "SQLite 3, a B-tree table (WITHOUT ROWID) in WAL mode",
    .option_help = option_help,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 1,
    .open = sq_open,
    .close = sq_close,
    .put = sq_put,
    .get = sq_get,
    .del = sq_del,
    .write = sq_write,
    .iter_new = sq_iter_new,
    .sync = sq_sync,
    .stats = sq_stats,
    .check = sq_check,
    .dump = sq_dump,
};
