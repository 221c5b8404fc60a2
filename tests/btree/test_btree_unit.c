/* Unit tests of the btree engine: page layout, splits up to height 3, merges back to height 1,
 * free-list reuse, overflow chains, snapshot iterators, a randomized differential test against
 * a model, durability modes across reopen, dump output. */
#include "bt_testlib.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "btree_int.h"
#include "faultfs.h"

/* ---- page layout (page.c directly) ---- */

static void test_page_layout(void **state)
{
    (void)state;
    uint32_t ps = 4096;
    uint8_t *p = malloc(ps);
    bt_pg_init(p, ps, 7, BT_LEAF, 0);
    assert_int_equal(pg_type(p), BT_LEAF);
    assert_int_equal(pg_pgno(p), 7);
    assert_int_equal(pg_n(p), 0);
    assert_int_equal(bt_pg_free(p), ps - BT_HDR);
    uint8_t cell[64];
    const char *keys[] = {"m", "c", "x", "a"};
    for (int i = 0; i < 4; i++) {
        size_t kl = strlen(keys[i]);
        kv_put_u16(cell, (uint16_t)kl);
        cell[2] = 0;
        kv_put_u32(cell + 3, 2);
        memcpy(cell + 7, keys[i], kl);
        memcpy(cell + 7 + kl, "vv", 2);
        bool found;
        unsigned at = bt_pg_lower_bound(p, keys[i], kl, &found);
        assert_false(found);
        bt_pg_insert_cell(p, at, cell, 7 + kl + 2);
    }
    assert_int_equal(pg_n(p), 4);
    assert_int_equal(bt_pg_used(p, ps), 4 * (7 + 1 + 2) + 4 * BT_SLOT);
    assert_int_equal(pg_prefix(p), 0); /* "m", "c", "x", "a" share nothing */
    /* Slots are in key order: a c m x. */
    const char *order = "acmx";
    for (unsigned i = 0; i < 4; i++) {
        size_t kl;
        const uint8_t *k = cell_key(p, i, &kl);
        assert_int_equal(kl, 1);
        assert_int_equal(k[0], order[i]);
    }
    bool found;
    assert_int_equal(bt_pg_lower_bound(p, "m", 1, &found), 2);
    assert_true(found);
    assert_int_equal(bt_pg_lower_bound(p, "n", 1, &found), 3);
    assert_false(found);
    /* Remove "c": the page stays compact and sane. */
    bt_pg_remove_cell(p, 1, ps);
    assert_int_equal(pg_n(p), 3);
    assert_null(bt_pg_sane(p, ps, 7));
    assert_int_equal(pg_content(p), ps - 3 * 10);
    bt_pg_seal(p, ps, 7);
    assert_true(bt_pg_crc_ok(p, ps, 7));
    p[100] ^= 1;
    assert_false(bt_pg_crc_ok(p, ps, 7));
    /* Meta page round trip. */
    bt_meta m = {.page_size = ps,
                 .root = 3,
                 .height = 2,
                 .hwm = 9,
                 .free_head = 4,
                 .key_count = 42,
                 .free_count = 1,
                 .last_lsn = 77,
                 .checkpoint_lsn = 70,
                 .db_id = 0x1234567890abcdefull,
                 .log_gen = 5,
                 .data_lsn = 75};
    bt_meta_encode(&m, p, ps);
    bt_meta d;
    assert_int_equal(bt_meta_decode(p, ps, "x", &d), KV_OK);
    assert_int_equal(d.root, 3);
    assert_int_equal(d.key_count, 42);
    assert_int_equal(d.last_lsn, 77);
    assert_true(d.db_id == m.db_id);
    assert_int_equal(d.log_gen, 5);
    assert_int_equal(d.data_lsn, 75);
    p[20] ^= 1;
    assert_int_equal(bt_meta_decode(p, ps, "x", &d), KV_CORRUPTION);
    free(p);
}

/* ---- splits, merges, free-list reuse ---- */

static void fill(kv_db *db, unsigned from, unsigned to, size_t vlen, unsigned ver)
{
    uint8_t *v = malloc(vlen + 1);
    char k[32];
    for (unsigned i = from; i < to; i++) {
        bt_val(v, vlen, i, ver);
        assert_int_equal(kv_put(db, k, bt_key(k, i), v, vlen), KV_OK);
    }
    free(v);
}

static void expect(kv_db *db, unsigned from, unsigned to, size_t vlen, unsigned ver)
{
    uint8_t *v = malloc(vlen + 1);
    char k[32];
    for (unsigned i = from; i < to; i++) {
        void *got;
        size_t n;
        bt_val(v, vlen, i, ver);
        assert_int_equal(kv_get(db, k, bt_key(k, i), &got, &n), KV_OK);
        assert_int_equal(n, vlen);
        assert_memory_equal(got, v, vlen);
        kv_free(got);
    }
    free(v);
}

/* The structural check of a page read from disk, as first written (one bit per byte of every
 * cell): the reference the faster bt_pg_sane must agree with, message for message. */
