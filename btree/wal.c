/* wal.c: the physical write-ahead log of the btree engine (btree.wal), after SQLite's WAL
 * (page-image frames, a commit frame, a salt so that stale frames are never replayed) and
 * InnoDB's mini-transactions (a group of page changes closed by an end marker).
 *
 * Log header (64 bytes): 0 magic "KVLBWAL1"  8 u32 version  12 u32 page size
 *   16 u64 generation (the salt: +1 at every reset)  24 u64 start LSN  32 u32 crc of [0, 32).
 * Record (32-byte header + payload): 0 u32 crc of bytes [4, 32 + len)  4 u8 type (1 page image,
 *   2 commit, 3 delta)  5..7 zero  8 u64 generation  16 u64 LSN of the group  24 u32 page
 *   number (commit: number of page records in the group)  28 u32 payload length (page 0: a
 *   72-byte image, the rest of the page is zero; other images: the full page; commit: 0;
 *   delta: ranges of u32 offset, u32 length, bytes).
 *
 * Full-page images and deltas: the first change of a page after a checkpoint logs its full image
 * (PostgreSQL's full_page_writes); later changes before the next checkpoint log only the byte
 * ranges that differ from the page's before-image. So the log always holds a full image of
 * every page changed since the checkpoint (a torn data page is rebuilt from it) while a small
 * put logs a few hundred bytes instead of a page. Whether a page has its image in the current
 * generation is a bit per page (db->imaged), not its dirty flag: a page written back before the
 * checkpoint (steal, flush.c) and changed again logs a delta on the image it already has. The page
 * CRC is computed when a page is written to the data file (checkpoint, recovery), not at commit.
 *
 * Recovery applies only groups closed by a valid commit record, in order, and stops at the
 * first record that is short, fails its CRC, carries another generation or breaks the LSN
 * sequence (a torn tail). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

static void rec_header(uint8_t *h, int type, uint64_t gen, uint64_t lsn, uint32_t pgno,
                       uint32_t len)
{
    memset(h, 0, BT_REC_HDR);
    h[4] = (uint8_t)type;
    kv_put_u64(h + 8, gen);
    kv_put_u64(h + 16, lsn);
    kv_put_u32(h + 24, pgno);
    kv_put_u32(h + 28, len);
}

static bool append_rec(kv_buf *b, int type, uint64_t gen, uint64_t lsn, uint32_t pgno,
                       const uint8_t *img, uint32_t len)
{
    if (!kv_buf_reserve(b, BT_REC_HDR + (size_t)len))
        return false;
    uint8_t *h = b->data + b->len;
    rec_header(h, type, gen, lsn, pgno, len);
    uint32_t crc = kv_crc32_extend(kv_crc32(h + 4, BT_REC_HDR - 4), img, len);
    kv_put_u32(h, crc);
    if (len)
        memcpy(h + BT_REC_HDR, img, len);
    b->len += BT_REC_HDR + (size_t)len;
    return true;
}

kv_status bt_wal_flush_pending(bt_db *db)
{
    if (!db->pending.len)
        return KV_OK;
    kv_status s = kv_file_pwrite(db->log, db->pending.data, db->pending.len, db->pend_off);
    if (s != KV_OK)
        return s;
    db->pend_off += db->pending.len;
    db->pending.len = 0;
    return KV_OK;
}

/* The first index >= i where a and b (ps bytes) differ, or ps: compares 64-byte blocks, then
 * 8-byte words (a page is mostly unchanged by one put), then bytes inside the first differing
 * word. */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t i, size_t ps)
{
    while (i < ps && (i & 7)) {
        if (a[i] != b[i])
            return i;
        i++;
    }
    while (i + 64 <= ps && !memcmp(a + i, b + i, 64)) /* libc's vectorised compare */
        i += 64;
    for (; i + 8 <= ps; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            break;
    }
    while (i < ps && a[i] == b[i])
        i++;
    return i;
}

/* Encodes the ranges where page differs from before (gaps under 16 bytes merged) into out
 * (room for ps bytes); returns the length, or 0 when a full image is as small. */
