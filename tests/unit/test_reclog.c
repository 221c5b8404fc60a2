/* The one record log (common/reclog.h): framing, sync marks, and the scanner's damage rule,
 * tried on every kind of damage a power loss or a hostile hand can leave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reclog.h"
#include "testutil.h"

#define HDR 32 /* the engine's own file header in these tests */

/* A log under construction: bytes, and where each record starts. */
typedef struct tlog {
    kv_buf b;
    uint32_t seed;
    uint64_t starts[512];
    size_t n;
} tlog;

static void tlog_init(tlog *l, uint64_t salt)
{
    memset(l, 0, sizeof *l);
    l->seed = kv_reclog_seed(salt);
    assert_true(kv_buf_reserve(&l->b, HDR));
    memset(l->b.data, 0xAB, HDR);
    l->b.len = HDR;
}

static void tlog_add(tlog *l, uint8_t type, const void *p, uint32_t len)
{
    size_t at;
    assert_true(kv_reclog_begin(&l->b, &at));
    assert_true(kv_buf_append(&l->b, p, len));
    kv_reclog_end(&l->b, at, l->seed, type);
    l->starts[l->n++] = at;
}

/* A record whose payload is "r<i>" repeated to len bytes. */
static void tlog_rec(tlog *l, uint32_t i, uint32_t len)
{
    uint8_t p[600];
    for (uint32_t k = 0; k < len; k++)
        p[k] = (uint8_t)("r0123456789"[k % 11] + i);
    tlog_add(l, 1 + (uint8_t)(i % 3), p, len);
}

/* Appends a mark naming everything written so far as durable (what a writer does first after
 * an fdatasync of the whole file). */
static void tlog_mark(tlog *l)
{
    uint8_t m[KV_RECLOG_MARK_SIZE];
    size_t n = kv_reclog_mark(m, l->seed, l->b.len);
    assert_int_equal(n, KV_RECLOG_MARK_SIZE);
    l->starts[l->n++] = l->b.len;
    assert_true(kv_buf_append(&l->b, m, n));
}

typedef struct seen {
    uint64_t offs[512];
    size_t n;
    int fail_at; /* visit number that returns an error, -1 for none */
} seen;

static kv_status visit(void *ctx, const kv_reclog_rec *r)
{
    seen *s = ctx;
    if ((int)s->n == s->fail_at)
        return kv_error(KV_CORRUPTION, "test: refused the record at offset %llu",
                        (unsigned long long)r->off);
    s->offs[s->n++] = r->off;
    return KV_OK;
}

static kv_status scan(const tlog *l, const uint8_t *d, uint64_t size, seen *s,
                      kv_reclog_result *res)
{
    memset(s, 0, sizeof *s);
    s->fail_at = -1;
    return kv_reclog_scan("t.log", d, size, HDR, l->seed, visit, s, res);
}

static void test_roundtrip(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 42);
    tlog_add(&l, 7, NULL, 0);
    for (uint32_t i = 0; i < 20; i++)
        tlog_rec(&l, i, i * 13);
    tlog_mark(&l);
    tlog_rec(&l, 99, 5);
    seen s;
    kv_reclog_result res;
    assert_int_equal(scan(&l, l.b.data, l.b.len, &s, &res), KV_OK);
    assert_false(res.torn);
    assert_int_equal(res.end, l.b.len);
    assert_int_equal(res.records, 22);
    assert_int_equal(res.marks, 1);
    assert_int_equal(res.durable, l.starts[21]);
    assert_int_equal(s.n, l.n);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(s.offs[i], l.starts[i]);
    /* The decoded fields. */
    kv_reclog_rec r;
    assert_int_equal(kv_reclog_decode(l.b.data, l.b.len, l.starts[0], l.seed, &r, NULL),
                     KV_RECLOG_OK);
    assert_int_equal(r.type, 7);
    assert_int_equal(r.len, 0);
    assert_int_equal(kv_reclog_decode(l.b.data, l.b.len, l.starts[3], l.seed, &r, NULL),
                     KV_RECLOG_OK);
    assert_int_equal(r.len, 26);
    assert_int_equal(r.payload[0], 'r' + 2);
    kv_buf_free(&l.b);
}

