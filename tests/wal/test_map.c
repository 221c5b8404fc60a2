/* Tests of the `wal` engine's in-memory table (wal_map.h, the copy-on-write B-tree) against a
 * model: random puts and deletes of keys shorter than, equal to and longer than the 16 prefix
 * bytes (longer ones sharing their first 16 bytes, so that the full comparison decides), the
 * tree's own check after every batch, snapshots taken along the way that must keep showing the
 * state of their creation (every split, borrow and merge copies shared nodes), seeks, a bulk
 * build, and emptying the tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coding.h"
#include "testutil.h"
#include "wal_map.h"

#define NKEYS 3000

typedef struct model {
    bool present[NKEYS];
    uint32_t ver[NKEYS];
} model;

typedef struct key {
    uint8_t b[24];
    size_t len;
} key;

static key keys[NKEYS];
static int order[NKEYS]; /* key ids in memcmp-then-length order */

/* Key j: 4, 16 or 20 bytes; the 20-byte ones all start with the same 16 bytes. */
static void make_key(int j, key *k)
{
    switch (j % 3) {
    case 0:
        k->len = 4;
        snprintf((char *)k->b, sizeof k->b, "%04d", j);
        break;
    case 1:
        k->len = 16;
        snprintf((char *)k->b, sizeof k->b, "%016d", j);
        break;
    default:
        k->len = 20;
        snprintf((char *)k->b, sizeof k->b, "kkkkkkkkkkkkkkkk%04d", j);
        break;
    }
}

static int cmp_ids(const void *a, const void *b)
{
    const key *x = &keys[*(const int *)a], *y = &keys[*(const int *)b];
    return kv_key_cmp(x->b, x->len, y->b, y->len);
}

static void init_keys(void)
{
    for (int j = 0; j < NKEYS; j++) {
        make_key(j, &keys[j]);
        order[j] = j;
    }
    qsort(order, NKEYS, sizeof order[0], cmp_ids);
}

static wal_entry *new_entry(wal_map *m, int j, uint32_t ver)
{
    uint8_t v[8];
    kv_put_u32(v, (uint32_t)j);
    kv_put_u32(v + 4, ver);
    wal_entry *e = wal_entry_new(m, keys[j].b, keys[j].len, v, ver % 5 == 0 ? 0 : sizeof v);
    assert_non_null(e);
    return e;
}

/* The value of key j's entry e holds version ver. */
static void assert_entry(const wal_entry *e, int j, uint32_t ver)
{
    assert_int_equal(e->klen, keys[j].len);
    assert_memory_equal(e->data, keys[j].b, keys[j].len);
    if (ver % 5 == 0) {
        assert_int_equal(e->vlen, 0);
    } else {
        assert_int_equal(e->vlen, 8);
        assert_int_equal(kv_get_u32(e->data + e->klen), (uint32_t)j);
        assert_int_equal(kv_get_u32(e->data + e->klen + 4), ver);
    }
}

/* A full scan of root equals model md; a seek to every 37th key lands on the model's next key. */
static void assert_tree_equals(wal_node *root, const model *md)
{
    wal_cursor c;
    wal_cursor_first(&c, root);
    for (int o = 0; o < NKEYS; o++) {
        int j = order[o];
        if (!md->present[j])
            continue;
        wal_entry *e = wal_cursor_entry(&c);
        assert_non_null(e);
        assert_entry(e, j, md->ver[j]);
        wal_cursor_next(&c);
    }
    assert_null(wal_cursor_entry(&c));
    for (int o = 0; o < NKEYS; o += 37) {
        wal_cursor_seek(&c, root, keys[order[o]].b, keys[order[o]].len);
        int p = o;
        while (p < NKEYS && !md->present[order[p]])
            p++;
        wal_entry *e = wal_cursor_entry(&c);
        if (p == NKEYS) {
            assert_null(e);
        } else {
            assert_non_null(e);
            assert_entry(e, order[p], md->ver[order[p]]);
        }
    }
}

typedef struct held {
    wal_node *root;
    uint64_t count;
    model md;
} held;

