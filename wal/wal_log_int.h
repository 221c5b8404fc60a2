/* wal_log_int.h: internals shared by the log's source files (not a public header). */
#ifndef KVLAB_WAL_LOG_INT_H
#define KVLAB_WAL_LOG_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "coding.h"
#include "group_commit.h"
#include "syncer.h"
#include "wal_log.h"

/* One segment file: its first LSN (name and header) and the LSN of its last record
 * (first_lsn - 1 when it holds none). */
typedef struct wal_seg {
    uint64_t first_lsn;
    uint64_t last_lsn;
    uint64_t size; /* bytes in the file (the newest: without the `none` buffer) */
} wal_seg;

struct wal_log {
    kv_fs *fs;
    char *dir;
    wal_log_options opt;
    pthread_mutex_t wmu; /* held across a group write: roll_locked may release mu while it
                            waits for a background fdatasync, and no other group (the queue's
                            leader or a fast-path committer) may write meanwhile */
    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t cv;   /* signalled when syncing drops to 0 */
    int syncing;         /* fdatasyncs running without mu on `active` (background or commit) */
    uint64_t salt;
    uint32_t salt_crc; /* wal_salt_crc(salt), set once the salt is known (open) */
    wal_seg *segs;     /* oldest first; the last is the active one */
    size_t nsegs, capsegs;
    kv_file *active;     /* the newest segment, open for writing */
    kv_buf nbuf;         /* `none` mode: bytes that belong at the end of the active file */
    kv_buf wbuf;         /* group encoding buffer */
    uint64_t next_lsn;   /* LSN of the next record */
    uint64_t write_seq;  /* bumped by every write to the active file */
    uint64_t synced_seq; /* write_seq covered by the last successful fdatasync */
    bool poisoned;
    char poison_msg[512];
    kv_group_commit *gc;
    /* Committers inside append_batch's write step: the one that finds none skips the group
     * commit queue (no queue mutex or wake-up for an uncontended writer). */
    _Atomic unsigned committers;  /* incremented on entry, decremented (mu held) once written */
    _Atomic uint64_t fast_groups; /* batches written that way (each a group of one) */
    kv_syncer *syncer;
    _Atomic uint64_t bytes; /* sum of segment sizes + buffered bytes */
    uint64_t torn_cut, truncations, rewrites, created;
};

/* ---- buffered sequential reader (wal_reader.c) ---- */

typedef struct wal_reader {
    kv_file *f;
    uint64_t size; /* file size in bytes */
    uint8_t *buf;
    size_t cap;
    uint64_t boff; /* file offset of buf[0] */
    size_t blen;   /* valid bytes in buf */
} wal_reader;

kv_status wal_reader_init(wal_reader *r, kv_file *f);
void wal_reader_free(wal_reader *r);
/* Makes bytes [off, off + n) available (fewer at the end of file): *p points at off, *avail is
 * min(n, size - off) (0 beyond the end). Errors: KV_IO. */
kv_status wal_reader_peek(wal_reader *r, uint64_t off, size_t n, const uint8_t **p, size_t *avail);

/* ---- segment scanning (wal_scan.c) ---- */

typedef enum wal_damage { WAL_DAMAGE_NONE = 0, WAL_DAMAGE_SHORT, WAL_DAMAGE_BAD } wal_damage;

typedef struct wal_scan_result {
    wal_seg_header hdr;
    uint64_t file_size;
    uint64_t end;        /* offset after the last valid record */
    uint64_t commit_end; /* offset after the last valid COMMIT (the header size when none) */
    uint64_t last_lsn;   /* LSN of the last valid record (first - 1 when none) */
    uint64_t commit_lsn; /* LSN of the last valid COMMIT (first - 1 when none) */
    uint64_t records;
    wal_damage damage;
    const char *why;    /* static reason of the damage */
    uint64_t bad_off;   /* offset of the first damaged record */
    uint64_t bad_total; /* its claimed length (0 when the header was short) */
} wal_scan_result;

/* Visits one valid record at offset off; a status other than KV_OK stops the scan. */
typedef kv_status (*wal_visit_fn)(void *ctx, uint64_t off, const wal_rec_view *v);

/* Reads the header (KV_CORRUPTION "path: offset 0: ..." when bad, or when want_salt and the salt
 * differs from salt) and every record up to the first damage, calling visit (may be NULL).
 * COMMIT records are checked: 4-byte payload equal to the records since the previous COMMIT
 * (a mismatch is damage WAL_DAMAGE_BAD). Errors: KV_CORRUPTION, KV_IO, visit's status. */
kv_status wal_scan_segment(wal_reader *r, const char *path, bool want_salt, uint64_t salt,
                           wal_visit_fn visit, void *ctx, wal_scan_result *res);

/* Whether the damage at res->bad_off looks like a power loss tore the tail of an append: a
 * 512-byte sector overlapping the damaged record is all zero from max(sector start, bad_off) to
 * its end (faultfs and real disks give back zeros for lost appended sectors). */
kv_status wal_damage_is_torn(wal_reader *r, const wal_scan_result *res, bool *torn);

/* Whether a valid record (right salt and CRC, LSN above res->last_lsn) starts anywhere after
 * res->bad_off: then the damage is in the middle. */
kv_status wal_valid_record_after(wal_reader *r, const wal_scan_result *res, uint64_t salt,
                                 bool *found);

/* ---- helpers (wal_log.c, wal_segment.c) ---- */

/* "dir/NNN.wal" (malloc'd) or NULL. */
char *wal_seg_path(const wal_log *l, uint64_t first_lsn);
/* Creates segment first_lsn (replacing segment `supersedes`, 0 for none) durably: writes "NAME.tmp"
 * = header + body (body_len bytes, read from src at offset src_off when src is not NULL),
 * fdatasyncs it, renames it to NAME, fsyncs the directory; then opens NAME for writing into *out
 * (may be NULL: closed). */
kv_status wal_seg_create(wal_log *l, uint64_t first_lsn, uint64_t supersedes, wal_reader *src,
                         uint64_t src_off, uint64_t body_len, kv_file **out);
/* Appends a segment entry. */
kv_status wal_segs_push(wal_log *l, wal_seg s);
/* Writes the `none` buffer to the active file (mu held). Poisons on failure. */
kv_status wal_flush_locked(wal_log *l);
/* Flush and fdatasync the active file when it has unsynced bytes (mu held). Poisons. */
kv_status wal_sync_locked(wal_log *l);
/* Waits until no background fdatasync runs (mu held). */
void wal_wait_syncers(wal_log *l);
/* Marks the log poisoned (keeping the current error message as the reason); returns s. */
kv_status wal_poison_locked(wal_log *l, kv_status s);
/* Recovery at open (wal_recover.c): fills l->segs, l->salt, l->next_lsn, opens l->active. */
kv_status wal_recover(wal_log *l, wal_replay_fn replay, void *ctx);

#endif
