/* The prefix oracle and the state reader of the crash checker (crash_oracle.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_oracle.h"

#define PHANTOM_VER UINT64_MAX /* a key whose value is not one that was written */

kv_status crash_state_init(crash_state *s, const crash_workload *w)
{
    memset(s, 0, sizeof *s);
    s->ver = calloc(w->keys, sizeof *s->ver);
    if (!s->ver)
        return kv_error(KV_NOMEM, "crash: out of memory");
    s->keys = w->keys;
    return KV_OK;
}

void crash_state_free(crash_state *s)
{
    free(s->ver);
    memset(s, 0, sizeof *s);
}

static void note(crash_state *s, const char *what)
{
    if (!s->problem[0])
        snprintf(s->problem, sizeof s->problem, "%s", what);
}

kv_status crash_state_read(kv_db *db, const crash_workload *w, crash_state *s)
{
    memset(s->ver, 0, (size_t)s->keys * sizeof *s->ver);
    s->phantoms = s->get_mismatch = 0;
    s->problem[0] = '\0';
    char msg[200];
    kv_iter *it = NULL;
    kv_status st = kv_iter_new(db, &it);
    if (st != KV_OK)
        return kv_error_wrap(st, "crash: kv_iter_new after recovery");
    bool have_prev = false;
    uint32_t prev = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const void *key = kv_iter_key(it, &kl);
        const void *val = kv_iter_value(it, &vl);
        uint32_t k;
        if (!crash_key_parse(key, kl, w->keys, &k)) {
            s->phantoms++;
            snprintf(msg, sizeof msg, "phantom key of %zu bytes '%.*s'", kl,
                     (int)(kl < 20 ? kl : 20), (const char *)key);
            note(s, msg);
            continue;
        }
        if (have_prev && k <= prev) {
            s->get_mismatch++;
            snprintf(msg, sizeof msg, "iterator: key k%07u after k%07u (order or duplicate)", k,
                     prev);
            note(s, msg);
        }
        have_prev = true;
        prev = k;
        uint64_t v = crash_value_verify(w, k, val, vl);
        if (!v) {
            s->phantoms++;
            s->ver[k] = PHANTOM_VER;
            snprintf(msg, sizeof msg, "key k%07u: value of %zu bytes was never written for it", k,
                     vl);
            note(s, msg);
        } else {
            s->ver[k] = v;
        }
    }
    st = kv_iter_status(it);
    kv_iter_free(it);
    if (st != KV_OK)
        return kv_error_wrap(st, "crash: iterator after recovery");
    for (uint32_t k = 0; k < w->keys; k++) {
        char key[16];
        size_t kl = crash_key(k, key);
        void *val = NULL;
        size_t vl = 0;
        st = kv_get(db, key, kl, &val, &vl);
        uint64_t got = 0;
        if (st == KV_OK) {
            got = crash_value_verify(w, k, val, vl);
            if (!got)
                got = PHANTOM_VER;
            kv_free(val);
        } else if (st != KV_NOT_FOUND) {
            return kv_error_wrap(st, "crash: kv_get(k%07u) after recovery", k);
        }
        if (got != s->ver[k]) {
            s->get_mismatch++;
            snprintf(msg, sizeof msg,
                     "key k%07u: kv_get gives version %llu, the iterator %llu (0 = absent)", k,
                     (unsigned long long)(got == PHANTOM_VER ? 0 : got),
                     (unsigned long long)(s->ver[k] == PHANTOM_VER ? 0 : s->ver[k]));
            note(s, msg);
        }
    }
    return KV_OK;
}

const char *crash_verdict_name(crash_verdict_kind k)
{
    switch (k) {
    case CV_OK:
        return "ok";
    case CV_LOST:
        return "lost";
    case CV_HOLE:
        return "hole";
    case CV_TORN_BATCH:
        return "torn batch";
    case CV_PHANTOM:
        return "phantom";
    }
    return "unknown";
}

