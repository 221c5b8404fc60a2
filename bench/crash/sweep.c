/* The power-loss sweep (crash.h: crash_run): crash at file-system operation n on faultfs, apply
 * the power-loss policy, recover with posix, judge the state. */
#include <stdlib.h>
#include <string.h>

#include "crash_int.h"

uint64_t crash_point_seed(uint64_t seed, uint64_t n)
{
    return seed * 1000003ull + n * 0x9e3779b97f4a7c15ull;
}

/* Runs the workload with a crash at operation n (0: no crash, the counting run) and verifies
 * the recovered directory. *ops gets the operations counted. Returns KV_OK, or a harness error
 * (faultfs cannot be made or repaired; the uncrashed counting run fails). */
static kv_status one_point(crash_ctx *x, uint64_t n, crash_result *res, uint64_t *ops)
{
    const crash_config *c = x->c;
    crash_set_doing(x, "crash point (--at)", n);
    char *dir = crash_strf("%s/db", x->base);
    char *scratch = crash_strf("%s/ff", x->base);
    crash_rmtree(dir);
    crash_rmtree(scratch);
    kv_status ret = KV_OK;
    kv_fs *fs = NULL;
    if (crash_mkdir_p(dir) != 0) {
        ret = kv_error(KV_IO, "crash: cannot make %s", dir);
        goto out;
    }
    fs = kv_faultfs_new(scratch);
    if (!fs) {
        ret = kv_error_wrap(KV_IO, "crash: faultfs");
        goto out;
    }
    kv_faultfs_set_real_sync(fs, false); /* the durable record decides; saves time */
    if (n)
        kv_faultfs_set_crash_at(fs, n);
    kv_options o = x->opts;
    o.fs = fs;
    kv_db *db = NULL;
    x->crash_ns = 0;
    crash_progress p;
    memset(&p, 0, sizeof p);
    bool closed_ok = false;
    kv_status s = kv_open_engine(x->e, dir, &o, &db);
    if (s != KV_OK) {
        if (!kv_faultfs_crashed(fs)) {
            ret = kv_error_wrap(s, "crash: %s: open on faultfs failed without a crash", x->e->name);
            if (n) {
                res->other_failures++;
                crash_violation(x, res, n, "%s", kv_errmsg());
                ret = KV_OK;
            }
            goto out;
        }
    } else {
        crash_run_workload(x, db, &p);
        x->crash_ns = crash_now_ns();
        bool crashed = kv_faultfs_crashed(fs);
        if (p.failed && !crashed) {
            ret = kv_error(p.status, "crash: %s: commit %zu failed without a crash: %s: %s",
                           x->e->name, p.acked, kv_strerror(p.status), p.msg);
            if (n) {
                res->other_failures++;
                crash_violation(x, res, n, "%s", kv_errmsg());
                ret = KV_OK;
            }
            kv_close(db);
            goto out;
        }
        s = kv_close(db); /* the dead handle must free everything even though all I/O fails */
        if (!p.failed)
            x->crash_ns = crash_now_ns(); /* the crash came during kv_close */
        if (s != KV_OK && !kv_faultfs_crashed(fs)) {
            ret = kv_error_wrap(s, "crash: %s: kv_close failed without a crash", x->e->name);
            if (n) {
                res->other_failures++;
                crash_violation(x, res, n, "%s", kv_errmsg());
                ret = KV_OK;
            }
            goto out;
        }
        closed_ok = s == KV_OK && !p.failed;
    }
    *ops = kv_faultfs_ops(fs);
    s = kv_faultfs_crash(fs, c->policy, crash_point_seed(c->seed, n));
    kv_fs_destroy(fs);
    fs = NULL;
    if (s != KV_OK) {
        ret =
            kv_error_wrap(s, "crash: applying the power loss at point %llu", (unsigned long long)n);
        goto out;
    }
    /* What the mode promises (docs/design.md section 3). */
    size_t lo;
    kv_durability_kind mode = c->durability.kind;
    if (closed_ok)
        lo = x->w.ncommits; /* kv_close made everything durable */
    else if (mode == KV_DURABILITY_SYNC)
        lo = p.acked;
    else if (c->policy == KV_CRASH_KEEP && mode != KV_DURABILITY_NONE)
        lo = p.acked; /* a process crash: the kernel has every acknowledged write */
    else
        lo = p.synced; /* a completed kv_sync made everything before it durable */
    if (n)
        res->points++;
    uint64_t window_before = res->max_loss_window_us;
    bool ok = crash_verify(x, dir, p.acked, p.failed, lo, n, "point", res);
    x->crash_ns = 0;
    if (ok && mode == KV_DURABILITY_INTERVAL && c->policy != KV_CRASH_KEEP &&
        res->max_loss_window_us > window_before &&
        res->max_loss_window_us > 2000ull * c->durability.interval_ms + 1000000ull) {
        crash_violation(
            x, res, n, "interval:%u lost a commit acknowledged %llu ms before the crash",
            c->durability.interval_ms, (unsigned long long)(res->max_loss_window_us / 1000));
        ok = false;
    }
    if (!ok && c->keep_dirs) {
        char *keep = crash_strf("%s-point%llu", x->base, (unsigned long long)n);
        if (rename(dir, keep) == 0)
            crash_logf(c, "  kept the directory of point %llu: %s\n", (unsigned long long)n, keep);
        free(keep);
    }
out:
    kv_fs_destroy(fs);
    crash_rmtree(dir);
    crash_rmtree(scratch);
    free(dir);
    free(scratch);
    return ret;
}