static void test_random_ops_with_snapshots(void **state)
{
    (void)state;
    init_keys();
    tu_rng rng = {tu_seed(4)};
    wal_map m;
    wal_map_init(&m);
    model *md = calloc(1, sizeof *md);
    held *snaps = calloc(4, sizeof *snaps);
    assert_non_null(md);
    assert_non_null(snaps);
    uint64_t count = 0, lsn = 0;
    for (int round = 0; round < 60; round++) {
        /* Phases: mostly inserts, then mixed, then mostly deletes (the tree grows to thousands
         * of keys and shrinks back, through every split, borrow and merge case). */
        int put_pct = round < 20 ? 85 : round < 40 ? 50 : 15;
        wal_map_begin(&m);
        for (int op = 0; op < 1000; op++) {
            int j = (int)tu_below(&rng, NKEYS);
            if ((int)tu_below(&rng, 100) < put_pct) {
                uint32_t ver = md->ver[j] + 1;
                assert_true(wal_map_put(&m, new_entry(&m, j, ver)));
                count += !md->present[j];
                md->present[j] = true;
                md->ver[j] = ver;
            } else {
                assert_true(wal_map_del(&m, keys[j].b, keys[j].len));
                count -= md->present[j];
                md->present[j] = false;
            }
        }
        wal_map_end(&m, ++lsn);
        assert_int_equal(wal_map_check(&m), KV_OK);
        for (int j = 0; j < NKEYS; j += 7) {
            wal_entry *e = NULL;
            bool found = wal_map_get(&m, keys[j].b, keys[j].len, &e);
            assert_int_equal(found, md->present[j]);
            if (found) {
                assert_entry(e, j, md->ver[j]);
                wal_entry_unref(&m, e);
            }
        }
        /* Snapshot slot round % 4: verify the one taken four rounds ago, then replace it. */
        held *h = &snaps[round % 4];
        if (round >= 4) {
            assert_tree_equals(h->root, &h->md);
            wal_map_release(&m, h->root);
        }
        uint64_t got_count = 0, got_lsn = 0;
        h->root = wal_map_snapshot(&m, &got_count, &got_lsn);
        assert_int_equal(got_count, count);
        assert_int_equal(got_lsn, lsn);
        h->md = *md;
        if (round % 10 == 9)
            assert_tree_equals(m.root, md);
    }
    for (int i = 0; i < 4; i++) {
        assert_tree_equals(snaps[i].root, &snaps[i].md);
        wal_map_release(&m, snaps[i].root);
    }
    /* Delete everything left: the tree empties completely. */
    wal_map_begin(&m);
    for (int j = 0; j < NKEYS; j++)
        assert_true(wal_map_del(&m, keys[j].b, keys[j].len));
    wal_map_end(&m, ++lsn);
    assert_null(m.root);
    assert_int_equal(m.count, 0);
    assert_int_equal(wal_map_check(&m), KV_OK);
    assert_int_equal(atomic_load(&m.mem), 0);
    wal_map_destroy(&m);
    free(snaps);
    free(md);
}

static void test_build_from_sorted(void **state)
{
    (void)state;
    init_keys();
    wal_map m;
    wal_map_init(&m);
    model *md = calloc(1, sizeof *md);
    wal_entry **v = malloc(NKEYS * sizeof *v);
    assert_non_null(md);
    assert_non_null(v);
    size_t n = 0;
    for (int o = 0; o < NKEYS; o++) {
        int j = order[o];
        if (j % 4 == 3)
            continue;
        md->present[j] = true;
        md->ver[j] = 1;
        v[n++] = new_entry(&m, j, 1);
    }
    assert_true(wal_map_build(&m, v, n, 77));
    assert_int_equal(wal_map_check(&m), KV_OK);
    uint64_t count = 0, lsn = 0;
    wal_node *root = wal_map_snapshot(&m, &count, &lsn);
    assert_int_equal(count, n);
    assert_int_equal(lsn, 77);
    assert_tree_equals(root, md);
    wal_map_release(&m, root);
    wal_map_destroy(&m);
    free(v);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops_with_snapshots),
        cmocka_unit_test(test_build_from_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