/* Applies commit c to the model cur, keeping *mm = number of keys where cur != target. */
static void apply(const crash_workload *w, const cw_commit *c, uint64_t *cur,
                  const uint64_t *target, size_t *mm)
{
    for (uint32_t j = 0; j < c->n; j++) {
        const cw_op *op = &w->ops[c->first + j];
        uint32_t k = op->key;
        bool was = cur[k] != target[k];
        cur[k] = op->version;
        bool now = cur[k] != target[k];
        *mm = *mm + now - was;
    }
}

/* Whether, for the batch c applied to model cur (before) with mm_before mismatches, the target
 * equals the model except that some (not all, not none) of the batch's keys took the batch's
 * values: half a batch. */
static bool half_batch(const crash_workload *w, const cw_commit *c, const uint64_t *cur,
                       const uint64_t *target, size_t mm_before)
{
    if (c->n < 2 || c->n > 64 || mm_before == 0)
        return false;
    uint32_t keys[64];
    uint64_t after[64];
    size_t nk = 0;
    for (uint32_t j = 0; j < c->n; j++) { /* distinct keys and their values after the batch */
        const cw_op *op = &w->ops[c->first + j];
        size_t i = 0;
        while (i < nk && keys[i] != op->key)
            i++;
        if (i == nk)
            keys[nk++] = op->key;
        after[i] = op->version;
    }
    size_t diff_before = 0, took_new = 0, kept_old = 0;
    for (size_t i = 0; i < nk; i++) {
        uint32_t k = keys[i];
        if (cur[k] != target[k])
            diff_before++;
        if (target[k] == after[i] && cur[k] != after[i])
            took_new++;
        else if (target[k] == cur[k] && cur[k] != after[i])
            kept_old++;
        else if (target[k] != cur[k] && target[k] != after[i])
            return false; /* neither old nor new: not explained by this batch */
    }
    return diff_before == mm_before && took_new > 0 && kept_old > 0;
}

void crash_oracle_judge(const crash_workload *w, const crash_state *s, size_t acked, bool inflight,
                        size_t lo, crash_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (acked > w->ncommits)
        acked = w->ncommits;
    size_t hi = acked + (inflight && acked < w->ncommits ? 1 : 0);
    if (lo > acked)
        lo = acked;
    uint64_t *cur = calloc(w->keys ? w->keys : 1, sizeof *cur);
    if (!cur) {
        v->kind = CV_HOLE;
        snprintf(v->msg, sizeof v->msg, "oracle: out of memory");
        return;
    }
    size_t mm = 0;
    for (uint32_t k = 0; k < w->keys; k++)
        mm += s->ver[k] != 0;
    uint64_t writes_before = 0; /* state-changing commits in [0, p) */
    uint64_t writes_at_legal = 0, writes_at_eq = 0;
    bool legal = false, eq = false, torn = false;
    size_t legal_p = 0, eq_p = 0, close_p = 0, close_mm = mm + 1, torn_b = 0;
    for (size_t p = 0;; p++) {
        if (mm == 0) {
            eq = true;
            eq_p = p;
            writes_at_eq = writes_before;
            if (p >= lo) {
                legal = true;
                legal_p = p;
                writes_at_legal = writes_before;
            }
        }
        if (mm < close_mm) {
            close_mm = mm;
            close_p = p;
        }
        if (p == acked)
            v->acked_writes = writes_before;
        if (p >= hi)
            break;
        const cw_commit *c = &w->commits[p];
        if (c->kind == CW_BATCH && !torn && half_batch(w, c, cur, s->ver, mm)) {
            torn = true;
            torn_b = p;
        }
        apply(w, c, cur, s->ver, &mm);
        if (c->kind != CW_SYNC)
            writes_before++;
    }
    free(cur);
    uint64_t lost_base;
    if (legal) {
        v->kind = s->phantoms ? CV_PHANTOM : CV_OK;
        v->prefix = legal_p;
        lost_base = writes_at_legal;
    } else if (s->phantoms) {
        v->kind = CV_PHANTOM;
        v->prefix = close_p;
        lost_base = v->acked_writes;
    } else if (eq) {
        v->kind = CV_LOST;
        v->prefix = eq_p;
        lost_base = writes_at_eq;
    } else if (torn) {
        v->kind = CV_TORN_BATCH;
        v->prefix = torn_b;
        v->batch = torn_b;
        lost_base = v->acked_writes;
    } else {
        v->kind = CV_HOLE;
        v->prefix = close_p;
        lost_base = v->acked_writes;
    }
    v->lost_writes = lost_base < v->acked_writes ? v->acked_writes - lost_base : 0;
    switch (v->kind) {
    case CV_OK:
        snprintf(v->msg, sizeof v->msg,
                 "state = first %zu commits (acknowledged %zu, in flight %d, at least %zu)",
                 v->prefix, acked, inflight && acked < w->ncommits, lo);
        break;
    case CV_LOST:
        snprintf(v->msg, sizeof v->msg,
                 "acknowledged writes lost: state = first %zu commits, but the mode promises at "
                 "least %zu (acknowledged %zu)",
                 v->prefix, lo, acked);
        break;
    case CV_HOLE:
        snprintf(v->msg, sizeof v->msg,
                 "hole: the state is no prefix of the commits (closest: first %zu commits, %zu "
                 "keys differ; acknowledged %zu)",
                 close_p, close_mm, acked);
        break;
    case CV_TORN_BATCH:
        snprintf(v->msg, sizeof v->msg,
                 "torn batch: commit %zu (a batch of %u ops) is only partly present", torn_b,
                 w->commits[torn_b].n);
        break;
    case CV_PHANTOM:
        snprintf(v->msg, sizeof v->msg, "phantom: %llu values or keys never written: %.180s",
                 (unsigned long long)s->phantoms, s->problem);
        break;
    }
}