static const char *ref_sane(const uint8_t *p, uint32_t ps, uint32_t pgno)
{
    uint8_t t = pg_type(p);
    if (t < BT_LEAF || t > BT_FREE)
        return "unknown page type";
    if (pg_pgno(p) != pgno)
        return "page number field does not match its position";
    if (t == BT_OVERFLOW)
        return pg_content(p) <= ps - BT_HDR ? NULL : "overflow data length too large";
    if (t == BT_FREE)
        return NULL;
    uint32_t content = pg_content(p);
    unsigned n = pg_n(p);
    if (content > ps || BT_HDR + (size_t)BT_SLOT * n > content)
        return "slot array overlaps the cells";
    if ((t == BT_LEAF) != (pg_level(p) == 0))
        return "page type does not match its level";
    size_t total = 0;
    static uint8_t used[(64u << 10) / 8];
    memset(used, 0, (ps + 7) / 8);
    for (unsigned i = 0; i < n; i++) {
        uint32_t o = pg_slot(p, i);
        if (o < content || o + 7 > ps)
            return "slot points outside the cell area";
        size_t klen = kv_get_u16(p + o);
        size_t len =
            t == BT_INTERNAL ? 6 + klen : 7 + klen + (p[o + 2] ? 4 : kv_get_u32(p + o + 3));
        if (klen == 0 || o + len > ps)
            return "cell runs past the end of the page";
        if (t == BT_LEAF && kv_get_u32(p + o + 3) > KV_MAX_VALUE)
            return "value length above 64 MiB";
        for (size_t b = o; b < o + len; b++) {
            if (used[b >> 3] & (1u << (b & 7)))
                return "two cells overlap";
            used[b >> 3] |= (uint8_t)(1u << (b & 7));
        }
        total += len;
    }
    if (total != ps - content)
        return "cells do not fill the cell area exactly";
    return bt_pg_prefix_check(p);
}

/* bt_pg_sane (start marks and a walk over the cells) gives the same verdict and message as
 * the byte-by-byte reference on valid pages and on many damaged ones: slots swapped,
 * duplicated or moved, key and value lengths changed, the cell area start moved. */
static void test_page_sane_matches_reference(void **state)
{
    (void)state;
    const uint32_t ps = 4096;
    uint8_t *good = malloc(ps), *p = malloc(ps);
    tu_rng rng = {tu_seed(7)};
    unsigned rejected = 0;
    for (int type = BT_LEAF; type <= BT_INTERNAL; type++) {
        bt_pg_init(good, ps, 9, type, type == BT_LEAF ? 0 : 1);
        uint8_t cell[64];
        for (unsigned i = 0; i < 60; i++) {
            char k[32];
            size_t kl = bt_key(k, i * 3);
            size_t len;
            kv_put_u16(cell, (uint16_t)kl);
            if (type == BT_LEAF) {
                size_t vl = i % 5;
                cell[2] = 0;
                kv_put_u32(cell + 3, (uint32_t)vl);
                memcpy(cell + 7, k, kl);
                memset(cell + 7 + kl, 'v', vl);
                len = 7 + kl + vl;
            } else {
                kv_put_u32(cell + 2, 100 + i);
                memcpy(cell + 6, k, kl);
                len = 6 + kl;
            }
            bt_pg_insert_cell(good, i, cell, len);
        }
        assert_null(bt_pg_sane(good, ps, 9));
        for (unsigned trial = 0; trial < 20000; trial++) {
            memcpy(p, good, ps);
            unsigned n = pg_n(p);
            unsigned a = (unsigned)(tu_next(&rng) % n), b = (unsigned)(tu_next(&rng) % n);
            uint32_t oa = pg_slot(p, a);
            switch (tu_next(&rng) % 6) {
            case 0: /* a slot points at another cell */
                kv_put_u16(p + BT_HDR + BT_SLOT * a, (uint16_t)pg_slot(p, b));
                break;
            case 1: /* a slot moves by a few bytes */
                kv_put_u16(p + BT_HDR + BT_SLOT * a, (uint16_t)(oa + tu_next(&rng) % 17 - 8));
                break;
            case 2: /* a key length changes */
                kv_put_u16(p + oa, (uint16_t)(kv_get_u16(p + oa) + tu_next(&rng) % 9 - 4));
                break;
            case 3: /* a value length (leaf) or a child (internal) changes */
                kv_put_u32(p + oa + 3, (uint32_t)(kv_get_u32(p + oa + 3) + tu_next(&rng) % 9 - 4));
                break;
            case 4: /* the cell area start moves */
                kv_put_u32(p + 12, (uint32_t)(pg_content(p) + tu_next(&rng) % 17 - 8));
                break;
            default: /* the slot count changes */
                kv_put_u16(p + 6, (uint16_t)(n + tu_next(&rng) % 5 - 2));
                break;
            }
            const char *want = ref_sane(p, ps, 9), *got = bt_pg_sane(p, ps, 9);
            if (want == NULL || got == NULL)
                assert_ptr_equal(want, got);
            else
                assert_string_equal(want, got);
            rejected += want != NULL;
        }
    }
    assert_true(rejected > 1000); /* the mutations did produce damaged pages */
    free(good);
    free(p);
}

/* The per-commit meta record (96 bytes, CRC computed with the zero-extension table) must be
 * byte for byte the head of the full meta page, for every page size. */
static void test_meta_head_crc(void **state)
{
    (void)state;
    for (uint32_t ps = BT_MIN_PS; ps <= BT_MAX_PS; ps *= 2) {
        bt_zext z;
        bt_zext_init(&z, ps);
        uint8_t *full = malloc(ps);
        assert_non_null(full);
        for (uint64_t k = 0; k < 200; k++) {
            bt_meta m = {.page_size = ps,
                         .root = (uint32_t)(k * 2654435761u),
                         .height = (uint32_t)(k % 7 + 1),
                         .hwm = (uint32_t)(k * 977 + 2),
                         .free_head = (uint32_t)(k * 31),
                         .key_count = k * 0x9E3779B97F4A7C15ull,
                         .free_count = k << 20,
                         .last_lsn = ~k,
                         .checkpoint_lsn = k * k,
                         .db_id = k * 0xabcdef123ull,
                         .log_gen = k + 1,
                         .data_lsn = k * k + k};
            uint8_t head[BT_META_LEN];
            bt_meta_encode_head(&m, head, &z);
            bt_meta_encode(&m, full, ps);
            assert_memory_equal(head, full, BT_META_LEN);
            assert_true(bt_pg_crc_ok(full, ps, 0));
        }
        free(full);
    }
}

static int cmp_keybuf(const void *a, const void *b)
{
    const uint8_t *x = a, *y = b;
    return kv_key_cmp(x + 1, x[0], y + 1, y[0]);
}

