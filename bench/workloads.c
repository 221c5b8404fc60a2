/* The per-thread loops of every workload (workloads.h).
 *
 * Cheap harness, same checks: the keys of a thread's operations (and YCSB's choice of
 * operation and scan length) are drawn before the measured phase into the thread's plan, so
 * the loop reads them from memory instead of running a Feistel permutation, a zipfian draw or
 * a decimal formatter. Values are made and checked inline (keyval.h: a stamp store or compare
 * and a 16-byte-wide copy or compare of the pool: every byte is still checked). One clock read per
 * operation: the latency of an operation is the time from the previous operation's end to its own
 * end, so it is the engine call(s) plus the harness's work for one operation (taking its key from
 * the plan, checking the value read, keeping the latency: the null engine's p50 shows how much).
 * Two reads would exclude that work but cost one more TSC read per operation, which on a virtual
 * machine costs more than the work it would exclude. Latencies
 * go into an array and into the histogram after the run's clock has stopped (wl_thread_finish).
 * Everything runs inside the run's wall time, so the null engine's throughput shows the harness's
 * whole cost. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "workloads.h"

/* ---- the table ---- */

#define DB(n, k, l, h)                                                                             \
    {                                                                                              \
        n, k, l, h, 0, 0, 0, 0, 0, DIST_UNIFORM                                                    \
    }
#define YCSB(n, h, r, u, i, s, m, d)                                                               \
    {                                                                                              \
        n, WL_YCSB, true, h, r, u, i, s, m, d                                                      \
    }

const wl_def wl_table[] = {
    DB("fillseq", WL_FILLSEQ, false, "put N keys in key order into an empty database"),
    DB("fillrandom", WL_FILLRANDOM, false, "put N keys once each in a random order"),
    DB("overwrite", WL_OVERWRITE, true, "after a load, put N uniformly random keys again"),
    DB("readrandom", WL_READRANDOM, true, "after a load, get N uniformly random keys"),
    DB("readseq", WL_READSEQ, true, "after a load, read N records in key order (iterator)"),
    DB("readmissing", WL_READMISSING, true, "after a load, get N absent keys (key + '.')"),
    DB("seekrandom", WL_SEEKRANDOM, true, "after a load, N x (new iterator, seek, read one)"),
    DB("deleterandom", WL_DELETERANDOM, true,
       "after a load, delete min(N, OPS) keys, each once, random order"),
    DB("fillsync", WL_FILLSYNC, false, "fillrandom of --sync-ops keys, always in durability sync"),
    YCSB("ycsb-a", "load, then 50% read, 50% update, zipfian", 0.5, 0.5, 0, 0, 0, DIST_ZIPFIAN),
    YCSB("ycsb-b", "load, then 95% read, 5% update, zipfian", 0.95, 0.05, 0, 0, 0, DIST_ZIPFIAN),
    YCSB("ycsb-c", "load, then 100% read, zipfian", 1, 0, 0, 0, 0, DIST_ZIPFIAN),
    YCSB("ycsb-d", "load, then 95% read, 5% insert, latest", 0.95, 0, 0.05, 0, 0, DIST_LATEST),
    YCSB("ycsb-e", "load, then 95% scan (1-100 records), 5% insert, zipfian", 0, 0, 0.05, 0.95, 0,
         DIST_ZIPFIAN),
    YCSB("ycsb-f", "load, then 50% read, 50% read-modify-write, zipfian", 0.5, 0, 0, 0, 0.5,
         DIST_ZIPFIAN),
    DB("recover", WL_RECOVER, false,
       "load N keys in durability os in a child process, SIGKILL it at a seeded point, time "
       "the recovering open"),
    {NULL, 0, false, NULL, 0, 0, 0, 0, 0, 0},
};

const wl_def *wl_find(const char *name)
{
    for (const wl_def *w = wl_table; w->name; w++)
        if (!strcmp(w->name, name))
            return w;
    return NULL;
}

/* ---- threads ---- */

/* YCSB operations of the plan. */
typedef enum wl_op { OP_READ, OP_UPDATE, OP_INSERT, OP_SCAN, OP_RMW } wl_op;

bool wl_keytab_init(wl_shared *sh)
{
    sh->keytab = NULL;
    if (sh->wl->kind != WL_READSEQ && sh->wl->kind != WL_SEEKRANDOM && !(sh->wl->scan > 0))
        return true;
    if (sh->capacity > WL_PLAN_MAX_BYTES / (sh->key_size ? sh->key_size : 1))
        return true; /* too big: keys are formatted as needed */
    sh->keytab = malloc(sh->capacity * sh->key_size + 1);
    if (!sh->keytab)
        return false;
    for (uint64_t i = 0; i < sh->capacity; i++)
        kvb_key(sh->keytab + i * sh->key_size, sh->key_size, i);
    return true;
}