static size_t delta_encode(const uint8_t *before, const uint8_t *page, uint32_t ps, uint8_t *out)
{
    size_t n = 0, i = 0;
    while (i < ps) {
        i = first_diff(before, page, i, ps);
        if (i >= ps)
            break;
        size_t start = i, end = i + 1, same = 0;
        for (i = end; i < ps && same < 16; i++) {
            if (before[i] == page[i]) {
                same++;
            } else {
                same = 0;
                end = i + 1;
            }
        }
        i = end;
        size_t len = end - start;
        if (n + 8 + len >= ps / 2)
            return 0;
        kv_put_u32(out + n, (uint32_t)start);
        kv_put_u32(out + n + 4, (uint32_t)len);
        memcpy(out + n + 8, page + start, len);
        n += 8 + len;
    }
    return n;
}

kv_status bt_wal_commit_group(bt_db *db)
{
    kv_buf *b = &db->rec;
    bt_txn *t = &db->txn;
    uint64_t lsn = db->next_lsn;
    b->len = 0;
    db->meta.last_lsn = lsn;
    db->meta.checkpoint_lsn = db->ckpt_lsn;
    uint8_t *d = db->sc[1];
    kv_status s = bt_imaged_reserve(db, db->meta.hwm);
    if (s != KV_OK)
        return s;
    for (size_t i = 0; i < t->n; i++) {
        bt_touch *e = &t->t[i];
        bt_frame *f = e->f;
        size_t dl = e->imaged && e->before ? delta_encode(e->before, f->data, db->ps, d) : 0;
        bool ok = dl ? append_rec(b, BT_REC_DELTA, db->log_gen, lsn, f->pgno, d, (uint32_t)dl)
                     : append_rec(b, BT_REC_PAGE, db->log_gen, lsn, f->pgno, f->data, db->ps);
        if (!ok)
            return kv_error(KV_IO, "btree: out of memory for a log group");
    }
    uint8_t m[BT_META_LEN];
    bt_meta_encode_head(&db->meta, m, &db->zext);
    if (!append_rec(b, BT_REC_PAGE, db->log_gen, lsn, 0, m, BT_META_LEN) ||
        !append_rec(b, BT_REC_COMMIT, db->log_gen, lsn, (uint32_t)t->n + 1, NULL, 0))
        return kv_error(KV_IO, "btree: out of memory for a log group");
    if (db->dur.kind == KV_DURABILITY_NONE) {
        if (!kv_buf_append(&db->pending, b->data, b->len))
            return kv_error(KV_IO, "btree: out of memory for the log buffer");
        s = db->pending.len >= BT_NONE_BUF ? bt_wal_flush_pending(db) : KV_OK;
    } else {
        s = kv_file_pwrite(db->log, b->data, b->len, db->log_end);
        db->pend_off = db->log_end + b->len;
    }
    if (s != KV_OK)
        return s;
    for (size_t i = 0; i < t->n; i++) {
        t->t[i].f->lsn = lsn; /* the page LSN of the WAL rule (flush.c) */
        bt_imaged_mark(db, t->t[i].f->pgno);
    }
    db->log_end += b->len;
    db->next_lsn++;
    db->meta_dirty = true;
    atomic_fetch_add_explicit(&db->groups, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&db->records, t->n + 2, memory_order_relaxed);
    if (b->cap > 4 * BT_NONE_BUF) { /* do not keep a 64 MiB value's group around */
        kv_buf_free(b);
    }
    return KV_OK;
}

static void log_header(uint8_t *h, uint32_t ps, uint64_t gen, uint64_t lsn)
{
    memset(h, 0, BT_LOG_HDR);
    memcpy(h, BT_LOG_MAGIC, 8);
    kv_put_u32(h + 8, BT_VERSION);
    kv_put_u32(h + 12, ps);
    kv_put_u64(h + 16, gen);
    kv_put_u64(h + 24, lsn);
    kv_put_u32(h + 32, kv_crc32(h, 32));
}

kv_status bt_wal_create(kv_fs *fs, const char *dir, uint32_t ps, uint64_t gen, uint64_t lsn)
{
    uint8_t h[BT_LOG_HDR];
    log_header(h, ps, gen, lsn);
    return kv_fs_replace_file(fs, dir, BT_LOG_FILE, h, sizeof h);
}