/* Makes a random key of at least lo and at most hi bytes into k (k[0] = length): bytes that are
 * often 0x00, 0xff or 0x80, after the first plen bytes of pre. */
static void rand_key(tu_rng *rng, uint8_t *k, unsigned lo, unsigned hi, const uint8_t *pre,
                     unsigned plen)
{
    k[0] = (uint8_t)(lo + tu_below(rng, hi - lo + 1));
    for (unsigned j = 1; j <= k[0]; j++) {
        uint64_t r = tu_below(rng, 4);
        k[j] = j <= plen ? pre[j - 1]
               : r == 0  ? 0x00
               : r == 1  ? 0xff
               : r == 2  ? 0x80
                         : (uint8_t)tu_next(rng);
    }
}

/* The page searches (key windows in the slots, word-at-a-time key compare) agree with
 * kv_key_cmp on binary keys that share long prefixes, differ in any byte (including 0x00 and
 * 0xff) or only in length; on pages whose keys all start with a common prefix (which the
 * windows follow) probed with keys inside and outside that prefix, and shorter than it; on
 * pages built at once (bt_pg_build) and cell by cell in random order (bt_pg_insert_cell cuts
 * the prefix and rewrites the windows) with some cells removed again. */
static void test_search_order_binary_keys(void **state)
{
    (void)state;
    tu_rng rng = {tu_seed(42)};
    enum { NK = 60, KL = 24 };
    uint8_t keys[NK][KL + 1], cellbuf[NK][7 + KL], page[BT_MIN_PS];
    unsigned prefixed = 0, shortened = 0;
    for (int round = 0; round < 400; round++) {
        uint8_t pre[KL];
        unsigned plen = round % 2 ? 1 + (unsigned)tu_below(&rng, 14) : 0;
        for (unsigned j = 0; j < KL; j++)
            pre[j] = (uint8_t)tu_next(&rng);
        for (int i = 0; i < NK; i++)
            rand_key(&rng, keys[i], plen ? plen : 1, KL, pre, plen); /* keys: 1+ bytes */
        qsort(keys, NK, sizeof keys[0], cmp_keybuf);
        bt_cell cells[NK];
        size_t n = 0;
        for (int i = 0; i < NK; i++) {
            if (n && !cmp_keybuf(keys[i], keys[n - 1]))
                continue;
            memmove(keys[n], keys[i], sizeof keys[0]);
            uint8_t *c = cellbuf[n];
            kv_put_u16(c, keys[n][0]);
            c[2] = 0;
            kv_put_u32(c + 3, 0);
            memcpy(c + 7, keys[n] + 1, keys[n][0]);
            cells[n].p = c;
            cells[n].len = 7u + keys[n][0];
            n++;
        }
        if (round % 4 < 2) {
            bt_pg_build(page, BT_MIN_PS, 1, BT_LEAF, 0, 0, cells, n);
        } else {
            /* Insert in a random order, then remove a few cells (and their keys). */
            bt_pg_init(page, BT_MIN_PS, 1, BT_LEAF, 0);
            size_t order[NK];
            for (size_t i = 0; i < n; i++)
                order[i] = i;
            for (size_t i = n; i > 1; i--) {
                size_t j = tu_below(&rng, i), t = order[i - 1];
                order[i - 1] = order[j];
                order[j] = t;
            }
            unsigned before = 0;
            for (size_t i = 0; i < n; i++) {
                const uint8_t *k = keys[order[i]];
                bool found;
                unsigned at = bt_pg_lower_bound(page, k + 1, k[0], &found);
                assert_false(found);
                before = pg_prefix(page);
                bt_pg_insert_cell(page, at, cells[order[i]].p, cells[order[i]].len);
                shortened += i > 0 && pg_prefix(page) < before;
            }
            for (int r = 0; r < 5 && n > 1; r++) {
                size_t i = tu_below(&rng, n);
                bt_pg_remove_cell(page, (unsigned)i, BT_MIN_PS);
                memmove(keys[i], keys[i + 1], (n - i - 1) * sizeof keys[0]);
                n--;
            }
        }
        assert_null(bt_pg_sane(page, BT_MIN_PS, 1));
        assert_int_equal(pg_n(page), n);
        assert_true(pg_prefix(page) >= plen);
        prefixed += pg_prefix(page) > 0;
        for (int q = 0; q < 100; q++) {
            uint8_t probe[KL + 1];
            switch (q % 6) {
            case 1: /* a key of the page, or one with a bit flipped */
            case 3:
                memcpy(probe, keys[tu_below(&rng, n)], sizeof probe);
                if (q % 6 == 1 && probe[0] > 0)
                    probe[1 + tu_below(&rng, probe[0])] ^= (uint8_t)(1u << tu_below(&rng, 8));
                break;
            case 4: /* inside the page's prefix */
                rand_key(&rng, probe, plen, KL, pre, plen);
                break;
            case 5: /* the prefix cut short, or with a byte changed */
                rand_key(&rng, probe, 0, KL, pre, plen);
                if (probe[0] > 0 && tu_below(&rng, 2))
                    probe[1 + tu_below(&rng, probe[0])] += (uint8_t)(1 + tu_below(&rng, 255));
                break;
            default:
                rand_key(&rng, probe, 0, KL, NULL, 0);
                break;
            }
            unsigned lb = 0, ub = 0;
            bool want = false;
            for (size_t i = 0; i < n; i++) {
                int c = cmp_keybuf(keys[i], probe);
                lb += c < 0;
                ub += c <= 0;
                want |= c == 0;
            }
            bool found;
            assert_int_equal(bt_pg_lower_bound(page, probe + 1, probe[0], &found), lb);
            assert_int_equal(found, want);
            assert_int_equal(bt_pg_upper_bound(page, probe + 1, probe[0]), ub);
        }
    }
    assert_true(prefixed > 150); /* the prefixed rounds did give pages a prefix */
    assert_true(shortened > 50); /* and inserts did cut prefixes */
}

