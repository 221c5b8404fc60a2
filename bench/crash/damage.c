/* The damaged-file campaign (damage.h): the clean directory and its history, the rounds, the
 * table. Every engine call runs in a forked child (as in crash_verify_in_child): writing the
 * databases, and each round's checks under an alarm, so that a crash or a hang of the engine is
 * a counted outcome, and the parent never loads an engine's process-wide state. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "damage_int.h"
#include "identity.h"

#define ROUND_ALARM_S 120 /* seconds a round's child may take before it counts as a hang */

/* ---- writing the databases (in a child) ---- */

typedef struct write_arg {
    dmg_env *e;
    bool other; /* the other database: its own workload, no snapshots */
} write_arg;

/* Whether two directories hold the same files with the same bytes. */
static bool same_dirs(const char *a, const char *b)
{
    DIR *d = opendir(a);
    bool same = d != NULL;
    size_t na = 0;
    struct dirent *de;
    while (same && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *pa = crash_strf("%s/%s", a, de->d_name), *pb = crash_strf("%s/%s", b, de->d_name);
        uint8_t *da = NULL, *db = NULL;
        uint64_t sa = 0, sb = 0;
        same = dmg_read_file(pa, &da, &sa) == 0 && dmg_read_file(pb, &db, &sb) == 0 && sa == sb &&
               !memcmp(da, db, sa);
        na++;
        free(da);
        free(db);
        free(pa);
        free(pb);
    }
    if (d)
        closedir(d);
    size_t nb = 0;
    d = same ? opendir(b) : NULL;
    while (d && (de = readdir(d)))
        nb += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return same && na == nb;
}

/* Copies the open database's directory as a kill after kv_sync would leave it: copied twice
 * until two copies agree, so that no background flush or compaction was half-way through (a
 * file removed by a compaction during a copy makes that try fail, and it is tried again). */
static kv_status copy_quiet(const char *dir, const char *to, const char *scratch)
{
    for (int tries = 0; tries < 50; tries++) {
        crash_rmtree(to);
        crash_rmtree(scratch);
        if (crash_mkdir_p(to) != 0 || crash_mkdir_p(scratch) != 0)
            return kv_error(KV_IO, "crash: cannot make %s or %s", to, scratch);
        bool same = crash_copy_dir(dir, to) == 0 && crash_copy_dir(dir, scratch) == 0 &&
                    same_dirs(to, scratch);
        crash_rmtree(scratch);
        if (same)
            return KV_OK;
        usleep(20000);
    }
    return kv_error(KV_IO, "crash: %s kept changing after kv_sync; no quiet copy", dir);
}

/* The commit before which snapshot k is taken (after a kv_sync). */
static size_t snap_at(const crash_workload *w, int k)
{
    return w->ncommits * (size_t)(k + 1) / (DMG_SNAPS + 1);
}

static int write_db(crash_ctx *x, void *arg)
{
    const write_arg *a = arg;
    dmg_env *e = a->e;
    const crash_workload *w = a->other ? &e->other_w : &x->w;
    const char *dir = a->other ? e->other : e->clean[DMG_CLOSED].dir;
    char *scratch = crash_strf("%s/copying", x->base);
    kv_options o = x->opts;
    o.fs = NULL;
    kv_db *db = NULL;
    kv_batch *b = kv_batch_new();
    kv_status s = b ? kv_open_engine(x->e, dir, &o, &db) : KV_NOMEM;
    bool synced_copied = false;
    for (size_t i = 0; i < w->ncommits && s == KV_OK; i++) {
        for (int k = 0; k < DMG_SNAPS && !a->other && s == KV_OK; k++)
            if (i == snap_at(w, k)) {
                /* what was durable at that point, as an older backup would hold it */
                s = kv_sync(db);
                if (s == KV_OK)
                    s = copy_quiet(dir, e->snap[k], scratch);
            }
        if (!a->other && i == e->last_sync && !synced_copied && s == KV_OK) {
            synced_copied = true;
            s = copy_quiet(dir, e->tail[DMG_SYNCED], scratch);
        }
        if (!a->other && i == e->last && s == KV_OK)
            s = copy_quiet(dir, e->tail[DMG_CLOSED], scratch);
        if (s == KV_OK)
            s = crash_workload_apply(db, w, i, b);
        if (!a->other && w->commits[i].kind == CW_SYNC && i + 1 == e->last_sync && !synced_copied &&
            s == KV_OK) {
            synced_copied = true;
            s = copy_quiet(dir, e->tail[DMG_SYNCED], scratch);
        }
    }
    if (!a->other && s == KV_OK)
        s = kv_sync(db);
    if (!a->other && s == KV_OK)
        s = copy_quiet(dir, e->clean[DMG_SYNCED].dir, scratch);
    free(scratch);
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

/* ---- the clean directory ---- */

static void kind_of(const char *name, char *kind, size_t cap)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < cap; p++) {
        if (*p >= '0' && *p <= '9') {
            if (o == 0 || kind[o - 1] != '#')
                kind[o++] = '#';
        } else {
            kind[o++] = *p;
        }
    }
    kind[o] = '\0';
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const dmg_file *)a)->name, ((const dmg_file *)b)->name);
}

