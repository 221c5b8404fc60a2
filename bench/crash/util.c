/* Shared pieces of the crash checker: configuration, engine lookup, running the workload,
 * verifying a recovered directory, reporting violations, directory helpers. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <time.h>

#include "crash_int.h"

void crash_config_init(crash_config *c)
{
    memset(c, 0, sizeof *c);
    c->durability.kind = KV_DURABILITY_OS;
    c->workload = "mixed";
    c->ops = 200;
    c->seed = 1;
    c->policy = KV_CRASH_RANDOM;
    c->keys = 200;
    c->value_max = 100;
    c->sync_permille = 10;
}

kv_status crash_fs_parse(const char *text, crash_fs *out)
{
    if (text && !strcmp(text, "faultfs"))
        *out = CRASH_FS_FAULTFS;
    else if (text && !strcmp(text, "fuse"))
        *out = CRASH_FS_FUSE;
    else
        return kv_error(KV_INVALID, "bad --fs '%s' (faultfs or fuse)", text ? text : "(null)");
    return KV_OK;
}

const char *crash_fs_name(crash_fs fs)
{
    return fs == CRASH_FS_FUSE ? "fuse" : "faultfs";
}

const char *const *crash_small_options(const char *engine, size_t *n)
{
    static const char *const wal[] = {"segment_size=4K", "checkpoint_bytes=16K"};
    static const char *const bitcask[] = {"file_size=8K", "merge_min_files=2",
                                          "merge_fragmentation=10", "merge_dead_bytes=1K"};
    static const char *const lsm[] = {"write_buffer_size=8K", "target_file_size=8K",
                                      "l0_compaction_trigger=2", "level_base_bytes=32K",
                                      "manifest_max_size=4K"};
    static const char *const btree[] = {"checkpoint_bytes=16K", "bgwriter=2"};
    static const char *const leveldb[] = {"write_buffer_size=64K", "max_file_size=64K"};
    static const char *const rocksdb[] = {"write_buffer_size=64K", "target_file_size=64K"};
    static const char *const sqlite[] = {"autocheckpoint=16"};
    static const struct {
        const char *name;
        const char *const *opts;
        size_t n;
    } table[] = {{"wal", wal, sizeof wal / sizeof *wal},
                 {"bitcask", bitcask, sizeof bitcask / sizeof *bitcask},
                 {"lsm", lsm, sizeof lsm / sizeof *lsm},
                 {"btree", btree, sizeof btree / sizeof *btree},
                 {"leveldb", leveldb, sizeof leveldb / sizeof *leveldb},
                 {"rocksdb", rocksdb, sizeof rocksdb / sizeof *rocksdb},
                 {"sqlite", sqlite, sizeof sqlite / sizeof *sqlite}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(engine, table[i].name)) {
            *n = table[i].n;
            return table[i].opts;
        }
    *n = 0;
    return NULL;
}

const kv_engine *crash_find_engine(const char *name)
{
    for (size_t i = 0; name && kv_registry[i]; i++)
        if (!strcmp(kv_registry[i]->name, name))
            return kv_registry[i];
    return NULL;
}

bool crash_is_peer(const char *name)
{
    static const char *const peers[] = {"leveldb", "rocksdb", "lmdb", "sqlite"};
    for (size_t i = 0; i < sizeof peers / sizeof *peers; i++)
        if (!strcmp(name, peers[i]))
            return true;
    return false;
}

char *crash_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

void crash_logf(const crash_config *c, const char *fmt, ...)
{
    if (!c->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->log, fmt, ap);
    va_end(ap);
    fflush(c->log);
}

void crash_violation(crash_ctx *x, crash_result *res, uint64_t point, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->any_bad || x->last_bad != point) {
        res->violations++;
        x->last_bad = point;
        x->any_bad = true;
    }
    if (!res->first_violation[0]) {
        res->first_bad = point;
        snprintf(res->first_violation, sizeof res->first_violation, "%s", msg);
    }
    /* The first ten in full (all with -v); then only the counts. */
    if (res->violations <= 10 || x->c->verbose)
        crash_logf(x->c, "VIOLATION at %llu: %s\n", (unsigned long long)point, msg);
    else if (res->violations == 11 && x->last_bad == point && !x->quiet_said) {
        x->quiet_said = true;
        crash_logf(x->c, "(further violations are counted, not printed; -v prints all)\n");
    }
}