static uint64_t next_key(wl_thread *t);

/* Draws the thread's operations (wl_thread.plan_*). Returns false when out of memory. */
static bool plan_init(wl_thread *t)
{
    wl_shared *sh = t->sh;
    const wl_def *w = sh->wl;
    size_t ks = sh->key_size;
    uint64_t n = t->count;
    if (n == 0 || w->kind == WL_READSEQ || w->kind == WL_RECOVER || w->dist == DIST_LATEST ||
        n > WL_PLAN_MAX_BYTES / (sizeof(uint64_t) + ks + 2))
        return true;
    t->plan_idx = malloc(n * sizeof *t->plan_idx);
    t->plan_key = malloc(n * ks + 1);
    if (w->kind == WL_YCSB)
        t->plan_op = malloc(n);
    if (w->scan > 0)
        t->plan_len = malloc(n);
    if (!t->plan_idx || !t->plan_key || (w->kind == WL_YCSB && !t->plan_op) ||
        (w->scan > 0 && !t->plan_len))
        return false;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t i = t->first + j, idx = 0;
        switch (w->kind) {
        case WL_FILLSEQ:
            idx = i;
            break;
        case WL_FILLRANDOM:
        case WL_FILLSYNC:
        case WL_DELETERANDOM:
            idx = kvb_perm_at(&sh->perm, i);
            break;
        case WL_YCSB: {
            /* The same draws, in the same order, as drawing during the run. */
            double u = rng_double(&t->rng);
            wl_op op = u < w->read                                     ? OP_READ
                       : u < w->read + w->update                       ? OP_UPDATE
                       : u < w->read + w->update + w->insert           ? OP_INSERT
                       : u < w->read + w->update + w->insert + w->scan ? OP_SCAN
                                                                       : OP_RMW;
            t->plan_op[j] = (uint8_t)op;
            if (op == OP_SCAN)
                t->plan_len[j] = (uint8_t)(1 + rng_below(&t->rng, WL_MAX_SCAN));
            if (op == OP_INSERT)
                idx = 0; /* the index is taken at run time */
            else if (w->dist == DIST_ZIPFIAN)
                idx = zipf_scrambled_next(&t->zs, &t->rng);
            else
                idx = rng_below(&t->rng, sh->records);
            break;
        }
        default: /* overwrite, readrandom, readmissing, seekrandom: uniform over the records */
            idx = rng_below(&t->rng, sh->records);
            break;
        }
        t->plan_idx[j] = idx;
        kvb_key(t->plan_key + j * ks, ks, idx);
    }
    return true;
}

bool wl_thread_init(wl_thread *t, wl_shared *sh, unsigned id, uint64_t first, uint64_t count,
                    bool load)
{
    memset(t, 0, sizeof *t);
    t->sh = sh;
    t->id = id;
    t->first = first;
    t->count = count;
    t->rng.s = sh->seed * 0x2545f4914f6cdd1dull + (uint64_t)id * 0x9e3779b97f4a7c15ull +
               (uint64_t)(sh->wl - wl_table) * 0xda942042e4dd58b5ull;
    zipf_scrambled_init(&t->zs, sh->zipf_items ? sh->zipf_items : 1);
    t->latest = sh->latest_base;
    bench_clock_init();
    kvb_init();
    t->hist = kv_histogram_new();
    t->key = malloc(sh->key_size + 1);
    t->key2 = malloc(sh->key_size + 1);
    t->val = malloc(sh->value_size ? sh->value_size : 1);
    if (!t->hist || !t->key || !t->key2 || !t->val)
        return false;
    if (load)
        return true;
    if (count && count <= WL_PLAN_MAX_BYTES / sizeof *t->lat &&
        !(t->lat = malloc(count * sizeof *t->lat)))
        return false;
    if (sh->rate) {
        if (!(t->svc_hist = kv_histogram_new()))
            return false;
        if (t->lat && !(t->svc = malloc(count * sizeof *t->svc)))
            return false;
    }
    return plan_init(t);
}

void wl_sched_init(wl_sched *s, const wl_thread *t)
{
    const wl_shared *sh = t->sh;
    double per_thread = sh->rate ? (double)sh->rate / (double)(sh->threads ? sh->threads : 1) : 1;
    s->gap = 1e9 / per_thread / bench_ns_per_tick;
    s->next = 0;
    s->poisson = sh->poisson;
    s->rng.s = sh->seed * 0x9fb21c651e98df25ull + (uint64_t)t->id * 0xc2b2ae3d27d4eb4full + 1;
}