/* The commit holding op index i (binary search over commits' first op). */
static size_t commit_of_op(const crash_workload *w, size_t i)
{
    size_t lo = 0, hi = w->ncommits;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->commits[mid].first <= i)
            lo = mid;
        else
            hi = mid;
    }
    while (lo + 1 < w->ncommits && w->commits[lo].n == 0 && w->commits[lo + 1].first <= i)
        lo++;
    return lo;
}

void crash_oracle_diff(const crash_workload *w, const crash_state *s, size_t p, FILE *out,
                       size_t max)
{
    uint64_t *cur = calloc(w->keys ? w->keys : 1, sizeof *cur);
    if (!cur)
        return;
    for (size_t i = 0; i < p && i < w->ncommits; i++)
        for (uint32_t j = 0; j < w->commits[i].n; j++) {
            const cw_op *op = &w->ops[w->commits[i].first + j];
            cur[op->key] = op->version;
        }
    size_t shown = 0, total = 0;
    for (uint32_t k = 0; k < w->keys; k++) {
        if (cur[k] == s->ver[k])
            continue;
        if (total++ >= max)
            continue;
        shown++;
        fprintf(out, "    k%07u: recovered ", k);
        if (s->ver[k] == PHANTOM_VER)
            fprintf(out, "a value never written");
        else if (s->ver[k])
            fprintf(out, "version %llu (commit %zu)", (unsigned long long)s->ver[k],
                    commit_of_op(w, (size_t)(s->ver[k] - 1)));
        else
            fprintf(out, "absent");
        fprintf(out, ", the first %zu commits give ", p);
        if (cur[k])
            fprintf(out, "version %llu (commit %zu)", (unsigned long long)cur[k],
                    commit_of_op(w, (size_t)(cur[k] - 1)));
        else
            fprintf(out, "absent");
        /* The same in words: what the crash did to this key. */
        if (s->ver[k] == PHANTOM_VER)
            fprintf(out, ": invented\n");
        else if (!s->ver[k])
            fprintf(out, ": commit %zu lost\n", commit_of_op(w, (size_t)(cur[k] - 1)));
        else if (s->ver[k] > cur[k] && commit_of_op(w, (size_t)(s->ver[k] - 1)) >= p)
            fprintf(out, ": commit %zu survived though an earlier one was lost\n",
                    commit_of_op(w, (size_t)(s->ver[k] - 1)));
        else
            fprintf(out, ": came back (commit %zu's value, which a later commit %s)\n",
                    commit_of_op(w, (size_t)(s->ver[k] - 1)), cur[k] ? "overwrote" : "deleted");
    }
    if (total > shown)
        fprintf(out, "    ... %zu more keys differ\n", total - shown);
    free(cur);
}
