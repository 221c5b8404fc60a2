/* page.c: the slotted page format of the btree engine (docs/btree.md "Page formats").
 *
 * A leaf or internal page keeps a slot array (u16 cell offsets in key order) growing up from
 * the 24-byte header and cells packed at the end of the page, growing down, as in SQLite's
 * b-tree pages. Pages are kept compact (no holes): a removed cell is closed up at once, so the
 * free space is always the gap between the slot array and the first cell.
 *
 * Each slot also holds its key's window: 4 key bytes after the prefix all keys of the page
 * share (header field @20). A binary search compares windows, which sit together in the slot
 * array, and loads a cell (a cache miss per probe in a cached tree) only when the windows are
 * equal; with the prefix stripped, 4 bytes separate nearly every pair of neighbouring keys. */
#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "btree_int.h"

size_t bt_cell_size(const uint8_t *p, unsigned i)
{
    const uint8_t *c = p + pg_slot(p, i);
    size_t klen = kv_get_u16(c);
    if (pg_type(p) == BT_INTERNAL)
        return 6 + klen;
    return 7 + klen + (c[2] ? 4 : kv_get_u32(c + 3));
}

void bt_pg_init(uint8_t *p, uint32_t ps, uint32_t pgno, int type, int level)
{
    memset(p, 0, ps);
    p[4] = (uint8_t)type;
    p[5] = (uint8_t)level;
    kv_put_u32(p + 8, pgno);
    kv_put_u32(p + 12, ps);
}

size_t bt_pg_free(const uint8_t *p)
{
    return pg_content(p) - (BT_HDR + (size_t)BT_SLOT * pg_n(p));
}

size_t bt_pg_used(const uint8_t *p, uint32_t ps)
{
    return (ps - pg_content(p)) + (size_t)BT_SLOT * pg_n(p);
}

/* Key offset in a cell of a page of type t. */
static inline size_t key_off(uint8_t t)
{
    return t == BT_LEAF ? 7 : 6;
}

/* Writes slot i: cell offset off, and the window of the key at off for prefix length pfx. */
static void put_slot(uint8_t *p, unsigned i, uint32_t off, size_t pfx)
{
    uint8_t *s = p + BT_HDR + BT_SLOT * i;
    const uint8_t *c = p + off;
    size_t klen = kv_get_u16(c);
    const uint8_t *k = c + key_off(pg_type(p));
    kv_put_u16(s, (uint16_t)off);
    for (size_t j = 0; j < BT_WIN; j++)
        s[2 + j] = pfx + j < klen ? k[pfx + j] : 0;
}

/* Bytes that a and b (al and bl long) have in common at their start, at most max. */
static size_t common_prefix(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, size_t max)
{
    size_t n = al < bl ? al : bl, i = 0;
    if (n > max)
        n = max;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Sets the page's prefix length to pfx and rewrites every window. */
static void set_prefix(uint8_t *p, size_t pfx)
{
    kv_put_u16(p + 20, (uint16_t)pfx);
    for (unsigned i = 0, n = pg_n(p); i < n; i++)
        put_slot(p, i, pg_slot(p, i), pfx);
}

/* kv_key_cmp for the binary searches: 8-byte words first (the first differing word is
 * compared as a big-endian number, i.e. in byte order), then the tail, then the lengths; the
 * same order as kv_key_cmp (memcmp, then shorter first), without a call per probe. */
static inline int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1; /* byte order */
#else
            return memcmp(a + i, b + i, 8);
#endif
        }
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Whether key (klen bytes) starts with the page's prefix: the first pfx bytes of the key k of
 * any cell. < 0: the key sorts before every key of the page, > 0: after every key. */
static inline int prefix_cmp(const uint8_t *key, size_t klen, const uint8_t *k, size_t pfx)
{
    int r = memcmp(key, k, klen < pfx ? klen : pfx);
    if (r)
        return r;
    return klen < pfx ? -1 : 0; /* a key that is a proper prefix of the prefix sorts first */
}