void wl_thread_free(wl_thread *t)
{
    kv_histogram_free(t->hist);
    free(t->key);
    free(t->key2);
    free(t->val);
    free(t->plan_idx);
    free(t->plan_key);
    free(t->plan_op);
    free(t->plan_len);
    free(t->lat);
    free(t->svc);
    free(t->big);
    kv_histogram_free(t->svc_hist);
    kv_batch_free(t->batch);
    memset(t, 0, sizeof *t);
}

void wl_fail(wl_shared *sh, const char *fmt, ...)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&sh->failed, &expected, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->error, sizeof sh->error, fmt, ap);
        va_end(ap);
    }
    atomic_store(&sh->stop, 1);
}

/* A latency of UINT32_MAX ticks or more (about 1.4 s at 3 GHz): into the histogram at once,
 * and into the overflow list so that the timeline can still place the operation. */
static __attribute__((noinline, cold)) void lat_big(wl_thread *t, uint64_t j, uint64_t ticks)
{
    t->lat[j] = UINT32_MAX;
    kv_histogram_record(t->hist, bench_ticks_ns(ticks));
    if (t->n_big == t->cap_big) {
        size_t cap = t->cap_big ? 2 * t->cap_big : 16;
        struct wl_big *b = realloc(t->big, cap * sizeof *b);
        if (!b)
            return; /* the timeline then counts the operation without its time */
        t->big = b;
        t->cap_big = cap;
    }
    t->big[t->n_big++] = (struct wl_big){j, ticks};
}

/* Keeps the latency of operation j (clock ticks). */
static inline void lat_keep(wl_thread *t, uint64_t j, uint64_t ticks)
{
    if (t->lat && ticks < UINT32_MAX) {
        t->lat[j] = (uint32_t)ticks;
        return;
    }
    if (t->lat)
        lat_big(t, j, ticks);
    else
        kv_histogram_record(t->hist, bench_ticks_ns(ticks));
}

/* Keeps the service time of operation j of a --rate run (clock ticks). */
static inline void svc_keep(wl_thread *t, uint64_t j, uint64_t ticks)
{
    if (t->svc && ticks < UINT32_MAX)
        t->svc[j] = (uint32_t)ticks;
    else {
        if (t->svc)
            t->svc[j] = UINT32_MAX;
        kv_histogram_record(t->svc_hist, bench_ticks_ns(ticks));
    }
}

void wl_thread_finish(wl_thread *t)
{
    uint64_t n = atomic_load(&t->done);
    for (uint64_t j = 0; t->lat && j < n && j < t->count; j++)
        if (t->lat[j] != UINT32_MAX)
            kv_histogram_record(t->hist, bench_ticks_ns(t->lat[j]));
    for (uint64_t j = 0; t->svc && j < n && j < t->count; j++)
        if (t->svc[j] != UINT32_MAX)
            kv_histogram_record(t->svc_hist, bench_ticks_ns(t->svc[j]));
    free(t->svc);
    t->svc = NULL;
}

uint64_t wl_thread_latency(const wl_thread *t, uint64_t j, size_t *big_pos)
{
    if (!t->lat)
        return 0;
    if (t->lat[j] != UINT32_MAX)
        return t->lat[j];
    while (*big_pos < t->n_big && t->big[*big_pos].j < j)
        (*big_pos)++;
    return *big_pos < t->n_big && t->big[*big_pos].j == j ? t->big[*big_pos].ticks : UINT32_MAX;
}

static int call_failed(wl_thread *t, const char *call, uint64_t idx, kv_status s)
{
    wl_fail(t->sh, "%s: %s(key %llu): %s: %s", t->sh->wl->name, call, (unsigned long long)idx,
            kv_strerror(s), kv_errmsg());
    return -1;
}

/* Whether record idx is readable: loaded, or inserted and acknowledged. */
static inline bool present(const wl_shared *sh, uint64_t idx)
{
    if (idx < sh->records)
        return true;
    return idx - sh->records < sh->max_inserts &&
           atomic_load_explicit(&sh->ins_acked[idx - sh->records], memory_order_acquire);
}

/* The latest version issued for idx. */
static inline uint32_t issued_version(const wl_shared *sh, uint64_t idx)
{
    return sh->fixed_version ? sh->fixed_version
                             : atomic_load_explicit(&sh->versions[idx], memory_order_relaxed);
}

