/* The crash checker's oracle: a legal prefix is accepted; a hole, a phantom, half a batch and
 * lost acknowledged writes are each rejected; values verify only for the write they encode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crash_oracle.h"
#include "testutil.h"

/* A hand-made workload over 4 keys:
 *   0: put k0 (v1)    1: put k1 (v2)    2: batch {put k2 (v3), put k3 (v4), delete k0}
 *   3: sync           4: delete k1      5: put k0 (v7) */
static cw_op ops[] = {
    {KV_OP_PUT, 0, 1},    {KV_OP_PUT, 1, 2},    {KV_OP_PUT, 2, 3}, {KV_OP_PUT, 3, 4},
    {KV_OP_DELETE, 0, 0}, {KV_OP_DELETE, 1, 0}, {KV_OP_PUT, 0, 7},
};
static cw_commit commits[] = {
    {CW_PUT, 0, 1},  {CW_PUT, 1, 1},    {CW_BATCH, 2, 3},
    {CW_SYNC, 5, 0}, {CW_DELETE, 5, 1}, {CW_PUT, 6, 1},
};

static crash_workload hand(void)
{
    crash_workload w = {.commits = commits,
                        .ncommits = sizeof commits / sizeof *commits,
                        .ops = ops,
                        .nops = sizeof ops / sizeof *ops,
                        .keys = 4,
                        .value_max = 20};
    return w;
}

static crash_verdict judge(uint64_t k0, uint64_t k1, uint64_t k2, uint64_t k3, uint64_t phantoms,
                           size_t acked, bool inflight, size_t lo)
{
    crash_workload w = hand();
    uint64_t ver[4] = {k0, k1, k2, k3};
    crash_state s = {.ver = ver, .keys = 4, .phantoms = phantoms};
    crash_verdict v;
    crash_oracle_judge(&w, &s, acked, inflight, lo, &v);
    return v;
}

static void test_legal_prefixes(void **state)
{
    (void)state;
    /* empty = prefix 0 */
    crash_verdict v = judge(0, 0, 0, 0, 0, 6, false, 0);
    assert_int_equal(v.kind, CV_OK);
    assert_int_equal(v.prefix, 0);
    assert_int_equal(v.acked_writes, 5);
    assert_int_equal(v.lost_writes, 5);
    /* after commit 1 */
    v = judge(1, 2, 0, 0, 0, 6, false, 0);
    assert_int_equal(v.kind, CV_OK);
    assert_int_equal(v.prefix, 2);
    assert_int_equal(v.lost_writes, 3);
    /* after the batch and the sync (prefix 4 is the same state as 3: the longest wins) */
    v = judge(0, 2, 3, 4, 0, 6, false, 4);
    assert_int_equal(v.kind, CV_OK);
    assert_int_equal(v.prefix, 4);
    /* everything */
    v = judge(7, 0, 3, 4, 0, 6, false, 6);
    assert_int_equal(v.kind, CV_OK);
    assert_int_equal(v.prefix, 6);
    assert_int_equal(v.lost_writes, 0);
    /* the in-flight commit 5 applied though only 5 were acknowledged */
    v = judge(7, 0, 3, 4, 0, 5, true, 5);
    assert_int_equal(v.kind, CV_OK);
    assert_int_equal(v.prefix, 6);
    assert_int_equal(v.lost_writes, 0);
}

static void test_lost_acknowledged(void **state)
{
    (void)state;
    /* state after commit 2, but a completed sync (commit 3) promised at least 4 */
    crash_verdict v = judge(0, 2, 3, 4, 0, 6, false, 6);
    assert_int_equal(v.kind, CV_LOST);
    assert_int_equal(v.lost_writes, 2);
    v = judge(1, 0, 0, 0, 0, 6, false, 2);
    assert_int_equal(v.kind, CV_LOST);
    assert_int_equal(v.prefix, 1);
    /* the in-flight commit may not be counted when it was not in flight */
    v = judge(7, 0, 3, 4, 0, 5, false, 5);
    assert_int_not_equal(v.kind, CV_OK);
}

static void test_hole_rejected(void **state)
{
    (void)state;
    /* the last put of k0 kept, the batch before it lost */
    crash_verdict v = judge(7, 0, 0, 0, 0, 6, false, 0);
    assert_int_equal(v.kind, CV_HOLE);
    /* the final put k0 survived but the delete of k1 before it did not */
    v = judge(7, 2, 3, 4, 0, 6, false, 0);
    assert_int_equal(v.kind, CV_HOLE);
}

