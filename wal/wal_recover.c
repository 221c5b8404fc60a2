/* wal_recover.c: opening a log directory: leftover cleanup, replay of committed batches in LSN
 * order, cutting a torn or uncommitted tail (made durable), strict detection of damage (or a
 * point-in-time cut), and completion of an interrupted truncation. A read-only open does the
 * same reading and changes nothing.
 *
 * Which damage is a torn tail is reclog's rule (common/reclog.h), applied per segment: every
 * segment but the newest was fdatasynced whole before the next one was created (roll_locked,
 * wal_seg_create), so it is scanned sealed and any damage in it is corruption; in the newest,
 * damage that a later sync mark vouches for is corruption, anything else a torn tail.
 *
 * The one exception is the NEXT record that ends every segment but the newest (wal_format.h): a
 * roll writes it only once the new segment is durable, so a power loss may leave it absent or
 * torn (its 24 bytes at most, after the last batch). Such a segment is accepted (the new one
 * holds only its header: nothing is appended to it before NEXT is durable) and a writable open
 * completes the roll: directory fsync, cut of the torn bytes, NEXT, fdatasync. A NEXT in the
 * newest segment names a successor that is missing, which no crash leaves: the newest segment
 * was deleted, and the open fails naming it (point-in-time: the NEXT is cut off). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "wal_log_int.h"

typedef struct pend_rec {
    uint8_t type;
    uint64_t lsn;
    size_t off; /* into the arena */
    uint32_t len;
    uint64_t file_off;
} pend_rec;

typedef struct replay_ctx {
    wal_replay_fn fn;
    void *ctx;
    uint64_t seg;
    kv_buf arena;
    pend_rec *pend;
    size_t npend, cappend;
    wal_replay_rec *out;
    size_t capout;
    wal_bug bug;
} replay_ctx;

static kv_status deliver(replay_ctx *c, uint64_t commit_lsn)
{
    if (c->npend > c->capout) {
        wal_replay_rec *n = realloc(c->out, c->npend * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "wal replay: out of memory");
        c->out = n;
        c->capout = c->npend;
    }
    for (size_t i = 0; i < c->npend; i++)
        c->out[i] =
            (wal_replay_rec){c->pend[i].type,
                             c->pend[i].lsn,
                             c->arena.data ? c->arena.data + c->pend[i].off : (const uint8_t *)"",
                             c->pend[i].len,
                             c->seg,
                             c->pend[i].file_off};
    kv_status s = c->fn ? c->fn(c->ctx, c->out, c->npend, commit_lsn) : KV_OK;
    c->npend = 0;
    c->arena.len = 0;
    return s;
}

/* Collects a batch's records until its COMMIT, then delivers them; marks are skipped. */
static kv_status visit(void *ctx, const wal_rec_view *v)
{
    replay_ctx *c = ctx;
    if (v->type == WAL_REC_MARK || v->type == WAL_REC_NEXT)
        return KV_OK;
    if (v->type == WAL_REC_COMMIT)
        return deliver(c, v->lsn);
    if (c->npend == c->cappend) {
        size_t cap = c->cappend ? c->cappend * 2 : 64;
        pend_rec *n = realloc(c->pend, cap * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "wal replay: out of memory");
        c->pend = n;
        c->cappend = cap;
    }
    size_t at = c->arena.len;
    if (!kv_buf_append(&c->arena, v->body, v->len))
        return kv_error(KV_NOMEM, "wal replay: out of memory");
    c->pend[c->npend++] = (pend_rec){v->type, v->lsn, at, v->len, v->off};
    if (c->bug == WAL_BUG_NO_COMMIT_RECORD) {
        /* BUG (docs/lab.md): each record is applied as soon as it is read. The correct code
         * holds a batch's records until its COMMIT record and drops them when the log ends
         * first: the COMMIT is what makes a batch atomic, and a power loss can keep the first
         * sectors of a batch and lose the one holding its COMMIT. */
        return deliver(c, v->lsn);
    }
    return KV_OK;
}

static uint64_t new_salt(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ ((uint64_t)getpid() << 16);
    }
    return s;
}