/* Reports a failed check (out of line: the checks' fast path stays small). */
static __attribute__((noinline, cold)) int
check_failed(wl_thread *t, uint64_t idx, size_t vlen, bool bad_value, uint32_t ver, uint32_t issued)
{
    wl_shared *sh = t->sh;
    if (bad_value)
        wl_fail(sh, "%s: key %llu: the value read (%zu bytes) is not a value written for it",
                sh->wl->name, (unsigned long long)idx, vlen);
    else
        wl_fail(sh, "%s: key %llu: read version %u, but the latest written is %u", sh->wl->name,
                (unsigned long long)idx, ver, issued);
    return -1;
}

/* Checks that (key idx, value v) is a value written for idx, of a version issued so far (the
 * latest one when a single thread runs, since nothing else can be in flight): its length, its
 * stamp and every byte of its filler. The fast path compares v with the latest version's
 * value (computed from idx and that version alone, so it overlaps the engine call); anything
 * else (an older version with several threads, or a wrong value) takes kvb_value_check. */
static inline __attribute__((always_inline)) int check_value(wl_thread *t, uint64_t idx,
                                                             const void *v, size_t vlen)
{
    wl_shared *sh = t->sh;
    uint32_t issued = issued_version(sh, idx);
    if (!kvb_value_is(v, vlen, sh->value_size, idx, issued)) {
        uint32_t ver;
        if (!kvb_value_check(v, vlen, sh->value_size, idx, &ver))
            return check_failed(t, idx, vlen, true, 0, 0);
        if (sh->value_size >= KVB_STAMP) {
            /* a version may be newer than the one loaded here when other threads write */
            issued = issued_version(sh, idx);
            if (ver == 0 || ver > issued || (sh->threads == 1 && ver != issued))
                return check_failed(t, idx, vlen, false, ver, issued);
        }
    }
    t->bytes += sh->key_size + vlen;
    return 0;
}

/* The key of idx: the planned one, or formatted now into t->key. */
static inline const uint8_t *key_of(wl_thread *t, uint64_t idx, const uint8_t *planned)
{
    if (planned)
        return planned;
    kvb_key(t->key, t->sh->key_size, idx);
    return t->key;
}

/* ---- operations: each returns 0 or -1; key is idx's key from the plan or NULL ---- */

static int op_put(wl_thread *t, uint64_t idx, const uint8_t *key)
{
    wl_shared *sh = t->sh;
    uint32_t ver;
    if (sh->threads == 1) { /* no other writer: a plain increment, not a locked one */
        ver = atomic_load_explicit(&sh->versions[idx], memory_order_relaxed) + 1;
        atomic_store_explicit(&sh->versions[idx], ver, memory_order_relaxed);
    } else {
        ver = atomic_fetch_add_explicit(&sh->versions[idx], 1, memory_order_relaxed) + 1;
    }
    key = key_of(t, idx, key);
    kvb_value_fast(t->val, sh->value_size, idx, ver);
    kv_status s = sh->null ? KV_OK : kv_put(sh->db, key, sh->key_size, t->val, sh->value_size);
    if (s != KV_OK)
        return call_failed(t, "put", idx, s);
    t->bytes += sh->key_size + sh->value_size;
    return 0;
}

static int op_get(wl_thread *t, uint64_t idx, const uint8_t *key)
{
    wl_shared *sh = t->sh;
    void *v = NULL;
    size_t vlen = 0;
    key = key_of(t, idx, key);
    kv_status s;
    if (sh->null) {
        /* The null engine answers with the value written (made here: its only work). */
        kvb_value_fast(t->val, sh->value_size, idx, issued_version(sh, idx));
        v = t->val;
        vlen = sh->value_size;
        s = KV_OK;
    } else {
        s = kv_get(sh->db, key, sh->key_size, &v, &vlen);
    }
    if (s == KV_NOT_FOUND) {
        wl_fail(sh, "%s: get(key %llu): not found, but it was written", sh->wl->name,
                (unsigned long long)idx);
        return -1;
    }
    if (s != KV_OK)
        return call_failed(t, "get", idx, s);
    int rc = check_value(t, idx, v, vlen); /* the same check for every engine, null too */
    if (!sh->null)
        kv_free(v);
    return rc;
}

static int op_get_missing(wl_thread *t, uint64_t idx, const uint8_t *key)
{
    wl_shared *sh = t->sh;
    void *v = NULL;
    size_t vlen = 0;
    if (key)
        memcpy(t->key, key, sh->key_size);
    else
        kvb_key(t->key, sh->key_size, idx);
    t->key[sh->key_size] = '.';
    kv_status s = sh->null ? KV_NOT_FOUND : kv_get(sh->db, t->key, sh->key_size + 1, &v, &vlen);
    if (s == KV_OK) {
        kv_free(v);
        wl_fail(sh, "%s: get(key %llu + '.'): found a key that was never written", sh->wl->name,
                (unsigned long long)idx);
        return -1;
    }
    if (s != KV_NOT_FOUND)
        return call_failed(t, "get", idx, s);
    t->bytes += sh->key_size + 1;
    return 0;
}

