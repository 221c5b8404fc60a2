/* kv.c: the engine registry and the checks every call passes through (docs/design.md section 2).
 *
 * It validates arguments against the engine's limits (so an engine never sees an out-of-range
 * size and "nothing written" holds), refuses durability modes the engine cannot honour and
 * unknown options, takes the directory lock, checks and writes the directory's identity file
 * (identity.h), keeps read-only handles from writing, copies error messages into the handle, and
 * counts user bytes and commits for kv_stats. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump.h"
#include "identity.h"
#include "kv_engine.h"

/* ---- registry ---- */

static const char *names[64];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void init_names(void)
{
    size_t n = 0;
    for (size_t i = 0; kv_registry[i] && n + 1 < sizeof names / sizeof *names; i++)
        names[n++] = kv_registry[i]->name;
    names[n] = NULL;
}

const char *const *kv_engine_names(void)
{
    pthread_once(&names_once, init_names);
    return names;
}

static const kv_engine *find_engine(const char *name)
{
    for (size_t i = 0; name && kv_registry[i]; i++)
        if (!strcmp(kv_registry[i]->name, name))
            return kv_registry[i];
    return NULL;
}

bool kv_engine_exists(const char *name)
{
    return find_engine(name) != NULL;
}

kv_status kv_engine_limits(const char *engine, kv_limits *out)
{
    const kv_engine *e = find_engine(engine);
    if (!e)
        return kv_error(KV_INVALID, "unknown engine '%s'", engine ? engine : "(null)");
    *out = e->limits;
    return KV_OK;
}

unsigned kv_engine_durability_mask(const char *engine)
{
    const kv_engine *e = find_engine(engine);
    return e ? e->durability_mask : 0;
}

bool kv_engine_has_compact(const char *engine)
{
    const kv_engine *e = find_engine(engine);
    return e && e->compact;
}

bool kv_engine_has_read_only(const char *engine)
{
    const kv_engine *e = find_engine(engine);
    return e && e->read_only;
}

const char *kv_engine_description(const char *engine)
{
    const kv_engine *e = find_engine(engine);
    return e ? e->description : NULL;
}

const char *const *kv_engine_option_help(const char *engine)
{
    static const char *const none[] = {NULL};
    const kv_engine *e = find_engine(engine);
    if (!e)
        return NULL;
    return e->option_help ? e->option_help : none;
}

/* Whether name is one of the engine's declared options ("name: help" entries). */
static bool known_option(const kv_engine *e, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; e->option_help && e->option_help[i]; i++) {
        const char *h = e->option_help[i];
        if (!strncmp(h, name, n) && (h[n] == ':' || h[n] == '\0'))
            return true;
    }
    return false;
}

/* ---- errors ---- */

static kv_status rec(kv_db *db, kv_status s)
{
    if (s == KV_OK || s == KV_NOT_FOUND)
        return s;
    const char *m = kv_errmsg();
    pthread_mutex_lock(&db->err_mu);
    snprintf(db->last_error, sizeof db->last_error, "%s", m && *m ? m : kv_strerror(s));
    pthread_mutex_unlock(&db->err_mu);
    return s;
}

char *kv_last_error(kv_db *db, char *buf, size_t cap)
{
    if (!cap)
        return buf;
    pthread_mutex_lock(&db->err_mu);
    snprintf(buf, cap, "%s", db->last_error);
    pthread_mutex_unlock(&db->err_mu);
    return buf;
}

/* ---- open / close ---- */

/* fsyncs the directory that holds dir ("." for a relative name without a slash). */
static kv_status fsync_parent(kv_fs *fs, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    while (n > 0 && dir[n - 1] != '/')
        n--;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    char *parent = n == 0 ? strdup(".") : strndup(dir, n);
    if (!parent)
        return kv_error(KV_NOMEM, "kv_open: out of memory");
    kv_status s = kv_fs_fsync_dir(fs, parent);
    free(parent);
    return s;
}