kv_status bt_wal_reset(bt_db *db)
{
    kv_status s = bt_wal_flush_pending(db);
    if (s != KV_OK)
        return s;
    uint8_t h[BT_LOG_HDR];
    log_header(h, db->ps, db->log_gen + 1, db->next_lsn);
    /* The new header (one sector) is made durable before the old records are cut: once it is,
     * every old record carries a stale generation and is never replayed, whatever a crash does
     * to the unsynced truncate (faultfs may bring back any mix of old and zeroed sectors). Cut
     * first, a torn truncate could leave a replayable prefix of old groups that would roll
     * newer data pages back. */
    if ((s = kv_file_pwrite(db->log, h, sizeof h, 0)) != KV_OK ||
        (s = kv_file_fdatasync(db->log)) != KV_OK ||
        (s = kv_file_truncate(db->log, BT_LOG_HDR)) != KV_OK)
        return s;
    db->log_gen++;
    db->log_start_lsn = db->next_lsn;
    db->log_end = db->pend_off = BT_LOG_HDR;
    return KV_OK;
}

/* Reads and validates the log header. */
static kv_status read_log_header(kv_file *log, const char *path, uint32_t *ps, uint64_t *gen,
                                 uint64_t *lsn)
{
    uint8_t h[BT_LOG_HDR];
    kv_status s = kv_file_read_exact(log, h, sizeof h, 0);
    if (s == KV_CORRUPTION)
        return kv_error(KV_CORRUPTION, "%s: offset 0: log header missing or short", path);
    if (s != KV_OK)
        return s;
    if (memcmp(h, BT_LOG_MAGIC, 8))
        return kv_error(KV_CORRUPTION, "%s: offset 0: bad magic (not a btree log)", path);
    if (kv_get_u32(h + 32) != kv_crc32(h, 32))
        return kv_error(KV_CORRUPTION, "%s: offset 32: log header crc mismatch", path);
    if (kv_get_u32(h + 8) != BT_VERSION)
        return kv_error(KV_CORRUPTION, "%s: offset 8: unsupported version %u", path,
                        kv_get_u32(h + 8));
    *ps = kv_get_u32(h + 12);
    if (*ps < BT_MIN_PS || *ps > BT_MAX_PS || (*ps & (*ps - 1)))
        return kv_error(KV_CORRUPTION, "%s: offset 12: bad page size %u", path, *ps);
    *gen = kv_get_u64(h + 16);
    *lsn = kv_get_u64(h + 24);
    return KV_OK;
}

/* Recovery's pages: pgno -> the page rebuilt from the log so far (open addressing). */
typedef struct pmap {
    uint32_t *keys;  /* UINT32_MAX = empty */
    uint8_t **pages; /* NULL for a page written to the data file by spill() */
    size_t cap, n;
    uint32_t ps;
    size_t resident, limit; /* pages held in memory; spill() past limit */
} pmap;

static void pmap_free(pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->pages[i]);
    free(m->keys);
    free(m->pages);
    memset(m, 0, sizeof *m);
}

static bool pmap_grow(pmap *m)
{
    pmap g = {NULL, NULL, m->cap ? 2 * m->cap : 256, 0, m->ps, m->resident, m->limit};
    g.keys = malloc(g.cap * sizeof *g.keys);
    g.pages = calloc(g.cap, sizeof *g.pages);
    if (!g.keys || !g.pages) {
        free(g.keys);
        free(g.pages);
        return false;
    }
    memset(g.keys, 0xff, g.cap * sizeof *g.keys);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == UINT32_MAX)
            continue;
        size_t j = (m->keys[i] * 2654435761u) & (g.cap - 1);
        while (g.keys[j] != UINT32_MAX)
            j = (j + 1) & (g.cap - 1);
        g.keys[j] = m->keys[i];
        g.pages[j] = m->pages[i];
        g.n++;
    }
    free(m->keys);
    free(m->pages);
    *m = g;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The slot index of pgno, created (with no page yet) when create; SIZE_MAX when absent or out
 * of memory. */
