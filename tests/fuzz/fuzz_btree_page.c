/* fuzz_btree_page: the btree/ page decoders as pure functions (btree_int.h, page.c): page CRC
 * (bt_pg_crc_ok), the structural check the buffer pool applies to every page read from disk
 * (bt_pg_sane: leaf, internal, overflow and free pages), the meta page (bt_meta_decode), and
 * then everything the tree does with a page that passed the check: cell sizes, keys and child
 * pointers, binary searches, free/used space, removing and inserting a cell.
 *
 * The input is one page image (4096 bytes, zero-padded or cut). Its page number is the one the
 * header claims (so the position check passes); page number 0 is the meta page. The CRC is
 * checked on the raw image, then the image is sealed with its CRC so that the structural
 * checks behind it are reached (a CRC collision or a writer bug gets there too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

#define PS 4096u

static void search(const uint8_t *p, const void *k, size_t kl)
{
    bool found;
    unsigned i =
        pg_type(p) == BT_LEAF ? bt_pg_lower_bound(p, k, kl, &found) : bt_pg_upper_bound(p, k, kl);
    if (i > pg_n(p)) {
        fprintf(stderr, "binary search returned slot %u of %u\n", i, pg_n(p));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = calloc(1, PS), *q = malloc(PS);
    if (!p || !q)
        goto out;
    memcpy(p, data, size < PS ? size : PS);
    uint32_t pgno = pg_pgno(p);
    if (pgno == 0 || size < 12) {
        (void)bt_pg_crc_ok(p, PS, 0);
        bt_meta m;
        (void)bt_meta_decode(p, PS, "fuzz", &m);
        bt_pg_seal(p, PS, 0);
        if (!bt_pg_crc_ok(p, PS, 0))
            abort();
        (void)bt_meta_decode(p, PS, "fuzz", &m);
        goto out;
    }
    (void)bt_pg_crc_ok(p, PS, pgno);
    bt_pg_seal(p, PS, pgno);
    if (!bt_pg_crc_ok(p, PS, pgno)) {
        fprintf(stderr, "a sealed page fails its crc\n");
        abort();
    }
    if (bt_pg_sane(p, PS, pgno) != NULL)
        goto out;
    int t = pg_type(p);
    if (t == BT_OVERFLOW) {
        volatile uint8_t sink = pg_content(p) ? p[BT_HDR + pg_content(p) - 1] : 0;
        (void)sink;
        goto out;
    }
    if (t != BT_LEAF && t != BT_INTERNAL)
        goto out;
    unsigned n = pg_n(p);
    size_t cells = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t kl;
        const uint8_t *k = cell_key(p, i, &kl);
        size_t cs = bt_cell_size(p, i);
        if (k < p || k + kl > p + PS || pg_slot(p, i) + cs > PS) {
            fprintf(stderr, "cell %u of a sane page lies outside it\n", i);
            abort();
        }
        volatile uint8_t sink = k[kl - 1];
        (void)sink;
        cells += cs;
        if (t == BT_INTERNAL)
            (void)cell_child(p, i);
        search(p, k, kl);
    }
    if (cells != PS - pg_content(p)) {
        fprintf(stderr, "cells of a sane page do not fill its cell area\n");
        abort();
    }
    (void)child_at(p, 0);
    search(p, "", 0);
    search(p, "k0000050", 8);
    search(p, "\xff\xff\xff", 3);
    size_t fr = bt_pg_free(p);
    (void)bt_pg_used(p, PS);
    if (fr > PS) {
        fprintf(stderr, "free space %zu on a %u-byte page\n", fr, PS);
        abort();
    }
    if (n > 0) { /* what a delete does to a page read from disk */
        memcpy(q, p, PS);
        bt_pg_remove_cell(q, n / 2, PS);
        /* the tree keeps using the page in memory (no new sanity check): search it */
        for (unsigned i = 0; i + 1 < n; i++) {
            size_t kl;
            const uint8_t *k = cell_key(q, i, &kl);
            volatile uint8_t sink = kl ? k[kl - 1] : 0;
            (void)sink;
        }
        search(q, "k0000050", 8);
        if (bt_pg_sane(q, PS, pgno) != NULL) {
            fprintf(stderr, "removing a cell from a sane page left it insane: %s\n",
                    bt_pg_sane(q, PS, pgno));
            abort();
        }
    }
    /* what an insert does: a small cell of the page's kind */
    uint8_t cell[16] = {0};
    size_t cl;
    if (t == BT_LEAF) {
        kv_put_u16(cell, 3);
        cell[2] = 0;
        kv_put_u32(cell + 3, 2);
        memcpy(cell + 7, "kxyvv", 5);
        cl = 12;
    } else {
        kv_put_u16(cell, 3);
        kv_put_u32(cell + 2, 1);
        memcpy(cell + 6, "kxy", 3);
        cl = 9;
    }
    if (fr >= cl + 2) {
        memcpy(q, p, PS);
        bool found = false;
        unsigned at =
            t == BT_LEAF ? bt_pg_lower_bound(q, "kxy", 3, &found) : bt_pg_upper_bound(q, "kxy", 3);
        if (!found) {
            bt_pg_insert_cell(q, at, cell, cl);
            if (bt_pg_sane(q, PS, pgno) != NULL) {
                fprintf(stderr, "inserting a cell into a sane page left it insane: %s\n",
                        bt_pg_sane(q, PS, pgno));
                abort();
            }
        }
    }
out:
    free(p);
    free(q);
    return 0;
}
