/* bc_int.h: the bitcask engine's internal state, shared by its source files (not public).
 *
 * Locks, always taken in this order: merge_mu (one merge or hint job at a time) -> wmu (the log
 * writer: the active file, its buffer, sequence numbers, rotation) -> man_mu (the manifest: its
 * state in memory and every rewrite of MANIFEST) -> lock (rwlock over the keydir and the file
 * table; readers share it). bg_mu (background job queue) is a leaf. */
#ifndef KVLAB_BC_INT_H
#define KVLAB_BC_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "bc_format.h"
#include "bc_index.h"
#include "bc_keydir.h"
#include "group_commit.h"
#include "kv_engine.h"
#include "syncer.h"

#define BC_DEFAULT_FILE_SIZE ((uint64_t)64 << 20)
#define BC_DEFAULT_BUFFER    ((uint64_t)1 << 20)

/* One data file. Owned by the file table while current; readers and iterators hold references.
 * When a merge replaced it (obsolete) the last reference closes it and unlinks it and its
 * hint. */
typedef struct bc_file {
    uint64_t id;
    uint32_t kind; /* BC_KIND_WRITE or BC_KIND_MERGE */
    uint64_t salt; /* from its header: the file's generation, named in MANIFEST */
    uint32_t seed; /* kv_reclog_seed(salt): the crc seed of its records */
    kv_file *f;
    _Atomic int refs;
    _Atomic uint64_t size;       /* bytes of valid records (active: flushed end; a torn tail that a
                                    read-only open left in place is not counted) */
    _Atomic uint64_t live_bytes; /* bytes of records the keydir points at */
    _Atomic bool obsolete;
    _Atomic bool has_hint;
    _Atomic bool sealed;          /* immutable: never written again (all but the active) */
    _Atomic(const uint8_t *) map; /* read=mmap: the whole file mapped, once sealed */
    _Atomic uint64_t map_len;
    _Atomic bool map_failed;
    struct bc_db *db;
} bc_file;

/* A hint file waiting to be written (the active file was rotated). */
typedef struct bc_hint_job {
    bc_file *file; /* referenced */
    kv_buf ents;
    uint64_t count;
    uint64_t data_size; /* bytes */
    struct bc_hint_job *next;
} bc_hint_job;

/* An applied operation of a commit, for the keydir (key points into the commit's input). */
typedef struct bc_applied {
    const uint8_t *key;
    size_t klen;
    bc_loc loc;
    uint32_t hash; /* bc_hash of the key */
    bool tomb;
} bc_applied;

/* The deliberate crash bugs for the lab (docs/lab.md), option bug=NAME (kv_open refuses it
 * without kv_options.allow_bugs). BC_BUG_NONE is the engine as designed; each other value
 * switches on one marked deviation. The names, in this order, are bc_bug_names (bc_open.c). */
typedef enum bc_bug {
    BC_BUG_NONE = 0,
    BC_BUG_NO_FSYNC,     /* bc_write.c: kv_sync does not fdatasync the active file */
    BC_BUG_NO_DIR_FSYNC, /* bc_manifest.c: MANIFEST renamed without a directory fsync */
} bc_bug;