/* Lists segments (sorted) and, unless read-only, removes leftover "*.wal.tmp" files durably. */
static kv_status list_segments(wal_log *l, uint64_t **firsts, size_t *n)
{
    kv_namelist names;
    kv_status s = kv_fs_list(l->fs, l->dir, &names);
    if (s != KV_OK)
        return s;
    *firsts = calloc(names.count + 1, sizeof **firsts);
    *n = 0;
    if (!*firsts) {
        kv_namelist_free(&names);
        return kv_error(KV_NOMEM, "wal: out of memory");
    }
    bool removed = false;
    for (size_t i = 0; i < names.count && s == KV_OK; i++) {
        const char *nm = names.names[i];
        size_t len = strlen(nm);
        uint64_t first;
        if (wal_seg_name_parse(nm, &first)) {
            (*firsts)[(*n)++] = first;
        } else if (!l->opt.read_only && len == WAL_SEG_NAME_LEN + 4 &&
                   !strcmp(nm + WAL_SEG_NAME_LEN, ".tmp")) {
            char *p = kv_path_join(l->dir, nm);
            s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_NOMEM, "wal: out of memory");
            free(p);
            removed = true;
        }
    }
    kv_namelist_free(&names);
    if (s == KV_OK && removed)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    return s;
}

/* Unlinks segments firsts[from..n) newest first, then fsyncs the directory. */
static kv_status drop_after(wal_log *l, const uint64_t *firsts, size_t from, size_t n)
{
    kv_status s = KV_OK;
    for (size_t j = n; j > from && s == KV_OK; j--) {
        char *p = wal_seg_path(l, firsts[j - 1]);
        s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_NOMEM, "wal: out of memory");
        free(p);
    }
    if (s == KV_OK && n > from)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    return s;
}

/* Reads segment `first`'s header into *hd; *ok tells whether it decoded (a bad header is
 * reported when the segment is scanned). Errors: KV_IO, KV_NOMEM. */
static kv_status read_header(wal_log *l, uint64_t first, wal_seg_header *hd, bool *ok)
{
    *ok = false;
    char *p = wal_seg_path(l, first);
    kv_file *f = NULL;
    uint8_t h[WAL_SEG_HEADER_SIZE];
    size_t got = 0;
    kv_status s = p ? kv_fs_open(l->fs, p, KV_FS_READ, &f) : kv_error(KV_NOMEM, "out of memory");
    if (s == KV_NOT_FOUND) { /* reported when the segment is scanned */
        kv_errclear();
        s = KV_OK;
    } else if (s == KV_OK) {
        s = kv_file_pread(f, h, sizeof h, 0, &got);
    }
    if (s == KV_OK && f && !wal_seg_header_decode(h, got, hd))
        *ok = true;
    kv_file_close(f);
    free(p);
    return s;
}

/* Whether segment `second`'s header says it supersedes segment `first`. */
static kv_status is_superseded(wal_log *l, uint64_t first, uint64_t second, bool *yes)
{
    wal_seg_header hd;
    bool ok = false;
    kv_status s = read_header(l, second, &hd, &ok);
    *yes = s == KV_OK && ok && hd.supersedes == first;
    return s;
}

/* *size gets the size in bytes of segment `first` (0 when it is missing: the scan reports it).
 * Errors: KV_IO, KV_NOMEM. */
static kv_status file_size_of(wal_log *l, uint64_t first, uint64_t *size)
{
    *size = 0;
    char *p = wal_seg_path(l, first);
    kv_file *f = NULL;
    kv_status s = p ? kv_fs_open(l->fs, p, KV_FS_READ, &f) : kv_error(KV_NOMEM, "out of memory");
    if (s == KV_NOT_FOUND) {
        kv_errclear();
        s = KV_OK;
    } else if (s == KV_OK) {
        s = kv_file_size(f, size);
    }
    kv_file_close(f);
    free(p);
    return s;
}

/* Completes a roll that a crash interrupted before the NEXT record of segment g (size bytes on
 * disk, g->size of them valid) was durable: fsyncs the directory first (the successor's name
 * must be durable before anything names it; a process killed before the roll's own directory
 * fsync leaves a name that a power loss could still take away), cuts the torn bytes, appends
 * NEXT naming successor, fdatasyncs. A crash in between leaves what the roll's crash left. */
