/* Process kills (crash.h: crash_kill_run): a forked child runs the workload on the real file
 * system and reports every acknowledged commit through a pipe; the parent SIGKILLs it at a
 * seeded moment, reopens the directory and checks that `os`, `interval` and `sync` lost nothing
 * acknowledged and `none` at most a suffix after its last kv_sync. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_int.h"

#define ACK_CLOSED 0xffffffffu

static void put_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(6);
        c += w;
        n -= (size_t)w;
    }
}

/* The child: open, run, acknowledge each commit, close. After each acknowledgement it waits
 * for the parent's go-ahead (one byte on `go`), so the parent knows how far it got and the kill
 * lands within a chosen number of microseconds after commit K, mostly inside commit K+1.
 * Never returns. */
static void child(crash_ctx *x, const char *dir, int fd, int go)
{
    kv_options o = x->opts;
    o.fs = NULL;
    kv_db *db = NULL;
    if (kv_open_engine(x->e, dir, &o, &db) != KV_OK) {
        fprintf(stderr, "kill child: open %s: %s\n", dir, kv_errmsg());
        _exit(3);
    }
    kv_batch *b = kv_batch_new();
    if (!b)
        _exit(7);
    for (size_t i = 0; i < x->w.ncommits; i++) {
        kv_status s = crash_workload_apply(db, &x->w, i, b);
        if (s != KV_OK) {
            fprintf(stderr, "kill child: commit %zu: %s: %s\n", i, kv_strerror(s), kv_errmsg());
            _exit(4);
        }
        uint32_t ack = (uint32_t)(i + 1);
        put_all(fd, &ack, sizeof ack);
        char c;
        while (read(go, &c, 1) < 0 && errno == EINTR)
            ;
    }
    kv_batch_free(b);
    if (kv_close(db) != KV_OK) {
        fprintf(stderr, "kill child: close: %s\n", kv_errmsg());
        _exit(5);
    }
    uint32_t ack = ACK_CLOSED;
    put_all(fd, &ack, sizeof ack);
    _exit(0);
}

/* Reads one 4-byte ack; false at end of file, or when nothing came for 120 s (*hung). */
static bool read_ack(int fd, uint32_t *ack, bool *hung)
{
    size_t got = 0;
    char *p = (char *)ack;
    while (got < sizeof *ack) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 120000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            *hung = true;
            return false;
        }
        ssize_t r = read(fd, p + got, sizeof *ack - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static kv_status kill_round(crash_ctx *x, uint64_t round, crash_result *res)
{
    const crash_config *c = x->c;
    uint64_t rng = c->seed * 7919u + round * 0x9e3779b97f4a7c15ull;
    rng ^= rng >> 29;
    rng *= 0xbf58476d1ce4e5b9ull;
    rng ^= rng >> 32;
    size_t kill_after = (size_t)(rng % (x->w.ncommits + 1));
    unsigned delay_us = (unsigned)((rng >> 20) % 500); /* 0: between two commits */
    if ((rng >> 40) % 4 == 0)
        delay_us = 0;
    crash_set_doing(x, "kill round (--kill --at)", round);
    char *dir = crash_strf("%s/db", x->base);
    crash_rmtree(dir);
    if (crash_mkdir_p(dir) != 0) {
        kv_status e = kv_error(KV_IO, "crash: cannot make %s", dir);
        free(dir);
        return e;
    }
    int fds[2], go[2];
    if (pipe(fds) != 0) {
        free(dir);
        return kv_error(KV_IO, "crash: pipe: %s", strerror(errno));
    }
    if (pipe(go) != 0) {
        close(fds[0]);
        close(fds[1]);
        free(dir);
        return kv_error(KV_IO, "crash: pipe: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        close(go[0]);
        close(go[1]);
        free(dir);
        return kv_error(KV_IO, "crash: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        close(go[1]);
        child(x, dir, fds[1], go[0]);
    }
    close(fds[1]);
    close(go[0]);
    size_t acked = 0;
    bool closed = false, killed = false;
    uint32_t ack;
    bool hung = false;
    if (kill_after == 0) {
        usleep(delay_us);
        kill(pid, SIGKILL);
        killed = true;
    }
    while (read_ack(fds[0], &ack, &hung)) {
        if (ack == ACK_CLOSED)
            closed = true;
        else
            acked = ack;
        if (killed || closed)
            continue;
        if (write(go[1], "g", 1) != 1) /* let it run the next commit */
            break;
        if (acked >= kill_after) {
            if (delay_us)
                usleep(delay_us);
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    close(fds[0]);
    close(go[1]);
    if (hung)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    kv_status ret = KV_OK;
    res->points++;
    if (hung) {
        res->other_failures++;
        crash_violation(x, res, round,
                        "kill round: the child made no progress for 120 s after %zu "
                        "acknowledged commits (a hang)",
                        acked);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        res->other_failures++;
        crash_violation(x, res, round,
                        "kill round: the child failed by itself (exit %d) after "
                        "%zu acknowledged commits (see its message above)",
                        WEXITSTATUS(st), acked);
    } else if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL) {
        res->other_failures++;
        crash_violation(x, res, round, "kill round: the child died of signal %d by itself",
                        WTERMSIG(st));
    } else {
        size_t synced = 0;
        for (size_t i = 0; i < acked; i++)
            if (x->w.commits[i].kind == CW_SYNC)
                synced = i + 1;
        size_t lo = closed                                     ? x->w.ncommits
                    : c->durability.kind == KV_DURABILITY_NONE ? synced
                                                               : acked;
        if (c->verbose)
            crash_logf(c, "  kill %llu: after %zu acknowledged commits%s\n",
                       (unsigned long long)round, acked, closed ? " (closed)" : "");
        crash_verify_in_child(x, dir, acked, !closed, lo, round, "kill", res);
    }
    crash_rmtree(dir);
    free(dir);
    return ret;
}

kv_status crash_kill_run(const crash_config *c, crash_result *res)
{
    memset(res, 0, sizeof *res);
    crash_ctx x;
    kv_status s = crash_ctx_init(&x, c, "kill");
    if (s != KV_OK)
        return s;
    size_t kills = c->points ? c->points : 20;
    if (c->at) {
        s = kill_round(&x, c->at, res);
    } else {
        for (size_t r = 1; r <= kills && s == KV_OK; r++)
            s = kill_round(&x, r, res);
    }
    crash_ctx_free(&x);
    return s;
}