/* Checks dir's KVLAB.ID against engine e. A new (empty) directory is KV_NOT_FOUND when
 * must_exist, else fine; with create its identity is written. */
static kv_status check_identity(kv_fs *fs, const char *dir, const kv_engine *e, bool create,
                                bool must_exist)
{
    kv_id_state st;
    char name[KV_ID_MAX + 1];
    uint32_t format = 0;
    kv_status s = kv_identity_read(fs, dir, &st, name, sizeof name, &format);
    if (s != KV_OK)
        return s;
    uint32_t want = e->format ? e->format : 1;
    switch (st) {
    case KV_ID_PRESENT:
        if (strcmp(name, e->name))
            return kv_error(KV_INVALID,
                            "%s holds a %s database (%s says so); engine %s cannot open it", dir,
                            name, KV_ID_FILE, e->name);
        if (format != want)
            return kv_error(KV_INVALID,
                            "%s holds a %s database in format %u; this build of %s reads format "
                            "%u",
                            dir, name, (unsigned)format, e->name, (unsigned)want);
        return KV_OK;
    case KV_ID_FOREIGN:
        return kv_error(KV_INVALID,
                        "%s is not empty and has no %s: not a kvlab database (or one made before "
                        "databases named their engine); nothing was written",
                        dir, KV_ID_FILE);
    case KV_ID_EMPTY:
    default:
        if (must_exist)
            return kv_error(KV_NOT_FOUND, "%s: no database here", dir);
        return create ? kv_identity_write(fs, dir, e->name, want) : KV_OK;
    }
}

kv_status kv_open(const char *engine, const char *dir, const kv_options *opts, kv_db **out)
{
    const kv_engine *e = find_engine(engine);
    if (!e)
        return kv_error(KV_INVALID, "unknown engine '%s'", engine ? engine : "(null)");
    return kv_open_engine(e, dir, opts, out);
}