static kv_status complete_roll(wal_log *l, wal_seg *g, uint64_t size, uint64_t successor)
{
    char *path = wal_seg_path(l, g->first_lsn);
    kv_file *f = NULL;
    uint8_t rec[WAL_NEXT_SIZE];
    wal_next_encode(rec, l->seed, successor);
    kv_status s = path ? kv_fs_fsync_dir(l->fs, l->dir) : kv_error(KV_NOMEM, "wal: out of memory");
    if (s == KV_OK)
        s = kv_fs_open(l->fs, path, KV_FS_WRITE, &f);
    if (s == KV_OK && size > g->size)
        s = kv_file_truncate(f, g->size);
    if (s == KV_OK)
        s = kv_file_pwrite(f, rec, sizeof rec, g->size);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    if (s == KV_OK)
        g->size += sizeof rec;
    kv_file_close(f);
    free(path);
    return s;
}

static kv_status create_fresh(wal_log *l)
{
    l->salt = new_salt();
    l->seed = wal_seed(l->salt);
    kv_status s = wal_seg_create(l, l->opt.start_lsn, 0, NULL, 0, 0, &l->active, NULL);
    if (s == KV_OK)
        s = wal_segs_push(l,
                          (wal_seg){l->opt.start_lsn, l->opt.start_lsn - 1, WAL_SEG_HEADER_SIZE});
    l->next_lsn = l->opt.start_lsn;
    l->durable = l->marked = WAL_SEG_HEADER_SIZE;
    return s;
}

/* Reads segment `first` whole and scans it (sealed unless it is the newest), replaying its
 * batches through c. KV_CORRUPTION with res->header_ok false for a bad header (its first LSN
 * not the name's included). */
static kv_status scan_one(wal_log *l, uint64_t first, bool sealed, bool want_salt, replay_ctx *c,
                          wal_scan_result *res)
{
    memset(res, 0, sizeof *res);
    char *path = wal_seg_path(l, first);
    kv_file *f = NULL;
    wal_image im = {0};
    kv_status s =
        path ? kv_fs_open(l->fs, path, KV_FS_READ, &f) : kv_error(KV_NOMEM, "wal: out of memory");
    if (s == KV_NOT_FOUND)
        s = kv_error(KV_CORRUPTION, "%s: missing (the directory listed it a moment ago)", path);
    if (s == KV_OK)
        s = wal_image_read(f, &im);
    wal_seg_header h;
    if (s == KV_OK && !wal_seg_header_decode(im.buf, im.size, &h) && h.first_lsn != first)
        s = kv_error(KV_CORRUPTION, "%s: offset 24: first LSN %" PRIu64 " differs from the name",
                     path, h.first_lsn);
    if (s == KV_OK) {
        c->seg = first;
        c->npend = 0;
        c->arena.len = 0;
        s = wal_scan_image(path, im.buf, im.size, sealed, want_salt, l->salt, visit, c, res);
    }
    wal_image_free(&im);
    kv_file_close(f);
    free(path);
    return s;
}

