/* The per-thread loops of every workload (workloads.h). Latency covers only the engine calls of
 * an operation (for read-modify-write: the get and the put); key and value generation and
 * value checks run outside it but inside the run's wall time, so the null engine's throughput
 * shows the harness's whole cost. */
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

bool wl_thread_init(wl_thread *t, wl_shared *sh, unsigned id, uint64_t first, uint64_t count)
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
    t->hist = kv_histogram_new();
    t->key = malloc(sh->key_size + 1);
    t->key2 = malloc(sh->key_size + 1);
    t->val = malloc(sh->value_size ? sh->value_size : 1);
    return t->hist && t->key && t->key2 && t->val;
}

void wl_thread_free(wl_thread *t)
{
    kv_histogram_free(t->hist);
    free(t->key);
    free(t->key2);
    free(t->val);
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

/* Operation latencies are kept in clock ticks and converted when recorded. */
static inline uint64_t now_ns(void)
{
    return bench_ticks();
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

/* Checks that (key idx, value v) is a value written for idx, of a version issued so far (the
 * latest one when a single thread runs, since nothing else can be in flight). */
static int check_value(wl_thread *t, uint64_t idx, const void *v, size_t vlen)
{
    wl_shared *sh = t->sh;
    uint32_t ver;
    if (!kvb_value_check(v, vlen, sh->value_size, idx, &ver)) {
        wl_fail(sh, "%s: key %llu: the value read (%zu bytes) is not a value written for it",
                sh->wl->name, (unsigned long long)idx, vlen);
        return -1;
    }
    if (sh->value_size >= KVB_STAMP) {
        uint32_t issued = sh->fixed_version
                              ? sh->fixed_version
                              : atomic_load_explicit(&sh->versions[idx], memory_order_relaxed);
        if (ver == 0 || ver > issued || (sh->threads == 1 && ver != issued)) {
            wl_fail(sh, "%s: key %llu: read version %u, but the latest written is %u", sh->wl->name,
                    (unsigned long long)idx, ver, issued);
            return -1;
        }
    }
    t->bytes += sh->key_size + vlen;
    return 0;
}

/* ---- operations: each returns 0 or -1 and adds its engine time to *lat ---- */

static int op_put(wl_thread *t, uint64_t idx, uint64_t *lat)
{
    wl_shared *sh = t->sh;
    uint32_t ver = atomic_fetch_add_explicit(&sh->versions[idx], 1, memory_order_relaxed) + 1;
    kvb_key(t->key, sh->key_size, idx);
    kvb_value(t->val, sh->value_size, idx, ver);
    uint64_t t0 = now_ns();
    kv_status s = sh->null ? KV_OK : kv_put(sh->db, t->key, sh->key_size, t->val, sh->value_size);
    *lat += now_ns() - t0;
    if (s != KV_OK)
        return call_failed(t, "put", idx, s);
    t->bytes += sh->key_size + sh->value_size;
    return 0;
}

static int op_get(wl_thread *t, uint64_t idx, uint64_t *lat)
{
    wl_shared *sh = t->sh;
    void *v = NULL;
    size_t vlen = 0;
    kvb_key(t->key, sh->key_size, idx);
    uint64_t t0 = now_ns();
    kv_status s;
    if (sh->null) {
        kvb_value(t->val, sh->value_size, idx,
                  sh->fixed_version
                      ? sh->fixed_version
                      : atomic_load_explicit(&sh->versions[idx], memory_order_relaxed));
        v = t->val;
        vlen = sh->value_size;
        s = KV_OK;
    } else {
        s = kv_get(sh->db, t->key, sh->key_size, &v, &vlen);
    }
    *lat += now_ns() - t0;
    if (s == KV_NOT_FOUND) {
        wl_fail(sh, "%s: get(key %llu): not found, but it was written", sh->wl->name,
                (unsigned long long)idx);
        return -1;
    }
    if (s != KV_OK)
        return call_failed(t, "get", idx, s);
    if (sh->null) {
        /* The null engine's value was generated just now, which costs what a check costs:
         * null's time per op stays the harness's own. */
        t->bytes += sh->key_size + vlen;
        return 0;
    }
    int rc = check_value(t, idx, v, vlen);
    kv_free(v);
    return rc;
}

static int op_get_missing(wl_thread *t, uint64_t idx, uint64_t *lat)
{
    wl_shared *sh = t->sh;
    void *v = NULL;
    size_t vlen = 0;
    kvb_key(t->key, sh->key_size, idx);
    t->key[sh->key_size] = '.';
    uint64_t t0 = now_ns();
    kv_status s = sh->null ? KV_NOT_FOUND : kv_get(sh->db, t->key, sh->key_size + 1, &v, &vlen);
    *lat += now_ns() - t0;
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

static int op_delete(wl_thread *t, uint64_t idx, uint64_t *lat)
{
    wl_shared *sh = t->sh;
    kvb_key(t->key, sh->key_size, idx);
    uint64_t t0 = now_ns();
    kv_status s = sh->null ? KV_OK : kv_delete(sh->db, t->key, sh->key_size);
    *lat += now_ns() - t0;
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
static void null_skip(tit *i)
{
    while (i->idx < i->end && !present(i->t->sh, i->idx))
        i->idx++;
}

static void tit_seek(tit *i, uint64_t idx)
{
    if (!i->it) {
        i->idx = idx;
        null_skip(i);
        return;
    }
    kvb_key(i->t->key2, i->t->sh->key_size, idx);
    kv_iter_seek(i->it, i->t->key2, i->t->sh->key_size);
}

static bool tit_valid(tit *i)
{
    return i->it ? kv_iter_valid(i->it) : i->idx < i->end;
}

static void tit_next(tit *i)
{
    if (i->it) {
        kv_iter_next(i->it);
    } else {
        i->idx++;
        null_skip(i);
    }
}

static void tit_entry(tit *i, const void **k, size_t *kl, const void **v, size_t *vl)
{
    wl_shared *sh = i->t->sh;
    if (i->it) {
        *k = kv_iter_key(i->it, kl);
        *v = kv_iter_value(i->it, vl);
        return;
    }
    kvb_key(i->t->key2, sh->key_size, i->idx);
    kvb_value(i->t->val, sh->value_size, i->idx,
              sh->fixed_version
                  ? sh->fixed_version
                  : atomic_load_explicit(&sh->versions[i->idx], memory_order_relaxed));
    *k = i->t->key2;
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
 * want is UINT64_MAX). Stores its index in *got. */
static int tit_check(tit *i, uint64_t want, uint64_t prev, uint64_t *got)
{
    wl_shared *sh = i->t->sh;
    const void *k, *v;
    size_t kl, vl;
    uint64_t idx;
    tit_entry(i, &k, &kl, &v, &vl);
    if (sh->null) {
        /* Generating the synthetic record cost what parsing and checking it costs. */
        *got = i->idx;
        i->t->bytes += kl + vl;
        return 0;
    }
    if (!kvb_key_parse(k, kl, sh->key_size, &idx) || idx >= sh->capacity) {
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
static int op_seek(wl_thread *t, uint64_t idx, uint64_t *lat)
{
    tit i;
    uint64_t got;
    uint64_t t0 = now_ns();
    kv_status s = tit_open(t, &i);
    if (s != KV_OK)
        return iter_failed(t, "iterator", s);
    tit_seek(&i, idx);
    bool valid = tit_valid(&i);
    *lat += now_ns() - t0;
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

/* YCSB scan: new iterator, seek to idx (a present record), read up to len records in order.
 * The latency is of the whole scan, the checks of its records (about 15 ns each) included. */
static int op_scan(wl_thread *t, uint64_t idx, unsigned len, uint64_t *lat)
{
    tit i;
    uint64_t got = 0, prev = UINT64_MAX;
    uint64_t t0 = now_ns();
    kv_status s = tit_open(t, &i);
    if (s != KV_OK)
        return iter_failed(t, "iterator", s);
    tit_seek(&i, idx);
    int rc = 0;
    for (unsigned n = 0; n < len && tit_valid(&i); n++) {
        rc = tit_check(&i, n == 0 ? idx : UINT64_MAX, prev, &got);
        if (rc)
            break;
        prev = got;
        tit_next(&i);
    }
    s = tit_close(&i);
    *lat += now_ns() - t0;
    if (rc == 0 && s != KV_OK)
        return iter_failed(t, "scan", s);
    return rc;
}

/* ---- key choice ---- */

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

static int op_insert(wl_thread *t, uint64_t *lat)
{
    wl_shared *sh = t->sh;
    uint64_t idx = atomic_fetch_add(&sh->ins_next, 1);
    if (idx - sh->records >= sh->max_inserts) {
        wl_fail(sh, "%s: more inserts than the %llu planned", sh->wl->name,
                (unsigned long long)sh->max_inserts);
        return -1;
    }
    int rc = op_put(t, idx, lat);
    if (rc == 0)
        atomic_store_explicit(&sh->ins_acked[idx - sh->records], 1, memory_order_release);
    return rc;
}

static int ycsb_op(wl_thread *t, uint64_t *lat)
{
    const wl_def *w = t->sh->wl;
    double u = rng_double(&t->rng);
    if (u < w->read)
        return op_get(t, next_key(t), lat);
    u -= w->read;
    if (u < w->update)
        return op_put(t, next_key(t), lat);
    u -= w->update;
    if (u < w->insert)
        return op_insert(t, lat);
    u -= w->insert;
    if (u < w->scan) {
        unsigned len = 1 + (unsigned)rng_below(&t->rng, WL_MAX_SCAN);
        return op_scan(t, next_key(t), len, lat);
    }
    uint64_t k = next_key(t); /* read-modify-write */
    int rc = op_get(t, k, lat);
    return rc ? rc : op_put(t, k, lat);
}

/* ---- the loops ---- */

/* readseq: one iterator per thread, starting at the thread's slice, wrapping at the end. One
 * clock read per record: a record's latency runs from the previous reading (so it includes the
 * check of the previous record, about 15 ns). */
static int run_readseq(wl_thread *t)
{
    wl_shared *sh = t->sh;
    tit i;
    kv_status s = tit_open(t, &i);
    if (s != KV_OK)
        return iter_failed(t, "iterator", s);
    uint64_t want = sh->records ? t->first % sh->records : 0, got;
    uint64_t t0 = now_ns();
    tit_seek(&i, want);
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
            tit_seek(&i, 0);
            if (!tit_valid(&i)) {
                wl_fail(sh, "readseq: the database is empty after the load");
                rc = -1;
                break;
            }
        }
        uint64_t t1 = now_ns();
        kv_histogram_record(t->hist, bench_ticks_ns(t1 - t0));
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

int wl_thread_run(wl_thread *t)
{
    wl_shared *sh = t->sh;
    if (sh->wl->kind == WL_READSEQ)
        return run_readseq(t);
    for (uint64_t j = 0; j < t->count; j++) {
        if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
            break;
        uint64_t lat = 0, i = t->first + j;
        int rc;
        switch (sh->wl->kind) {
        case WL_FILLSEQ:
            rc = op_put(t, i, &lat);
            break;
        case WL_FILLRANDOM:
        case WL_FILLSYNC:
            rc = op_put(t, kvb_perm_at(&sh->perm, i), &lat);
            break;
        case WL_OVERWRITE:
            rc = op_put(t, rng_below(&t->rng, sh->records), &lat);
            break;
        case WL_READRANDOM:
            rc = op_get(t, rng_below(&t->rng, sh->records), &lat);
            break;
        case WL_READMISSING:
            rc = op_get_missing(t, rng_below(&t->rng, sh->records), &lat);
            break;
        case WL_SEEKRANDOM:
            rc = op_seek(t, rng_below(&t->rng, sh->records), &lat);
            break;
        case WL_DELETERANDOM:
            rc = op_delete(t, kvb_perm_at(&sh->perm, i), &lat);
            break;
        default:
            rc = ycsb_op(t, &lat);
            break;
        }
        if (rc)
            return rc;
        kv_histogram_record(t->hist, bench_ticks_ns(lat));
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
        uint64_t idx = kvb_perm_at(&sh->perm, t->first + j);
        uint32_t ver = atomic_fetch_add_explicit(&sh->versions[idx], 1, memory_order_relaxed) + 1;
        if (sh->null)
            continue;
        kvb_key(t->key, sh->key_size, idx);
        kvb_value(t->val, sh->value_size, idx, ver);
        kv_status s = kv_batch_put(t->batch, t->key, sh->key_size, t->val, sh->value_size);
        if (s == KV_OK && (kv_batch_count(t->batch) == 256 ||
                           kv_batch_bytes(t->batch) >= (1u << 20) || j + 1 == t->count)) {
            s = kv_write(sh->db, t->batch);
            kv_batch_clear(t->batch);
        }
        if (s != KV_OK)
            return call_failed(t, "load: write", idx, s);
        atomic_store_explicit(&t->done, j + 1, memory_order_relaxed);
    }
    return 0;
}