static int op_delete(wl_thread *t, uint64_t idx, const uint8_t *key)
{
    wl_shared *sh = t->sh;
    key = key_of(t, idx, key);
    kv_status s = sh->null ? KV_OK : kv_delete(sh->db, key, sh->key_size);
    if (s != KV_OK)
        return call_failed(t, "delete", idx, s);
    t->bytes += sh->key_size;
    return 0;
}

/* ---- iterators over the target (the null engine walks synthetic records) ---- */

typedef struct tit {
    wl_thread *t;
    kv_iter *it;
    uint64_t idx, end; /* null engine: current record and end of the records */
} tit;

static kv_status tit_open(wl_thread *t, tit *i)
{
    i->t = t;
    i->it = NULL;
    i->idx = i->end = atomic_load(&t->sh->ins_next);
    if (t->sh->null)
        return KV_OK;
    return kv_iter_new(t->sh->db, &i->it);
}

/* The null engine's iterator skips records inserted but not yet acknowledged. */
static inline void null_skip(tit *i)
{
    while (i->idx < i->end && !present(i->t->sh, i->idx))
        i->idx++;
}

static void tit_seek(tit *i, uint64_t idx, const uint8_t *key)
{
    if (!i->it) {
        i->idx = idx;
        null_skip(i);
        return;
    }
    if (!key) {
        kvb_key(i->t->key2, i->t->sh->key_size, idx);
        key = i->t->key2;
    }
    kv_iter_seek(i->it, key, i->t->sh->key_size);
}

static inline bool tit_valid(tit *i)
{
    return i->it ? kv_iter_valid(i->it) : i->idx < i->end;
}

static inline void tit_next(tit *i)
{
    if (i->it) {
        kv_iter_next(i->it);
    } else {
        i->idx++;
        null_skip(i);
    }
}

static inline __attribute__((always_inline)) void tit_entry(tit *i, const void **k, size_t *kl,
                                                            const void **v, size_t *vl)
{
    wl_shared *sh = i->t->sh;
    if (i->it) {
        *k = kv_iter_key(i->it, kl);
        *v = kv_iter_value(i->it, vl);
        return;
    }
    /* The null engine's record: the key from the key table, the value made now. */
    if (sh->keytab) {
        *k = sh->keytab + i->idx * sh->key_size;
    } else {
        kvb_key(i->t->key2, sh->key_size, i->idx);
        *k = i->t->key2;
    }
    kvb_value_fast(i->t->val, sh->value_size, i->idx, issued_version(sh, i->idx));
    *kl = sh->key_size;
    *v = i->t->val;
    *vl = sh->value_size;
}

static kv_status tit_close(tit *i)
{
    kv_status s = KV_OK;
    if (i->it) {
        s = kv_iter_status(i->it);
        kv_iter_free(i->it);
        i->it = NULL;
    }
    return s;
}

/* Reads the iterator's record, checking it is record want (or any record after prev when
 * want is UINT64_MAX) and its value. Stores its index in *got. The same check for every
 * engine, null too. */
static inline __attribute__((always_inline)) int tit_check(tit *i, uint64_t want, uint64_t prev,
                                                           uint64_t *got)
{
    wl_shared *sh = i->t->sh;
    const void *k, *v;
    size_t kl, vl;
    uint64_t idx;
    tit_entry(i, &k, &kl, &v, &vl);
    /* The expected key (want, or the record after prev) is usually there: compare it with the
     * key table; anything else is parsed and checked the long way. */
    uint64_t guess = want != UINT64_MAX ? want : prev + 1;
    if (sh->keytab && kl == sh->key_size && guess < sh->capacity &&
        kvb_equal(k, sh->keytab + guess * sh->key_size, kl)) {
        idx = guess;
    } else if (!kvb_key_parse(k, kl, sh->key_size, &idx) || idx >= sh->capacity) {
        wl_fail(sh, "%s: the iterator returned a key (%zu bytes) that was never written",
                sh->wl->name, kl);
        return -1;
    }
    if ((want != UINT64_MAX && idx != want) ||
        (want == UINT64_MAX && prev != UINT64_MAX && idx <= prev)) {
        wl_fail(sh, "%s: the iterator returned key %llu where key %llu was expected", sh->wl->name,
                (unsigned long long)idx,
                (unsigned long long)(want != UINT64_MAX ? want : prev + 1));
        return -1;
    }
    *got = idx;
    return check_value(i->t, idx, v, vl);
}

