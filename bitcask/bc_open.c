/* bc_open.c: options, open (recovery then a fresh active data file named in MANIFEST), close
 * (the active file sealed in MANIFEST), read-only opens, statistics, and the engine's registry
 * entry kv_engine_bitcask. */
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "bitcask.h"
#include "lock_assert.h"

/* Start-up (bc_recover.c): the directory checked against MANIFEST and settled (writable), the
 * file table and the keydir rebuilt; *prev_active is the file MANIFEST called active, or NULL. */
kv_status bc_recover(bc_db *db, bc_file **prev_active);

static const char *const bc_option_help[] = {
    "file_size: bytes at which the active data file is rotated (default 64M; K/M/G suffixes)",
    "buffer_size: bytes of the user-space write buffer of durability none (default 1M)",
    "merge: auto (a background thread merges when a threshold is met; default) or manual (only "
    "kv_bitcask_merge merges; hint files are written by the writer that rotates)",
    "merge_fragmentation: merge when dead bytes reach this percent of immutable bytes (default "
    "40)",
    "merge_dead_bytes: merge when dead bytes in immutable files reach this many (default 512M)",
    "merge_min_files: immutable data files needed before an automatic merge (default 2)",
    "hints: use (default) or ignore (start-up scans every data file, to time the difference)",
    "read: mmap (default: gets copy records of immutable files from a mapping, with no system "
    "call) or pread",
    "startup: fast (default: batched, prefetched keydir inserts, a hint reader thread and a "
    "prefault thread; bc_startup.h) or plain (the core start-up alone, on one thread; the same "
    "keydir)",
    "bug: a deliberate crash bug for the lab (docs/lab.md; needs --allow-bugs): no_fsync or "
    "no_dir_fsync",
    NULL,
};

/* The names of bc_bug's values after BC_BUG_NONE, in order. */
static const char *const bc_bug_names[] = {"no_fsync", "no_dir_fsync", NULL};

static kv_status parse_options(bc_db *db, const kv_options *o)
{
    db->file_size = BC_DEFAULT_FILE_SIZE;
    db->buffer_size = BC_DEFAULT_BUFFER;
    db->merge_frag_pct = 40;
    db->merge_dead_bytes = (uint64_t)512 << 20;
    db->merge_min_files = 2;
    db->merge_auto = true;
    db->use_hints = true;
    db->dur = o->durability;
    kv_status s = kv_options_get_u64(o, "file_size", 256, (uint64_t)1 << 30, &db->file_size);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "buffer_size", 0, (uint64_t)1 << 30, &db->buffer_size);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "merge_fragmentation", 1, 100, &db->merge_frag_pct);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "merge_dead_bytes", 1, UINT64_MAX, &db->merge_dead_bytes);
    if (s == KV_OK)
        s = kv_options_get_u64(o, "merge_min_files", 1, 1u << 20, &db->merge_min_files);
    if (s != KV_OK)
        return s;
    const char *m = kv_options_get(o, "merge");
    if (m && strcmp(m, "auto") && strcmp(m, "manual"))
        return kv_error(KV_INVALID, "bitcask: option merge=%s (want auto or manual)", m);
    db->merge_auto = !m || !strcmp(m, "auto");
    const char *h = kv_options_get(o, "hints");
    if (h && strcmp(h, "use") && strcmp(h, "ignore"))
        return kv_error(KV_INVALID, "bitcask: option hints=%s (want use or ignore)", h);
    db->use_hints = !h || !strcmp(h, "use");
    const char *st = kv_options_get(o, "startup");
    if (st && strcmp(st, "fast") && strcmp(st, "plain"))
        return kv_error(KV_INVALID, "bitcask: option startup=%s (want fast or plain)", st);
    db->startup_fast = !st || !strcmp(st, "fast");
    const char *r = kv_options_get(o, "read");
    if (r && strcmp(r, "pread") && strcmp(r, "mmap"))
        return kv_error(KV_INVALID, "bitcask: option read=%s (want pread or mmap)", r);
    db->read_mmap = !r || !strcmp(r, "mmap");
    int bug = 0;
    s = kv_options_get_bug(o, "bitcask", bc_bug_names, &bug);
    db->bug = (bc_bug)bug;
    return s;
}

static void free_db(bc_db *db)
{
    bc_prefault_join(db);
    for (size_t i = 0; i < db->nfiles; i++)
        bc_file_unref(db->files[i]);
    free(db->files);
    bc_manifest_free(&db->man);
    bc_kd_free(&db->kd);
    bc_ix_free(&db->ix);
    kv_buf_free(&db->wbuf);
    kv_buf_free(&db->hint);
    free(db->ap);
    while (db->jobs) {
        bc_hint_job *j = db->jobs;
        db->jobs = j->next;
        bc_file_unref(j->file);
        kv_buf_free(&j->ents);
        free(j);
    }
    pthread_rwlock_destroy(&db->lock);
    pthread_mutex_destroy(&db->wmu);
    pthread_mutex_destroy(&db->merge_mu);
    pthread_mutex_destroy(&db->man_mu);
    pthread_mutex_destroy(&db->bg_mu);
    pthread_cond_destroy(&db->bg_cv);
    free(db->dir);
    free(db);
}