/* Reads dir/name into *data when it exists; false otherwise. */
static bool read_beside(const char *dir, const char *name, uint8_t **data, uint64_t *size)
{
    char *p = crash_strf("%s/%s", dir, name);
    int rc = dmg_read_file(p, data, size);
    free(p);
    return rc == 0;
}

static kv_status load_clean(dmg_env *e, dmg_state state)
{
    dmg_clean *cl = &e->clean[state];
    DIR *d = opendir(cl->dir);
    if (!d)
        return kv_error(KV_IO, "crash: cannot list %s: %s", cl->dir, strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    kv_status s = KV_OK;
    while (s == KV_OK && (de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, KV_LOCK_FILE) ||
            !strcmp(de->d_name, KV_ID_FILE))
            continue;
        char *p = crash_strf("%s/%s", cl->dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (cl->n == cap) {
                cap = cap ? cap * 2 : 32;
                dmg_file *nf = realloc(cl->f, cap * sizeof *nf);
                if (!nf)
                    abort();
                cl->f = nf;
            }
            dmg_file *f = &cl->f[cl->n];
            memset(f, 0, sizeof *f);
            f->name = strdup(de->d_name);
            if (!f->name || dmg_read_file(p, &f->data, &f->size) != 0)
                s = kv_error(KV_IO, "crash: cannot read %s: %s", p, strerror(errno));
            else
                cl->n++;
        }
        free(p);
    }
    closedir(d);
    if (s != KV_OK)
        return s;
    qsort(cl->f, cl->n, sizeof *cl->f, by_name);
    crash_damage_table *t = e->t;
    for (size_t i = 0; i < cl->n; i++) {
        dmg_file *f = &cl->f[i];
        kind_of(f->name, f->kind, sizeof f->kind);
        f->fk = dmg_file_kind(t, f->kind);
        f->has_map = crash_reclog_find(f->data, f->size, &f->map);
        t->logs_found[state] += f->has_map;
        uint8_t *old = NULL;
        uint64_t size = 0, tail_size;
        if (!read_beside(e->tail[state], f->name, &old, &size)) {
            f->age = DMG_NEW;
        } else if (size < f->size && !memcmp(old, f->data, size)) {
            f->age = DMG_APPENDED;
            f->tail_start = size;
        } else if (size != f->size || memcmp(old, f->data, size)) {
            f->age = DMG_REWRITTEN;
        }
        tail_size = size;
        free(old);
        /* Where the log's last proof of durability starts: after a close, its last record (on
         * the record log, the closing sync mark); in the synced state, the first bytes written
         * after the last sync (on the record log, the mark that says so). */
        f->last_rec = f->tail_start;
        if (state == DMG_CLOSED && f->has_map && f->map.end == f->size &&
            f->map.off[f->map.n - 1] > f->last_rec)
            f->last_rec = f->map.off[f->map.n - 1];
        static const char *const age[] = {"unchanged or rewritten in place", "appended to",
                                          "created", "rewritten"};
        if (e->x.c->verbose)
            crash_logf(e->x.c, "  %s: %s, %llu bytes, %s since the tail snapshot (%llu bytes)\n",
                       state == DMG_CLOSED ? "closed" : "synced", f->name,
                       (unsigned long long)f->size, age[f->age], (unsigned long long)tail_size);
        for (int k = 0; k < DMG_SNAPS; k++) {
            if (read_beside(e->snap[k], f->name, &old, &size) &&
                (size != f->size || memcmp(old, f->data, size)))
                f->stale |= 1u << k;
            free(old);
            old = NULL;
        }
        if (read_beside(e->other, f->name, &old, &size) &&
            (size != f->size || memcmp(old, f->data, size)))
            f->in_other = true;
        free(old);
    }
    t->files[state] = cl->n;
    return KV_OK;
}