kv_status kv_open_engine(const kv_engine *e, const char *dir, const kv_options *opts, kv_db **out)
{
    if (!e || !dir || !*dir || !out)
        return kv_error(KV_INVALID, "kv_open: missing engine, directory or output handle");
    kv_options defaults;
    kv_options_init(&defaults);
    if (!opts)
        opts = &defaults;
    if (!(e->durability_mask & KV_DURABILITY_BIT(opts->durability.kind))) {
        char buf[32];
        return kv_error(KV_NOTSUP, "engine %s cannot honour durability %s", e->name,
                        kv_durability_format(opts->durability, buf, sizeof buf));
    }
    if (opts->durability.kind == KV_DURABILITY_INTERVAL &&
        (opts->durability.interval_ms < 1 || opts->durability.interval_ms > 3600000))
        return kv_error(KV_INVALID, "durability interval %u ms out of range [1, 3600000]",
                        opts->durability.interval_ms);
    /* The deliberate bugs of the crash lab (docs/lab.md) need an explicit opt-in, checked
     * before the engine creates anything. */
    int no_bug = 0;
    kv_status bs = kv_options_get_bug(opts, e->name, NULL, &no_bug);
    if (bs != KV_OK)
        return bs;

    for (size_t i = 0; i < opts->n_extra; i++)
        if (!known_option(e, opts->extra[i].key))
            return kv_error(KV_INVALID, "engine %s has no option '%s' (see kvlab --help-engine %s)",
                            e->name, opts->extra[i].key, e->name);

    if (opts->read_only && !e->read_only)
        return kv_error(KV_NOTSUP, "engine %s has no read-only open", e->name);

    kv_fs *fs = opts->fs, *owned = NULL;
    if (!fs) {
        fs = owned = kv_fs_posix();
        if (!fs)
            return kv_error(KV_NOMEM, "kv_open: out of memory");
    }
    kv_status s;
    bool exists = false;
    bool create = opts->create_if_missing && !opts->read_only;
    char *lockpath = kv_path_join(dir, KV_LOCK_FILE);
    char *dircopy = strdup(dir);
    kv_file *lock = NULL;
    kv_db *db = NULL;
    if (!lockpath || !dircopy) {
        s = kv_error(KV_NOMEM, "kv_open: out of memory");
        goto fail;
    }
    s = kv_fs_exists(fs, dir, &exists);
    if (s != KV_OK)
        goto fail;
    if (!exists) {
        if (!create) {
            s = kv_error(KV_NOT_FOUND, "%s: no such database directory", dir);
            goto fail;
        }
        if ((s = kv_fs_mkdir(fs, dir)) != KV_OK)
            goto fail;
        /* The new directory's own entry lives in its parent: without this fsync a power loss
         * can take the whole database away, acknowledged sync writes included. */
        if ((s = fsync_parent(fs, dir)) != KV_OK)
            goto fail;
    }
    /* The identity first, before anything is written: another engine's directory, or one that
     * is no database, must not even gain a lock file. */
    if ((s = check_identity(fs, dir, e, false, opts->read_only)) != KV_OK)
        goto fail;
    if (opts->read_only) {
        if ((s = kv_fs_lock_shared(fs, lockpath, &lock)) != KV_OK) {
            if (s == KV_NOT_FOUND)
                s = kv_error(KV_CORRUPTION, "%s: missing (every kvlab database has one)", lockpath);
            goto fail;
        }
    } else if ((s = kv_fs_lock(fs, lockpath, &lock)) != KV_OK ||
               (s = check_identity(fs, dir, e, create, false)) != KV_OK) {
        /* Again under the lock: it writes a new database's identity, once. */
        goto fail;
    }
    if ((s = e->open(dir, fs, opts, &db)) != KV_OK)
        goto fail;
    db->engine = e;
    db->fs = fs;
    db->owned_fs = owned;
    db->lock = lock;
    db->dir = dircopy;
    db->read_only = opts->read_only;
    pthread_mutex_init(&db->err_mu, NULL);
    db->last_error[0] = '\0';
    atomic_store(&db->user_bytes, 0);
    atomic_store(&db->commits, 0);
    free(lockpath);
    *out = db;
    return KV_OK;
fail:
    if (lock)
        kv_file_close(lock);
    free(lockpath);
    free(dircopy);
    kv_fs_destroy(owned);
    return s;
}

kv_status kv_close(kv_db *db)
{
    if (!db)
        return KV_OK;
    kv_file *lock = db->lock;
    kv_fs *owned = db->owned_fs;
    char *dir = db->dir;
    pthread_mutex_destroy(&db->err_mu);
    kv_status s = db->engine->close(db); /* frees db */
    kv_file_close(lock);
    kv_fs_destroy(owned);
    free(dir);
    return s;
}

bool kv_db_read_only(const kv_db *db)
{
    return db->read_only;
}

const char *kv_db_engine(const kv_db *db)
{
    return db->engine->name;
}

/* ---- data calls ---- */

static kv_status check_key(const kv_db *db, const void *key, size_t klen)
{
    if (!key || klen == 0 || klen > db->engine->limits.max_key)
        return kv_error(KV_INVALID, "%s: key of %zu bytes (allowed 1 to %zu)", db->engine->name,
                        klen, db->engine->limits.max_key);
    return KV_OK;
}

static kv_status check_value(const kv_db *db, const void *value, size_t vlen)
{
    if ((uint64_t)vlen > db->engine->limits.max_value || (vlen && !value))
        return kv_error(KV_INVALID, "%s: value of %zu bytes (allowed 0 to %llu)", db->engine->name,
                        vlen, (unsigned long long)db->engine->limits.max_value);
    return KV_OK;
}

/* KV_INVALID for a write on a read-only handle. */
static kv_status check_writable(const kv_db *db)
{
    if (db->read_only)
        return kv_error(KV_INVALID, "%s: the handle was opened read-only", db->dir);
    return KV_OK;
}