int crash_mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void crash_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -1;
                break;
            }
            done += w;
        }
        if (rc)
            break;
    }
    close(in);
    if (close(out) != 0)
        rc = -1;
    return rc;
}

int crash_copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, "KVLAB.LOCK"))
            continue;
        char *a = crash_strf("%s/%s", from, de->d_name);
        char *b = crash_strf("%s/%s", to, de->d_name);
        struct stat st;
        if (lstat(a, &st) != 0)
            rc = -1;
        else if (S_ISDIR(st.st_mode))
            rc = (mkdir(b, 0755) == 0 || errno == EEXIST) ? crash_copy_dir(a, b) : -1;
        else if (S_ISREG(st.st_mode))
            rc = copy_file(a, b);
        free(a);
        free(b);
    }
    closedir(d);
    return rc;
}

kv_status crash_ctx_init(crash_ctx *x, const crash_config *c, const char *tag)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    kv_options_init(&x->opts);
    x->e = c->engine_vt ? c->engine_vt : crash_find_engine(c->engine);
    if (!x->e)
        return kv_error(KV_INVALID, "crash: unknown engine '%s'", c->engine ? c->engine : "");
    if (!(x->e->durability_mask & KV_DURABILITY_BIT(c->durability.kind))) {
        char b[32];
        return kv_error(KV_NOTSUP, "crash: engine %s does not declare durability %s", x->e->name,
                        kv_durability_format(c->durability, b, sizeof b));
    }
    x->opts.durability = c->durability;
    x->opts.allow_bugs = c->allow_bugs;
    for (size_t i = 0; i < c->n_options; i++) {
        kv_status s = kv_options_set(&x->opts, c->options[i]);
        if (s != KV_OK) {
            kv_options_free(&x->opts);
            return s;
        }
    }
    kv_status s = crash_workload_make(c->workload, c->ops, c->keys, c->value_max, c->sync_permille,
                                      c->seed, &x->w);
    if (s != KV_OK) {
        kv_options_free(&x->opts);
        return s;
    }
    const char *root = c->workdir;
    if (!root || !*root)
        root = getenv("TMPDIR");
    if (!root || !*root) /* faultfs decides durability: a memory fs only saves fsync time */
        root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    x->base = crash_strf("%s/kvlab-crash-%s-%s-XXXXXX", root, x->e->name, tag);
    if (crash_mkdir_p(root) != 0 || !mkdtemp(x->base)) {
        kv_status e = kv_error(KV_IO, "crash: cannot make %s: %s", x->base, strerror(errno));
        crash_ctx_free(x);
        return e;
    }
    return KV_OK;
}

void crash_ctx_free(crash_ctx *x)
{
    if (x->base) {
        crash_rmtree(x->base);
        free(x->base);
    }
    crash_workload_free(&x->w);
    kv_options_free(&x->opts);
    free(x->ack_ns);
    x->ack_ns = NULL;
    x->base = NULL;
}

char crash_now_doing[160];

void crash_set_doing(const crash_ctx *x, const char *what, uint64_t point)
{
    char d[32];
    snprintf(crash_now_doing, sizeof crash_now_doing,
             "engine %s, durability %s, policy %s, seed %llu, %s %llu", x->e ? x->e->name : "?",
             kv_durability_format(x->c->durability, d, sizeof d),
             kv_crash_policy_name(x->c->policy), (unsigned long long)x->c->seed, what,
             (unsigned long long)point);
}