static size_t pmap_find(pmap *m, uint32_t pgno, bool create)
{
    if (create && (m->n + 1) * 2 > m->cap && !pmap_grow(m))
        return SIZE_MAX;
    if (!m->cap)
        return SIZE_MAX;
    size_t j = (pgno * 2654435761u) & (m->cap - 1);
    while (m->keys[j] != UINT32_MAX && m->keys[j] != pgno)
        j = (j + 1) & (m->cap - 1);
    if (m->keys[j] == pgno)
        return j;
    if (!create)
        return SIZE_MAX;
    m->keys[j] = pgno;
    m->n++;
    return j;
}

/* Writes every page pm holds in memory to the data file in page order, each sealed with its
 * CRC, and frees them. Recovery calls it when the pages rebuilt so far reach the pool's budget
 * (so that its memory stays within the budget however long the log), and at the end. A page written
 * here comes from the log's full image and the deltas after it, so a later delta of it may start
 * from the data file's copy; a crash before the log reset replays the log from its header
 * again, full images first. */
static kv_status spill(bt_db *db, pmap *pm)
{
    if (!pm->resident)
        return KV_OK;
    uint32_t *order = malloc(pm->resident * sizeof *order);
    if (!order)
        return kv_error(KV_IO, "btree: out of memory in recovery");
    size_t n = 0;
    for (size_t i = 0; i < pm->cap; i++)
        if (pm->keys[i] != UINT32_MAX && pm->pages[i])
            order[n++] = pm->keys[i];
    qsort(order, n, sizeof *order, cmp_u32);
    kv_status s = KV_OK;
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        size_t j = pmap_find(pm, order[i], false);
        bt_pg_seal(pm->pages[j], db->ps, order[i]);
        s = kv_file_pwrite(db->data, pm->pages[j], db->ps, (uint64_t)order[i] * db->ps);
        free(pm->pages[j]);
        pm->pages[j] = NULL;
        pm->resident--;
    }
    free(order);
    return s;
}

/* The in-memory page of a log record for pgno: a PAGE record (image) creates it, a DELTA
 * (image false) needs an earlier image, in memory or spilled to the data file. NULL with *s set
 * on error. */
static uint8_t *pmap_page(bt_db *db, pmap *pm, uint32_t pgno, bool image, uint64_t off,
                          kv_status *s)
{
    size_t j = pmap_find(pm, pgno, image);
    if (j == SIZE_MAX) {
        *s = image ? kv_error(KV_IO, "btree: out of memory in recovery")
                   : kv_error(KV_CORRUPTION,
                              "%s: offset %" PRIu64 ": delta of page %u "
                              "without a full image before it",
                              db->log_path, off, pgno);
        return NULL;
    }
    if (pm->pages[j])
        return pm->pages[j];
    if (pm->resident >= pm->limit && (*s = spill(db, pm)) != KV_OK)
        return NULL;
    uint8_t *page = malloc(db->ps);
    if (!page) {
        *s = kv_error(KV_IO, "btree: out of memory in recovery");
        return NULL;
    }
    if (!image && (*s = bt_read_page_disk(db, pgno, page)) != KV_OK) {
        free(page);
        return NULL;
    }
    pm->pages[j] = page;
    pm->resident++;
    return page;
}

/* Applies a delta payload to page; false when a range falls outside the page. */
static bool delta_apply(uint8_t *page, uint32_t ps, const uint8_t *d, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (len - i < 8)
            return false;
        uint32_t off = kv_get_u32(d + i), n = kv_get_u32(d + i + 4);
        if (off > ps || n > ps - off || n > len - i - 8)
            return false;
        if (page)
            memcpy(page + off, d + i + 8, n);
        i += 8 + (size_t)n;
    }
    return true;
}

/* One scan state over the log. */
typedef struct scan {
    uint64_t off, good_end, last_lsn, groups, records;
    bool have_lsn;
    const char *stop; /* why the scan stopped */
} scan;

/* Walks the log from the header. With out, prints every record; with pm, rebuilds the pages
 * of the records before limit in pm. Stops at the first bad record. */
