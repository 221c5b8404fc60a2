/* wal_log.h: kvlab's segmented logical write-ahead log, usable by any engine (the `wal` engine
 * keeps its whole state in it; the LSM engine may use it as its memtable log).
 *
 * The idea is the "log" of DDIA ch. 3 and the WAL of every database: every change is appended
 * to a sequential file before it is acknowledged, and the state is rebuilt after a crash by
 * replaying the log. The mechanics follow production logs: segment files named by first LSN
 * (etcd's wal, PostgreSQL's pg_wal), a salt in every checksum (SQLite's WAL), batches closed by
 * a COMMIT record, group commit of concurrent committers (LevelDB's DBImpl::Write), a torn tail
 * cut off at open and strict detection of damage in the middle (etcd's default). Records are
 * framed by kvlab's one record log (common/reclog.h), whose sync marks tell a power loss from
 * damage; the byte layout is in wal_format.h.
 *
 * Records carry a type byte (WAL_REC_PUT, WAL_REC_DELETE, WAL_REC_CHECKPOINT: meaning is the
 * caller's) and an opaque payload of 0 to WAL_MAX_PAYLOAD bytes. Every append is a batch: its
 * records and a COMMIT record written in one write(2) call; replay yields only whole batches.
 *
 * Threading: append_batch, sync, truncate and the stats/inspection calls are thread-safe;
 * open and close are not (no other call may run). */
#ifndef KVLAB_WAL_LOG_H
#define KVLAB_WAL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs.h"
#include "kv.h"
#include "wal_format.h"

typedef struct kv_pic kv_pic; /* common/dump.h */

typedef struct wal_log wal_log;

/* A piece of a record's payload; the payload is the concatenation of a record's pieces. */
typedef struct wal_slice {
    const void *data;
    size_t len; /* bytes */
} wal_slice;

/* One record to append. type is WAL_REC_PUT, WAL_REC_DELETE or WAL_REC_CHECKPOINT (the log adds
 * the COMMIT). The payload (sum of parts[i].len) is at most WAL_MAX_PAYLOAD bytes. */
typedef struct wal_record {
    uint8_t type;
    const wal_slice *parts;
    size_t nparts;
} wal_record;

/* A record given back by replay. payload is valid only during the replay callback. */
typedef struct wal_replay_rec {
    uint8_t type;
    uint64_t lsn;
    const uint8_t *payload;
    uint32_t len;     /* bytes */
    uint64_t segment; /* first LSN of the segment holding it (names the file, for messages) */
    uint64_t offset;  /* byte offset of the record in that segment */
} wal_replay_rec;

/* Called at open once per committed batch, in LSN order: recs[0..n) are its records (n >= 1),
 * commit_lsn the LSN of its COMMIT. A status other than KV_OK stops the open with that status. */
typedef kv_status (*wal_replay_fn)(void *ctx, const wal_replay_rec *recs, size_t n,
                                   uint64_t commit_lsn);

/* Called by append_batch once the batch is written (and synced when the mode asks), before the
 * append returns, in LSN order, never two at once: the place to apply the batch to an in-memory
 * state so that its order equals the log's. It runs on whichever thread writes the group, with
 * the log's lock held (in `sync` mode after the group's fdatasync returned). */
typedef void (*wal_apply_fn)(void *ctx, uint64_t commit_lsn);

/* Called once by wal_log_open on a log that already exists, with the salt of its oldest segment
 * (the log's identity: a random 64-bit number chosen when the log was created), before any batch
 * is replayed: a caller whose own files record the salt of the log they belong to refuses a
 * foreign log here, with its own KV_CORRUPTION naming its own file, before replay could trip
 * over the mismatch in a less telling way. A status other than KV_OK stops the open with it. */
typedef kv_status (*wal_salt_fn)(void *ctx, uint64_t salt);

typedef enum wal_recovery_mode {
    /* Default, like etcd: a bad record followed by valid ones, an LSN gap between segments or a
     * bad segment header fails the open with KV_CORRUPTION naming segment and offset; nothing
     * is silently skipped. Only a torn tail of the newest segment is cut off. */
    WAL_RECOVER_STRICT = 0,
    /* Point-in-time: the log is cut at the first damage (the batch holding it and everything
     * after, later segments included, are removed durably) and the open succeeds with the
     * state before it. For an operator who accepts losing the damaged suffix. */
    WAL_RECOVER_POINT_IN_TIME,
} wal_recovery_mode;

