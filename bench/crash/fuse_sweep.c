/* The power-loss sweep through crashfs (crash.h: crash_run with fs CRASH_FS_FUSE): for crash
 * point n, mount a crashfs armed to die at operation n over a fresh backing directory, run the
 * workload in a forked child whose database lives on the mount (any engine: it does its own
 * I/O, with the real posix layer), SIGKILL the child the moment the mount dies, apply the
 * power-loss policy to the backing directory, unmount, and verify the backing directory with
 * the real file system, in another child, with the same oracle as the faultfs sweep. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_int.h"
#include "crashfs.h"

/* What the workload child tells the parent, one message per event. */
enum { MSG_ACK = 1, MSG_FAILED, MSG_OPEN_FAILED, MSG_CLOSED, MSG_CLOSE_FAILED };

typedef struct fuse_msg {
    uint32_t kind;
    uint32_t commit; /* ACK: commits acknowledged so far; FAILED: the failed commit */
    uint64_t ns;     /* ACK: CLOCK_MONOTONIC time of the acknowledgement */
    int32_t status;  /* FAILED, OPEN_FAILED, CLOSE_FAILED: the kv_status */
    char msg[200];
} fuse_msg;

static void send_msg(int fd, const fuse_msg *m)
{
    const char *p = (const char *)m;
    size_t left = sizeof *m;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(6);
        p += w;
        left -= (size_t)w;
    }
}

/* The child: wait for the parent's go (one byte on go_fd; end of file: the mount failed, exit),
 * then open the database on the mount, run the workload, close; report each step. It is forked
 * before the mount, while the parent has no other thread: a child forked while crashfs's serving
 * thread holds a lock inside malloc would wait on that lock forever. Never returns. */
static void child(crash_ctx *x, const char *dir, int go_fd, int fd, int err_fd)
{
    char go;
    ssize_t g;
    while ((g = read(go_fd, &go, 1)) < 0 && errno == EINTR)
        ;
    if (g != 1)
        _exit(0);
    close(go_fd);
    /* After the power loss an engine may abort on its I/O errors (RocksDB asserts): its words
     * go to err_fd, which the parent shows only when the child failed before the crash. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
        signal(fatal[i], SIG_DFL);
    if (err_fd >= 0)
        dup2(err_fd, 2);
    fuse_msg m;
    memset(&m, 0, sizeof m);
    kv_options o = x->opts;
    o.fs = NULL;
    kv_db *db = NULL;
    kv_status s = kv_open_engine(x->e, dir, &o, &db);
    if (s != KV_OK) {
        m.kind = MSG_OPEN_FAILED;
        m.status = (int32_t)s;
        snprintf(m.msg, sizeof m.msg, "%s", kv_errmsg());
        send_msg(fd, &m);
        _exit(0);
    }
    kv_batch *b = kv_batch_new();
    if (!b)
        _exit(7);
    for (size_t i = 0; i < x->w.ncommits; i++) {
        s = crash_workload_apply(db, &x->w, i, b);
        if (s != KV_OK) {
            m.kind = MSG_FAILED;
            m.commit = (uint32_t)i;
            m.status = (int32_t)s;
            snprintf(m.msg, sizeof m.msg, "%s", kv_errmsg());
            send_msg(fd, &m);
            _exit(0); /* a dead file system: nothing left to do (the parent kills us anyway) */
        }
        m.kind = MSG_ACK;
        m.commit = (uint32_t)(i + 1);
        m.ns = crash_now_ns();
        send_msg(fd, &m);
        if (x->c->pace_us)
            usleep(x->c->pace_us);
    }
    kv_batch_free(b);
    s = kv_close(db);
    m.kind = s == KV_OK ? MSG_CLOSED : MSG_CLOSE_FAILED;
    m.status = (int32_t)s;
    snprintf(m.msg, sizeof m.msg, "%s", s == KV_OK ? "" : kv_errmsg());
    send_msg(fd, &m);
    _exit(0);
}

/* What the parent learnt of one child's run. */
typedef struct fuse_run {
    size_t acked, synced;
    bool failed, open_failed, closed, close_failed, hung, killed;
    kv_status status;
    char msg[200];
    int wait_status;
} fuse_run;