static kv_status walk(bt_db *db, uint64_t gen, uint64_t limit, pmap *pm, FILE *out, scan *sc,
                      uint8_t *buf)
{
    uint64_t size;
    kv_status s = kv_file_size(db->log, &size);
    if (s != KV_OK)
        return s;
    memset(sc, 0, sizeof *sc);
    sc->off = sc->good_end = BT_LOG_HDR;
    uint64_t group_lsn = 0;
    uint32_t nrec = 0;
    uint64_t group_start = BT_LOG_HDR;
    while (sc->off < limit) {
        uint8_t h[BT_REC_HDR];
        if (size - sc->off < BT_REC_HDR) {
            sc->stop = "short record header";
            break;
        }
        if ((s = kv_file_read_exact(db->log, h, sizeof h, sc->off)) != KV_OK)
            return s;
        int type = h[4];
        uint64_t rgen = kv_get_u64(h + 8), lsn = kv_get_u64(h + 16);
        uint32_t pgno = kv_get_u32(h + 24), len = kv_get_u32(h + 28);
        if (rgen != gen) {
            sc->stop = "record of another generation (stale or never written)";
            break;
        }
        if (((type == BT_REC_PAGE || type == BT_REC_DELTA) && (len == 0 || len > db->ps)) ||
            (type == BT_REC_COMMIT && len != 0) ||
            (type != BT_REC_PAGE && type != BT_REC_COMMIT && type != BT_REC_DELTA)) {
            sc->stop = "bad record type or length";
            break;
        }
        if ((type == BT_REC_PAGE || type == BT_REC_DELTA) && pgno == UINT32_MAX) {
            sc->stop = "page number out of range"; /* UINT32_MAX is no page (nor pmap's key) */
            break;
        }
        if (size - sc->off - BT_REC_HDR < len) {
            sc->stop = "short record image";
            break;
        }
        if (len && (s = kv_file_read_exact(db->log, buf, len, sc->off + BT_REC_HDR)) != KV_OK)
            return s;
        uint32_t crc = kv_crc32_extend(kv_crc32(h + 4, BT_REC_HDR - 4), buf, len);
        if (crc != kv_get_u32(h)) {
            sc->stop = "record crc mismatch";
            break;
        }
        if (nrec == 0) {
            if (sc->have_lsn && lsn != sc->last_lsn + 1) {
                sc->stop = "LSN out of sequence";
                break;
            }
            group_lsn = lsn;
            group_start = sc->off;
        } else if (lsn != group_lsn) {
            sc->stop = "LSN changes inside a group";
            break;
        }
        if (type == BT_REC_COMMIT && pgno != nrec) {
            sc->stop = "commit record counts a different number of pages";
            break;
        }
        if (type == BT_REC_DELTA && !delta_apply(NULL, db->ps, buf, len)) {
            sc->stop = "delta range outside the page";
            break;
        }
        if (out) {
            if (nrec == 0)
                fprintf(out, "  group lsn %" PRIu64 " at offset %" PRIu64 ":\n", lsn, sc->off);
            if (type == BT_REC_DELTA)
                fprintf(out,
                        "    @%-10" PRIu64 " delta  crc %08x gen %" PRIu64 " lsn %" PRIu64
                        " page %u, %u bytes of (offset, length, bytes) ranges\n",
                        sc->off, kv_get_u32(h), rgen, lsn, pgno, len);
            else if (type == BT_REC_PAGE)
                fprintf(out,
                        "    @%-10" PRIu64 " page   crc %08x gen %" PRIu64 " lsn %" PRIu64
                        " page %u image %u bytes (type %u)\n",
                        sc->off, kv_get_u32(h), rgen, lsn, pgno, len,
                        pgno == 0 ? 0u : (unsigned)buf[4]);
            else
                fprintf(out,
                        "    @%-10" PRIu64 " commit crc %08x gen %" PRIu64 " lsn %" PRIu64
                        " pages %u\n",
                        sc->off, kv_get_u32(h), rgen, lsn, pgno);
        }
        if (pm && (type == BT_REC_PAGE || type == BT_REC_DELTA)) {
            uint8_t *page = pmap_page(db, pm, pgno, type == BT_REC_PAGE, sc->off, &s);
            if (!page)
                return s;
            if (type == BT_REC_PAGE) {
                memcpy(page, buf, len);
                memset(page + len, 0, db->ps - len);
            } else {
                delta_apply(page, db->ps, buf, len);
            }
        }
        sc->off += BT_REC_HDR + len;
        sc->records++;
        if (type == BT_REC_COMMIT) {
            nrec = 0;
            sc->good_end = sc->off;
            sc->last_lsn = lsn;
            sc->have_lsn = true;
            sc->groups++;
        } else {
            nrec++;
        }
    }
    (void)group_start;
    if (sc->off >= size && !sc->stop)
        sc->stop = NULL;
    return KV_OK;
}