static void count_commit(kv_db *db, uint64_t bytes)
{
    atomic_fetch_add_explicit(&db->user_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&db->commits, 1, memory_order_relaxed);
}

kv_status kv_put(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen)
{
    static const char empty[1] = {0};
    kv_status s = check_writable(db);
    if (s == KV_OK)
        s = check_key(db, key, klen);
    if (s == KV_OK)
        s = check_value(db, value, vlen);
    if (s != KV_OK)
        return rec(db, s);
    s = db->engine->put(db, key, klen, vlen ? value : empty, vlen);
    if (s == KV_OK)
        count_commit(db, klen + vlen);
    return rec(db, s);
}

kv_status kv_get(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen)
{
    if (!value || !vlen)
        return rec(db, kv_error(KV_INVALID, "kv_get: missing output arguments"));
    kv_status s = check_key(db, key, klen);
    if (s != KV_OK)
        return rec(db, s);
    return rec(db, db->engine->get(db, key, klen, value, vlen));
}

kv_status kv_get_into(kv_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    void *v = NULL;
    size_t n = 0;
    if (!vlen || (cap && !buf))
        return rec(db, kv_error(KV_INVALID, "kv_get_into: missing output arguments"));
    kv_status s = kv_get(db, key, klen, &v, &n);
    if (s != KV_OK)
        return s;
    memcpy(buf, v, n < cap ? n : cap);
    *vlen = n;
    free(v);
    return KV_OK;
}

void kv_free(void *p)
{
    free(p);
}

kv_status kv_delete(kv_db *db, const void *key, size_t klen)
{
    kv_status s = check_writable(db);
    if (s == KV_OK)
        s = check_key(db, key, klen);
    if (s != KV_OK)
        return rec(db, s);
    s = db->engine->del(db, key, klen);
    if (s == KV_OK)
        count_commit(db, klen);
    return rec(db, s);
}

kv_status kv_write(kv_db *db, const kv_batch *b)
{
    if (!b)
        return rec(db, kv_error(KV_INVALID, "kv_write: missing batch"));
    if (check_writable(db) != KV_OK)
        return rec(db, KV_INVALID);
    size_t n = kv_batch_count(b);
    for (size_t i = 0; i < n; i++) {
        kv_batch_op op = kv_batch_get(b, i);
        kv_status s = check_key(db, op.key, op.klen);
        if (s == KV_OK && op.type == KV_OP_PUT)
            s = check_value(db, op.value, op.vlen);
        if (s != KV_OK)
            return rec(db, kv_error_wrap(s, "batch operation %zu", i));
    }
    if (n == 0)
        return KV_OK;
    kv_status s = db->engine->write(db, b);
    if (s == KV_OK)
        count_commit(db, kv_batch_bytes(b));
    return rec(db, s);
}

kv_status kv_sync(kv_db *db)
{
    if (db->read_only)
        return KV_OK; /* a read-only handle acknowledged nothing */
    return rec(db, db->engine->sync(db));
}

/* ---- iterators ---- */

kv_status kv_iter_new(kv_db *db, kv_iter **out)
{
    if (!out)
        return rec(db, kv_error(KV_INVALID, "kv_iter_new: missing output"));
    kv_status s = db->engine->iter_new(db, out);
    if (s == KV_OK)
        (*out)->db = db;
    return rec(db, s);
}

void kv_iter_seek_first(kv_iter *it)
{
    it->ops->seek_first(it);
}

void kv_iter_seek(kv_iter *it, const void *key, size_t klen)
{
    it->ops->seek(it, key, klen);
}

bool kv_iter_valid(const kv_iter *it)
{
    return it->ops->valid(it);
}

void kv_iter_next(kv_iter *it)
{
    it->ops->next(it);
}

const void *kv_iter_key(const kv_iter *it, size_t *klen)
{
    return it->ops->key(it, klen);
}

