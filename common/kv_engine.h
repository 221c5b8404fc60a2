/* kv_engine.h: what an engine implements to join kvlab's registry (docs/design.md section 2).
 *
 * An engine defines one `const kv_engine kv_engine_<name>` and registers it in CMake with
 * kvlab_register_engine(<name> <library>). Its handle struct starts with a kv_db member and its
 * iterator struct with a kv_iter member:
 *
 *     typedef struct wal_db { kv_db base; ... } wal_db;
 *
 * kv.c validates arguments against the engine's limits before calling it (so an engine never
 * sees a NULL key, a key of 0 bytes or a size above its limits), takes the directory lock,
 * copies error messages into the handle, and counts user bytes and commits. The engine does the
 * rest and reports errors with kv_error() (common/status.h). */
#ifndef KVLAB_KV_ENGINE_H
#define KVLAB_KV_ENGINE_H

#include <pthread.h>

#include "fs.h"
#include "kv.h"

typedef struct kv_engine kv_engine;
typedef struct kv_pic kv_pic; /* common/dump.h */

/* The common head of every handle. kv.c fills every field after the engine's open returns. */
struct kv_db {
    const kv_engine *engine;
    kv_fs *fs;       /* the fs the engine must use for all its I/O */
    kv_fs *owned_fs; /* fs created by kv_open (destroyed at close), or NULL */
    kv_file *lock;   /* the directory lock */
    char *dir;       /* the directory, as given to kv_open */
    bool read_only;  /* opened with kv_options.read_only */
    pthread_mutex_t err_mu;
    char last_error[1024];
    _Atomic uint64_t user_bytes; /* key+value bytes accepted by put/delete/write */
    _Atomic uint64_t commits;    /* acknowledged put/delete/write calls */
};

typedef struct kv_iter_ops {
    void (*seek_first)(kv_iter *it);
    void (*seek)(kv_iter *it, const void *key, size_t klen);
    bool (*valid)(const kv_iter *it);
    void (*next)(kv_iter *it);
    const void *(*key)(const kv_iter *it, size_t *klen);
    const void *(*value)(const kv_iter *it, size_t *vlen);
    kv_status (*status)(const kv_iter *it);
    void (*free)(kv_iter *it);
} kv_iter_ops;

/* The common head of every iterator. */
struct kv_iter {
    const kv_iter_ops *ops;
    kv_db *db;
};

/* The first error an iterator met, with its message, kept so that status() can report it
 * however many calls later (kv_errmsg() is per thread and changes with every error). */
typedef struct kv_iter_error {
    kv_status status;
    char msg[512];
} kv_iter_error;

/* Records s (not KV_OK) with this thread's current message, unless an error is already kept.
 * Returns s. */
static inline kv_status kv_iter_error_set(kv_iter_error *e, kv_status s)
{
    if (e->status == KV_OK && s != KV_OK) {
        e->status = s;
        snprintf(e->msg, sizeof e->msg, "%s", kv_errmsg());
    }
    return s;
}

/* The kept status; when it is an error, its message is set again as this thread's kv_errmsg(),
 * so an engine's status() can return kv_iter_error_get(&it->err). */
static inline kv_status kv_iter_error_get(const kv_iter_error *e)
{
    return e->status == KV_OK ? KV_OK : kv_error(e->status, "%s", e->msg);
}

struct kv_engine {
    const char *name;
    const char *description;        /* one line */
    const char *const *option_help; /* "name: help" for each extra option; NULL-terminated */
    kv_limits limits;
    unsigned durability_mask; /* KV_DURABILITY_BIT of each honoured mode */
    uint32_t format;          /* on-disk format version, recorded in KVLAB.ID (0 counts as 1) */
    bool read_only;           /* open honours kv_options.read_only (see kv.h) */

    /* Opens dir (it exists, is locked and its identity checked) with fs. Allocates the handle
     * (struct beginning with kv_db, zeroed head) and stores it in *out. Unknown extra options
     * never reach here; opts->read_only only when the engine declares read_only. */
    kv_status (*open)(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out);
    /* Makes everything durable and frees the handle, also on error. */
    kv_status (*close)(kv_db *db);
    kv_status (*put)(kv_db *db, const void *key, size_t klen, const void *value, size_t vlen);
    /* On KV_OK *value is malloc'd (non-NULL, even for 0 bytes). */
    kv_status (*get)(kv_db *db, const void *key, size_t klen, void **value, size_t *vlen);
    kv_status (*del)(kv_db *db, const void *key, size_t klen);
    kv_status (*write)(kv_db *db, const kv_batch *b);
    kv_status (*iter_new)(kv_db *db, kv_iter **out);
    kv_status (*sync)(kv_db *db);
    /* Fills live_keys, memory_bytes, engine extras. kv.c fills the fs counters, files and
     * disk_bytes (by listing the directory), user bytes and commits beforehand. */
    kv_status (*stats)(kv_db *db, kv_stats *out);
    kv_status (*check)(kv_db *db);
    kv_status (*dump)(kv_db *db, FILE *out, const char *file, int64_t page);
    /* Optional (NULL: KV_NOTSUP): describes the database's structure into pic, whose root node
     * is the database (common/dump.h; kv_dump_picture prints it). No paths, times or random
     * ids in titles, so that the same contents draw the same picture. */
    kv_status (*picture)(kv_db *db, kv_pic *pic);
    /* Optional (NULL: KV_NOTSUP): the engine's space-reclaiming step, run now and finished
     * before it returns (kv.h, kv_compact). Never called on a read-only handle. */
    kv_status (*compact)(kv_db *db);
};

/* kv_open for an engine given by its vtable rather than by registry name: for engines that live
 * outside the registry (the bench's `null` engine, the crash checker's deliberately broken toy
 * engine). Same checks, lock and errors as kv_open. */
kv_status kv_open_engine(const kv_engine *e, const char *dir, const kv_options *opts, kv_db **db);

/* The directory a handle was opened on (owned by the handle; set by kv.c after open returns). */
static inline const char *kv_db_dir(const kv_db *db)
{
    return db->dir;
}

/* The registry, generated by CMake from kvlab_register_engine() calls: NULL-terminated. */
extern const kv_engine *const kv_registry[];

#endif