/* bt_pg_sane rejects a page whose prefix or windows the searches cannot trust: a window that
 * does not match its key, a prefix longer than a key, a key that does not start with the
 * prefix. */
static void test_page_prefix_checked(void **state)
{
    (void)state;
    const uint32_t ps = 4096;
    uint8_t *good = malloc(ps), *p = malloc(ps);
    bt_pg_init(good, ps, 5, BT_INTERNAL, 1);
    uint8_t cell[64];
    const char *keys[] = {"user:0007", "user:0012", "user:0100", "user:01"};
    for (unsigned i = 0; i < 4; i++) {
        size_t kl = strlen(keys[i]);
        kv_put_u16(cell, (uint16_t)kl);
        kv_put_u32(cell + 2, 10 + i);
        memcpy(cell + 6, keys[i], kl);
        bt_pg_insert_cell(good, bt_pg_upper_bound(good, keys[i], kl), cell, 6 + kl);
    }
    assert_int_equal(pg_prefix(good), 6);           /* "user:0" */
    assert_int_equal(pg_win(good, 0), 0x30303700u); /* "007", zero-padded */
    assert_int_equal(pg_win(good, 1), 0x30313200u);
    assert_int_equal(pg_win(good, 2), 0x31000000u); /* "user:01" */
    assert_int_equal(pg_win(good, 3), 0x31303000u);
    assert_null(bt_pg_sane(good, ps, 5));
    assert_int_equal(bt_pg_upper_bound(good, "user:01", 7), 3);
    assert_int_equal(bt_pg_upper_bound(good, "user", 4), 0);
    assert_int_equal(bt_pg_upper_bound(good, "usez", 4), 4);
    assert_int_equal(bt_pg_upper_bound(good, "user:0012", 9), 2);

    memcpy(p, good, ps);
    p[BT_HDR + BT_SLOT * 2 + 3] ^= 1;
    assert_string_equal(bt_pg_sane(p, ps, 5), "slot window does not match its key");
    memcpy(p, good, ps);
    kv_put_u16(p + 20, 10);
    assert_string_equal(bt_pg_sane(p, ps, 5), "key shorter than the page's prefix");
    memcpy(p, good, ps);
    kv_put_u16(p + 20, 7);
    assert_string_equal(bt_pg_sane(p, ps, 5), "key does not start with the page's prefix");
    memcpy(p, good, ps);
    p[22] = 1;
    assert_string_equal(bt_pg_sane(p, ps, 5), "reserved header bytes are not zero");
    /* Removing every cell leaves an empty page without a prefix. */
    while (pg_n(good))
        bt_pg_remove_cell(good, 0, ps);
    assert_int_equal(pg_prefix(good), 0);
    assert_null(bt_pg_sane(good, ps, 5));
    free(good);
    free(p);
}

static void test_split_merge_reuse(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-split");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "none", NULL, 0, &db, "page_size=4096", NULL), KV_OK);
    /* 900-byte values: 4 per leaf; height 3 after a few hundred keys. */
    const unsigned N = 1200;
    fill(db, 0, N, 900, 1);
    assert_true(bt_stat(db, "height") >= 3);
    assert_true(bt_stat(db, "splits") > 0);
    bt_assert_check(db);
    expect(db, 0, N, 900, 1);
    uint64_t pages = bt_stat(db, "pages");
    /* Delete every key but 3: merges shrink the tree to height 1. */
    char k[32];
    for (unsigned i = 0; i < N - 3; i++) {
        assert_int_equal(kv_delete(db, k, bt_key(k, i)), KV_OK);
        if (i % 97 == 0)
            bt_assert_check(db);
    }
    bt_assert_check(db);
    assert_int_equal(bt_stat(db, "height"), 1);
    assert_true(bt_stat(db, "merges") > 0);
    assert_true(bt_stat(db, "free_pages") > 0);
    expect(db, N - 3, N, 900, 1);
    void *v;
    size_t n;
    assert_int_equal(kv_get(db, k, bt_key(k, 5), &v, &n), KV_NOT_FOUND);
    /* Refill: freed pages are reused, the file does not grow. */
    fill(db, 0, N - 3, 900, 2);
    bt_assert_check(db);
    assert_int_equal(bt_stat(db, "pages"), pages);
    expect(db, 0, N - 3, 900, 2);
    assert_int_equal(kv_close(db), KV_OK);
    /* Reopen: everything is there, check passes. */
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    bt_assert_check(db);
    expect(db, 0, N - 3, 900, 2);
    expect(db, N - 3, N, 900, 1);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* Small values with a tiny cache: eviction, many checkpoints, borrow and merge paths. */
static void test_small_cache_random_deletes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-cache");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 64 * 1024, &db, "checkpoint_bytes=256K", NULL),
                     KV_OK);
    const unsigned N = 4000;
    fill(db, 0, N, 60, 1);
    assert_true(bt_stat(db, "cache_evictions") > 0);
    assert_true(bt_stat(db, "checkpoints") > 0);
    bt_assert_check(db);
    tu_rng r = {tu_seed(11)};
    char k[32];
    for (unsigned i = 0; i < N; i++) {
        unsigned j = (unsigned)tu_below(&r, N);
        assert_int_equal(kv_delete(db, k, bt_key(k, j)), KV_OK);
    }
    bt_assert_check(db);
    assert_true(bt_stat(db, "borrows") + bt_stat(db, "merges") > 0);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* 64 KiB pages (the largest): slot offsets and cell areas reach the end of the page. */