/* The history's end per key, the commit of every op, the last op on every key. */
static kv_status index_history(dmg_env *e)
{
    const crash_workload *w = &e->x.w;
    e->final_ver = calloc(w->keys, sizeof *e->final_ver);
    e->last_op = malloc(w->keys * sizeof *e->last_op);
    e->op_commit = malloc((w->nops ? w->nops : 1) * sizeof *e->op_commit);
    if (!e->final_ver || !e->last_op || !e->op_commit)
        return kv_error(KV_NOMEM, "crash: out of memory");
    for (uint32_t k = 0; k < w->keys; k++)
        e->last_op[k] = -1;
    e->last = e->last_sync = 0;
    for (size_t i = 0; i < w->ncommits; i++) {
        const cw_commit *c = &w->commits[i];
        if (c->kind != CW_SYNC)
            e->last = i;
        for (uint32_t o = 0; o < c->n; o++) {
            const cw_op *op = &w->ops[c->first + o];
            e->op_commit[c->first + o] = (uint32_t)i;
            e->final_ver[op->key] = op->type == KV_OP_PUT ? op->version : 0;
            e->last_op[op->key] = (int64_t)(c->first + o);
        }
    }
    /* The last kv_sync that a write followed (the write is what records, in a log, that the
     * sync happened): a snapshot's, or one of the workload's (after commit i: i + 1 applied). */
    for (int k = 0; k < DMG_SNAPS; k++)
        if (snap_at(w, k) > e->last_sync && snap_at(w, k) <= e->last)
            e->last_sync = snap_at(w, k);
    for (size_t i = 0; i < e->last; i++)
        if (w->commits[i].kind == CW_SYNC && i + 1 > e->last_sync)
            e->last_sync = i + 1;
    for (uint32_t k = 0; k < w->keys; k++)
        e->t->keys_live += e->final_ver[k] != 0;
    return KV_OK;
}

static void env_free(dmg_env *e)
{
    for (int v = 0; v < DMG_STATES; v++) {
        dmg_clean *cl = &e->clean[v];
        for (size_t i = 0; i < cl->n; i++) {
            free(cl->f[i].name);
            free(cl->f[i].data);
            crash_reclog_map_free(&cl->f[i].map);
        }
        free(cl->f);
        free(cl->dir);
    }
    free(e->other);
    for (int v = 0; v < DMG_STATES; v++)
        free(e->tail[v]);
    for (int k = 0; k < DMG_SNAPS; k++)
        free(e->snap[k]);
    free(e->final_ver);
    free(e->op_commit);
    free(e->last_op);
    crash_workload_free(&e->other_w);
    crash_ctx_free(&e->x);
}

/* ---- one round ---- */