uint64_t crash_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void crash_run_workload(crash_ctx *x, kv_db *db, crash_progress *p)
{
    memset(p, 0, sizeof *p);
    kv_batch *b = kv_batch_new();
    if (!b) {
        p->failed = true;
        p->status = KV_IO;
        snprintf(p->msg, sizeof p->msg, "out of memory");
        return;
    }
    for (size_t i = 0; i < x->w.ncommits; i++) {
        kv_status s = crash_workload_apply(db, &x->w, i, b);
        if (s != KV_OK) {
            p->failed = true;
            p->status = s;
            snprintf(p->msg, sizeof p->msg, "%s", kv_errmsg());
            break;
        }
        p->acked = i + 1;
        if (x->ack_ns)
            x->ack_ns[i] = crash_now_ns();
        if (x->c->pace_us)
            usleep(x->c->pace_us);
        if (x->w.commits[i].kind == CW_SYNC)
            p->synced = i + 1;
    }
    kv_batch_free(b);
}

bool crash_verify(crash_ctx *x, const char *dir, size_t acked, bool inflight, size_t lo,
                  uint64_t point, const char *what, crash_result *res)
{
    bool ok = true;
    kv_options o = x->opts;
    o.fs = NULL;
    kv_db *db = NULL;
    kv_status s = kv_open_engine(x->e, dir, &o, &db);
    if (s != KV_OK) {
        res->recovery_failures++;
        crash_violation(x, res, point, "%s: recovery failed: %s: %s", what, kv_strerror(s),
                        kv_errmsg());
        return false;
    }
    res->recoveries++;
    s = kv_check(db);
    if (s != KV_OK) {
        char m[300];
        res->check_failures++;
        crash_violation(x, res, point, "%s: kv_check after recovery: %s: %s", what, kv_strerror(s),
                        kv_last_error(db, m, sizeof m));
        ok = false;
    }
    crash_state st;
    if (crash_state_init(&st, &x->w) != KV_OK) {
        kv_close(db);
        res->other_failures++;
        crash_violation(x, res, point, "%s: out of memory", what);
        return false;
    }
    s = crash_state_read(db, &x->w, &st);
    if (s != KV_OK) {
        res->recovery_failures++;
        crash_violation(x, res, point, "%s: reading the recovered state: %s: %s", what,
                        kv_strerror(s), kv_errmsg());
        ok = false;
    } else {
        if (st.get_mismatch) {
            res->check_failures++;
            crash_violation(x, res, point, "%s: %s", what, st.problem);
            ok = false;
        }
        crash_verdict v;
        crash_oracle_judge(&x->w, &st, acked, inflight, lo, &v);
        res->acked_writes += v.acked_writes;
        res->lost_writes += v.lost_writes;
        switch (v.kind) {
        case CV_OK:
            break;
        case CV_LOST:
            res->lost_violations++;
            break;
        case CV_HOLE:
            res->holes++;
            break;
        case CV_TORN_BATCH:
            res->torn_batches++;
            break;
        case CV_PHANTOM:
            res->phantoms++;
            break;
        }
        if (v.kind == CV_OK && x->crash_ns && x->ack_ns && v.prefix < acked) {
            /* the oldest lost acknowledged commit: how long before the crash it was acked */
            uint64_t t = x->ack_ns[v.prefix];
            uint64_t us = x->crash_ns > t ? (x->crash_ns - t) / 1000 : 0;
            if (us > res->max_loss_window_us)
                res->max_loss_window_us = us;
        }
        if (v.kind != CV_OK) {
            bool first = !res->first_violation[0];
            crash_violation(x, res, point, "%s: %s", what, v.msg);
            /* The keys that differ, in words: all of them with -v, a few for the first
             * violation otherwise. */
            if ((x->c->verbose || first) && x->c->log) {
                /* A loss beyond the promise is shown against the promised prefix. */
                size_t p = v.kind == CV_LOST ? (lo < acked ? lo : acked) : v.prefix;
                crash_oracle_diff(&x->w, &st, p, x->c->log, x->c->verbose ? 20 : 5);
            }
            ok = false;
        } else if (x->c->verbose) {
            crash_logf(x->c, "  %s %llu: %s, lost %llu of %llu acknowledged writes\n", what,
                       (unsigned long long)point, v.msg, (unsigned long long)v.lost_writes,
                       (unsigned long long)v.acked_writes);
        }
    }
    crash_state_free(&st);
    kv_close(db);
    return ok;
}

