/* A bounded crash sweep of one registered kvlab engine (argv[1]): for every durability mode it
 * declares, power loss at 150 seeded crash points (policy random), 50 with torn sectors and 60
 * with policy keep (a process crash), a few SIGKILLs and the I/O-error scenarios. Every promise
 * of docs/design.md section 3 must hold. KVLAB_LONG=1 tries every crash point instead. (Damaged
 * files have their own bounded run, test_damage.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crash.h"
#include "crash_tmp.h"
#include "testutil.h"

static const char *engine;
static char *workdir;
static uint64_t seed;
static bool longrun;

static crash_config cfg(kv_durability_kind mode, kv_crash_policy policy, size_t points)
{
    crash_config c;
    crash_config_init(&c);
    c.engine = engine;
    c.durability.kind = mode;
    c.durability.interval_ms = 2;
    c.pace_us = mode == KV_DURABILITY_INTERVAL ? 50 : 0; /* let the syncer run */
    c.policy = policy;
    c.workload = "mixed";
    c.ops = longrun ? 400 : 120;
    c.points = longrun ? 0 : points;
    c.seed = seed;
    c.workdir = workdir;
    c.log = stderr;
    return c;
}

static void report(const char *what, const crash_config *c, kv_status s, const crash_result *r)
{
    char buf[600], d[32];
    fprintf(stderr, "%s %s %s: %s\n", engine, kv_durability_format(c->durability, d, sizeof d),
            what, crash_result_format(r, buf, sizeof buf));
    if (s != KV_OK)
        fprintf(stderr, "  the run failed: %s\n", kv_errmsg());
    if (!r->violations)
        return;
    const char *flag = !strcmp(what, "kill")         ? " --kill"
                       : !strcmp(what, "I/O errors") ? " --faults"
                                                     : "";
    fprintf(stderr,
            "  first violation at %llu: %s\n  replay: kvlab crash%s --engine %s --durability %s "
            "--ops %zu --seed %llu --policy %s",
            (unsigned long long)r->first_bad, r->first_violation, flag, engine, d, c->ops,
            (unsigned long long)c->seed, kv_crash_policy_name(c->policy));
    if (strcmp(flag, " --faults"))
        fprintf(stderr, " --at %llu", (unsigned long long)r->first_bad);
    fprintf(stderr, " -v\n");
}

static void test_power_loss_and_kills(void **state)
{
    (void)state;
    unsigned mask = kv_engine_durability_mask(engine);
    uint64_t bad = 0;
    for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC; k++) {
        if (!(mask & KV_DURABILITY_BIT(k)))
            continue;
        crash_result r;
        crash_config c = cfg((kv_durability_kind)k, KV_CRASH_RANDOM, 150);
        kv_status s = crash_run(&c, &r);
        report("power loss (random)", &c, s, &r);
        bad += (s != KV_OK) + r.violations;
        c = cfg((kv_durability_kind)k, KV_CRASH_TORN, 50);
        s = crash_run(&c, &r);
        report("power loss (torn sectors)", &c, s, &r);
        bad += (s != KV_OK) + r.violations;
        c = cfg((kv_durability_kind)k, KV_CRASH_KEEP, 60);
        s = crash_run(&c, &r);
        report("process crash (keep)", &c, s, &r);
        bad += (s != KV_OK) + r.violations;
        c = cfg((kv_durability_kind)k, KV_CRASH_KEEP, 4);
        c.ops = 400;
        s = crash_kill_run(&c, &r);
        report("kill", &c, s, &r);
        bad += (s != KV_OK) + r.violations;
    }
    assert_int_equal(bad, 0);
}

/* Options that bring each engine's rare paths (segment rotation, checkpoints, merges, memtable
 * flushes, compactions, manifest roll-over) within a few hundred commits. */
