/* Fixed-width little-endian and LEB128 varint coding (common/coding.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coding.h"

static void test_fixed_le(void **state)
{
    (void)state;
    uint8_t b[8];
    kv_put_u16(b, 0x1234);
    assert_int_equal(b[0], 0x34);
    assert_int_equal(b[1], 0x12);
    assert_int_equal(kv_get_u16(b), 0x1234);
    kv_put_u32(b, 0xdeadbeef);
    static const uint8_t w32[4] = {0xef, 0xbe, 0xad, 0xde};
    assert_memory_equal(b, w32, 4);
    assert_int_equal(kv_get_u32(b), 0xdeadbeef);
    kv_put_u64(b, 0x0102030405060708ull);
    static const uint8_t w64[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(b, w64, 8);
    assert_int_equal(kv_get_u64(b), 0x0102030405060708ull);
    kv_put_u64(b, UINT64_MAX);
    assert_int_equal(kv_get_u64(b), UINT64_MAX);

    const uint8_t *p = b, *end = b + 8;
    uint32_t v32;
    uint64_t v64;
    assert_true(kv_get_fixed32(&p, end, &v32));
    assert_int_equal(v32, UINT32_MAX);
    assert_ptr_equal(p, b + 4);
    assert_false(kv_get_fixed64(&p, end, &v64)); /* 4 bytes left */
    assert_ptr_equal(p, b + 4);
    assert_true(kv_get_fixed32(&p, end, &v32));
    assert_false(kv_get_fixed32(&p, end, &v32));
    p = b;
    assert_true(kv_get_fixed64(&p, end, &v64));
    assert_int_equal(v64, UINT64_MAX);
}

static void test_varint64_roundtrip(void **state)
{
    (void)state;
    /* every boundary 2^(7k) - 1, 2^(7k) and the extremes */
    for (int k = 0; k <= 9; k++) {
        uint64_t base = k == 0 ? 0 : (1ull << (7 * k));
        uint64_t vals[3] = {base ? base - 1 : 0, base, base + 1};
        for (int j = 0; j < 3; j++) {
            uint64_t v = vals[j];
            uint8_t buf[KV_VARINT64_MAX];
            size_t n = kv_put_varint64(buf, v);
            assert_int_equal(n, kv_varint_len(v));
            const uint8_t *p = buf;
            uint64_t got = 0;
            assert_true(kv_get_varint64(&p, buf + n, &got));
            assert_int_equal(got, v);
            assert_ptr_equal(p, buf + n);
            /* every truncation fails and leaves p */
            for (size_t cut = 0; cut < n; cut++) {
                p = buf;
                assert_false(kv_get_varint64(&p, buf + cut, &got));
                assert_ptr_equal(p, buf);
            }
        }
    }
    uint8_t buf[KV_VARINT64_MAX];
    assert_int_equal(kv_put_varint64(buf, UINT64_MAX), 10);
    assert_int_equal(kv_varint_len(0), 1);
    assert_int_equal(kv_varint_len(127), 1);
    assert_int_equal(kv_varint_len(128), 2);
    const uint8_t *p = buf;
    uint64_t got;
    assert_true(kv_get_varint64(&p, buf + 10, &got));
    assert_int_equal(got, UINT64_MAX);
}

static void test_varint64_bad(void **state)
{
    (void)state;
    uint64_t got;
    /* 11 bytes: too long */
    uint8_t overlong[11];
    memset(overlong, 0x80, 10);
    overlong[10] = 0x00;
    const uint8_t *p = overlong;
    assert_false(kv_get_varint64(&p, overlong + 11, &got));
    assert_ptr_equal(p, overlong);
    /* 10th byte above 1: more than 64 bits */
    uint8_t over[10];
    memset(over, 0xff, 9);
    over[9] = 0x02;
    p = over;
    assert_false(kv_get_varint64(&p, over + 10, &got));
    /* empty input */
    p = over;
    assert_false(kv_get_varint64(&p, over, &got));
}

static void test_varint32(void **state)
{
    (void)state;
    static const uint32_t vals[] = {
        0,        1,         127, 128, 16383, 16384, (1u << 21) - 1, 1u << 21, (1u << 28) - 1,
        1u << 28, UINT32_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[KV_VARINT32_MAX];
        size_t n = kv_put_varint32(buf, vals[i]);
        assert_true(n >= 1 && n <= 5);
        const uint8_t *p = buf;
        uint32_t got;
        assert_true(kv_get_varint32(&p, buf + n, &got));
        assert_int_equal(got, vals[i]);
        p = buf;
        assert_false(kv_get_varint32(&p, buf + n - 1, &got));
    }
    /* a 64-bit value does not fit */
    uint8_t buf[KV_VARINT64_MAX];
    size_t n = kv_put_varint64(buf, (uint64_t)UINT32_MAX + 1);
    const uint8_t *p = buf;
    uint32_t got;
    assert_false(kv_get_varint32(&p, buf + n, &got));
    assert_ptr_equal(p, buf);
    /* 6 bytes: too long for the 32-bit form even if the value is small */
    static const uint8_t six[6] = {0x81, 0x80, 0x80, 0x80, 0x80, 0x00};
    p = six;
    assert_false(kv_get_varint32(&p, six + 6, &got));
}

static void test_buf(void **state)
{
    (void)state;
    kv_buf b = {0};
    for (uint32_t i = 0; i < 1000; i++) {
        assert_true(kv_buf_put_u32(&b, i));
        assert_true(kv_buf_put_varint(&b, (uint64_t)i << 40));
    }
    assert_true(kv_buf_put_u64(&b, 42));
    assert_true(kv_buf_append(&b, "xyz", 3));
    const uint8_t *p = b.data, *end = b.data + b.len;
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t v;
        uint64_t w;
        assert_true(kv_get_fixed32(&p, end, &v));
        assert_int_equal(v, i);
        assert_true(kv_get_varint64(&p, end, &w));
        assert_int_equal(w, (uint64_t)i << 40);
    }
    uint64_t v64;
    assert_true(kv_get_fixed64(&p, end, &v64));
    assert_int_equal(v64, 42);
    assert_int_equal(end - p, 3);
    assert_memory_equal(p, "xyz", 3);
    kv_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_key_cmp(void **state)
{
    (void)state;
    assert_true(kv_key_cmp("a", 1, "b", 1) < 0);
    assert_true(kv_key_cmp("ab", 2, "a", 1) > 0);
    assert_true(kv_key_cmp("a", 1, "ab", 2) < 0);
    assert_int_equal(kv_key_cmp("ab", 2, "ab", 2), 0);
    assert_true(kv_key_cmp("\xff", 1, "\x01\x02", 2) > 0); /* bytes are unsigned */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_le),     cmocka_unit_test(test_varint64_roundtrip),
        cmocka_unit_test(test_varint64_bad), cmocka_unit_test(test_varint32),
        cmocka_unit_test(test_buf),          cmocka_unit_test(test_key_cmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