static int iter_failed(wl_thread *t, const char *call, kv_status s)
{
    wl_fail(t->sh, "%s: %s: %s: %s", t->sh->wl->name, call, kv_strerror(s), kv_errmsg());
    return -1;
}

/* New iterator, seek to idx, read the record there (it exists). */
static int op_seek(wl_thread *t, uint64_t idx, const uint8_t *key)
{
    tit i;
    uint64_t got = 0;
    kv_status s = tit_open(t, &i);
    if (s != KV_OK)
        return iter_failed(t, "iterator", s);
    tit_seek(&i, idx, key);
    bool valid = tit_valid(&i);
    int rc = valid ? tit_check(&i, idx, UINT64_MAX, &got) : 0;
    s = tit_close(&i);
    if (rc)
        return rc;
    if (s != KV_OK)
        return iter_failed(t, "seek", s);
    if (!valid) {
        wl_fail(t->sh, "%s: seek(key %llu) found no record", t->sh->wl->name,
                (unsigned long long)idx);
        return -1;
    }
    return 0;
}

/* YCSB scan: new iterator, seek to idx (a present record), read up to len records in order,
 * checking each. */
static int op_scan(wl_thread *t, uint64_t idx, const uint8_t *key, unsigned len)
{
    tit i;
    uint64_t got = 0, prev = UINT64_MAX;
    kv_status s = tit_open(t, &i);
    if (s != KV_OK)
        return iter_failed(t, "iterator", s);
    tit_seek(&i, idx, key);
    int rc = 0;
    for (unsigned n = 0; n < len && tit_valid(&i); n++) {
        rc = tit_check(&i, n == 0 ? idx : UINT64_MAX, prev, &got);
        if (rc)
            break;
        prev = got;
        tit_next(&i);
    }
    s = tit_close(&i);
    if (rc == 0 && s != KV_OK)
        return iter_failed(t, "scan", s);
    return rc;
}

/* ---- key choice during the run (no plan, or a planned key not yet inserted) ---- */

static uint64_t next_key(wl_thread *t)
{
    wl_shared *sh = t->sh;
    for (;;) {
        uint64_t k;
        uint64_t limit = atomic_load_explicit(&sh->ins_next, memory_order_relaxed);
        switch (sh->wl->dist) {
        case DIST_ZIPFIAN:
            k = zipf_scrambled_next(&t->zs, &t->rng);
            break;
        case DIST_LATEST:
            k = zipf_latest_next(&t->latest, &t->rng, limit - 1);
            break;
        default:
            k = rng_below(&t->rng, limit);
            break;
        }
        if (present(sh, k))
            return k;
    }
}

static int op_insert(wl_thread *t)
{
    wl_shared *sh = t->sh;
    uint64_t idx = atomic_fetch_add(&sh->ins_next, 1);
    if (idx - sh->records >= sh->max_inserts) {
        wl_fail(sh, "%s: more inserts than the %llu planned", sh->wl->name,
                (unsigned long long)sh->max_inserts);
        return -1;
    }
    int rc = op_put(t, idx, sh->keytab ? sh->keytab + idx * sh->key_size : NULL);
    if (rc == 0)
        atomic_store_explicit(&sh->ins_acked[idx - sh->records], 1, memory_order_release);
    return rc;
}

/* One YCSB operation: op on idx (with its key, or NULL) for scans of len records. */
static int ycsb_do(wl_thread *t, wl_op op, uint64_t idx, const uint8_t *key, unsigned len)
{
    switch (op) {
    case OP_READ:
        return op_get(t, idx, key);
    case OP_UPDATE:
        return op_put(t, idx, key);
    case OP_INSERT:
        return op_insert(t);
    case OP_SCAN:
        return op_scan(t, idx, key, len);
    default: { /* read-modify-write */
        int rc = op_get(t, idx, key);
        return rc ? rc : op_put(t, idx, key);
    }
    }
}

/* A YCSB operation drawn now (no plan). */
static int ycsb_op(wl_thread *t)
{
    const wl_def *w = t->sh->wl;
    double u = rng_double(&t->rng);
    if (u < w->read)
        return op_get(t, next_key(t), NULL);
    u -= w->read;
    if (u < w->update)
        return op_put(t, next_key(t), NULL);
    u -= w->update;
    if (u < w->insert)
        return op_insert(t);
    u -= w->insert;
    if (u < w->scan) {
        unsigned len = 1 + (unsigned)rng_below(&t->rng, WL_MAX_SCAN);
        return op_scan(t, next_key(t), NULL, len);
    }
    return ycsb_do(t, OP_RMW, next_key(t), NULL, 0);
}