static const char *const *small_options(size_t *n)
{
    static const char *const wal[] = {"segment_size=4K", "checkpoint_bytes=16K"};
    static const char *const bitcask[] = {"file_size=8K", "merge_min_files=2",
                                          "merge_fragmentation=10", "merge_dead_bytes=1K"};
    static const char *const lsm[] = {"write_buffer_size=8K", "target_file_size=8K",
                                      "l0_compaction_trigger=2", "level_base_bytes=32K",
                                      "manifest_max_size=4K"};
    static const char *const btree[] = {"checkpoint_bytes=16K", "bgwriter=2"};
    static const struct {
        const char *name;
        const char *const *opts;
        size_t n;
    } table[] = {{"wal", wal, sizeof wal / sizeof *wal},
                 {"bitcask", bitcask, sizeof bitcask / sizeof *bitcask},
                 {"lsm", lsm, sizeof lsm / sizeof *lsm},
                 {"btree", btree, sizeof btree / sizeof *btree}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(engine, table[i].name)) {
            *n = table[i].n;
            return table[i].opts;
        }
    *n = 0;
    return NULL;
}

/* KVLAB_LONG=1 only: every crash point with the small-size options, random and torn. */
static void test_small_sizes_long(void **state)
{
    (void)state;
    size_t n = 0;
    const char *const *opts = small_options(&n);
    if (!longrun || !opts) {
        fprintf(stderr, "small-size sweep skipped (set KVLAB_LONG=1)\n");
        return;
    }
    unsigned mask = kv_engine_durability_mask(engine);
    uint64_t bad = 0;
    kv_crash_policy policies[] = {KV_CRASH_RANDOM, KV_CRASH_TORN};
    for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC; k++) {
        if (!(mask & KV_DURABILITY_BIT(k)))
            continue;
        for (size_t p = 0; p < 2; p++) {
            crash_result r;
            crash_config c = cfg((kv_durability_kind)k, policies[p], 0);
            c.ops = 300;
            c.options = opts;
            c.n_options = n;
            kv_status s = crash_run(&c, &r);
            report("power loss, small sizes", &c, s, &r);
            bad += (s != KV_OK) + r.violations;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_faults(void **state)
{
    (void)state;
    crash_config c = cfg(KV_DURABILITY_OS, KV_CRASH_KEEP, 0);
    crash_result r;
    kv_status s = crash_faults_run(&c, &r);
    report("I/O errors", &c, s, &r);
    assert_int_equal((s != KV_OK) + r.violations, 0);
}

static int setup(void **state)
{
    (void)state;
    workdir = crash_test_tmp("crash-engine");
    seed = tu_seed(1);
    const char *l = getenv("KVLAB_LONG");
    longrun = l && *l && strcmp(l, "0");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(workdir);
    free(workdir);
    return 0;
}

/* kv_open creating the database directory makes that directory durable (it fsyncs the parent):
 * after a sync put and a power loss that undoes every name change not followed by a directory
 * fsync, the new directory and the put are there. Without the parent fsync, faultfs undoes the
 * mkdir and the database vanishes with its acknowledged write. */
static void test_new_directory_survives_power_loss(void **state)
{
    (void)state;
    char dir[4096], scratch[4096];
    snprintf(dir, sizeof dir, "%s/newdir-db", workdir);
    snprintf(scratch, sizeof scratch, "%s/newdir-scratch", workdir);
    tu_rmtree(dir);
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_options o;
    kv_options_init(&o);
    o.fs = fs;
    o.durability.kind = KV_DURABILITY_SYNC;
    kv_db *db = NULL;
    assert_int_equal(kv_open(engine, dir, &o, &db), KV_OK);
    assert_int_equal(kv_put(db, "key", 3, "value", 5), KV_OK);
    assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_LOSE, seed), KV_OK);
    kv_close(db); /* fails after the crash point; frees the handle */
    kv_fs_destroy(fs);
    kv_options_init(&o);
    o.create_if_missing = false;
    assert_int_equal(kv_open(engine, dir, &o, &db), KV_OK);
    void *v = NULL;
    size_t vlen = 0;
    assert_int_equal(kv_get(db, "key", 3, &v, &vlen), KV_OK);
    assert_int_equal(vlen, 5);
    assert_memory_equal(v, "value", 5);
    kv_free(v);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    tu_rmtree(scratch);
}

int main(int argc, char **argv)
{
    if (argc != 2 || !kv_engine_exists(argv[1])) {
        fprintf(stderr, "usage: %s ENGINE (a registered kvlab engine)\n", argv[0]);
        return 2;
    }
    engine = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_loss_and_kills),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_small_sizes_long),
        cmocka_unit_test(test_new_directory_survives_power_loss),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