typedef struct bc_db {
    kv_db base;
    kv_fs *fs;
    char *dir;

    /* options */
    bool read_only; /* kv_options.read_only: recovery in memory, nothing written */
    uint64_t file_size;
    uint64_t buffer_size;
    kv_durability dur;
    bool merge_auto;
    bool use_hints;
    bool startup_fast;       /* startup=fast (default): the accelerations of bc_startup.h */
    bool read_mmap;          /* read=mmap (default): gets copy from a mapping of immutable files */
    uint64_t merge_frag_pct; /* merge when dead bytes reach this % of immutable bytes */
    uint64_t merge_dead_bytes; /* or when dead bytes reach this many */
    uint64_t merge_min_files;  /* and at least this many immutable files exist */
    bc_bug bug;                /* BC_BUG_NONE but in the lab */

    /* keydir and file table */
    pthread_rwlock_t lock;
    bc_keydir kd;
    bc_index ix;     /* sorted key index for iterators, kept in step with kd */
    bc_file **files; /* sorted by id, active included */
    size_t nfiles, capfiles;

    /* the manifest (bc_manifest.c): what MANIFEST on disk says, kept in step with it */
    pthread_mutex_t man_mu;
    bc_manifest man;

    /* the log writer */
    pthread_mutex_t wmu;
    bc_file *active;
    uint64_t next_seq;
    _Atomic uint64_t next_id;
    kv_buf wbuf;       /* bytes not yet written, starting at file offset wbuf_off */
    uint64_t wbuf_off; /* active file end on disk */
    uint64_t durable;  /* bytes of the active file a successful fdatasync covered */
    bool mark_due;     /* the next write starts with a sync mark naming durable (reclog.h) */
    kv_buf hint;       /* hint entries of the active file */
    uint64_t hint_count;
    bool hint_broken;     /* an entry could not be recorded: no hint file for the active file */
    _Atomic bool rotated; /* a rotation queued a hint job (manual mode: the committer runs it) */
    bc_applied *ap;
    size_t nap, capap;
    _Atomic bool poisoned;
    kv_group_commit *gc;
    kv_syncer *syncer;

    /* merge and background work */
    pthread_mutex_t merge_mu;
    _Atomic uint64_t merges;
    _Atomic uint64_t merge_bytes_written;
    _Atomic uint64_t hint_loads, data_scans, hint_rejects;
    /* bytes of the data files scanned by the open (no valid hint file): bitcask's log replay */
    _Atomic uint64_t data_scan_bytes;
    /* keydir tables faulted in by a helper during start-up, and their bytes (bc_prefault.h);
     * written by the opening thread before the handle is shared */
    uint64_t startup_prefault_tables, startup_prefault_bytes;
    /* hint files read and checked by start-up's reader thread (bc_hintload.h); likewise */
    uint64_t startup_hint_reader_files;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bc_hint_job *jobs, *jobs_tail;
    bool bg_stop, bg_running;
    _Atomic bool closing;      /* kv_close started: a running merge gives up (nothing committed) */
    _Atomic bool merge_failed; /* an automatic merge failed: no more automatic merges */
    pthread_t bg;

    /* the keydir's next table, prepared by a short-lived thread (bc_kd_spare_wanted) */
    pthread_t pf;
    bool pf_started;         /* pf was created and not yet joined (under db->lock exclusive) */
    _Atomic bool pf_running; /* pf has not handed its table over yet */
    size_t pf_cap;           /* the capacity last asked for: asked once per capacity */
} bc_db;

/* ---- files (bc_files.c) ---- */
char *bc_file_name(uint64_t id, const char *ext, char *buf, size_t cap);
char *bc_path(bc_db *db, uint64_t id, const char *ext);
void bc_file_ref(bc_file *f);
void bc_file_unref(bc_file *f);
/* The file with id, referenced, or NULL. Caller holds db->lock (either mode). */
bc_file *bc_files_find(bc_db *db, uint64_t id);
/* The same without taking a reference (caller holds db->lock and uses it only meanwhile). */
bc_file *bc_files_peek(bc_db *db, uint64_t id);
/* Adds f to the table, which takes over the caller's reference. Caller holds db->lock
 * exclusively. False when out of memory (the reference stays the caller's). */
bool bc_files_add(bc_db *db, bc_file *f);
/* Removes f from the table (dropping the table's reference). Caller holds lock exclusively. */
void bc_files_remove(bc_db *db, bc_file *f);
/* The mapping of a sealed file (mapped on first use), or NULL (not sealed, mmap off, or the fs
 * cannot map: the caller then preads). */
const uint8_t *bc_file_mapped(bc_file *f, uint64_t *len);
/* Wraps an open kv_file (data file id of kind and salt, size bytes) as a bc_file with one
 * reference (the caller's). NULL when out of memory. */
bc_file *bc_file_new(bc_db *db, uint64_t id, uint32_t kind, uint64_t salt, kv_file *f,
                     uint64_t size);
