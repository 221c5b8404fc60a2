/* Damaged files (crash.h: crash_damage_run): a directory the engine wrote cleanly, then per
 * round a copy with one seeded damage (bit flips, a truncation or a zeroed range) in one file,
 * reopened with posix in a forked child under alarm(30). The reopen must return
 * KV_CORRUPTION or KV_IO, or open a legal state: every key one of the workload's, every value
 * one that was written for that key. A crash, a hang or (in sanitizer builds) a leak shows as
 * the child's abnormal end. The damage kinds follow the classic file-system fault studies
 * (Bairavasundaram et al., "An Analysis of Data Corruption in the Storage Stack", FAST 2008). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_int.h"

#define EXIT_LEGAL   0
#define EXIT_BAD     1
#define EXIT_REFUSED 10
#define EXIT_SILENT  11 /* legal, but data lost and no call reported any error */

typedef struct dfile {
    char *name;
    uint64_t size;
} dfile;

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The non-empty regular files of dir (top level), without the lock file and the identity file:
 * they are kv.c's, not the engine's, and the identity file's own damage is tested with it. */
static size_t list_files(const char *dir, dfile **out)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    *out = NULL;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "KVLAB.LOCK") ||
            !strcmp(de->d_name, "KVLAB.ID"))
            continue;
        char *p = crash_strf("%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                dfile *nf = realloc(*out, cap * sizeof *nf);
                if (!nf)
                    abort();
                *out = nf;
            }
            (*out)[n].name = strdup(de->d_name);
            (*out)[n].size = (uint64_t)st.st_size;
            if (!(*out)[n].name)
                abort();
            n++;
        }
        free(p);
    }
    closedir(d);
    return n;
}

/* Applies one seeded damage to a file of dir; describes it in desc. Returns 0 or -1. */
static int damage(const char *dir, const dfile *files, size_t n, uint64_t seed, char *desc,
                  size_t cap)
{
    uint64_t s = seed;
    const dfile *f = &files[rnd(&s) % n];
    char *path = crash_strf("%s/%s", dir, f->name);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -1;
    int kind = (int)(rnd(&s) % 3), rc = 0;
    if (kind == 0) {
        int bits = 1 + (int)(rnd(&s) % 8);
        uint64_t first = rnd(&s) % f->size;
        for (int i = 0; i < bits && rc == 0; i++) {
            /* half the flips near the first one (a bad sector), half anywhere */
            uint64_t off = i % 2 ? rnd(&s) % f->size : (first + rnd(&s) % 512) % f->size;
            uint8_t b;
            if (pread(fd, &b, 1, (off_t)off) != 1) {
                rc = -1;
                break;
            }
            b ^= (uint8_t)(1u << (rnd(&s) % 8));
            if (pwrite(fd, &b, 1, (off_t)off) != 1)
                rc = -1;
        }
        snprintf(desc, cap, "%s: %d bit flips around offset %llu of %llu bytes", f->name, bits,
                 (unsigned long long)first, (unsigned long long)f->size);
    } else if (kind == 1) {
        uint64_t len = rnd(&s) % f->size;
        rc = ftruncate(fd, (off_t)len);
        snprintf(desc, cap, "%s: truncated from %llu to %llu bytes", f->name,
                 (unsigned long long)f->size, (unsigned long long)len);
    } else {
        uint64_t off = rnd(&s) % f->size;
        uint64_t room = f->size - off;
        uint64_t len = 1 + rnd(&s) % (room < 4096 ? room : 4096);
        uint8_t zero[4096] = {0};
        if (pwrite(fd, zero, (size_t)len, (off_t)off) != (ssize_t)len)
            rc = -1;
        snprintf(desc, cap, "%s: %llu bytes zeroed at offset %llu of %llu", f->name,
                 (unsigned long long)len, (unsigned long long)off, (unsigned long long)f->size);
    }
    close(fd);
    return rc;
}