uint64_t *crash_choose_points(uint64_t total, size_t k, uint64_t seed, size_t *count)
{
    if (k == 0 || k >= total)
        k = (size_t)total;
    uint64_t *pts = malloc((k ? k : 1) * sizeof *pts);
    uint8_t *mark = calloc((size_t)total + 1, 1);
    if (!pts || !mark) {
        free(pts);
        free(mark);
        return NULL;
    }
    if (k == total) {
        for (uint64_t i = 0; i < total; i++)
            pts[i] = i + 1;
    } else {
        uint64_t s = seed ^ 0xabcdef12345ull;
        size_t got = 0;
        while (got < k) {
            s += 0x9e3779b97f4a7c15ull;
            uint64_t z = s;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            uint64_t p = 1 + z % total;
            if (!mark[p]) {
                mark[p] = 1;
                got++;
            }
        }
        size_t j = 0;
        for (uint64_t p = 1; p <= total; p++)
            if (mark[p])
                pts[j++] = p;
    }
    free(mark);
    *count = k;
    return pts;
}

kv_status crash_run(const crash_config *c, crash_result *res)
{
    if (c->fs == CRASH_FS_FUSE)
        return crash_fuse_run(c, res);
    memset(res, 0, sizeof *res);
    crash_ctx x;
    kv_status s = crash_ctx_init(&x, c, "power");
    if (s != KV_OK)
        return s;
    uint64_t total = 0;
    x.ack_ns = calloc(x.w.ncommits, sizeof *x.ack_ns);
    if (!x.ack_ns) {
        crash_ctx_free(&x);
        return kv_error(KV_NOMEM, "crash: out of memory");
    }
    if (c->at || c->at_zero) {
        uint64_t ops = 0;
        s = one_point(&x, c->at, res, &ops);
        res->fs_ops = ops;
        crash_ctx_free(&x);
        return s;
    }
    /* The counting run: no crash, a clean close, then a power loss that must lose nothing. */
    s = one_point(&x, 0, res, &total);
    res->fs_ops = total;
    if (s != KV_OK || total == 0) {
        crash_ctx_free(&x);
        return s != KV_OK ? s : kv_error(KV_INVALID, "crash: the workload did no I/O");
    }
    size_t n = 0;
    uint64_t *pts = crash_choose_points(total, c->points, c->seed, &n);
    if (!pts) {
        crash_ctx_free(&x);
        return kv_error(KV_NOMEM, "crash: out of memory");
    }
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        uint64_t ops = 0;
        s = one_point(&x, pts[i], res, &ops);
    }
    free(pts);
    crash_ctx_free(&x);
    return s;
}
