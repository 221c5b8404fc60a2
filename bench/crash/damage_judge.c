/* The child's side of a damage round (damage_int.h: dmg_judge): ask the engine for everything,
 * compare every answer with the history, and name the outcome's class.
 *
 * Two phases, as a user meets a damaged database: inspection first (a read-only open, where the
 * engine declares one, after which every file must be byte for byte what it was), then a normal
 * open. Each phase reads every key of the workload with kv_get, the whole database with one
 * scan, and runs kv_check. A key an error was reported for is no answer; every other answer
 * must match the history (damage.h). */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "damage_int.h"

#define UNKNOWN UINT64_MAX /* no answer for the key (an error, or the scan stopped before it) */

/* The judgement across both phases. */
typedef struct judge {
    const dmg_env *e;
    const dmg_plan *p;
    dmg_outcome *out;
    bool err;    /* some call reported an error */
    bool wrong;  /* some answer was wrong */
    bool suffix; /* a phase saw an allowed suffix loss */
    bool phase_check_ok;
    uint64_t *ans;  /* per key, this phase: version, 0 absent, UNKNOWN */
    uint64_t *scan; /* per key, this phase's scan: version, 0 absent, UNKNOWN */
} judge;

static void note_error(judge *j, const char *call, kv_status s, const char *msg)
{
    if (!j->err)
        snprintf(j->out->err, sizeof j->out->err, "%s: %s: %s", call, kv_strerror(s), msg);
    j->err = true;
}

static void note_wrong(judge *j, bool phantom, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note_wrong(judge *j, bool phantom, const char *fmt, ...)
{
    if (!j->wrong) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->out->why, sizeof j->out->why, fmt, ap);
        va_end(ap);
        j->out->phantom = phantom;
    }
    j->wrong = true;
}

/* "commit C" for an op version (op index + 1). */
static size_t commit_of(const dmg_env *e, uint64_t version)
{
    return e->op_commit[version - 1];
}

/* Describes how answer a for key k differs from the end of the history. */
static void describe(const judge *j, uint32_t k, uint64_t a, const char *who, char *buf, size_t cap)
{
    const dmg_env *e = j->e;
    uint64_t f = e->final_ver[k];
    int64_t last = e->last_op[k];
    size_t lc = last >= 0 ? e->op_commit[last] : 0;
    if (a == 0)
        snprintf(buf, cap, "k%07u vanished: %s finds nothing, but commit %zu put it last", k, who,
                 lc);
    else if (f == 0 && last >= 0)
        snprintf(buf, cap,
                 "k%07u came back: %s returns the value of commit %zu, but commit %zu deleted it",
                 k, who, commit_of(e, a), lc);
    else if (f == 0)
        snprintf(buf, cap, "k%07u was never written, but %s returns a value for it", k, who);
    else
        snprintf(buf, cap,
                 "k%07u is stale: %s returns the value of commit %zu, but commit %zu wrote it last",
                 k, who, commit_of(e, a), lc);
}

/* Is the answered state the history after p commits for some p in [lo, ncommits]? Replays the
 * history once, counting the answered keys that differ (O(ops + keys)). */
static bool is_legal_prefix(const judge *j, size_t lo, size_t *found)
{
    const dmg_env *e = j->e;
    const crash_workload *w = &e->x.w;
    uint64_t *cur = calloc(w->keys, sizeof *cur);
    if (!cur)
        return false;
    uint64_t mism = 0;
    for (uint32_t k = 0; k < w->keys; k++)
        mism += j->ans[k] != UNKNOWN && j->ans[k] != 0;
    bool ok = lo == 0 && mism == 0;
    *found = 0;
    for (size_t i = 0; i < w->ncommits && !ok; i++) {
        const cw_commit *c = &w->commits[i];
        for (uint32_t o = 0; o < c->n; o++) {
            const cw_op *op = &w->ops[c->first + o];
            uint64_t after = op->type == KV_OP_PUT ? op->version : 0;
            if (j->ans[op->key] != UNKNOWN)
                mism += (uint64_t)(after != j->ans[op->key]) - (cur[op->key] != j->ans[op->key]);
            cur[op->key] = after;
        }
        if (i + 1 >= lo && mism == 0) {
            ok = true;
            *found = i + 1;
        }
    }
    free(cur);
    return ok;
}