/* ---- the loops ---- */

/* readseq: one iterator per thread, starting at the thread's slice, wrapping at the end. A
 * record's latency runs from the previous clock reading (so it includes the check of the
 * previous record). */
static int run_readseq(wl_thread *t)
{
    wl_shared *sh = t->sh;
    tit i;
    kv_status s = tit_open(t, &i);
    if (s != KV_OK)
        return iter_failed(t, "iterator", s);
    uint64_t want = sh->records ? t->first % sh->records : 0, got = 0;
    uint64_t t0 = bench_ticks();
    t->start_tick = t0;
    tit_seek(&i, want, NULL);
    int rc = 0;
    for (uint64_t j = 0; j < t->count && rc == 0; j++) {
        if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
            break;
        if (!tit_valid(&i)) {
            if ((s = tit_close(&i)) != KV_OK || (s = tit_open(t, &i)) != KV_OK) {
                rc = iter_failed(t, "readseq", s);
                break;
            }
            want = 0;
            tit_seek(&i, 0, NULL);
            if (!tit_valid(&i)) {
                wl_fail(sh, "readseq: the database is empty after the load");
                rc = -1;
                break;
            }
        }
        uint64_t t1 = bench_ticks();
        lat_keep(t, j, t1 - t0);
        t0 = t1;
        rc = tit_check(&i, want, UINT64_MAX, &got);
        want = got + 1;
        atomic_store_explicit(&t->done, j + 1, memory_order_relaxed);
        tit_next(&i);
    }
    s = tit_close(&i);
    if (rc == 0 && s != KV_OK)
        return iter_failed(t, "readseq", s);
    return rc;
}

/* Operation j drawn now (no plan). */
static int op_unplanned(wl_thread *t, uint64_t j)
{
    wl_shared *sh = t->sh;
    uint64_t i = t->first + j;
    switch (sh->wl->kind) {
    case WL_FILLSEQ:
        return op_put(t, i, NULL);
    case WL_FILLRANDOM:
    case WL_FILLSYNC:
        return op_put(t, kvb_perm_at(&sh->perm, i), NULL);
    case WL_OVERWRITE:
        return op_put(t, rng_below(&t->rng, sh->records), NULL);
    case WL_READRANDOM:
        return op_get(t, rng_below(&t->rng, sh->records), NULL);
    case WL_READMISSING:
        return op_get_missing(t, rng_below(&t->rng, sh->records), NULL);
    case WL_SEEKRANDOM:
        return op_seek(t, rng_below(&t->rng, sh->records), NULL);
    case WL_DELETERANDOM:
        return op_delete(t, kvb_perm_at(&sh->perm, i), NULL);
    default:
        return ycsb_op(t);
    }
}

/* Operation j of the plan. */
static inline __attribute__((always_inline)) int op_planned(wl_thread *t, uint64_t j)
{
    wl_shared *sh = t->sh;
    uint64_t idx = t->plan_idx[j];
    const uint8_t *key = t->plan_key + j * sh->key_size;
    switch (sh->wl->kind) {
    case WL_FILLSEQ:
    case WL_FILLRANDOM:
    case WL_FILLSYNC:
    case WL_OVERWRITE:
        return op_put(t, idx, key);
    case WL_READRANDOM:
        return op_get(t, idx, key);
    case WL_READMISSING:
        return op_get_missing(t, idx, key);
    case WL_SEEKRANDOM:
        return op_seek(t, idx, key);
    case WL_DELETERANDOM:
        return op_delete(t, idx, key);
    default: {
        wl_op op = (wl_op)t->plan_op[j];
        if (op != OP_INSERT && !present(sh, idx)) { /* not inserted yet: draw again, as YCSB */
            idx = next_key(t);
            key = NULL;
        }
        return ycsb_do(t, op, idx, key, t->plan_len ? t->plan_len[j] : 0);
    }
    }
}

/* How many planned ops ahead wl_thread_run prefetches a key's version. */
#define WL_PREFETCH_AHEAD 4

/* Waits until the clock reads due (sleeping while more than 200 us remain, then spinning) or
 * the run is told to stop. Returns the clock reading. */