/* A writable open's new active file: created (header fdatasynced), its name made durable, then
 * named in MANIFEST together with the previous active file, now sealed at its length (its
 * bytes made durable first: after a process crash they may still be in the page cache only),
 * or dropped and then deleted when it holds no record. Only after that MANIFEST is durable does
 * a record go into the new file. */
static kv_status start_active(bc_db *db, bc_file *prev)
{
    kv_status s = KV_OK;
    bool drop = prev && atomic_load(&prev->size) <= BC_DATA_HDR;
    if (prev && !drop)
        s = kv_file_fdatasync(prev->f);
    bc_file *act = NULL;
    uint64_t id = atomic_fetch_add(&db->next_id, 1);
    if (s == KV_OK)
        s = bc_file_create(db, id, BC_KIND_WRITE, "data", &act);
    if (s == KV_OK)
        s = kv_fs_fsync_dir(db->fs, db->dir);
    if (s == KV_OK) {
        pthread_mutex_lock(&db->man_mu);
        bool ok = true;
        if (drop)
            bc_manifest_remove(&db->man, prev->id);
        else if (prev)
            ok = bc_manifest_set(&db->man, &(bc_man_file){.id = prev->id,
                                                          .salt = prev->salt,
                                                          .length = atomic_load(&prev->size),
                                                          .kind = prev->kind,
                                                          .state = BC_MAN_SEALED});
        ok = ok && bc_manifest_set(&db->man, &(bc_man_file){.id = act->id,
                                                            .salt = act->salt,
                                                            .length = BC_DATA_HDR,
                                                            .kind = BC_KIND_WRITE,
                                                            .state = BC_MAN_ACTIVE});
        db->man.nobsolete = 0; /* recovery deleted them, and fsynced the directory */
        s = ok ? bc_man_write_locked(db, db->next_seq - 1)
               : kv_error(KV_NOMEM, "bitcask: out of memory");
        pthread_mutex_unlock(&db->man_mu);
    }
    if (s == KV_OK && drop) {
        char *p = bc_path(db, prev->id, "data");
        s = p ? kv_fs_unlink(db->fs, p) : kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_OK)
            s = kv_fs_fsync_dir(db->fs, db->dir);
        free(p);
        if (s == KV_OK)
            bc_files_remove(db, prev);
    }
    if (s == KV_OK && !bc_files_add(db, act))
        s = kv_error(KV_NOMEM, "bitcask: out of memory");
    if (s == KV_OK) {
        db->active = act;
    } else {
        bc_file_unref(act);
        return s;
    }
    db->wbuf_off = BC_DATA_HDR;
    db->durable = BC_DATA_HDR;
    db->mark_due = false;
    return KV_OK;
}

kv_status bc_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    bc_db *db = calloc(1, sizeof *db);
    if (!db)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    pthread_rwlock_init(&db->lock, NULL);
    pthread_mutex_init(&db->wmu, NULL);
    pthread_mutex_init(&db->merge_mu, NULL);
    pthread_mutex_init(&db->man_mu, NULL);
    pthread_mutex_init(&db->bg_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    bool ix_ok = bc_ix_init(&db->ix);
    atomic_init(&db->next_id, 1);
    db->fs = fs;
    db->dir = strdup(dir);
    db->read_only = opts->read_only;
    kv_status s =
        db->dir && ix_ok ? parse_options(db, opts) : kv_error(KV_NOMEM, "bitcask: out of memory");
    if (s == KV_OK && !bc_kd_init(&db->kd, 0))
        s = kv_error(KV_NOMEM, "bitcask: out of memory");
    bc_file *prev = NULL;
    if (s == KV_OK)
        s = bc_recover(db, &prev);
    /* A read-only open stops here: no active file, no thread, nothing written. Every session
     * of a writable one appends to a fresh data file: the previous one stays as it was found
     * (its torn tail already cut), so no old byte is ever rewritten. */
    if (s == KV_OK && !db->read_only)
        s = start_active(db, prev);
    if (s == KV_OK && !db->read_only && db->dur.kind == KV_DURABILITY_SYNC) {
        db->gc = kv_group_commit_new(bc_group_fn, db, 256, (size_t)4 << 20);
        if (!db->gc)
            s = kv_error(KV_NOMEM, "bitcask: out of memory");
        else /* groups of every active committer, not alternating halves */
            kv_group_commit_set_delay(db->gc, true);
    }
    if (s == KV_OK && !db->read_only && db->dur.kind == KV_DURABILITY_INTERVAL) {
        db->syncer = kv_syncer_start(db->dur.interval_ms, bc_syncer_fn, db);
        if (!db->syncer)
            s = KV_IO;
    }
    if (s == KV_OK && !db->read_only && db->merge_auto) {
        if (pthread_create(&db->bg, NULL, bc_bg_main, db) != 0)
            s = kv_error(KV_IO, "bitcask: cannot start the merge thread");
        else
            db->bg_running = true;
    }
    if (s != KV_OK) {
        kv_syncer_stop(db->syncer);
        kv_group_commit_free(db->gc);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
        free_db(db);
        return kv_error(s, "%s", msg);
    }
    *out = &db->base;
    return KV_OK;
}