static bool read_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void count(dmg_env *e, const dmg_plan *p, const dmg_outcome *o, uint64_t round,
                  crash_result *res)
{
    crash_damage_table *t = e->t;
    int fk = p->file >= 0 ? e->f[p->file].fk : dmg_file_kind(t, KV_ID_FILE);
    t->cell[p->kind][o->cls]++;
    t->state_cell[e->state][o->cls]++;
    t->file_kind[fk].cell[p->kind][o->cls]++;
    t->ro_changed[p->kind] += o->ro_changed;
    res->points++;
    res->recoveries += o->rw_opened;
    char what[1200];
    const char *bad = NULL;
    switch (o->cls) {
    case CRASH_DMG_ERR_LOC:
    case CRASH_DMG_ERR:
        res->refused++;
        break;
    case CRASH_DMG_SUFFIX:
        res->silent_losses++;
        break;
    case CRASH_DMG_WRONG:
        if (o->phantom)
            res->phantoms++;
        else
            res->lost_violations++;
        t->wrong_check_ok[p->kind] += o->check_ok;
        bad = "silent wrong answer";
        break;
    case CRASH_DMG_CRASH:
        res->other_failures++;
        bad = "crash or hang";
        break;
    default:
        break;
    }
    if (!bad && o->ro_changed) {
        res->other_failures++;
        bad = "read-only open changed the directory";
    }
    if (bad) {
        snprintf(what, sizeof what, "%s: %s: %s%s", p->desc, bad, o->why,
                 o->cls == CRASH_DMG_WRONG && o->check_ok ? " (kv_check said ok)" : "");
        crash_violation(&e->x, res, round, "damage %s", what);
        char **nb = realloc(t->bad, (t->nbad + 1) * sizeof *nb);
        if (nb) {
            t->bad = nb;
            if ((nb[t->nbad] = crash_strf("round %llu: %s", (unsigned long long)round, what)))
                t->nbad++;
        }
        if (!t->first_example[p->kind]) {
            t->first_example[p->kind] = round;
            snprintf(t->example[p->kind], sizeof t->example[p->kind], "%.*s",
                     (int)sizeof t->example[p->kind] - 1, what);
        }
    } else if (e->x.c->verbose) {
        crash_logf(e->x.c, "  round %llu: %s: %s%s%s\n", (unsigned long long)round, p->desc,
                   crash_dmg_class_name(o->cls), o->err[0] ? ": " : "", o->err);
    }
}

