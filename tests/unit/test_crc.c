/* CRC32 (zlib polynomial): known vectors, extension and combination (common/crc.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crc.h"

static void test_vectors(void **state)
{
    (void)state;
    assert_int_equal(kv_crc32(NULL, 0), 0);
    assert_int_equal(kv_crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(kv_crc32("a", 1), 0xE8B7BE43u);
    assert_int_equal(kv_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
    uint8_t zeros[32] = {0};
    assert_int_equal(kv_crc32(zeros, 32), 0x190A55ADu);
}

static void test_extend(void **state)
{
    (void)state;
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = kv_crc32(buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 37)
        assert_int_equal(kv_crc32_extend(kv_crc32(buf, cut), buf + cut, sizeof buf - cut), whole);
    assert_int_equal(kv_crc32_extend(whole, buf, 0), whole);
    buf[500] ^= 1;
    assert_true(kv_crc32(buf, sizeof buf) != whole);
}

/* Two pieces' CRCs joined give the whole buffer's, at every cut (pieces checked on two
 * threads, bitcask/bc_hintload.c). */
static void test_combine(void **state)
{
    (void)state;
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 13 + 5);
    uint32_t whole = kv_crc32(buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 37)
        assert_int_equal(kv_crc32_combine(kv_crc32(buf, cut), kv_crc32(buf + cut, sizeof buf - cut),
                                          sizeof buf - cut),
                         whole);
    /* three pieces, joined left to right */
    uint32_t c = kv_crc32_combine(kv_crc32(buf, 100), kv_crc32(buf + 100, 400), 400);
    assert_int_equal(kv_crc32_combine(c, kv_crc32(buf + 500, 500), 500), whole);
    /* a wrong length gives a wrong CRC */
    assert_true(kv_crc32_combine(kv_crc32(buf, 500), kv_crc32(buf + 500, 500), 499) != whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_extend),
        cmocka_unit_test(test_combine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
