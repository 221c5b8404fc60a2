/* wal_recover.c: opening a log directory: leftover cleanup, replay of committed batches in LSN
 * order, cutting a torn or uncommitted tail (made durable), strict detection of damage in the
 * middle (or a point-in-time cut), and completion of an interrupted truncation. */
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
    const char *path;
    uint64_t seg;
    kv_buf arena;
    pend_rec *pend;
    size_t npend, cappend;
    wal_replay_rec *out;
    size_t capout;
} replay_ctx;

static kv_status deliver(replay_ctx *c, uint64_t commit_lsn)
{
    if (c->npend > c->capout) {
        wal_replay_rec *n = realloc(c->out, c->npend * sizeof *n);
        if (!n)
            return kv_error(KV_IO, "wal replay: out of memory");
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

static kv_status visit(void *ctx, uint64_t off, const wal_rec_view *v)
{
    replay_ctx *c = ctx;
    if (v->type == WAL_REC_COMMIT)
        return deliver(c, v->lsn);
    if (c->npend == c->cappend) {
        size_t cap = c->cappend ? c->cappend * 2 : 64;
        pend_rec *n = realloc(c->pend, cap * sizeof *n);
        if (!n)
            return kv_error(KV_IO, "wal replay: out of memory");
        c->pend = n;
        c->cappend = cap;
    }
    size_t at = c->arena.len;
    if (!kv_buf_append(&c->arena, v->payload, v->len))
        return kv_error(KV_IO, "wal replay: out of memory");
    c->pend[c->npend++] = (pend_rec){v->type, v->lsn, at, v->len, off};
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

/* Lists segments (sorted) and removes leftover "*.wal.tmp" files durably. */
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
        return kv_error(KV_IO, "wal: out of memory");
    }
    bool removed = false;
    for (size_t i = 0; i < names.count && s == KV_OK; i++) {
        const char *nm = names.names[i];
        size_t len = strlen(nm);
        uint64_t first;
        if (wal_seg_name_parse(nm, &first)) {
            (*firsts)[(*n)++] = first;
        } else if (len == WAL_SEG_NAME_LEN + 4 && !strcmp(nm + WAL_SEG_NAME_LEN, ".tmp")) {
            char *p = kv_path_join(l->dir, nm);
            s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_IO, "wal: out of memory");
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
        s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_IO, "wal: out of memory");
        free(p);
    }
    if (s == KV_OK && n > from)
        s = kv_fs_fsync_dir(l->fs, l->dir);
    return s;
}

/* Whether segment `second`'s header says it supersedes segment `first`. */
static kv_status is_superseded(wal_log *l, uint64_t first, uint64_t second, bool *yes)
{
    *yes = false;
    char *p = wal_seg_path(l, second);
    kv_file *f = NULL;
    uint8_t h[WAL_SEG_HEADER_SIZE];
    size_t got = 0;
    kv_status s = p ? kv_fs_open(l->fs, p, KV_FS_READ, &f) : kv_error(KV_IO, "out of memory");
    if (s == KV_OK)
        s = kv_file_pread(f, h, sizeof h, 0, &got);
    wal_seg_header hd;
    if (s == KV_OK && !wal_seg_header_decode(h, got, &hd) && hd.supersedes == first)
        *yes = true;
    kv_file_close(f);
    free(p);
    return s; /* a bad header is reported when the segment is scanned */
}

static kv_status create_fresh(wal_log *l)
{
    l->salt = new_salt();
    kv_status s = wal_seg_create(l, l->opt.start_lsn, 0, NULL, 0, 0, &l->active);
    if (s == KV_OK)
        s = wal_segs_push(l,
                          (wal_seg){l->opt.start_lsn, l->opt.start_lsn - 1, WAL_SEG_HEADER_SIZE});
    l->next_lsn = l->opt.start_lsn;
    return s;
}