static void test_large_pages(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-64k");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "page_size=65536", NULL), KV_OK);
    const unsigned N = 30000;
    fill(db, 0, N, 12, 1);
    fill(db, 0, 40, 20000, 2); /* inline up to 16 KiB, these go to overflow pages */
    assert_true(bt_stat(db, "height") >= 2);
    bt_assert_check(db);
    char k[32];
    for (unsigned i = 0; i < N; i += 2)
        assert_int_equal(kv_delete(db, k, bt_key(k, i)), KV_OK);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    bt_assert_check(db);
    expect(db, 39, 40, 20000, 2);
    expect(db, 1001, 1002, 12, 1);
    void *v;
    size_t n;
    assert_int_equal(kv_get(db, k, bt_key(k, 1000), &v, &n), KV_NOT_FOUND);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* ---- overflow values ---- */

static void test_overflow_values(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-ovfl");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "sync", NULL, 0, &db, NULL), KV_OK);
    size_t big = (3u << 20) + 123;
    uint8_t *v = malloc(big);
    bt_val(v, big, 1, 1);
    assert_int_equal(kv_put(db, "big", 3, v, big), KV_OK);
    assert_int_equal(kv_put(db, "a", 1, "x", 1), KV_OK);
    bt_assert_check(db);
    void *got;
    size_t n;
    assert_int_equal(kv_get(db, "big", 3, &got, &n), KV_OK);
    assert_int_equal(n, big);
    assert_memory_equal(got, v, big);
    kv_free(got);
    uint64_t pages = bt_stat(db, "pages");
    /* Overwrite with a smaller big value: the old chain is freed and reused. */
    bt_val(v, big / 2, 2, 2);
    assert_int_equal(kv_put(db, "big", 3, v, big / 2), KV_OK);
    bt_assert_check(db);
    assert_true(bt_stat(db, "free_pages") > 0);
    assert_int_equal(bt_stat(db, "pages"), pages);
    assert_int_equal(kv_close(db), KV_OK);
    assert_int_equal(bt_open_opts(dir, "sync", NULL, 0, &db, NULL), KV_OK);
    assert_int_equal(kv_get(db, "big", 3, &got, &n), KV_OK);
    assert_int_equal(n, big / 2);
    assert_memory_equal(got, v, big / 2);
    kv_free(got);
    assert_int_equal(kv_delete(db, "big", 3), KV_OK);
    bt_assert_check(db);
    assert_int_equal(kv_get(db, "big", 3, &got, &n), KV_NOT_FOUND);
    assert_int_equal(kv_close(db), KV_OK);
    free(v);
    tu_rmtree(dir);
    free(dir);
}

/* ---- limits and options ---- */

static void test_limits_and_options(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-limits");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "page_size=5000", NULL), KV_INVALID);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "page_size=8192", NULL), KV_OK);
    kv_limits lim;
    assert_int_equal(kv_engine_limits("btree", &lim), KV_OK);
    uint8_t key[BT_MAX_KEY + 1];
    memset(key, 'k', sizeof key);
    assert_int_equal(kv_put(db, key, BT_MAX_KEY, "v", 1), KV_OK);
    assert_int_equal(kv_put(db, key, BT_MAX_KEY + 1, "v", 1), KV_INVALID);
    assert_int_equal(kv_close(db), KV_OK);
    /* The page size is fixed at creation. */
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "page_size=4096", NULL), KV_INVALID);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    assert_int_equal(kv_put(db, key, 700, "v", 1), KV_OK);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* ---- randomized differential test against a model, with iterators and reopen ---- */

#define MK 600
typedef struct model {
    int present[MK];
    unsigned ver[MK];
    size_t len[MK];
} model;

static size_t vlen_of(unsigned i, unsigned ver)
{
    unsigned r = (i * 131 + ver * 17) % 100;
    return r < 5 ? 5000 + r * 100 : r < 10 ? 0 : r * 3;
}

static void model_compare(kv_db *db, const model *m)
{
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    kv_iter_seek_first(it);
    uint8_t *buf = malloc(20000);
    for (unsigned i = 0; i < MK; i++) {
        if (!m->present[i])
            continue;
        assert_true(kv_iter_valid(it));
        char k[32];
        size_t kl = bt_key(k, i), gl, vl;
        const void *gk = kv_iter_key(it, &gl);
        assert_int_equal(gl, kl);
        assert_memory_equal(gk, k, kl);
        const void *gv = kv_iter_value(it, &vl);
        assert_int_equal(vl, m->len[i]);
        bt_val(buf, vl, i, m->ver[i]);
        assert_memory_equal(gv, buf, vl);
        kv_iter_next(it);
    }
    assert_false(kv_iter_valid(it));
    assert_int_equal(kv_iter_status(it), KV_OK);
    kv_iter_free(it);
    free(buf);
}

static void test_random_differential(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-diff");
    kv_db *db;
    const char *modes[] = {"none", "os", "interval:5", "sync"};
    model *m = calloc(1, sizeof *m);
    tu_rng r = {tu_seed(7)};
    uint8_t *buf = malloc(20000);
    kv_batch *b = kv_batch_new();
    for (int round = 0; round < 8; round++) {
        assert_int_equal(
            bt_open_opts(dir, modes[round % 4], NULL, 256 * 1024, &db, "checkpoint_bytes=1M", NULL),
            KV_OK);
        for (int op = 0; op < 1500; op++) {
            unsigned i = (unsigned)tu_below(&r, MK), what = (unsigned)tu_below(&r, 10);
            char k[32];
            size_t kl = bt_key(k, i);
            if (what < 5) {
                unsigned ver = m->ver[i] + 1;
                size_t vl = vlen_of(i, ver);
                bt_val(buf, vl, i, ver);
                assert_int_equal(kv_put(db, k, kl, buf, vl), KV_OK);
                m->present[i] = 1, m->ver[i] = ver, m->len[i] = vl;
            } else if (what < 8) {
                assert_int_equal(kv_delete(db, k, kl), KV_OK);
                m->present[i] = 0;
            } else {
                kv_batch_clear(b);
                for (int j = 0; j < 5; j++) {
                    unsigned x = (unsigned)tu_below(&r, MK);
                    char kk[32];
                    size_t kkl = bt_key(kk, x);
                    if (tu_below(&r, 3)) {
                        unsigned ver = m->ver[x] + 1;
                        size_t vl = vlen_of(x, ver);
                        bt_val(buf, vl, x, ver);
                        assert_int_equal(kv_batch_put(b, kk, kkl, buf, vl), KV_OK);
                        m->present[x] = 1, m->ver[x] = ver, m->len[x] = vl;
                    } else {
                        assert_int_equal(kv_batch_delete(b, kk, kkl), KV_OK);
                        m->present[x] = 0;
                    }
                }
                assert_int_equal(kv_write(db, b), KV_OK);
            }
            if (op % 500 == 0)
                model_compare(db, m);
        }
        bt_assert_check(db);
        model_compare(db, m);
        assert_int_equal(kv_close(db), KV_OK);
    }
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    model_compare(db, m);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    kv_batch_free(b);
    free(buf);
    free(m);
    tu_rmtree(dir);
    free(dir);
}