/* The log's deliberate crash bugs for the lab (docs/lab.md), chosen by the engine option
 * bug=NAME (which kv_open refuses without kv_options.allow_bugs). WAL_BUG_NONE is the log as
 * designed; each other value switches on one marked deviation in the code. The names, in this
 * order, are wal_bug_names in wal_engine.c. */
typedef enum wal_bug {
    WAL_BUG_NONE = 0,
    WAL_BUG_NEWEST_FIRST_TRUNCATION, /* wal_truncate.c: obsolete segments unlinked newest first */
    WAL_BUG_REWRITE_IN_PLACE,        /* wal_truncate.c: a mixed segment overwritten in place */
    WAL_BUG_NO_COMMIT_RECORD,        /* wal_recover.c: records replayed without their COMMIT */
    WAL_BUG_NO_DIR_FSYNC,            /* wal_segment.c: no directory fsync after a new segment */
} wal_bug;

typedef struct wal_log_options {
    uint64_t segment_size;      /* bytes per segment before a new one is started; default
                                   64 MiB, at least 4096 (a batch larger than that still goes
                                   into one segment) */
    kv_durability durability;   /* docs/design.md section 3; default os */
    wal_recovery_mode recovery; /* default WAL_RECOVER_STRICT */
    uint64_t buffer_bytes;      /* `none` mode: user-space buffer flushed above this many
                                   bytes; default 256 KiB */
    size_t group_max_items;     /* group commit cap in batches; default 128 */
    size_t group_max_bytes;     /* group commit cap in payload bytes; default 1 MiB */
    uint64_t start_lsn;         /* LSN of the first record of a log created by open; default 1 */
    bool must_exist;            /* a directory without a segment is KV_CORRUPTION rather than a
                                   new log (the caller's own files say a log was there) */
    bool read_only;             /* recovery in memory only: nothing in the directory is created,
                                   written, truncated, renamed or deleted; appends and truncations
                                   are KV_INVALID */
    wal_salt_fn check_salt;     /* NULL: none (see wal_salt_fn) */
    void *check_salt_ctx;       /* its first argument; not owned */
    wal_bug bug;                /* default WAL_BUG_NONE */
} wal_log_options;

/* Fills the defaults above. */
void wal_log_options_init(wal_log_options *o);

/* Opens (creating when there is no segment) the log whose segments live in directory dir:
 * removes leftover "*.wal.tmp" files, checks every segment header, replays every committed
 * batch through replay(ctx, ...) (NULL: no replay), cuts a torn or uncommitted tail off the
 * newest segment and makes the cut durable (truncate + fdatasync), removes a segment
 * superseded by an interrupted truncation, starts the interval syncer in `interval:MS`. Every
 * segment but the newest was made durable whole before the next one began, so any damage in
 * one is corruption; in the newest, damage that a later sync mark vouches for is corruption and
 * anything else a torn tail (reclog.h). Every segment but the newest ends with a NEXT record
 * naming its successor (wal_format.h): a NEXT in the newest names a deleted segment
 * (KV_CORRUPTION naming it), and a roll that a crash interrupted before its NEXT was durable is
 * completed. With opts->read_only all of this happens in memory and the directory is left as it
 * is (a torn tail stays on disk, merely not replayed).
 * *out is freed with wal_log_close. fs is not owned and must outlive the log.
 * Errors: KV_INVALID (bad options), KV_CORRUPTION (message names segment and offset),
 * KV_IO, KV_NOSPACE, KV_NOMEM, or the replay callback's status. */
kv_status wal_log_open(kv_fs *fs, const char *dir, const wal_log_options *opts,
                       wal_replay_fn replay, void *ctx, wal_log **out);

/* Appends recs[0..n) (n >= 1) and a COMMIT as one write and acknowledges per the durability
 * mode: `none` after buffering, `os`/`interval` after write(2), `sync` after fdatasync (shared by
 * concurrent committers: group commit). apply(apply_ctx, commit_lsn) runs before the return (see
 * wal_apply_fn; NULL for none). *commit_lsn (may be NULL) gets the COMMIT's LSN.
 * Errors: KV_INVALID (n == 0, payload too large, bad type; nothing written), KV_POISONED (an
 * earlier write or fdatasync failed), KV_IO, KV_NOSPACE (the log is then poisoned). */
kv_status wal_log_append_batch(wal_log *l, const wal_record *recs, size_t n, wal_apply_fn apply,
                               void *apply_ctx, uint64_t *commit_lsn);