/* Creates data file id (ext "data" or "mdata") with its header (a fresh random salt) and
 * fdatasyncs it; the directory is fsynced by the caller. */
kv_status bc_file_create(bc_db *db, uint64_t id, uint32_t kind, const char *ext, bc_file **out);
/* Writes a hint file for data file f (data_size bytes) (tmp, fdatasync, rename, dir fsync), ext
 * "hint" or "mhint" (merge outputs: written in place then fdatasynced; the merge fsyncs the
 * directory). */
kv_status bc_hint_write(bc_db *db, const bc_file *f, const char *ext, const kv_buf *ents,
                        uint64_t count, uint64_t data_size);
/* Poisons the handle after a failed write or fsync; returns s. */
kv_status bc_poison(bc_db *db, kv_status s);

/* ---- writes (bc_write.c) ---- */
kv_status bc_put(kv_db *kdb, const void *key, size_t klen, const void *value, size_t vlen);
kv_status bc_del(kv_db *kdb, const void *key, size_t klen);
kv_status bc_write(kv_db *kdb, const kv_batch *b);
kv_status bc_sync(kv_db *kdb);
/* Flushes the user-space buffer (wmu held). */
kv_status bc_flush_locked(bc_db *db);
/* Makes everything written so far durable: flush + fdatasync of the active file. With mark, it
 * then writes a sync mark naming that durable length and fdatasyncs again, so that the records
 * a caller is about to act on (a merge dropping what they supersede) are vouched for by a
 * durable mark (reclog.h): damage before them is then KV_CORRUPTION, never a torn tail. */
kv_status bc_sync_active(bc_db *db, bool mark);
/* Rotates the active file (wmu held). */
kv_status bc_rotate_locked(bc_db *db);
kv_status bc_group_fn(void *ctx, void *const *items, size_t n, bool sync);
kv_status bc_syncer_fn(void *ctx);
/* Runs queued hint jobs (merge_mu held). */
void bc_run_hint_jobs(bc_db *db);
/* Waits for the thread preparing the keydir's next table, if one was started (close: before
 * the keydir and db->lock go away; db->lock not held). */
void bc_prefault_join(bc_db *db);

/* ---- reads (bc_read.c) ---- */
kv_status bc_get(kv_db *kdb, const void *key, size_t klen, void **value, size_t *vlen);
kv_status bc_iter_new(kv_db *kdb, kv_iter **out);
/* Reads and verifies the record at loc of file f (referenced by the caller) for key; on OK *rec
 * is a malloc'd buffer of loc->rec_size bytes and *val points at its value (*vlen bytes). */
kv_status bc_read_record(bc_db *db, bc_file *f, const bc_loc *loc, const void *key, size_t klen,
                         uint8_t **rec, const uint8_t **val, size_t *vlen);

/* ---- open/close/stats (bc_open.c) ---- */
kv_status bc_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out);
kv_status bc_close(kv_db *kdb);
kv_status bc_stats(kv_db *kdb, kv_stats *out);

/* ---- merge (bc_merge.c) ---- */
/* Runs one merge of every immutable data file now (merge_mu taken inside). */
kv_status bc_merge_run(bc_db *db);
/* Whether the thresholds ask for a merge. */
bool bc_merge_wanted(bc_db *db);
void *bc_bg_main(void *arg);

/* ---- the manifest (bc_manifest.c) ---- */
/* Writes db->man to MANIFEST (number + 1, next id and max seq brought up to date) by atomic
 * replacement (tmp, fdatasync, rename, directory fsync). man_mu held. An error poisons the
 * handle: whether the rename happened is unknown, and recovery decides from what is on disk. */
kv_status bc_man_write_locked(bc_db *db, uint64_t max_seq);

/* What one directory holds, checked against its MANIFEST before anything in it is changed
 * (bc_plan_make): the data files MANIFEST names, opened, and what else is there. */