/* Another salt: no record is valid (a stale generation is never replayed). */
static void test_other_salt(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 1);
    for (uint32_t i = 0; i < 5; i++)
        tlog_rec(&l, i, 40);
    kv_reclog_result res;
    assert_int_equal(
        kv_reclog_scan("t.log", l.b.data, l.b.len, HDR, kv_reclog_seed(2), NULL, NULL, &res),
        KV_OK);
    assert_true(res.torn);
    assert_int_equal(res.end, HDR);
    assert_int_equal(res.records, 0);
    kv_buf_free(&l.b);
}

/* Cut at every byte: always a prefix of whole records, never an error (a power loss may stop an
 * append anywhere). */
static void test_truncation_is_torn(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 3);
    for (uint32_t i = 0; i < 12; i++) {
        tlog_rec(&l, i, 30 + i);
        if (i % 4 == 3)
            tlog_mark(&l);
    }
    for (uint64_t size = HDR; size <= l.b.len; size++) {
        seen s;
        kv_reclog_result res;
        assert_int_equal(scan(&l, l.b.data, size, &s, &res), KV_OK);
        size_t whole = 0;
        while (whole < l.n && (whole + 1 == l.n ? l.b.len : l.starts[whole + 1]) <= size)
            whole++;
        assert_int_equal(s.n, whole);
        assert_int_equal(res.end, whole ? (whole == l.n ? l.b.len : l.starts[whole]) : HDR);
        assert_int_equal(res.torn, res.end < size);
    }
    kv_buf_free(&l.b);
}

/* Zeros past the end (a preallocated or extended file whose writes were lost): a torn tail. */
static void test_zero_tail(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 4);
    for (uint32_t i = 0; i < 4; i++)
        tlog_rec(&l, i, 50);
    uint64_t end = l.b.len;
    assert_true(kv_buf_reserve(&l.b, 4096));
    memset(l.b.data + l.b.len, 0, 4096);
    l.b.len += 4096;
    seen s;
    kv_reclog_result res;
    assert_int_equal(scan(&l, l.b.data, l.b.len, &s, &res), KV_OK);
    assert_true(res.torn);
    assert_int_equal(res.end, end);
    assert_int_equal(s.n, 4);
    kv_buf_free(&l.b);
}

/* Every single-bit flip of a log that ends with a mark naming its whole length (a clean close):
 * the scan reports KV_CORRUPTION naming the file and the damaged record's offset, except for a
 * flip in the final mark itself, which loses nothing (the log then reads as whole records). */
static void test_every_flip_before_a_mark_is_corruption(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 5);
    for (uint32_t i = 0; i < 10; i++) {
        tlog_rec(&l, i, 20 + 7 * i);
        if (i == 4)
            tlog_mark(&l);
    }
    tlog_mark(&l);
    uint64_t last_mark = l.starts[l.n - 1];
    uint8_t *copy = malloc(l.b.len);
    for (uint64_t byte = HDR; byte < l.b.len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, l.b.data, l.b.len);
            copy[byte] ^= (uint8_t)(1u << bit);
            seen s;
            kv_reclog_result res;
            kv_status st = scan(&l, copy, l.b.len, &s, &res);
            size_t rec = 0;
            while (rec + 1 < l.n && l.starts[rec + 1] <= byte)
                rec++;
            if (byte >= last_mark) {
                assert_int_equal(st, KV_OK);
                assert_int_equal(res.end, last_mark);
                assert_int_equal(s.n, l.n - 1);
                continue;
            }
            assert_int_equal(st, KV_CORRUPTION);
            char want[64];
            snprintf(want, sizeof want, "t.log: offset %llu:", (unsigned long long)l.starts[rec]);
            if (strncmp(kv_errmsg(), want, strlen(want)))
                fail_msg("flip at byte %llu bit %d: message '%s', want it to start '%s'",
                         (unsigned long long)byte, bit, kv_errmsg(), want);
            assert_int_equal(s.n, rec); /* only the records before the damage were visited */
        }
    }
    free(copy);
    kv_buf_free(&l.b);
}

/* Damage after the last mark: a torn tail, and the log ends at the damaged record, even when
 * valid records of the same unsynced write follow it (a torn write that kept the batch's COMMIT,
 * as LazyFS leaves it). */
