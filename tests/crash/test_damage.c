/* The damaged-file campaign (bench/crash/damage.h), bounded.
 *
 * Without an argument: the checker itself. The record-log finder recovers a log's seed and
 * records from bytes alone; the toy engine (toy_engine.h), which keeps the damage contract,
 * passes every check (no wrong answer, no crash, no change by a read-only open, at least 95% of
 * errors naming file and offset); and each deliberately broken toy is caught (`nocrc` serves
 * damaged values, `rowrite` writes during a read-only open), so the checks can fail.
 *
 * With an engine name: a bounded campaign on that registered kvlab engine. It must run through
 * with no crash and no hang. With "fixed" after the name (tests/crash/CMakeLists.txt lists those
 * engines in KVLAB_DAMAGE_FIXED_ENGINES) it is held to the whole contract as the toy is: 0 silent
 * wrong answers, 0 read-only opens that change the directory, at least 95% of errors naming the
 * damaged file and a byte offset. The figures are printed either way. */
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
#include "damage.h"
#include "reclog.h"
#include "testutil.h"
#include "toy_engine.h"

static const char *engine; /* NULL: the toy */
static bool fixed;         /* the engine is held to the whole contract */
static char *workdir;
static uint64_t seed;

static crash_config cfg(const kv_engine *vt, size_t ops, uint32_t keys, size_t rounds)
{
    crash_config c;
    crash_config_init(&c);
    c.engine = engine;
    c.engine_vt = vt;
    c.workload = "mixed";
    c.ops = ops;
    c.keys = keys;
    c.points = rounds;
    c.seed = seed;
    c.workdir = workdir;
    c.log = stderr;
    return c;
}

static double located_share(const crash_damage_table *t)
{
    uint64_t loc = crash_dmg_class_total(t, CRASH_DMG_ERR_LOC);
    uint64_t errs = loc + crash_dmg_class_total(t, CRASH_DMG_ERR);
    return errs ? (double)loc / (double)errs : 1.0;
}

static uint64_t ro_changed(const crash_damage_table *t)
{
    uint64_t n = 0;
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        n += t->ro_changed[k];
    return n;
}

static crash_damage_table *campaign(const crash_config *c, crash_result *r)
{
    crash_damage_table *t = calloc(1, sizeof *t);
    assert_non_null(t);
    kv_status s = crash_damage_campaign(c, r, t);
    if (s != KV_OK)
        fprintf(stderr, "the campaign failed: %s\n", kv_errmsg());
    assert_int_equal(s, KV_OK);
    crash_damage_print(stderr, c, t);
    assert_int_equal(crash_dmg_rounds(t), c->points);
    assert_int_equal(r->points, c->points);
    return t;
}

/* ---- the record-log finder ---- */

static void test_reclog_find(void **state)
{
    (void)state;
    tu_rng rng = {seed};
    uint8_t buf[8192];
    for (int round = 0; round < 50; round++) {
        size_t hdr = (size_t)tu_below(&rng, 200), at = hdr;
        for (size_t i = 0; i < hdr; i++)
            buf[i] = (uint8_t)tu_next(&rng);
        uint32_t sd = kv_reclog_seed(tu_next(&rng));
        size_t n = 0;
        uint64_t offs[64];
        while (n < 64) {
            uint8_t payload[100];
            uint32_t len = (uint32_t)tu_below(&rng, sizeof payload);
            if (at + KV_RECLOG_FRAME + len + KV_RECLOG_MARK_SIZE > sizeof buf)
                break;
            for (uint32_t i = 0; i < len; i++)
                payload[i] = (uint8_t)tu_next(&rng);
            offs[n++] = at;
            at += kv_reclog_encode(buf + at, sd, (uint8_t)(1 + tu_below(&rng, 200)), payload, len);
            if (tu_below(&rng, 8) == 0 && n < 64) {
                offs[n++] = at;
                at += kv_reclog_mark(buf + at, sd, at);
            }
        }
        crash_reclog_map m;
        assert_true(crash_reclog_find(buf, at, &m));
        assert_int_equal(m.seed, sd);
        assert_int_equal(m.first, hdr);
        assert_int_equal(m.end, at);
        assert_int_equal(m.n, n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(m.off[i], offs[i]);
        crash_reclog_map_free(&m);
        /* bytes that hold no log */
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)tu_next(&rng);
        assert_false(crash_reclog_find(buf, sizeof buf, &m));
    }
}

/* ---- the toy engine: the checks pass, and they can fail ---- */

static void test_toy_keeps_the_contract(void **state)
{
    (void)state;
    crash_config c = cfg(&toy_engine, 400, 150, 400);
    crash_result r;
    crash_damage_table *t = campaign(&c, &r);
    assert_true(t->read_only);
    /* toy.log, found by its records alone, in both states */
    assert_int_equal(t->logs_found[0], 1);
    assert_int_equal(t->logs_found[1], 1);
    assert_int_equal(crash_dmg_class_total(t, CRASH_DMG_WRONG), 0);
    assert_int_equal(crash_dmg_class_total(t, CRASH_DMG_CRASH), 0);
    assert_int_equal(ro_changed(t), 0);
    assert_int_equal(r.violations, 0);
    assert_true(located_share(t) >= 0.95);
    /* the campaign is not vacuous: errors, allowed torn tails and harmless damage all occur */
    assert_true(crash_dmg_class_total(t, CRASH_DMG_ERR_LOC) > 100);
    assert_true(crash_dmg_class_total(t, CRASH_DMG_SUFFIX) > 0);
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        if (k != CRASH_DMG_SWAP) /* the toy has one file of each kind: nothing to swap */
            assert_true(t->cell[k][0] + t->cell[k][1] + t->cell[k][2] + t->cell[k][3] > 0);
    crash_damage_table_free(t);
    free(t);
}