/* The child's check of a damaged directory; returns its exit code. */
static int check_damaged(crash_ctx *x, const char *dir, const char *desc, uint64_t round, char *why,
                         size_t cap)
{
    const crash_config *c = x->c;
    kv_options o = x->opts;
    o.fs = NULL;
    kv_db *db = NULL;
    kv_status s = kv_open_engine(x->e, dir, &o, &db);
    if (s == KV_CORRUPTION || s == KV_IO) {
        if (c->verbose)
            crash_logf(c, "  damage %llu (%s): refused: %s\n", (unsigned long long)round, desc,
                       kv_errmsg());
        return EXIT_REFUSED;
    }
    if (s != KV_OK) {
        snprintf(why, cap, "open returned %s (%s), want KV_CORRUPTION, KV_IO or a legal state",
                 kv_strerror(s), kv_errmsg());
        return EXIT_BAD;
    }
    int rc = EXIT_LEGAL;
    /* kv_check may report the damage (then it was not silent); it must not crash */
    bool err_seen = kv_check(db) != KV_OK, lost = false;
    uint64_t *want = calloc(x->w.keys, sizeof *want); /* the undamaged state */
    for (size_t i = 0; want && i < x->w.ncommits; i++)
        for (uint32_t j = 0; j < x->w.commits[i].n; j++) {
            const cw_op *op = &x->w.ops[x->w.commits[i].first + j];
            want[op->key] = op->version;
        }
    kv_iter *it = NULL;
    if (kv_iter_new(db, &it) != KV_OK) {
        err_seen = true;
    } else {
        for (kv_iter_seek_first(it); kv_iter_valid(it) && rc == EXIT_LEGAL; kv_iter_next(it)) {
            size_t kl = 0, vl = 0;
            const void *key = kv_iter_key(it, &kl);
            const void *val = kv_iter_value(it, &vl);
            uint32_t k;
            if (!crash_key_parse(key, kl, x->w.keys, &k)) {
                snprintf(why, cap, "the iterator returns a key of %zu bytes that was never written",
                         kl);
                rc = EXIT_BAD;
            } else if (!crash_value_verify(&x->w, k, val, vl)) {
                snprintf(why, cap,
                         "the iterator returns for key k%07u a value of %zu bytes that was never "
                         "written for it",
                         k, vl);
                rc = EXIT_BAD;
            }
        }
        err_seen |= kv_iter_status(it) != KV_OK;
        kv_iter_free(it);
    }
    for (uint32_t k = 0; k < x->w.keys && rc == EXIT_LEGAL; k++) {
        char key[16];
        size_t kl = crash_key(k, key);
        void *v = NULL;
        size_t vl = 0;
        s = kv_get(db, key, kl, &v, &vl);
        err_seen |= s == KV_CORRUPTION || s == KV_IO;
        uint64_t got = s == KV_OK ? crash_value_verify(&x->w, k, v, vl) : 0;
        lost |= (s == KV_OK || s == KV_NOT_FOUND) && want && got != want[k];
        if (s == KV_OK) {
            if (!got) {
                snprintf(why, cap,
                         "kv_get(k%07u) returns a value of %zu bytes that was never written for it",
                         k, vl);
                rc = EXIT_BAD;
            }
            kv_free(v);
        } else if (s != KV_NOT_FOUND && s != KV_CORRUPTION && s != KV_IO) {
            snprintf(why, cap, "kv_get(k%07u) returned %s", k, kv_strerror(s));
            rc = EXIT_BAD;
        }
    }
    kv_close(db);
    free(want);
    if (rc == EXIT_LEGAL && lost && !err_seen) {
        rc = EXIT_SILENT;
        if (c->verbose)
            crash_logf(c,
                       "  damage %llu (%s): opened, state legal, but data lost without any "
                       "error\n",
                       (unsigned long long)round, desc);
    } else if (rc == EXIT_LEGAL && c->verbose) {
        crash_logf(c, "  damage %llu (%s): opened, state legal\n", (unsigned long long)round, desc);
    }
    return rc;
}