/* ---- snapshot iterator: writers change, split and merge pages under a live iterator ---- */

static void test_iterator_snapshot(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-snap");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 128 * 1024, &db, "checkpoint_bytes=64K", NULL),
                     KV_OK);
    fill(db, 0, 2000, 100, 1);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    /* Change everything after the snapshot: overwrite, delete half, add new keys. */
    fill(db, 0, 2000, 150, 2);
    char k[32];
    for (unsigned i = 0; i < 2000; i += 2)
        assert_int_equal(kv_delete(db, k, bt_key(k, i)), KV_OK);
    fill(db, 5000, 6000, 30, 3);
    assert_true(bt_stat(db, "snapshot_versions") > 0);
    kv_iter_seek(it, "k00000100", 9);
    uint8_t v[200];
    for (unsigned i = 100; i < 2000; i++) {
        assert_true(kv_iter_valid(it));
        size_t kl, vl;
        const void *gk = kv_iter_key(it, &kl);
        assert_int_equal(kl, bt_key(k, i));
        assert_memory_equal(gk, k, kl);
        const void *gv = kv_iter_value(it, &vl);
        assert_int_equal(vl, 100);
        bt_val(v, 100, i, 1);
        assert_memory_equal(gv, v, 100);
        kv_iter_next(it);
    }
    assert_false(kv_iter_valid(it));
    kv_iter_free(it);
    assert_int_equal(bt_stat(db, "snapshot_versions"), 0);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* ---- a failure inside a change rolls the whole group back (in-memory atomicity) ---- */

static void test_failed_read_rolls_back_batch(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("btree-rollback");
    char dir[600], scratch[600];
    snprintf(dir, sizeof dir, "%s/db", root);
    snprintf(scratch, sizeof scratch, "%s/scratch", root);
    kv_fs *fs = kv_faultfs_new(scratch);
    assert_non_null(fs);
    kv_db *db;
    /* A 64 KiB cache over ~1 MiB of pages: most leaves must be read from disk. */
    assert_int_equal(bt_open_opts(dir, "os", fs, 64 * 1024, &db, "checkpoint_bytes=64K", NULL),
                     KV_OK);
    fill(db, 0, 3000, 300, 1);
    bt_assert_check(db);
    uint64_t before = bt_stat(db, "log_groups");
    kv_batch *b = kv_batch_new();
    uint8_t v[300];
    char k[32];
    for (unsigned i = 0; i < 3000; i += 300) {
        bt_val(v, 300, i, 2);
        assert_int_equal(kv_batch_put(b, k, bt_key(k, i), v, 300), KV_OK);
    }
    assert_int_equal(kv_batch_delete(b, k, bt_key(k, 7)), KV_OK);
    /* The 4th page read from now fails: the batch is half applied when it hits it. */
    kv_faultfs_fail(fs, KV_FAULT_READ, 4, EIO, false);
    assert_int_equal(kv_write(db, b), KV_IO);
    kv_faultfs_clear_faults(fs);
    assert_int_equal(bt_stat(db, "log_groups"), before);
    /* Nothing of the batch is visible; the tree is intact; the handle is not poisoned. */
    expect(db, 0, 3000, 300, 1);
    bt_assert_check(db);
    assert_int_equal(kv_write(db, b), KV_OK);
    for (unsigned i = 0; i < 3000; i += 300)
        expect(db, i, i + 1, 300, 2);
    void *got;
    size_t n;
    assert_int_equal(kv_get(db, k, bt_key(k, 7), &got, &n), KV_NOT_FOUND);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    kv_batch_free(b);
    kv_fs_destroy(fs);
    tu_rmtree(root);
    free(root);
}

/* ---- the warmer (warm.c): loads the file into the pool at open, trusting no bad page ---- */

/* A damaged page is never put in the pool by the warmer: the first read of it still reports
 * KV_CORRUPTION, while every other page is warmed and served from memory. */
