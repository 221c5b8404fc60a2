/* bench/cli.c: the flag parser shared by every kvlab subcommand and its number, list and hex
 * helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

static const cli_flag flags[] = {
    {"engine", 'e', CLI_VALUE, "E", "engine"},
    {"option", 'o', CLI_MULTI, "K=V", "option"},
    {"hex", 'x', CLI_BOOL, "", "hex"},
};
#define NF 3

static bool parse(int argc, char **argv, size_t max_pos, cli_args *a)
{
    return cli_parse(flags, NF, argc, argv, max_pos, a);
}

static void test_forms(void **state)
{
    (void)state;
    cli_args a;
    char *v1[] = {"--engine",     "lmdb", "-o", "a=1", "-ob=2",
                  "--option=c=3", "-x",   "k",  "--",  "--notaflag"};
    assert_true(parse(10, v1, 2, &a));
    assert_string_equal(cli_get(flags, NF, &a, "engine"), "lmdb");
    assert_true(cli_has(flags, NF, &a, "hex"));
    assert_int_equal(a.n_multi, 3);
    assert_string_equal(a.multi[0], "a=1");
    assert_string_equal(a.multi[1], "b=2");
    assert_string_equal(a.multi[2], "c=3");
    assert_int_equal(a.n_pos, 2);
    assert_string_equal(a.pos[0], "k");
    assert_string_equal(a.pos[1], "--notaflag");
    char *v2[] = {"--engine=x", "-e", "y", "-", "-h"};
    assert_true(parse(5, v2, 1, &a));
    assert_string_equal(a.value[0], "y"); /* the later value wins */
    assert_string_equal(a.pos[0], "-");   /* "-" is an argument (stdin) */
    assert_true(a.help);
    assert_false(cli_has(flags, NF, &a, "hex"));
    assert_null(cli_get(flags, NF, &a, "nosuch"));
}

static void test_errors(void **state)
{
    (void)state;
    cli_args a;
    char *v1[] = {"--foo"};
    assert_false(parse(1, v1, 0, &a));
    assert_string_equal(a.err, "unknown flag --foo");
    char *v1b[] = {"--foo=bar"};
    assert_false(parse(1, v1b, 0, &a));
    assert_string_equal(a.err, "unknown flag --foo");
    char *v2[] = {"--engine"};
    assert_false(parse(1, v2, 0, &a));
    assert_string_equal(a.err, "flag --engine needs a value");
    char *v3[] = {"--hex=1"};
    assert_false(parse(1, v3, 0, &a));
    assert_string_equal(a.err, "flag --hex takes no value");
    char *v4[] = {"a", "b"};
    assert_false(parse(2, v4, 1, &a));
    assert_string_equal(a.err, "unexpected argument 'b'");
    char *v5[] = {"-z"};
    assert_false(parse(1, v5, 0, &a));
    assert_string_equal(a.err, "unknown flag -z");
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t v;
    char err[200];
    assert_true(cli_parse_u64("200k", false, 0, UINT64_MAX, &v, err, sizeof err));
    assert_true(v == 200000);
    assert_true(cli_parse_u64("64M", true, 0, UINT64_MAX, &v, err, sizeof err));
    assert_true(v == 64ull << 20);
    assert_true(cli_parse_u64("2MiB", true, 0, UINT64_MAX, &v, err, sizeof err));
    assert_true(v == 2ull << 20);
    assert_true(cli_parse_u64("1G", false, 0, UINT64_MAX, &v, err, sizeof err));
    assert_true(v == 1000000000ull);
    assert_true(cli_parse_u64("17", false, 17, 17, &v, err, sizeof err));
    assert_false(cli_parse_u64("abc", false, 0, 10, &v, err, sizeof err));
    assert_false(cli_parse_u64("-1", false, 0, 10, &v, err, sizeof err));
    assert_false(cli_parse_u64("10x", false, 0, 100, &v, err, sizeof err));
    assert_false(cli_parse_u64("11", false, 0, 10, &v, err, sizeof err));
    assert_non_null(strstr(err, "outside [0, 10]"));
    assert_false(cli_parse_u64("99999999999999999999", false, 0, UINT64_MAX, &v, err, 200));
    assert_false(cli_parse_u64("20000000000G", true, 0, UINT64_MAX, &v, err, sizeof err));
    assert_false(cli_parse_u64("", false, 0, 10, &v, err, sizeof err));
}

static void test_lists_hex(void **state)
{
    (void)state;
    char items[4][48], err[200];
    assert_int_equal(cli_split_list("os,sync,interval:100", items, 4, err, sizeof err), 3);
    assert_string_equal(items[2], "interval:100");
    assert_int_equal(cli_split_list("a,,b", items, 4, err, sizeof err), -1);
    assert_int_equal(cli_split_list("", items, 4, err, sizeof err), -1);
    assert_int_equal(cli_split_list("a,b,c,d,e", items, 4, err, sizeof err), -1);
    uint8_t *b;
    size_t n;
    assert_true(cli_hex_decode("00ff10Ab", &b, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(b, "\x00\xff\x10\xab", 4);
    free(b);
    assert_false(cli_hex_decode("abc", &b, &n));
    assert_false(cli_hex_decode("zz", &b, &n));
    char buf[32];
    assert_string_equal(cli_human_bytes(512, buf, sizeof buf), "512 B");
    assert_string_equal(cli_human_bytes(3 << 20, buf, sizeof buf), "3.0 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_lists_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