/* Both searches compare the key's window with each probed slot's window; a cell is loaded and
 * the whole keys compared only when the windows are equal. The windows order the keys only if
 * the key starts with the page's prefix, so the search ends with one check of the prefix
 * against the cell at its result (usually the cell it loaded last): a key outside the prefix
 * sorts before or after every key of the page. */
/* Compares the key of slot i with key (window w): by windows, and by whole keys only when the
 * windows are equal. */
static inline int probe_cmp(const uint8_t *p, unsigned i, uint32_t w, size_t koff, const void *key,
                            size_t klen)
{
    uint32_t sw = pg_win(p, i);
    if (sw != w)
        return sw < w ? -1 : 1;
    const uint8_t *c = p + pg_slot(p, i);
    return key_cmp(c + koff, kv_get_u16(c), key, klen);
}

unsigned bt_pg_lower_bound(const uint8_t *p, const void *key, size_t klen, bool *found)
{
    unsigned lo = 0, n = pg_n(p), hi = n;
    const size_t koff = key_off(pg_type(p)), pfx = pg_prefix(p);
    const uint32_t w = bt_key_win(key, klen, pfx);
    bool eq = false;
    *found = false;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int r = probe_cmp(p, mid, w, koff, key, klen);
        if (r < 0) {
            lo = mid + 1;
        } else {
            if (r == 0)
                eq = true;
            hi = mid;
        }
    }
    if (pfx && n) {
        const uint8_t *c = p + pg_slot(p, lo < n ? lo : n - 1);
        int r = prefix_cmp(key, klen, c + koff, pfx);
        if (r)
            return r < 0 ? 0 : n;
    }
    *found = eq;
    return lo;
}

unsigned bt_pg_upper_bound(const uint8_t *p, const void *key, size_t klen)
{
    unsigned lo = 0, n = pg_n(p), hi = n;
    const size_t koff = key_off(pg_type(p)), pfx = pg_prefix(p);
    const uint32_t w = bt_key_win(key, klen, pfx);
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int r = probe_cmp(p, mid, w, koff, key, klen);
        if (r <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pfx && n) {
        const uint8_t *c = p + pg_slot(p, lo > 0 ? lo - 1 : 0);
        int r = prefix_cmp(key, klen, c + koff, pfx);
        if (r)
            return r < 0 ? 0 : n;
    }
    return lo;
}

void bt_pg_insert_cell(uint8_t *p, unsigned idx, const uint8_t *cell, size_t len)
{
    unsigned n = pg_n(p);
    assert(idx <= n);
    assert(bt_pg_free(p) >= len + BT_SLOT); /* the caller checked that the cell fits */
    uint32_t content = pg_content(p) - (uint32_t)len;
    memcpy(p + content, cell, len);
    uint8_t *slots = p + BT_HDR;
    memmove(slots + BT_SLOT * (idx + 1), slots + BT_SLOT * idx, (size_t)BT_SLOT * (n - idx));
    kv_put_u16(p + 6, (uint16_t)(n + 1));
    kv_put_u32(p + 12, content);
    /* The prefix: the whole key for a first key, else cut to what the new key shares with
     * the others (any other key holds the prefix); a shorter prefix rewrites every window. */
    const size_t koff = key_off(pg_type(p));
    const uint8_t *k = p + content + koff;
    size_t klen = kv_get_u16(p + content), pfx = n ? pg_prefix(p) : klen;
    if (n) {
        const uint8_t *o = p + pg_slot(p, idx == 0 ? 1 : 0);
        size_t np = common_prefix(k, klen, o + koff, kv_get_u16(o), pfx);
        if (np < pfx) {
            put_slot(p, idx, content, np);
            set_prefix(p, np);
            return;
        }
    }
    kv_put_u16(p + 20, (uint16_t)pfx);
    put_slot(p, idx, content, pfx);
}

