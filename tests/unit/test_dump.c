/* The picture emitter (common/dump.h): key quoting, the caps on drawn nodes, and the exact DOT
 * and text-tree output of a small picture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dump.h"

/* Emits p in format f into a malloc'd string. */
static char *emit(const kv_pic *p, kv_dump_format f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(kv_pic_emit(p, out, f), KV_OK);
    fclose(out);
    return buf;
}

static void test_key(void **state)
{
    (void)state;
    kv_pic *p = kv_pic_new("db");
    assert_non_null(p);
    assert_string_equal(kv_pic_key(p, "apple", 5), "\"apple\"");
    assert_string_equal(kv_pic_key(p, "a\"b\\c\x01\xff", 7), "\"a\\x22b\\x5cc\\x01\\xff\"");
    assert_string_equal(kv_pic_key(p, "0123456789abcdefghijXYZ", 23),
                        "\"0123456789abcdefghij\"...");
    assert_string_equal(kv_pic_bytes(p, 812), "812 B");
    assert_string_equal(kv_pic_bytes(p, 4096), "4.0 KiB");
    assert_string_equal(kv_pic_bytes(p, 3u << 20), "3.0 MiB");
    kv_pic_free(p);
}

static void test_small(void **state)
{
    (void)state;
    kv_pic *p = kv_pic_new("t \"q\"");
    int a = kv_pic_node(p, KV_PIC_ROOT, KV_PIC_FILE, "a");
    kv_pic_line(p, a, "k %s", kv_pic_key(p, "x\\", 2));
    int b = kv_pic_node(p, a, KV_PIC_BOX, "b");
    int c = kv_pic_node(p, KV_PIC_ROOT, KV_PIC_GROUP, "c");
    kv_pic_link(p, c, b, "to b");
    kv_pic_more(p, c, 5);
    char *tree = emit(p, KV_DUMP_TREE);
    assert_string_equal(tree, "t \"q\"\n"
                              "|-- a: k \"x\\x5c\"\n"
                              "|   `-- b\n"
                              "`-- c\n"
                              "    |-- -> b (to b)\n"
                              "    `-- ... 5 more\n");
    free(tree);
    char *dot = emit(p, KV_DUMP_DOT);
    assert_non_null(strstr(dot, "digraph kvlab {\n"));
    assert_non_null(strstr(dot, "  n0 [shape=box, label=\"t \\\"q\\\"\\l\"];\n"));
    assert_non_null(strstr(dot, "  n1 [shape=note, label=\"a\\lk \\\"x\\\\x5c\\\"\\l\"];\n"));
    assert_non_null(strstr(dot, "  n1 -> n2;\n"));
    assert_non_null(strstr(dot, "  n3_more [shape=plaintext, label=\"... 5 more\"];\n"));
    assert_non_null(strstr(dot, "  n3 -> n2 [style=dashed, constraint=false, label=\"to b\"];\n"));
    assert_string_equal(dot + strlen(dot) - 2, "}\n");
    free(dot);
    kv_pic_free(p);
}

/* A node shows KV_PIC_MAX_CHILDREN children, a depth KV_PIC_MAX_PER_DEPTH nodes; the rest are
 * counted, and the children of an undrawn node vanish quietly. */
static void test_caps(void **state)
{
    (void)state;
    kv_pic *p = kv_pic_new("db");
    int parents[3];
    for (int i = 0; i < 3; i++)
        parents[i] = kv_pic_node(p, KV_PIC_ROOT, KV_PIC_BOX, "p%d", i);
    int drawn = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 9; j++)
            drawn += kv_pic_node(p, parents[i], KV_PIC_BOX, "c%d.%d", i, j) >= 0;
    assert_int_equal(drawn, KV_PIC_MAX_PER_DEPTH);
    assert_false(kv_pic_room(p, parents[0]));
    int hidden = -1;
    for (int i = 0; i < KV_PIC_MAX_CHILDREN + 1; i++)
        hidden = kv_pic_node(p, KV_PIC_ROOT, KV_PIC_BOX, "r%d", i);
    assert_int_equal(hidden, -1);
    assert_int_equal(kv_pic_node(p, hidden, KV_PIC_BOX, "under nothing"), -1);
    kv_pic_line(p, hidden, "ignored");
    kv_pic_link(p, hidden, KV_PIC_ROOT, "ignored");
    kv_pic_more(p, hidden, 3);
    assert_false(kv_pic_room(p, hidden));
    char *tree = emit(p, KV_DUMP_TREE);
    /* p0: 6 drawn + "... 3 more"; p1: 4 drawn (the depth is full) + "... 5 more" */
    assert_non_null(strstr(tree, "|   |-- c0.5\n|   `-- ... 3 more\n"));
    assert_non_null(strstr(tree, "|   |-- c1.3\n|   `-- ... 5 more\n"));
    assert_non_null(strstr(tree, "|-- p2\n|   `-- ... 9 more\n"));
    assert_null(strstr(tree, "c2.0"));
    assert_non_null(strstr(tree, "`-- ... 4 more\n")); /* the root: 3 + 7 children, 6 drawn */
    free(tree);
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    assert_int_equal(kv_pic_emit(p, out, KV_DUMP_TEXT), KV_INVALID);
    fclose(out);
    kv_pic_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