kv_status wal_recover(wal_log *l, wal_replay_fn replay, void *rctx)
{
    uint64_t *firsts = NULL;
    size_t n = 0;
    kv_status s = list_segments(l, &firsts, &n);
    if (s != KV_OK || n == 0) {
        free(firsts);
        return s != KV_OK ? s : create_fresh(l);
    }
    bool strict = l->opt.recovery == WAL_RECOVER_STRICT;
    replay_ctx c = {.fn = replay, .ctx = rctx};
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
    kv_file *f = NULL;
    uint64_t cut_to = 0; /* for the newest segment: its new size */
    size_t last = n - 1; /* index of the segment that becomes the active one */
    wal_seg cur = {0};
    for (size_t i = start; i < n; i++) {
        char *path = wal_seg_path(l, firsts[i]);
        if (!path) {
            s = kv_error(KV_IO, "wal: out of memory");
            break;
        }
        bool newest = i == last;
        s = kv_fs_open(l->fs, path, newest ? KV_FS_WRITE : KV_FS_READ, &f);
        wal_reader r;
        wal_scan_result res;
        if (s == KV_OK)
            s = wal_reader_init(&r, f);
        if (s != KV_OK) {
            free(path);
            break;
        }
        c.path = path;
        c.seg = firsts[i];
        c.npend = 0;
        c.arena.len = 0;
        s = wal_scan_segment(&r, path, i > start, l->salt, visit, &c, &res);
        if (s == KV_OK && res.hdr.first_lsn != firsts[i])
            s = kv_error(KV_CORRUPTION, "%s: offset 24: first LSN %llu differs from the name", path,
                         (unsigned long long)res.hdr.first_lsn);
        if (s == KV_CORRUPTION && !strict && i > start) {
            /* A bad header: point-in-time stops before this segment. */
            kv_status d = drop_after(l, firsts, i, n);
            free(path);
            wal_reader_free(&r);
            kv_file_close(f);
            f = NULL;
            char *p = wal_seg_path(l, firsts[i - 1]);
            if (d == KV_OK)
                d = p ? kv_fs_open(l->fs, p, KV_FS_WRITE, &f) : KV_IO;
            free(p);
            s = d;
            last = i - 1;
            break;
        }
        if (s != KV_OK) {
            free(path);
            wal_reader_free(&r);
            break;
        }
        if (i == start)
            l->salt = res.hdr.salt;
        /* Classify the end of this segment. */
        const char *problem = NULL;
        uint64_t problem_off = 0;
        bool cut = false;
        if (res.damage != WAL_DAMAGE_NONE) {
            /* In the newest segment the damage is a torn tail when it looks like lost sectors
             * of an append, or when no valid record follows it (a record cut short by the end
             * of the file, a checksum-failing last record). Older segments were synced before
             * the next one began: damage there is always corruption. */
            bool torn = false, after = false;
            if (newest) {
                s = wal_damage_is_torn(&r, &res, &torn);
                if (s == KV_OK && !torn)
                    s = wal_valid_record_after(&r, &res, l->salt, &after);
                if (s == KV_OK && !torn && !after)
                    torn = true;
            }
            if (s != KV_OK) {
                free(path);
                wal_reader_free(&r);
                break;
            }
            if (torn)
                cut = true;
            else {
                problem = res.why;
                problem_off = res.bad_off;
            }
        } else if (res.commit_end != res.end) {
            if (newest)
                cut = true; /* complete records whose COMMIT was lost */
            else {
                problem = "segment ends inside a batch";
                problem_off = res.commit_end;
            }
        }
        uint64_t last_lsn = (cut || problem) ? res.commit_lsn : res.last_lsn;
        if (!problem && i + 1 < n && firsts[i + 1] != last_lsn + 1) {
            problem = "LSN gap or overlap with the next segment";
            problem_off = res.end;
        }
        if (problem && strict) {
            if (i + 1 < n && problem_off == res.end)
                s = kv_error(KV_CORRUPTION,
                             "%s: offset %llu: %s: last LSN %llu, next segment starts at LSN %llu",
                             path, (unsigned long long)problem_off, problem,
                             (unsigned long long)last_lsn, (unsigned long long)firsts[i + 1]);
            else
                s = kv_error(KV_CORRUPTION, "%s: offset %llu: %s (valid records follow)", path,
                             (unsigned long long)problem_off, problem);
            free(path);
            wal_reader_free(&r);
            break;
        }
        wal_reader_free(&r);
        free(path);
        cur = (wal_seg){firsts[i], last_lsn, (cut || problem) ? res.commit_end : res.end};
        if (problem) {
            /* Point-in-time: keep what precedes the damaged batch, drop everything after. */
            cut = true;
            if (!newest) {
                kv_file_close(f);
                f = NULL;
                s = drop_after(l, firsts, i + 1, n);
                char *p = wal_seg_path(l, firsts[i]);
                if (s == KV_OK)
                    s = p ? kv_fs_open(l->fs, p, KV_FS_WRITE, &f) : KV_IO;
                free(p);
                last = i;
            }
        }
        if (s == KV_OK && cut && res.file_size > cur.size) {
            cut_to = cur.size;
            l->torn_cut = res.file_size - cur.size;
        }
        if (s == KV_OK)
            s = wal_segs_push(l, cur);
        if (s != KV_OK || i == last)
            break;
        kv_file_close(f);
        f = NULL;
    }
    free(c.pend);
    free(c.out);
    kv_buf_free(&c.arena);
    if (s == KV_OK && cut_to) {
        s = kv_file_truncate(f, cut_to);
        if (s == KV_OK)
            s = kv_file_fdatasync(f);
    }
    if (s == KV_OK && drop_first) {
        char *p = wal_seg_path(l, firsts[0]);
        s = p ? kv_fs_unlink(l->fs, p) : kv_error(KV_IO, "wal: out of memory");
        free(p);
        if (s == KV_OK)
            s = kv_fs_fsync_dir(l->fs, l->dir);
    }
    free(firsts);
    if (s != KV_OK) {
        kv_file_close(f);
        return s;
    }
    l->active = f;
    l->next_lsn = cur.last_lsn + 1;
    return KV_OK;
}