void bt_pg_remove_cell(uint8_t *p, unsigned idx, uint32_t ps)
{
    unsigned n = pg_n(p);
    assert(idx < n);
    uint32_t off = pg_slot(p, idx);
    uint32_t len = (uint32_t)bt_cell_size(p, idx);
    uint32_t content = pg_content(p);
    assert(content <= off && off + len <= ps); /* the cell lies in the cell area */
    (void)ps;
    /* Close the hole: cells below off move up by len. The prefix stays valid (the remaining
     * keys still share it), and so do the windows. */
    memmove(p + content + len, p + content, off - content);
    uint8_t *slots = p + BT_HDR;
    memmove(slots + BT_SLOT * idx, slots + BT_SLOT * (idx + 1), (size_t)BT_SLOT * (n - idx - 1));
    n--;
    for (unsigned i = 0; i < n; i++) {
        uint32_t o = kv_get_u16(slots + BT_SLOT * i);
        if (o < off)
            kv_put_u16(slots + BT_SLOT * i, (uint16_t)(o + len));
    }
    kv_put_u16(p + 6, (uint16_t)n);
    kv_put_u32(p + 12, content + len);
    if (n == 0)
        kv_put_u16(p + 20, 0);
}

void bt_pg_build(uint8_t *p, uint32_t ps, uint32_t pgno, int type, int level, uint32_t link,
                 const bt_cell *cells, size_t n)
{
    bt_pg_init(p, ps, pgno, type, level);
    pg_set_link(p, link);
    const size_t koff = key_off((uint8_t)type);
    size_t pfx = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl = kv_get_u16(cells[i].p);
        pfx = i == 0 ? kl
                     : common_prefix(cells[0].p + koff, kv_get_u16(cells[0].p), cells[i].p + koff,
                                     kl, pfx);
    }
    kv_put_u16(p + 20, (uint16_t)pfx);
    uint32_t content = ps;
    for (size_t i = 0; i < n; i++) {
        content -= cells[i].len;
        memcpy(p + content, cells[i].p, cells[i].len);
        put_slot(p, (unsigned)i, content, pfx);
    }
    kv_put_u16(p + 6, (uint16_t)n);
    kv_put_u32(p + 12, content);
}

static uint32_t page_crc(const uint8_t *p, uint32_t ps, uint32_t pgno)
{
    if (pgno == 0)
        return kv_crc32_extend(kv_crc32(p, BT_META_CRC), p + BT_META_CRC + 4, ps - BT_META_CRC - 4);
    return kv_crc32(p + 4, ps - 4);
}

void bt_pg_seal(uint8_t *p, uint32_t ps, uint32_t pgno)
{
    kv_put_u32(p + (pgno == 0 ? BT_META_CRC : 0), page_crc(p, ps, pgno));
}

bool bt_pg_crc_ok(const uint8_t *p, uint32_t ps, uint32_t pgno)
{
    return kv_get_u32(p + (pgno == 0 ? BT_META_CRC : 0)) == page_crc(p, ps, pgno);
}

/* Bytes of the cell at offset o of a page of type t (leaf or internal). */
static inline size_t cell_len_at(const uint8_t *p, uint8_t t, uint32_t o)
{
    size_t klen = kv_get_u16(p + o);
    return t == BT_INTERNAL ? 6 + klen : 7 + klen + (p[o + 2] ? 4 : kv_get_u32(p + o + 3));
}

/* The exact cell-area check, one bit per byte: names the first violation. Only run when the
 * fast check in bt_pg_sane fails, i.e. for damaged pages. */