static kv_status run_round(dmg_env *e, uint64_t round, crash_result *res)
{
    const crash_config *c = e->x.c;
    char *dir = crash_strf("%s/r", e->x.base);
    char *lock = crash_strf("%s/%s", dir, KV_LOCK_FILE);
    kv_status ret = KV_OK;
    dmg_plan p;
    /* the starting state: its own draw, so that the damage's draws do not depend on it */
    uint64_t sd = c->seed * 7919ull + round * 104729ull;
    e->state = (dmg_state)(dmg_rnd(&sd) % DMG_STATES);
    e->pristine = e->clean[e->state].dir;
    e->f = e->clean[e->state].f;
    e->n = e->clean[e->state].n;
    crash_rmtree(dir);
    /* a copy as the database was (its lock file included), then the damage */
    if (crash_mkdir_p(dir) != 0 || crash_copy_dir(e->pristine, dir) != 0 ||
        dmg_write_file(lock, "", 0) != 0 || dmg_apply(e, round, dir, &p) != 0) {
        ret = kv_error(KV_IO, "crash: cannot prepare damaged copy %s: %s", dir, strerror(errno));
        goto out;
    }
    {
        /* the state, and the loss the damage may cause, into the description */
        char d[sizeof p.desc], lo[64] = "";
        snprintf(d, sizeof d, "%s", p.desc);
        if (p.lo < e->x.w.ncommits)
            snprintf(lo, sizeof lo, "; a torn tail: commits from %zu on may be lost", p.lo);
        snprintf(p.desc, sizeof p.desc, "%s%.*s%s",
                 e->state == DMG_SYNCED ? "synced, not closed: " : "", (int)sizeof p.desc - 100, d,
                 lo);
    }
    char *keep = NULL;
    if (c->keep_dirs) {
        keep = crash_strf("%s-round%llu", e->x.base, (unsigned long long)round);
        crash_rmtree(keep);
        if (crash_mkdir_p(keep) != 0 || crash_copy_dir(dir, keep) != 0)
            crash_logf(c, "  could not keep a copy of round %llu in %s\n",
                       (unsigned long long)round, keep);
    }
    int fds[2];
    if (pipe(fds) != 0) {
        free(keep);
        ret = kv_error(KV_IO, "crash: pipe: %s", strerror(errno));
        goto out;
    }
    crash_set_doing(&e->x, "damage round", round);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(keep);
        ret = kv_error(KV_IO, "crash: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(ROUND_ALARM_S);
        dmg_outcome o;
        dmg_judge(e, &p, dir, &o);
        int rc = write(fds[1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 1;
        close(fds[1]);
        free(keep);
        free(dir);
        free(lock);
        free(e->x.base); /* the parent's scratch directory: not to be removed from here */
        e->x.base = NULL;
        env_free(e);
        free(e);
        fflush(NULL);
        exit(rc); /* exit, not _exit: a sanitizer build checks for leaks here */
    }
    close(fds[1]);
    dmg_outcome o;
    bool whole = read_all(fds[0], &o, sizeof o) && o.magic == DMG_OUTCOME_MAGIC;
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!whole || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (!whole)
            memset(&o, 0, sizeof o);
        o.cls = CRASH_DMG_CRASH;
        if (WIFSIGNALED(st))
            snprintf(o.why, sizeof o.why, "the checking process %s (signal %d)",
                     WTERMSIG(st) == SIGALRM ? "hung" : "crashed", WTERMSIG(st));
        else
            snprintf(o.why, sizeof o.why,
                     "the checking process exited with %d (a sanitizer or leak report above)",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    uint64_t violations = res->violations;
    count(e, &p, &o, round, res);
    if (keep && res->violations > violations)
        crash_logf(c, "  kept the damaged copy of round %llu (before any open): %s\n",
                   (unsigned long long)round, keep);
    else if (keep)
        crash_rmtree(keep);
    free(keep);
out:
    crash_rmtree(dir);
    free(dir);
    free(lock);
    return ret;
}

/* ---- the campaign ---- */

kv_status crash_damage_campaign(const crash_config *c, crash_result *res, crash_damage_table *t)
{
    memset(res, 0, sizeof *res);
    crash_damage_table_free(t);
    memset(t, 0, sizeof *t);
    dmg_env *e = calloc(1, sizeof *e);
    if (!e)
        return kv_error(KV_NOMEM, "crash: out of memory");
    e->t = t;
    kv_status s = crash_ctx_init(&e->x, c, "damage");
    if (s != KV_OK) {
        free(e);
        return s;
    }
    t->read_only = e->x.e->read_only;
    s = crash_workload_make(c->workload, c->ops, c->keys, c->value_max, c->sync_permille,
                            c->seed + 0x5eed, &e->other_w);
    if (s == KV_OK)
        s = index_history(e);
    if (s != KV_OK)
        goto out;
    e->clean[DMG_CLOSED].dir = crash_strf("%s/clean-closed", e->x.base);
    e->clean[DMG_SYNCED].dir = crash_strf("%s/clean-synced", e->x.base);
    e->other = crash_strf("%s/other", e->x.base);
    e->tail[DMG_CLOSED] = crash_strf("%s/before-last-commit", e->x.base);
    e->tail[DMG_SYNCED] = crash_strf("%s/at-last-sync", e->x.base);
    e->tail_lo[DMG_CLOSED] = e->last;
    e->tail_lo[DMG_SYNCED] = e->last_sync;
    for (int k = 0; k < DMG_SNAPS; k++) {
        e->snap[k] = crash_strf("%s/snapshot%d", e->x.base, k + 1);
        if (crash_mkdir_p(e->snap[k]) != 0)
            s = kv_error(KV_IO, "crash: cannot make %s", e->snap[k]);
    }
    if (s == KV_OK &&
        (crash_mkdir_p(e->clean[DMG_CLOSED].dir) != 0 ||
         crash_mkdir_p(e->clean[DMG_SYNCED].dir) != 0 || crash_mkdir_p(e->tail[DMG_CLOSED]) != 0 ||
         crash_mkdir_p(e->tail[DMG_SYNCED]) != 0))
        s = kv_error(KV_IO, "crash: cannot make the directories in %s", e->x.base);
    for (int other = 0; other < 2 && s == KV_OK; other++) {
        write_arg a = {.e = e, .other = other};
        int st = crash_in_child(&e->x, write_db, &a, 600);
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            s = kv_error(KV_IO, "crash: writing the %s database failed (status %d; message above)",
                         other ? "other" : "clean", st);
    }
    for (int v = 0; v < DMG_STATES && s == KV_OK; v++)
        s = load_clean(e, (dmg_state)v);
    if (s != KV_OK)
        goto out;
    size_t rounds = c->points ? c->points : 50;
    if (c->at)
        s = run_round(e, c->at, res);
    for (size_t r = 1; !c->at && r <= rounds && s == KV_OK; r++)
        s = run_round(e, r, res);
out:
    env_free(e);
    free(e);
    return s;
}

kv_status crash_damage_run(const crash_config *c, crash_result *res)
{
    crash_damage_table *t = calloc(1, sizeof *t);
    if (!t)
        return kv_error(KV_NOMEM, "crash: out of memory");
    kv_status s = crash_damage_campaign(c, res, t);
    crash_damage_table_free(t);
    free(t);
    return s;
}