/* Makes everything appended so far durable (flush of the `none` buffer, fdatasync); KV_OK at
 * once on a read-only log. Errors: KV_POISONED, KV_IO (the log is then poisoned; never
 * retried). */
kv_status wal_log_sync(wal_log *l);

/* Removes every record with LSN <= up_to_lsn, which must be the LSN of a COMMIT (a batch end)
 * not above the last one appended: first syncs the newest segment, deletes wholly obsolete
 * segments oldest-first and fsyncs the directory, then rewrites a segment holding obsolete and
 * live records (the newest one included) as a new file named by its first live LSN: write,
 * fdatasync, rename, directory fsync, and only then unlinks the old file. A crash at any point
 * leaves a contiguous suffix of segments that loses no record above up_to_lsn (records at or below
 * it may still be replayed at the next open: a caller skips batches its checkpoint covers, by
 * commit LSN). Errors: KV_INVALID (up_to_lsn not a batch end, or above the last LSN),
 * KV_POISONED, KV_IO, KV_NOSPACE (failures after the first change poison the log). */
kv_status wal_log_truncate(wal_log *l, uint64_t up_to_lsn);

/* Marks the log poisoned (all later appends fail with KV_POISONED), for a caller whose own
 * fsync failed. reason is copied into the error message. */
void wal_log_poison(wal_log *l, const char *reason);

/* Makes everything durable, stops the syncer, closes the files and frees l (also on error). A
 * log written since its last mark ends with one: fdatasync, mark, fdatasync (reclog.h). A
 * read-only log writes nothing. NULL allowed. Errors: KV_POISONED, KV_IO. */
kv_status wal_log_close(wal_log *l);

typedef struct wal_log_stats {
    uint64_t segments;         /* segment files now */
    uint64_t bytes;            /* bytes of all segments, buffered bytes included */
    uint64_t first_lsn;        /* LSN of the oldest record kept (or the next LSN when empty) */
    uint64_t last_lsn;         /* LSN of the last record appended (first_lsn - 1 when empty) */
    uint64_t salt;             /* the log's generation */
    uint64_t groups, items;    /* group commits written and batches in them, since open */
    uint64_t torn_bytes_cut;   /* bytes cut off the tail at open */
    uint64_t replayed_bytes;   /* bytes of the segments scanned and replayed at open (headers
                                  included; what a crash or a long log costs the open) */
    uint64_t truncations;      /* wal_log_truncate calls that removed something, since open */
    uint64_t rewrites;         /* segments rewritten by truncation, since open */
    uint64_t segments_created; /* since open */
    bool poisoned;
} wal_log_stats;

/* Fills *s (cheap; takes the log's lock briefly). */
void wal_log_get_stats(wal_log *l, wal_log_stats *s);

/* Total bytes of the segments (buffered bytes included), without locking. */
uint64_t wal_log_bytes(wal_log *l);

/* Verifies the log on disk (after flushing the buffer) by scanning it again as open does: every
 * header and record CRC (older segments sealed), LSN sequence within and across segments
 * (contiguity), every segment ending at a COMMIT, COMMIT counts, one salt, each segment holding
 * exactly the LSNs and bytes the log expects (a read-only log's newest segment may go on with
 * the torn or uncommitted tail that open did not replay). Appends wait meanwhile.
 * Errors: KV_CORRUPTION naming segment and offset (a missing segment too), KV_IO, KV_NOMEM. */
kv_status wal_log_verify(wal_log *l);

/* Prints a record payload for a student (e.g. key and value of the caller's PUT encoding). */
typedef void (*wal_payload_printer)(FILE *out, uint8_t type, const uint8_t *payload, uint32_t len);

/* Prints every segment header, record (reclog framing, LSN, body) and sync mark field by field
 * with offsets to out, and what ends each segment (a torn tail, records without their COMMIT,
 * damage), only the segment named file when file is not NULL (*found tells whether it was
 * one). Bodies go through pp (NULL: a hex preview). Errors: KV_IO, KV_NOMEM, KV_CORRUPTION
 * (everything is printed first). */
kv_status wal_log_dump(wal_log *l, FILE *out, const char *file, wal_payload_printer pp,
                       bool *found);

/* Adds one node per segment under node parent of pic (common/dump.h), oldest first: its name,
 * LSN range, size, and whether it is the newest or wholly covered by a snapshot of LSNs up to
 * covered (0: none). Flushes the `none` buffer first. Errors: KV_IO. */
kv_status wal_log_picture(wal_log *l, kv_pic *pic, int parent, uint64_t covered);

#endif