static void test_damage_after_last_mark_is_torn(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 6);
    for (uint32_t i = 0; i < 3; i++)
        tlog_rec(&l, i, 64);
    tlog_mark(&l);
    size_t first_unsynced = l.n;
    for (uint32_t i = 3; i < 8; i++)
        tlog_rec(&l, i, 64);
    /* zeros over most of records 4 and 5, record 6.. intact */
    uint64_t a = l.starts[first_unsynced + 1] + 3, b = l.starts[first_unsynced + 3] - 5;
    memset(l.b.data + a, 0, b - a);
    seen s;
    kv_reclog_result res;
    assert_int_equal(scan(&l, l.b.data, l.b.len, &s, &res), KV_OK);
    assert_true(res.torn);
    assert_int_equal(res.end, l.starts[first_unsynced + 1]);
    assert_int_equal(s.n, first_unsynced + 1);
    assert_non_null(res.why);
    kv_buf_free(&l.b);
}

/* A zeroed sector in front of a mark that vouches for it is damage, not a lost write: the zero
 * heuristic never hides a valid record. */
static void test_zeroed_sector_before_mark(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 7);
    for (uint32_t i = 0; i < 30; i++)
        tlog_rec(&l, i, 100);
    tlog_mark(&l);
    tlog_rec(&l, 30, 10);
    memset(l.b.data + 1024, 0, 512);
    seen s;
    kv_reclog_result res;
    assert_int_equal(scan(&l, l.b.data, l.b.len, &s, &res), KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "sync mark at offset"));
    kv_buf_free(&l.b);
}

/* A length field made to point past the end of the file is caught by the header CRC, and a mark
 * after it still proves damage. */
static void test_length_past_end(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 8);
    for (uint32_t i = 0; i < 6; i++)
        tlog_rec(&l, i, 80);
    tlog_mark(&l);
    kv_put_u32(l.b.data + l.starts[2] + 8, 0x00FFFFFFu);
    seen s;
    kv_reclog_result res;
    assert_int_equal(scan(&l, l.b.data, l.b.len, &s, &res), KV_CORRUPTION);
    char want[64];
    snprintf(want, sizeof want, "t.log: offset %llu:", (unsigned long long)l.starts[2]);
    assert_memory_equal(kv_errmsg(), want, strlen(want));
    kv_buf_free(&l.b);
}

/* A sealed log (made durable whole) accepts no torn tail. */
static void test_sealed(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 9);
    for (uint32_t i = 0; i < 4; i++)
        tlog_rec(&l, i, 33);
    kv_reclog_result res;
    assert_int_equal(
        kv_reclog_scan_sealed("old.log", l.b.data, l.b.len, HDR, l.seed, NULL, NULL, &res), KV_OK);
    assert_int_equal(res.end, l.b.len);
    assert_int_equal(
        kv_reclog_scan_sealed("old.log", l.b.data, l.b.len - 1, HDR, l.seed, NULL, NULL, &res),
        KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "old.log: offset"));
    assert_int_equal(res.end, l.starts[3]);
    kv_buf_free(&l.b);
}

/* A mark that names a durable length past its own offset is malformed. */
static void test_mark_past_itself(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 10);
    tlog_rec(&l, 0, 10);
    uint8_t m[KV_RECLOG_MARK_SIZE];
    kv_reclog_mark(m, l.seed, l.b.len + 1);
    uint64_t at = l.b.len;
    assert_true(kv_buf_append(&l.b, m, sizeof m));
    kv_reclog_rec r;
    const char *why;
    assert_int_equal(kv_reclog_decode(l.b.data, l.b.len, at, l.seed, &r, &why), KV_RECLOG_BAD);
    assert_non_null(why);
    kv_buf_free(&l.b);
}

/* The visitor's own error stops the scan and comes back unchanged. */
static void test_visit_error(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 11);
    for (uint32_t i = 0; i < 5; i++)
        tlog_rec(&l, i, 12);
    seen s = {.fail_at = 2};
    kv_reclog_result res;
    assert_int_equal(kv_reclog_scan("t.log", l.b.data, l.b.len, HDR, l.seed, visit, &s, &res),
                     KV_CORRUPTION);
    assert_non_null(strstr(kv_errmsg(), "test: refused"));
    assert_int_equal(s.n, 2);
    kv_buf_free(&l.b);
}

/* Damage followed by megabytes of payload made of header-like patterns: the search for marks
 * past the damage stays linear (the header CRC rejects each false start) and finds nothing. */