/* Reads the child's messages until it exits; SIGKILLs it as soon as the mount dies (the power
 * loss stops the machine) or after 120 s without a message (a hang). */
static void watch(crash_ctx *x, crashfs *cfs, pid_t pid, int fd, fuse_run *r)
{
    fuse_msg m;
    size_t got = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = crashfs_crash_fd(cfs), .events = POLLIN}};
        int pr = poll(p, r->killed ? 1 : 2, 120000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            r->hung = true;
            kill(pid, SIGKILL);
            break;
        }
        if (!r->killed && (p[1].revents & POLLIN)) {
            kill(pid, SIGKILL);
            r->killed = true;
        }
        if (!(p[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t n = read(fd, (char *)&m + got, sizeof m - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got < sizeof m)
            continue;
        got = 0;
        switch (m.kind) {
        case MSG_ACK:
            r->acked = m.commit;
            if (x->ack_ns && m.commit >= 1)
                x->ack_ns[m.commit - 1] = m.ns;
            if (x->w.commits[m.commit - 1].kind == CW_SYNC)
                r->synced = m.commit;
            break;
        case MSG_CLOSED:
            r->closed = true;
            break;
        default:
            r->failed = m.kind == MSG_FAILED;
            r->open_failed = m.kind == MSG_OPEN_FAILED;
            r->close_failed = m.kind == MSG_CLOSE_FAILED;
            r->status = (kv_status)m.status;
            memcpy(r->msg, m.msg, sizeof r->msg);
            r->msg[sizeof r->msg - 1] = '\0';
            break;
        }
    }
    while (waitpid(pid, &r->wait_status, 0) < 0 && errno == EINTR)
        ;
}

/* One crash point through crashfs (n = 0: the uncrashed counting run). */
static kv_status fuse_point(crash_ctx *x, uint64_t n, crash_result *res, uint64_t *ops)
{
    const crash_config *c = x->c;
    crash_set_doing(x, "crash point through crashfs (--fs fuse --at)", n);
    char *backing = crash_strf("%s/backing", x->base);
    char *dir = crash_strf("%s/backing/db", x->base);
    char *scratch = crash_strf("%s/ff", x->base);
    char *mnt = crash_strf("%s/mnt", x->base);
    char *mdir = crash_strf("%s/mnt/db", x->base);
    crash_rmtree(backing);
    crash_rmtree(scratch);
    kv_status ret = KV_OK;
    crashfs *cfs = NULL;
    int fds[2] = {-1, -1}, go[2] = {-1, -1};
    pid_t pid = -1;
    FILE *errf = NULL; /* the child's stderr */
    if (crash_mkdir_p(dir) != 0 || crash_mkdir_p(mnt) != 0) {
        ret = kv_error(KV_IO, "crash: cannot make %s: %s", dir, strerror(errno));
        goto out;
    }
    if (pipe(fds) != 0 || pipe(go) != 0) {
        ret = kv_error(KV_IO, "crash: pipe: %s", strerror(errno));
        goto out;
    }
    errf = tmpfile();
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        ret = kv_error(KV_IO, "crash: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(fds[0]);
        close(go[1]);
        child(x, mdir, go[0], fds[1], errf ? fileno(errf) : -1);
    }
    close(fds[1]);
    close(go[0]);
    fds[1] = go[0] = -1;
    if ((ret = crashfs_mount(backing, mnt, scratch, &cfs)) != KV_OK) {
        ret = kv_error_wrap(KV_IO, "crash");
        goto out; /* closing go tells the child to leave */
    }
    if (n)
        crashfs_set_crash_at(cfs, n);
    if (write(go[1], "g", 1) != 1) {
        ret = kv_error(KV_IO, "crash: pipe: %s", strerror(errno));
        goto out;
    }
    close(go[1]);
    go[1] = -1;
    fuse_run r;
    memset(&r, 0, sizeof r);
    watch(x, cfs, pid, fds[0], &r);
    pid = -1; /* reaped */
    bool crashed = crashfs_crashed(cfs);
    *ops = crashfs_ops(cfs);
    x->crash_ns = crashed ? crashfs_crash_ns(cfs) : crash_now_ns();
    const char *what = NULL;
    char why[300] = "";
    if (r.hung) {
        what = "the workload made no progress for 120 s (a hang)";
    } else if (!crashed && (r.failed || r.open_failed || r.close_failed)) {
        snprintf(why, sizeof why, "%s failed without a crash: %s: %s",
                 r.open_failed ? "open on crashfs"
                 : r.failed    ? "a commit"
                               : "kv_close",
                 kv_strerror(r.status), r.msg);
        what = why;
    } else if (!crashed && !r.closed) {
        snprintf(why, sizeof why, "the workload process died by itself (status %d)", r.wait_status);
        what = why;
    }
    if (what) {
        char last[300] = "";
        if (errf) { /* the child's last words */
            rewind(errf);
            char line[300];
            while (fgets(line, sizeof line, errf))
                if (line[0] != '\n')
                    memcpy(last, line, sizeof last);
            last[strcspn(last, "\n")] = '\0';
        }
        ret = kv_error(KV_IO, "crash: %s through crashfs: %s%s%s", x->e->name, what,
                       last[0] ? "; it said: " : "", last);
        if (n) {
            res->other_failures++;
            res->points++;
            crash_violation(x, res, n, "%s", kv_errmsg());
            ret = KV_OK;
        }
        crashfs_unmount(cfs);
        cfs = NULL;
        goto out;
    }
    kv_status s = crashfs_power_loss(cfs, c->policy, crash_point_seed(c->seed, n));
    crashfs_unmount(cfs);
    cfs = NULL;
    if (s != KV_OK) {
        ret = kv_error_wrap(s, "crash: applying the power loss through crashfs at point %llu",
                            (unsigned long long)n);
        goto out;
    }
    /* What the mode promises (docs/design.md section 3): as in the faultfs sweep. */
    size_t lo;
    kv_durability_kind mode = c->durability.kind;
    if (r.closed)
        lo = x->w.ncommits; /* kv_close made everything durable */
    else if (mode == KV_DURABILITY_SYNC)
        lo = r.acked;
    else if (c->policy == KV_CRASH_KEEP && mode != KV_DURABILITY_NONE)
        lo = r.acked;
    else
        lo = r.synced;
    if (n)
        res->points++;
    if (c->verbose)
        crash_logf(c, "  point %llu: %zu commits acknowledged%s\n", (unsigned long long)n, r.acked,
                   r.closed ? ", closed" : "");
    uint64_t window_before = res->max_loss_window_us;
    bool ok = crash_verify_in_child(x, dir, r.acked, !r.closed, lo, n, "point", res);
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
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        if (go[i] >= 0)
            close(go[i]);
    }
    if (pid > 0) /* the mount failed: the child saw go close and left */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    if (errf)
        fclose(errf);
    crashfs_unmount(cfs);
    crash_rmtree(backing);
    crash_rmtree(scratch);
    free(backing);
    free(dir);
    free(scratch);
    free(mnt);
    free(mdir);
    return ret;
}

kv_status crash_fuse_run(const crash_config *c, crash_result *res)
{
    memset(res, 0, sizeof *res);
    char why[200];
    if (!crashfs_available(why, sizeof why))
        return kv_error(KV_IO, "crash: %s", why);
    crash_ctx x;
    kv_status s = crash_ctx_init(&x, c, "fuse");
    if (s != KV_OK)
        return s;
    x.ack_ns = calloc(x.w.ncommits, sizeof *x.ack_ns);
    if (!x.ack_ns) {
        crash_ctx_free(&x);
        return kv_error(KV_NOMEM, "crash: out of memory");
    }
    uint64_t total = 0;
    if (c->at || c->at_zero) {
        s = fuse_point(&x, c->at, res, &total);
        res->fs_ops = total;
        crash_ctx_free(&x);
        return s;
    }
    s = fuse_point(&x, 0, res, &total);
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
        s = fuse_point(&x, pts[i], res, &ops);
    }
    free(pts);
    crash_ctx_free(&x);
    return s;
}
