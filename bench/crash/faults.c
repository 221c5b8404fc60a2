/* I/O errors (crash.h: crash_faults_run), injected with kv_faultfs_fail():
 *  A. EIO on fdatasync in sync mode: that commit fails with KV_IO, every later write with
 *     KV_POISONED (never retry an fsync: PostgreSQL's 2018 lesson); after a power loss the
 *     reopen recovers every acknowledged commit.
 *  B. ENOSPC in the middle of a write: KV_NOSPACE, no corruption; when space returns the
 *     commit can be retried (or the handle is poisoned) and a reopen recovers.
 *  C. EIO on reads: kv_open and kv_get return KV_IO or correct data, never wrong data, never
 *     KV_CORRUPTION, and never "repair" (truncate) a log because a read failed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crash_int.h"

typedef struct fx {
    crash_ctx *x;
    crash_result *res;
    char *dir, *scratch;
    kv_fs *fs;
    kv_db *db;
    kv_batch *b;
    uint64_t id; /* scenario number, as the "point" of violations */
} fx;

static bool fx_open(fx *f, kv_durability_kind mode, bool faulty)
{
    kv_options o = f->x->opts;
    o.durability.kind = mode;
    o.fs = NULL;
    if (faulty) {
        crash_rmtree(f->scratch);
        f->fs = kv_faultfs_new(f->scratch);
        if (!f->fs)
            return false;
        kv_faultfs_set_real_sync(f->fs, false);
        o.fs = f->fs;
    }
    kv_status s = kv_open_engine(f->x->e, f->dir, &o, &f->db);
    if (s != KV_OK) {
        f->db = NULL;
        return false;
    }
    return true;
}

static void fx_close(fx *f)
{
    kv_close(f->db);
    f->db = NULL;
    kv_fs_destroy(f->fs);
    f->fs = NULL;
}

static void fx_fresh(fx *f)
{
    crash_rmtree(f->dir);
    crash_mkdir_p(f->dir);
}

/* Commits [from, to) must all succeed (setup). */
static bool fx_apply(fx *f, size_t from, size_t to)
{
    for (size_t i = from; i < to && i < f->x->w.ncommits; i++) {
        kv_status s = crash_workload_apply(f->db, &f->x->w, i, f->b);
        if (s != KV_OK) {
            crash_violation(f->x, f->res, f->id, "setup commit %zu failed: %s: %s", i,
                            kv_strerror(s), kv_errmsg());
            return false;
        }
    }
    return true;
}

/* A scenario's start: logs it, opens a fresh database on faultfs in mode and commits the first
 * quarter of the workload (which must all succeed). Stores that count in *setup. False (the
 * violation counted, the database closed) when the open or a setup commit fails. */
static bool fx_begin(fx *f, const char *what, kv_durability_kind mode, size_t *setup)
{
    f->res->points++;
    crash_logf(f->x->c, "  scenario %s\n", what);
    fx_fresh(f);
    if (!fx_open(f, mode, true)) {
        crash_violation(f->x, f->res, f->id, "%s: open on faultfs: %s", what, kv_errmsg());
        fx_close(f);
        return false;
    }
    *setup = f->x->w.ncommits / 4;
    if (!fx_apply(f, 0, *setup)) {
        fx_close(f);
        return false;
    }
    return true;
}

/* Commits from `from` on, at most 50, until one fails. Returns the first failure (KV_OK when
 * none did) and stores the end of the acknowledged commits in *acked. */
static kv_status fx_commit_until_error(fx *f, size_t from, size_t *acked)
{
    *acked = from;
    for (size_t i = from; i < f->x->w.ncommits && i < from + 50; i++) {
        kv_status s = crash_workload_apply(f->db, &f->x->w, i, f->b);
        if (s != KV_OK)
            return s;
        *acked = i + 1;
    }
    return KV_OK;
}

static kv_durability_kind pick_mode(const kv_engine *e)
{
    if (e->durability_mask & KV_DURABILITY_BIT(KV_DURABILITY_SYNC))
        return KV_DURABILITY_SYNC;
    return KV_DURABILITY_OS;
}

/* The other kinds of write after a poisoning failure must all be refused. */
static void expect_poisoned(fx *f, const char *what)
{
    char key[16];
    size_t kl = crash_key(0, key);
    uint8_t val[16] = {0};
    kv_status s1 = kv_put(f->db, key, kl, val, sizeof val);
    kv_status s2 = kv_delete(f->db, key, kl);
    kv_batch_clear(f->b);
    kv_batch_put(f->b, key, kl, val, sizeof val);
    kv_status s3 = kv_write(f->db, f->b);
    kv_status s4 = kv_sync(f->db);
    if (s1 != KV_POISONED || s2 != KV_POISONED || s3 != KV_POISONED ||
        (s4 != KV_POISONED && s4 != KV_IO))
        crash_violation(f->x, f->res, f->id,
                        "%s: later writes must be refused with KV_POISONED: put %s, delete %s, "
                        "write %s, sync %s",
                        what, kv_strerror(s1), kv_strerror(s2), kv_strerror(s3), kv_strerror(s4));
}