/* The child that writes the clean directory (arg: its path). Exit 0 or 1. */
static int write_pristine(crash_ctx *x, void *arg)
{
    const char *dir = arg;
    kv_options o = x->opts;
    o.fs = NULL;
    kv_db *db = NULL;
    kv_batch *b = kv_batch_new();
    kv_status s = b ? kv_open_engine(x->e, dir, &o, &db) : KV_IO;
    for (size_t i = 0; i < x->w.ncommits && s == KV_OK; i++)
        s = crash_workload_apply(db, &x->w, i, b);
    if (db) {
        kv_status cs = kv_close(db);
        if (s == KV_OK)
            s = cs;
    }
    kv_batch_free(b);
    if (s != KV_OK) {
        fprintf(stderr, "crash: writing %s: %s: %s\n", dir, kv_strerror(s), kv_errmsg());
        return 1;
    }
    return 0;
}

static kv_status damage_round(crash_ctx *x, const char *pristine, const dfile *files, size_t n,
                              uint64_t round, crash_result *res)
{
    char *dir = crash_strf("%s/r", x->base);
    char desc[256];
    crash_rmtree(dir);
    kv_status ret = KV_OK;
    if (crash_mkdir_p(dir) != 0 || crash_copy_dir(pristine, dir) != 0 ||
        damage(dir, files, n, x->c->seed * 1000003ull + round, desc, sizeof desc) != 0) {
        ret = kv_error(KV_IO, "crash: cannot prepare damaged copy %s: %s", dir, strerror(errno));
        goto out;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        ret = kv_error(KV_IO, "crash: pipe: %s", strerror(errno));
        goto out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        ret = kv_error(KV_IO, "crash: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(30);
        char why[400] = "";
        int rc = check_damaged(x, dir, desc, round, why, sizeof why);
        if (why[0] && write(fds[1], why, strlen(why)) < 0)
            rc = EXIT_BAD;
        close(fds[1]);
        free(dir); /* the child's copy: nothing else holds it once check_damaged returned */
        fflush(NULL);
        exit(rc); /* exit, not _exit: a sanitizer build checks for leaks here */
    }
    close(fds[1]);
    char why[400];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], why + got, sizeof why - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (got += (size_t)r) == sizeof why - 1)
            break;
    }
    why[got] = '\0';
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    res->points++;
    if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_LEGAL) {
        res->recoveries++;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SILENT) {
        res->recoveries++;
        res->silent_losses++;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_REFUSED) {
        res->refused++;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_BAD) {
        res->phantoms++;
        crash_violation(x, res, round, "damage (%s): %s", desc, why);
    } else if (WIFSIGNALED(st)) {
        res->other_failures++;
        crash_violation(x, res, round, "damage (%s): the reopen %s (signal %d)", desc,
                        WTERMSIG(st) == SIGALRM ? "hung for 30 s" : "crashed", WTERMSIG(st));
    } else {
        res->other_failures++;
        crash_violation(x, res, round,
                        "damage (%s): the checking process exited with %d (a sanitizer or leak "
                        "report above)",
                        desc, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
out:
    crash_rmtree(dir);
    free(dir);
    return ret;
}

kv_status crash_damage_run(const crash_config *c, crash_result *res)
{
    memset(res, 0, sizeof *res);
    crash_ctx x;
    kv_status s = crash_ctx_init(&x, c, "damage");
    if (s != KV_OK)
        return s;
    char *pristine = crash_strf("%s/pristine", x.base);
    dfile *files = NULL;
    size_t n = 0;
    if (crash_mkdir_p(pristine) != 0) {
        s = kv_error(KV_IO, "crash: cannot make %s", pristine);
        goto out;
    }
    /* In a child, like every engine call of this run: see crash_verify_in_child. */
    int st = crash_in_child(&x, write_pristine, pristine, 300);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        s = kv_error(KV_IO,
                     "crash: writing the undamaged directory %s failed (status %d; "
                     "message above)",
                     pristine, st);
        goto out;
    }
    n = list_files(pristine, &files);
    if (n == 0) {
        s = kv_error(KV_INVALID, "crash: %s wrote no files to damage", x.e->name);
        goto out;
    }
    size_t rounds = c->points ? c->points : 50;
    if (c->at)
        s = damage_round(&x, pristine, files, n, c->at, res);
    for (size_t r = 1; !c->at && r <= rounds && s == KV_OK; r++)
        s = damage_round(&x, pristine, files, n, r, res);
out:
    for (size_t i = 0; i < n; i++)
        free(files[i].name);
    free(files);
    free(pristine);
    crash_ctx_free(&x);
    return s;
}