static void test_warm_skips_damaged_page(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-warm");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    const unsigned N = 3000;
    fill(db, 0, N, 100, 1);
    uint64_t hwm = bt_stat(db, "pages");
    assert_true(hwm > 10);
    assert_int_equal(kv_close(db), KV_OK);
    /* Reopen: every page [1, hwm) is warmed; no read of a page misses afterwards. */
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    bt_warm_wait((bt_db *)db);
    assert_int_equal(bt_stat(db, "pages_warmed"), hwm - 1);
    expect(db, 0, N, 100, 1);
    assert_int_equal(bt_stat(db, "cache_misses"), 0);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    /* Flip one byte in the middle of the last page (a leaf: the tree grows to the right). */
    char path[600];
    snprintf(path, sizeof path, "%s/btree.db", dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    long off = (long)((hwm - 1) * 4096 + 2048);
    assert_int_equal(fseek(fp, off, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, off, SEEK_SET), 0);
    assert_int_not_equal(fputc(c ^ 0x5a, fp), EOF);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    bt_warm_wait((bt_db *)db);
    assert_int_equal(bt_stat(db, "pages_warmed"), hwm - 2);
    unsigned bad = 0;
    char k[32];
    for (unsigned i = 0; i < N; i++) {
        void *got;
        size_t n;
        kv_status s = kv_get(db, k, bt_key(k, i), &got, &n);
        if (s == KV_OK)
            kv_free(got);
        else
            assert_int_equal(s, KV_CORRUPTION);
        bad += s != KV_OK;
    }
    assert_true(bad > 0 && bad < N);
    assert_int_equal(kv_check(db), KV_CORRUPTION);
    assert_int_equal(kv_close(db), KV_OK);
    /* warm=0: nothing is loaded at open. */
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, "warm=0", NULL), KV_OK);
    assert_int_equal(bt_stat(db, "pages_warmed"), 0);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

/* Writers and checkpoints run while the warmer loads: a chunk read before a checkpoint wrote
 * the data file must not be put in the pool (kv_check compares every clean cached page with
 * the disk). Repeated, as the interleaving varies. */
static void test_warm_races_checkpoints(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-warmrace");
    kv_db *db;
    const unsigned N = 4000;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    fill(db, 0, N, 200, 1);
    assert_int_equal(kv_close(db), KV_OK);
    for (unsigned round = 2; round < 8; round++) {
        assert_int_equal(
            bt_open_opts(dir, "os", NULL, 0, &db, "checkpoint_bytes=64K", "warm=1", NULL), KV_OK);
        for (unsigned i = 0; i < N; i += 7) /* every page changes, several checkpoints */
            fill(db, i, i + 1, 200, round);
        bt_warm_wait((bt_db *)db);
        assert_true(bt_stat(db, "checkpoints") > 0);
        bt_assert_check(db);
        for (unsigned i = 0; i < N; i++)
            expect(db, i, i + 1, 200, i % 7 ? 1 : round);
        assert_int_equal(kv_close(db), KV_OK);
    }
    tu_rmtree(dir);
    free(dir);
}

/* ---- many threads: writers (group commit), readers, iterators, evictions, checkpoints ---- */

#define CT_KEYS 800
typedef struct ct_shared {
    kv_db *db;
    _Atomic int stop;
    unsigned ver[2][CT_KEYS]; /* final versions per writer (0 = deleted) */
    _Atomic int bad;
    int ops; /* per writer */
} ct_shared;

typedef struct ct_arg {
    ct_shared *sh;
    int id;
} ct_arg;

/* Writer id owns keys with i % 2 == id; value = version repeated. */
static void *ct_writer(void *p)
{
    ct_arg *a = p;
    tu_rng r = {(uint64_t)a->id + 100};
    uint8_t v[600];
    char k[32];
    for (int op = 0; op < a->sh->ops; op++) {
        unsigned i = (unsigned)tu_below(&r, CT_KEYS / 2) * 2 + (unsigned)a->id;
        unsigned *ver = &a->sh->ver[a->id][i];
        if (tu_below(&r, 4) == 0) {
            if (kv_delete(a->sh->db, k, bt_key(k, i)) != KV_OK)
                a->sh->bad = 1;
            *ver = 0;
        } else {
            unsigned nv = (unsigned)op + 1;
            size_t vl = 50 + nv % 500;
            bt_val(v, vl, i, nv);
            if (kv_put(a->sh->db, k, bt_key(k, i), v, vl) != KV_OK)
                a->sh->bad = 1;
            *ver = nv;
        }
    }
    return NULL;
}

/* A value is valid when it is bt_val(i, ver) for some ver with length 50 + ver % 500. */
static bool ct_valid(unsigned i, const uint8_t *v, size_t vl)
{
    if (vl < 50 || vl >= 550)
        return false;
    for (unsigned ver = (unsigned)vl - 50; ver <= 1500; ver += 500) {
        uint8_t want[600];
        bt_val(want, vl, i, ver);
        if (ver && !memcmp(want, v, vl))
            return true;
    }
    return false;
}

static void *ct_reader(void *p)
{
    ct_shared *sh = p;
    tu_rng r = {7};
    char k[32];
    while (!sh->stop) {
        unsigned i = (unsigned)tu_below(&r, CT_KEYS);
        void *v;
        size_t n;
        kv_status s = kv_get(sh->db, k, bt_key(k, i), &v, &n);
        if (s == KV_OK) {
            if (!ct_valid(i, v, n))
                sh->bad = 2;
            kv_free(v);
        } else if (s != KV_NOT_FOUND) {
            sh->bad = 3;
        }
        sched_yield(); /* two cores shared with the writers */
    }
    return NULL;
}

static void *ct_scanner(void *p)
{
    ct_shared *sh = p;
    while (!sh->stop) {
        kv_iter *it;
        if (kv_iter_new(sh->db, &it) != KV_OK) {
            sh->bad = 4;
            return NULL;
        }
        char prev[32] = "";
        size_t prevl = 0;
        for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
            size_t kl, vl;
            const char *key = kv_iter_key(it, &kl);
            const uint8_t *v = kv_iter_value(it, &vl);
            unsigned i = 0;
            for (size_t d = 1; d < 9 && d < kl; d++)
                i = i * 10 + (unsigned)(key[d] - '0');
            if (kl != 9 || kv_key_cmp(prev, prevl, key, kl) >= 0 || !ct_valid(i, v, vl))
                sh->bad = 5;
            memcpy(prev, key, kl);
            prevl = kl;
        }
        if (kv_iter_status(it) != KV_OK)
            sh->bad = 6;
        kv_iter_free(it);
        sched_yield();
    }
    return NULL;
}