static void test_half_batch_rejected(void **state)
{
    (void)state;
    /* batch 2 half applied: k2 written, k3 not, k0 not deleted */
    crash_verdict v = judge(1, 2, 3, 0, 0, 6, false, 0);
    assert_int_equal(v.kind, CV_TORN_BATCH);
    assert_int_equal(v.batch, 2);
    /* the delete of the batch applied, the puts not */
    v = judge(0, 2, 0, 0, 0, 6, false, 0);
    /* (k1 without k0 is also a hole; either name is a rejection) */
    assert_int_not_equal(v.kind, CV_OK);
    v = judge(0, 2, 3, 0, 0, 2, true, 0);
    assert_int_equal(v.kind, CV_TORN_BATCH);
}

static void test_phantom_rejected(void **state)
{
    (void)state;
    crash_verdict v = judge(1, 2, 0, 0, 1, 6, false, 0);
    assert_int_equal(v.kind, CV_PHANTOM);
    /* a version that belongs to another key is no prefix either */
    v = judge(2, 0, 0, 0, 0, 6, false, 0);
    assert_int_not_equal(v.kind, CV_OK);
}

static void test_values_verify(void **state)
{
    (void)state;
    crash_workload w;
    assert_int_equal(crash_workload_make("mixed", 500, 50, 200, 10, 7, &w), KV_OK);
    size_t puts = 0;
    uint8_t buf[300];
    for (size_t i = 0; i < w.nops; i++) {
        const cw_op *op = &w.ops[i];
        if (op->type != KV_OP_PUT)
            continue;
        puts++;
        size_t len = crash_value_len(op->key, op->version, w.value_max);
        assert_true(len >= 12 && len <= 212);
        crash_value_fill(op->key, op->version, w.value_max, buf);
        assert_int_equal(crash_value_verify(&w, op->key, buf, len), op->version);
        /* another key, a shorter value, a flipped byte: all rejected */
        assert_int_equal(crash_value_verify(&w, (op->key + 1) % w.keys, buf, len), 0);
        assert_int_equal(crash_value_verify(&w, op->key, buf, len - 1), 0);
        buf[len - 1] ^= 0x10;
        assert_int_equal(crash_value_verify(&w, op->key, buf, len), 0);
    }
    assert_true(puts > 100);
    char key[16];
    uint32_t k;
    size_t kl = crash_key(42, key);
    assert_true(crash_key_parse(key, kl, 50, &k));
    assert_int_equal(k, 42);
    assert_false(crash_key_parse(key, kl, 42, &k));
    assert_false(crash_key_parse("x0000042", 8, 50, &k));
    crash_workload_free(&w);
}

/* Random prefixes of generated workloads are accepted; perturbing one key is rejected. */
static void test_generated_prefixes(void **state)
{
    (void)state;
    uint64_t seed = tu_seed(11);
    tu_rng r = {seed};
    const char *kinds[] = {"puts", "mixed", "batches"};
    for (int round = 0; round < 60; round++) {
        crash_workload w;
        assert_int_equal(crash_workload_make(kinds[round % 3], 300, 40, 10, 20, seed + round, &w),
                         KV_OK);
        crash_state s;
        assert_int_equal(crash_state_init(&s, &w), KV_OK);
        size_t p = (size_t)tu_below(&r, w.ncommits + 1);
        for (size_t i = 0; i < p; i++)
            for (uint32_t j = 0; j < w.commits[i].n; j++) {
                const cw_op *op = &w.ops[w.commits[i].first + j];
                s.ver[op->key] = op->version;
            }
        crash_verdict v;
        crash_oracle_judge(&w, &s, w.ncommits, false, 0, &v);
        assert_int_equal(v.kind, CV_OK);
        /* the longest prefix with this state is at least p */
        assert_true(v.prefix >= p);
        /* a value of a write that comes later than the state (an unwritten future) */
        size_t q = p;
        while (q < w.ncommits && w.commits[q].kind != CW_PUT)
            q++;
        if (q + 1 < w.ncommits && p > 0) {
            const cw_op *op = &w.ops[w.commits[q].first];
            uint64_t old = s.ver[op->key];
            /* pretend the write of q landed while p-1 (an earlier commit) did not */
            s.ver[op->key] = op->version;
            crash_oracle_judge(&w, &s, w.ncommits, false, 0, &v);
            if (v.kind == CV_OK)
                assert_true(v.prefix > q); /* only legal if it equals a later prefix */
            s.ver[op->key] = old;
        }
        crash_state_free(&s);
        crash_workload_free(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legal_prefixes),     cmocka_unit_test(test_lost_acknowledged),
        cmocka_unit_test(test_hole_rejected),      cmocka_unit_test(test_half_batch_rejected),
        cmocka_unit_test(test_phantom_rejected),   cmocka_unit_test(test_values_verify),
        cmocka_unit_test(test_generated_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