kv_status wal_recover(wal_log *l, wal_replay_fn replay, void *rctx)
{
    bool ro = l->opt.read_only;
    bool strict = l->opt.recovery == WAL_RECOVER_STRICT;
    uint64_t *firsts = NULL;
    size_t n = 0;
    kv_status s = list_segments(l, &firsts, &n);
    if (s != KV_OK || n == 0) {
        free(firsts);
        if (s != KV_OK)
            return s;
        if (l->opt.must_exist) {
            char want[WAL_SEG_NAME_LEN + 1];
            wal_seg_name(want, l->opt.start_lsn);
            return kv_error(KV_CORRUPTION,
                            "%s: no log segment, though the log must go on from LSN %" PRIu64
                            " (SNAPSHOT's + 1, segment %s): its segments are missing",
                            l->dir, l->opt.start_lsn, want);
        }
        if (ro) { /* an empty log, in memory only */
            l->next_lsn = l->opt.start_lsn;
            return KV_OK;
        }
        return create_fresh(l);
    }
    replay_ctx c = {.fn = replay, .ctx = rctx, .bug = l->opt.bug};
    /* A truncation that crashed between writing the rewritten segment and unlinking the one it
     * replaces leaves both: the newer names the older in its header. */
    bool drop_first = false;
    size_t start = 0;
    if (n >= 2 && (s = is_superseded(l, firsts[0], firsts[1], &drop_first)) != KV_OK) {
        free(firsts);
        return s;
    }
    if (drop_first)
        start = 1;
    if (l->opt.check_salt) { /* the caller's check of the log's identity, before any replay */
        wal_seg_header hd;
        bool ok = false;
        s = read_header(l, firsts[start], &hd, &ok);
        if (s == KV_OK && ok)
            s = l->opt.check_salt(l->opt.check_salt_ctx, hd.salt);
        if (s != KV_OK) {
            free(firsts);
            return s;
        }
    }
    /* Per listed segment i: where its NEXT is (0: none), its file size, whether its roll was
     * interrupted (no NEXT, or a torn one, though a later segment exists). */
    uint64_t *next_off = calloc(n, sizeof *next_off), *fsize = calloc(n, sizeof *fsize);
    bool *rolled = calloc(n, sizeof *rolled);
    if (!next_off || !fsize || !rolled) {
        free(next_off);
        free(fsize);
        free(rolled);
        free(firsts);
        return kv_error(KV_NOMEM, "wal: out of memory");
    }
    size_t keep = n;       /* segments [start, keep) make up the log after recovery */
    uint64_t cut_to = 0;   /* the last kept segment's new size, when it is cut */
    bool cut_last = false; /* whether it is */
    uint64_t marked = 0;   /* the largest durable length a mark in it names */
    /* A roll can have been interrupted only if the newest segment holds its header alone. */
    bool roll_window = false;
    if (n - start >= 2) {
        uint64_t sz = 0;
        s = file_size_of(l, firsts[n - 1], &sz);
        roll_window = s == KV_OK && sz == WAL_SEG_HEADER_SIZE;
    }
    for (size_t i = start; i < n && s == KV_OK; i++) {
        bool newest = i == n - 1;
        wal_scan_result res;
        s = scan_one(l, firsts[i], !newest, i > start, &c, &res);
        if (s == KV_CORRUPTION && !res.header_ok) {
            if (strict || i == start)
                break;
            s = KV_OK; /* point-in-time: the log ends before this segment */
            kv_errclear();
            keep = i;
            break;
        }
        next_off[i] = res.next_off;
        fsize[i] = res.file_size;
        if (roll_window && i == n - 2 && wal_scan_roll_interrupted(s, &res)) {
            rolled[i] = true; /* [res.end, file size) is what a crash left of its NEXT */
            l->rolled = firsts[i];
            if (s != KV_OK) {
                s = KV_OK;
                kv_errclear();
            }
        }
        bool damaged = s == KV_CORRUPTION; /* a record, at res.end */
        if (damaged && !strict) {
            s = KV_OK;
            kv_errclear();
        }
        if (s != KV_OK)
            break;
        if (i == start) {
            l->salt = res.hdr.salt;
            l->seed = wal_seed(l->salt); /* complete_roll writes records under it */
        }
        /* Classify the end of this segment. */
        const char *problem = NULL;
        uint64_t problem_off = 0;
        bool cut = damaged;
        if (!damaged && newest)
            cut = res.torn || res.batch_end < res.end; /* a torn tail, or records without COMMIT */
        else if (!damaged && res.batch_end != res.end) {
            problem = "segment ends inside a batch";
            problem_off = res.batch_end;
        }
        uint64_t last_lsn = (cut || problem) ? res.commit_lsn : res.last_lsn;
        if (!cut && !problem && i + 1 < n && firsts[i + 1] != last_lsn + 1) {
            problem = "LSN gap or overlap with the next segment";
            problem_off = res.end;
        }
        if (!damaged && !problem && !newest && !res.next_off && !rolled[i]) {
            /* A roll makes NEXT durable before it appends anything to the new segment. */
            problem = "segment ends without the NEXT record naming the next one (an older copy?)";
            problem_off = res.end;
        }
        if (problem && strict) {
            char name[WAL_SEG_NAME_LEN + 1];
            wal_seg_name(name, firsts[i]);
            if (i + 1 < n && problem_off == res.end && firsts[i + 1] > last_lsn + 1) {
                /* A hole: the segment that went on from last_lsn + 1 is the one missing. */
                char gone[WAL_SEG_NAME_LEN + 1];
                wal_seg_name(gone, last_lsn + 1);
                s = kv_error(KV_CORRUPTION,
                             "%s/%s: missing: %s (offset %" PRIu64 ") ends at LSN %" PRIu64
                             " and the next segment present starts at LSN %" PRIu64
                             ": LSN gap or overlap with the next segment",
                             l->dir, gone, name, problem_off, last_lsn, firsts[i + 1]);
            } else if (i + 1 < n && problem_off == res.end)
                s = kv_error(KV_CORRUPTION,
                             "%s/%s: offset %" PRIu64 ": %s: last LSN %" PRIu64
                             ", next segment starts at LSN %" PRIu64,
                             l->dir, name, problem_off, problem, last_lsn, firsts[i + 1]);
            else
                s = kv_error(KV_CORRUPTION, "%s/%s: offset %" PRIu64 ": %s", l->dir, name,
                             problem_off, problem);
            break;
        }
        /* Point-in-time keeps what precedes the damaged batch and drops everything after. */
        uint64_t size = (cut || problem) ? res.batch_end : res.end;
        if ((s = wal_segs_push(l, (wal_seg){firsts[i], last_lsn, size})) != KV_OK)
            break;
        l->replayed += size;
        marked = res.durable < size ? res.durable : size;
        if (cut || problem) {
            cut_last = size < res.file_size;
            cut_to = size;
            l->torn_cut = res.file_size - size;
            keep = i + 1;
            break;
        }
    }
    free(c.pend);
    free(c.out);
    kv_buf_free(&c.arena);
    size_t last = keep - 1; /* the index in firsts of the last segment kept */
    if (s == KV_OK) {
        wal_seg *a = &l->segs[l->nsegs - 1];
        if (next_off[last] && next_off[last] < a->size) {
            /* It names a successor, but none is kept. */
            char name[WAL_SEG_NAME_LEN + 1], succ[WAL_SEG_NAME_LEN + 1];
            wal_seg_name(name, firsts[last]);
            wal_seg_name(succ, a->last_lsn + 1);
            if (strict) {
                s = kv_error(KV_CORRUPTION,
                             "%s/%s: missing: %s names it as the next segment (offset %" PRIu64
                             ": NEXT), so the log went on past LSN %" PRIu64
                             ": the newest segment was deleted, records are missing",
                             l->dir, succ, name, next_off[last], a->last_lsn);
            } else { /* point-in-time: the log ends before the NEXT */
                l->torn_cut += a->size - next_off[last];
                a->size = next_off[last];
                cut_last = true;
                cut_to = a->size;
            }
        } else if (rolled[last] && fsize[last] > a->size) {
            cut_last = true; /* the torn NEXT of a roll, now the newest (point-in-time) */
            cut_to = a->size;
        }
        if (marked > a->size)
            marked = a->size;
        l->next_lsn = a->last_lsn + 1;
        l->durable = l->marked = marked;
    }
    if (s != KV_OK || ro) {
        free(next_off);
        free(fsize);
        free(rolled);
        free(firsts);
        return s;
    }
    /* Writable: carry out in the directory what was decided above, each step durable. */
    s = drop_after(l, firsts, keep, n);
    wal_seg *a = &l->segs[l->nsegs - 1];
    char *path = wal_seg_path(l, a->first_lsn);
    if (s == KV_OK)
        s = path ? kv_fs_open(l->fs, path, KV_FS_WRITE, &l->active)
                 : kv_error(KV_NOMEM, "wal: out of memory");
    free(path);
    /* A cut is made durable before anything is appended after it; then the whole file is
     * durable. Without a cut only what the last mark names is known durable (the previous
     * writer may have died before its last bytes reached the disk). */
    if (s == KV_OK && cut_last)
        s = kv_file_truncate(l->active, cut_to);
    if (s == KV_OK && cut_last)
        s = kv_file_fdatasync(l->active);
    if (s == KV_OK && cut_last)
        l->durable = a->size;
    if (s == KV_OK && drop_first) {
        char *p = wal_seg_path(l, firsts[0]);
        s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_NOMEM, "wal: out of memory");
        free(p);
        if (s == KV_OK)
            s = kv_fs_fsync_dir(l->fs, l->dir);
    }
    for (size_t i = start; i < last && s == KV_OK; i++)
        if (rolled[i])
            s = complete_roll(l, &l->segs[i - start], fsize[i], firsts[i + 1]);
    if (s == KV_OK)
        l->rolled = 0;
    free(next_off);
    free(fsize);
    free(rolled);
    free(firsts);
    return s;
}