/* Seals the active file at close (wmu held, everything flushed): fdatasync, its hint file, then
 * MANIFEST naming it sealed at its length (no active file). An active file that got no record
 * is dropped from MANIFEST first, then deleted. MANIFEST forgets the obsolete files whose
 * deletion a directory fsync has made durable. */
static kv_status seal_active_locked(bc_db *db)
{
    KV_ASSERT_HELD(&db->wmu);
    bc_file *a = db->active;
    kv_status s = KV_OK;
    bool empty = db->wbuf_off <= BC_DATA_HDR;
    if (!empty) {
        s = kv_file_fdatasync(a->f);
        if (s != KV_OK)
            return bc_poison(db, s);
        /* the next open finds a hint for this file too */
        if (!db->hint_broken && db->use_hints) {
            s = bc_hint_write(db, a, "hint", &db->hint, db->hint_count, db->wbuf_off);
            if (s != KV_OK)
                return bc_poison(db, s);
        }
    }
    pthread_mutex_lock(&db->man_mu);
    /* obsolete files already deleted are forgotten, once a directory fsync made that durable */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < db->man.nobsolete && s == KV_OK; i++) {
        char *p = bc_path(db, db->man.obsolete[i], "data");
        bool ex = true;
        s = p ? kv_fs_exists(db->fs, p, &ex) : kv_error(KV_NOMEM, "bitcask: out of memory");
        free(p);
        if (ex)
            db->man.obsolete[kept++] = db->man.obsolete[i];
    }
    if (s == KV_OK && kept < db->man.nobsolete) {
        s = kv_fs_fsync_dir(db->fs, db->dir);
        if (s == KV_OK)
            db->man.nobsolete = kept;
    }
    if (s != KV_OK) {
        pthread_mutex_unlock(&db->man_mu);
        return bc_poison(db, s);
    }
    if (empty)
        bc_manifest_remove(&db->man, a->id);
    else
        bc_manifest_set(&db->man, &(bc_man_file){.id = a->id,
                                                 .salt = a->salt,
                                                 .length = db->wbuf_off,
                                                 .kind = a->kind,
                                                 .state = BC_MAN_SEALED}); /* no growth */
    s = bc_man_write_locked(db, db->next_seq - 1);
    pthread_mutex_unlock(&db->man_mu);
    if (s == KV_OK && empty) {
        char *p = bc_path(db, a->id, "data");
        s = p ? kv_fs_unlink(db->fs, p) : kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_OK)
            s = kv_fs_fsync_dir(db->fs, db->dir);
        free(p);
    }
    return s;
}