/* bgw_start: NULL, or a bgwriter_start option; then the background writer's thread must have
 * written pages back by the end. */
static void run_threads(const char *mode, int ops, const char *bgw_start)
{
    char *dir = tu_mkdtemp("btree-threads");
    ct_shared *sh = calloc(1, sizeof *sh);
    sh->ops = ops;
    assert_int_equal(bt_open_opts(dir, mode, NULL, 128 * 1024, &sh->db, "checkpoint_bytes=64K",
                                  "bgwriter=1", bgw_start, NULL),
                     KV_OK);
    pthread_t w[2], rd[2], sc;
    ct_arg args[2] = {{sh, 0}, {sh, 1}};
    for (int i = 0; i < 2; i++)
        pthread_create(&rd[i], NULL, ct_reader, sh);
    pthread_create(&sc, NULL, ct_scanner, sh);
    for (int i = 0; i < 2; i++)
        pthread_create(&w[i], NULL, ct_writer, &args[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    sh->stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    pthread_join(sc, NULL);
    assert_int_equal(sh->bad, 0);
    bt_assert_check(sh->db);
    if (bgw_start) {
        /* On a loaded machine the writers may finish before the thread ever ran (each
         * checkpoint then wrote the pages itself): go on writing keys outside the model, with
         * a pause after each put, until the thread has written pages back (bounded). */
        uint8_t v[500];
        memset(v, 'x', sizeof v);
        for (unsigned i = 0; i < 20000 && bt_stat(sh->db, "bgwriter_pages") == 0; i++) {
            char k[32];
            int kl = snprintf(k, sizeof k, "extra%06u", i % 1000);
            assert_int_equal(kv_put(sh->db, k, (size_t)kl, v, sizeof v), KV_OK);
            usleep(500);
        }
        assert_true(bt_stat(sh->db, "bgwriter_pages") > 0);
        bt_assert_check(sh->db);
    }
    assert_int_equal(kv_close(sh->db), KV_OK);
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &sh->db, NULL), KV_OK);
    char k[32];
    uint8_t want[600];
    for (unsigned i = 0; i < CT_KEYS; i++) {
        unsigned ver = sh->ver[i % 2][i];
        void *v;
        size_t n;
        kv_status s = kv_get(sh->db, k, bt_key(k, i), &v, &n);
        if (!ver) {
            assert_int_equal(s, KV_NOT_FOUND);
            continue;
        }
        assert_int_equal(s, KV_OK);
        assert_int_equal(n, 50 + ver % 500);
        bt_val(want, n, i, ver);
        assert_memory_equal(v, want, n);
        kv_free(v);
    }
    bt_assert_check(sh->db);
    assert_int_equal(kv_close(sh->db), KV_OK);
    free(sh);
    tu_rmtree(dir);
    free(dir);
}

static void test_threads_readers_writers_iterators(void **state)
{
    (void)state;
    run_threads("sync", 150, NULL); /* every commit waits for an fdatasync: keep it short */
    run_threads("none", 1500, NULL);
}

/* The background writer's thread (bgw.c) beside two writers, readers and iterators, writing
 * pages back from the start of each 64 KiB of log (a checkpoint every 64 KiB): the values read
 * stay valid, kv_check passes, and after reopening every key holds its last version. Under
 * `make tsan` this is the test of its locking. */
static void test_threads_with_bgwriter(void **state)
{
    (void)state;
    run_threads("os", 1500, "bgwriter_start=0");
    run_threads("interval:1", 1500, "bgwriter_start=50");
}

/* ---- dump ---- */

static void test_dump(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("btree-dump");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    assert_int_equal(kv_put(db, "hello", 5, "world", 5), KV_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_int_equal(kv_dump(db, out, NULL, -1), KV_OK);
    fclose(out);
    assert_non_null(strstr(text, "page 0 (meta)"));
    assert_non_null(strstr(text, "generation"));
    assert_non_null(strstr(text, "commit"));
    free(text);
    assert_int_equal(kv_close(db), KV_OK);
    /* After close (checkpoint) the leaf on disk holds the key. */
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, NULL), KV_OK);
    out = open_memstream(&text, &len);
    assert_int_equal(kv_dump(db, out, "btree.db", 1), KV_OK);
    fclose(out);
    assert_non_null(strstr(text, "\"hello\""));
    assert_non_null(strstr(text, "\"world\""));
    /* One key: the prefix is the whole key, the window is past its end (zeros). */
    assert_non_null(strstr(text, "@20 prefix length 5 (every key starts with \"hello\")"));
    assert_non_null(strstr(text, "window 00000000"));
    free(text);
    out = open_memstream(&text, &len);
    assert_int_equal(kv_dump(db, out, "btree.db", 99), KV_INVALID);
    assert_int_equal(kv_dump(db, out, "nope", -1), KV_INVALID);
    fclose(out);
    free(text);
    assert_int_equal(kv_close(db), KV_OK);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_layout),
        cmocka_unit_test(test_meta_head_crc),
        cmocka_unit_test(test_page_sane_matches_reference),
        cmocka_unit_test(test_search_order_binary_keys),
        cmocka_unit_test(test_page_prefix_checked),
        cmocka_unit_test(test_split_merge_reuse),
        cmocka_unit_test(test_small_cache_random_deletes),
        cmocka_unit_test(test_overflow_values),
        cmocka_unit_test(test_large_pages),
        cmocka_unit_test(test_limits_and_options),
        cmocka_unit_test(test_random_differential),
        cmocka_unit_test(test_iterator_snapshot),
        cmocka_unit_test(test_failed_read_rolls_back_batch),
        cmocka_unit_test(test_warm_skips_damaged_page),
        cmocka_unit_test(test_warm_races_checkpoints),
        cmocka_unit_test(test_threads_readers_writers_iterators),
        cmocka_unit_test(test_threads_with_bgwriter),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