/* A. fdatasync fails with EIO. */
static void scenario_fsync_eio(fx *f)
{
    const char *what = "A (EIO on fdatasync, sync mode)";
    size_t setup, acked;
    if (!fx_begin(f, what, KV_DURABILITY_SYNC, &setup))
        return;
    kv_faultfs_fail(f->fs, KV_FAULT_SYNC, 1, EIO, false);
    kv_status first = fx_commit_until_error(f, setup, &acked);
    if (first == KV_OK) {
        crash_violation(f->x, f->res, f->id,
                        "%s: %zu commits in sync mode after arming EIO on the next fdatasync "
                        "all succeeded: sync mode does not fdatasync",
                        what, acked - setup);
        fx_close(f);
        return;
    }
    /* KV_POISONED when a background thread's fdatasync took the error first */
    if (first != KV_IO && first != KV_POISONED)
        crash_violation(f->x, f->res, f->id,
                        "%s: the commit whose fdatasync failed returned %s, "
                        "want KV_IO",
                        what, kv_strerror(first));
    expect_poisoned(f, what);
    kv_close(f->db);
    f->db = NULL;
    kv_status s = kv_faultfs_crash(f->fs, KV_CRASH_LOSE, f->x->c->seed);
    kv_fs_destroy(f->fs);
    f->fs = NULL;
    if (s != KV_OK) {
        crash_violation(f->x, f->res, f->id, "%s: faultfs power loss failed: %s", what,
                        kv_errmsg());
        return;
    }
    crash_verify(f->x, f->dir, acked, true, acked, f->id, "A: reopen", f->res);
}

/* B. ENOSPC in the middle of a write. */
static void scenario_enospc(fx *f)
{
    kv_durability_kind mode = pick_mode(f->x->e);
    const char *what = mode == KV_DURABILITY_SYNC ? "B (ENOSPC in a write, sync mode)"
                                                  : "B (ENOSPC in a write, os mode)";
    size_t setup, acked, n = f->x->w.ncommits;
    if (!fx_begin(f, what, mode, &setup))
        return;
    kv_faultfs_fail(f->fs, KV_FAULT_WRITE, 1 + f->x->c->seed % 3, ENOSPC, true);
    kv_status first = fx_commit_until_error(f, setup, &acked);
    if (first == KV_OK) {
        crash_logf(f->x->c, "  %s: no write failed within %zu commits (buffered); skipped\n", what,
                   acked - setup);
        fx_close(f);
        return;
    }
    /* KV_POISONED when a background thread's write took the error first */
    if (first != KV_NOSPACE && first != KV_POISONED)
        crash_violation(f->x, f->res, f->id,
                        "%s: the commit whose write hit ENOSPC returned %s, "
                        "want KV_NOSPACE",
                        what, kv_strerror(first));
    /* The disk stays full: a sync-mode commit cannot succeed now. */
    if (acked < n && mode == KV_DURABILITY_SYNC) {
        kv_status s = crash_workload_apply(f->db, &f->x->w, acked, f->b);
        if (s == KV_OK) {
            crash_violation(f->x, f->res, f->id,
                            "%s: a sync commit succeeded while every write fails", what);
            acked++;
        }
    }
    /* Space returns: retrying the failed commit either works or the handle stays refused. */
    kv_faultfs_clear_faults(f->fs);
    bool inflight = true;
    for (size_t i = acked; i < n && i < acked + 3;) {
        kv_status s = crash_workload_apply(f->db, &f->x->w, i, f->b);
        if (s != KV_OK) {
            if (s != KV_POISONED && s != KV_NOSPACE && s != KV_IO)
                crash_violation(f->x, f->res, f->id, "%s: retry after space returned gave %s", what,
                                kv_strerror(s));
            break;
        }
        acked = ++i;
    }
    kv_status cs = kv_close(f->db);
    f->db = NULL;
    kv_fs_destroy(f->fs);
    f->fs = NULL;
    (void)cs;
    crash_verify(f->x, f->dir, acked, inflight, acked, f->id, "B: reopen", f->res);
}

/* Checks every key of db against the state after `applied` commits: each kv_get returns the
 * right value, KV_NOT_FOUND for an absent key, or KV_IO. */