kv_status bt_wal_recover(bt_db *db)
{
    uint32_t ps;
    uint64_t gen, lsn, size;
    kv_status s = read_log_header(db->log, db->log_path, &ps, &gen, &lsn);
    if (s != KV_OK)
        return s;
    if (ps != db->ps)
        return kv_error(KV_CORRUPTION, "%s: offset 12: page size %u, data file has %u",
                        db->log_path, ps, db->ps);
    db->log_gen = gen;
    db->log_start_lsn = lsn;
    if ((s = kv_file_size(db->log, &size)) != KV_OK)
        return s;
    uint8_t *buf = malloc(db->ps);
    if (!buf)
        return kv_error(KV_IO, "btree: out of memory");
    scan sc;
    /* Rebuilt pages are held in memory up to the pool's budget, then written out (spill). */
    size_t limit = (size_t)(db->cache_bytes / db->ps);
    pmap pm = {NULL, NULL, 0, 0, db->ps, 0, limit > 16 ? limit : 16};
    s = walk(db, gen, size, NULL, NULL, &sc, buf);
    if (s == KV_OK && sc.groups)
        s = walk(db, gen, sc.good_end, &pm, NULL, &sc, buf);
    if (s == KV_OK)
        s = spill(db, &pm); /* every rebuilt page, sealed, in page order */
    pmap_free(&pm);
    free(buf);
    if (s != KV_OK)
        return s;
    db->next_lsn = sc.groups ? sc.last_lsn + 1 : lsn;
    db->log_end = db->pend_off = size;
    if (sc.groups && (s = kv_file_fdatasync(db->data)) != KV_OK)
        return s;
    if (size > BT_LOG_HDR)
        return bt_wal_reset(db);
    return KV_OK;
}

kv_status bt_wal_dump(bt_db *db, FILE *out)
{
    uint32_t ps;
    uint64_t gen, lsn, size;
    kv_status s = read_log_header(db->log, db->log_path, &ps, &gen, &lsn);
    if (s != KV_OK)
        return s;
    if ((s = kv_file_size(db->log, &size)) != KV_OK)
        return s;
    fprintf(out, "== %s (%" PRIu64 " bytes)\n", BT_LOG_FILE, size);
    fprintf(out, "  @0  magic      \"%s\"\n", BT_LOG_MAGIC);
    fprintf(out, "  @8  version    %u\n", BT_VERSION);
    fprintf(out, "  @12 page_size  %u\n", ps);
    fprintf(out,
            "  @16 generation %" PRIu64 " (salt: records of other generations are "
            "never replayed)\n",
            gen);
    fprintf(out, "  @24 start_lsn  %" PRIu64 "\n", lsn);
    fprintf(out, "  @32 crc        (ok)\n");
    uint8_t *buf = malloc(ps);
    if (!buf)
        return kv_error(KV_IO, "btree: out of memory");
    scan sc;
    s = walk(db, gen, size, NULL, out, &sc, buf);
    free(buf);
    if (s != KV_OK)
        return s;
    fprintf(out,
            "  %" PRIu64 " complete groups, %" PRIu64 " records, complete up to offset %" PRIu64
            "\n",
            sc.groups, sc.records, sc.good_end);
    if (sc.good_end < size)
        fprintf(out, "  tail at offset %" PRIu64 " (%" PRIu64 " bytes) is not replayed: %s\n",
                sc.good_end, size - sc.good_end, sc.stop ? sc.stop : "incomplete group");
    return KV_OK;
}