/* One phase: open (read-only or not), kv_get of every key, a scan, kv_check, and the verdict. */
static void phase(judge *j, const char *dir, bool ro)
{
    const dmg_env *e = j->e;
    const crash_workload *w = &e->x.w;
    const char *tag = ro ? "read-only open" : "open";
    char call[64];
    kv_options o = e->x.opts;
    o.fs = NULL;
    o.read_only = ro;
    kv_db *db = NULL;
    kv_status s = kv_open_engine(e->x.e, dir, &o, &db);
    if (s != KV_OK) {
        note_error(j, tag, s, kv_errmsg());
        return;
    }
    if (!ro)
        j->out->rw_opened = true;
    bool wrong_before = j->wrong;
    for (uint32_t k = 0; k < w->keys; k++) {
        j->ans[k] = j->scan[k] = UNKNOWN;
        char key[16];
        size_t kl = crash_key(k, key);
        void *v = NULL;
        size_t vl = 0;
        s = kv_get(db, key, kl, &v, &vl);
        if (s == KV_OK) {
            uint64_t ver = crash_value_verify(w, k, v, vl);
            if (!ver)
                note_wrong(j, true,
                           "%s: kv_get(k%07u) returns a value of %zu bytes never written for it",
                           tag, k, vl);
            else
                j->ans[k] = ver;
            kv_free(v);
        } else if (s == KV_NOT_FOUND) {
            j->ans[k] = 0;
        } else {
            snprintf(call, sizeof call, "%s, kv_get(k%07u)", tag, k);
            note_error(j, call, s, kv_errmsg());
        }
    }
    kv_iter *it = NULL;
    s = kv_iter_new(db, &it);
    if (s != KV_OK) {
        snprintf(call, sizeof call, "%s, kv_iter_new", tag);
        note_error(j, call, s, kv_errmsg());
    } else {
        int64_t prev = -1;
        bool stopped = false; /* at a wrong answer: the keys after it are no answer */
        for (kv_iter_seek_first(it); kv_iter_valid(it) && !stopped; kv_iter_next(it)) {
            size_t kl = 0, vl = 0;
            const void *key = kv_iter_key(it, &kl);
            const void *val = kv_iter_value(it, &vl);
            uint32_t k;
            if (!crash_key_parse(key, kl, w->keys, &k)) {
                note_wrong(j, true, "%s: the scan returns a key of %zu bytes never written", tag,
                           kl);
                stopped = true;
                break;
            }
            if ((int64_t)k <= prev) {
                note_wrong(j, false, "%s: the scan returns k%07u after k%07u", tag, k,
                           (uint32_t)prev);
                stopped = true;
                break;
            }
            for (int64_t m = prev + 1; m < (int64_t)k; m++)
                j->scan[m] = 0; /* skipped over: the scan says absent */
            prev = k;
            uint64_t ver = crash_value_verify(w, k, val, vl);
            if (!ver) {
                note_wrong(j, true, "%s: the scan returns for k%07u a value never written for it",
                           tag, k);
                stopped = true;
                break;
            }
            j->scan[k] = ver;
        }
        s = kv_iter_status(it);
        if (s != KV_OK) {
            snprintf(call, sizeof call, "%s, the scan", tag);
            note_error(j, call, s, kv_errmsg());
        } else if (!stopped) {
            for (int64_t m = prev + 1; m < (int64_t)w->keys; m++)
                j->scan[m] = 0;
        }
        kv_iter_free(it);
    }
    s = kv_check(db);
    j->phase_check_ok = s == KV_OK;
    if (s != KV_OK) {
        snprintf(call, sizeof call, "%s, kv_check", tag);
        note_error(j, call, s, kv_errmsg());
    }
    s = kv_close(db);
    if (s != KV_OK) {
        snprintf(call, sizeof call, "%s, kv_close", tag);
        note_error(j, call, s, kv_errmsg());
    }
    /* kv_get and the scan must agree; then the answers must be a legal state. */
    char buf[300];
    for (uint32_t k = 0; k < w->keys && !j->wrong; k++) {
        if (j->ans[k] != UNKNOWN && j->scan[k] != UNKNOWN && j->ans[k] != j->scan[k]) {
            describe(j, k, j->scan[k] == e->final_ver[k] ? j->ans[k] : j->scan[k],
                     j->scan[k] == e->final_ver[k] ? "kv_get" : "the scan", buf, sizeof buf);
            note_wrong(j, false, "%s: kv_get and the scan disagree: %s", tag, buf);
        }
        if (j->ans[k] == UNKNOWN)
            j->ans[k] = j->scan[k];
    }
    uint64_t differ = 0;
    uint32_t first = 0;
    for (uint32_t k = 0; k < w->keys; k++)
        if (j->ans[k] != UNKNOWN && j->ans[k] != e->final_ver[k] && differ++ == 0)
            first = k;
    size_t p = 0;
    if (differ && !j->wrong) {
        if (is_legal_prefix(j, j->p->lo, &p)) {
            j->suffix = true;
        } else {
            describe(j, first, j->ans[first], "a read", buf, sizeof buf);
            note_wrong(j, false, "%s: %s (%llu keys differ from the history's end%s)", tag, buf,
                       (unsigned long long)differ,
                       j->p->lo < w->ncommits ? ", and from every allowed prefix" : "");
        }
    }
    if (j->wrong && !wrong_before)
        j->out->check_ok = j->phase_check_ok;
}