static const char *cells_slow(const uint8_t *p, uint32_t ps, uint8_t t, unsigned n,
                              uint32_t content)
{
    size_t total = 0;
    /* Two slots may not share a byte of the cell area (a damaged page could otherwise pass
     * the fill check with overlapping cells, and a later remove would leave a slot pointing
     * into moved bytes). Pages are at most 64 KiB. */
    uint8_t used[(64u << 10) / 8];
    memset(used, 0, (ps + 7) / 8);
    for (unsigned i = 0; i < n; i++) {
        uint32_t o = pg_slot(p, i);
        size_t len = cell_len_at(p, t, o);
        for (size_t b = o; b < o + len; b++) {
            if (used[b >> 3] & (1u << (b & 7)))
                return "two cells overlap";
            used[b >> 3] |= (uint8_t)(1u << (b & 7));
        }
        total += len;
    }
    if (total != ps - content)
        return "cells do not fill the cell area exactly";
    return NULL;
}

const char *bt_pg_sane(const uint8_t *p, uint32_t ps, uint32_t pgno)
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
    /* Every slot's cell must lie in the cell area, and the cells must tile it exactly: no two
     * overlap and no byte is left over. Marking every byte of every cell (cells_slow) was the
     * largest cost of reading a page from disk, more than its CRC; instead mark only where
     * each cell starts (a repeated start is an overlap), then walk from the start of the cell
     * area, cell by cell: the cells tile the area exactly when the walk meets only cell starts,
     * ends at the page's end and meets n cells. */
    size_t total = 0;
    bool dup = false;
    uint8_t start[(64u << 10) / 8];
    memset(start, 0, (ps + 7) / 8);
    for (unsigned i = 0; i < n; i++) {
        uint32_t o = pg_slot(p, i);
        if (o < content || o + 7 > ps)
            return "slot points outside the cell area";
        size_t klen = kv_get_u16(p + o);
        size_t len = cell_len_at(p, t, o);
        if (klen == 0 || o + len > ps)
            return "cell runs past the end of the page";
        if (t == BT_LEAF && kv_get_u32(p + o + 3) > KV_MAX_VALUE)
            return "value length above 64 MiB";
        dup |= (start[o >> 3] >> (o & 7)) & 1;
        start[o >> 3] |= (uint8_t)(1u << (o & 7));
        total += len;
    }
    if (!dup && total == ps - content) {
        uint32_t o = content;
        unsigned seen = 0;
        while (o < ps && ((start[o >> 3] >> (o & 7)) & 1)) {
            o += (uint32_t)cell_len_at(p, t, o);
            seen++;
        }
        if (o == ps && seen == n)
            return bt_pg_prefix_check(p);
    }
    const char *why = cells_slow(p, ps, t, n, content);
    return why ? why : bt_pg_prefix_check(p);
}

const char *bt_pg_prefix_check(const uint8_t *p)
{
    unsigned n = pg_n(p);
    size_t pfx = pg_prefix(p), koff = key_off(pg_type(p));
    if (kv_get_u16(p + 22))
        return "reserved header bytes are not zero";
    if (n == 0)
        return pfx ? "empty page with a prefix" : NULL;
    for (unsigned i = 0; i < n; i++)
        if (kv_get_u16(p + pg_slot(p, i)) < pfx)
            return "key shorter than the page's prefix";
    const uint8_t *first = p + pg_slot(p, 0) + koff;
    for (unsigned i = 0; i < n; i++)
        if (memcmp(p + pg_slot(p, i) + koff, first, pfx))
            return "key does not start with the page's prefix";
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = p + pg_slot(p, i);
        if (pg_win(p, i) != bt_key_win(c + koff, kv_get_u16(c), pfx))
            return "slot window does not match its key";
    }
    return NULL;
}

/* The meta page's fields, bytes [0, BT_META_CRC): the one definition of their layout, used by
 * both the full page encoder and the BT_META_LEN-byte log record encoder. */
