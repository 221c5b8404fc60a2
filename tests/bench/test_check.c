/* bench/workloads.c: the loops check every value read. A database holding a wrong value (a
 * flipped filler byte, another key's value, another version, a short value) makes readrandom,
 * ycsb-c and ycsb-e (scans) fail with the error naming the key; the right values pass. Runs
 * the per-thread loops directly on the first registered engine that is not a peer (any
 * engine when there is none). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench.h"
#include "testutil.h"

#define RECORDS 64
#define KS      16
#define VS      100

static const char *engine(void)
{
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++)
        if (!bench_is_peer(names[i]))
            return names[i];
    return names[0];
}

/* Writes version 1 of every record, then lets tamper change record 17's value. */
static kv_db *make_db(const char *dir, void (*tamper)(uint8_t *v, size_t *vlen))
{
    kv_db *db = NULL;
    kv_options o;
    kv_options_init(&o);
    assert_int_equal(kv_open(engine(), dir, &o, &db), KV_OK);
    uint8_t k[KS], v[VS + 8];
    for (uint64_t i = 0; i < RECORDS; i++) {
        size_t vlen = VS;
        kvb_key(k, KS, i);
        kvb_value(v, VS, i, 1);
        if (i == 17 && tamper)
            tamper(v, &vlen);
        assert_int_equal(kv_put(db, k, KS, v, vlen), KV_OK);
    }
    return db;
}

/* Runs workload name over the database with one thread; returns its result, error in err. */
static int run(kv_db *db, const char *name, uint64_t ops, char *err, size_t cap)
{
    wl_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.wl = wl_find(name);
    assert_non_null(sh.wl);
    sh.db = db;
    sh.key_size = KS;
    sh.value_size = VS;
    sh.records = RECORDS;
    sh.max_inserts = sh.wl->insert > 0 ? ops : 0;
    sh.capacity = RECORDS + sh.max_inserts;
    sh.versions = calloc(sh.capacity, sizeof *sh.versions);
    sh.ins_acked = calloc(sh.max_inserts + 1, sizeof *sh.ins_acked);
    assert_non_null(sh.versions);
    assert_non_null(sh.ins_acked);
    for (uint64_t i = 0; i < RECORDS; i++)
        atomic_store(&sh.versions[i], 1);
    atomic_store(&sh.ins_next, RECORDS);
    sh.zipf_items = RECORDS;
    sh.threads = 1;
    sh.fixed_version = sh.wl->insert > 0 || sh.wl->update > 0 ? 0 : 1;
    sh.seed = 7;
    kvb_perm_init(&sh.perm, RECORDS, 7);
    assert_true(wl_keytab_init(&sh));
    wl_thread t;
    assert_true(wl_thread_init(&t, &sh, 0, 0, ops, false));
    int rc = wl_thread_run(&t);
    wl_thread_finish(&t);
    if (rc == 0) /* every operation done and timed */
        assert_int_equal(kv_histogram_count(t.hist), ops);
    snprintf(err, cap, "%s", sh.error);
    wl_thread_free(&t);
    free(sh.versions);
    free(sh.ins_acked);
    free(sh.keytab);
    return rc;
}

static void flip_filler(uint8_t *v, size_t *vlen)
{
    (void)vlen;
    v[VS - 1] ^= 0x01;
}

static void other_key(uint8_t *v, size_t *vlen)
{
    (void)vlen;
    kvb_value(v, VS, 18, 1);
}

static void other_version(uint8_t *v, size_t *vlen)
{
    (void)vlen;
    kvb_value(v, VS, 17, 2);
}

static void short_value(uint8_t *v, size_t *vlen)
{
    (void)v;
    *vlen = VS - 1;
}

static void test_wrong_values(void **state)
{
    (void)state;
    void (*tampers[])(uint8_t *, size_t *) = {NULL, flip_filler, other_key, other_version,
                                              short_value};
    const char *wls[] = {"readrandom", "ycsb-c", "readseq", "ycsb-e"}; /* ycsb-e inserts: last */
    for (size_t m = 0; m < sizeof tampers / sizeof *tampers; m++) {
        char *dir = tu_mkdtemp("bench-check");
        kv_db *db = make_db(dir, tampers[m]);
        for (size_t w = 0; w < sizeof wls / sizeof *wls; w++) {
            char err[1024];
            /* 4000 operations reach record 17 under every distribution used here */
            int rc = run(db, wls[w], 4000, err, sizeof err);
            if (!tampers[m]) {
                if (rc != 0)
                    print_error("%s: %s\n", wls[w], err);
                assert_int_equal(rc, 0);
                continue;
            }
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "key 17"));
            if (tampers[m] == other_version)
                assert_non_null(strstr(err, "read version 2"));
            else
                assert_non_null(strstr(err, "is not a value written for it"));
        }
        assert_int_equal(kv_close(db), KV_OK);
        tu_rmtree(dir);
        free(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