typedef struct bc_plan_file {
    bc_man_file m; /* MANIFEST's entry */
    char *name;    /* its data file as found: NNN.data, or NNN.mdata (a merge output MANIFEST
                      names whose rename was cut short) */
    char *hint;    /* its hint file as found (NNN.hint, or NNN.mhint), or NULL */
    kv_file *f;    /* open (read-only, or for writing when the open is writable) */
    uint64_t size; /* bytes */
} bc_plan_file;

typedef struct bc_plan {
    bc_manifest man;     /* MANIFEST (all zero when there is none) */
    bool have_man;       /* MANIFEST exists */
    bc_plan_file *files; /* one per file MANIFEST names, in id order */
    size_t nfiles;
    char **del; /* names to delete: leftovers of a cut-short rotation, open or close, outputs of
                   a merge that never committed, replaced files, orphan hints, *.tmp */
    size_t ndel;
    uint64_t max_id; /* the highest file id any name in the directory carries (0 if none) */
} bc_plan;

/* Reads dir's MANIFEST and checks the directory against it, changing nothing: every named file
 * exists with its header's id, salt and kind, a sealed one exactly as long as named, the active
 * one at least as long as its durable length (bytes); every other data file is obsolete or
 * holds no record (a file that a rotation, an open or a close created or dropped around a
 * crash). Opens the named files (for writing when writable).
 * Errors: KV_CORRUPTION naming the file (a missing, swapped, foreign, stale, shortened or
 * extended data file, an active one shorter than its durable length; a data file with records
 * MANIFEST does not name, as a stale MANIFEST leaves; a damaged MANIFEST), KV_IO, KV_NOMEM. On
 * error *p is freed. */
kv_status bc_plan_make(kv_fs *fs, const char *dir, bool writable, bc_plan *p);
/* Renames the named merge outputs into place (NNN.mdata -> NNN.data, .mhint -> .hint), deletes
 * p->del, and fsyncs the directory when anything changed. Only for a writable open. */
kv_status bc_plan_apply(kv_fs *fs, const char *dir, bc_plan *p);
/* Closes the files still in p and frees it. */
void bc_plan_free(bc_plan *p);

/* ---- start-up: the core (bc_recover.c) and its accelerations (bc_startup.h) ---- */
struct bc_startup;

/* What loading one data file's entries into the keydir keeps track of. */
typedef struct bc_load_ctx {
    bc_db *db;
    bc_file *file;           /* the data file whose entries these are */
    struct bc_startup *fast; /* the start-up accelerations, or NULL (startup=plain) */
    uint64_t max_seq;        /* the highest sequence number seen */
    kv_buf *hint;            /* scanning in a writable open: the hint entries being rebuilt */
    uint64_t hint_count;     /* entries in *hint */
    uint64_t live;           /* bytes of this file's records the keydir points at */
} bc_load_ctx;

/* Inserts one entry of c->file into the keydir unless the key has a newer record
 * (bc_kd_put_if_newer: the newest record wins), keeping the live bytes of c->file and of the
 * file whose record it replaced. Errors: KV_NOMEM (keydir unchanged). */
kv_status bc_load_insert(bc_load_ctx *c, const uint8_t *key, size_t klen, uint32_t hash,
                         const bc_loc *loc, bool tomb);
/* The live-bytes bookkeeping of bc_load_insert, for an insert the caller made itself: effect r
 * of inserting loc (tomb or not), which replaced *prev. */
void bc_load_count_live(bc_load_ctx *c, bc_kd_effect r, const bc_loc *loc, bool tomb,
                        const bc_loc *prev);

/* ---- inspection (bc_inspect.c) ---- */
kv_status bc_check(kv_db *kdb);
kv_status bc_dump(kv_db *kdb, FILE *out, const char *file, int64_t page);
/* The engine's picture (kv_dump_picture): each data file (active or sealed, live and dead
 * bytes) with its hint file, and the keydir: per data file, how many keys point into it and the
 * smallest few with their offsets. Errors: KV_IO (flushing the write buffer), KV_NOMEM. */
kv_status bc_picture(kv_db *kdb, kv_pic *pic);

#endif