kv_status bc_close(kv_db *kdb)
{
    bc_db *db = (bc_db *)kdb;
    if (db->read_only) { /* nothing was written, nothing is */
        free_db(db);
        return KV_OK;
    }
    atomic_store(&db->closing, true);
    if (db->bg_running) {
        pthread_mutex_lock(&db->bg_mu);
        db->bg_stop = true;
        pthread_cond_broadcast(&db->bg_cv);
        pthread_mutex_unlock(&db->bg_mu);
        pthread_join(db->bg, NULL);
    }
    kv_status s = KV_OK;
    if (db->syncer) {
        kv_status t = kv_syncer_stop(db->syncer);
        if (t != KV_OK)
            s = t;
    }
    kv_group_commit_free(db->gc);
    if (s == KV_OK && atomic_load(&db->poisoned))
        s = kv_error(KV_POISONED, "bitcask: an earlier write or fsync failed");
    if (s == KV_OK) {
        pthread_mutex_lock(&db->wmu);
        s = bc_flush_locked(db);
        if (s == KV_OK)
            s = seal_active_locked(db);
        pthread_mutex_unlock(&db->wmu);
    }
    if (s == KV_OK) {
        pthread_mutex_lock(&db->merge_mu);
        bc_run_hint_jobs(db);
        pthread_mutex_unlock(&db->merge_mu);
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", kv_errmsg());
    free_db(db);
    if (s != KV_OK)
        kv_error(s, "%s", msg);
    return s;
}

kv_status bc_stats(kv_db *kdb, kv_stats *out)
{
    bc_db *db = (bc_db *)kdb;
    uint64_t live = 0, total = 0, hints = 0, files;
    pthread_rwlock_rdlock(&db->lock);
    uint64_t keys = db->kd.count;
    uint64_t kd_bytes = bc_kd_bytes(&db->kd);
    uint64_t resizes = db->kd.resizes, spares = db->kd.spares_used;
    pthread_mutex_lock(&db->ix.mu);
    uint64_t ix_bytes = bc_ix_bytes(&db->ix);
    uint64_t ix_merges = db->ix.merges, ix_builds = db->ix.builds;
    pthread_mutex_unlock(&db->ix.mu);
    files = db->nfiles;
    for (size_t i = 0; i < db->nfiles; i++) {
        bc_file *f = db->files[i];
        live += atomic_load(&f->live_bytes);
        total += atomic_load(&f->size) - BC_DATA_HDR;
        hints += atomic_load(&f->has_hint);
    }
    pthread_rwlock_unlock(&db->lock);
    pthread_mutex_lock(&db->wmu);
    uint64_t bufs = db->wbuf.cap + db->hint.cap + db->capap * sizeof(bc_applied);
    pthread_mutex_unlock(&db->wmu);
    out->live_keys = keys;
    out->memory_bytes = kd_bytes + ix_bytes + bufs;
    kv_stats_add(out, "keydir_bytes", kd_bytes);
    kv_stats_add(out, "keydir_bytes_per_key", keys ? kd_bytes / keys : 0);
    kv_stats_add(out, "keydir_resizes", resizes);
    kv_stats_add(out, "keydir_spares_used", spares);
    kv_stats_add(out, "index_bytes", ix_bytes);
    kv_stats_add(out, "keydir_index_bytes_per_key", keys ? (kd_bytes + ix_bytes) / keys : 0);
    kv_stats_add(out, "index_merges", ix_merges);
    kv_stats_add(out, "index_builds", ix_builds);
    kv_stats_add(out, "merges", atomic_load(&db->merges));
    kv_stats_add(out, "merge_failed", atomic_load(&db->merge_failed));
    kv_stats_add(out, "merge_bytes_written", atomic_load(&db->merge_bytes_written));
    kv_stats_add(out, "data_files", files);
    kv_stats_add(out, "hint_files", hints);
    kv_stats_add(out, "live_bytes", live);
    kv_stats_add(out, "dead_bytes", total > live ? total - live : 0);
    kv_stats_add(out, "startup_hint_loads", atomic_load(&db->hint_loads));
    kv_stats_add(out, "startup_data_scans", atomic_load(&db->data_scans));
    kv_stats_add(out, "recovery_log_bytes", atomic_load(&db->data_scan_bytes));
    kv_stats_add(out, "startup_hint_rejects", atomic_load(&db->hint_rejects));
    kv_stats_add(out, "startup_prefault_tables", db->startup_prefault_tables);
    kv_stats_add(out, "startup_prefault_bytes", db->startup_prefault_bytes);
    kv_stats_add(out, "startup_hint_reader_files", db->startup_hint_reader_files);
    if (db->gc) {
        unsigned long long g = 0, it = 0;
        kv_group_commit_counts(db->gc, &g, &it);
        kv_stats_add(out, "group_commits", g);
        kv_stats_add(out, "group_commit_items", it);
    }
    return KV_OK;
}

kv_status kv_bitcask_merge(kv_db *kdb)
{
    if (!kdb || kdb->engine != &kv_engine_bitcask)
        return kv_error(KV_INVALID, "kv_bitcask_merge: not a bitcask handle");
    if (((bc_db *)kdb)->read_only)
        return kv_error(KV_INVALID, "kv_bitcask_merge: the handle was opened read-only");
    return bc_merge_run((bc_db *)kdb);
}

const kv_engine kv_engine_bitcask = {
    .name = "bitcask",
    .description = "Bitcask: append-only data files, an in-memory hash keydir, hint files and "
                   "a crash-safe merge",
    .option_help = bc_option_help,
    .limits = {.max_key = KV_MAX_KEY, .max_value = KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 2,
    .read_only = true,
    .open = bc_open,
    .close = bc_close,
    .put = bc_put,
    .get = bc_get,
    .del = bc_del,
    .write = bc_write,
    .iter_new = bc_iter_new,
    .sync = bc_sync,
    .stats = bc_stats,
    .check = bc_check,
    .dump = bc_dump,
    .picture = bc_picture,
    .compact = kv_bitcask_merge,
};
