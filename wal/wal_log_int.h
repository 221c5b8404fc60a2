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
    uint32_t seed; /* wal_seed(salt): every record's CRC starts from it */
    wal_seg *segs; /* oldest first; the last is the active one */
    size_t nsegs, capsegs;
    kv_file *active;     /* the newest segment, open for writing */
    kv_buf nbuf;         /* `none` mode: bytes that belong at the end of the active file */
    kv_buf wbuf;         /* group encoding buffer */
    uint64_t next_lsn;   /* LSN of the next record */
    uint64_t write_seq;  /* bumped by every write to the active file */
    uint64_t synced_seq; /* write_seq covered by the last successful fdatasync */
    /* Sync marks (reclog.h) of the active file: durable is the length its last successful
     * fdatasync covered, marked the largest length a mark in it names. The first write after a
     * sync that moved durable past marked starts with a mark naming durable. */
    uint64_t durable, marked;
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
    uint64_t replayed; /* bytes of the segments scanned and replayed at open */
    uint64_t rolled;   /* a read-only open: first LSN of the segment whose interrupted roll it
                          left as it found it (NEXT absent or torn), 0 for none */
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

/* A segment file read whole (reclog's scanner looks ahead to the end of the file). */
typedef struct wal_image {
    uint8_t *buf;
    uint64_t size; /* bytes */
} wal_image;

/* Reads all of f into im (freed with wal_image_free). Errors: KV_IO, KV_NOMEM. */
kv_status wal_image_read(kv_file *f, wal_image *im);
void wal_image_free(wal_image *im);

typedef struct wal_scan_result {
    wal_seg_header hdr;
    bool header_ok;      /* the header was valid (and of the log's salt when asked) */
    uint64_t file_size;  /* bytes scanned */
    uint64_t end;        /* offset after the last valid record, marks included */
    uint64_t batch_end;  /* offset after the last COMMIT, or after a mark that follows one (the
                            header's end when none): where this segment's committed log ends */
    uint64_t last_lsn;   /* LSN of the last valid record (first - 1 when none) */
    uint64_t commit_lsn; /* LSN of the last valid COMMIT (first - 1 when none) */
    uint64_t records;    /* valid records, marks not counted */
    uint64_t marks;
    uint64_t durable;    /* the largest durable length a valid mark names (0 if none) */
    bool torn;           /* [end, file_size) is a torn tail (reclog.h's damage rule) */
    const char *why;     /* when torn: what was wrong at end (static text) */
    uint64_t next_off;   /* offset of the NEXT record (0: none) */
    uint64_t successor;  /* the first LSN it names */
    bool framing_damage; /* on KV_CORRUPTION: reclog found no valid record at end (rather than a
                            valid record failing the log's own checks) */
} wal_scan_result;

/* Whether a sealed scan (status s, result res) of the segment just before the newest shows a roll
 * that a crash interrupted before its NEXT record was durable (wal_format.h): no NEXT, the
 * valid records ending at a batch boundary, and at most WAL_NEXT_SIZE bytes after them that are
 * no valid record (a torn NEXT) or none at all. The caller asks only when the newest segment
 * holds nothing but its header (nothing is appended to a new segment before the NEXT naming it
 * is durable); it then takes [res->end, file size) as the torn NEXT and completes the roll (a
 * writable open). */
bool wal_scan_roll_interrupted(kv_status s, const wal_scan_result *res);

/* Visits one valid record (marks included, type WAL_REC_MARK); a status other than KV_OK stops
 * the scan and is returned. */
typedef kv_status (*wal_visit_fn)(void *ctx, const wal_rec_view *v);

/* Scans a segment image (size bytes at data; path names it in messages): the header
 * (KV_CORRUPTION "path: offset 0: ..."; with want_salt, a salt other than salt is
 * "path: offset 16: ..."), then every record through reclog's scanner, sealed (any damage is
 * corruption: a segment made durable whole before a later one began) or not (a torn tail is cut
 * off, damage that a later sync mark vouches for is corruption). Each record is checked: a type
 * the log knows, LSNs one apart starting at the header's first LSN, a COMMIT counting the
 * records since the previous one, a NEXT after the last COMMIT naming the LSN after it, followed
 * by marks only ("path: offset X: LSN N: ..." otherwise). visit (may be NULL)
 * sees every valid record in order. Returns KV_OK (res->torn says whether a tail is to be cut),
 * KV_CORRUPTION with res describing the valid prefix (res->header_ok false for a bad header; else
 * the damage is at res->end), or visit's status. Pure: reads only [data, data + size). */
kv_status wal_scan_image(const char *path, const uint8_t *data, uint64_t size, bool sealed,
                         bool want_salt, uint64_t salt, wal_visit_fn visit, void *ctx,
                         wal_scan_result *res);

/* ---- helpers (wal_log.c, wal_segment.c) ---- */

/* "dir/NNN.wal" (malloc'd) or NULL. */
char *wal_seg_path(const wal_log *l, uint64_t first_lsn);
/* Creates segment first_lsn (replacing segment `supersedes`, 0 for none) durably: writes "NAME.tmp"
 * = header + the records of src[from, to) (valid records of this log; NULL src: none) without
 * their sync marks, then, when it copied any, a mark naming the length before it (the file
 * becomes visible by its name only once durable whole); fdatasyncs it, renames it to NAME, fsyncs
 * the directory; then opens NAME for writing into *out (may be NULL: closed). *size (may be NULL)
 * gets the new file's length. */
kv_status wal_seg_create(wal_log *l, uint64_t first_lsn, uint64_t supersedes, const uint8_t *src,
                         uint64_t from, uint64_t to, kv_file **out, uint64_t *size);
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