static void check_reads(fx *f, size_t applied, const char *what)
{
    crash_state want;
    if (crash_state_init(&want, &f->x->w) != KV_OK)
        return;
    for (size_t i = 0; i < applied; i++)
        for (uint32_t j = 0; j < f->x->w.commits[i].n; j++) {
            const cw_op *op = &f->x->w.ops[f->x->w.commits[i].first + j];
            want.ver[op->key] = op->version;
        }
    size_t ios = 0;
    for (uint32_t k = 0; k < f->x->w.keys; k++) {
        char key[16];
        size_t kl = crash_key(k, key);
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(f->db, key, kl, &v, &vl);
        uint64_t got = s == KV_OK ? crash_value_verify(&f->x->w, k, v, vl) : 0;
        if (s == KV_OK)
            kv_free(v);
        bool ok = (s == KV_IO) || (s == KV_OK && got && got == want.ver[k]) ||
                  (s == KV_NOT_FOUND && want.ver[k] == 0);
        ios += s == KV_IO;
        if (!ok) {
            crash_violation(f->x, f->res, f->id,
                            "%s: kv_get(k%07u) with failing reads gave %s (version %llu, want "
                            "%llu): want the value or KV_IO",
                            what, k, kv_strerror(s), (unsigned long long)got,
                            (unsigned long long)want.ver[k]);
            break;
        }
    }
    crash_logf(f->x->c, "  %s: %zu of %u reads returned KV_IO\n", what, ios, f->x->w.keys);
    crash_state_free(&want);
}

/* C. EIO on reads, during open and after it. */
static void scenario_read_eio(fx *f)
{
    const char *what = "C (EIO on read)";
    f->res->points++;
    crash_logf(f->x->c, "  scenario %s\n", what);
    kv_durability_kind mode = pick_mode(f->x->e);
    size_t n = f->x->w.ncommits;
    fx_fresh(f);
    if (!fx_open(f, mode, false)) {
        crash_violation(f->x, f->res, f->id, "%s: open: %s", what, kv_errmsg());
        return;
    }
    bool ok = fx_apply(f, 0, n);
    fx_close(f);
    if (!ok)
        return;
    /* C1: the k-th read during recovery fails once: open fails with KV_IO or recovers all. */
    for (uint64_t k = 1; k <= 6; k++) {
        crash_rmtree(f->scratch);
        f->fs = kv_faultfs_new(f->scratch);
        if (!f->fs)
            return;
        kv_faultfs_fail(f->fs, KV_FAULT_READ, k, EIO, k > 3);
        kv_options o = f->x->opts;
        o.durability.kind = mode;
        o.fs = f->fs;
        kv_status s = kv_open_engine(f->x->e, f->dir, &o, &f->db);
        if (s != KV_OK) {
            f->db = NULL;
            if (s != KV_IO)
                crash_violation(f->x, f->res, f->id,
                                "%s: open with read %llu failing gave %s (%s), want KV_IO", what,
                                (unsigned long long)k, kv_strerror(s), kv_errmsg());
        } else {
            char w2[64];
            snprintf(w2, sizeof w2, "C1 (read %llu fails during open)", (unsigned long long)k);
            check_reads(f, n, w2);
        }
        fx_close(f);
        /* Nothing may have been "repaired" away because a read failed. */
        crash_verify(f->x, f->dir, n, false, n, f->id, "C1: reopen after failed reads", f->res);
    }
    /* C2: every read fails after a clean open. */
    if (!fx_open(f, mode, true)) {
        crash_violation(f->x, f->res, f->id, "%s: open on faultfs: %s", what, kv_errmsg());
        fx_close(f);
        return;
    }
    kv_faultfs_fail(f->fs, KV_FAULT_READ, 1, EIO, true);
    check_reads(f, n, "C2 (all reads fail after open)");
    fx_close(f);
    crash_verify(f->x, f->dir, n, false, n, f->id, "C2: reopen", f->res);
}

kv_status crash_faults_run(const crash_config *c, crash_result *res)
{
    memset(res, 0, sizeof *res);
    crash_ctx x;
    kv_status s = crash_ctx_init(&x, c, "faults");
    if (s != KV_OK && s != KV_NOTSUP)
        return s;
    if (s == KV_NOTSUP) { /* the configured mode does not matter here: each scenario picks */
        crash_config c2 = *c;
        const kv_engine *e = c->engine_vt ? c->engine_vt : crash_find_engine(c->engine);
        c2.durability.kind = e ? pick_mode(e) : KV_DURABILITY_OS;
        if (c2.durability.kind == c->durability.kind)
            return s;
        return crash_faults_run(&c2, res);
    }
    fx f = {.x = &x, .res = res};
    f.dir = crash_strf("%s/db", x.base);
    f.scratch = crash_strf("%s/ff", x.base);
    f.b = kv_batch_new();
    if (!f.b) {
        s = kv_error(KV_NOMEM, "crash: out of memory");
    } else {
        crash_set_doing(&x, "--faults scenario", 1);
        if (x.e->durability_mask & KV_DURABILITY_BIT(KV_DURABILITY_SYNC)) {
            f.id = 1;
            scenario_fsync_eio(&f);
        } else {
            crash_logf(c, "  scenario A skipped: %s has no sync mode\n", x.e->name);
        }
        f.id = 2;
        scenario_enospc(&f);
        f.id = 3;
        scenario_read_eio(&f);
    }
    kv_batch_free(f.b);
    free(f.dir);
    free(f.scratch);
    crash_ctx_free(&x);
    return s;
}