static void test_search_is_linear(void **state)
{
    (void)state;
    tlog l;
    tlog_init(&l, 12);
    size_t big = 4u << 20;
    uint8_t *p = malloc(big);
    for (size_t i = 0; i < big; i += 4)
        kv_put_u32(p + i, i % 8 ? 0x000000FFu : 16u); /* small lengths, mark-like types */
    tlog_rec(&l, 0, 10);
    tlog_add(&l, 1, p, (uint32_t)big);
    tlog_add(&l, 2, p, (uint32_t)big);
    l.b.data[l.starts[1] + 20] ^= 1;
    seen s;
    kv_reclog_result res;
    assert_int_equal(scan(&l, l.b.data, l.b.len, &s, &res), KV_OK);
    assert_true(res.torn);
    assert_int_equal(res.end, l.starts[1]);
    free(p);
    kv_buf_free(&l.b);
}

/* Random damage (flips, zeroed runs, cuts) at random places of random logs: the result is always
 * either KV_CORRUPTION or a prefix of whole records ending at or before the first damaged byte,
 * and damage vouched for by a later intact mark is always KV_CORRUPTION. */
static void test_random_damage(void **state)
{
    (void)state;
    tu_rng rng = {tu_seed(20261207)};
    for (int round = 0; round < 3000; round++) {
        tlog l;
        tlog_init(&l, tu_next(&rng));
        int n = 1 + (int)tu_below(&rng, 30);
        for (int i = 0; i < n; i++) {
            tlog_rec(&l, (uint32_t)i, (uint32_t)tu_below(&rng, 300));
            if (tu_below(&rng, 4) == 0)
                tlog_mark(&l);
        }
        uint64_t size = l.b.len;
        uint64_t at = HDR + tu_below(&rng, size - HDR);
        uint64_t first_bad = at;
        switch (tu_below(&rng, 3)) {
        case 0:
            l.b.data[at] ^= (uint8_t)(1u << tu_below(&rng, 8));
            break;
        case 1: {
            uint64_t len = 1 + tu_below(&rng, 700);
            if (len > size - at)
                len = size - at;
            first_bad = size;
            for (uint64_t k = 0; k < len && first_bad == size; k++)
                if (l.b.data[at + k] != 0)
                    first_bad = at + k;
            memset(l.b.data + at, 0, len);
            break;
        }
        default:
            size = at;
            break;
        }
        /* The record holding the first damaged byte, and whether a later intact mark vouches
         * for it. */
        size_t rec = 0;
        while (rec + 1 < l.n && l.starts[rec + 1] <= first_bad)
            rec++;
        uint64_t rec_start = first_bad >= size ? size : l.starts[rec];
        seen s;
        kv_reclog_result res;
        kv_status st = scan(&l, l.b.data, size, &s, &res);
        if (st == KV_OK) {
            assert_true(res.end <= rec_start || first_bad >= size);
            for (size_t i = 0; i < s.n; i++)
                assert_int_equal(s.offs[i], l.starts[i]);
            /* no later, untouched mark names a durable length past the end */
            for (size_t i = rec + 1; i < l.n && first_bad < size; i++) {
                uint64_t o = l.starts[i];
                kv_reclog_rec r;
                if (o + KV_RECLOG_MARK_SIZE <= size && l.b.data[o + 12] == KV_RECLOG_MARK &&
                    kv_reclog_decode(l.b.data, size, o, l.seed, &r, NULL) == KV_RECLOG_OK)
                    assert_true(kv_get_u64(r.payload) <= res.end);
            }
        } else {
            assert_int_equal(st, KV_CORRUPTION);
            assert_non_null(strstr(kv_errmsg(), "t.log: offset "));
        }
        kv_buf_free(&l.b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_other_salt),
        cmocka_unit_test(test_truncation_is_torn),
        cmocka_unit_test(test_zero_tail),
        cmocka_unit_test(test_every_flip_before_a_mark_is_corruption),
        cmocka_unit_test(test_damage_after_last_mark_is_torn),
        cmocka_unit_test(test_zeroed_sector_before_mark),
        cmocka_unit_test(test_length_past_end),
        cmocka_unit_test(test_sealed),
        cmocka_unit_test(test_mark_past_itself),
        cmocka_unit_test(test_visit_error),
        cmocka_unit_test(test_search_is_linear),
        cmocka_unit_test(test_random_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