static void put_meta_fields(const bt_meta *m, uint8_t *p)
{
    memcpy(p, BT_META_MAGIC, 8);
    kv_put_u32(p + 8, BT_VERSION);
    kv_put_u32(p + 12, m->page_size);
    kv_put_u32(p + 16, m->root);
    kv_put_u32(p + 20, m->height);
    kv_put_u32(p + 24, m->hwm);
    kv_put_u32(p + 28, m->free_head);
    kv_put_u64(p + 32, m->key_count);
    kv_put_u64(p + 40, m->free_count);
    kv_put_u64(p + 48, m->last_lsn);
    kv_put_u64(p + 56, m->checkpoint_lsn);
    kv_put_u64(p + 64, m->db_id);
    kv_put_u64(p + 72, m->log_gen);
    kv_put_u64(p + 80, m->data_lsn);
}

void bt_meta_encode(const bt_meta *m, uint8_t *p, uint32_t ps)
{
    memset(p, 0, ps);
    put_meta_fields(m, p);
    bt_pg_seal(p, ps, 0);
}

void bt_zext_init(bt_zext *z, uint32_t ps)
{
    static const uint8_t zeros[1024];
    size_t n = ps - BT_META_CRC - 4;
    for (int b = -1; b < 32; b++) {
        uint32_t c = b < 0 ? 0 : (uint32_t)1 << b;
        for (size_t left = n; left;) {
            size_t k = left < sizeof zeros ? left : sizeof zeros;
            c = kv_crc32_extend(c, zeros, k);
            left -= k;
        }
        if (b < 0)
            z->base = c;
        else
            z->col[b] = c ^ z->base;
    }
}

void bt_meta_encode_head(const bt_meta *m, uint8_t *p, const bt_zext *z)
{
    put_meta_fields(m, p);
    memset(p + BT_META_CRC, 0, BT_META_LEN - BT_META_CRC);
    /* crc32 over [0, 88) then over the zero bytes [92, ps): the second step is an affine map
     * of the running CRC, applied bit by bit from the table of bt_zext_init. */
    uint32_t c = kv_crc32(p, BT_META_CRC), r = z->base;
    for (int b = 0; c; b++, c >>= 1)
        if (c & 1)
            r ^= z->col[b];
    kv_put_u32(p + BT_META_CRC, r);
}

kv_status bt_meta_decode(const uint8_t *p, uint32_t ps, const char *path, bt_meta *m)
{
    if (memcmp(p, BT_META_MAGIC, 8))
        return kv_error(KV_CORRUPTION, "%s: offset 0: bad magic (not a btree data file)", path);
    if (kv_get_u32(p + 8) != BT_VERSION)
        return kv_error(KV_CORRUPTION, "%s: offset 8: unsupported version %u", path,
                        kv_get_u32(p + 8));
    if (kv_get_u32(p + 12) != ps)
        return kv_error(KV_CORRUPTION, "%s: offset 12: page size %u, expected %u", path,
                        kv_get_u32(p + 12), ps);
    if (!bt_pg_crc_ok(p, ps, 0))
        return kv_error(KV_CORRUPTION, "%s: offset %u: meta page crc mismatch", path, BT_META_CRC);
    m->page_size = ps;
    m->root = kv_get_u32(p + 16);
    m->height = kv_get_u32(p + 20);
    m->hwm = kv_get_u32(p + 24);
    m->free_head = kv_get_u32(p + 28);
    m->key_count = kv_get_u64(p + 32);
    m->free_count = kv_get_u64(p + 40);
    m->last_lsn = kv_get_u64(p + 48);
    m->checkpoint_lsn = kv_get_u64(p + 56);
    m->db_id = kv_get_u64(p + 64);
    m->log_gen = kv_get_u64(p + 72);
    m->data_lsn = kv_get_u64(p + 80);
    if (m->hwm < 2 || m->root == 0 || m->root >= m->hwm || m->height < 1 || m->height > 64 ||
        m->free_head >= m->hwm)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 16: meta fields out of range (root %u, "
                        "height %u, hwm %u, free head %u)",
                        path, m->root, m->height, m->hwm, m->free_head);
    if (m->log_gen == 0)
        return kv_error(KV_CORRUPTION, "%s: offset 72: log generation 0", path);
    return KV_OK;
}