/* ---- the directory before and after the read-only open ---- */

typedef struct dir_file {
    char *name;
    uint8_t *data;
    uint64_t size;
    bool is_dir;
} dir_file;

static size_t dir_load(const char *dir, dir_file **out)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    *out = NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            dir_file *nf = realloc(*out, cap * sizeof *nf);
            if (!nf)
                abort();
            *out = nf;
        }
        dir_file *f = &(*out)[n++];
        memset(f, 0, sizeof *f);
        f->name = strdup(de->d_name);
        char *p = crash_strf("%s/%s", dir, de->d_name);
        struct stat st;
        f->is_dir = lstat(p, &st) == 0 && !S_ISREG(st.st_mode);
        if (!f->is_dir && dmg_read_file(p, &f->data, &f->size) != 0)
            f->is_dir = true;
        free(p);
    }
    if (d)
        closedir(d);
    return n;
}

static void dir_free(dir_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].data);
    }
    free(f);
}

/* Describes the first difference between two loads into buf; false when there is none. */
static bool dir_differs(const dir_file *a, size_t na, const dir_file *b, size_t nb, char *buf,
                        size_t cap)
{
    for (size_t i = 0; i < na; i++) {
        const dir_file *m = NULL;
        for (size_t k = 0; k < nb && !m; k++)
            if (!strcmp(a[i].name, b[k].name))
                m = &b[k];
        if (!m) {
            snprintf(buf, cap, "the read-only open removed %s", a[i].name);
            return true;
        }
        if (a[i].is_dir != m->is_dir || a[i].size != m->size ||
            (a[i].size && memcmp(a[i].data, m->data, a[i].size))) {
            uint64_t at = 0;
            while (at < a[i].size && at < m->size && a[i].data[at] == m->data[at])
                at++;
            snprintf(buf, cap,
                     "the read-only open changed %s (%llu bytes before, %llu after, first "
                     "difference at offset %llu)",
                     a[i].name, (unsigned long long)a[i].size, (unsigned long long)m->size,
                     (unsigned long long)at);
            return true;
        }
    }
    for (size_t k = 0; k < nb; k++) {
        bool seen = false;
        for (size_t i = 0; i < na && !seen; i++)
            seen = !strcmp(a[i].name, b[k].name);
        if (!seen) {
            snprintf(buf, cap, "the read-only open created %s", b[k].name);
            return true;
        }
    }
    return false;
}

/* Whether msg names one of the damaged files (as a whole name, not part of a longer one) and,
 * unless a whole file is missing or wrong (p->whole_file), a byte offset ("offset 123"). */
static bool names_file_and_offset(const char *msg, const dmg_plan *p)
{
    bool file = false;
    for (size_t i = 0; i < p->nnames && !file; i++) {
        size_t len = strlen(p->names[i]);
        for (const char *at = strstr(msg, p->names[i]); at && !file;
             at = strstr(at + 1, p->names[i]))
            file =
                (at == msg || !isalnum((unsigned char)at[-1])) && !isalnum((unsigned char)at[len]);
    }
    if (!file)
        return false;
    if (p->whole_file)
        return true;
    for (const char *at = strstr(msg, "offset"); at; at = strstr(at + 1, "offset")) {
        const char *q = at + 6;
        while (*q == ' ' || *q == ':' || *q == '=')
            q++;
        if (isdigit((unsigned char)*q))
            return true;
    }
    return false;
}

void dmg_judge(dmg_env *e, const dmg_plan *p, const char *dir, dmg_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->magic = DMG_OUTCOME_MAGIC;
    judge j = {.e = e, .p = p, .out = out};
    j.ans = malloc(e->x.w.keys * sizeof *j.ans);
    j.scan = malloc(e->x.w.keys * sizeof *j.scan);
    if (!j.ans || !j.scan)
        abort();
    if (e->x.e->read_only) {
        dir_file *before = NULL, *after = NULL;
        size_t nb = dir_load(dir, &before);
        out->ro_ran = true;
        crash_set_doing(&e->x, "damage round (read-only open)", 0);
        phase(&j, dir, true);
        size_t na = dir_load(dir, &after);
        char buf[400];
        if (dir_differs(before, nb, after, na, buf, sizeof buf)) {
            out->ro_changed = true;
            if (!j.wrong)
                snprintf(out->why, sizeof out->why, "%s", buf);
        }
        dir_free(before, nb);
        dir_free(after, na);
    }
    phase(&j, dir, false);
    free(j.ans);
    free(j.scan);
    if (j.wrong)
        out->cls = CRASH_DMG_WRONG;
    else if (j.err)
        out->cls = names_file_and_offset(out->err, p) ? CRASH_DMG_ERR_LOC : CRASH_DMG_ERR;
    else
        out->cls = j.suffix ? CRASH_DMG_SUFFIX : CRASH_DMG_INTACT;
}