const void *kv_iter_value(const kv_iter *it, size_t *vlen)
{
    return it->ops->value(it, vlen);
}

kv_status kv_iter_status(const kv_iter *it)
{
    kv_status s = it->ops->status(it);
    return s == KV_OK ? s : rec(it->db, s);
}

void kv_iter_free(kv_iter *it)
{
    if (it)
        it->ops->free(it);
}

/* ---- stats and inspection ---- */

/* Counts the files of dir and their bytes (one level; the lock file included). It measures with
 * stat(2) rather than through the fs layer: opening and closing a file would drop the POSIX
 * fcntl locks a peer holds on it (LMDB's lock.mdb, SQLite's -shm). */
static kv_status dir_usage(kv_fs *fs, const char *dir, uint64_t *files, uint64_t *bytes)
{
    kv_namelist l;
    kv_status s = kv_fs_list(fs, dir, &l);
    if (s != KV_OK)
        return s;
    *files = *bytes = 0;
    for (size_t i = 0; i < l.count; i++) {
        char *p = kv_path_join(dir, l.names[i]);
        struct stat st;
        if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            (*files)++;
            *bytes += (uint64_t)st.st_size;
        }
        free(p);
    }
    kv_namelist_free(&l);
    return KV_OK;
}

kv_status kv_stats_get(kv_db *db, kv_stats *out)
{
    memset(out, 0, sizeof *out);
    kv_fs_counters *c = &db->fs->counters;
    out->user_bytes_written = atomic_load(&db->user_bytes);
    out->commits = atomic_load(&db->commits);
    out->file_bytes_written = atomic_load(&c->bytes_written);
    out->file_bytes_read = atomic_load(&c->bytes_read);
    out->fsyncs = atomic_load(&c->fsyncs);
    out->fdatasyncs = atomic_load(&c->fdatasyncs);
    out->live_keys = UINT64_MAX;
    out->memory_bytes = UINT64_MAX;
    kv_status s = dir_usage(db->fs, db->dir, &out->files, &out->disk_bytes);
    if (s == KV_OK)
        s = db->engine->stats(db, out);
    return rec(db, s);
}

kv_status kv_check(kv_db *db)
{
    return rec(db, db->engine->check(db));
}

kv_status kv_compact(kv_db *db)
{
    if (!db->engine->compact)
        return rec(db, kv_error(KV_NOTSUP, "%s: no compaction step (it compacts on its own)",
                                db->engine->name));
    kv_status s = check_writable(db);
    return rec(db, s == KV_OK ? db->engine->compact(db) : s);
}

kv_status kv_dump(kv_db *db, FILE *out, const char *file, int64_t page)
{
    if (!out)
        return rec(db, kv_error(KV_INVALID, "kv_dump: missing output stream"));
    return rec(db, db->engine->dump(db, out, file, page));
}

kv_status kv_dump_picture(kv_db *db, FILE *out, kv_dump_format format)
{
    if (!out)
        return rec(db, kv_error(KV_INVALID, "kv_dump_picture: missing output stream"));
    if (format != KV_DUMP_DOT && format != KV_DUMP_TREE)
        return rec(
            db, kv_error(KV_INVALID, "kv_dump_picture: format %d is not dot or tree", (int)format));
    if (!db->engine->picture)
        return rec(db, kv_error(KV_NOTSUP,
                                "%s: no picture of its structure (dot and tree pictures are "
                                "drawn for kvlab's own engines)",
                                db->engine->name));
    kv_pic *pic = kv_pic_new("%s database", db->engine->name);
    if (!pic)
        return rec(db, kv_error(KV_NOMEM, "out of memory drawing the picture"));
    kv_status s = db->engine->picture(db, pic);
    if (s == KV_OK)
        s = kv_pic_emit(pic, out, format);
    kv_pic_free(pic);
    return rec(db, s);
}