char *crash_result_format(const crash_result *r, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "points=%llu recoveries=%llu recovery_failures=%llu check_failures=%llu "
             "acked_writes=%llu lost_writes=%llu lost_beyond_promise=%llu holes=%llu "
             "torn_batches=%llu phantoms=%llu other=%llu violations=%llu",
             (unsigned long long)r->points, (unsigned long long)r->recoveries,
             (unsigned long long)r->recovery_failures, (unsigned long long)r->check_failures,
             (unsigned long long)r->acked_writes, (unsigned long long)r->lost_writes,
             (unsigned long long)r->lost_violations, (unsigned long long)r->holes,
             (unsigned long long)r->torn_batches, (unsigned long long)r->phantoms,
             (unsigned long long)r->other_failures, (unsigned long long)r->violations);
    return buf;
}

int crash_in_child(crash_ctx *x, int (*fn)(crash_ctx *x, void *arg), void *arg, unsigned timeout_s)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        alarm(timeout_s);
        int rc = fn(x, arg);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static void add_result(crash_result *to, const crash_result *from)
{
    to->recoveries += from->recoveries;
    to->recovery_failures += from->recovery_failures;
    to->check_failures += from->check_failures;
    to->acked_writes += from->acked_writes;
    to->lost_writes += from->lost_writes;
    to->lost_violations += from->lost_violations;
    to->holes += from->holes;
    to->torn_batches += from->torn_batches;
    to->phantoms += from->phantoms;
    to->other_failures += from->other_failures;
    if (from->max_loss_window_us > to->max_loss_window_us)
        to->max_loss_window_us = from->max_loss_window_us;
}

bool crash_verify_in_child(crash_ctx *x, const char *dir, size_t acked, bool inflight, size_t lo,
                           uint64_t point, const char *what, crash_result *res)
{
    int fds[2];
    if (pipe(fds) != 0) {
        res->other_failures++;
        crash_violation(x, res, point, "%s: pipe: %s", what, strerror(errno));
        return false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        res->other_failures++;
        crash_violation(x, res, point, "%s: fork: %s", what, strerror(errno));
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(120);
        crash_result local;
        memset(&local, 0, sizeof local);
        x->any_bad = false;
        crash_verify(x, dir, acked, inflight, lo, point, what, &local);
        fflush(NULL);
        const char *p = (const char *)&local;
        size_t left = sizeof local;
        while (left) {
            ssize_t w = write(fds[1], p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                _exit(1);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    crash_result local;
    size_t got = 0;
    while (got < sizeof local) {
        ssize_t r = read(fds[0], (char *)&local + got, sizeof local - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof local) {
        res->other_failures++;
        if (WIFSIGNALED(st))
            crash_violation(x, res, point, "%s: the reopen %s (signal %d)", what,
                            WTERMSIG(st) == SIGALRM ? "hung for 120 s" : "crashed", WTERMSIG(st));
        else
            crash_violation(x, res, point, "%s: the verifying process failed (status %d)", what,
                            st);
        return false;
    }
    add_result(res, &local);
    if (local.violations) {
        /* already printed by the child: count it here once, keep the first description */
        if (!x->any_bad || x->last_bad != point) {
            res->violations++;
            x->last_bad = point;
            x->any_bad = true;
        }
        if (!res->first_violation[0]) {
            res->first_bad = point;
            memcpy(res->first_violation, local.first_violation, sizeof res->first_violation);
        }
        return false;
    }
    return true;
}