static void test_toy_nocrc_caught(void **state)
{
    (void)state;
    static const char *const opt[] = {"broken=nocrc"};
    crash_config c = cfg(&toy_engine, 400, 150, 150);
    c.options = opt;
    c.n_options = 1;
    crash_result r;
    crash_damage_table *t = campaign(&c, &r);
    assert_true(crash_dmg_class_total(t, CRASH_DMG_WRONG) > 0);
    assert_true(r.phantoms > 0); /* damaged values served as if written */
    assert_true(r.violations > 0);
    /* replaying the first bad round alone reproduces it */
    c.at = r.first_bad;
    crash_result one;
    assert_int_equal(crash_damage_campaign(&c, &one, t), KV_OK);
    assert_int_equal(one.points, 1);
    assert_int_equal(one.violations, 1);
    crash_damage_table_free(t);
    free(t);
}

static void test_toy_rowrite_caught(void **state)
{
    (void)state;
    static const char *const opt[] = {"broken=rowrite"};
    crash_config c = cfg(&toy_engine, 400, 150, 150);
    c.options = opt;
    c.n_options = 1;
    crash_result r;
    crash_damage_table *t = campaign(&c, &r);
    assert_true(ro_changed(t) > 0); /* a torn tail cut by a read-only open */
    assert_true(r.violations > 0);
    crash_damage_table_free(t);
    free(t);
}

/* ---- a registered engine ---- */

/* Options that give each engine many files of each kind within a few hundred commits. */
static const char *const *engine_options(size_t *n)
{
    static const char *const wal[] = {"segment_size=16K", "checkpoint_bytes=64K"};
    static const char *const bitcask[] = {"file_size=32K", "merge_min_files=2",
                                          "merge_fragmentation=10", "merge_dead_bytes=8K"};
    static const char *const lsm[] = {"write_buffer_size=16K", "target_file_size=16K",
                                      "l0_compaction_trigger=2", "level_base_bytes=64K",
                                      "manifest_max_size=8K"};
    static const char *const btree[] = {"checkpoint_bytes=1M"};
    static const struct {
        const char *name;
        const char *const *opts;
        size_t n;
    } table[] = {{"wal", wal, 2}, {"bitcask", bitcask, 4}, {"lsm", lsm, 5}, {"btree", btree, 1}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(engine, table[i].name)) {
            *n = table[i].n;
            return table[i].opts;
        }
    *n = 0;
    return NULL;
}

static void test_engine_bounded(void **state)
{
    (void)state;
    crash_config c = cfg(NULL, 2000, 1000, 300);
    c.options = engine_options(&c.n_options);
    crash_result r;
    crash_damage_table *t = campaign(&c, &r);
    uint64_t wrong = crash_dmg_class_total(t, CRASH_DMG_WRONG);
    fprintf(stderr,
            "%s: %llu silent wrong answers, %.1f%% of errors located, %llu read-only opens changed "
            "the directory (%s)\n",
            engine, (unsigned long long)wrong, 100.0 * located_share(t),
            (unsigned long long)ro_changed(t),
            fixed ? "asserted: listed in KVLAB_DAMAGE_FIXED_ENGINES"
                  : "not asserted: not listed in KVLAB_DAMAGE_FIXED_ENGINES");
    /* always: no crash, no hang, and the campaign ran */
    assert_int_equal(crash_dmg_class_total(t, CRASH_DMG_CRASH), 0);
    assert_true(t->files[0] >= 2 && t->files[1] >= 2);
    if (fixed) {
        assert_int_equal(wrong, 0);
        assert_int_equal(ro_changed(t), 0);
        assert_int_equal(r.violations, 0);
        assert_true(located_share(t) >= 0.95);
    }
    crash_damage_table_free(t);
    free(t);
}

static int setup(void **state)
{
    (void)state;
    workdir = crash_test_tmp("crash-damage");
    seed = tu_seed(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(workdir);
    free(workdir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 3 || (argc >= 2 && !kv_engine_exists(argv[1])) ||
        (argc == 3 && strcmp(argv[2], "fixed"))) {
        fprintf(stderr,
                "usage: %s [ENGINE [fixed]] (a registered kvlab engine; none: the checker)\n",
                argv[0]);
        return 2;
    }
    if (argc >= 2) {
        engine = argv[1];
        fixed = argc == 3;
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_engine_bounded)};
        return cmocka_run_group_tests(tests, setup, teardown);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reclog_find),
        cmocka_unit_test(test_toy_keeps_the_contract),
        cmocka_unit_test(test_toy_nocrc_caught),
        cmocka_unit_test(test_toy_rowrite_caught),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