static uint64_t wait_until(wl_shared *sh, uint64_t due)
{
    uint64_t now = bench_ticks();
    while (now < due && !atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        double ns = (double)(due - now) * bench_ns_per_tick;
        if (ns > 200000) {
            double sleep_ns = ns - 100000;
            if (sleep_ns > 0.1e9)
                sleep_ns = 0.1e9; /* look at the stop flag at least every 100 ms */
            struct timespec ts = {0, (long)sleep_ns};
            nanosleep(&ts, NULL);
        } else {
#if defined(__x86_64__) || defined(__i386__)
            _mm_pause();
#endif
        }
        now = bench_ticks();
    }
    return now;
}

/* The open loop of a --rate run (wrk2's and YCSB's intended-time measurement): operation j is
 * due at start + its scheduled offset; the thread waits for that time if it is early, and
 * when it is late (an earlier operation stalled) it starts at once. The latency kept runs from
 * the due time, so a stall counts in every operation queued behind it; the service time runs
 * from the actual start. Two clock readings per operation. */
static int run_rate(wl_thread *t)
{
    wl_shared *sh = t->sh;
    wl_sched sched;
    wl_sched_init(&sched, t);
    uint64_t start = bench_ticks();
    t->start_tick = start;
    for (uint64_t j = 0; j < t->count; j++) {
        if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
            break;
        uint64_t due = start + wl_sched_next(&sched);
        uint64_t begin = bench_ticks();
        if (begin < due)
            begin = wait_until(sh, due);
        if (begin < due) /* told to stop while waiting */
            break;
        int rc = t->plan_idx ? op_planned(t, j) : op_unplanned(t, j);
        if (rc)
            return rc;
        uint64_t end = bench_ticks();
        lat_keep(t, j, end - due);
        svc_keep(t, j, end - begin);
        atomic_store_explicit(&t->done, j + 1, memory_order_relaxed);
    }
    return 0;
}

int wl_thread_run(wl_thread *t)
{
    wl_shared *sh = t->sh;
    if (sh->wl->kind == WL_READSEQ)
        return run_readseq(t);
    if (sh->rate)
        return run_rate(t);
    /* The version of a planned key is read (get) or bumped (put) by its op: fetch its cache
     * line a few ops ahead, so a large key count does not add a cache miss to every op of every
     * engine (4 MiB of versions at 1M keys). Read-only workloads never look at versions (every
     * record has fixed_version), so they skip it: a prefetch costs a page walk when its page
     * is not in the TLB. */
    bool prefetch = t->plan_idx && !sh->fixed_version;
    uint64_t t0 = bench_ticks();
    t->start_tick = t0;
    for (uint64_t j = 0; j < t->count; j++) {
        if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
            break;
        if (prefetch && j + WL_PREFETCH_AHEAD < t->count)
            __builtin_prefetch(&sh->versions[t->plan_idx[j + WL_PREFETCH_AHEAD]], 1, 3);
        int rc = t->plan_idx ? op_planned(t, j) : op_unplanned(t, j);
        if (rc)
            return rc;
        uint64_t t1 = bench_ticks();
        lat_keep(t, j, t1 - t0);
        t0 = t1;
        atomic_store_explicit(&t->done, j + 1, memory_order_relaxed);
    }
    return 0;
}

int wl_load(wl_thread *t)
{
    wl_shared *sh = t->sh;
    if (!sh->null && !t->batch && !(t->batch = kv_batch_new())) {
        wl_fail(sh, "load: out of memory");
        return -1;
    }
    for (uint64_t j = 0; j < t->count; j++) {
        /* told to stop (the time limit): between two batches, so nothing is half written */
        if ((sh->null || kv_batch_count(t->batch) == 0) &&
            atomic_load_explicit(&sh->stop, memory_order_relaxed))
            break;
        uint64_t idx = kvb_perm_at(&sh->perm, t->first + j);
        uint32_t ver = atomic_fetch_add_explicit(&sh->versions[idx], 1, memory_order_relaxed) + 1;
        if (sh->null)
            continue;
        kvb_key(t->key, sh->key_size, idx);
        kvb_value(t->val, sh->value_size, idx, ver);
        kv_status s = kv_batch_put(t->batch, t->key, sh->key_size, t->val, sh->value_size);
        if (s == KV_OK && (kv_batch_count(t->batch) == WL_LOAD_BATCH ||
                           kv_batch_bytes(t->batch) >= WL_LOAD_BATCH_BYTES || j + 1 == t->count)) {
            if (t->progress)
                atomic_store(&t->progress[0], j + 1);
            s = kv_write(sh->db, t->batch);
            kv_batch_clear(t->batch);
            if (s == KV_OK && t->progress)
                atomic_store(&t->progress[1], j + 1);
        }
        if (s != KV_OK)
            return call_failed(t, "load: write", idx, s);
        atomic_store_explicit(&t->done, j + 1, memory_order_relaxed);
    }
    return 0;
}
